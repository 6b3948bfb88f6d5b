"""Human units for axis labels, and budgets read in a variable's units.

An axis label is the variable's short name and, in brackets, the unit its values are drawn in:
``d_model``, ``mem_peak [GiB]``, ``params_total [B]``, ``seq_len [k tokens]``, ``step_time [ms]``.
The unit is chosen from the variable's ``units`` attribute, its name and the magnitude of its
largest finite value (``largest``):

    units "bytes"              KiB, MiB, GiB, TiB (binary; plain "bytes" below 1 KiB)
    units "bytes/s"            the same per second (GiB/s, ...)
    units "s"                  s, ms (below 1 s), us (below 1 ms)
    names params_*, units "1"  k, M, B, T parameters (decimal; no unit below 1,000)
    token counts, units "1"    tokens; k, M, B, T tokens from 10,000 on (decimal: 1 k = 1,000)
    names with "flops"         FLOP, GFLOP, TFLOP, PFLOP, EFLOP
    any other "1"              no unit (d_model, batch, step_mfu)
    any other units            as written (``[1/s]``)

Token counts are ``seq_len``, ``tokens``, ``kv_window``, ``sliding_window``, ``n_positions`` and
names that end in ``_tokens`` or start with ``tokens_`` (``tokens_per_s``: k tokens/s).

Drawn values are divided by ``Scale.factor``; a budget line is divided by the same factor.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from engine.request.query import parse_constraint
from engine.runtime.plan import _UNITS

TOKEN_NAMES = frozenset({"seq_len", "tokens", "kv_window", "sliding_window", "n_positions"})
_BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
_COUNTS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))
_FLOPS = ((1e18, "EFLOP"), (1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP"))
_SECONDS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"))
TOKENS_K_FROM = 10_000  # token counts below this are drawn as they are


@dataclass(frozen=True)
class Scale:
    """How a variable is drawn: values divided by ``factor``, labelled ``name [unit]``."""

    name: str
    unit: str = ""
    factor: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.name} [{self.unit}]" if self.unit else self.name

    def show(self, value: float) -> str:
        """``value`` (in the variable's own units) as text in this scale, e.g. ``80 GiB``."""
        number = f"{value / self.factor:.4g}"
        return f"{number} {self.unit}" if self.unit else number


def is_token_count(name: str) -> bool:
    return name in TOKEN_NAMES or name.endswith("_tokens") or name.startswith("tokens_")


def largest(values) -> float:
    """max |value| over the finite values (0 when there is none, or when they are not numbers)."""
    array = np.asarray(values)
    if array.dtype.kind not in "iuf" or array.size == 0:
        return 0.0
    finite = np.abs(array[np.isfinite(array)]) if array.dtype.kind == "f" else np.abs(array)
    return float(finite.max()) if finite.size else 0.0


def _pick(table, magnitude: float, below: tuple[float, str]) -> tuple[float, str]:
    """The first (factor, unit) of ``table`` that ``magnitude`` reaches, else ``below``."""
    return next(((f, u) for f, u in table if magnitude >= f), below)


def scale_of(name: str, units: str | None, magnitude: float) -> Scale:
    """The drawing scale of variable ``name`` with CF ``units`` whose values reach ``magnitude``."""
    units = (units or "1").strip()
    if units in ("bytes", "bytes/s"):
        factor, unit = _pick(_BINARY, magnitude, (1, "bytes"))
        return Scale(name, unit + units[5:], factor)
    if units == "s":
        factor, unit = _pick(_SECONDS, magnitude, (1e-6, "us")) if magnitude else (1, "s")
        return Scale(name, unit, factor)
    if units in ("1", "1/s") and is_token_count(name):
        per = "/s" if units == "1/s" else ""
        if magnitude < TOKENS_K_FROM:
            return Scale(name, f"tokens{per}")
        factor, prefix = _pick(_COUNTS, magnitude, (1, ""))
        return Scale(name, f"{prefix} tokens{per}", factor)
    if units == "1" and name.startswith("params"):
        factor, prefix = _pick(_COUNTS, magnitude, (1, ""))
        return Scale(name, prefix, factor)
    if units == "1" and "flops" in name:
        factor, unit = _pick(_FLOPS, magnitude, (1, "FLOP"))
        return Scale(name, unit, factor)
    return Scale(name, "" if units == "1" else units)


def scale_for(da, name: str | None = None) -> Scale:
    """The drawing scale of DataArray ``da`` (its name and ``units`` attribute, its largest value)."""
    return scale_of(str(name or da.name), da.attrs.get("units"), largest(da.values))


_BYTE_UNIT = re.compile(r"(.*?)\s*([A-Za-z]+)")  # as engine.runtime.query reads a threshold


def byte_unit(text: str) -> str | None:
    """The byte unit ``text`` ends with (``80GiB`` -> ``GiB``), else None (``1e9``, ``0.5``)."""
    m = _BYTE_UNIT.fullmatch(text.strip())
    return m.group(2) if m and m.group(2).lower() in _UNITS else None


def parse_budget(budget, name: str, units: str | None) -> float | int:
    """A budget for variable ``name`` in the variable's own units (ValueError saying what is valid).

    A number is taken as it is. Text is read like the value of a query's constraint
    (``engine.request.query.parse_constraint``): a size with a byte unit (``80GiB``, ``512 MB``) or
    a constant (``0.5``, ``2**30*80``). A variable in bytes needs a byte unit (a bare ``80`` would
    be 80 bytes); a variable in other units refuses one.
    """
    if isinstance(budget, (int, float, np.integer, np.floating)) and not isinstance(budget, bool):
        if not math.isfinite(float(budget)):
            raise ValueError(f"budget {budget!r} must be finite")
        return budget
    text = str(budget).strip()
    if not text:
        raise ValueError("the budget is empty; give a limit such as 80GiB")
    unit = byte_unit(text)
    if units == "bytes" and unit is None:
        if re.search(r"[A-Za-z]\s*$", text):  # an unknown unit: the reader names the valid ones
            _read(name, text)
        raise ValueError(f"budget {text!r} has no unit: {name} is in bytes, give a size such as 80GiB "
                         "(units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    if units != "bytes" and unit is not None:
        raise ValueError(f"budget {text!r} is a size in bytes, but {name} is in {units or '1'!r}: give a plain "
                         "number in those units")
    return _read(name, text)


def _read(name: str, text: str) -> float | int:
    """``text`` read as the value of the constraint ``name <= text`` (the query reader)."""
    try:
        return parse_constraint(f"{name} <= {text}").value
    except ValueError as exc:
        raise ValueError(f"cannot read budget {text!r}: {str(exc).split(': ', 1)[-1]}") from None
