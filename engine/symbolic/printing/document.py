"""``format_formulas``: a formula set as a document in one of the formats (``PRINTERS``)."""

from __future__ import annotations

import sympy

from engine.errors import did_you_mean
from engine.symbolic.formulas import FormulaSet
from engine.symbolic.memory.serving import NAMES
from engine.symbolic.printing.common import Printer, Row, SizeRow
from engine.symbolic.printing.latex import LatexPrinter
from engine.symbolic.printing.linewidth import LINE_WIDTH_PT
from engine.symbolic.printing.markdown import MarkdownPrinter
from engine.symbolic.printing.text import TextPrinter
from engine.symbolic.symbols import SYMBOLS

#: format name -> its printer; the names are ``engine.options.FORMATS`` (``formulas --format``), a test keeps
#: them equal
PRINTERS: dict[str, type[Printer]] = {"text": TextPrinter, "latex": LatexPrinter, "markdown": MarkdownPrinter}


def format_formulas(formulas: FormulaSet, fmt: str = "text", expand: bool = False,
                    substitute: dict[str, sympy.Expr] | None = None, collect: str | None = None,
                    values: dict[str, int] | None = None, with_sizes: bool = False,
                    line_width: float | None = None) -> str:
    """Every quantity of ``formulas`` with its definition, source and a symbol table.

    Parameters
    ----------
    formulas : FormulaSet
        The formula set to print.
    fmt : str, optional
        One of ``PRINTERS``: ``"text"``, ``"latex"`` or ``"markdown"``.
    expand : bool, optional
        Also print each quantity over the inputs alone, defaults applied (``d_ff = 4 d_model``,
        quantities inlined) and multiplied out.
    substitute : dict, optional
        Input name -> expression put in its place everywhere (e.g. ``d_ff`` -> ``4 d_model``); implies
        the expanded line.
    collect : str, optional
        An input name to collect the expanded line by (implies the expanded line).
    values : dict, optional
        Sizes of a named model, listed under the symbol table (visibly in LaTeX too).
    with_sizes : bool, optional
        With ``values``, also print each quantity evaluated at them.
    line_width : float, optional
        LaTeX only: the width in pt every line must fit (``parse_line_width``; default
        ``LINE_WIDTH_PT``, one column of ``article``). LaTeX also leaves out the quantities that are
        identically 0 for this model and names each ``Piecewise`` (``SubQuantities``).

    Returns
    -------
    str
        The document, ending with a newline.

    Raises
    ------
    ValueError
        An unknown ``fmt`` (the message lists the valid ones and the closest).
    """
    if fmt not in PRINTERS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(PRINTERS)}{did_you_mean(fmt, PRINTERS)}")
    printer = PRINTERS[fmt](formulas, LINE_WIDTH_PT if line_width is None else line_width)
    used = sorted(
        {s.name for q in formulas.quantities.values() for s in formulas.expanded(q.name).free_symbols},
        key=list(SYMBOLS).index,
    )
    text = printer.document(_rows(formulas, expand, substitute, collect, values), used, collect)
    if values:
        text += printer.sizes(values)
        if with_sizes:
            text += printer.at_sizes(_at_sizes(formulas, values, printer))
    return text


EXPANDED_OPS = 300
"""The largest expanded line printed, in sympy operations: the serving model's closed loop (tpot, ttft, the
throughputs) refers to its decode step and prefill several times and runs to thousands once inlined; those rows
print their definitions only."""


SERVING = frozenset(NAMES)
"""The serving quantities: in mode inference their definitions, which name their parts, stand alone."""


def _rows(formulas: FormulaSet, expand: bool, substitute: dict[str, sympy.Expr] | None, collect: str | None,
          values: dict[str, int] | None) -> list[Row]:
    """(quantity, its expression over the inputs before it is multiplied out, or None) of each quantity, with
    the substitutions made."""
    subs = {SYMBOLS[k].symbol: v for k, v in (substitute or {}).items()}
    rows = []
    for q in formulas.quantities.values():
        over_inputs = None
        if (expand or subs or collect) and not (formulas.options.get("mode") == "inference" and q.name in SERVING):
            inner = formulas.inline(q.definition).xreplace(subs)
            # inputs the model gives (its sizes) or the caller substitutes stay symbols; defaults fill only the rest
            over_inputs = formulas.apply(inner, set(values or {}) | set(substitute or {}))
            if over_inputs.count_ops() > EXPANDED_OPS:  # unreadable, and minutes to break into lines: the
                over_inputs = None                      # definition, which names its parts, stands alone
        rows.append((q.__class__(**{**q.__dict__, "definition": q.definition.xreplace(subs)}) if subs else q,
                     over_inputs))
    return rows


def _at_sizes(formulas: FormulaSet, values: dict[str, int], printer: Printer) -> list[SizeRow]:
    """Each quantity the document prints, evaluated at ``values`` (exact integers with separators); what still
    lacks an input says so (``Printer.needs``)."""
    rows = []
    for q in formulas.quantities.values():
        if q.name in printer.omitted:
            continue
        value = formulas.evaluate_exact(q.name, values)
        missing = sorted(s.name for s in value.free_symbols)
        if missing:
            shown = printer.needs(missing)
        elif value.is_Integer:
            shown = f"{int(value):,}"
        else:
            shown = f"{float(value):.6g}"
        rows.append((q, shown, bool(missing)))
    return rows
