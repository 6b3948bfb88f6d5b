"""Sweep results -> ``xarray.Dataset`` with CF attributes -> netCDF4, written atomically.

Layout: one dimension per swept input (named after the input, with its coordinate vector), one
data variable per quantity, over its natural dims only (``engine.runtime.dims``: the swept inputs
its formula depends on, in axes order; a quantity of none is a 0-d variable), so ``params_total``
spans ``(d_model, n_layers)`` and not ``batch``; xarray broadcasts variables against each other
(``ds.mem_peak - ds.mem_model``) and ``ds.params_total.broadcast_like(ds.mem_peak)`` spans the grid.
In the file each variable is chunked like the compute chunks restricted to its dims. Variable attrs
carry ``units``, ``long_name``, the formula as text and LaTeX, and its ``source``; dataset attrs
carry the engine version and the spec as written.

Categorical dims (``recompute``, ``zero``, ``gpu``, ...; ``engine.runtime.categories``) are dims
like the others. In memory their labels are the coordinate (strings, int64, booleans); in the file
they are as CF wants them (``engine.sinks.categorical``): a dim of strings, or of integers neither
increasing nor decreasing, is a coordinate of integer codes 0..n-1 with ``flag_values``,
``flag_meanings`` and ``labels = "<dim>_label"``, beside the auxiliary coordinate ``<dim>_label``
(the labels as netCDF strings, or int64) that every variable on the dim names in ``coordinates``;
a query's ``best_<dim>`` of strings holds codes with ``flag_values``/``flag_meanings`` and a fill.
Booleans are int8 with the attribute ``dtype = "bool"`` (xarray's own encoding: ``xr.open_dataset``
gives numpy booleans back), increasing or decreasing integers int64. ``categorical.decode_categories`` (what
``engine.open_cube`` applies to a written cube) gives the labels back. Their coordinates carry a
``long_name`` (what the option means) and ``categorical`` ("structural option" or "device"); the
dataset attr ``categories`` lists them. A quantity whose formula differs between combinations keeps
the first combination's in ``formula``, ``formula_expanded`` and ``formula_latex``, and adds
``formula_by_combination`` (and ``formula_expanded_by_combination``, ``formula_latex_by_combination``
where those differ): one line per combination, ``recompute = 'full', zero = 3: step_time = ...``
(``print(ds.step_time.attrs["formula_by_combination"])``). ``valid``'s ``conditions`` lists
every combination's conditions, with ``conditions_by_combination`` where they differ; the
dataset's ``fixed`` holds the values every combination shares, and ``fixed_by_combination`` each
combination's where they differ (a ``gpu`` dim's device fields).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from engine import signals
from engine.files import AtomicFile
from engine.request.spec import SweepRequest
from engine.runtime.dims import own_index
from engine.sinks.attrs import (coordinate_attrs, dataset_attrs, fill_value, holds_result, largest, masked_variable,
                                precision_note, variable_attrs)
from engine.sinks.categorical import (FLAG_ATTRS, LABELS, as_str, coordinate_variables, encode_categories,
                                      label_coordinates, label_name)
from engine.symbolic.formulas import FormulaSet


def build_dataset(request: SweepRequest, results: Mapping[str, np.ndarray], formulas: FormulaSet,
                  dims: Mapping[str, tuple[str, ...]] | None = None) -> xr.Dataset:
    """Label a cube's arrays as an ``xarray.Dataset`` with its coordinates and CF attributes.

    Parameters
    ----------
    request : SweepRequest
        The run the arrays come from: its axes are the coordinates, its spec the attributes.
    results : mapping of str to numpy.ndarray
        Output -> its values over its ``dims``.
    formulas : FormulaSet
        The formulas (units, long names, sources, the formulas as text and LaTeX of each variable).
    dims : mapping of str to tuple of str, optional
        Output -> its dims (default: every output over every axis).

    Returns
    -------
    xarray.Dataset
        In a cube with ``valid`` every quantity is masked (NaN) where it holds the fill value.
    """
    coords = {name: xr.Variable(name, values, attrs=coordinate_attrs(name)) for name, values in request.axes.items()}
    data_vars = {}
    masked = "valid" in results
    for q in results:
        values = results[q]
        own = dims[q] if dims is not None else tuple(request.axes)
        attrs = variable_attrs(request, formulas, q)
        if q == "valid":
            data_vars[q] = xr.Variable(own, values, attrs=attrs)
            continue
        keep = holds_result(values) if masked else None
        if values.size:
            attrs.update(precision_note(largest(values, keep), values.dtype))
        data_vars[q] = masked_variable(own, values, attrs, keep)
    return xr.Dataset(data_vars, coords=coords, attrs=dataset_attrs(request, formulas))


def _coordinate(nc, name: str, values: np.ndarray, categorical: bool, attrs: Mapping | None = None) -> bool:
    """Define and fill the coordinate of dim ``name`` (``categorical.coordinate_variables``): numbers as they are,
    booleans as int8 with ``dtype = "bool"`` (what xarray writes, and reads back as booleans), the labels of a
    coded categorical dim as codes beside ``<name>_label``. True when it is coded."""
    variables = coordinate_variables(name, values, coordinate_attrs(name) if attrs is None else attrs, categorical)
    for key, variable in variables.items():
        _define(nc, key, variable)
    return len(variables) > 1


def _define(nc, name: str, variable: xr.Variable) -> None:
    """A small variable (a coordinate, labels) defined in netCDF file ``nc`` and filled: strings as netCDF strings."""
    values = np.asarray(variable.values)
    if values.dtype.kind in "OUS":
        var = nc.createVariable(name, str, variable.dims)
        var[:] = values.astype(object)
    else:
        var = nc.createVariable(name, values.dtype, variable.dims)
        var[:] = values
    var.setncatts(variable.attrs)


class StreamWriter:
    """Write a cube chunk by chunk into a netCDF4 file, atomically.

    The file is created under a temporary name beside ``path`` with every variable defined on its
    ``dims`` (output -> dims; default every axis), chunked like the compute chunks restricted to
    those dims (``file_chunk`` is over every axis), zlib level ``compression`` (a 0-d variable is
    stored as it is); ``write`` puts one hyperslab of each output it is given, each at its own
    index; ``commit`` closes and renames it onto ``path``; ``abort`` (or leaving a ``with`` block
    on an exception) deletes it. A failed or interrupted run never leaves a file at ``path``.
    """

    def __init__(self, path, request: SweepRequest, formulas: FormulaSet, dtypes: Mapping[str, np.dtype],
                 file_chunk: tuple[int, ...], compression: int = 4, inputs=(),
                 dims: Mapping[str, tuple[str, ...]] | None = None):
        import netCDF4

        self.file = AtomicFile(path, inputs)
        try:  # from the first statement on: a stop signal re-sent just after the import above must not leak the file
            self.target, self.tmp = self.file.target, str(self.file.path)
            self._max: dict[str, int | float] = {}
            self._dtypes = dict(dtypes)
            self.axes = list(request.axes)
            self.dims = {q: tuple(dims[q]) if dims is not None else tuple(self.axes) for q in dtypes}
            self.nc = netCDF4.Dataset(self.tmp, "w", format="NETCDF4", clobber=True)
            coded = []
            for name, values in request.axes.items():
                self.nc.createDimension(name, len(values))
                if _coordinate(self.nc, name, values, name in request.categories):
                    coded.append(name)
            masked = "valid" in dtypes  # invalid points hold the fill: declare it (xarray masks it on read)
            for q in dtypes:
                fill = fill_value(dtypes[q]) if masked and q != "valid" else False
                chunk = _own_chunk(file_chunk, self.axes, self.dims[q])
                zlib = compression > 0 and bool(self.dims[q])
                var = self.nc.createVariable(
                    q, dtypes[q], self.dims[q], zlib=zlib, complevel=compression if zlib else None,
                    shuffle=zlib, chunksizes=chunk, fill_value=fill)
                var.setncatts({**variable_attrs(request, formulas, q), **label_coordinates(self.dims[q], coded)})
                if chunk:  # writes cover whole chunks: HDF5 writes (and compresses) them at once, no cache.
                    # A cache makes HDF5 copy every chunk through it, holds 64 MiB per variable (4 GB streamed:
                    # peak RSS 457 MiB, 870-950 MiB cached) and compresses what it holds when the file closes, after
                    # the run on the main thread (the seed sweep's 0.3 s of zlib) and unseen by the disk projection.
                    # 1 byte, not 0: netCDF-C reads 0 as "the default" (64 MiB); a chunk over the size bypasses it
                    var.set_var_chunk_cache(size=1)
            self.nc.setncatts(dataset_attrs(request, formulas))
        except BaseException as exc:
            self.abort()
            raise self.file.failure(exc) from None

    def write(self, index: tuple, values: Mapping[str, np.ndarray]) -> None:
        """Put one chunk: ``index`` (one slice per dim of the cube) holds each given output's block at
        ``dims.own_index`` (the index restricted to its dims)."""
        for q, block in values.items():
            try:
                self._put(q, own_index(index, self.axes, self.dims[q]), block)
            except (RuntimeError, OSError) as exc:  # netCDF says "HDF error" for a full disk
                raise self.file.failure(exc) from None
            if block.size and q != "valid":
                self._max[q] = max(self._max.get(q, 0), largest(block))

    def _put(self, q: str, index: tuple, block: np.ndarray) -> None:
        self.nc.variables[q][index] = block

    def commit(self) -> Path:
        for q, m in self._max.items():
            self.nc.variables[q].setncatts(precision_note(m, self._dtypes[q]))
        try:
            self.nc.close()
        except (RuntimeError, OSError) as exc:
            raise self.file.failure(exc) from None
        return self.file.commit()

    def abort(self) -> None:
        nc = getattr(self, "nc", None)
        if nc is not None:
            try:
                nc.close()
            except Exception:
                pass
        self.file.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False


def _own_chunk(file_chunk: tuple[int, ...], axes: list[str], dims: tuple[str, ...]) -> tuple[int, ...] | None:
    """The file chunk (over every axis) restricted to ``dims``; None (contiguous) for a 0-d variable or no chunk."""
    if not file_chunk or not dims:
        return None
    return tuple(n for a, n in zip(axes, file_chunk) if a in dims)


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike, compression: int = 4, inputs=()) -> Path:
    """Write a dataset (a cube, a query's answer) to a netCDF4 file, atomically.

    The file is written beside the target under a temporary name and renamed at the end, so a
    failed or interrupted write never leaves a file at ``path``. Categorical dims and labels are
    written as codes with their labels beside them (``categorical.encode_categories``).

    Parameters
    ----------
    ds : xarray.Dataset
        What to write; masked variables keep their on-disk dtype and fill.
    path : str or path-like
        The file.
    compression : int, optional
        zlib level 0-9 (default 4).
    inputs : sequence of path-like, optional
        Files never to overwrite (the spec the dataset came from).

    Returns
    -------
    pathlib.Path
        ``path``, written.

    Raises
    ------
    engine.ResourceError
        When ``path`` cannot be written (a folder, a device, an input, a read-only place; a full disk).
    """
    ds = encode_categories(ds)
    encoding = {}
    for name in list(ds.data_vars) + list(ds.coords):
        # masked variables (``masked_variable``) keep their fill and on-disk dtype; nothing else gets one
        enc: dict = {"_FillValue": ds[name].encoding.get("_FillValue") if name in ds.data_vars else None}
        if "dtype" in ds[name].encoding and enc["_FillValue"] is not None:
            enc["dtype"] = ds[name].encoding["dtype"]
        if compression and name in ds.data_vars:
            enc.update(zlib=True, complevel=compression, shuffle=True)
        encoding[name] = enc
    with AtomicFile(path, inputs) as out:  # a write error leaves it as one line, nothing at the target
        ds.to_netcdf(out.path, engine="netcdf4", format="NETCDF4", encoding=encoding)
        return out.commit()


def combine(parts: list[str | os.PathLike], path: str | os.PathLike, compression: int | None = None) -> Path:
    """Join part files written by several processes (``sweep.process_share``) along their first dim.

    Parts must come from one request: the ``request`` record each part carries (formula set,
    preset, options, fixed values, quantities, numerics, axes, engine version) must agree. A
    categorical first dim (labels, no order) is joined in part order (files not written by
    ``--part``: in the order given), its labels distinct, and written for the whole as one cube
    writes it (codes of the joined labels beside ``<dim>_label`` where they are strings or out of
    order; ``categorical``), whatever codes each part gave them. Variables on the first dim are
    joined along it; those without it (natural dims: ``params_layer`` over ``d_model`` alone when
    parts split ``n_layers``; a 0-d variable) are the same in every part: taken from the first, and
    checked equal in the others. They are copied block by block (host memory bounded by
    ``COPY_BLOCK_ELEMENTS`` per variable; Ctrl-C and SIGTERM are answered between blocks) into a
    file written atomically at ``path``.

    Parameters
    ----------
    parts : list of str or path-like
        The part files (``llm-sweep run --part I/N`` or ``--distributed`` writes them), in any order.
    path : str or path-like
        The joined file; no part may be it.
    compression : int, optional
        zlib level 0-9 of the joined file; default: each variable's level in the first part.

    Returns
    -------
    pathlib.Path
        The joined cube, at ``path``.

    Raises
    ------
    ValueError
        Naming the first difference when the parts are not shares of one request, overlap or miss a share.
    engine.ResourceError
        When ``path`` cannot be written (a part, a folder, a read-only target; a full disk).
    """
    import netCDF4

    if not parts:
        raise ValueError("no part files to combine")
    out_file = AtomicFile(path, inputs=parts)
    opened = []
    try:
        for p in parts:
            try:
                ds = netCDF4.Dataset(str(p))
            except OSError as exc:
                raise ValueError(f"{p}: not a netCDF file ({exc})") from None
            ds.set_auto_maskandscale(False)
            opened.append(ds)
        joined = _Joined.of(parts, opened)
        out = netCDF4.Dataset(str(out_file.path), "w", format="NETCDF4", clobber=True)
        try:
            joined.define(out, compression)
            joined.copy(out)
        finally:
            out.close()
        return out_file.commit()
    except BaseException as exc:
        out_file.abort()
        raise out_file.failure(exc) from None
    finally:
        for ds in opened:
            ds.close()


class _Joined:
    """The parts of one cube, checked and in grid order, and the whole they make (``combine``)."""

    def __init__(self, parts, opened, ordered, dims, names, labels, lead_values):
        self.parts, self.first, self.ordered = parts, opened[0], ordered
        self.dims, self.lead, self.names, self.labels, self.lead_values = dims, dims[0], names, labels, lead_values

    @classmethod
    def of(cls, parts, opened) -> "_Joined":
        """Check that ``opened`` (netCDF datasets of ``parts``) are shares of one cube; ValueError naming the
        first difference."""
        first = opened[0]
        dims = list(first.dimensions)
        if not dims:
            raise ValueError(f"{parts[0]}: has no dims; not a cube")
        lead = dims[0]
        names = set(first.variables) - {lead, label_name(lead)}  # the first dim's own: rewritten for the whole
        for p, ds in zip(parts, opened):
            _check_part(parts[0], first, p, ds, dims, names)
        labels = "categorical" in first.variables[lead].ncattrs()
        ordered = _order_parts(parts, opened, lead, labels)
        lead_values = np.concatenate([file_labels(ds, lead) for _, ds in ordered])
        if len(set(lead_values.tolist())) != len(lead_values):
            raise ValueError(f"the parts overlap along {lead}")
        if not labels and np.any(np.diff(lead_values) <= 0):
            raise ValueError(f"the parts' coordinates of {lead} do not increase from part to part")
        return cls(parts, opened, ordered, dims, names, labels, lead_values)

    def define(self, out, compression: int | None) -> None:
        """Dims, coordinates, variables (each as the first part has it) and attributes of the whole in ``out``."""
        first, dims, lead = self.first, self.dims, self.lead
        for d in dims:
            out.createDimension(d, len(self.lead_values) if d == lead else len(first.dimensions[d]))
        lead_attrs = {k: first.variables[lead].getncattr(k) for k in first.variables[lead].ncattrs()
                      if k not in (*FLAG_ATTRS, "dtype")}
        coded = [d for d in dims[1:] if LABELS in first.variables[d].ncattrs()]
        if _coordinate(out, lead, self.lead_values, self.labels, lead_attrs):
            coded.append(lead)
        labelled = {label_name(d) for d in dims}
        for name in sorted(self.names, key=list(first.variables).index):
            var = first.variables[name]
            filters = var.filters() or {}
            level = compression if compression is not None else (filters.get("complevel", 0) if filters.get(
                "zlib") else 0)
            chunks = var.chunking()
            chunks = None if chunks == "contiguous" or name in dims else list(chunks)
            level = 0 if var.dtype is str else level  # netCDF compresses no variable-length strings
            attrs = {k: var.getncattr(k) for k in var.ncattrs() if k != "coordinates"}
            fill = attrs.pop("_FillValue", False)
            # each part noted only its own values: the whole carries a note if any part does
            notes = [ds.variables[name].getncattr("precision_note") for _, ds in self.ordered
                     if "precision_note" in ds.variables[name].ncattrs()]
            if notes:
                attrs["precision_note"] = notes[0]
            if name not in dims and name not in labelled:
                attrs.update(label_coordinates(var.dimensions, coded))
            new = out.createVariable(name, var.dtype, var.dimensions, zlib=level > 0, complevel=level or None,
                                     shuffle=level > 0, chunksizes=chunks, fill_value=fill)
            new.set_auto_maskandscale(False)
            new.setncatts(attrs)
        out.setncatts({k: first.getncattr(k) for k in first.ncattrs()
                       if k not in ("part_index", "part_count", "part_axis_length")})

    def copy(self, out) -> None:
        """Every part's values into ``out``, block by block: along the first dim, or checked equal where a variable
        lacks it."""
        first, dims, lead = self.first, self.dims, self.lead
        for d in dims[1:]:
            out.variables[d][:] = first.variables[d][:]
        offset = 0
        for p, ds in self.ordered:
            for name in self.names - set(dims):
                var = ds.variables[name]
                if lead in var.dimensions:
                    _copy_along(var, out.variables[name], var.dimensions.index(lead), offset)
                elif offset == 0:
                    _copy_along(var, out.variables[name], None, 0)
                else:
                    _check_same_values(var, out.variables[name], f"{p}: {name} (not on {lead}) differs from "
                                                                 "the other parts; not parts of one sweep")
            offset += len(ds.dimensions[lead])
        out.history = f"{getattr(first, 'history', '')}; combined from {len(self.parts)} parts".lstrip("; ")


def _check_part(first_path, first, path, ds, dims: list[str], names: set[str]) -> None:
    """ValueError unless part ``ds`` holds the request, dims, variables (dtypes, dims) and other coordinates of
    ``first``."""
    _same_request(first_path, first, path, ds)
    if list(ds.dimensions) != dims or set(ds.variables) - {dims[0], label_name(dims[0])} != names:
        raise ValueError(f"{path}: dims or variables differ from {first_path}; not parts of one sweep")
    for name in names:
        var, other = first.variables[name], ds.variables[name]
        if other.dtype != var.dtype:
            raise ValueError(f"{path}: {name} is {other.dtype}, {var.dtype} in {first_path}; not parts of one request")
        if other.dimensions != var.dimensions:
            raise ValueError(f"{path}: {name} spans {other.dimensions}, {var.dimensions} in {first_path}; not parts "
                             "of one request")
    for d in dims[1:]:
        if not np.array_equal(file_labels(ds, d), file_labels(first, d)):
            raise ValueError(f"{path}: coordinates of {d} differ from {first_path}")


COPY_BLOCK_ELEMENTS = 1 << 22  # 32 MiB of int64: one block copies in well under a second


def _copy_along(source, target, axis: int | None, offset: int) -> None:
    """Copy netCDF variable ``source`` into ``target`` block by block, shifted by ``offset`` along ``axis`` (None:
    in place)."""
    for block in _blocks(source.shape):
        signals.check()
        where = block if axis is None else \
            block[:axis] + (slice(block[axis].start + offset, block[axis].stop + offset),) + block[axis + 1:]
        target[where] = source[block]


def _check_same_values(source, target, message: str) -> None:
    """Raise ValueError(``message``) unless ``source`` holds what ``target`` holds (fills and NaN alike)."""
    for block in _blocks(source.shape):
        signals.check()
        a, b = np.asarray(source[block]), np.asarray(target[block])
        if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):  # labels are strings: no NaN to match
            raise ValueError(message)


def file_labels(nc, dim: str) -> np.ndarray:
    """The labels of ``dim`` in netCDF file ``nc`` (read without masking): of its label coordinate where it is coded
    (``categorical``), booleans where it holds ``dtype = "bool"``, else its coordinates."""
    var = nc.variables[dim]
    attrs = var.ncattrs()
    if LABELS in attrs and var.getncattr(LABELS) in nc.variables:
        values = np.asarray(nc.variables[var.getncattr(LABELS)][:])
        return as_str(values) if values.dtype.kind in "OUST" else values
    values = np.asarray(var[:])
    if "dtype" in attrs and var.getncattr("dtype") == "bool":
        return values.astype(bool)
    return as_str(values) if values.dtype.kind in "OUST" else values


def _blocks(shape: tuple[int, ...]):
    """Index tuples covering ``shape`` in C order, each of at most ``COPY_BLOCK_ELEMENTS`` elements."""
    if not shape:
        yield ()
        return
    trailing = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    axis = next((i for i in range(len(shape)) if trailing[i] <= COPY_BLOCK_ELEMENTS), len(shape) - 1)
    step = max(1, COPY_BLOCK_ELEMENTS // max(trailing[axis], 1))
    for outer in np.ndindex(*shape[:axis]):
        for lo in range(0, shape[axis], step):
            yield tuple(slice(i, i + 1) for i in outer) + (slice(lo, min(lo + step, shape[axis])),) + \
                tuple(slice(None) for _ in shape[axis + 1:])


def _same_request(first_path, first, path, ds) -> None:
    """Raise ValueError naming the first field in which two parts' request records differ."""
    records = []
    for p, d in ((first_path, first), (path, ds)):
        if "request" not in d.ncattrs():
            raise ValueError(f"{p}: carries no request record (written by another tool or an older llm-sweep); "
                             "rerun the parts with this version")
        try:
            records.append(json.loads(d.getncattr("request")))
        except (TypeError, ValueError):
            raise ValueError(f"{p}: its request record is not readable") from None
    a, b = records
    same_parts = "part_index" in first.ncattrs() and "part_index" in ds.ncattrs()
    for key in dict.fromkeys([*a, *b]):
        va, vb = a.get(key), b.get(key)
        if key == "axes" and not same_parts and isinstance(va, dict) and isinstance(vb, dict):
            # independent cubes may differ along their first axis, which combine joins
            va, vb = dict(list(va.items())[1:]), dict(list(vb.items())[1:])
        if va != vb:
            raise ValueError(f"{path}: not a part of the same request as {first_path}: {key} is {_show(vb)} there "
                             f"and {_show(va)} in {first_path}")


def _show(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _order_parts(parts, opened, lead: str, labels: bool = False) -> list:
    """Parts in grid order: by the part_index each process wrote, all of 0..count-1 present."""
    indexed = [(p, ds) for p, ds in zip(parts, opened) if "part_index" in ds.ncattrs()]
    if not indexed and labels:  # independent cubes along a categorical dim: the order given
        return list(zip(parts, opened))
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
