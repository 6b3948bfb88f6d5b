"""The in-memory sink: the labelled cube as an ``xarray.Dataset`` in host memory (the target None)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from engine.errors import ResourceError
from engine.request.spec import SweepRequest
from engine.runtime.categories import Slab
from engine.runtime.compile import Kernel
from engine.runtime.dims import own_index
from engine.runtime.plan import ChunkPlan, available_host_memory, format_bytes
from engine.sinks.base import result_bytes
from engine.sinks.dataset import build_dataset
from engine.sinks.result import SweepResult, Timing

HOST_MEMORY_FRACTION = 0.5


class MemorySink:
    """The labelled cube in host memory (refused when it would take more than half the available memory).

    Parameters
    ----------
    target : None
        Host memory has no target; ``sink_for(None)`` builds this sink.
    track : list of str, optional
        The quantities whose min/max the result's report shows (default: the spec's headline).
    """

    kind = "memory"
    description = "None: an xarray.Dataset in host memory"

    def __init__(self, target: None = None, track: list[str] | None = None):
        if target is not None:
            raise TypeError(f"MemorySink writes to host memory, not to {target!r}; use engine.sink_for(target)")
        self.target, self.track = None, track

    @classmethod
    def can_write(cls, target: Any) -> bool:
        return target is None

    def check(self) -> None:
        pass

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

    def finish(self, timing: Timing) -> SweepResult:
        ds = build_dataset(self.request, self.results, self.request.formulas, self.kernel.dims)
        return SweepResult(ds, self.request.points, timing.compile_seconds, timing.loop_seconds, plan=timing.plan,
                           n_devices=timing.n_devices, combinations=timing.slabs,
                           headline=self.track if self.track is not None else list(self.request.headline))

    def abort(self) -> None:
        self.results = {}

    def write(self, dataset: xr.Dataset, request: SweepRequest) -> None:
        """Nothing to write: the dataset stays in memory (the result holds it)."""
        return None
