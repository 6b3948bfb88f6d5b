"""What every output format shares: symbols in LaTeX or text, the expanded line, defaults, options, and
the ``Printer`` a format subclasses (pure sympy)."""

from __future__ import annotations

from typing import Iterable, Optional

import sympy

from engine.symbolic.formulas import FormulaSet, Quantity
from engine.options import show_value
from engine.symbolic.symbols import SYMBOLS

#: one row of a document: a quantity and its expression over the inputs (the expanded line), or None
Row = tuple[Quantity, Optional[sympy.Expr]]
#: one row of the table at a model's sizes: the quantity, its value as shown, whether it still needs inputs
SizeRow = tuple[Quantity, str, bool]


def _latex_names(formulas: FormulaSet | None = None) -> dict[sympy.Symbol, str]:
    names = {info.symbol: info.latex for info in SYMBOLS.values()}
    if formulas is not None:
        names.update({q.symbol: q.latex for q in formulas.quantities.values()})
    return names


def latex_of(expr: sympy.Expr, formulas: FormulaSet | None = None,
             names: dict[sympy.Symbol, str] | None = None) -> str:
    """LaTeX of ``expr`` with registry (and quantity) symbols in their LaTeX spelling.

    Parameters
    ----------
    expr : sympy.Expr
        The expression.
    formulas : FormulaSet, optional
        Its quantities' symbols are spelled as their ``latex`` too.
    names : dict, optional
        More symbol -> LaTeX spellings (these win).

    Returns
    -------
    str
        sympy's LaTeX, products with ``\\cdot``.
    """
    return sympy.latex(expr, symbol_names={**_latex_names(formulas), **(names or {})}, mul_symbol="dot")


def text_of(expr: sympy.Expr) -> str:
    """Plain-text (Python syntax) form of ``expr``.

    Parameters
    ----------
    expr : sympy.Expr
        The expression.

    Returns
    -------
    str
        ``sympy.sstr(expr)``.
    """
    return sympy.sstr(expr)


def multiplied_out(expr: sympy.Expr, collect: str | None) -> sympy.Expr:
    """The expanded line: ``expr`` multiplied out, collected by the input ``collect`` if given."""
    expanded = sympy.expand(expr)
    return sympy.collect(expanded, SYMBOLS[collect].symbol) if collect else expanded


def identically_zero(formulas: FormulaSet) -> set[str]:
    """The quantities that are 0 for this model whatever the inputs (inlined, their definition is 0).

    The router and experts of a dense model, the master copy without mixed precision, ...

    Parameters
    ----------
    formulas : FormulaSet
        The formula set.

    Returns
    -------
    set of str
        Their names.
    """
    return {name for name in formulas.quantities if formulas.expanded(name) == 0}


def defaults_line(formulas: FormulaSet, name: str, latex: bool) -> str:
    """What input ``name`` is when not given: its default (``latex``: in math) or ``required``."""
    if name not in formulas.defaults:
        return "required"
    value = formulas.defaults[name]
    if latex:
        return f"${latex_of(value, formulas)}$ if not given"
    return f"{text_of(value)} if not given"


def options_line(formulas: FormulaSet) -> str:
    """The structural options the set was built with, ``k = v, ...`` (``none`` without any)."""
    if not formulas.options:
        return "none"
    return ", ".join(f"{k} = {show_value(v, quote=False)}" for k, v in formulas.options.items())


class Printer:
    """One output format of ``format_formulas``: a subclass overrides the parts that differ (the document,
    the sizes line, the table at those sizes), as sympy's printers override ``_print_<Class>``.

    Parameters
    ----------
    formulas : FormulaSet
        The formula set being printed.
    line_width : float
        The width in pt a line must fit (LaTeX only; the other formats ignore it).
    """

    #: quantities the document leaves out (and whose sizes it does not list)
    omitted: frozenset[str] = frozenset()

    def __init__(self, formulas: FormulaSet, line_width: float):
        self.formulas, self.line_width = formulas, line_width

    def document(self, rows: list[Row], used: list[str], collect: str | None) -> str:
        """The quantities (``rows``, in order) with their definitions and sources, then the symbol table of the
        inputs ``used``; ``collect``: the input the expanded lines are collected by."""
        raise NotImplementedError

    def sizes(self, values: dict[str, int]) -> str:
        """The line that lists a named model's sizes under the document."""
        raise NotImplementedError

    def needs(self, missing: Iterable[str]) -> str:
        """What a value at the sizes still needs: the inputs ``missing``."""
        return "needs " + ", ".join(missing)

    def at_sizes(self, rows: list[SizeRow]) -> str:
        """The table of each quantity's value at the sizes."""
        raise NotImplementedError

    @staticmethod
    def multiplied_out(rows: list[Row], collect: str | None) -> list[Row]:
        """``rows`` with each expanded line multiplied out (and collected by ``collect``)."""
        return [(q, None if e is None else multiplied_out(e, collect)) for q, e in rows]
