"""LaTeX that renders: text escaping, a symbol table and equations that fit the page, real pdflatex runs."""

from __future__ import annotations

import bisect
import re
import shutil
import subprocess

import pytest
import sympy

from engine.symbolic import printing
from engine.symbolic.printing import latex as latex_printer
from engine.cli import main
from engine.symbolic.formulas import FORMULA_SETS, build_formula_set
from engine.catalog.model import architecture, formulas_of
from engine.symbolic.printing import LINE_WIDTH_PT, latex_of
from engine.symbolic.printing.latex import TABLE_COLUMNS, TAG_ROOM_PT, tex_comment, tex_escape
from engine.symbolic.printing.linebreak import break_latex, operator_cuts
from engine.symbolic.printing.markdown import md_escape
from engine.symbolic.printing.subquantities import SubQuantities
from engine.symbolic.printing.texwidth import parse, tex_width
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
def testtex_escape_each_special_character(raw, tex):
    assert tex_escape(raw) == tex


def testtex_escape_is_one_pass():
    # a replacement is never escaped again (the backslash and braces it introduces stay commands)
    assert tex_escape("\\{") == r"\textbackslash{}\{"
    assert tex_escape("<->_") == r"$\leftrightarrow$\_"
    assert not re.search(r"[<>|]", tex_escape("a < b > c | d <-- e -->"))


def testtex_comment_stays_one_line():
    assert tex_comment("a\nb\r\nc") == "% a b c"


def testmd_escape_keeps_one_cell():
    assert md_escape("a | b\nc") == r"a \| b c"


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


