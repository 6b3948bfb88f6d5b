"""Categorical dims in a file as CF wants them: integer codes in the coordinate, the labels beside them.

CF (§1.3, §5) wants coordinate variables numeric and strictly monotonic, and labels in an auxiliary
coordinate or spelled out by ``flag_values`` and ``flag_meanings``. In a written cube (netCDF file,
zarr store; ``llm-sweep combine``'s too) a categorical dim whose labels are strings (``recompute``,
``gpu``), or integers neither increasing nor decreasing (``zero = [3, 1, 2]``), is

    recompute(recompute)          codes 0, 1, ..., n-1 (int8; int16 past 127 labels), with
                                  ``flag_values`` (the codes), ``flag_meanings`` (the labels, one word
                                  each) and ``labels = "recompute_label"``
    recompute_label(recompute)    the labels themselves: variable-length strings (netCDF ``string``,
                                  zarr v3 ``string``, i.e. variable-length UTF-8), or int64
    every variable on the dim     ``coordinates = "recompute_label"``

A data variable that holds labels (a query's ``best_recompute``, "" in memory where nothing is
feasible) holds their codes the same way, in the order of the dim's labels, with ``labels =
"flag_meanings"`` and ``_FillValue`` (-127 for int8) where nothing is feasible. Boolean dims stay
int8 with ``dtype = "bool"`` (xarray's encoding, decoded back to booleans by xarray itself); integer
dims in increasing or decreasing order stay int64, their values the coordinate.

``flag_meanings`` words use what CF allows (letters, digits, ``_ - . + @``): any other character of
a label (a device TOML file's path, ``devices/my gpu.toml``) is written as ``@`` and its UTF-8 bytes in
hex (``devices@2Fmy@20gpu.toml``), ``@`` itself as ``@40``, so every label reads back exactly.

``coordinate_variables`` gives one dim's coordinate as the file holds it (the streamed netCDF writer,
the zarr store's template, the virtual cube), ``encode_categories`` a whole in-memory cube or query
answer (``write_netcdf``, the zarr store of a query's answer), and ``decode_categories`` turns a
cube read back (``xr.open_dataset`` of a file or store, the virtual cube) into labels again: what
``engine.open_cube``, ``llm-sweep plot`` and the run summary read. In memory
(``run(request).dataset``) a cube holds its labels.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

import numpy as np
import xarray as xr

LABEL_SUFFIX = "_label"
LABELS = "labels"  # the attribute of coded variables: where their labels are (a variable, or "flag_meanings")
IN_FLAG_MEANINGS = "flag_meanings"
FLAG_ATTRS = ("flag_values", "flag_meanings", LABELS)
_PLAIN = re.compile(r"[A-Za-z0-9_.+-]")
_ESCAPED = re.compile(r"@([0-9A-F]{2})")


def label_name(dim: str) -> str:
    """The auxiliary coordinate that holds the labels of categorical dim ``dim``: ``recompute_label``."""
    return f"{dim}{LABEL_SUFFIX}"


def is_coded(labels: np.ndarray) -> bool:
    """Whether a categorical dim with these labels is written as codes: strings, or numbers out of order."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "OUST":
        return True
    if labels.dtype.kind in "iuf" and labels.size > 1:
        steps = np.diff(labels)
        return not (np.all(steps > 0) or np.all(steps < 0))
    return False


def code_dtype(n: int) -> np.dtype:
    """The smallest signed integer type that holds codes 0..n-1 and a fill below them."""
    return next(np.dtype(t) for t in (np.int8, np.int16, np.int32) if n <= np.iinfo(t).max)


def code_fill(dtype) -> int:
    """The fill of a coded data variable: netCDF's default for its type (-127 for int8), never a code."""
    return int(np.iinfo(dtype).min + 1)


def flag_meaning(label) -> str:
    """``label`` as one ``flag_meanings`` word (module docstring): ``none``, ``devices@2Fmy@20gpu.toml``."""
    return "".join(c if _PLAIN.fullmatch(c) else "".join(f"@{b:02X}" for b in c.encode("utf-8")) for c in str(label))


