"""Where a run's chunks go: one ``Sink`` per kind of output.

``sweep.run(request, sink)`` is the one pipeline: it builds the kernel, asks the sink to check
the run before anything is computed, plans the chunks, compiles (with the sink's device-side
function, if any), streams every chunk into ``sink.consume`` and returns ``sink.finish(...)``.
A new output format is one class here with these five methods:

    prepare(request, kernel)          refuse what cannot work before any compile (memory, disk,
                                      target); nothing is written yet
    device_function(request, kernel, plan)
                                      None (the kernel's outputs come back to the host), or a
                                      hashable wrapper run on the device around the kernel's
                                      evaluate function (``query.QueryFunction``)
    start(request, kernel, plan)      open what the sink writes into
    consume(index, n_valid, out)      one chunk: ``index`` holds a slice per axis, ``n_valid`` the
                                      real length of the split axis (the rest is padding), ``out``
                                      the device result (``Slab.to_host`` copies out the outputs
                                      the chunk writes, each over its own dims)
    finish(timing) -> SweepResult     close and describe the result; ``abort()`` undoes ``start``
                                      on any error or signal (the pipeline calls it)

and, to take cubes with categorical dims (``request.categories``), a sixth:

    slab(slab)                        the chunks that follow come from one combination of labels
                                      (``categories.Slab``: its labels, its kernel, ``to_host``
                                      placing a chunk in the cube); called before each
                                      combination's chunks (once for a plain cube)

For a categorical cube ``prepare`` and ``start`` get the whole request and a ``categories.Stack``
(the cube's outputs and dtypes) for the kernel, ``device_function`` each combination's plain
request and kernel, and ``consume`` indices over every dim of the cube (length-1 slices along the
categorical dims). The plan is the numeric axes' plan, the same for every combination.

Natural dims: every output spans its own dims (``kernel.dims``: output -> dims, of a ``Kernel`` or a
``Stack``; ``engine.runtime.dims``). A chunk's block of an output goes to ``dims.own_index(index,
axes, dims)``, and only the chunk that starts at 0 along the dims it lacks hands it over. Sizes
(memory, disk) are the outputs' real ones (``result_bytes``).

Sinks here: ``MemorySink`` (an ``xarray.Dataset`` in host memory), ``NetCDFSink`` (streamed,
atomic netCDF file), ``QuerySink`` (on-device reduction to a small dataset).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
import xarray as xr

from engine.runtime.categories import Slab, cube_shape
from engine.runtime.compile import Kernel
from engine.runtime.dims import own_index
from engine.sinks.dataset import (StreamWriter, build_dataset, coordinate_attrs, dataset_attrs, largest, masked_variable,
                      precision_note)
from engine.errors import ResourceError, SpecError
from engine.files import check_target
from engine.runtime.plan import ChunkPlan, Footprint, available_host_memory, format_bytes
from engine.request.query import Query
from engine.runtime.query import (QueryAccumulator, QueryFunction, clipping_ends, edge_attrs, edge_flags, edge_name,
                                  has_edges)
from engine.request.spec import SweepRequest
from engine.sinks.result import Extremes, SweepResult, Timing

HOST_MEMORY_FRACTION = 0.5


class Sink(Protocol):
    def prepare(self, request: SweepRequest, kernel: Kernel) -> None: ...

    def device_function(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan): ...

    def start(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> None: ...

    def consume(self, index: tuple, n_valid: int, device_out) -> None: ...

    def slab(self, slab: Slab) -> None: ...

    def finish(self, timing: Timing): ...

    def abort(self) -> None: ...


def result_bytes(request: SweepRequest, kernel: Kernel) -> int:
    """Uncompressed bytes of the full result cube: every output over its own dims."""
    return Footprint.of(kernel.dtypes, kernel.dims, list(request.axes)).bytes(request.shape)


def chunk_points(index: tuple) -> int:
    """Grid points of a chunk (``index``: one slice with explicit bounds per dim, padding excluded)."""
    return math.prod(ix.stop - ix.start for ix in index)


class MemorySink:
    """The labelled cube in host memory (refused when it would take more than half the available memory)."""

    def prepare(self, request: SweepRequest, kernel: Kernel) -> None:
        need = result_bytes(request, kernel)
        available = available_host_memory()
        if need > HOST_MEMORY_FRACTION * available:
            raise ResourceError(
                f"{request.source}: the result cube needs {format_bytes(need)} of host memory "
                f"({request.points:,} points x {len(request.quantities)} quantities); {format_bytes(available)} are "
                "available and an in-memory run may use half: stream it to a file (llm-sweep run -o), ask an "
                "on-device query, or shrink the axes")

    def device_function(self, request, kernel, plan):
        return None

    def start(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> None:
        self.request, self.kernel, self.plan = request, kernel, plan
        self.axes = list(request.axes)
        self.results = {q: np.empty(tuple(len(request.axes[a]) for a in kernel.dims[q]), dtype=kernel.dtypes[q])
                        for q in kernel.quantities}

    def slab(self, slab: Slab) -> None:
        self.current = slab

    def consume(self, index, n_valid, device_out) -> None:
        blocks = self.current.to_host(device_out, self.plan.split_axis, n_valid, self.kernel.dtypes, index)
        for q, block in blocks.items():
            self.results[q][own_index(index, self.axes, self.kernel.dims[q])] = block

    def finish(self, timing: Timing):

        ds = build_dataset(self.request, self.results, self.request.formulas, self.kernel.dims)
        return SweepResult(ds, self.request.points, timing.compile_seconds, timing.loop_seconds, plan=timing.plan,
                           n_devices=timing.n_devices, combinations=timing.slabs)

    def abort(self) -> None:
        self.results = {}


class NetCDFSink:
    """The cube streamed into a netCDF file at ``path``: chunk by chunk, host memory bounded, atomic.

    A writer thread puts chunk k into its hyperslab while chunk k+1 computes. With compression
    the compressed size is unknown beforehand: after each chunk the projected file size is
    compared with the free disk, and the run stops (deleting its temporary file) as soon as it
    cannot fit. ``track`` names the quantities whose min/max the summary reports.
    """

    def __init__(self, path: str | os.PathLike, inputs=(), track: list[str] | None = None):
        self.target, self.inputs, self.track = Path(path), tuple(inputs), track

    def prepare(self, request: SweepRequest, kernel: Kernel) -> None:
        check_target(self.target, self.inputs)
        need = result_bytes(request, kernel)
        free = shutil.disk_usage(self.target.parent).free
        if request.compression == 0 and need > free:
            raise ResourceError(
                f"the cube needs {format_bytes(need)} uncompressed ({request.points:,} points x {len(request.quantities)} "
                f"quantities) and {self.target.parent} has {format_bytes(free)} free: enable compression, free space, "
                "ask an on-device query, or shrink the axes")

    def device_function(self, request, kernel, plan):
        return None

    def start(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> None:

        self.request, self.kernel, self.plan = request, kernel, plan
        self.extremes = Extremes(self.track if self.track is not None else request.headline, request.axes,
                                 kernel.dims)
        file_chunk = cube_shape(request, plan.file_chunk) if plan.file_chunk else plan.file_chunk
        self.writer = StreamWriter(self.target, request, request.formulas, kernel.dtypes, file_chunk,
                                   request.compression, self.inputs, kernel.dims)
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future = None
        self.write_busy = 0.0
        self.done = 0

    def _write(self, index, block) -> None:
        w0 = time.perf_counter()
        self.writer.write(index, block)
        self.write_busy += time.perf_counter() - w0

    def slab(self, slab: Slab) -> None:
        self.current = slab

    def consume(self, index, n_valid, device_out) -> None:
        block = self.current.to_host(device_out, self.plan.split_axis, n_valid, self.kernel.dtypes, index)
        if self.future is not None:
            self.future.result()  # at most one chunk waits for the disk
            self._check_disk()
        self.extremes.add(index, block)
        self.future = self.pool.submit(self._write, index, block)
        self.done += chunk_points(index)

    def _check_disk(self) -> None:
        # outputs written once (without the split or walked dims) come with the first chunk: the projection
        # over-estimates, never under-estimates
        written = os.path.getsize(self.writer.tmp)
        if self.done and written:
            projected = written * self.request.points / self.done
            free = shutil.disk_usage(self.target.parent).free
            if projected - written > free:
                raise ResourceError(
                    f"stopped: the file is projected to reach {format_bytes(projected)} and {self.target.parent} has "
                    f"{format_bytes(free)} free; nothing was left at {self.target}")

    def finish(self, timing: Timing):

        f0 = time.perf_counter()
        if self.future is not None:
            self.future.result()
        self.pool.shutdown(wait=True)
        w0 = time.perf_counter()
        self.writer.commit()
        self.write_busy += time.perf_counter() - w0
        total = timing.loop_seconds + (time.perf_counter() - f0)
        busy = min(self.write_busy, total)
        return SweepResult(None, self.request.points, timing.compile_seconds, total - busy, busy, path=self.target,
                           plan=timing.plan, n_devices=timing.n_devices, extremes=self.extremes,
                           combinations=timing.slabs)

    def abort(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=True)  # the writer thread is done before its file is removed
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.abort()


class QuerySink:
    """An on-device ``Query``: constraints as masks and reductions inside the kernel; a small dataset.

    Of a categorical cube, each combination's kernel reduces the numeric ``over`` dims on the device
    and the accumulator, which spans every dim of the cube, combines the combinations on the host
    (the categorical ``over`` dims; ties keep the first point in grid order, as on the device).
    """

    def __init__(self, query: Query):
        self.query = query

    def prepare(self, request, kernel) -> None:
        if self.query.objective in request.categories:
            raise SpecError(request.source, "query", f"the objective {self.query.objective} is a categorical dim; "
                                                     "maximize or minimize a quantity or a numeric axis")

    def device_function(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> QueryFunction:
        # only the objective and constrained quantities matter, but the kernel computes the
        # requested set; XLA drops whatever the reduction does not use
        axes = list(request.axes)
        q = self.query
        if q.objective is None:
            dtype = np.dtype(np.int64)
        elif q.objective in kernel.dtypes:
            dtype = kernel.dtypes[q.objective]
        else:  # a swept input
            dtype = kernel.prepare({a: request.axes[a][:1] for a in axes})[axes.index(q.objective)].dtype
        self.dtype = dtype
        self.qf = QueryFunction(q, axes, plan.split_axis, dtype.kind == "i", kernel.dims)
        return self.qf

    def start(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> None:
        self.request, self.kernel, self.plan = request, kernel, plan
        dtype = np.dtype(kernel.dtypes.get(self.query.objective, self.dtype))
        # the reduction over the cube's dims (the device's spans a combination's numeric axes)
        self.cube = QueryFunction(self.query, list(request.axes), plan.split_axis, dtype.kind == "i") \
            if request.categories else self.qf
        self.acc = QueryAccumulator(self.cube, request.shape, [request.axes[a] for a in request.axes], dtype)

    def slab(self, slab: Slab) -> None:
        self.current = slab.kernel

    def consume(self, index, n_valid, device_out) -> None:
        result, overflow = device_out
        with self.current.numerics.scope():
            self.current.check(overflow)
            host = {k: np.asarray(v) for k, v in result.items()}
        qf = self.qf
        if self.plan.split_axis in qf.keep:  # drop padding on a kept split axis
            pos = qf.keep.index(self.plan.split_axis)
            host = {k: v[(slice(None),) * pos + (slice(0, n_valid),)] for k, v in host.items()}
        chunk_shape = tuple(len(range(*ix.indices(n))) for ix, n in zip(index, self.request.shape))
        self.acc.add(index, chunk_shape, host)

    def finish(self, timing: Timing):

        ds = query_dataset(self.request, self.query, self.cube, self.acc)
        return SweepResult(ds, self.request.points, timing.compile_seconds, timing.loop_seconds, plan=timing.plan,
                           n_devices=timing.n_devices, combinations=timing.slabs)

    def abort(self) -> None:
        pass


def query_dataset(request: SweepRequest, query: Query, qf: QueryFunction, acc: QueryAccumulator) -> xr.Dataset:
    """The query's answer over the kept dims.

    ``n_feasible`` is a count (0 is a real answer). Where it is 0 nothing is feasible and the
    objective and ``best_<dim>`` hold the fill value, as invalid points of a cube do
    (``dataset.masked_variable``): NaN in memory and once read back, ``_FillValue`` in the file
    (NaN for floats, ``numerics.INT64_FILL`` for int64 variables, which are float64 in memory).
    """
    formulas = request.formulas
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
                "units": q.units, "long_name": f"{query.sense} of {q.long_name} ({described}); NaN where "
                                              "n_feasible is 0", "query": described, "source": q.source, **note},
                feasible)
        else:
            data[f"{query.sense}_{query.objective}"] = masked_variable(keep, best, {
                **coordinate_attrs(query.objective),
                "long_name": f"{query.sense} {query.objective} ({described}); NaN where n_feasible is 0",
                "query": described, **note}, feasible)
        for i in qf.reduce:
            a = axes[i]
            if a == query.objective:
                continue
            values = request.axes[a][acc.best_index[i]]  # a categorical dim's: the labels
            fill = '""' if values.dtype.kind == "U" else "NaN"
            data[f"best_{a}"] = masked_variable(keep, values, {
                **coordinate_attrs(a), "long_name": f"{a} where the {query.sense} is reached; {fill} where n_feasible "
                                                    "is 0"}, feasible)
            if a in request.categories:  # a file holds the labels' codes, in the dim's order (sinks.categorical)
                data[f"best_{a}"].encoding["labels"] = request.axes[a].tolist()
        add_edge_flags(request, query, data, keep)
    attrs = dataset_attrs(request, formulas)
    attrs["query"] = described
    return xr.Dataset(data, coords=coords, attrs=attrs)


def add_edge_flags(request: SweepRequest, query: Query, data: dict, keep: list[str]) -> None:
    """``at_edge_<dim>`` beside a query's answer, for each reduced dim with ends (``query.has_edges``, not a
    categorical dim): 1 where the best point sits on an end of the axis that can clip it (``query.clipping_ends``),
    0 inside, the fill where nothing fits (int8 on disk, ``_FillValue`` -127; float64 with NaN in memory, as ``masked_variable``
    holds integers). The answer along the dim (``best_<dim>``, or ``max_<dim>`` for the objective's own axis)
    names its flag in ``ancillary_variables``, the objective every flag; both count the cells on an edge in
    ``cells_at_edge``."""
    objective = query.objective if query.objective in data else f"{query.sense}_{query.objective}"
    flags = {}
    for dim in query.over:
        axis = request.axes[dim]
        if dim in request.categories or not has_edges(axis):
            continue
        answer = objective if dim == query.objective else f"best_{dim}"
        best, ends = data[answer].values, clipping_ends(dim, axis, query.objective, query.sense)
        if not ends:  # the objective's own axis starting at its smallest value, minimized: nothing beyond
            continue
        flag = edge_flags(best, axis, ends)
        name = edge_name(dim)
        data[name] = xr.Variable(keep, flag, attrs=edge_attrs(answer, dim, best, axis, ends),
                                 encoding={"dtype": np.dtype(np.int8), "_FillValue": np.int8(-127)})
        flags[name] = flag
        if answer != objective:
            _note_edges(data[answer], [name], flag)
    if flags:
        _note_edges(data[objective], list(flags), np.fmax.reduce(list(flags.values())))


def _note_edges(variable: xr.Variable, flags: list[str], at_edge: np.ndarray) -> None:
    """Link an answer to its flags (CF ``ancillary_variables``) and count its cells on an edge."""
    variable.attrs["ancillary_variables"] = " ".join(flags)
    variable.attrs["cells_at_edge"] = int(np.nansum(at_edge))
