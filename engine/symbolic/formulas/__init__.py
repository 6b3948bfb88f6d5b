"""Formula sets (pure sympy; no JAX, no I/O).

``build_formula_set(name, options)`` returns a ``FormulaSet``; ``FORMULA_SETS`` lists the names.
"""

from __future__ import annotations

from typing import Any, Callable

from engine.options import check_value
from engine.symbolic.formulas import seed
from engine.options import OptionSpec
from engine.symbolic.formulas.base import FormulaSet, Quantity, exact_number, quantity_symbol

_BUILDERS: dict[str, tuple[Callable[[dict], FormulaSet], dict[str, OptionSpec]]] = {
    "seed": (seed.build, seed.OPTIONS),
}

FORMULA_SETS: tuple[str, ...] = tuple(_BUILDERS)


def options_for(name: str) -> dict[str, OptionSpec]:
    """The structural options formula set ``name`` accepts."""
    _check_name(name)
    return _BUILDERS[name][1]


def build_formula_set(name: str, options: dict[str, Any] | None = None) -> FormulaSet:
    """Build formula set ``name`` with structural ``options``.

    Args:
        name: a name in ``FORMULA_SETS`` (``seed``, a model type such as ``llama``, a memory model, ...).
        options: structural options of that set (``engine.options``), by name; defaults for the rest.

    Returns:
        The ``FormulaSet``: one ``Quantity`` per expression, with units and sources.

    Raises:
        ValueError: unknown set, unknown option or invalid option value; the message names the
            bad value and the valid choices.
    """
    _check_name(name)
    builder, specs = _BUILDERS[name]
    options = dict(options or {})
    for key, value in options.items():
        check_value(specs, key, value, f" for formula set {name!r}")
    return builder(options)


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        raise ValueError(f"unknown formula set {name!r}; valid formula sets: {', '.join(_BUILDERS)}")



__all__ = [
    "FORMULA_SETS",
    "FormulaSet",
    "OptionSpec",
    "Quantity",
    "build_formula_set",
    "exact_number",
    "options_for",
    "quantity_symbol",
]
