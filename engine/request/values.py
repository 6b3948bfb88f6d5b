"""A spec's values, checked: input values, axes (lists and ranges), names; each error a ``SpecError``.

``Errors`` builds the errors of one spec file (its path, the key, what would be valid); the parsers here read
``[fixed]`` values and ``[axes]`` coordinates (at numpy speed, strictly increasing, within host memory) and
name lists (``quantities``, ``headline``), with a "did you mean" for a misspelt name.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from engine.errors import SpecError, check_keys
from engine.options import did_you_mean
from engine.runtime import plan
from engine.symbolic.expr import ExpressionError, parse_number
from engine.symbolic.symbols import SYMBOLS

RANGE_KEYS = ("start", "stop", "step", "scale")
SCALES = ("linear", "log2")
INT64_MAX = 2**63 - 1


class Errors:
    """The errors of one spec: ``err(key, message)`` is a ``SpecError`` naming the spec's file and the key."""

    def __init__(self, source: str):
        self.source = source

    def __call__(self, key: str, message: str) -> SpecError:
        return SpecError(self.source, key, message)


def kind_of(value: Any) -> str:
    """``a boolean``, ``a string``, ...: what a value is, for an error."""
    return {bool: "a boolean", str: "a string", int: "an integer", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__
    )


def check_symbol(err: Errors, key: str, name: str) -> None:
    """Refuse ``name`` unless it is an input symbol (naming the valid ones and the closest)."""
    if name not in SYMBOLS:
        also = "; [axes] also takes a structural option or gpu as a categorical dim" if key.startswith("axes.") else ""
        raise err(key, f"unknown input {name!r}{did_you_mean(name, SYMBOLS)}; valid inputs: {', '.join(SYMBOLS)}{also}")


def check_names(err: Errors, key: str, value: Any, valid: list[str], what: str,
                absent: Mapping[str, str] | None = None) -> list[str]:
    """A non-empty list of distinct names from ``valid`` (an unknown one named with the closest valid one)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise err(key, f"must be a non-empty list of names; valid {what}: {', '.join(valid)}")
    for v in value:
        if absent and v in absent:
            raise err(key, f"{v} is not available: {absent[v]}")
        if v not in valid:
            raise err(key, f"unknown name {v!r}{did_you_mean(v, valid)}; valid {what}: {', '.join(valid)}")
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise err(key, f"lists {', '.join(dup)} more than once")
    return list(value)


def input_value(err: Errors, key: str, name: str, value: Any) -> int | float:
    """One value of input ``name``: a positive integer (or positive number for real inputs).

    A string is read as a constant expression by the safe parser (``"2**15"``, ``"80 * 1024"``).
    """
    info = SYMBOLS[name]
    if isinstance(value, str):
        try:
            number = parse_number(value)
        except ExpressionError as exc:
            raise err(key, f"cannot read {value!r}: {exc}") from None
        if number.is_Integer:
            value = int(number)
        elif info.integer:
            raise err(key, f"{name} must be {info.kind}, got {value!r} = {number}")
        else:
            value = float(number)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise err(key, f"must be {info.kind}, got {kind_of(value)} {value!r}")
    if info.integer:
        if isinstance(value, float) or value != int(value):
            raise err(key, f"{name} must be {info.kind}, got {value!r}")
        if value < info.minimum:
            raise err(key, f"{name} must be {info.kind}, got {value}")
        if value > INT64_MAX:
            raise err(key, f"{name} = {value} does not fit in int64 (at most {INT64_MAX})")
        return int(value)
    if not math.isfinite(value) or value <= 0:
        raise err(key, f"{name} must be a positive finite number, got {value!r}")
    return value


MAX_AXIS_LENGTH = 10**9


def axis_values(err: Errors, key: str, name: str, value: Any) -> np.ndarray:
    """An axis's coordinates: validated in O(n) with numpy, strictly increasing, checked against memory."""
    info = SYMBOLS[name]
    if isinstance(value, list):
        if not value:
            raise err(key, "is empty; an axis needs at least one value")
        _check_length(err, key, len(value))
        values = _list_values(err, key, name, value)
    elif isinstance(value, Mapping):
        values = _range(err, key, name, value)
    else:
        raise err(key, "must be a list of values or a range table {start, stop, step} / "
                       f"{{start, stop, scale = \"log2\"}}, got {kind_of(value)}")
    if values.size == 0:
        raise err(key, "is empty; an axis needs at least one value")
    steps = np.diff(values)
    if np.any(steps <= 0):
        fixed = np.unique(values)
        shown = ", ".join(_show_number(v) for v in fixed[:12]) + (f", ... ({fixed.size:,} values)"
                                                                   if fixed.size > 12 else "")
        if fixed.size < values.size:
            ordered = np.sort(values)
            repeated = np.unique(ordered[1:][np.diff(ordered) == 0])
            what = f"repeats {', '.join(_show_number(v) for v in repeated[:5])}{', ...' if repeated.size > 5 else ''}"
        else:
            what = "is not in increasing order"
        raise err(key, f"{what}; coordinates must be distinct and strictly increasing: [{shown}]")
    return values.astype(np.int64 if info.integer else np.float64, copy=False)


