"""The query sink: a reducer in front of any sink.

An on-device ``Query`` (constraints as masks, a reduction over ``over`` inside the kernel) turns the cube
into a small dataset over the kept dims, its answer; the sink the target selects (``engine.sinks.sink_for``:
host memory, a netCDF file, a zarr store) then writes that answer (``Sink.write``), so a query is answered
the same way whatever the output.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import xarray as xr

from engine.errors import SpecError
from engine.progress import note
from engine.request.query import Query
from engine.request.spec import SweepRequest
from engine.runtime.categories import Slab
from engine.runtime.compile import Kernel
from engine.runtime.plan import ChunkPlan
from engine.runtime.query import (QueryAccumulator, QueryFunction, clipping_ends, edge_attrs, edge_flags, edge_name,
                                  has_edges)
from engine.sinks.attrs import coordinate_attrs, dataset_attrs, largest, masked_variable, precision_note
from engine.sinks.base import Sink
from engine.sinks.memory import MemorySink
from engine.sinks.result import SweepResult, Timing


class QuerySink:
    """An on-device ``Query`` in front of ``output``: constraints as masks and reductions inside the kernel; the
    small dataset they leave is written by ``output``.

    Of a categorical cube, each combination's kernel reduces the numeric ``over`` dims on the device
    and the accumulator, which spans every dim of the cube, combines the combinations on the host
    (the categorical ``over`` dims; ties keep the first point in grid order, as on the device).

    Parameters
    ----------
    query : Query
        What to reduce (``engine.make_query``, or a spec's ``[query]``: ``request.query``).
    output : Sink, optional
        Where the answer goes (``engine.sink_for(target)``); default: host memory (``MemorySink``).
    """

    def __init__(self, query: Query, output: Sink | None = None):
        self.query, self.output = query, output if output is not None else MemorySink()
        self.kind, self.description, self.target = self.output.kind, self.output.description, self.output.target

    def check(self) -> None:
        self.output.check()

    def prepare(self, request, kernel) -> None:
        if self.query.objective in request.categories:
            raise SpecError(request.source, "query", f"the objective {self.query.objective} is a categorical dim; "
                                                     "maximize or minimize a quantity or a numeric axis")
        self.output.check()

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

    def finish(self, timing: Timing) -> SweepResult:
        ds = query_dataset(self.request, self.query, self.cube, self.acc)
        if self.target is not None:
            note(f"writing {self.target}")
        t0 = time.perf_counter()
        path = self.output.write(ds, self.request)  # None in memory: nothing written, no time spent writing
        return SweepResult(ds, self.request.points, timing.compile_seconds, timing.loop_seconds,
                           time.perf_counter() - t0 if path is not None else 0.0, path=path, plan=timing.plan, n_devices=timing.n_devices,
                           combinations=timing.slabs, headline=self.headline())

    def headline(self) -> list[str]:
        """What the report shows of the answer: the objective (``max_<axis>`` for a swept input), then
        ``n_feasible``."""
        q = self.query
        objective = q.objective if q.objective in self.request.quantities or q.objective is None else \
            f"{q.sense}_{q.objective}"
        return ([objective] if objective else []) + ["n_feasible"]

    def abort(self) -> None:
        pass

    def write(self, dataset: xr.Dataset, request: SweepRequest) -> Path | None:
        return self.output.write(dataset, request)


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