def label_of(meaning: str) -> str:
    """The label a ``flag_meanings`` word spells (``flag_meaning`` undone)."""
    raw = bytearray()
    pos = 0
    for m in _ESCAPED.finditer(meaning):
        raw += meaning[pos:m.start()].encode("utf-8") + bytes([int(m.group(1), 16)])
        pos = m.end()
    raw += meaning[pos:].encode("utf-8")
    return raw.decode("utf-8")


def flag_attrs(labels: Iterable, dtype) -> dict:
    """``flag_values`` (codes 0..n-1 of ``dtype``) and ``flag_meanings`` (one word per label, in order)."""
    labels = list(labels)
    return {"flag_values": np.arange(len(labels), dtype=dtype),
            "flag_meanings": " ".join(flag_meaning(label) for label in labels)}


# -- encoding ------------------------------------------------------------------------------------------


def coordinate_variables(name: str, values: np.ndarray, attrs: Mapping, categorical: bool) -> dict[str, xr.Variable]:
    """The coordinate of dim ``name`` as a file holds it: {name: its variable} and, for a coded categorical dim,
    {``<name>_label``: the labels} (module docstring). Booleans are int8 with ``dtype = "bool"``."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        return {name: xr.Variable(name, values.astype(np.int8), attrs={**attrs, "dtype": "bool"})}
    if not categorical or not is_coded(values):
        return {name: xr.Variable(name, values, attrs=dict(attrs))}
    dtype = code_dtype(len(values))
    label = label_name(name)
    codes = xr.Variable(name, np.arange(len(values), dtype=dtype),
                        attrs={**attrs, **flag_attrs(values.tolist(), dtype), LABELS: label})
    meaning = f"{attrs.get('long_name', name)} (the label of each {name} code)"
    return {name: codes, label: xr.Variable(name, stored_labels(values), attrs={"long_name": meaning})}


def stored_labels(values: np.ndarray) -> np.ndarray:
    """Labels as a file stores them: strings as Python ``str`` objects (netCDF ``string``, zarr v3 ``string``),
    numbers as int64."""
    values = np.asarray(values)
    if values.dtype.kind in "OUST":
        return np.array([str(v) for v in values.tolist()], dtype=object)
    return values.astype(np.int64)


def as_str(values) -> np.ndarray:
    """Labels as numpy ``str`` (what a cube in memory holds), from Python strings, numpy's ``StringDType`` (a zarr
    store's) or ``str``."""
    values = np.asarray(values)
    if values.dtype.kind == "U":
        return values
    return np.array([str(v) for v in values.ravel().tolist()], dtype=str).reshape(values.shape)


def label_coordinates(dims: Iterable[str], coded: Iterable[str]) -> dict[str, str]:
    """``{"coordinates": "recompute_label gpu_label"}`` for a variable on ``dims``: the label coordinates of its
    coded dims (``coded``); {} when it has none."""
    coded = set(coded)
    names = [label_name(d) for d in dims if d in coded]
    return {"coordinates": " ".join(names)} if names else {}


def encode_categories(ds: xr.Dataset) -> xr.Dataset:
    """An in-memory cube or query answer (labels) as a file holds it (codes and labels; module docstring).

    Categorical dims are the ``categories`` attribute's; a string data variable (a query's ``best_<dim>``) takes
    its codes from the labels its ``encoding["labels"]`` lists (else from those it holds, in order of first
    appearance), "" becoming the fill.
    """
    categories = [c for c in ds.attrs.get("categories", "").split(", ") if c in ds.coords and ds[c].dims == (c,)]
    coords: dict[str, xr.Variable] = {}
    for c in categories:
        coords.update(coordinate_variables(c, ds[c].values, ds[c].attrs, True))
    coded = [c for c in categories if label_name(c) in coords]
    if not coded and not any(v.dtype.kind in "OUST" for v in ds.data_vars.values()):
        return ds
    out = ds.assign_coords(coords)
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "OUST":
            out[name] = coded_labels(var.variable)
    return out


