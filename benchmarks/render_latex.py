"""Render `llm-sweep formulas --format latex` to a PDF and a PNG, to look at it; or measure every set's fit.

    python benchmarks/render_latex.py [--arch seed] [--out DIR] [--expand] [--option NAME=VALUE ...]
                                      [--class onecolumn|twocolumn|ieee|acl] [--page N | --all-pages]
    python benchmarks/render_latex.py --matrix [--arch NAME ...] [--class NAME ...] [--out DIR]

The first form writes the LaTeX of the chosen formula set, family or preset into a minimal document
(``\\documentclass{article}`` plus amsmath, nothing else; ``--class`` picks a two-column layout and
passes its column width as ``--line-width``), runs pdflatex on it and renders page 1 (or the chosen
pages) to PNG with pdftoppm. Prints the paths of the .tex, .pdf, .log and .png files and every
"Overfull \\hbox" line of the log.

``--matrix`` prints the worst overfull box in pt of every formula set (parameters; training memory
and step time with each memory model; inference) x {plain, --expand, --expand --with-sizes} for
each architecture and document class: one pdflatex run per architecture and class, each set in a
section of its own (0 = everything fits; "-" = the CLI refuses that combination, e.g. --with-sizes
of a formula set without sizes). Against a checkout whose CLI has no ``--line-width`` the output
is the one-column output, whatever the class (that is how the numbers before it were measured).

Needs pdflatex (Debian: texlive-latex-base texlive-latex-recommended) and, without --matrix,
pdftoppm (poppler-utils); exits with a message when one is missing.
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
import time
from pathlib import Path

from engine.cli import main as cli_main

#: document classes: (preamble before amsmath, the --line-width that matches their column)
CLASSES = {
    "onecolumn": ("\\documentclass{article}", "onecolumn"),  # \linewidth 345pt
    "twocolumn": ("\\documentclass[twocolumn]{article}", "twocolumn"),  # \columnwidth 229.5pt
    # an IEEEtran-like column of 252pt, in an article (IEEEtran is not in texlive-latex-extra)
    "ieee": ("\\documentclass[twocolumn]{article}\n\\setlength{\\textwidth}{516pt}\\setlength{\\columnsep}{12pt}",
             "252pt"),
    # ACL's (acl.sty: \textwidth 16cm, \columnsep 0.6cm), the narrowest of the usual venues
    "acl": ("\\documentclass[twocolumn]{article}\n\\setlength{\\textwidth}{16cm}\\setlength{\\columnsep}{0.6cm}",
            "7.7cm"),
}
INSTALL = {"pdflatex": "apt-get install -y texlive-latex-base texlive-latex-recommended",
           "pdftoppm": "apt-get install -y poppler-utils"}
#: --matrix: the architectures, the formula sets (their --option flags) and the flag variants
ARCHS = ("seed", "llama-3.1-8b", "deepseek-v3", "nemotron-h-56b-base-8k")
SETS = {"parameters": (), "memory seed": ("memory_model=seed",), "memory korthikanti": ("memory_model=korthikanti",),
        "memory pytorch": ("memory_model=pytorch",), "inference": ("mode=inference",)}
FLAGS = {"plain": (), "expand": ("--expand",), "expand sizes": ("--expand", "--with-sizes")}
_OVERFULL = re.compile(r"Overfull \\hbox \(([0-9.]+)pt too wide\) (?:in \w+ at lines (\d+)--(\d+)|"
                       r"detected at line (\d+))")


def preamble(cls: str) -> str:
    return CLASSES[cls][0] + "\n\\usepackage{amsmath}\n\\begin{document}\n"


def _has_line_width() -> bool:
    """Whether this checkout's ``llm-sweep formulas`` takes ``--line-width`` (older ones print one column)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return cli_main(["formulas", "--line-width", "345pt", "--format", "latex"]) == 0
        except SystemExit:
            return False


