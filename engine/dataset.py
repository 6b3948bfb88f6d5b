"""Sweep results -> ``xarray.Dataset`` with CF attributes -> netCDF4, written atomically.

Layout: one dimension per swept input (named after the input, with its coordinate vector), one
data variable per quantity. Variable attrs carry ``units``, ``long_name``, the formula as text
and LaTeX, and its ``source``; dataset attrs carry the engine version and the spec as written.
"""

from __future__ import annotations

import math
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


def coordinate_attrs(name: str) -> dict[str, str]:
    """Attributes of the coordinate variable of swept input ``name``."""
    info = SYMBOLS[name]
    return {"units": info.units, "long_name": info.meaning, "latex": info.latex}


def quantity_attrs(request: SweepRequest, formulas: FormulaSet, q: str) -> dict[str, str]:
    """Attributes of quantity ``q``: units, long_name, formula (text, expanded, LaTeX), source."""
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
    """Attributes of the ``valid`` mask: which conditions it checks."""
    given = {**{k: None for k in request.axes}, **request.fixed}
    conditions = "; ".join(msg for msg, _ in formulas.conditions(given))
    return {"units": "1", "long_name": "1 where the grid point is a valid architecture, else 0 (other variables "
                                       "hold 0 there)",
            "flag_values": "0 1", "flag_meanings": "invalid valid", "conditions": conditions}


def variable_attrs(request: SweepRequest, formulas: FormulaSet, name: str) -> dict[str, str]:
    return valid_attrs(request, formulas) if name == "valid" else quantity_attrs(request, formulas, name)


def precision_note(max_abs: int) -> dict[str, str]:
    """The attribute that flags integers past 2^53 (exact as int64, rounded by float64)."""
    if max_abs >= FLOAT64_EXACT_LIMIT:
        return {"precision_note": "values reach 2^53: exact as int64, but converting them to float64 rounds them"}
    return {}


def dataset_attrs(request: SweepRequest, formulas: FormulaSet) -> dict[str, str]:
    """Global attributes: engine version, formula set, options, fixed values, the spec."""
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
    if request.part is not None:
        attrs["part_index"], attrs["part_count"], attrs["part_axis_length"] = request.part
    return attrs


def build_dataset(request: SweepRequest, results: Mapping[str, np.ndarray], formulas: FormulaSet) -> xr.Dataset:
    """Label ``results`` (quantity -> array over the request's axes) as an ``xarray.Dataset``."""
    dims = list(request.axes)
    coords = {name: xr.Variable(name, values, attrs=coordinate_attrs(name)) for name, values in request.axes.items()}
    data_vars = {}
    for q in results:
        values = results[q]
        attrs = variable_attrs(request, formulas, q)
        if values.dtype.kind == "i" and values.size:
            attrs.update(precision_note(int(np.max(np.abs(values)))))
        data_vars[q] = xr.Variable(dims, values, attrs=attrs)
    return xr.Dataset(data_vars, coords=coords, attrs=dataset_attrs(request, formulas))


class StreamWriter:
    """Write a cube chunk by chunk into a netCDF4 file, atomically.

    The file is created under a temporary name beside ``path`` with every variable defined
    (chunked like the compute chunks, zlib level ``compression``); ``write`` puts one hyperslab;
    ``commit`` closes and renames it onto ``path``; ``abort`` (or leaving a ``with`` block on
    an exception) deletes it. A failed or interrupted run never leaves a file at ``path``.
    """

    def __init__(self, path, request: SweepRequest, formulas: FormulaSet, dtypes: Mapping[str, np.dtype],
                 file_chunk: tuple[int, ...], compression: int = 4):
        import netCDF4

        self.target = Path(path)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        os.close(fd)
        self._max: dict[str, int] = {}
        try:
            self.nc = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
            dims = list(request.axes)
            for name, values in request.axes.items():
                self.nc.createDimension(name, len(values))
                var = self.nc.createVariable(name, values.dtype, (name,))
                var.setncatts(coordinate_attrs(name))
                var[:] = values
            for q in dtypes:
                var = self.nc.createVariable(
                    q, dtypes[q], dims, zlib=compression > 0, complevel=compression or None,
                    shuffle=compression > 0, chunksizes=file_chunk or None, fill_value=False)
                var.setncatts(variable_attrs(request, formulas, q))
                if file_chunk:  # writes cover whole chunks: a cache of one chunk is enough
                    var.set_var_chunk_cache(size=max(math.prod(file_chunk) * dtypes[q].itemsize, 1 << 20))
            self.nc.setncatts(dataset_attrs(request, formulas))
        except BaseException:
            self.abort()
            raise

    def write(self, index: tuple, values: Mapping[str, np.ndarray]) -> None:
        """Put one hyperslab (``index`` is a tuple of slices/ints, one per dim) of every quantity."""
        for q, block in values.items():
            self.nc.variables[q][index] = block
            if block.dtype.kind == "i" and block.size and q != "valid":
                self._max[q] = max(self._max.get(q, 0), int(np.max(np.abs(block))))

    def commit(self) -> Path:
        for q, m in self._max.items():
            self.nc.variables[q].setncatts(precision_note(m))
        self.nc.close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.target)
        return self.target

    def abort(self) -> None:
        nc = getattr(self, "nc", None)
        if nc is not None:
            try:
                nc.close()
            except Exception:
                pass
        Path(self.tmp).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False


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


