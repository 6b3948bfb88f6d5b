"""A virtual cube: a spec opened as an ``xarray.Dataset`` whose values are computed when they are read.

    >>> import xarray as xr
    >>> ds = xr.open_dataset("sweeps/seed.toml", engine="llm-sweep")     # doctest: +SKIP
    >>> ds.mem_peak.isel(batch=3, seq_len=7).plot()                       # doctest: +SKIP

``xr.open_dataset(SPEC, engine="llm-sweep")`` (the ``xarray.backends`` entry point ``llm-sweep``,
``LlmSweepBackend``) loads the spec and returns the whole cube without computing any of it: the same
variables, dims, coordinates and attributes as the cube ``llm-sweep run SPEC -o cube.nc`` writes, each
variable on its natural dims (``engine.runtime.dims``; read from the kernel, or ``categories.Stack``,
exactly as the sinks read them). Every variable is a lazy ``BackendArray`` (``QuantityArray``) in an
``indexing.LazilyIndexedArray``; reading a slab of it -- indexing, ``.sel``, ``.isel``, ``.values``, a
plot, a reduction -- evaluates the spec's compiled kernel (``sweep.kernel_for``, cached per request) on
that slab only: the kernel evaluates an outer-product grid from one coordinate vector per axis, so an
outer indexer is one coordinate subset per dim (an integer drops its dim afterwards); axes the variable
lacks get their first coordinate (its values do not change along them). Each variable has its own
executable (the kernel's evaluate function cut to that one output, ``OneOutput``), compiled once per
slab shape; slab lengths are padded (the last coordinate repeated) to at most 8 sizes per octave
(``padded_length``), so slices of nearby lengths share executables.

Values equal the written cube exactly, in its dtypes: int64 quantities are int64, float ones float64
(float32 with numerics ``fast``), ``valid`` uint8. Where the cube has a ``valid`` mask the quantities
carry ``_FillValue`` and are decoded like a netCDF file's (``mask_and_scale=True``, the default: an
int64 quantity reads as float64 with NaN at invalid points; ``mask_and_scale=False``: int64 holding
``numerics.INT64_FILL`` there). Attributes come from ``sinks.attrs`` (the written cube's helpers);
``precision_note`` is left out (it depends on values not yet computed), and the dataset attribute
``virtual_cube`` says the cube is virtual. A spec's ``[query]`` is not applied: the full cube opens and
the attribute ``query_ignored`` says so.

Categorical dims (``recompute = ["none", "full"]`` in ``[axes]``) are supported: each combination of
labels read is evaluated by its own kernel (``categories.slabs``), in the cube's dtypes (an integer
fill becomes NaN where another combination makes the quantity float64). Their coordinates are
encoded like the file's (codes beside ``<dim>_label``, ``sinks.categorical``) and decoded back to the
labels, as ``open_cube`` decodes a written cube.

Memory: one read may take at most ``READ_MEMORY_FRACTION`` of the available host memory (else a
one-line ``ResourceError`` naming its size; read a smaller slab or open with ``chunks=``); a read is
evaluated in pieces that fit the device budget (``plan.default_budget``), one read at a time per cube.
With ``chunks=`` every variable is a dask array and reductions run chunk by chunk: give a dict
(``chunks={"batch": 1}``) or ``"auto"`` (dask's ~128 MiB chunks). The backend declares no
``preferred_chunks`` (nothing is stored, so no chunk layout is better than another): ``chunks={}``
makes each variable one chunk.

``outline(spec)`` is what ``llm-sweep open SPEC`` prints: dims, points and variables, nothing evaluated.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

import engine.plot  # noqa: F401  a virtual cube has the ds.llm accessor (frontiers, figures) at hand
from engine.errors import ResourceError, SpecError
from engine.request.numerics import INT64_FILL
from engine.runtime.dims import expand
from engine.runtime.plan import available_host_memory, default_budget, format_bytes, plan_chunks

if TYPE_CHECKING:
    from engine.request.spec import SweepRequest

# xarray imports every backend's module to resolve any engine: sympy, JAX and the spec layer are imported
# here on first use only, so opening someone's netCDF file does not pay for them.

ENGINE = "llm-sweep"
READ_MEMORY_FRACTION = 0.25  # of the available host memory, for the values of one read
SPEC_SUFFIX = ".toml"
VIRTUAL_NOTE = ("virtual: nothing is stored; every slab read is evaluated by llm-sweep's compiled kernel "
                "(engine.backend). precision_note attributes are left out: they depend on values not yet computed")


# -- the xarray backend --------------------------------------------------------------------------------


class LlmSweepBackend(BackendEntrypoint):
    """``xr.open_dataset(SPEC, engine="llm-sweep")``: a sweep spec as a lazy, virtual cube (module docstring)."""

    description = "Open an llm-sweep TOML spec as a virtual cube: slabs are evaluated by the compiled kernel when read"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "mask_and_scale", "decode_times",
                               "decode_timedelta", "use_cftime", "concat_characters", "decode_coords")

    def open_dataset(self, filename_or_obj, *, drop_variables=None, mask_and_scale=True, decode_times=True,
                     decode_timedelta=None, use_cftime=None, concat_characters=True, decode_coords=True) -> xr.Dataset:
        """The cube of the spec ``filename_or_obj`` (a path, or a ``SweepRequest``), nothing evaluated."""
        from engine.sinks.categorical import decode_categories

        request = spec_request(filename_or_obj)
        raw = virtual_dataset(request)
        return decode_categories(xr.decode_cf(raw, mask_and_scale=mask_and_scale, decode_times=decode_times,
                                              decode_timedelta=decode_timedelta, use_cftime=use_cftime,
                                              concat_characters=concat_characters, decode_coords=decode_coords,
                                              drop_variables=drop_variables))

    def guess_can_open(self, filename_or_obj) -> bool:
        """A ``SweepRequest``, or a ``.toml`` file with ``[sweep]`` and ``[axes]`` tables."""
        if is_request(filename_or_obj):
            return True
        path = _path(filename_or_obj)
        return path is not None and path.suffix == SPEC_SUFFIX and _looks_like_spec(path)


def open_cube(source, **kwargs) -> xr.Dataset:
    """A cube with its labels, and the ``ds.llm`` accessor (frontiers, Pareto sets, heatmaps).

    Parameters
    ----------
    source : str, path-like or SweepRequest
        A spec (a ``.toml`` path) or a request: its virtual cube, evaluated where it is read
        (``xr.open_dataset(spec, engine="llm-sweep")``); or a written cube -- a netCDF file, a ``.zarr``
        store -- opened with ``xr.open_dataset`` and its categorical codes turned back into labels.
    **kwargs
        Passed to ``xr.open_dataset`` (``chunks=``, ``mask_and_scale=``, ...).

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    engine.SpecError
        When a spec is not valid (naming the file and key).
    FileNotFoundError
        When a written cube's path does not exist.
    """
    path = None if is_request(source) else _path(source)
    if path is not None and (path.suffix == ".zarr" or (path.suffix != SPEC_SUFFIX and path.is_file())):
        from engine.sinks.categorical import decode_categories

        if path.suffix == ".zarr":
            kwargs.setdefault("engine", "zarr")
        return decode_categories(xr.open_dataset(path, **kwargs))
    return xr.open_dataset(source, engine=ENGINE, **kwargs)


def spec_request(spec) -> SweepRequest:
    """The request of ``spec``: a ``SweepRequest`` as it is, or a spec file loaded (``SpecError`` naming the file)."""
    if is_request(spec):
        return spec
    from engine.request.spec import load_spec  # 0.13 s: xarray imports this module on every open_dataset

    path = _path(spec)
    if path is None:
        raise TypeError(f"the {ENGINE} engine opens a spec path or a SweepRequest, got {type(spec).__name__}")
    if path.exists() and path.suffix != SPEC_SUFFIX:
        raise SpecError(str(path), "", f"not a sweep spec (a {SPEC_SUFFIX} file): the {ENGINE} engine evaluates "
                                       "specs; open a written cube with xr.open_dataset(path)")
    return load_spec(path)


def is_request(obj) -> bool:
    """Whether ``obj`` is a ``SweepRequest`` (without importing the spec layer when nothing made one)."""
    spec = sys.modules.get("engine.request.spec")
    return spec is not None and isinstance(obj, spec.SweepRequest)


def _path(obj) -> Path | None:
    try:
        return Path(os.fspath(obj))
    except TypeError:
        return None


def _looks_like_spec(path: Path) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("sweep"), dict) and isinstance(data.get("axes"), dict)


# -- the dataset ---------------------------------------------------------------------------------------


def virtual_dataset(request: SweepRequest) -> xr.Dataset:
    """The cube of ``request`` as it is encoded in the written file: lazy variables on their natural dims,
    quantities with ``_FillValue`` where the cube has a ``valid`` mask (``xr.decode_cf`` decodes it), coded
    categorical dims as codes beside their labels (``sinks.categorical.decode_categories`` decodes them)."""
    from engine.sinks.categorical import coordinate_variables
    from engine.sinks.attrs import coordinate_attrs, dataset_attrs

    cube = VirtualCube(request)
    coords = {}
    for a, v in request.axes.items():
        coords.update(coordinate_variables(a, v, coordinate_attrs(a), a in request.categories))
    data = {name: cube.variable(name) for name in cube.dtypes}
    attrs = dataset_attrs(request, request.formulas)
    attrs["virtual_cube"] = VIRTUAL_NOTE
    if request.query is not None:
        attrs["query_ignored"] = (f"the spec's [query] ({request.query.describe()}) is not applied: this is the "
                                  "full cube; llm-sweep run SPEC answers the query on the device")
    return xr.Dataset(data, coords=coords, attrs=attrs)


class VirtualCube:
    """What the variables of one opened spec share: the request, each output's dims and dtype, the kernels.

    ``read(name, indices)`` evaluates output ``name`` on the outer product of ``indices`` (one index
    vector per dim of the output), one combination of categorical labels at a time.
    """

    def __init__(self, request: SweepRequest):
        from engine.runtime.categories import slabs  # the spec layer, as spec_request's load_spec

        self.request = request
        self.categories = tuple(request.categories)
        seen = cube_outputs(request)
        self.dtypes = dict(seen.dtypes)
        self.dims = {q: tuple(seen.dims[q]) for q in self.dtypes}
        self.slabs = {tuple(s.labels.values()): s for s in slabs(request)}
        self.lock = threading.Lock()
        self._budget: int | None = None

    def __getstate__(self) -> dict:  # pickled for dask's process schedulers: a new lock on the other side
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, lock=threading.Lock())

    # -- the variables --------------------------------------------------------------------------------

    def variable(self, name: str) -> xr.Variable:
        """Output ``name`` as a lazy variable, encoded as the written file holds it."""
        from engine.sinks.attrs import fill_value, variable_attrs

        attrs = dict(variable_attrs(self.request, self.request.formulas, name))
        if "valid" in self.dtypes and name != "valid":
            attrs["_FillValue"] = fill_value(self.dtypes[name])
        array = indexing.LazilyIndexedArray(QuantityArray(self, name))
        return xr.Variable(self.dims[name], array, attrs=attrs)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(len(self.request.axes[d]) for d in self.dims[name])

    # -- reading --------------------------------------------------------------------------------------

    def read(self, name: str, indices: Sequence[np.ndarray]) -> np.ndarray:
        """Output ``name`` on the outer product of ``indices`` (one index vector per dim of the output)."""
        dims = self.dims[name]
        shape = tuple(len(i) for i in indices)
        dtype = self.dtypes[name]
        self.check_size(name, shape)
        out = np.empty(shape, dtype)
        if 0 in shape:
            return out
        at = dict(zip(dims, (np.asarray(i, np.int64) for i in indices)))
        numeric = {d: i for d, i in at.items() if d not in self.categories}
        with self.lock:
            for where, slab in self.combinations(dims, at):
                self.evaluate(slab, name, numeric, out[where + (Ellipsis,)])  # a view, also of a 0-d block
        return out

    def combinations(self, dims: Sequence[str], at: Mapping[str, np.ndarray]) -> Iterator[tuple[tuple, Any]]:
        """(where in the read's block, slab) of each combination of categorical labels a read covers (a
        categorical dim the output lacks: its first label)."""
        positions = [at.get(c, np.zeros(1, np.int64)) for c in self.categories]
        for picked in itertools.product(*(range(len(p)) for p in positions)):
            labels = tuple(self.request.axes[c][p[j]].item() for c, p, j in zip(self.categories, positions, picked))
            chosen = dict(zip(self.categories, picked))
            yield tuple(chosen.get(d, slice(None)) for d in dims), self.slabs[labels]

    def evaluate(self, slab, name: str, at: Mapping[str, np.ndarray], out: np.ndarray) -> None:
        """Output ``name`` of one combination (``slab``) over the numeric dims ``at`` names, at those indices,
        into ``out`` (a view of the read's block, in the cube's dtype); piece by piece, every other axis at its
        first coordinate."""
        from engine.runtime.sweep import kernel_for

        kernel = kernel_for(slab.request, slab.dims)
        if name not in kernel.dtypes:  # ``valid`` of a combination without validity conditions
            out[...] = 1
            return
        want = tuple(at)
        axes = slab.request.axes
        values = {a: axes[a][i] for a, i in at.items()}
        for piece in pieces(out.shape, kernel.dtypes[name].itemsize, self.budget()):
            part = {a: v[p] for (a, v), p in zip(values.items(), piece)}
            coords = {a: padded(part[a]) if a in part else axes[a][:1] for a in kernel.axes}
            block = on_dims(evaluate_one(kernel, name, coords), kernel.dims[name], want, coords)
            out[piece] = cube_values(block[tuple(slice(0, len(part[a])) for a in want)], out.dtype)

    def budget(self) -> int:
        """Device bytes one piece of a read may take (``plan.default_budget``, asked once)."""
        if self._budget is None:
            self._budget = default_budget()
        return self._budget

    def check_size(self, name: str, shape: Sequence[int]) -> None:
        """Refuse a read whose values would take more than ``READ_MEMORY_FRACTION`` of the available host memory."""
        points = math.prod(shape)
        need = points * self.dtypes[name].itemsize
        available = available_host_memory()
        if need > READ_MEMORY_FRACTION * available:
            raise ResourceError(
                f"{self.request.source}: reading {name} over {_dims_text(self.dims[name], shape)} needs "
                f"{format_bytes(need)} ({points:,} points) and one read may use {READ_MEMORY_FRACTION:.0%} of the "
                f"{format_bytes(available)} of host memory available: read a smaller slab (.isel, .sel) or open "
                "with chunks= to reduce it chunk by chunk")


def cube_outputs(request: SweepRequest):
    """The cube's outputs as the sinks see them (``sweep.run``): the kernel of a plain request, a
    ``categories.Stack`` of a categorical one; each has ``dtypes`` (output order, ``valid`` last) and
    ``dims`` (natural dims, ``engine.runtime.dims``)."""
    if request.categories:
        from engine.runtime.categories import Stack

        return Stack(request)
    from engine.runtime.sweep import kernel_for

    return kernel_for(request)


def on_dims(values: np.ndarray, own: Sequence[str], want: Sequence[str], coords: Mapping[str, np.ndarray]):
    """A kernel output over its ``own`` dims -> over ``want`` (lengths of ``coords``): at the first point of a dim
    it has beyond them, broadcast along the ones it lacks (its values do not change along them)."""
    values = values[tuple(slice(None) if a in want else 0 for a in own)]
    kept = [a for a in own if a in want]
    return np.broadcast_to(expand(values, kept, want), tuple(len(coords[a]) for a in want))


def cube_values(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A combination's values in the cube's ``dtype``: an int64 fill that becomes a float becomes NaN."""
    if values.dtype == dtype:
        return values
    out = values.astype(dtype)
    if values.dtype.kind == "i" and out.dtype.kind == "f":
        out[values == INT64_FILL] = np.nan  # every quantity is >= 0: the fill is never a result
    return out


