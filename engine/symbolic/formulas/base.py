"""Quantities and formula sets: named sympy expressions with units and sources (pure sympy).

A ``Quantity`` is defined by one expression over registered input symbols and the symbols of
other quantities of the same set (``params_layer = params_attention + params_ffn + 2
params_layernorm``). Totals are sums of components, so the printed formula and the computed
number can never disagree: the kernel evaluates the same definitions, expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

import sympy

from engine.symbolic.symbols import SYMBOLS


_MEMO_SIZE = 4096  # entries per formula set before its memo starts over (point evaluations add one each)


def replaced(expr: sympy.Basic, mapping: Mapping[sympy.Basic, sympy.Basic]) -> sympy.Basic:
    """``expr.xreplace(mapping)``, remembered across formula sets: the combinations of a categorical cube build
    the same expressions with the same values (a ``Max`` rebuilt costs sympy tens of milliseconds)."""
    free = expr.free_symbols
    items = tuple(sorted(((k, v) for k, v in mapping.items() if k in free), key=lambda kv: kv[0].name))
    return _replaced(expr, items) if items else expr


@lru_cache(maxsize=8192)
def _replaced(expr: sympy.Basic, items: tuple) -> sympy.Basic:
    return expr.xreplace(dict(items))


def exact_number(value: Any) -> sympy.Expr:
    """A user's number as an exact sympy number (a float is read as the decimal it prints as)."""
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    if isinstance(value, float):
        return sympy.Rational(repr(value))
    return sympy.sympify(value)


def quantity_symbol(name: str, integer: bool = True) -> sympy.Symbol:
    """The sympy symbol that stands for quantity ``name`` inside other definitions."""
    if integer:
        return sympy.Symbol(name, integer=True, nonnegative=True)
    return sympy.Symbol(name, real=True, positive=True)


@dataclass(frozen=True)
class Quantity:
    """One named output of a formula set.

    Parameters
    ----------
    name : str
        Variable name (spec, netCDF, CLI), e.g. ``params_ffn``.
    definition : sympy.Expr
        Expression over input symbols and other quantities' symbols (``quantity_symbol``).
    units : str
        ``"1"`` (counts, ratios), ``"bytes"``, ``"s"``, ...
    long_name : str
        One line for tables and the netCDF ``long_name``.
    latex : str
        LaTeX for the left-hand side, e.g. ``P_{\\mathrm{ffn}}``.
    source : str
        Where the formula comes from (paper + equation, or the seed article's section).
    integer : bool, optional
        True when the value is an exact integer for integer inputs (evaluated in int64).
    note : str, optional
        Caveats (errata, assumptions); empty when none.
    """

    name: str
    definition: sympy.Expr
    units: str
    long_name: str
    latex: str
    source: str
    integer: bool = True
    note: str = ""

    @property
    def symbol(self) -> sympy.Symbol:
        """The symbol that stands for this quantity inside other definitions."""
        return quantity_symbol(self.name, self.integer)


@dataclass(frozen=True)
class Validity:
    """A condition every valid input point satisfies (e.g. n_kv_heads divides n_heads).

    Parameters
    ----------
    message : str
        What must hold, in words, for error messages.
    condition : sympy.Basic
        A sympy boolean over input symbols.
    unless_given : str or None, optional
        The condition applies only when this input is neither fixed nor swept (``head_dim`` given
        explicitly makes ``n_heads | d_model`` unnecessary).
    only_if_given : str or None, optional
        The condition applies only when this input is fixed or swept (a training step's layout rules
        hold once its ``global_batch`` is given).
    """

    message: str
    condition: sympy.Basic
    unless_given: str | None = None
    only_if_given: str | None = None


