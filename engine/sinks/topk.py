"""``TopKSink``: the ``k`` best points of a cube that satisfy a query, reduced on the device.

A sink of ``sweep.run`` (the protocol in ``engine.sinks``): each chunk goes through
``engine.runtime.topk.TopKFunction`` on the device (mask, then ``jax.lax.top_k`` of the objective) and
only its ``k`` best rows come back; ``TopKAccumulator`` merges them on the host (ties in grid order). The
answer is a small dataset over one dim, ``rank``: the objective of every row and each dim's coordinate
there (a categorical dim's label), and as 0-d variables ``n_valid`` (the grid points that pass the
request's validity) and ``n_feasible`` (those that also satisfy the constraints).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import xarray as xr

from engine.errors import SpecError
from engine.request.query import Query
from engine.progress import note
from engine.request.spec import SweepRequest, combination_text
from engine.runtime.categories import Slab
from engine.runtime.compile import Kernel
from engine.runtime.plan import ChunkPlan
from engine.runtime.topk import TopKAccumulator, TopKFunction
from engine.sinks.result import SweepResult, Timing

RANK_DIM = "rank"


class TopKSink:
    """The ``k`` best points of the whole cube under ``query`` (its ``over`` lists every dim).

    Parameters
    ----------
    query : Query
        Constraints and an objective (``minimize`` or ``maximize``); ``over`` every dim of the request.
    k : int
        Rows wanted (fewer come back when fewer points are feasible).
    describe : callable, optional
        A combination's labels -> its words in the progress line ``searching: kernel 2 of 24 (...)`` (default:
        as a spec writes them).

    Raises
    ------
    SpecError
        In ``prepare``: no objective, a categorical objective, or ``over`` leaving a dim out.
    """

    def __init__(self, query: Query, k: int, describe: Callable[[dict], str] = combination_text):
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.query, self.k, self.describe = query, k, describe

    def prepare(self, request: SweepRequest, kernel: Kernel) -> None:
        q = self.query
        if q.objective is None or q.objective in request.categories:
            raise SpecError(request.source, "query", "a top-k query ranks by an objective: minimize or maximize "
                                                     "a quantity or a numeric axis")
        left = [a for a in request.axes if a not in q.over]
        if left:
            raise SpecError(request.source, "query.over", f"a top-k query ranks every point of the cube: list "
                                                          f"{', '.join(left)} in over as well")

    def device_function(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> TopKFunction:
        self.split_dim = list(request.axes)[plan.split_axis]
        return TopKFunction(self.query, self.k, list(request.axes), plan.split_axis, kernel.dims)

    def start(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> None:
        self.request, self.plan = request, plan
        self.acc = TopKAccumulator(self.k, request.shape, self.query.sense)
        self.slabs = (math.prod(len(request.axes[c]) for c in request.categories), 0)

    def slab(self, slab: Slab) -> None:
        self.current = slab.kernel
        total, done = self.slabs
        self.slabs = (total, done + 1)
        if slab.labels:
            note(f"searching: kernel {done + 1} of {total} ({self.describe(slab.labels)})")

    def consume(self, index, n_valid, device_out) -> None:
        result, overflow = device_out
        with self.current.numerics.scope():
            self.current.check(overflow)
            host = {k: np.asarray(v) for k, v in result.items()}
        padded = [ix.stop - ix.start if a != self.split_dim else self.plan.block
                  for a, ix in zip(self.request.axes, index)]
        self.acc.add(index, padded, host)

    def finish(self, timing: Timing) -> SweepResult:
        value, at = self.acc.rows()
        q = self.query
        name = q.objective if q.objective not in self.request.axes else f"{q.sense}_{q.objective}"
        data = {name: xr.Variable(RANK_DIM, value, {"long_name": f"{q.describe()}: the {self.k} best, best first"})}
        for a, i in zip(self.request.axes, at):
            if a != q.objective:
                data[a] = xr.Variable(RANK_DIM, self.request.axes[a][i], {"long_name": f"{a} of each row"})
        data["n_valid"] = xr.Variable((), self.acc.n_valid, {"long_name": "grid points that pass the validity"})
        data["n_feasible"] = xr.Variable((), self.acc.n_feasible, {"long_name": "valid grid points satisfying "
                                                                                "the constraints"})
        ds = xr.Dataset(data, attrs={"query": q.describe(), "k": self.k})
        return SweepResult(ds, self.request.points, timing.compile_seconds, timing.loop_seconds, plan=timing.plan,
                           n_devices=timing.n_devices, combinations=timing.slabs)

    def abort(self) -> None:
        pass
