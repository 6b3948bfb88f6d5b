"""The one pipeline: ``run(request, sink)`` evaluates a ``SweepRequest`` chunk by chunk into a sink.

Chunks come from ``plan.plan_chunks``. Evaluation is asynchronous: chunk k+1 is dispatched
to the device before chunk k is handed to the sink, so at most two chunks of outputs are alive
on the host. A cube with categorical dims (``recompute = ["none", "full"]`` in ``[axes]``) is
run one combination of labels at a time (``categories.slabs``): one kernel per combination, all
compiled before the first chunk, every combination's chunks on the same chunk plan, each chunk
placed in its combination's slab of the one cube. Natural dims (``engine.runtime.dims``): the kernel
returns each output over its own dims; a chunk hands a sink only the outputs it writes (those it
starts at 0 along every dim they lack), so an output without the split or walked axes is copied
out and written once. Sharding: when several local devices exist,
each chunk's split axis is sharded across them. Sinks (``engine.sinks``): ``MemorySink`` (the
cube in memory), ``NetCDFSink`` (streamed, atomic file), ``ZarrSink`` (a store), ``QuerySink``
(on-device reduction in front of any of them); ``run`` takes a sink or a target
(``sinks.sink_for`` picks the sink): the one way to run.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import replace
from typing import Callable, Iterator

import jax
import numpy as np

from engine import signals
from engine.runtime.categories import Slab, Stack, slabs
from engine.runtime.compile import Kernel, compile_kernel
from engine.sinks.attrs import request_record
from engine.errors import ResourceError
from engine import progress as status
from engine.progress import note
from engine.runtime.plan import ChunkPlan, Footprint, default_budget, plan_chunks, share_bounds
from engine.sinks import Sink, sink_for
from engine.sinks.result import SweepResult, Timing
from engine.request.spec import SweepRequest

MIN_CHUNK_POINTS = 1024  # an explicit budget may not ask for chunks smaller than this (or one row)
_KERNELS: dict[tuple, Kernel] = {}


# -- building blocks ---------------------------------------------------------------------------


def kernel_for(request: SweepRequest, dims: dict[str, tuple[str, ...]] | None = None) -> Kernel:
    """The compiled kernel of ``request`` (cached in-process): fixed values folded in.

    Validity conditions of the formula set (``n_kv_heads`` divides ``n_heads``, ...) that depend
    on swept inputs become a ``valid`` output; invalid grid points hold the fill value (NaN once
    read; see ``dataset.INT64_FILL``) in the quantities whose dims cover the failed condition.
    Every output spans its natural dims, or ``dims`` where given (a categorical cube's union over
    its combinations, ``categories.Slab.dims``).
    """
    formulas = request.formulas
    key = (request.arch, request.formula_set, tuple(sorted(request.options.items())),
           tuple(sorted(request.fixed.items())), tuple(request.axes), tuple(request.quantities), request.numerics,
           tuple(sorted((k, str(v)) for k, v in formulas.defaults.items())), tuple(sorted((dims or {}).items())))
    if key not in _KERNELS:
        given = {**{k: None for k in request.axes}, **request.fixed}
        exprs = {q: formulas.resolve(q, given) for q in request.quantities}
        integer = {q: formulas.quantities[q].integer for q in request.quantities}
        conditions = [cond for _, cond in formulas.conditions(given)]
        # real quantities that count bytes are refused at 2**63 like int64 ones (see compile.py)
        counts = [q for q in request.quantities if formulas.quantities[q].units == "bytes"]
        _KERNELS[key] = compile_kernel(exprs, integer, list(request.axes), request.numerics, conditions, counts,
                                       dims)
    return _KERNELS[key]


def plan_for(request: SweepRequest, kernel: Kernel, budget: int | None = None) -> ChunkPlan:
    """The chunk plan of ``request`` for a device budget (default: ``plan.default_budget``).

    Chunks are sized by the outputs' real bytes, each over its own dims (``plan.Footprint``). A budget
    below one grid row (the last axis's points, at most ``MIN_CHUNK_POINTS``), twice over since one
    chunk is evaluated while one is copied out, is refused: it would cut the grid into single points
    and run for minutes.
    """
    footprint = Footprint.of(kernel.dtypes, kernel.dims, list(request.axes))
    if budget is not None:
        points = min(request.shape[-1], MIN_CHUNK_POINTS)
        one = footprint.bytes((1,) * (len(request.shape) - 1) + (points,))
        row = 2 * one
        if budget < row:
            raise ResourceError(
                f"a device memory budget of {budget:,} bytes is below one grid row: the smallest chunk is one row "
                f"of {list(request.axes)[-1]} ({points:,} points, {one:,} bytes of outputs, twice over for double "
                f"buffering = {row:,} bytes); give at least that")
    return plan_chunks(request.shape, footprint, budget or default_budget(), len(jax.local_devices()))


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
                index.append(slice(0, len(values)))
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
        extra = (np.asarray(n_valid, kernel.numerics.count_dtype),) if wrap else ()
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


def _compile(kernel: Kernel, plan: ChunkPlan, wrap=None) -> float:
    t0 = time.perf_counter()
    shard = plan.split_axis if len(jax.local_devices()) > 1 else None
    with signals.deferred():  # XLA compiles in native code that calls back into Python
        kernel.compile_for(plan.chunk_shape, shard, wrap)
    return time.perf_counter() - t0


# -- the pipeline -------------------------------------------------------------------------------


def run(request: SweepRequest, sink: Sink | str | os.PathLike | None = None, budget: int | None = None,
        progress: bool = False) -> SweepResult:
    """Evaluate ``request`` chunk by chunk into ``sink``: the one way to run a sweep.

    The sink checks the run first (memory, disk, target) so nothing is compiled or written for
    a run that cannot finish; on any error or signal the sink's ``abort`` undoes what it started.
    A categorical cube is evaluated slab by slab (``categories``): the sink sees the whole cube in
    ``prepare`` and ``start`` (a ``categories.Stack`` stands for the kernels), each combination's
    kernel in ``device_function`` and ``slab``, and chunk indices over every dim of the cube.

    Parameters
    ----------
    request : SweepRequest
        What to evaluate (``engine.load_spec``, ``engine.parse_spec``). Its ``query`` is not applied here:
        give a ``QuerySink`` (``engine.sink_for(target, query=request.query)``) for the answer.
    sink : Sink, str, path-like or None, optional
        Where the chunks go: a sink (``engine.sink_for``, ``engine.MemorySink``, ...), or a target that
        ``engine.sink_for`` turns into one: None (default) for the cube in host memory, ``"cube.zarr"``
        for a zarr store, any other path for a netCDF file.
    budget : int, optional
        Device memory (bytes) one chunk's outputs may take; default: a quarter of the device's.
    progress : bool, optional
        Show a progress bar on stderr (when it is a terminal).

    Returns
    -------
    SweepResult
        The dataset (in memory) or the written path, timings, and ``report()``.

    Raises
    ------
    engine.ResourceError
        When the cube cannot fit (host memory, disk), the budget is below one grid row, or the target cannot
        be written.
    engine.SpecError
        When the sink refuses the request (a query's objective on a categorical dim).
    TypeError
        When ``sink`` is neither a sink nor a target a sink writes.
    """
    if not hasattr(sink, "consume"):
        sink = sink_for(sink)
    t0 = time.perf_counter()
    parts, pieces = [], slabs(request)
    for k, s in enumerate(pieces, 1):
        note(f"building kernel {k} of {len(pieces)}{status.eta(t0, k - 1, len(pieces))}" if len(pieces) > 1
             else "building the kernel")
        parts.append(replace(s, kernel=kernel_for(s.request, s.dims)))
    kernel = Stack(request) if request.categories else parts[0].kernel
    placing = getattr(sink, "slab", None)
    if request.categories and placing is None:
        raise TypeError(f"{type(sink).__name__} has no slab method: it cannot take a cube with categorical dims "
                        f"({', '.join(request.categories)})")
    sink.prepare(request, kernel)
    plan = plan_for(parts[0].request, kernel, budget)
    wraps = [sink.device_function(p.request, p.kernel, plan) for p in parts]
    compile_seconds = time.perf_counter() - t0
    t_compile = time.perf_counter()
    for k, (p, w) in enumerate(zip(parts, wraps), 1):
        note(f"compiling kernel {k} of {len(parts)} (XLA){status.eta(t_compile, k - 1, len(parts))}"
             if len(parts) > 1 else "compiling the kernel (XLA)")
        compile_seconds += _compile(p.kernel, plan, w)
    sink.start(request, kernel, plan)
    try:
        t0 = time.perf_counter()
        bar = Progress(request.points, progress, chunks=plan.n_chunks * len(parts))
        for part, wrap in zip(parts, wraps):
            if placing is not None:
                placing(part)
            _pipeline(part.kernel, part.request, plan, _placed(part, sink.consume), wrap, bar)
        timing = Timing(compile_seconds, time.perf_counter() - t0, plan, len(jax.local_devices()), len(parts))
        note("finishing the output")
        return sink.finish(timing)
    except BaseException:
        sink.abort()
        raise


def _placed(part: Slab, consume: Callable) -> Callable:
    """``consume`` of chunks whose index covers the numeric axes of ``part``: indices over the whole cube."""
    if not any(p is not None for p in part.at):
        return consume
    return lambda index, n_valid, out: consume(part.index(index), n_valid, out)



def process_share(request: SweepRequest, index: int, count: int) -> SweepRequest | None:
    """The part of ``request`` that process ``index`` of ``count`` computes (None if it has none).

    The first axis is cut into ``count`` contiguous, nearly equal ranges; every process writes
    its own range to its own file (``sinks.netcdf.part_path``), and ``combine`` joins the files afterwards.
    A categorical first axis is cut the same way: each share holds some of its labels (and their
    combinations' kernels), and ``combine`` joins the parts in part order.
    """
    first = next(iter(request.axes))
    start, stop = share_bounds(len(request.axes[first]), count)[index]
    if start == stop:
        return None
    axes = dict(request.axes)
    axes[first] = request.axes[first][start:stop]
    return replace(request, axes=axes, part=(index, count, len(request.axes[first])),
                   record=request.record or request_record(request))


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (points done, points/s, ETA); silent unless enabled and a tty."""

    def __init__(self, total: int, enabled: bool, stream=None, chunks: int | None = None):
        self.stream = stream or sys.stderr
        self.enabled = bool(enabled) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.done = total, 0
        self.chunks, self.chunk = chunks, 0
        self.start = self.last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        self.chunk += 1
        now = time.perf_counter()
        if status.active():  # a command's status line: the chunk and ETA after its phase, not a bar of their own
            if self.chunk == 1 or now - self.last >= 0.2 or self.done >= self.total:
                self.last = now
                rate = self.done / max(now - self.start, 1e-9)
                eta = (self.total - self.done) / rate if rate else 0
                of = f" of {self.chunks:,}" if self.chunks else ""
                status.detail(f"chunk {self.chunk:,}{of}, {self.done / max(self.total, 1):.0%} of {self.total:,} "
                              f"points, ETA {eta:,.0f} s")
            return
        if not self.enabled:
            return
        if now - self.last < 0.2 and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate else 0
        frac = self.done / self.total if self.total else 1
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r[{bar:<30}] {frac:6.1%} {self.done:,}/{self.total:,} points "
                          f"{rate:,.0f}/s ETA {eta:,.0f}s \x1b[K")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()
