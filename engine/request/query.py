"""Queries as the request states them: ``make_query`` reads and checks the constraints, the objective and
the dims to reduce into a ``Query`` record; the device-side reduction that answers one is
``engine.runtime.query``.

Constraint syntax: ``QUANTITY OP VALUE[UNIT]`` with OP one of ``<= < >= > ==`` and an optional
byte unit (``80GiB``, ``500MB``), e.g. ``mem_peak <= 80 GiB``.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from engine.runtime.plan import _UNITS as _SIZE_UNITS

_FLOAT_MAX = float(np.finfo(np.float64).max)

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
_CONSTRAINT = re.compile(r"\s*([A-Za-z_]\w*)\s*(<=|>=|==|<|>)\s*(.+?)\s*$")


@dataclass(frozen=True)
class Constraint:
    quantity: str
    op: str
    value: float | int
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"{self.quantity} {self.op} {self.value}"


@dataclass(frozen=True)
class Query:
    """What to ask of a grid without shipping it: constraints, an objective, dims to reduce.

    Attributes
    ----------
    where : tuple of Constraint
        Every point kept satisfies all of them (``mem_peak <= 80GiB``).
    objective : str or None
        The quantity or axis made best (None: only count the points that satisfy ``where``).
    sense : str
        ``"max"`` or ``"min"``: the objective's sense.
    over : tuple of str
        The dims reduced; the answer spans the others.
    """

    where: tuple[Constraint, ...] = ()
    objective: str | None = None
    sense: str = "max"  # "max" or "min": the objective's sense
    over: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        cond = " and ".join(map(str, self.where)) or "no constraint"
        if self.objective:
            return f"{self.sense} of {self.objective} over {', '.join(self.over)} subject to {cond}"
        return f"points over {', '.join(self.over)} satisfying {cond}"


def parse_constraint(text: str) -> Constraint:
    """``"mem_peak <= 80GiB"`` -> Constraint (ValueError with the syntax otherwise)."""
    m = _CONSTRAINT.match(text or "")
    if not m:
        raise ValueError(f"cannot read constraint {text!r}; write QUANTITY OP VALUE, e.g. 'mem_peak <= 80GiB' "
                         f"(OP one of {', '.join(OPS)})")
    name, op, raw = m.groups()
    try:
        value = _threshold(raw)
    except ValueError as exc:
        raise ValueError(f"in constraint {text!r}: {exc}") from None
    return Constraint(name, op, value, " ".join(text.split()))


def _threshold(raw: str) -> float | int:
    """A constraint's value: a size with a byte unit (``80GiB``, ``1.5e3 MB``) or a constant
    expression (``2**30*80``, read by :func:`engine.symbolic.expr.parse_number`, never eval). Exact
    integers stay int; nan, inf and values beyond the float range are refused."""
    import sympy

    from engine.symbolic.expr import ExpressionError, parse_number

    unit = re.fullmatch(r"(.*?)\s*([A-Za-z]+)", raw)
    scale = 1
    if unit is not None and unit.group(2).lower() in _SIZE_UNITS and unit.group(2).lower() != "":
        number, scale = unit.group(1), _SIZE_UNITS[unit.group(2).lower()]
        if not number.strip():
            raise ValueError(f"cannot read {raw!r}: no number before the unit {unit.group(2)!r}")
    else:
        number = raw
    try:
        value = parse_number(number) * scale
    except ExpressionError as exc:
        raise ValueError(f"cannot read {raw!r} as a number or a size such as 80GiB "
                         f"(units: {', '.join(u for u in _SIZE_UNITS if u)}): {exc}") from None
    if abs(value) > sympy.Float(_FLOAT_MAX):
        raise ValueError(f"{raw!r} is too large for a threshold (at most about {_FLOAT_MAX:.3g})")
    if scale != 1:
        if value <= 0:
            raise ValueError(f"a size must be positive, got {raw!r}")
        return int(value)  # whole bytes, as parse_bytes reads a size
    return int(value) if value.is_Integer else float(value)


def make_query(where: Sequence[str] = (), maximize: str | None = None, minimize: str | None = None,
               over: Sequence[str] = (), quantities: Sequence[str] = (), axes: Sequence[str] = ()) -> Query:
    """A query, validated against the request's quantities and axes.

    Parameters
    ----------
    where : sequence of str
        Constraints, each ``QUANTITY OP VALUE`` (``"mem_peak <= 80GiB"``; OP one of ``<=``, ``<``, ``>=``,
        ``>``, ``==``; byte units allowed).
    maximize, minimize : str, optional
        The objective, a requested quantity or a swept axis (at most one of them).
    over : sequence of str
        The dims to reduce (swept axes).
    quantities, axes : sequence of str
        The request's quantities and axes, what the names are checked against.

    Returns
    -------
    Query

    Raises
    ------
    ValueError
        A constraint that does not read, an unknown quantity, objective or dim, both senses at once;
        the message names the fix.
    """
    if maximize and minimize:
        raise ValueError("give either maximize or minimize, not both")
    constraints = tuple(parse_constraint(w) for w in where)
    for c in constraints:
        if c.quantity not in quantities:
            raise ValueError(f"constraint on unknown quantity {c.quantity!r}; requested quantities: "
                             f"{', '.join(quantities)}")
    objective = maximize or minimize
    if objective is not None and objective not in quantities and objective not in axes:
        raise ValueError(f"objective {objective!r} is not a requested quantity or a swept axis; valid: "
                         f"{', '.join([*quantities, *axes])}")
    if objective in axes and objective not in (over or ()):
        raise ValueError(f"the objective {objective!r} is a swept axis: list it in over")
    if not over:
        raise ValueError(f"a query reduces at least one dim: give over = [...] from {', '.join(axes)}")
    for d in over:
        if d not in axes:
            raise ValueError(f"cannot reduce over {d!r}: not a swept axis; valid: {', '.join(axes)}")
    if len(set(over)) != len(over):
        raise ValueError("over lists a dim twice")
    if not constraints and objective is None:
        raise ValueError("a query needs a constraint (where) or an objective (maximize/minimize)")
    ordered = tuple(a for a in axes if a in over)
    return Query(constraints, objective, "min" if minimize else "max", ordered)
