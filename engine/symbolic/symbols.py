"""The symbol registry: every input a formula may depend on, spelled once.

Each entry names a sympy symbol (with its assumptions), its LaTeX, its unit and its meaning.
The same name is used in specs (``[axes]`` / ``[fixed]``), on the command line, as a netCDF
dimension or coordinate, and in printed formulas. The records are data, ``data/symbols.json``
(shipped with the package); this module imports only ``engine.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from engine.errors import read_package_json


@dataclass(frozen=True)
class SymbolInfo:
    """One registered input symbol.

    Attributes:
        name: the one spelling used everywhere (code, spec, CLI, netCDF).
        symbol: the sympy symbol, with assumptions (``positive``, ``integer``).
        latex: how it prints in formulas.
        units: UDUNITS-2 units (netCDF ``units``): ``"1"`` for counts, FLOPs and ratios, ``"bytes"``, ``"bit"``,
            ``"s"``, ``"1/s"`` (FLOP/s, tokens/s), ``"bytes/s"``; tests/test_units.py parses every one.
        meaning: one line for symbol tables and netCDF ``long_name``.
        integer: True when only integers are valid values.
        minimum: the smallest valid integer value: 1 for sizes, 0 for counts that may be absent
            (layers of a kind, shared experts, dense layers before the first MoE layer).
    """

    name: str
    symbol: sympy.Symbol
    latex: str
    units: str
    meaning: str
    integer: bool
    minimum: int = 1

    @property
    def kind(self) -> str:
        """What a valid value is, in words: "a positive integer", "a non-negative integer", "a positive number"."""
        if not self.integer:
            return "a positive number"
        return "a non-negative integer" if self.minimum == 0 else "a positive integer"


def _entry(name: str, latex: str, units: str, meaning: str, integer: bool = True, minimum: int = 1) -> SymbolInfo:
    if integer and minimum == 0:
        sym = sympy.Symbol(name, integer=True, nonnegative=True)
    elif integer:
        sym = sympy.Symbol(name, integer=True, positive=True)
    else:
        sym = sympy.Symbol(name, real=True, positive=True)
    return SymbolInfo(name, sym, latex, units, meaning, integer, minimum if integer else 1)


def _load(data: dict) -> tuple[SymbolInfo, ...]:
    """The registry's records from ``data/symbols.json`` (groups of ``{name, latex, units, meaning[, integer]
    [, minimum]}``), in the file's order."""
    return tuple(_entry(s["name"], s["latex"], s["units"], s["meaning"], s.get("integer", True), s.get("minimum", 1))
                 for group in data["groups"] for s in group["symbols"])


_ENTRIES = _load(read_package_json(__package__, "data/symbols.json", "the symbol registry"))

SYMBOLS: dict[str, SymbolInfo] = {e.name: e for e in _ENTRIES}


def symbol(name: str) -> sympy.Symbol:
    """The sympy symbol registered under ``name`` (KeyError naming the valid ones otherwise)."""
    try:
        return SYMBOLS[name].symbol
    except KeyError:
        raise KeyError(f"unknown symbol {name!r}; known symbols: {', '.join(SYMBOLS)}") from None

