"""The named sub-quantities of one LaTeX output (``SubQuantities``), so that every line of it fits."""

from __future__ import annotations

import re

import sympy

from engine.symbolic.formulas import FormulaSet
from engine.symbolic.printing.common import latex_of
from engine.symbolic.printing.linebreak import align_width

#: The letter of the named sub-quantities of a LaTeX output: kappa_1, kappa_2, ... in order of appearance.
SUB_LETTER = r"\kappa"
_PLACEHOLDER = re.compile(r"\\kappa_\{@(\d+)@\}")  # a sub-quantity before it has its number


class SubQuantities:
    """The named sub-quantities of one LaTeX output, so that every line of it can be broken to fit.

    Each ``Piecewise`` inside a formula becomes a symbol (``SUB_LETTER`` with a number) defined in an
    equation of its own, right after the first equation that uses it; a formula that is itself a
    ``Piecewise`` keeps its ``cases``. A case's value or condition too wide for its ``cases`` block (a
    ``cases`` block is never cut) becomes a sub-quantity too, and so does a sum in a denominator wider than half a line
    (a fraction is never cut between its numerator and denominator). The same expression gets the
    same name everywhere. Numbers follow the order in which the names first appear in the output.
    """

    def __init__(self, formulas: FormulaSet, first: float, rest: float):
        self.formulas, self.first, self.rest = formulas, first, rest
        self.definitions: dict[sympy.Symbol, sympy.Expr] = {}  # in the order they were named
        self.kinds: dict[sympy.Symbol, str] = {}  # what each is: cases, a case's value or condition, a denominator
        self._by_definition: dict[sympy.Expr, sympy.Symbol] = {}
        self.numbers: dict[sympy.Symbol, int] = {}  # the printed number, once printed
        self.parents: dict[sympy.Symbol, object] = {}  # the quantity whose equations first print it
        self.pending: list[sympy.Symbol] = []  # printed in an equation, not yet defined
        self.parent = None  # the quantity being printed

    def hoist(self, expr: sympy.Expr, multiply_out=None) -> sympy.Expr:
        """``expr`` with each ``Piecewise`` in it named (a top-level one stays, its parts named);
        ``multiply_out`` is applied to each case (the expanded line)."""
        if isinstance(expr, sympy.Piecewise):
            return self._cases(expr, multiply_out)
        return self._replace(expr, multiply_out)

    def _replace(self, expr, multiply_out):
        if not isinstance(expr, sympy.Basic) or not expr.has(sympy.Piecewise):
            return expr
        if isinstance(expr, sympy.Piecewise):
            return self._name(self._cases(expr, multiply_out), "Cases")
        return expr.func(*(self._replace(arg, multiply_out) for arg in expr.args))

    def _cases(self, piecewise: sympy.Piecewise, multiply_out) -> sympy.Piecewise:
        """``piecewise`` with what is inside it named and each case narrow enough for its ``cases`` block."""
        cases = []
        for value, condition in piecewise.args:
            value = self._replace(value, multiply_out)
            cases.append([multiply_out(value) if multiply_out else value, self._replace(condition, multiply_out)])
        kinds = ("A case's value", "A condition")
        while self._width(sympy.Piecewise(*cases, evaluate=False)) > self.first:
            wide = [(c, k) for c in cases for k in (0, 1) if not (c[k].is_Atom or c[k] in self.definitions)]
            if not wide:
                break  # every value and condition a symbol already
            case, k = max(wide, key=lambda ck: self._width(ck[0][ck[1]]))
            case[k] = self._name(case[k], kinds[k])
        return sympy.Piecewise(*(tuple(c) for c in cases), evaluate=False)

    def name_as(self, definition: sympy.Expr, symbol: sympy.Symbol) -> None:
        """Name ``definition`` ``symbol`` (a quantity's) wherever it appears later, unless it has a name."""
        self._by_definition.setdefault(definition, symbol)

    def _name(self, definition: sympy.Expr, kind: str) -> sympy.Symbol:
        """The symbol of ``definition`` (a new one unless it has one); ``kind`` says what it is, for the reader."""
        if definition not in self._by_definition:
            symbol = sympy.Symbol(f"_sub_quantity_{len(self.definitions)}")
            self.definitions[symbol], self.kinds[symbol] = definition, kind
            self._by_definition[definition] = symbol
        return self._by_definition[definition]

    def _width(self, expr: sympy.Expr) -> float:
        return align_width(_PLACEHOLDER.sub(r"\\kappa_{\1}", self._placeholders(expr)))

    def _placeholders(self, expr: sympy.Expr) -> str:
        names = {s: rf"{SUB_LETTER}_{{@{k}@}}" for k, s in enumerate(self.definitions)}
        return latex_of(expr, self.formulas, names)

    def _narrow(self, expr):
        """``expr`` with each sum in a denominator wider than half a line named (a fraction's denominator is never
        cut; a product's is split by ``break_latex``)."""
        if not isinstance(expr, sympy.Basic) or expr.is_Atom or not expr.has(sympy.Pow):
            return expr
        if isinstance(expr, sympy.Piecewise):
            return sympy.Piecewise(*((self._narrow(v), c) for v, c in expr.args), evaluate=False)
        args = [self._narrow(arg) for arg in expr.args]
        if expr.is_Pow and expr.exp.is_negative and args[0].is_Add and self._width(args[0]) > self.rest / 2:
            args[0] = self._name(args[0], "A denominator")
        return expr.func(*args)

    def latex(self, expr: sympy.Expr) -> str:
        """LaTeX of ``expr``: a sub-quantity seen for the first time gets the next number and waits in ``pending``."""
        expr = self._narrow(expr)
        symbols = list(self.definitions)

        def number(match: re.Match) -> str:
            symbol = symbols[int(match.group(1))]
            if symbol not in self.numbers:
                self.numbers[symbol] = len(self.numbers) + 1
                self.parents[symbol] = self.parent
                self.pending.append(symbol)
            return self.symbol_latex(symbol)

        return _PLACEHOLDER.sub(number, self._placeholders(expr))

    def symbol_latex(self, symbol: sympy.Symbol) -> str:
        return f"{SUB_LETTER}_{{{self.numbers[symbol]}}}"
