"""Sweep results -> ``xarray.Dataset`` with CF attributes -> netCDF4, written atomically.

Layout: one dimension per swept input (named after the input, with its coordinate vector), one
data variable per quantity. Variable attrs carry ``units``, ``long_name``, the formula as text
and LaTeX, and its ``source``; dataset attrs carry the engine version and the spec as written.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import numpy as np
import sympy
import xarray as xr

from . import __version__
from .formulas import FormulaSet
from .printing import latex_of, text_of
from .spec import SweepRequest
from .symbols import SYMBOLS

FLOAT64_EXACT_LIMIT = 2**53


def build_dataset(request: SweepRequest, results: Mapping[str, np.ndarray], formulas: FormulaSet) -> xr.Dataset:
    """Label ``results`` (quantity -> array over the request's axes) as an ``xarray.Dataset``."""
    dims = list(request.axes)
    coords = {}
    for name, values in request.axes.items():
        info = SYMBOLS[name]
        coords[name] = xr.Variable(
            name, values, attrs={"units": info.units, "long_name": info.meaning, "latex": info.latex}
        )
    given = {**{k: None for k in request.axes}, **request.fixed}
    data_vars = {}
    for q in request.quantities:
        quantity = formulas.quantities[q]
        values = results[q]
        attrs = {
            "units": quantity.units,
            "long_name": quantity.long_name,
            "formula": f"{q} = {text_of(quantity.definition)}",
            "formula_expanded": f"{q} = {text_of(formulas.resolve(q, set(given)))}",
            "formula_latex": f"{quantity.latex} = {latex_of(quantity.definition, formulas)}",
            "source": quantity.source,
        }
        if quantity.note:
            attrs["note"] = quantity.note
        if values.dtype.kind == "i" and values.size and int(np.max(np.abs(values))) >= FLOAT64_EXACT_LIMIT:
            attrs["precision_note"] = (
                "values reach 2^53: exact as int64, but converting them to float64 rounds them"
            )
        data_vars[q] = xr.Variable(dims, values, attrs=attrs)
    attrs = {
        "title": f"llm-sweep: formula set {request.formula_set!r} ({formulas.title})",
        "Conventions": "CF-1.10",
        "engine": "llm-sweep",
        "engine_version": __version__,
        "formula_set": request.formula_set,
        "formula_source": formulas.source,
        "options": _mapping_text(request.options),
        "fixed": _mapping_text(request.fixed),
        "precision": request.precision,
        "spec_source": request.source,
        "spec": request.text or _mapping_text({"axes": ", ".join(request.axes)}),
        "history": f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} created by llm-sweep {__version__}",
    }
    if request.description:
        attrs["description"] = request.description
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike, compression: int = 4) -> Path:
    """Write ``ds`` to ``path`` (netCDF4, zlib ``compression`` 0-9) atomically.

    The file is written beside the target under a temporary name and renamed at the end, so a
    failed or interrupted write never leaves a file at ``path``.
    """
    target = Path(path)
    if not target.parent.exists():
        raise FileNotFoundError(f"output folder {str(target.parent)!r} does not exist")
    encoding = {}
    for name in list(ds.data_vars) + list(ds.coords):
        enc: dict = {"_FillValue": None}
        if compression and name in ds.data_vars:
            enc.update(zlib=True, complevel=compression, shuffle=True)
        encoding[name] = enc
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _mapping_text(values: Mapping) -> str:
    def show(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, sympy.Basic):
            return str(v)
        return repr(v) if isinstance(v, str) else str(v)

    return ", ".join(f"{k} = {show(v)}" for k, v in values.items())