def _show_number(v) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 2**63 else repr(float(v))


def _check_length(err: Errors, key: str, count: int) -> None:
    """Refuse an axis whose coordinates alone would not fit comfortably in host memory."""
    if count > MAX_AXIS_LENGTH:
        raise err(key, f"has {count:,} values; an axis holds at most {MAX_AXIS_LENGTH:,}")
    need, available = 8 * count, plan.available_host_memory()  # read at call time (tests patch the host's memory)
    if need > available // 8:
        raise err(key, f"has {count:,} values ({need / 2**30:.1f} GiB of coordinates) and {available / 2**30:.1f} "
                       "GiB of host memory are available; an axis may take an eighth of it")


def _list_values(err: Errors, key: str, name: str, value: list) -> np.ndarray:
    """A TOML list as a 1-D array, every element checked at numpy speed (bad elements named)."""
    info = SYMBOLS[name]
    want = info.kind
    bad = next((i for i, v in enumerate(value) if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    if bad is not None:
        v = value[bad]
        raise err(key, f"must be {want}, got {kind_of(v)} {v!r}{_at(bad, value)}")
    if info.integer:
        floats = next((i for i, v in enumerate(value) if isinstance(v, float)), None)
        if floats is not None:
            raise err(key, f"{name} must be {want}, got {value[floats]!r}{_at(floats, value)}")
        try:
            values = np.array(value, dtype=np.int64)
        except OverflowError:
            big = next(i for i, v in enumerate(value) if v > INT64_MAX)
            raise err(key, f"{name} = {value[big]} does not fit in int64 (at most {INT64_MAX}){_at(big, value)}") \
                from None
        low = np.flatnonzero(values < info.minimum)
    else:
        values = np.array(value, dtype=np.float64)
        low = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if low.size:
        i = int(low[0])
        raise err(key, f"{name} must be {want}, got {value[i]!r}{_at(i, value)}")
    return values


def _at(index: int, values: list) -> str:
    """Where a bad element sits, for lists long enough that it is not obvious."""
    return f" (element {index} of {len(values):,})" if len(values) > 10 else ""


def _range(err: Errors, key: str, name: str, table: Mapping[str, Any]) -> np.ndarray:
    check_keys(err.source, key, table, RANGE_KEYS, "range key", "keys")
    for k in ("start", "stop"):
        if k not in table:
            raise err(key, f"a range needs start and stop; missing {k}")
    start = input_value(err, f"{key}.start", name, table["start"])
    stop = input_value(err, f"{key}.stop", name, table["stop"])
    if stop < start:
        raise err(key, f"stop ({stop}) is below start ({start}); the axis would be empty")
    scale = table.get("scale", "linear")
    if scale not in SCALES:
        raise err(f"{key}.scale", f"must be one of {', '.join(SCALES)}, got {scale!r}")
    integer = SYMBOLS[name].integer
    if scale == "log2":
        if "step" in table:
            raise err(f"{key}.step", "a log2 range doubles from start to stop; it takes no step")
        values, v = [], start
        while v <= stop:
            values.append(v)
            v = v * 2
        return np.array(values, dtype=np.int64 if integer else np.float64)
    step = input_value(err, f"{key}.step", name, table.get("step", 1))
    count = (stop - start) // step + 1 if integer else int(math.floor((stop - start) / step + 1e-9)) + 1
    _check_length(err, key, count)
    if integer:
        return start + step * np.arange(count, dtype=np.int64)
    return start + step * np.arange(count, dtype=np.float64)