def formulas_latex(arch: str, options: tuple[str, ...], flags: tuple[str, ...], line_width: str | None) -> str | None:
    """The LaTeX ``llm-sweep formulas`` prints for these arguments; None when it refuses them."""
    argv = ["formulas", "--arch", arch, "--format", "latex", *flags]
    argv += [x for o in options for x in ("--option", o)]
    argv += ["--line-width", line_width] if line_width else []
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(argv)
    return out.getvalue() if rc == 0 else None


def pdflatex(folder: Path, stem: str, doc: str) -> tuple[int, str, str]:
    """Compile ``doc`` as ``folder/stem.tex``: (exit status, its stdout, the log)."""
    (folder / f"{stem}.tex").write_text(doc, encoding="utf-8")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{stem}.tex"], cwd=folder,
                       capture_output=True, text=True)
    log = (folder / f"{stem}.log").read_text(encoding="utf-8", errors="replace")
    return r.returncode, r.stdout, log


def overfull(log: str) -> list[tuple[float, int, int]]:
    """Every overfull box of a pdflatex log: (pt too wide, first line, last line of the source)."""
    return [(float(m.group(1)), int(m.group(2) or m.group(4)), int(m.group(3) or m.group(4)))
            for m in _OVERFULL.finditer(log)]


def section(title: str) -> str:
    """A section heading that cannot overflow itself (a preset's name is one long word)."""
    return f"\\section*{{{SMALL}{title}}}\n"


SMALL = "\\normalsize\\raggedright "


def worst_by_section(doc: str, log: str) -> dict[str, float]:
    """The widest overfull box of each ``section(TITLE)`` of ``doc`` (0 where everything fits)."""
    lines = doc.splitlines()
    head = "\\section*{" + SMALL
    starts = [(i, line[len(head):-1]) for i, line in enumerate(lines, 1) if line.startswith(head)]
    worst = {title: 0.0 for _, title in starts}
    for pt, lo, hi in overfull(log):
        for k, (start, title) in enumerate(starts):
            end = starts[k + 1][0] - 1 if k + 1 < len(starts) else len(lines)
            if lo <= end and hi >= start:
                worst[title] = max(worst[title], pt)
    return worst


