"""LaTeX that renders: text escaping, a symbol table and equations that fit the page, real pdflatex runs."""

from __future__ import annotations

import bisect
import re
import shutil
import subprocess

import pytest
import sympy

from engine.symbolic import printing
from engine.cli import main
from engine.symbolic.formulas import FORMULA_SETS, build_formula_set
from engine.catalog.model import architecture, formulas_of
from engine.symbolic.printing import (LINE_WIDTH_PT, TABLE_COLUMNS, _cuts, _md_escape, _parse, _tex_comment, _tex_escape,
                             break_latex, latex_of, tex_width)
from engine.symbolic.symbols import symbol

PREAMBLE = "\\documentclass{article}\n\\usepackage{amsmath}\n\\tracinglostchars=1\n\\begin{document}\n"
#: formula sets compiled together in one document: (arch, extra flags); every box in it must fit
DOCUMENT = [("seed", ()), ("seed", ("--expand",)), ("gpt2", ()), ("opt-350m", ()), ("opt-350m", ("--expand",)),
            ("bloom-560m", ()), ("llama-2-7b", ()), ("llama-2-7b", ("--expand",)), ("mixtral-8x7b", ()),
            ("mixtral-8x7b", ("--expand",)), ("falcon-40b", ("--expand",)), ("qwen3-8b", ("--expand",)),
            ("llama-2-7b", ("--substitute", "d_ff=8*d_model/3", "--collect", "d_model"))]


@pytest.mark.parametrize("raw,tex", [
    ("a <-> b", r"a $\leftrightarrow$ b"),
    ("a -> b", r"a $\rightarrow$ b"),
    ("a <- b", r"a $\leftarrow$ b"),
    ("a => b", r"a $\Rightarrow$ b"),
    ("a <=> b", r"a $\Leftrightarrow$ b"),
    ("a < b", r"a \textless{} b"),
    ("a > b", r"a \textgreater{} b"),
    ("a | b", r"a \textbar{} b"),
    ("d_model", r"d\_model"),
    ("50%", r"50\%"),
    ("Q & A", r"Q \& A"),
    ("errata #1", r"errata \#1"),
    ("N^alpha", r"N\textasciicircum{}alpha"),
    ("~1.2x", r"$\sim$1.2x"),
    ("$5", r"\$5"),
    ("{x}", r"\{x\}"),
    ("a\\b", r"a\textbackslash{}b"),
    ("--arch", "-{}-arch"),
    ("§3.2", r"$\S$3.2"),
    ("two\nlines", "two lines"),
])
def test_tex_escape_each_special_character(raw, tex):
    assert _tex_escape(raw) == tex


def test_tex_escape_is_one_pass():
    # a replacement is never escaped again (the backslash and braces it introduces stay commands)
    assert _tex_escape("\\{") == r"\textbackslash{}\{"
    assert _tex_escape("<->_") == r"$\leftrightarrow$\_"
    assert not re.search(r"[<>|]", _tex_escape("a < b > c | d <-- e -->"))


def test_tex_comment_stays_one_line():
    assert _tex_comment("a\nb\r\nc") == "% a b c"


def test_md_escape_keeps_one_cell():
    assert _md_escape("a | b\nc") == r"a \| b c"


def _latex(capsys, arch: str, *extra: str) -> str:
    assert main(["formulas", "--arch", arch, "--format", "latex", *extra]) == 0
    return capsys.readouterr().out


def test_symbol_table_wraps_to_the_line_width(capsys):
    out = _latex(capsys, "llama-2-7b")
    spec = re.search(r"\\begin\{tabular\}\{(.*)\}\s*$", out, re.M).group(1)
    widths = re.findall(r"p\{\\dimexpr ([0-9.]+)\\linewidth-2\\tabcolsep\\relax\}", spec)
    assert len(widths) == 3 and [float(w) for w in widths] == list(TABLE_COLUMNS)
    assert re.sub(r"p\{\\dimexpr [^}]*\}", "", spec) == ""  # no l/c/r column that could run wide
    assert sum(float(w) for w in widths) <= 1.0 + 1e-9