def coded_labels(var: xr.Variable) -> xr.Variable:
    """A data variable of labels ("" where there is none) as codes with ``flag_values``/``flag_meanings`` and a
    ``_FillValue`` (module docstring)."""
    values = as_str(var.values)
    labels = [str(v) for v in var.encoding.get(LABELS, ())] or \
        [v for v in dict.fromkeys(values.ravel().tolist()) if v != ""]
    dtype = code_dtype(len(labels))
    fill = code_fill(dtype)
    position = {label: i for i, label in enumerate(labels)}
    codes = np.array([position.get(v, fill) for v in values.ravel().tolist()], dtype=dtype).reshape(values.shape)
    attrs = {**var.attrs, **flag_attrs(labels, dtype), LABELS: IN_FLAG_MEANINGS}
    return xr.Variable(var.dims, codes, attrs=attrs, encoding={"_FillValue": dtype.type(fill)})


# -- decoding ------------------------------------------------------------------------------------------


def decode_categories(ds: xr.Dataset) -> xr.Dataset:
    """A cube read back (codes) with its labels again: each variable with a ``labels`` attribute holds the labels
    its codes stand for (from the label coordinate it names, which is dropped, or its ``flag_meanings``), ""
    at a fill; its ``flag_values``, ``flag_meanings`` and ``labels`` attributes go. Anything else is as it was."""
    coded = {name: var.attrs[LABELS] for name, var in ds.variables.items()
             if isinstance(var.attrs.get(LABELS), str) and var.dtype.kind in "iuf"}
    if not coded:
        return ds
    decoded, dropped = {}, set()
    for name, where in coded.items():
        labels = _labels(ds, name, where)
        if labels is None:  # its label coordinate was dropped (drop_variables): the codes stay
            continue
        var = ds.variables[name]
        decoded[name] = xr.Variable(var.dims, _lookup(var.data, labels),
                                    attrs={k: v for k, v in var.attrs.items() if k not in FLAG_ATTRS})
        if where in ds.variables:
            dropped.add(where)
    variables = {name: decoded.get(name, var) for name, var in ds.variables.items() if name not in dropped}
    for name, var in variables.items():  # xarray keeps the label coordinates' names to write them back: not these
        names = var.encoding.get("coordinates")
        if isinstance(names, str) and dropped & set(names.split()):
            kept = " ".join(n for n in names.split() if n not in dropped)
            variables[name] = var = var.copy(deep=False)  # the opened dataset's variable stays as it was
            var.encoding = {k: v for k, v in var.encoding.items() if k != "coordinates"}
            if kept:
                var.encoding["coordinates"] = kept
    coords = [name for name in ds.coords if name in variables]
    out = xr.Dataset({name: var for name, var in variables.items() if name not in coords},
                     coords={name: variables[name] for name in coords}, attrs=ds.attrs)
    out.encoding = dict(ds.encoding)
    out.set_close(ds.close)  # ``with open_cube(path) as ds`` closes the file
    return out


def _labels(ds: xr.Dataset, name: str, where: str) -> np.ndarray | None:
    """The labels of coded variable ``name``: of its label coordinate, or spelled by its ``flag_meanings``."""
    if where == IN_FLAG_MEANINGS:
        return np.array([label_of(w) for w in str(ds.variables[name].attrs.get(IN_FLAG_MEANINGS, "")).split()],
                        dtype=str)
    if where not in ds.variables:
        return None
    values = np.asarray(ds.variables[where].values)
    return values.astype(np.int64) if values.dtype.kind in "iub" else as_str(values)


def _lookup(codes, labels: np.ndarray):
    """The labels that ``codes`` (integers, or floats with NaN once masked; a dask array too) stand for: "" at a
    fill or NaN."""
    if hasattr(codes, "map_blocks") and not isinstance(codes, np.ndarray):
        return codes.map_blocks(_lookup, labels, dtype=labels.dtype)
    codes = np.asarray(codes)
    real = (codes >= 0) & (codes < len(labels))
    if codes.dtype.kind == "f":
        real &= codes == np.floor(np.nan_to_num(codes, nan=-1.0))
    picked = labels[np.where(real, codes, 0).astype(np.intp)] if len(labels) else np.zeros(codes.shape, labels.dtype)
    if labels.dtype.kind == "U":
        return np.where(real, picked, "")
    return picked


__all__ = ["as_str", "code_dtype", "code_fill", "coordinate_variables", "decode_categories", "encode_categories",
           "flag_attrs", "flag_meaning", "is_coded", "label_coordinates", "label_name", "label_of", "stored_labels"]