@dataclass
class FormulaSet:
    """An ordered collection of quantities with defaults for optional inputs.

    Parameters
    ----------
    name : str
        The set's name (``"seed"``, a model type).
    title : str
        One line describing it.
    source : str
        The document the set reproduces.
    options : dict
        The structural options this instance was built with.
    quantities : dict
        Name -> ``Quantity``, in printing order.
    defaults : dict, optional
        Input symbol name -> expression used when the input is neither fixed nor swept (e.g.
        ``d_ff -> 4 d_model``).
    validity : list of Validity, optional
        Conditions every valid input point satisfies.
    absent : dict, optional
        Quantities this set leaves out on purpose -> why (errors that ask for one say so).
    """

    name: str
    title: str
    source: str
    options: dict[str, Any]
    quantities: dict[str, Quantity]
    defaults: dict[str, sympy.Expr] = field(default_factory=dict)
    validity: list[Validity] = field(default_factory=list)
    # quantities this set leaves out on purpose, with the reason (e.g. a memory model that cannot
    # express a layer kind): errors that ask for one say why it is absent
    absent: dict[str, str] = field(default_factory=dict)
    # memo of ``inline`` and ``apply`` results; not part of the set's value (eq, repr), and
    # fresh in every instance (``dataclasses.replace`` builds a new, empty one)
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._memo = {}

    # -- memo ------------------------------------------------------------------------------

    def _memoized(self, key: Any, compute) -> sympy.Expr:
        """``compute()``, remembered under ``key`` while ``quantities`` and ``defaults`` stay the same.

        The memo is stamped with the current contents of both dicts (compared item by item,
        identical objects first), so reassigning a field or editing a dict in place starts a
        new memo instead of answering from a stale one.
        """
        stamp = (tuple(self.quantities.items()), tuple(self.defaults.items()))
        memo = self.__dict__.get("_memo")
        if memo is None or memo.get("stamp") != stamp or len(memo) > _MEMO_SIZE:
            memo = self._memo = {"stamp": stamp}  # a new dict: a shallow copy's memo is never cleared under it
        try:
            return memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable part of the key (a value the caller passed): no memo
            return compute()
        value = memo[key] = compute()
        return value

    @staticmethod
    def _given_key(given: Mapping[str, Any] | set[str]) -> tuple:
        """A hashable key for ``given``: its names, and for a mapping its values with their types."""
        if isinstance(given, Mapping):
            return ("values", frozenset((k, type(v), v) for k, v in given.items()))
        return ("names", frozenset(given))

    # -- expression access ---------------------------------------------------------------

    def expanded(self, name: str) -> sympy.Expr:
        """Quantity ``name`` as an expression over input symbols only (quantities inlined).

        Parameters
        ----------
        name : str
            A quantity of the set.

        Returns
        -------
        sympy.Expr
            Its definition with every quantity symbol replaced by its definition; no defaults applied.

        Raises
        ------
        KeyError
            ``name`` is not a quantity of the set.
        """
        return self.inline(self.quantities[name].definition)

    def inline(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with every quantity symbol replaced by its definition, recursively.

        Parameters
        ----------
        expr : sympy.Expr
            An expression over inputs and the set's quantities.

        Returns
        -------
        sympy.Expr
            The same expression over inputs only.

        Raises
        ------
        ValueError
            A quantity is defined in terms of itself.
        """
        return self._memoized(("inline", expr), lambda: self._inline(expr))

    def _inline(self, expr: sympy.Expr) -> sympy.Expr:
        """Bottom-up: each quantity inlined once (memoized by name), then put into its parents whole, so a
        ``Max`` near the top is rebuilt once, not once per level of the quantities under it."""
        by_symbol = {q.symbol: q.name for q in self.quantities.values()}

        def inlined(name: str, path: tuple) -> sympy.Expr:
            if name in path:
                raise ValueError("a quantity is defined in terms of itself")
            definition = self.quantities[name].definition
            return self._memoized(("inline quantity", name), lambda: replaced(definition, {
                s: inlined(by_symbol[s], path + (name,)) for s in definition.free_symbols if s in by_symbol}))

        return replaced(expr, {s: inlined(by_symbol[s], ()) for s in expr.free_symbols if s in by_symbol})

    def resolve(self, name: str, given: Mapping[str, Any] | set[str]) -> sympy.Expr:
        """Quantity ``name`` with defaults applied to every input symbol not in ``given``.

        Parameters
        ----------
        name : str
            A quantity of the set.
        given : Mapping or set
            The names of inputs the user fixed or swept. A mapping's values are substituted too (fixed
            values); names mapped to ``None`` stay symbolic.

        Returns
        -------
        sympy.Expr
            The quantity over the inputs in ``given`` (and those without a default).
        """
        return self.apply(self.expanded(name), given)

    def apply(self, expr: sympy.Expr, given: Mapping[str, Any] | set[str]) -> sympy.Expr:
        """Apply defaults (to inputs not in ``given``) and given values to an input expression.

        Parameters
        ----------
        expr : sympy.Expr
            An expression over inputs (quantities inlined).
        given : Mapping or set
            Names of the inputs fixed or swept; a mapping's values are substituted too (``None`` stays
            symbolic).

        Returns
        -------
        sympy.Expr
            ``expr`` with defaults followed (``d_ff -> 4 d_model``) and values substituted.
        """
        try:
            key = ("apply", expr, self._given_key(given))
        except TypeError:  # an unhashable value: compute without the memo
            return self._apply(expr, given)
        return self._memoized(key, lambda: self._apply(expr, given))

    def _apply(self, expr: sympy.Expr, given: Mapping[str, Any] | set[str]) -> sympy.Expr:
        given_names = set(given)
        for _ in range(len(self.defaults) + 1):
            pending = {
                s: self.defaults[s.name]
                for s in expr.free_symbols
                if s.name in self.defaults and s.name not in given_names
            }
            if not pending:
                break
            expr = replaced(expr, pending)
        if isinstance(given, Mapping):
            values = {SYMBOLS[k].symbol: exact_number(v) for k, v in given.items() if v is not None}
            expr = replaced(expr, values)
        return expr

    def inputs(self, name: str) -> list[str]:
        """Names of the input symbols quantity ``name`` depends on (before defaults).

        Returns
        -------
        list of str
            Input names, in ``SYMBOLS`` order (a ``KeyError`` for a name that is not a quantity).
        """
        names = {s.name for s in self.expanded(name).free_symbols}
        return [n for n in SYMBOLS if n in names]

    def required_inputs(self, names: list[str], given: set[str]) -> dict[str, list[str]]:
        """Inputs that have no default and are not given.

        First from the symbols alone (every input a definition names, defaults followed, no expression
        built): when that leaves nothing missing, nothing is. Otherwise the expressions are resolved, since
        given values can remove inputs (a branch of a Piecewise).

        Parameters
        ----------
        names : list of str
            Quantities of the set.
        given : set of str
            The inputs fixed or swept.

        Returns
        -------
        dict
            Input name -> the quantities of ``names`` that need it, in ``SYMBOLS`` order; empty when none.
        """
        if not any(self._possibly_needed(q, set(given)) for q in names):
            return {}
        missing: dict[str, list[str]] = {}
        for q in names:
            for s in self.resolve(q, given).free_symbols:
                if s.name not in given:
                    missing.setdefault(s.name, []).append(q)
        return {k: missing[k] for k in SYMBOLS if k in missing}

    def _possibly_needed(self, name: str, given: set[str]) -> set[str]:
        """Inputs of quantity ``name`` that are neither given nor defaulted, by symbol names only (a superset of
        what ``resolve`` leaves: substitution can only remove symbols)."""
        return self.reaches(self.quantities[name].definition, given) - set(given)

    def reaches(self, expr: sympy.Basic, given: Mapping[str, Any] | set[str]) -> set[str]:
        """Names of the inputs ``expr`` reaches through the dependency graph, no expression built: quantities are
        followed into their definitions, inputs not in ``given`` into their defaults; given inputs and inputs
        with no default end a path. A superset of the free symbols of ``apply(inline(expr), given)`` (applying
        values can only remove symbols), found in microseconds where resolving can take seconds."""
        by_symbol = {q.symbol: q for q in self.quantities.values()}
        given = set(given)
        seen, todo, inputs = set(), [expr], set()
        while todo:
            for s in todo.pop().free_symbols:
                if s in seen:
                    continue
                seen.add(s)
                if s in by_symbol:
                    todo.append(by_symbol[s].definition)
                elif s.name not in given and s.name in self.defaults:
                    todo.append(sympy.sympify(self.defaults[s.name]))
                else:
                    inputs.add(s.name)
        return inputs

    def evaluate(self, name: str, values: Mapping[str, Any]) -> int | float:
        """Value of ``name`` at ``values`` as a Python number (defaults fill what is not given).

        Parameters
        ----------
        name : str
            A quantity of the set.
        values : Mapping
            Input name -> value (an int, float or exact sympy number).

        Returns
        -------
        int or float
            An ``int`` when the exact value is an integer (exact at any size), else a ``float``; both go
            straight into ``json.dumps``. ``evaluate_exact`` keeps the exact sympy value.

        Raises
        ------
        ValueError
            An input the quantity needs has neither a value nor a default.
        KeyError
            ``name`` is not a quantity of the set.
        """
        value = self.evaluate_exact(name, values)
        if value.free_symbols:
            missing = ", ".join(sorted(s.name for s in value.free_symbols))
            raise ValueError(f"{name} needs a value for {missing}")
        return int(value) if value.is_Integer else float(value)

    def evaluate_exact(self, name: str, values: Mapping[str, Any]) -> sympy.Expr:
        """Exact sympy value of ``name`` at ``values``.

        Parameters
        ----------
        name : str
            A quantity of the set.
        values : Mapping
            Input name -> value.

        Returns
        -------
        sympy.Expr
            An Integer, Rational or exact expression; symbols remain for inputs with neither a value
            nor a default.
        """
        return self.resolve(name, values)

    def conditions(self, given: Mapping[str, Any] | set[str]) -> list[tuple[str, sympy.Basic]]:
        """The validity conditions that apply for ``given`` inputs, defaults and values applied.

        Parameters
        ----------
        given : Mapping or set
            The inputs fixed or swept (a mapping: with their values).

        Returns
        -------
        list of tuple
            (message, condition) of each condition not already true.
        """
        out = []
        for v in self.validity:
            if v.unless_given is not None and v.unless_given in set(given):
                continue
            if v.only_if_given is not None and v.only_if_given not in set(given):
                continue
            cond = self.apply(v.condition, given)
            if cond is sympy.true:
                continue
            out.append((v.message, cond))
        return out

    def violations(self, values: Mapping[str, Any]) -> list[str]:
        """Messages of the conditions that fixed ``values`` break.

        Parameters
        ----------
        values : Mapping
            Input name -> value, every input a condition uses given.

        Returns
        -------
        list of str
            The broken conditions' messages; empty when ``values`` is a valid point.
        """
        return [msg for msg, cond in self.conditions(values) if cond is sympy.false]
