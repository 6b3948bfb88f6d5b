"""The attributes of a cube and of its variables (CF: units, long_name, formulas, sources), the fill values of
points that hold no result, and the request record that identifies a run.

Every writer reads them here: the in-memory dataset (``dataset.build_dataset``), the streamed netCDF file
(``dataset.StreamWriter``), the zarr store (``zarr_store``), a query's answer (``sinks.query``) and the
virtual cube (``engine.backend``), so a variable carries the same attributes whichever of them made it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Mapping

import numpy as np
import xarray as xr

from engine import __version__
from engine.request.numerics import FLOAT_FILL, INT64_FILL
from engine.request.spec import SweepRequest
from engine.runtime.categories import by_combination, combinations, conditions, label_attrs
from engine.symbolic.formulas import FormulaSet
from engine.options import show_value
from engine.symbolic.printing import latex_of, text_of
from engine.symbolic.symbols import SYMBOLS

FLOAT64_EXACT_LIMIT = 2**53
FLOAT32_EXACT_LIMIT = 2**24

# Fill values: what a grid point holds where the ``valid`` mask is 0 (an invalid architecture) or a
# query result where nothing is feasible. Floats hold NaN. int64 variables hold netCDF's default
# int64 fill (netCDF4.default_fillvals["i8"], -2**63 + 2) on disk: every quantity is >= 0, so it is
# never a real result. On disk such variables carry ``_FillValue``, so ``xr.open_dataset`` masks
# them: it decodes the int64 variable to float64 with NaN at the fill (open with
# ``mask_and_scale=False`` to get the exact int64 values and the fill). In memory
# (``run(request).dataset``, a query's ``run(request, QuerySink(q)).dataset``) the same variables are float64 with NaN
# there, with ``encoding = {"dtype": int64, "_FillValue": INT64_FILL}``, so the in-memory and the
# read-back datasets hold the same values and ``ds.x.where(...)``, ``.max()`` and plots skip
# invalid points in both; ``write_netcdf`` writes them back as int64 with the fill. float64 holds
# integers exactly below 2**53 only: past it the variable carries a ``precision_note``. With natural
# dims a quantity holds the fill only where a condition over its own dims fails (``compile.py``); every
# quantity of a cube with ``valid`` still carries ``_FillValue``, and where a value is a fill is read from
# the value itself (``holds_result``), whatever the dims of ``valid``.


def coordinate_attrs(name: str) -> dict[str, str]:
    """Attributes of the coordinate variable of swept input ``name`` (or of a categorical dim)."""
    if name not in SYMBOLS:
        return label_attrs(name)
    info = SYMBOLS[name]
    return {"units": info.units, "long_name": info.meaning, "latex": info.latex}


BY_COMBINATION = ("formula", "formula_expanded", "formula_latex", "source", "note")


def quantity_attrs(request: SweepRequest, formulas: FormulaSet, q: str) -> dict[str, str]:
    """Attributes of quantity ``q``: units, long_name, formula (text, expanded, LaTeX), source.

    Of a categorical cube: the first combination's, and ``<attr>_by_combination`` lines where
    combinations differ (module docstring).
    """
    if request.categories:
        return _combined([_quantity_attrs(r, r.formulas, q) for _, r in combinations(request)], request,
                         BY_COMBINATION)
    return _quantity_attrs(request, formulas, q)


def _combined(each: list[dict], request: SweepRequest, keys) -> dict:
    """The first combination's attrs, with one ``<key>_by_combination`` line per combination where they differ."""
    attrs = dict(each[0])
    for key in keys:
        values = [a.get(key, "") for a in each]
        if len(set(values)) > 1:
            attrs[f"{key}_by_combination"] = by_combination(request, values)
    return attrs


def _quantity_attrs(request: SweepRequest, formulas: FormulaSet, q: str) -> dict[str, str]:
    quantity = formulas.quantities[q]
    given = set(request.axes) | set(request.fixed)
    attrs = {
        "units": quantity.units,
        "long_name": quantity.long_name,
        "formula": f"{q} = {text_of(quantity.definition)}",
        "formula_expanded": f"{q} = {text_of(formulas.resolve(q, given))}",
        "formula_latex": f"{quantity.latex} = {latex_of(quantity.definition, formulas)}",
        "source": quantity.source,
    }
    if quantity.note:
        attrs["note"] = quantity.note
    return attrs


