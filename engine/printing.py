"""Formulas as text, LaTeX or Markdown, with sources and a symbol table (pure sympy).

Every printed formula is the quantity's own definition (the one the kernel evaluates), so a
printed formula and a computed number cannot disagree.
"""

from __future__ import annotations

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
        prefix = {"text": "Values: ", "latex": "% values: ", "markdown": "\nValues: "}[fmt]
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


def _latex(formulas: FormulaSet, rows, used) -> str:
    out = [f"% llm-sweep formulas: {formulas.name} -- {formulas.title}",
           f"% source: {formulas.source}; options: {_options(formulas)}",
           r"\begin{align}"]
    for i, (q, expanded) in enumerate(rows):
        rhs = latex_of(q.definition, formulas)
        if expanded is not None and expanded != q.definition:
            rhs += r" \\" + "\n" + r"  &= " + latex_of(expanded, formulas)
        end = r" \\" if i < len(rows) - 1 else ""
        out.append(f"  {q.latex} &= {rhs}{end}  % {q.name}: {q.source}")
    out.append(r"\end{align}")
    out += ["", r"\begin{tabular}{lll}", r"  symbol & meaning & units \\ \hline"]
    for name in used:
        info = SYMBOLS[name]
        meaning = _tex_escape(info.meaning) + "; " + _defaults_line(formulas, name, "latex")
        out.append(f"  ${info.latex}$ & {meaning} & {_tex_escape(info.units)} \\\\")
    out += [r"\end{tabular}", "", r"\begin{description}"]
    for q, _ in rows:
        note = f" Note: {_tex_escape(q.note)}." if q.note else ""
        out.append(rf"  \item[${q.latex}$] {_tex_escape(q.long_name)}. Source: {_tex_escape(q.source)}.{note}")
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
        out.append(f"| `{q.name}` | {formula} | {q.units} | {_md_escape(source)} |")
    out += ["", "| symbol | name | meaning | units |", "|---|---|---|---|"]
    for name in used:
        info = SYMBOLS[name]
        meaning = f"{info.meaning}; {_defaults_line(formulas, name, 'latex')}"
        out.append(f"| ${info.latex}$ | `{name}` | {_md_escape(meaning)} | {info.units} |")
    return "\n".join(out) + "\n"


def _options(formulas: FormulaSet) -> str:
    if not formulas.options:
        return "none"
    return ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in formulas.options.items())


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("^", r"\^{}"), ("~", r"$\sim$")):
        text = text.replace(a, b)
    return text


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|")