def matrix(archs: list[str], classes: list[str], out: Path) -> int:
    """Print the worst overfull pt of each (architecture, set, flags) in each class; 1 if pdflatex fails."""
    width = _has_line_width()
    if not width:
        print("render_latex: this checkout's formulas has no --line-width: every class gets the one-column output")
    results: dict[tuple[str, str, str], dict[str, float | None]] = {}
    vboxes: dict[tuple[str, str], int] = {}  # pages or columns overfilled (a table or row taller than a page)
    started = time.perf_counter()
    for cls in classes:
        for arch in archs:
            parts = [preamble(cls)]
            for set_name, options in SETS.items():
                for flag_name, flags in FLAGS.items():
                    tex = formulas_latex(arch, options, flags, CLASSES[cls][1] if width else None)
                    results.setdefault((arch, set_name, flag_name), {})[cls] = None if tex is None else 0.0
                    if tex is not None:
                        parts.append(section(f"{arch} {set_name} {flag_name}") + tex)
            doc = "".join(parts) + "\\end{document}\n"
            stem = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{arch}-{cls}")
            rc, stdout, log = pdflatex(out, stem, doc)
            if rc != 0:
                print(stdout[-3000:], file=sys.stderr)
                print(f"render_latex: pdflatex failed on {out / stem}.tex (exit {rc})", file=sys.stderr)
                return 1
            vboxes[(arch, cls)] = log.count("Overfull \\vbox")
            for title, pt in worst_by_section(doc, log).items():
                set_name, flag_name = next((s, f) for s in SETS for f in FLAGS if title == f"{arch} {s} {f}")
                results[(arch, set_name, flag_name)][cls] = pt
    print(f"worst overfull \\hbox in pt ({time.perf_counter() - started:.0f} s; documents in {out})")
    print(f"{'architecture':<24}{'set':<20}{'flags':<14}" + "".join(f"{c:>11}" for c in classes))
    for (arch, set_name, flag_name), by_class in results.items():
        cells = "".join(f"{'-' if by_class.get(c) is None else format(by_class[c], '.1f'):>11}" for c in classes)
        print(f"{arch:<24}{set_name:<20}{flag_name:<14}{cells}")
    print("\noverfull \\vbox (a table or a row taller than the page): " + ", ".join(
        f"{arch} {cls} {n}" for (arch, cls), n in vboxes.items()))
    print("\nworst per set (over architectures and flags)")
    for set_name in SETS:
        cells = []
        for c in classes:
            pts = [r[c] for (_, s, _), r in results.items() if s == set_name and r.get(c) is not None]
            cells.append(f"{max(pts, default=0.0):>11.1f}")
        print(f"{set_name:<58}" + "".join(cells))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", help="formula set, family or preset (default: seed; with "
                                                        "--matrix repeatable, default: " + ", ".join(ARCHS) + ")")
    parser.add_argument("--out", help="output folder (default: a new temporary folder)")
    parser.add_argument("--expand", action="store_true", help="pass --expand to llm-sweep formulas")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="pass --option NAME=VALUE to llm-sweep formulas (repeatable)")
    parser.add_argument("--class", dest="classes", action="append", choices=CLASSES,
                        help="document class (default: onecolumn; with --matrix repeatable, default: all)")
    parser.add_argument("--matrix", action="store_true", help="measure every set x flags x class (see above)")
    parser.add_argument("--page", type=int, default=1, help="page to render (default: 1)")
    parser.add_argument("--all-pages", action="store_true", help="render every page")
    parser.add_argument("--dpi", type=int, default=110, help="PNG resolution (default: 110)")
    args = parser.parse_args(argv)

    missing = [tool for tool in INSTALL if shutil.which(tool) is None and (tool == "pdflatex" or not args.matrix)]
    if missing:
        for tool in missing:
            print(f"render_latex: {tool} not found; install it with: {INSTALL[tool]}", file=sys.stderr)
        return 2
    out = Path(args.out or tempfile.mkdtemp(prefix="render_latex_"))
    out.mkdir(parents=True, exist_ok=True)
    if args.matrix:
        return matrix(args.arch or list(ARCHS), args.classes or list(CLASSES), out)

    arch, cls = (args.arch or ["seed"])[-1], (args.classes or ["onecolumn"])[-1]
    width = CLASSES[cls][1] if _has_line_width() else None
    tex_text = formulas_latex(arch, tuple(args.option), ("--expand",) if args.expand else (), width)
    if tex_text is None:
        print(f"render_latex: llm-sweep formulas --arch {arch} failed", file=sys.stderr)
        return 2
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", arch)
    rc, stdout, log_text = pdflatex(out, stem, preamble(cls) + tex_text + "\\end{document}\n")
    tex, log, pdf = out / f"{stem}.tex", out / f"{stem}.log", out / f"{stem}.pdf"
    if rc != 0:
        print(stdout[-3000:], file=sys.stderr)
        print(f"render_latex: pdflatex failed (exit {rc}); see {log}", file=sys.stderr)
        return 1
    pages = [] if args.all_pages else ["-f", str(args.page), "-l", str(args.page)]
    subprocess.run(["pdftoppm", "-png", "-r", str(args.dpi), *pages, pdf.name, stem], cwd=out, check=True)
    pngs = sorted(out.glob(f"{stem}-*.png"))
    print(f"tex: {tex}\npdf: {pdf}\nlog: {log}")
    for png in pngs:
        print(f"png: {png}")
    lines = [line for line in log_text.splitlines() if line.startswith("Overfull")]
    print(f"{len(lines)} overfull box(es)" + "".join(f"\n  {line}" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