def _tex_engine() -> str:
    """pdflatex's path; the test is skipped, saying why, where there is none."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    return pdflatex


def _pdflatex(tmp_path, doc: str) -> str:
    """Compile ``doc`` in ``tmp_path``; the log (the test fails when pdflatex does)."""
    pdflatex = _tex_engine()
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
    monkeypatch.setattr(latex_printer, "break_latex", lambda tex, first, rest: [tex])
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
    given = set() if arch in FORMULA_SETS else set(architecture(arch).values)  # a preset's sizes stay symbols
    collect = extra[1] if extra[:1] == ("--collect",) else None
    expected = []
    omitted = printing.identically_zero(fs)  # not printed, and 0 where others use them
    zeros = {fs.quantities[name].symbol: 0 for name in omitted}
    for q in fs.quantities.values():
        if q.name in omitted:
            continue
        expected.append(q.definition.xreplace(zeros))
        if extra:
            expanded = sympy.expand(fs.apply(fs.inline(q.definition), given))
            if collect:
                expanded = sympy.collect(expanded, symbol(collect))
            if expanded != expected[-1]:
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
    printed = sum(1 + len(operator_cuts(parse(line), ("+", "-"))) for line in lines)  # each line starts a term
    assert printed == len(sympy.Add.make_args(expr))
    assert break_latex(tex, 1000.0, 1000.0) == [tex]  # fits: untouched


def test_a_long_factor_is_cut_inside_its_parentheses():
    d, L, V, h, B, S = (symbol(n) for n in ("d_model", "n_layers", "vocab", "n_heads", "batch", "seq_len"))
    expr = d * (2 * L + 2 * V + 1 + B * S + B * S * V + B * S * d * L + 17 * h * L * V)
    tex = latex_of(expr)
    lines = break_latex(tex, 120.0, 130.0)
    assert len(lines) > 2
    for line in lines:
        parse(line)  # balanced: each line closes what it opens (\right. ... \left.)
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
        parse(line)
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
    last = max(i for i, line in enumerate(lines, 1) if r"\end{tabular}" in line)  # a tabular per row: all of them
    assert _overfull_in(log, first, last + 1)


# --- --line-width, named cases, quantities left out; every formula set on one- and two-column pages --------------

#: LaTeX document classes and the --line-width each one's column takes
CLASSES = {"onecolumn": ("\\documentclass{article}", "onecolumn"),
           "twocolumn": ("\\documentclass[twocolumn]{article}", "twocolumn"),
           # ACL's column (acl.sty: \textwidth 16cm, \columnsep 0.6cm): 219pt, the narrowest of the usual venues
           "acl": ("\\documentclass[twocolumn]{article}\n\\setlength{\\textwidth}{16cm}\\setlength{\\columnsep}{0.6cm}",
                   "7.7cm")}
#: (class, arch, flags): a representative subset of `benchmarks/render_latex.py --matrix` (every set, flag and class
#: there); each class is one pdflatex run
PAGES = [("onecolumn", "llama-3.1-8b", ("--option", "memory_model=korthikanti", "--expand", "--with-sizes")),
         ("onecolumn", "deepseek-v3", ("--option", "mode=inference", "--expand")),
         ("twocolumn", "seed", ("--expand",)),
         ("twocolumn", "llama-3.1-8b", ("--option", "memory_model=korthikanti", "--expand", "--with-sizes")),
         ("twocolumn", "deepseek-v3", ("--option", "mode=inference", "--expand")),
         ("twocolumn", "nemotron-h-56b-base-8k", ("--option", "memory_model=pytorch")),
         ("acl", "llama-3.1-8b", ("--expand", "--with-sizes")),
         ("acl", "deepseek-v3", ("--option", "memory_model=korthikanti")),
         ("acl", "llama-3.1-8b", ("--option", "memory_model=seed", "--expand")),
         ("acl", "nemotron-h-56b-base-8k", ("--option", "mode=inference", "--expand"))]


@pytest.mark.parametrize("cls", list(CLASSES))
def test_every_set_fits_one_and_two_column_pages(cls, capsys, tmp_path):
    """Memory, step time, inference and parameters, plain and expanded, with sizes: no overfull box in the class."""
    _tex_engine()  # before the formulas are printed
    parts, titles = [CLASSES[cls][0] + "\n\\usepackage{amsmath}\n\\begin{document}\n"], []
    for _, arch, extra in [p for p in PAGES if p[0] == cls]:
        titles.append(f"{arch} {' '.join(extra)}")
        parts.append(f"\\section*{{{arch}}}\n" + _latex(capsys, arch, "--line-width", CLASSES[cls][1], *extra))
    doc = "".join(parts) + "\\end{document}\n"
    log = _pdflatex(tmp_path, doc)
    lines = doc.splitlines()
    sections = [i for i, line in enumerate(lines, 1) if line.startswith("\\section*")]
    bad = [(m, titles[bisect.bisect_right(sections, int(re.findall(r"lines? (\d+)", m)[0])) - 1])
           for m in _overfull_in(log, 1, len(lines))]
    assert not bad, bad  # (log line, formula set)
    assert "Overfull \\vbox" not in log  # no row taller than the page (a cases block inside a fraction was)


def test_overfull_detection_catches_the_one_column_output_in_two_columns(capsys, tmp_path):
    """Without --line-width the korthikanti set, fit for 345pt, runs past a 229.5pt column."""
    _tex_engine()
    doc = (CLASSES["twocolumn"][0] + "\n\\usepackage{amsmath}\n\\begin{document}\n"
           + _latex(capsys, "llama-3.1-8b", "--option", "memory_model=korthikanti") + "\\end{document}\n")
    assert _overfull_in(_pdflatex(tmp_path, doc), 1, len(doc.splitlines()))


@pytest.mark.parametrize("text,pt", [("345pt", 345.0), ("3.25in", 3.25 * 72.27), ("8.5cm", 8.5 * 72.27 / 2.54),
                                     ("252bp", 252 * 72.27 / 72), ("20pc", 240.0), ("onecolumn", 345.0),
                                     ("twocolumn", 229.5), (" TwoColumn ", 229.5), ("219.5 pt", 219.5)])
def test_line_width_takes_tex_lengths_and_names(text, pt):
    assert printing.parse_line_width(text) == pytest.approx(pt)


@pytest.mark.parametrize("text,says", [("wide", "expected a length"), ("345", "expected a length"),
                                       ("3.25em", "expected a length"), ("-345pt", "expected a length"),
                                       ("100pt", "narrower than 200pt"), ("1e3pt", "expected a length"),
                                       ("20000pt", "wider than 16383pt")])
def test_a_bad_line_width_is_one_line_and_exit_2(text, says, capsys):
    assert main(["formulas", "--format", "latex", f"--line-width={text}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"llm-sweep formulas: error: --line-width: {text}: ")
    assert says in err and "345pt, 3.25in or 8.5cm" in err and "twocolumn (229.5pt)" in err  # what is valid


def test_line_width_applies_to_latex_only(capsys):
    assert main(["formulas", "--line-width", "twocolumn"]) == 2
    assert "--line-width: twocolumn: applies to --format latex, not text" in capsys.readouterr().err


def test_line_budget_uses_the_line_width(capsys):
    """Every printed line, as estimated, fits the column the output was made for (the left column included)."""
    for width, pt in (("twocolumn", 229.5), ("7.7cm", 7.7 * 72.27 / 2.54)):
        out = _latex(capsys, "llama-3.1-8b", "--option", "memory_model=korthikanti", "--expand", "--line-width", width)
        align = out[out.index(r"\begin{align}"):out.index(r"\end{align}")].splitlines()[1:]
        rows = [re.sub(r"(?<!\\)%.*", "", line).strip().removesuffix(r"\\").replace(r"\notag", "").split("&", 1)
                for line in align]
        widest_lhs = max(tex_width(lhs) for lhs, _ in rows if lhs.strip())
        assert all(widest_lhs + tex_width("{}" + rhs) <= pt - TAG_ROOM_PT for _, rhs in rows)
        assert f"% lines fit {pt:g}pt" in out


def _sub_quantities(out: str) -> tuple[list[str], list[str]]:
    """The names (kappa_k) in the align block in order of first use, and those defined (`\\kappa_{k} &= ...`)."""
    align = out[out.index(r"\begin{align}"):out.index(r"\end{align}")]
    align = "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in align.splitlines())
    used = list(dict.fromkeys(re.findall(r"\\kappa_\{\d+\}", align)))
    defined = re.findall(r"^\s*(\\kappa_\{\d+\}) &= ", align, re.M)
    return used, defined


def test_piecewise_terms_are_named_sub_quantities(capsys):
    """Each Piecewise inside a formula is a kappa_k with an equation of its own, after the first that uses it."""
    out = _latex(capsys, "llama-3.1-8b", "--option", "memory_model=korthikanti", "--expand")
    used, defined = _sub_quantities(out)
    assert len(used) >= 5 and used == defined == [rf"\kappa_{{{k}}}" for k in range(1, len(used) + 1)]
    align = out[out.index(r"\begin{align}"):out.index(r"\end{align}")].splitlines()
    for name in defined:  # defined once, after the line that first uses it
        first_use = next(i for i, line in enumerate(align) if name in line.split("%")[0])
        definition = next(i for i, line in enumerate(align) if line.lstrip().startswith(name + " &= "))
        assert first_use < definition
    for line in align:  # a cases block is a whole right-hand side: nothing before or after it on its line
        body = re.sub(r"(?<!\\)%.*", "", line).strip().removesuffix(r"\\").replace(r"\notag", "").strip()
        if r"\begin{cases}" in body:
            assert re.fullmatch(r"[^&]*&= \\begin\{cases\}.*\\end\{cases\}", body), body
            assert body.count(r"\begin{cases}") == 1
    descriptions = out[out.index(r"\begin{description}"):]
    assert all(rf"\item[{{${name}$}}]" in descriptions for name in defined)
    # the interleaving factor of the activations (the bottleneck stage's layers come first, in mem_weights)
    k = re.search(r"\\kappa_\{(\d+)\} &= \\begin\{cases\} 1 & \\text\{for\}\\: v = 1 \\\\", out).group(1)
    assert rf"\item[{{$\kappa_{{{k}}}$}}] Cases within $M_{{\mathrm{{act}}}}$ (mem\_activations)" in descriptions
    # a comment carries the source of the quantity it is part of
    assert re.search(rf"\\kappa_\{{{k}\}} &= .*% kappa_\{{{k}\}} \(in mem_activations\): Korthikanti et al\. 2022", out)


def _resolved(expr: sympy.Expr, subs: SubQuantities) -> sympy.Expr:
    while expr.free_symbols & set(subs.definitions):
        expr = expr.xreplace(subs.definitions)
    return expr


def _same_numbers(a: sympy.Expr, b: sympy.Expr, seed: int) -> None:
    import random

    rng = random.Random(seed)
    names = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    for _ in range(6):  # small integers, so that tp = 1, pp = 1, ... and their other cases all come up
        point = {s: sympy.Integer(rng.randint(1, 4)) for s in names}
        assert a.xreplace(point) == b.xreplace(point), (a, point)


@pytest.mark.parametrize("arch,option", [("llama-3.1-8b", "memory_model=korthikanti"),
                                         ("deepseek-v3", "mode=inference"),
                                         ("nemotron-h-56b-base-8k", "mode=inference")])
def test_sub_quantities_keep_every_number(arch, option):
    """Put back, the named cases and denominators give each formula's own values: definition and expanded line."""
    from engine.catalog.model import estimate_formulas, memory_options

    model = architecture(arch)
    fs = estimate_formulas(model.family, model.structure, memory_options(**dict([option.split("=")])))
    subs = SubQuantities(fs, 60.0, 70.0)  # narrow lines: many cases and denominators named
    checked = 0
    for i, q in enumerate(fs.quantities.values()):
        if not q.definition.has(sympy.Piecewise, sympy.Pow):
            continue
        named = subs.hoist(q.definition)
        subs.latex(named)  # names the wide denominators too
        _same_numbers(_resolved(subs._narrow(named), subs), q.definition, i)
        over_inputs = fs.apply(fs.inline(q.definition), set(model.values))
        if over_inputs.has(sympy.Piecewise) and len(str(over_inputs)) < 3000:
            expanded = subs.hoist(over_inputs, sympy.expand)
            expanded = expanded if isinstance(expanded, sympy.Piecewise) else sympy.expand(expanded)
            _same_numbers(_resolved(subs._narrow(expanded), subs), over_inputs, i)
        checked += 1
    assert checked >= 5 and len(subs.definitions) >= 5