def combine(parts: list[str | os.PathLike], path: str | os.PathLike, compression: int | None = None) -> Path:
    """Join part files written by several processes (``sweep.process_share``) along their first dim.

    Parts must share dims, variables and coordinates except along the first dim; they are copied
    hyperslab by hyperslab (host memory bounded by one part's slab of one variable) into a file
    written atomically at ``path``.
    """
    import netCDF4

    if not parts:
        raise ValueError("no part files to combine")
    opened = []
    for p in parts:
        ds = netCDF4.Dataset(str(p))
        ds.set_auto_mask(False)
        opened.append(ds)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        first = opened[0]
        dims = list(first.dimensions)
        lead = dims[0]
        for p, ds in zip(parts, opened):
            if list(ds.dimensions) != dims or set(ds.variables) != set(first.variables):
                raise ValueError(f"{p}: dims or variables differ from {parts[0]}; not parts of one sweep")
            for d in dims[1:]:
                if not np.array_equal(ds.variables[d][:], first.variables[d][:]):
                    raise ValueError(f"{p}: coordinates of {d} differ from {parts[0]}")
        ordered = _order_parts(parts, opened, lead)
        lead_values = np.concatenate([ds.variables[lead][:] for _, ds in ordered])
        if len(np.unique(lead_values)) != len(lead_values):
            raise ValueError(f"the parts overlap along {lead}")
        out = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            for d in dims:
                out.createDimension(d, len(lead_values) if d == lead else len(first.dimensions[d]))
            for name, var in first.variables.items():
                filters = var.filters() or {}
                level = compression if compression is not None else (filters.get("complevel", 0) if filters.get(
                    "zlib") else 0)
                chunks = var.chunking()
                chunks = None if chunks == "contiguous" or name in dims else list(chunks)
                new = out.createVariable(name, var.dtype, var.dimensions, zlib=level > 0, complevel=level or None,
                                         shuffle=level > 0, chunksizes=chunks, fill_value=False)
                new.setncatts({k: var.getncattr(k) for k in var.ncattrs()})
            out.setncatts({k: first.getncattr(k) for k in first.ncattrs() if k not in ("part_index", "part_count", "part_axis_length")})
            out.variables[lead][:] = lead_values
            for d in dims[1:]:
                out.variables[d][:] = first.variables[d][:]
            offset = 0
            for _, ds in ordered:
                n = len(ds.dimensions[lead])
                for name, var in ds.variables.items():
                    if name in dims:
                        continue
                    for lo in range(n):  # one slab of the leading dim at a time
                        out.variables[name][offset + lo] = var[lo]
                offset += n
            out.history = f"{getattr(first, 'history', '')}; combined from {len(parts)} parts".lstrip("; ")
        finally:
            out.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        for ds in opened:
            ds.close()
    return target


def _order_parts(parts, opened, lead: str) -> list:
    """Parts in grid order: by the part_index each process wrote, all of 0..count-1 present."""
    indexed = [(p, ds) for p, ds in zip(parts, opened) if "part_index" in ds.ncattrs()]
    if not indexed:  # parts not written by --part/--distributed: trust ascending first coordinates
        return sorted(zip(parts, opened), key=lambda pd: pd[1].variables[lead][0])
    if len(indexed) != len(parts):
        raise ValueError("some files are parts of a multi-process run and some are not")
    counts = {int(ds.getncattr("part_count")) for _, ds in indexed}
    if len(counts) != 1:
        raise ValueError(f"the parts come from runs split {sorted(counts)} ways")
    count = counts.pop()
    by_index = {}
    for p, ds in indexed:
        i = int(ds.getncattr("part_index"))
        if i in by_index:
            raise ValueError(f"part {i} of {count} is given twice ({by_index[i][0]} and {p}): the parts overlap")
        by_index[i] = (p, ds)
    ordered = [by_index[i] for i in sorted(by_index)]
    # processes with no coordinates write nothing, so indices may be missing: the parts present
    # must still cover the whole first axis
    want = {int(ds.getncattr("part_axis_length")) for _, ds in indexed}
    have = sum(len(ds.dimensions[lead]) for _, ds in indexed)
    if len(want) != 1 or have != want.pop():
        missing = [i for i in range(count) if i not in by_index]
        raise ValueError(f"the parts cover {have} of the first axis's coordinates; missing parts: {missing}")
    return ordered