def test_latex_text_is_escaped(capsys):
    out = _latex(capsys, "llama-2-7b")
    text = out[out.index(r"\begin{tabular}"):out.index(r"\end{description}")]  # table and descriptions
    text = "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in text.splitlines())  # no comments there
    assert "<->" not in text and r"$\leftrightarrow$" in text
    assert not re.search(r"(?<!\\)_", re.sub(r"\$[^$]*\$", "", text))  # underscores only in math
    assert "§" not in text and r"$\S$" in text
    assert re.search(r"^\s*\\item\[\{\$[^$]+\$\}\] ", text, re.M)  # labels braced: a ] cannot end them


def _overfull_in(log: str, first: int, last: int, limit_pt: float = 1.0) -> list[str]:
    bad = []
    pattern = r"Overfull \\hbox \(([0-9.]+)pt too wide\) (?:in \w+ at lines (\d+)--(\d+)|detected at line (\d+))"
    for m in re.finditer(pattern, log):
        lo = int(m.group(2) or m.group(4))
        hi = int(m.group(3) or m.group(4))
        if float(m.group(1)) > limit_pt and lo <= last and hi >= first:
            bad.append(m.group(0))
    return bad


def _pdflatex(tmp_path, doc: str) -> str:
    """Compile ``doc`` in ``tmp_path``; the log (the test fails when pdflatex does)."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    (tmp_path / "doc.tex").write_text(doc, encoding="utf-8")
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(encoding="utf-8", errors="replace")
    assert r.returncode == 0, log[-3000:]
    assert (tmp_path / "doc.pdf").exists()
    return log


#: math measured by TeX in the document below, to check ``tex_width`` against
MEASURED = [r"2 \cdot d_{\mathrm{model}} \cdot d_{\mathrm{head}} \cdot n_{\mathrm{heads}}",
            r"P_{\mathrm{attn}}^{\mathrm{layer}} + P_{\mathrm{mlp}}^{\mathrm{layer}}",
            r"\left(12 \cdot d_{\mathrm{model}}^{2} \cdot n_{\mathrm{layers}} + d_{\mathrm{model}} \cdot V\right)"
            r"^{\frac{7}{100}}",
            r"M_{\mathrm{act,attention\ output}}",
            r"\frac{68 \cdot d_{\mathrm{model}} \cdot V}{n_{\mathrm{layers}} + 3}"]


def test_every_box_fits_in_one_document(capsys, tmp_path):
    """All of ``DOCUMENT`` in one run: no overfull box anywhere (equations, table, descriptions)."""
    parts, titles = [PREAMBLE], []
    for arch, extra in DOCUMENT:
        title = " ".join([arch, *(flag.lstrip("-") for flag in extra if flag.startswith("--"))])
        titles.append(title)
        parts.append(f"\\section*{{{title}}}\n" + _latex(capsys, arch, *extra))
    for i, math in enumerate(MEASURED):
        parts.append(f"\\setbox0\\hbox{{$\\displaystyle{{}}{math}$}}\\typeout{{WIDTH{i}=\\the\\wd0}}\n")
    doc = "".join(parts) + "\\end{document}\n"
    log = _pdflatex(tmp_path, doc)
    assert "Missing character" not in log, "a character has no glyph in the font"
    lines = doc.splitlines()
    sections = [i for i, line in enumerate(lines, 1) if line.startswith("\\section*")]
    bad = [(m, titles[bisect.bisect_right(sections, int(re.findall(r"lines? (\d+)", m)[0])) - 1])
           for m in _overfull_in(log, 1, len(lines))]
    assert not bad, bad  # (log line, formula set)
    widths = {int(i): float(w) for i, w in re.findall(r"WIDTH(\d+)=([0-9.]+)pt", log)}
    for i, math in enumerate(MEASURED):  # the estimate errs on the wide side, by little
        assert 0.95 * widths[i] <= tex_width(math) <= 1.2 * widths[i], (math, widths[i], tex_width(math))


def test_overfull_detection_catches_a_wide_equation(capsys, tmp_path, monkeypatch):
    """Without line breaks the seed set's expanded equations run about 315 pt past the margin."""
    monkeypatch.setattr(printing, "break_latex", lambda tex, first, rest: [tex])
    out = _latex(capsys, "seed", "--expand")
    assert r"\notag" not in out
    doc = PREAMBLE + out + "\\end{document}\n"
    log = _pdflatex(tmp_path, doc)
    lines = doc.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if r"\begin{align}" in line)
    last = next(i for i, line in enumerate(lines, 1) if r"\end{align}" in line)
    assert _overfull_in(log, first, last)