def valid_attrs(request: SweepRequest, formulas: FormulaSet) -> dict[str, str]:
    """Attributes of the ``valid`` mask: which conditions it checks (of every combination of a categorical cube)."""
    plain = [r for _, r in combinations(request)] if request.categories else [request]
    each = [[message for message, _ in conditions(r, formulas if r is request else None)] for r in plain]
    attrs = {"units": "1", "long_name": "1 where the grid point is a valid architecture, else 0 (other variables "
                                        "hold their fill value there: NaN once read)",
             "flag_values": np.array([0, 1], dtype=np.uint8), "flag_meanings": "invalid valid",
             "conditions": "; ".join(dict.fromkeys(m for messages in each for m in messages))}
    if len({tuple(m) for m in each}) > 1:
        attrs["conditions_by_combination"] = by_combination(request, ["; ".join(m) or "none" for m in each])
    return attrs


def variable_attrs(request: SweepRequest, formulas: FormulaSet, name: str) -> dict[str, str]:
    return valid_attrs(request, formulas) if name == "valid" else quantity_attrs(request, formulas, name)


def fill_value(dtype) -> int | float:
    """The fill value of a variable of ``dtype``: NaN for floats, ``INT64_FILL`` for integers."""
    return FLOAT_FILL if np.dtype(dtype).kind == "f" else INT64_FILL


