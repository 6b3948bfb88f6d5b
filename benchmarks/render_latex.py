"""Render `llm-sweep formulas --format latex` to a PDF and a PNG, to look at it.

    python benchmarks/render_latex.py [--arch seed] [--out DIR] [--expand] [--page N | --all-pages]

Writes the LaTeX of the chosen formula set, family or preset into a minimal document
(``\\documentclass{article}`` plus amsmath, nothing else), runs pdflatex on it and renders page 1
(or the chosen pages) to PNG with pdftoppm. Prints the paths of the .tex, .pdf, .log and .png
files and every "Overfull \\hbox" line of the log. Needs pdflatex (Debian: texlive-latex-base
texlive-latex-recommended) and pdftoppm (poppler-utils); exits with a message when one is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from engine.cli import main as cli_main

PREAMBLE = "\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
INSTALL = {"pdflatex": "apt-get install -y texlive-latex-base texlive-latex-recommended",
           "pdftoppm": "apt-get install -y poppler-utils"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="seed", help="formula set, family or preset (default: seed)")
    parser.add_argument("--out", help="output folder (default: a new temporary folder)")
    parser.add_argument("--expand", action="store_true", help="pass --expand to llm-sweep formulas")
    parser.add_argument("--page", type=int, default=1, help="page to render (default: 1)")
    parser.add_argument("--all-pages", action="store_true", help="render every page")
    parser.add_argument("--dpi", type=int, default=110, help="PNG resolution (default: 110)")
    args = parser.parse_args(argv)

    missing = [tool for tool in INSTALL if shutil.which(tool) is None]
    if missing:
        for tool in missing:
            print(f"render_latex: {tool} not found; install it with: {INSTALL[tool]}", file=sys.stderr)
        return 2

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = cli_main(["formulas", "--arch", args.arch, "--format", "latex", *(["--expand"] if args.expand else [])])
    if rc != 0:
        print(f"render_latex: llm-sweep formulas --arch {args.arch} failed (exit {rc})", file=sys.stderr)
        return rc

    out = Path(args.out or tempfile.mkdtemp(prefix="render_latex_"))
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", args.arch)
    tex = out / f"{stem}.tex"
    tex.write_text(PREAMBLE + buffer.getvalue() + "\\end{document}\n", encoding="utf-8")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=out,
                       capture_output=True, text=True)
    log = out / f"{stem}.log"
    if r.returncode != 0:
        print(r.stdout[-3000:], file=sys.stderr)
        print(f"render_latex: pdflatex failed (exit {r.returncode}); see {log}", file=sys.stderr)
        return 1
    pdf = out / f"{stem}.pdf"
    pages = [] if args.all_pages else ["-f", str(args.page), "-l", str(args.page)]
    subprocess.run(["pdftoppm", "-png", "-r", str(args.dpi), *pages, pdf.name, stem], cwd=out, check=True)
    pngs = sorted(out.glob(f"{stem}-*.png"))
    print(f"tex: {tex}\npdf: {pdf}\nlog: {log}")
    for png in pngs:
        print(f"png: {png}")
    overfull = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.startswith("Overfull")]
    print(f"{len(overfull)} overfull box(es)" + "".join(f"\n  {line}" for line in overfull))
    return 0


if __name__ == "__main__":
    sys.exit(main())