def _equations(out: str) -> list[list[str]]:
    """The right-hand sides of the align block: one list of printed lines per numbered equation."""
    block = out[out.index(r"\begin{align}") + len(r"\begin{align}"):out.index(r"\end{align}")]
    equations = []
    for line in block.strip().splitlines():
        line = re.sub(r"(?<!\\)%.*", "", line).strip()
        line = re.sub(r"\s*\\\\$", "", line)
        body = line.split("&", 1)[1]
        if body.startswith("= "):
            equations.append([])
            body = body[2:]
        else:
            assert body.startswith(r"\quad "), line
            body = body[len(r"\quad "):]
        equations[-1].append(body.removesuffix(r" \notag"))
    return equations


def _unbroken(lines: list[str]) -> str:
    """The printed lines of one equation put back together (markers of cuts inside a pair removed)."""
    text = " ".join(lines)
    text = text.replace(r"\vphantom{\frac{1}{1}} ", "")
    text = re.sub(r" \\right\. \\left\. (\{\} )?", " ", text)
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("arch,extra", [("seed", ("--expand",)), ("gpt2", ()), ("mixtral-8x7b", ("--expand",)),
                                        ("llama-2-7b", ("--collect", "d_model"))])
def test_broken_equations_print_the_same_math(arch, extra, capsys):
    """Cut or not, each equation prints sympy's LaTeX of its expression, once, with one number."""
    out = _latex(capsys, arch, *extra)
    fs = build_formula_set(arch, {}) if arch in FORMULA_SETS else formulas_of(architecture(arch))
    collect = extra[1] if extra[:1] == ("--collect",) else None
    expected = []
    for q in fs.quantities.values():
        expected.append(q.definition)
        if extra:
            expanded = sympy.expand(fs.apply(fs.inline(q.definition), set()))
            if collect:
                expanded = sympy.collect(expanded, symbol(collect))
            if expanded != q.definition:
                expected.append(expanded)
    equations = _equations(out)
    assert len(equations) == len(expected)
    assert any(len(lines) > 1 for lines in equations), "nothing was cut: the test checks nothing"
    for lines, expr in zip(equations, expected):
        tex = latex_of(expr, fs)
        if not any(r"\right." in line for line in lines):  # cut at + - or \cdot only: exactly the pieces
            assert " ".join(lines) == tex
        assert _unbroken(lines) == re.sub(r"\s+", "", tex)
    # one equation number per equation: every line but the last of each is \notag
    align = out[out.index(r"\begin{align}"):out.index(r"\end{align}")].splitlines()[1:]
    numbered = [line for line in align if r"\notag" not in line]
    assert len(numbered) == len(expected) == sum(line.lstrip().split("&")[1].startswith("= ") for line in align)