# -- one output on a grid ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OneOutput:
    """A kernel ``wrap`` (``Kernel.compile_for``) keeping one output and its overflow flag: XLA drops the rest."""

    name: str

    def __call__(self, evaluate):
        name = self.name

        def one(*args):
            out, overflow = evaluate(*args[:-1])  # the last argument is the wrap's count, unused
            return {name: out[name]}, {k: v for k, v in overflow.items() if k == name}

        return one


def evaluate_one(kernel, name: str, coords: Mapping[str, np.ndarray]) -> np.ndarray:
    """Output ``name`` of ``kernel`` on the grid of ``coords`` (one vector per axis), on the host over its own
    dims (``kernel.dims``), after the overflow check."""
    arrays = kernel.prepare(coords)
    count = np.asarray(0, kernel.numerics.count_dtype)
    out, overflow = kernel.dispatch(arrays, None, OneOutput(name), count)
    with kernel.numerics.scope():
        kernel.check(overflow)
        return np.asarray(out[name])


def padded_length(n: int) -> int:
    """``n`` rounded up to one of 8 lengths per octave (17 -> 18, 1000 -> 1024): at most 1/8 more points,
    and slices of nearby lengths share one compiled executable."""
    if n <= 8:
        return n
    unit = 1 << (n.bit_length() - 4)
    return -(-n // unit) * unit


def padded(values: np.ndarray) -> np.ndarray:
    """Coordinates padded to ``padded_length`` by repeating the last one (the padding is cut afterwards)."""
    extra = padded_length(len(values)) - len(values)
    return np.concatenate([values, np.repeat(values[-1:], extra)]) if extra else values


def pieces(shape: Sequence[int], itemsize: int, budget: int) -> Iterator[tuple[slice, ...]]:
    """Slices cutting a read of ``shape`` into pieces whose values fit ``budget`` (``plan.plan_chunks``)."""
    if not shape:
        yield ()
        return
    plan = plan_chunks(shape, itemsize, budget)
    s = plan.split_axis
    for outer, lo, hi in plan.chunks():
        yield tuple(slice(o, o + 1) for o in outer) + (slice(lo, hi),) + (slice(None),) * (len(shape) - s - 1)


# -- the lazy array ------------------------------------------------------------------------------------


class QuantityArray(BackendArray):
    """One output of a virtual cube on its dims: indexing evaluates the indexed slab (BASIC and OUTER indexing)."""

    def __init__(self, cube: VirtualCube, name: str):
        self.cube, self.name = cube, name
        self.shape = cube.shape(name)
        self.dtype = cube.dtypes[name]

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key: tuple) -> np.ndarray:
        indices, squeeze = outer_indices(key, self.shape)
        return self.cube.read(self.name, indices)[squeeze]


