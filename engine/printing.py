"""Formulas as text, LaTeX or Markdown, with sources and a symbol table (pure sympy).

Every printed formula is the quantity's own definition (the one the kernel evaluates), so a
printed formula and a computed number cannot disagree.
"""

from __future__ import annotations

import re

import sympy

from .formulas import FormulaSet
from .symbols import SYMBOLS

FORMATS = ("text", "latex", "markdown")


def _latex_names(formulas: FormulaSet | None = None) -> dict[sympy.Symbol, str]:
    names = {info.symbol: info.latex for info in SYMBOLS.values()}
    if formulas is not None:
        names.update({q.symbol: q.latex for q in formulas.quantities.values()})
    return names


def latex_of(expr: sympy.Expr, formulas: FormulaSet | None = None) -> str:
    """LaTeX of ``expr`` with registry (and quantity) symbols in their LaTeX spelling."""
    return sympy.latex(expr, symbol_names=_latex_names(formulas), mul_symbol="dot")


def text_of(expr: sympy.Expr) -> str:
    """Plain-text (Python syntax) form of ``expr``."""
    return sympy.sstr(expr)


def format_formulas(formulas: FormulaSet, fmt: str = "text", expand: bool = False,
                    substitute: dict[str, sympy.Expr] | None = None, collect: str | None = None,
                    values: dict[str, int] | None = None) -> str:
    """Every quantity of ``formulas`` with its definition, source and a symbol table.

    Args:
        formulas: the formula set to print.
        fmt: one of ``FORMATS``.
        expand: also print each quantity over the inputs alone, defaults applied
            (``d_ff = 4 d_model``, quantities inlined) and multiplied out.
        substitute: input name -> expression put in its place everywhere (e.g. ``d_ff`` ->
            ``4 d_model``); implies the expanded line.
        collect: an input name to collect the expanded line by (implies the expanded line).
        values: sizes of a named model, listed under the symbol table.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    subs = {SYMBOLS[k].symbol: v for k, v in (substitute or {}).items()}
    rows = []
    for q in formulas.quantities.values():
        expanded = None
        if expand or subs or collect:
            inner = formulas.inline(q.definition).xreplace(subs)
            expanded = sympy.expand(formulas.apply(inner, {k for k in (substitute or {})}))
            if collect:
                expanded = sympy.collect(expanded, SYMBOLS[collect].symbol)
        rows.append((q.__class__(**{**q.__dict__, "definition": q.definition.xreplace(subs)}) if subs else q,
                     expanded))
    used = sorted(
        {s.name for q in formulas.quantities.values() for s in formulas.expanded(q.name).free_symbols},
        key=list(SYMBOLS).index,
    )
    text = {"text": _text, "latex": _latex, "markdown": _markdown}[fmt](formulas, rows, used)
    if values:
        listed = ", ".join(f"{k} = {v}" for k, v in values.items())
        if fmt == "latex":
            text += _tex_comment(f"values: {listed}") + "\n"
        else:
            prefix = {"text": "Values: ", "markdown": "\nValues: "}[fmt]
            text += f"{prefix}{listed}\n"
    return text


def _defaults_line(formulas: FormulaSet, name: str, style: str) -> str:
    if name not in formulas.defaults:
        return "required"
    value = formulas.defaults[name]
    if style == "latex":
        return f"${latex_of(value, formulas)}$ if not given"
    return f"{text_of(value)} if not given"


def _text(formulas: FormulaSet, rows, used) -> str:
    out = [f"Formula set {formulas.name!r}: {formulas.title}", f"Source: {formulas.source}",
           f"Options: {_options(formulas)}", ""]
    for q, expanded in rows:
        out.append(f"{q.name} [{q.units}]  {q.long_name}")
        out.append(f"  = {text_of(q.definition)}")
        if expanded is not None and expanded != q.definition:
            out.append(f"  = {text_of(expanded)}")
        out.append(f"  source: {q.source}")
        if q.note:
            out.append(f"  note: {q.note}")
    out += ["", "Symbols:"]
    width = max(len(n) for n in used)
    for name in used:
        info = SYMBOLS[name]
        out.append(f"  {name:<{width}}  [{info.units}]  {info.meaning}; {_defaults_line(formulas, name, 'text')}")
    return "\n".join(out) + "\n"


#: The symbol table's columns (symbol, meaning, units) as fractions of ``\linewidth``; each column
#: also loses its two ``\tabcolsep`` paddings, so the table is exactly ``\linewidth`` wide.
TABLE_COLUMNS = (0.18, 0.70, 0.12)


def _table_spec() -> str:
    cols = "".join(rf"p{{\dimexpr {f:g}\linewidth-2\tabcolsep\relax}}" for f in TABLE_COLUMNS)
    return "{" + cols + "}"


def _latex(formulas: FormulaSet, rows, used) -> str:
    out = [_tex_comment(f"llm-sweep formulas: {formulas.name} -- {formulas.title}"),
           _tex_comment(f"source: {formulas.source}; options: {_options(formulas)}"),
           r"% needs \usepackage{amsmath} (align); otherwise plain LaTeX: \documentclass{article} compiles it",
           r"\begingroup\allowdisplaybreaks  % a long align may break across pages",
           r"\begin{align}"]
    for i, (q, expanded) in enumerate(rows):
        rhs = latex_of(q.definition, formulas)
        if expanded is not None and expanded != q.definition:
            rhs += r" \\" + "\n" + r"  &= " + latex_of(expanded, formulas)
        end = r" \\" if i < len(rows) - 1 else ""
        out.append(f"  {q.latex} &= {rhs}{end}  " + _tex_comment(f"{q.name}: {q.source}"))
    out.append(r"\end{align}\endgroup")
    out += ["", r"\noindent\begin{tabular}" + _table_spec(), r"  symbol & meaning & units \\ \hline"]
    for name in used:
        info = SYMBOLS[name]
        meaning = _tex_escape(info.meaning) + "; " + _defaults_line(formulas, name, "latex")
        out.append(rf"  ${info.latex}$ & \raggedright {meaning} & {_tex_escape(info.units)} \\")
    out += [r"\end{tabular}", "", r"\begin{description}\raggedright"]
    for q, _ in rows:
        note = f" Note: {_tex_escape(q.note)}." if q.note else ""
        out.append(rf"  \item[{{${q.latex}$}}] {_tex_escape(q.long_name)}. Source: {_tex_escape(q.source)}.{note}")
    out.append(r"\end{description}")
    return "\n".join(out) + "\n"


def _markdown(formulas: FormulaSet, rows, used) -> str:
    out = [f"## Formula set `{formulas.name}`: {formulas.title}", "", f"Source: {formulas.source}. "
           f"Options: {_options(formulas)}.", "", "| quantity | formula | units | source |", "|---|---|---|---|"]
    for q, expanded in rows:
        formula = f"${q.latex} = {latex_of(q.definition, formulas)}$"
        if expanded is not None and expanded != q.definition:
            formula += f" $= {latex_of(expanded, formulas)}$"
        source = q.source + (f" (note: {q.note})" if q.note else "")
        out.append(f"| `{q.name}` | {_md_escape(formula)} | {_md_escape(q.units)} | {_md_escape(source)} |")
    out += ["", "| symbol | name | meaning | units |", "|---|---|---|---|"]
    for name in used:
        info = SYMBOLS[name]
        meaning = f"{info.meaning}; {_defaults_line(formulas, name, 'latex')}"
        out.append(f"| ${info.latex}$ | `{name}` | {_md_escape(meaning)} | {_md_escape(info.units)} |")
    return "\n".join(out) + "\n"


def _options(formulas: FormulaSet) -> str:
    if not formulas.options:
        return "none"
    return ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in formulas.options.items())


# Text (not math) special characters and arrows, longest first so ``<->`` wins over ``<-``.
_TEX_TEXT = {
    "<-->": r"$\longleftrightarrow$", "<->": r"$\leftrightarrow$", "<=>": r"$\Leftrightarrow$",
    "-->": r"$\longrightarrow$", "<--": r"$\longleftarrow$", "->": r"$\rightarrow$", "<-": r"$\leftarrow$",
    "=>": r"$\Rightarrow$", "<=": r"$\leq$", ">=": r"$\geq$",
    "--": "-{}-",  # kept as two hyphens, not the en dash ligature
    "\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
    "{": r"\{", "}": r"\}", "^": r"\textasciicircum{}", "~": r"$\sim$", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}",
    # non-ASCII that OT1 fonts lack (or that pull in TS1 bitmap fonts): typeset from math fonts
    "§": r"$\S$", "×": r"$\times$", "→": r"$\rightarrow$", "←": r"$\leftarrow$", "↔": r"$\leftrightarrow$",
    "≈": r"$\approx$", "≤": r"$\leq$", "≥": r"$\geq$", "–": "--", "—": "---", "…": r"\dots{}", "µ": r"$\mu$",
    "\r\n": " ", "\n": " ", "\r": " ",
}
_TEX_TEXT_RE = re.compile("|".join(re.escape(k) for k in sorted(_TEX_TEXT, key=len, reverse=True)))


def _tex_escape(text: str) -> str:
    """``text`` as LaTeX text: special characters escaped, ASCII arrows as math arrows, one line.

    Safe under the default OT1 font encoding (where a raw ``<`` prints as an inverted exclamation
    mark) with no packages: every replacement is a LaTeX2e kernel command.
    """
    return _TEX_TEXT_RE.sub(lambda m: _TEX_TEXT[m.group(0)], str(text))


def _tex_comment(text: str) -> str:
    """``text`` as one LaTeX comment line: a newline in it would end the comment early."""
    return "% " + " ".join(str(text).splitlines())


def _md_escape(text: str) -> str:
    """``text`` for a Markdown table cell: ``|`` escaped, newlines (which would end the row) as spaces."""
    return " ".join(str(text).splitlines()).replace("|", r"\|")