def test_a_long_sum_is_cut_term_by_term():
    d, L, V, B, S = (symbol(n) for n in ("d_model", "n_layers", "vocab", "batch", "seq_len"))
    expr = (14 * B * d * L * S + 4 * B * L * S**2 + 10 * B * S * V + 8 * B * S + 192 * d**2 * L + 144 * d * L
            + 16 * d * V)
    tex = latex_of(expr)
    lines = break_latex(tex, 150.0, 160.0)
    assert len(lines) > 2 and " ".join(lines) == tex
    assert tex_width(lines[0]) <= 150.0 and all(tex_width("{}" + line) <= 160.0 for line in lines[1:])
    assert all(line[:2] in ("+ ", "- ") for line in lines[1:])
    printed = sum(1 + len(_cuts(_parse(line), ("+", "-"))) for line in lines)  # each line starts a term
    assert printed == len(sympy.Add.make_args(expr))
    assert break_latex(tex, 1000.0, 1000.0) == [tex]  # fits: untouched


def test_a_long_factor_is_cut_inside_its_parentheses():
    d, L, V, h, B, S = (symbol(n) for n in ("d_model", "n_layers", "vocab", "n_heads", "batch", "seq_len"))
    expr = d * (2 * L + 2 * V + 1 + B * S + B * S * V + B * S * d * L + 17 * h * L * V)
    tex = latex_of(expr)
    lines = break_latex(tex, 120.0, 130.0)
    assert len(lines) > 2
    for line in lines:
        _parse(line)  # balanced: each line closes what it opens (\right. ... \left.)
        assert tex_width("{}" + line) <= 130.0
    assert _unbroken(lines) == re.sub(r"\s+", "", tex)
    assert lines[-1].endswith(r"\right)") and all(line.startswith(r"\left. ") for line in lines[2:])


def test_wide_fraction_root_and_cases_fallbacks():
    d, L, V, B, S = (symbol(n) for n in ("d_model", "n_layers", "vocab", "batch", "seq_len"))
    total = 12 * d**2 * L + 9 * d * L + d * V + B * S * V + 7 * B * S * d
    lines = break_latex(latex_of(total / (L + 3)), 120.0, 130.0)
    assert lines[0].startswith(r"\frac{1}{n_{\mathrm{layers}} + 3} \left(") and len(lines) > 2
    lines = break_latex(latex_of(sympy.sqrt(total)), 120.0, 130.0)
    assert lines[0].startswith(r"\left(") and lines[-1].endswith(r"\right)^{\frac{1}{2}}")
    cases = sympy.Piecewise((d * L, L > 1), (V, True)) * total
    lines = break_latex(latex_of(cases), 120.0, 130.0)
    for line in lines:
        _parse(line)
        assert line.count(r"\begin{cases}") == line.count(r"\end{cases}")  # an environment is never cut
    for line in lines:
        assert tex_width("{}" + line) <= 130.0 or r"\begin{cases}" in line
    assert break_latex("x_{", 10.0, 10.0) == ["x_{"]  # not balanced: printed whole, no error


def test_line_budget_uses_the_text_width(capsys):
    out = _latex(capsys, "seed", "--expand")
    widest_lhs = max(tex_width(line.split("&")[0]) for line in out.splitlines() if "&= " in line and
                     line.split("&")[0].strip())
    for lines in _equations(out):
        for k, line in enumerate(lines):
            assert widest_lhs + tex_width("{}" + (r"\quad " if k else "{}={}") + line) <= LINE_WIDTH_PT


def test_overfull_detection_catches_a_wide_table(capsys, tmp_path):
    """The check above would fail the old ``{lll}`` table (about 260 pt too wide for llama-2-7b)."""
    out = _latex(capsys, "llama-2-7b")
    out = re.sub(r"\\noindent\\begin\{tabular\}\{.*\}", r"\\begin{tabular}{lll}", out).replace(r"\raggedright ", "")
    doc = PREAMBLE + out + "\\end{document}\n"
    log = _pdflatex(tmp_path, doc)
    lines = doc.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if r"\begin{tabular}" in line)
    last = next(i for i, line in enumerate(lines, 1) if r"\end{tabular}" in line)
    assert _overfull_in(log, first, last + 1)