def outer_indices(key: tuple, shape: Sequence[int]) -> tuple[list[np.ndarray], tuple]:
    """An outer key (an int, slice or 1-D integer array per dim) -> one index vector per dim, and the
    index that drops the dims an integer selected."""
    indices, squeeze = [], []
    for k, n in zip(key, shape):
        if isinstance(k, slice):
            indices.append(np.arange(*k.indices(n)))
            squeeze.append(slice(None))
        elif np.ndim(k) == 0:
            indices.append(np.array([int(k) % n if n else int(k)]))
            squeeze.append(0)
        else:
            k = np.asarray(k, np.int64)
            indices.append(np.where(k < 0, k + n, k))
            squeeze.append(slice(None))
    return indices, tuple(squeeze)


# -- the outline ---------------------------------------------------------------------------------------


def outline(spec_path) -> str:
    """What ``llm-sweep open SPEC`` prints: the virtual cube's dims, points and variables (nothing evaluated).

    (A run's report is ``SweepResult.report``; this describes a spec's cube before anything is computed.)
    """
    ds = open_cube(spec_path)
    request_text = ds.attrs.get("arch") or ds.attrs.get("formula_set", "")
    lines = [f"llm-sweep virtual cube: {spec_path} ({request_text}, numerics {ds.attrs.get('numerics', '')})",
             f"  dims       {' x '.join(f'{d}={n:,}' for d, n in ds.sizes.items())}",
             f"  points     {math.prod(ds.sizes.values()):,}, none evaluated: a slab is computed when read",
             f"  variables  {len(ds.data_vars)}"]
    rows = [(name, f"({', '.join(var.dims)})", str(np.dtype(var.encoding.get("dtype", var.dtype))),
             var.attrs.get("units", "")) for name, var in ds.data_vars.items()]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    for row in rows:
        lines.append("    " + "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths + [0])).rstrip())
    if "query_ignored" in ds.attrs:
        lines.append(f"  query      {ds.attrs['query_ignored']}")
    return "\n".join(lines)


def _dims_text(dims: Sequence[str], shape: Sequence[int]) -> str:
    return " x ".join(f"{d}={n:,}" for d, n in zip(dims, shape)) or "no dims"