def holds_result(values: np.ndarray) -> np.ndarray:
    """Where ``values`` hold a result rather than the fill value (NaN, ``INT64_FILL``): a boolean array."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return ~np.isnan(values)
    if values.dtype.kind == "i":
        return values != INT64_FILL
    return np.ones(values.shape, dtype=bool)


def largest(values: np.ndarray, valid: np.ndarray | None = None) -> float:
    """max |value| over the points that hold a result (valid, not NaN, not the fill); 0 if none."""
    values = np.asarray(values)
    if valid is None and values.size:  # the streamed writer's case: two reductions, no temporaries
        fast = _largest_unmasked(values)
        if fast is not None:
            return fast
    keep = holds_result(values)
    if valid is not None:
        keep = keep & np.broadcast_to(np.asarray(valid, bool), values.shape)
    if not keep.any():
        return 0
    picked = values[keep]
    return int(np.max(np.abs(picked))) if values.dtype.kind in "iu" else float(np.max(np.abs(picked)))


def _largest_unmasked(values: np.ndarray) -> int | float | None:
    """max |value| from the block's max and min when no fill can be among them: every integer block whose
    minimum is above INT64_FILL, every float block (NaN-skipping reductions); None otherwise."""
    if values.dtype.kind in "iu":
        low = values.min()
        if values.dtype.kind == "i" and low <= INT64_FILL:
            return None
        return max(abs(int(low)), abs(int(values.max())))
    if values.dtype.kind == "f":
        high = np.fmax.reduce(values, axis=None)  # fmax skips NaN (the float fill)
        if np.isnan(high):
            return 0
        return float(max(abs(high), abs(np.fmin.reduce(values, axis=None))))
    return None


def precision_note(max_abs: int | float, dtype=np.int64) -> dict[str, str]:
    """The attribute that says a variable's values passed the range where its numbers are exact integers.

    int64: values reach 2^53 -- exact in the file, but float64 (xarray's masked decoding, numpy
    conversions) rounds them. float64: values reach 2^53 -- past it float64 is not exact for
    integers, so counts are rounded to 53 significant bits. float32 (numerics ``fast``): values
    reach 2^24, where float32 integers stop being exact.
    """
    kind, size = np.dtype(dtype).kind, np.dtype(dtype).itemsize
    if kind == "f" and size == 4:
        if max_abs >= FLOAT32_EXACT_LIMIT:
            return {"precision_note": "values reach 2^24: float32 (numerics 'fast') holds integers exactly only "
                                      "below 2^24, so these values are rounded to 24 significant bits (about 7 "
                                      "digits); use numerics 'exact'"}
        return {}
    if max_abs >= FLOAT64_EXACT_LIMIT:
        if kind == "f":
            return {"precision_note": "values reach 2^53: float64 holds integers exactly only below 2^53, so these "
                                      "values are rounded to 53 significant bits (about 16 digits)"}
        return {"precision_note": "values reach 2^53: exact as int64, but converting them to float64 rounds them "
                                  "(xr.open_dataset does where the variable has a _FillValue: open with "
                                  "mask_and_scale=False for the exact values)"}
    return {}


def dataset_attrs(request: SweepRequest, formulas: FormulaSet) -> dict[str, str]:
    """Global attributes: engine version, formula set, options, fixed values, the spec."""
    attrs = {
        "title": f"llm-sweep: formula set {request.formula_set!r} ({formulas.title})",
        "Conventions": "CF-1.11",
        "engine": "llm-sweep",
        "engine_version": __version__,
        "formula_set": request.formula_set,
        "arch": request.arch or "",
        "formula_source": formulas.source,
        "options": _mapping_text(request.options),
        "fixed": _mapping_text(request.fixed),
        "numerics": request.numerics.name,
        "spec_source": request.source,
        "spec": request.text or _mapping_text({"axes": ", ".join(request.axes)}),
        "history": f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} created by llm-sweep {__version__}",
    }
    if request.categories:
        attrs["categories"] = ", ".join(request.categories)
        fixed = [_mapping_text(r.fixed) for _, r in combinations(request)]
        if len(set(fixed)) > 1:  # a gpu dim: each device's fields
            attrs["fixed_by_combination"] = by_combination(request, fixed)
    if request.description:
        attrs["description"] = request.description
    attrs["request"] = json.dumps(request.record or request_record(request))
    if request.part is not None:
        attrs["part_index"], attrs["part_count"], attrs["part_axis_length"] = request.part
    return attrs


def masked_variable(dims, values: np.ndarray, attrs: dict, valid: np.ndarray | None) -> xr.Variable:
    """A data variable whose points outside ``valid`` hold the fill (``valid`` None: no mask).

    Floats hold NaN there and are written with ``_FillValue`` NaN. Integers are held as float64
    with NaN (what ``xr.open_dataset`` gives for an integer variable with a ``_FillValue``) and
    written back as int64 with ``_FillValue`` ``INT64_FILL``.
    """
    if valid is None:
        return xr.Variable(dims, values, attrs=attrs)
    if values.dtype.kind in "bU":
        return _masked_labels(dims, values, attrs, np.asarray(valid, bool))
    if values.dtype.kind == "f":
        values = np.where(valid, values, np.asarray(FLOAT_FILL, values.dtype))
        return xr.Variable(dims, values, attrs=attrs, encoding={"_FillValue": FLOAT_FILL})
    as_float = np.where(valid & (values != INT64_FILL), values.astype(np.float64), np.nan)
    return xr.Variable(dims, as_float, attrs=attrs, encoding={"dtype": values.dtype, "_FillValue": INT64_FILL})


def _masked_labels(dims, values: np.ndarray, attrs: dict, valid: np.ndarray) -> xr.Variable:
    """Labels of a categorical dim (``best_recompute``) with a fill where ``valid`` is 0: strings hold "" there;
    booleans stay booleans when every cell is valid, else they are 0/1 held as float64 with NaN (int8 on disk,
    ``_FillValue`` -127), like an integer with a fill."""
    if values.dtype.kind == "U":
        return xr.Variable(dims, np.where(valid, values, ""), attrs=attrs)
    if valid.all():
        return xr.Variable(dims, values, attrs=attrs)
    as_float = np.where(valid, values.astype(np.float64), np.nan)
    attrs = {**attrs, "flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "false true"}
    return xr.Variable(dims, as_float, attrs=attrs, encoding={"dtype": np.dtype(np.int8), "_FillValue": np.int8(-127)})


def _mapping_text(values: Mapping) -> str:
    return ", ".join(f"{k} = {show_value(v)}" for k, v in values.items())


def request_record(request: SweepRequest) -> dict:
    """What identifies a request: parts combine only when these agree (JSON-ready, in order).

    Axes are recorded by length and a digest of their coordinates, so a record stays small
    for any axis length.
    """
    record = {
        "engine_version": __version__,
        "formula_set": request.formula_set,
        "arch": request.arch or "",
        "options": _mapping_text(request.options),
        "fixed": _mapping_text(request.fixed),
        "quantities": list(request.quantities),
        "numerics": request.numerics.name,
        "axes": {name: {"length": int(len(v)), "dtype": str(v.dtype), "sha256": _digest(v)}
                 for name, v in request.axes.items()},
    }
    if request.categories:
        record["categories"] = list(request.categories)
    return record


def _digest(values: np.ndarray) -> str:
    """A short digest of coordinates: of their bytes, or of the labels' text (strings)."""
    data = json.dumps(values.tolist()).encode() if values.dtype.kind == "U" else np.ascontiguousarray(values).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


