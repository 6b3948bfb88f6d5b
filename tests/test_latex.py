"""LaTeX that renders: text escaping, a symbol table that fits the page, and a real pdflatex run."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from engine.cli import main
from engine.printing import TABLE_COLUMNS, _md_escape, _tex_comment, _tex_escape

PREAMBLE = "\\documentclass{article}\n\\usepackage{amsmath}\n\\tracinglostchars=1\n\\begin{document}\n"
ARCHS = ["seed", "llama-2-7b", "mixtral-8x7b"]


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


@pytest.mark.parametrize("arch", ARCHS)
def test_latex_compiles_and_the_table_fits(arch, capsys, tmp_path):
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    doc = PREAMBLE + _latex(capsys, arch) + "\\end{document}\n"
    (tmp_path / "doc.tex").write_text(doc, encoding="utf-8")
    r = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(encoding="utf-8", errors="replace")
    assert r.returncode == 0, log[-3000:]
    assert (tmp_path / "doc.pdf").exists()
    assert "Missing character" not in log, "a character has no glyph in the font"
    lines = doc.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if r"\begin{tabular}" in line)
    last = next(i for i, line in enumerate(lines, 1) if r"\end{tabular}" in line)
    # the table's paragraph runs to the blank line after it
    assert not _overfull_in(log, first, last + 1), _overfull_in(log, first, last + 1)


def test_overfull_detection_catches_a_wide_table(capsys, tmp_path):
    """The check above would fail the old ``{lll}`` table (about 260 pt too wide for llama-2-7b)."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    out = _latex(capsys, "llama-2-7b")
    out = re.sub(r"\\noindent\\begin\{tabular\}\{.*\}", r"\\begin{tabular}{lll}", out).replace(r"\raggedright ", "")
    doc = PREAMBLE + out + "\\end{document}\n"
    (tmp_path / "doc.tex").write_text(doc, encoding="utf-8")
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                   capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(encoding="utf-8", errors="replace")
    lines = doc.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if r"\begin{tabular}" in line)
    last = next(i for i, line in enumerate(lines, 1) if r"\end{tabular}" in line)
    assert _overfull_in(log, first, last + 1)