def test_quantities_identically_zero_are_left_out(capsys):
    """A dense model's MoE terms (and fp32's master copy) are not printed in LaTeX; one comment names them."""
    out = _latex(capsys, "llama-3.1-8b", "--option", "memory_model=korthikanti", "--option", "precision=fp32",
                 "--with-sizes")
    comment = re.search(r"^% identically 0 for this model, left out: (.*)$", out, re.M)
    assert comment and comment.group(1).split(", ") == [
        "params_router_layer", "params_experts_layer", "params_positions", "params_ssm", "params_router",
        "params_experts", "mem_master", "time_ep"]
    body = "\n".join(re.sub(r"(?<!\\)%.*", "", line) for line in out.splitlines())
    for gone in (r"P_{\mathrm{router}}", r"P_{\mathrm{experts}}", r"M_{\mathrm{master}}", r"T_{\mathrm{EP}}"):
        assert gone not in body, gone  # nor its equation, nor a term that is 0, nor a row of the sizes table
    assert re.search(r"C_{\\mathrm\{fwd\}} &= 2 \\cdot d_\{\\mathrm\{model\}\} \\cdot V", body)
    # text and Markdown print every quantity, as before
    assert main(["formulas", "--arch", "llama-3.1-8b", "--option", "memory_model=korthikanti"]) == 0
    text = capsys.readouterr().out
    assert "params_router [1]" in text and "mem_master [bytes]" in text and "2*params_router" in text


def test_the_sizes_table_wraps_to_the_line_width(capsys):
    out = _latex(capsys, "llama-3.1-8b", "--option", "memory_model=korthikanti", "--with-sizes", "--line-width",
                 "twocolumn")
    spec = re.search(r"\\begin\{tabular\}\{(.*)\}\n  quantity & value & units", out).group(1)
    widths = [float(w) for w in re.findall(r"p\{\\dimexpr ([0-9.]+)\\linewidth-2\\tabcolsep\\relax\}", spec)]
    assert len(widths) == 3 and abs(sum(widths) - 1.0) < 1e-9
    assert r"\raggedright needs $B$, $S$ & bytes" in out  # inputs named by their symbols, wrapped
    assert r"\raggedleft 8{,}030{,}261{,}248 & 1" in out  # numbers flush right


def test_one_printer_per_format():
    from engine.options import FORMATS

    assert tuple(printing.PRINTERS) == FORMATS  # formulas --format offers exactly the formats printed
    fs = build_formula_set("seed")
    with pytest.raises(ValueError, match=r"unknown format 'latx'; valid formats: text, latex, markdown; did you mean "
                                         r"'latex'\?"):
        printing.format_formulas(fs, "latx")
