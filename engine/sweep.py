"""Run a ``SweepRequest`` chunk by chunk: in memory, streamed to netCDF, or as an on-device query.

Chunks come from ``plan.plan_chunks``. Evaluation is asynchronous: chunk k+1 is dispatched
to the device before chunk k is copied out, and a writer thread puts chunk k into its netCDF
hyperslab while chunk k+1 computes. At most two chunks of outputs are alive on the host.
Sharding: when several local devices exist, each chunk's split axis is sharded across them.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import jax
import numpy as np
import xarray as xr

from .compile import Kernel, compile_kernel
from .dataset import (StreamWriter, build_dataset, coordinate_attrs, dataset_attrs, largest, masked_variable,
                      precision_note, request_record)
from .errors import ResourceError
from . import signals
from .files import check_target
from .formulas import build_formula_set
from .plan import ChunkPlan, available_host_memory, default_budget, plan_chunks
from .query import Query, QueryAccumulator, QueryFunction
from .spec import SweepRequest

HOST_MEMORY_FRACTION = 0.5
MIN_CHUNK_POINTS = 1024  # an explicit budget may not ask for chunks smaller than this (or one row)
_KERNELS: dict[tuple, Kernel] = {}


@dataclass
class SweepResult:
    """A finished run: the dataset (or the written path) and how long each stage took (seconds)."""

    dataset: xr.Dataset | None
    points: int
    compile_seconds: float
    eval_seconds: float
    write_seconds: float = 0.0
    path: Path | None = None
    plan: ChunkPlan | None = None
    n_devices: int = 1
    extremes: "Extremes | None" = None
    coords: dict | None = None
    units: dict | None = None

    @property
    def seconds(self) -> float:
        return self.compile_seconds + self.eval_seconds + self.write_seconds

    @property
    def points_per_second(self) -> float:
        return self.points / self.eval_seconds if self.eval_seconds > 0 else math.inf

    def summary(self, headline: list[str], source: str = "") -> str:
        """A short report: dims, points, timings, file size, min/max of ``headline``."""
        ds = self.dataset if self.dataset is not None else xr.open_dataset(self.path)  # lazy: attrs only
        try:
            dims = " x ".join(f"{d}={n}" for d, n in ds.sizes.items())
            lines = [
                f"llm-sweep run: {source or '(spec)'}" + (f" -> {self.path}" if self.path else ""),
                f"  dims      {dims}",
                f"  points    {self.points:,} x {len(ds.data_vars)} variables ({ds.attrs.get('precision', '')})",
                f"  seconds   {self.seconds:.2f} (compile {self.compile_seconds:.2f}, evaluate "
                f"{self.eval_seconds:.2f}, write {self.write_seconds:.2f})",
                f"  rate      {self.points_per_second:,.0f} points/s"
                + (f" on {self.n_devices} devices" if self.n_devices > 1 else ""),
            ]
            if self.plan is not None and self.plan.n_chunks > 1:
                lines.append(f"  chunks    {self.plan.n_chunks} of {self.plan.chunk_points:,} points")
            if self.path is not None:
                raw = sum(v.size * v.dtype.itemsize for v in ds.data_vars.values())
                lines.append(f"  file      {_human(self.path.stat().st_size)} ({_human(raw)} uncompressed)")
            shown = [q for q in headline if q in ds.data_vars] or list(ds.data_vars)[:3]
            width = max((len(q) for q in shown), default=0)
            if "valid" in ds.data_vars and self.extremes is not None and not self.extremes.best:
                lines.append("  no valid grid point: every point breaks " + ds["valid"].attrs.get("conditions", ""))
                shown = []
            elif "valid" in ds.data_vars and self.extremes is None and not ds["valid"].values.any():
                lines.append("  no valid grid point: every point breaks " + ds["valid"].attrs.get("conditions", ""))
                shown = []
            elif "n_feasible" in ds.data_vars and "query" in ds.attrs:
                feasible = ds["n_feasible"].values > 0
                if not feasible.any():  # a query nothing satisfies: no min/max of fill values
                    lines.append(f"  nothing fits: no grid point satisfies {_constraints(ds.attrs['query'])}; "
                                 "n_feasible is 0 everywhere and the other variables hold NaN")
                    shown = []
                elif not feasible.all():
                    lines.append(f"  nothing fits in {int((~feasible).sum()):,} of {feasible.size:,} cells "
                                 "(n_feasible 0; the other variables hold NaN there)")
            for q in shown:
                if self.extremes is not None and q in self.extremes.names:
                    low, high = (self._tracked(ds, q, w) for w in ("min", "max"))
                else:
                    valid = ds["valid"] if "valid" in ds else None
                    low, high = _extreme(ds[q], "min", valid), _extreme(ds[q], "max", valid)
                lines.append(f"  {q:<{width}}  {low}   {high}")
            return "\n".join(lines)
        finally:
            if self.dataset is None:
                ds.close()

    def _tracked(self, ds: xr.Dataset, q: str, which: str) -> str:
        value, where = self.extremes.best[(q, which)]
        dims = list(ds[q].dims)
        at = ", ".join(f"{d}={ds[d].values[i]}" for d, i in zip(dims, where))
        shown = _human(float(value)) if ds[q].attrs.get("units") == "bytes" else _count(value)
        return f"{which} {shown} at {at}" if at else f"{which} {shown}"


# -- building blocks ---------------------------------------------------------------------------


def kernel_for(request: SweepRequest) -> Kernel:
    """The compiled kernel of ``request`` (cached in-process): fixed values folded in.

    Validity conditions of the formula set (``n_kv_heads`` divides ``n_heads``, ...) that depend
    on swept inputs become a ``valid`` output; invalid grid points hold the fill value (NaN once
    read; see ``dataset.INT64_FILL``).
    """
    formulas = request.formulas or build_formula_set(request.formula_set, request.options)
    key = (request.arch, request.formula_set, tuple(sorted(request.options.items())),
           tuple(sorted(request.fixed.items())), tuple(request.axes), tuple(request.quantities), request.precision,
           tuple(sorted((k, str(v)) for k, v in formulas.defaults.items())))
    if key not in _KERNELS:
        given = {**{k: None for k in request.axes}, **request.fixed}
        exprs = {q: formulas.resolve(q, given) for q in request.quantities}
        integer = {q: formulas.quantities[q].integer for q in request.quantities}
        conditions = [cond for _, cond in formulas.conditions(given)]
        # real quantities that count bytes are refused at 2**63 like int64 ones (see compile.py)
        counts = [q for q in request.quantities if formulas.quantities[q].units == "bytes"]
        _KERNELS[key] = compile_kernel(exprs, integer, list(request.axes), request.precision, conditions, counts)
    return _KERNELS[key]


def result_bytes(request: SweepRequest, kernel: Kernel) -> int:
    """Uncompressed bytes of the full result cube."""
    return request.points * bytes_per_point(request, kernel)


def bytes_per_point(request: SweepRequest, kernel: Kernel) -> int:
    return sum(kernel.dtypes[q].itemsize for q in kernel.quantities)


def plan_for(request: SweepRequest, kernel: Kernel, budget: int | None = None) -> ChunkPlan:
    """The chunk plan of ``request`` for a device budget (default: ``plan.default_budget``).

    A budget below one grid row (the last axis's points, at most ``MIN_CHUNK_POINTS``), twice over
    since one chunk is evaluated while one is copied out, is refused: it would cut the grid into
    single points and run for minutes.
    """
    per_point = bytes_per_point(request, kernel)
    if budget is not None:
        points = min(request.shape[-1], MIN_CHUNK_POINTS)
        row = 2 * per_point * points
        if budget < row:
            raise ResourceError(
                f"a device memory budget of {budget:,} bytes is below one grid row: the smallest chunk is one row "
                f"of {list(request.axes)[-1]} ({points:,} points x {per_point} bytes, twice over for double "
                f"buffering = {row:,} bytes); give at least that")
    return plan_chunks(request.shape, per_point, budget or default_budget(), len(jax.local_devices()))


def _chunks(request: SweepRequest, plan: ChunkPlan) -> Iterator[tuple[tuple, dict, int]]:
    """Yield (index slices per axis, padded coordinates per axis, valid length on the split axis)."""
    axes = list(request.axes)
    s = plan.split_axis
    for outer, lo, hi in plan.chunks():
        index, coords = [], {}
        for i, a in enumerate(axes):
            values = request.axes[a]
            if i < s:
                index.append(slice(outer[i], outer[i] + 1))
                coords[a] = values[outer[i]:outer[i] + 1]
            elif i == s:
                index.append(slice(lo, hi))
                block = values[lo:hi]
                if hi - lo < plan.block:  # pad with the last coordinate: one executable for all
                    block = np.concatenate([block, np.repeat(block[-1:], plan.block - (hi - lo))])
                coords[a] = block
            else:
                index.append(slice(None))
                coords[a] = values
        yield tuple(index), coords, hi - lo


def _pipeline(kernel: Kernel, request: SweepRequest, plan: ChunkPlan, consume: Callable, wrap=None,
              progress: "Progress | None" = None) -> None:
    """Evaluate every chunk, dispatching chunk k+1 before handing chunk k to ``consume``."""
    shard = plan.split_axis if len(jax.local_devices()) > 1 else None
    pending = None
    chunk_points = math.prod(n for i, n in enumerate(plan.chunk_shape) if i != plan.split_axis)
    for index, coords, n_valid in _chunks(request, plan):
        signals.check()  # a stop signal whose exception was swallowed is honoured between chunks
        arrays = kernel.prepare(coords)
        extra = (np.asarray(n_valid, np.int64 if kernel.precision == "exact" else np.int32),) if wrap else ()
        current = (index, n_valid, kernel.dispatch(arrays, shard, wrap, *extra))
        if pending is not None:
            consume(*pending)
            if progress:
                progress.update(chunk_points * pending[1])
        pending = current
    if pending is not None:
        consume(*pending)
        if progress:
            progress.update(chunk_points * pending[1])


def _host_block(kernel: Kernel, device_out, split_axis: int, n_valid: int) -> dict[str, np.ndarray]:
    out, overflow = device_out
    with jax.enable_x64(kernel.precision == "exact"):
        kernel.check(overflow)
        cut = tuple(slice(0, n_valid) if i == split_axis else slice(None) for i in range(split_axis + 1))
        return {q: np.asarray(out[q])[cut] for q in kernel.quantities}


def _compile(kernel: Kernel, plan: ChunkPlan, wrap=None) -> float:
    t0 = time.perf_counter()
    shard = plan.split_axis if len(jax.local_devices()) > 1 else None
    kernel.compile_for(plan.chunk_shape, shard, wrap)
    return time.perf_counter() - t0


# -- the three ways to run ---------------------------------------------------------------------


def run_sweep(request: SweepRequest, budget: int | None = None, progress: bool = False) -> SweepResult:
    """Evaluate every requested quantity on the grid; the labelled cube in host memory."""
    formulas = request.formulas or build_formula_set(request.formula_set, request.options)
    t0 = time.perf_counter()
    kernel = kernel_for(request)
    need = result_bytes(request, kernel)
    available = available_host_memory()
    if need > HOST_MEMORY_FRACTION * available:
        raise ResourceError(
            f"{request.source}: the result cube needs {_human(need)} of host memory "
            f"({request.points:,} points x {len(request.quantities)} quantities); {_human(available)} are "
            "available and an in-memory run may use half: stream it to a file (llm-sweep run -o), ask an "
            "on-device query, or shrink the axes"
        )
    plan = plan_for(request, kernel, budget)
    compile_seconds = time.perf_counter() - t0 + _compile(kernel, plan)

    t0 = time.perf_counter()
    results = {q: np.empty(request.shape, dtype=kernel.dtypes[q]) for q in kernel.quantities}

    def consume(index, n_valid, device_out):
        for q, block in _host_block(kernel, device_out, plan.split_axis, n_valid).items():
            results[q][index] = block

    _pipeline(kernel, request, plan, consume, progress=Progress(request.points, progress))
    eval_seconds = time.perf_counter() - t0
    return SweepResult(build_dataset(request, results, formulas), request.points, compile_seconds, eval_seconds,
                       plan=plan, n_devices=len(jax.local_devices()))


def preflight_path(target: Path, inputs=()) -> None:
    """Refuse an output path that cannot or must not be written (before any work is done).

    See ``files.check_target``: devices, FIFOs, folders, symbolic links and the command's own
    inputs are refused; so are missing or read-only folders and over-long names.
    """
    check_target(target, inputs)


def preflight(request: SweepRequest, kernel: Kernel, target: Path, compression: int, inputs=()) -> None:
    """Refuse a run whose output cannot fit on the target's disk (nothing is written)."""
    preflight_path(target, inputs)
    need = result_bytes(request, kernel)
    free = shutil.disk_usage(target.parent).free
    if compression == 0 and need > free:
        raise ResourceError(
            f"the cube needs {_human(need)} uncompressed ({request.points:,} points x {len(request.quantities)} "
            f"quantities) and {target.parent} has {_human(free)} free: enable compression, free space, ask an "
            "on-device query, or shrink the axes")


def run_to_netcdf(request: SweepRequest, path: str | os.PathLike, budget: int | None = None,
                  progress: bool = False, track: list[str] | None = None, inputs=()) -> SweepResult:
    """Stream the cube into netCDF at ``path``: chunk by chunk, host memory bounded, atomic.

    With compression the compressed size is unknown beforehand: after each chunk the projected
    file size is compared with the free disk, and the run stops (deleting its temporary file)
    as soon as it cannot fit.
    """
    formulas = request.formulas or build_formula_set(request.formula_set, request.options)
    target = Path(path)
    t0 = time.perf_counter()
    kernel = kernel_for(request)
    preflight(request, kernel, target, request.compression, inputs)
    plan = plan_for(request, kernel, budget)
    compile_seconds = time.perf_counter() - t0 + _compile(kernel, plan)

    t0 = time.perf_counter()
    write_busy = 0.0
    done = 0
    extremes = Extremes(track if track is not None else request.headline, request.shape)
    with StreamWriter(target, request, formulas, kernel.dtypes, plan.file_chunk, request.compression,
                      inputs) as writer, \
            ThreadPoolExecutor(max_workers=1) as pool:
        future = None

        def write(index, block):
            nonlocal write_busy
            w0 = time.perf_counter()
            writer.write(index, block)
            write_busy += time.perf_counter() - w0

        def consume(index, n_valid, device_out):
            nonlocal future, done
            block = _host_block(kernel, device_out, plan.split_axis, n_valid)
            if future is not None:
                future.result()  # at most one chunk waits for the disk
                _check_disk(writer, done, request.points, target)
            extremes.add(index, block)
            future = pool.submit(write, index, block)
            done += math.prod(b for b in next(iter(block.values())).shape)

        _pipeline(kernel, request, plan, consume, progress=Progress(request.points, progress))
        if future is not None:
            future.result()
        w0 = time.perf_counter()
        writer.commit()
        write_busy += time.perf_counter() - w0
    total = time.perf_counter() - t0
    return SweepResult(None, request.points, compile_seconds, total - min(write_busy, total), min(write_busy, total),
                       path=target, plan=plan, n_devices=len(jax.local_devices()), extremes=extremes)


def _check_disk(writer: StreamWriter, done: int, total: int, target: Path) -> None:
    written = os.path.getsize(writer.tmp)
    if done and written:
        projected = written * total / done
        free = shutil.disk_usage(target.parent).free
        if projected - written > free:
            raise ResourceError(
                f"stopped: the file is projected to reach {_human(projected)} and {target.parent} has "
                f"{_human(free)} free; nothing was left at {target}")


def run_query(request: SweepRequest, query: Query, budget: int | None = None, progress: bool = False) -> SweepResult:
    """Answer ``query`` on the device, chunk by chunk; a small Dataset over the kept dims."""
    formulas = request.formulas or build_formula_set(request.formula_set, request.options)
    t0 = time.perf_counter()
    kernel = kernel_for(request)
    # only the objective and constrained quantities matter, but the kernel computes the requested
    # set; XLA drops whatever the reduction does not use.
    plan = plan_for(request, kernel, budget)
    axes = list(request.axes)
    if query.objective is None:
        dtype = np.dtype(np.int64)
    elif query.objective in kernel.dtypes:
        dtype = kernel.dtypes[query.objective]
    else:  # a swept input
        dtype = kernel.prepare({a: request.axes[a][:1] for a in axes})[axes.index(query.objective)].dtype
    qf = QueryFunction(query, axes, plan.split_axis, dtype.kind == "i")
    compile_seconds = time.perf_counter() - t0 + _compile(kernel, plan, qf)
    acc = QueryAccumulator(qf, request.shape, [request.axes[a] for a in axes], dtype)

    t0 = time.perf_counter()

    def consume(index, n_valid, device_out):
        result, overflow = device_out
        with jax.enable_x64(kernel.precision == "exact"):
            kernel.check(overflow)
            host = {k: np.asarray(v) for k, v in result.items()}
        if plan.split_axis in qf.keep:  # drop padding on a kept split axis
            pos = qf.keep.index(plan.split_axis)
            host = {k: v[(slice(None),) * pos + (slice(0, n_valid),)] for k, v in host.items()}
        chunk_shape = tuple(len(range(*ix.indices(n))) for ix, n in zip(index, request.shape))
        acc.add(index, chunk_shape, host)

    _pipeline(kernel, request, plan, consume, wrap=qf, progress=Progress(request.points, progress))
    eval_seconds = time.perf_counter() - t0
    ds = query_dataset(request, formulas, query, qf, acc)
    return SweepResult(ds, request.points, compile_seconds, eval_seconds, plan=plan, n_devices=len(jax.local_devices()))


def query_dataset(request, formulas, query: Query, qf: QueryFunction, acc: QueryAccumulator) -> xr.Dataset:
    """The query's answer over the kept dims.

    ``n_feasible`` is a count (0 is a real answer). Where it is 0 nothing is feasible and the
    objective and ``best_<dim>`` hold the fill value, as invalid points of a cube do
    (``dataset.masked_variable``): NaN in memory and once read back, ``_FillValue`` in the file
    (NaN for floats, ``dataset.INT64_FILL`` for int64 variables, which are float64 in memory).
    """
    axes = list(request.axes)
    feasible = acc.n_feasible > 0
    keep = [axes[i] for i in qf.keep]
    coords = {a: xr.Variable(a, request.axes[a], attrs=coordinate_attrs(a)) for a in keep}
    described = query.describe()
    data = {"n_feasible": xr.Variable(keep, acc.n_feasible, attrs={
        "units": "1", "long_name": f"grid points over {', '.join(query.over)} satisfying the constraints",
        "query": described})}
    if query.objective:
        best = acc.best.astype(np.int64) if acc.best.dtype.kind in "iu" else acc.best
        note = precision_note(largest(best, feasible), acc.best.dtype)
        if query.objective in formulas.quantities:
            q = formulas.quantities[query.objective]
            data[query.objective] = masked_variable(keep, best, {
                "units": q.units, "long_name": f"{query.mode} of {q.long_name} ({described}); NaN where n_feasible "
                                              "is 0", "query": described, "source": q.source, **note}, feasible)
        else:
            data[f"{query.mode}_{query.objective}"] = masked_variable(keep, best, {
                **coordinate_attrs(query.objective),
                "long_name": f"{query.mode} {query.objective} ({described}); NaN where n_feasible is 0",
                "query": described, **note}, feasible)
        for i in qf.reduce:
            a = axes[i]
            if a == query.objective:
                continue
            values = request.axes[a][acc.best_index[i]]
            data[f"best_{a}"] = masked_variable(keep, values, {
                **coordinate_attrs(a), "long_name": f"{a} where the {query.mode} is reached; NaN where n_feasible "
                                                    "is 0"}, feasible)
    attrs = dataset_attrs(request, formulas)
    attrs["query"] = described
    return xr.Dataset(data, coords=coords, attrs=attrs)


class Extremes:
    """Running min/max (value and grid index) of some quantities, fed chunk by chunk."""

    def __init__(self, names, shape):
        self.names, self.shape = list(names), tuple(shape)
        self.best: dict[tuple[str, str], tuple] = {}

    def add(self, index: tuple, block: dict[str, np.ndarray]) -> None:
        valid = block["valid"].astype(bool) if "valid" in block else None
        if valid is not None and not valid.any():
            return
        for q in self.names:
            values = block[q]
            for which, pick, better in (("min", np.argmin, np.less), ("max", np.argmax, np.greater)):
                if valid is not None:  # invalid points hold the fill value: leave them out
                    fill = _far(values.dtype, which)
                    local = np.unravel_index(int(pick(np.where(valid, values, fill))), values.shape)
                else:
                    local = np.unravel_index(int(pick(values)), values.shape)
                value = values[local]
                where = tuple((ix.start or 0) + j for ix, j in zip(index, local))
                old = self.best.get((q, which))
                if old is None or better(value, old[0]) and not (valid is not None and not valid[local]):
                    self.best[(q, which)] = (value, where)


def process_share(request: SweepRequest, index: int, count: int) -> SweepRequest | None:
    """The part of ``request`` that process ``index`` of ``count`` computes (None if it has none).

    The first axis is cut into ``count`` contiguous, nearly equal ranges; every process writes
    its own range to its own file (``part_path``), and ``combine`` joins the files afterwards.
    """
    first = next(iter(request.axes))
    ranges = np.array_split(np.arange(len(request.axes[first])), count)
    mine = ranges[index]
    if mine.size == 0:
        return None
    axes = dict(request.axes)
    axes[first] = request.axes[first][mine[0]:mine[-1] + 1]
    return replace(request, axes=axes, part=(index, count, len(request.axes[first])),
                   record=request.record or request_record(request))


def part_path(path: str | os.PathLike, index: int, count: int) -> Path:
    """Where process ``index`` of ``count`` writes its share: ``OUT.part003-of-016.nc``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.part{index:03d}-of-{count:03d}{p.suffix or '.nc'}")


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (points done, points/s, ETA); silent unless enabled and a tty."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = bool(enabled) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.done = total, 0
        self.start = self.last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.2 and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate else 0
        frac = self.done / self.total if self.total else 1
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r[{bar:<30}] {frac:6.1%} {self.done:,}/{self.total:,} points "
                          f"{rate:,.0f}/s ETA {eta:,.0f}s ")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


# -- formatting ----------------------------------------------------------------------------------


def _far(dtype, which: str):
    """A value that never wins ``which`` (min or max) for ``dtype``."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return info.max if which == "min" else info.min
    return np.inf if which == "min" else -np.inf


def _extreme(var: xr.DataArray, which: str, valid: xr.DataArray | None = None) -> str:
    """``which`` (min or max) of ``var`` and where, over the points that hold a result.

    Invalid points (``valid`` 0) and fill values (NaN) are left out; when none is left the
    answer says so in words instead of printing a fill.
    """
    values = var.values
    keep = np.ones(values.shape, dtype=bool)
    if valid is not None and var.dims == valid.dims:
        keep &= valid.values.astype(bool)
    if values.dtype.kind == "f":
        keep &= ~np.isnan(values)
    if not keep.any():
        return f"{which}: no valid grid point (every value is a fill)"
    values = np.where(keep, values, _far(values.dtype, which))
    flat = int(np.argmin(values) if which == "min" else np.argmax(values))
    index = np.unravel_index(flat, values.shape)
    value = values[index]
    where = ", ".join(f"{d}={var[d].values[i]}" for d, i in zip(var.dims, index))
    if var.attrs.get("units") == "bytes":
        shown = _human(float(value))
    else:  # an int64 variable held as float64 with NaN fills still prints as an integer
        shown = _count(int(value) if np.dtype(var.encoding.get("dtype", values.dtype)).kind in "iu" else value)
    return f"{which} {shown} at {where}" if where else f"{which} {shown}"


def _constraints(described: str) -> str:
    """The constraints of a query's description (``Query.describe``)."""
    return described.split(" subject to ", 1)[1] if " subject to " in described else \
        described.split(" satisfying ", 1)[-1]


def _count(value) -> str:
    if isinstance(value, int) or np.issubdtype(type(value), np.integer):
        return f"{int(value):,}"
    return f"{float(value):.6g}"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"
