"""What every sink is: the ``Sink`` protocol that ``engine.run(request, sink)`` drives, and the sizes sinks check.

``run`` builds the kernel, asks the sink to check the run before anything is computed, plans the
chunks, compiles (with the sink's device-side function, if any), streams every chunk into
``sink.consume`` and returns ``sink.finish(...)``. A sink says which targets it writes (``can_write``,
as xarray's backends answer ``guess_can_open``), and ``engine.sinks.sink_for`` picks the first of the
registry (``engine.sinks.SINKS``) that can. A new output format is one module holding one class with:

    kind                              its name ("memory", "netcdf", "zarr"): what ``files.check_cube``
                                      may replace under a name the user did not type
    description                       which targets it takes, in words (for ``sink_for``'s error)
    can_write(target) -> bool         a classmethod: whether it writes ``target`` (None: host memory;
                                      a path)
    target                            where it writes (a ``Path``; None in memory)
    check()                           refuse an unusable target (nothing computed or written yet)
    prepare(request, kernel)          refuse what cannot work before any compile (memory, disk,
                                      target); nothing is written yet
    device_function(request, kernel, plan)
                                      None (the kernel's outputs come back to the host), or a
                                      hashable wrapper run on the device around the kernel's
                                      evaluate function (``query.QueryFunction``)
    start(request, kernel, plan)      open what the sink writes into
    slab(slab)                        the chunks that follow come from one combination of labels
                                      (``categories.Slab``: its labels, its kernel, ``to_host``
                                      placing a chunk in the cube); called before each
                                      combination's chunks (once for a plain cube)
    consume(index, n_valid, out)      one chunk: ``index`` holds a slice per axis, ``n_valid`` the
                                      real length of the split axis (the rest is padding), ``out``
                                      the device result (``Slab.to_host`` copies out the outputs
                                      the chunk writes, each over its own dims)
    finish(timing) -> SweepResult     close and describe the result; ``abort()`` undoes ``start``
                                      on any error or signal (the pipeline calls it)
    write(dataset, request) -> Path | None
                                      a finished small dataset (a query's answer, ``QuerySink``) at
                                      the target, atomically; None in memory

For a categorical cube ``prepare`` and ``start`` get the whole request and a ``categories.Stack``
(the cube's outputs and dtypes) for the kernel, ``device_function`` each combination's plain
request and kernel, and ``consume`` indices over every dim of the cube (length-1 slices along the
categorical dims). The plan is the numeric axes' plan, the same for every combination.

Natural dims: every output spans its own dims (``kernel.dims``: output -> dims, of a ``Kernel`` or a
``Stack``; ``engine.runtime.dims``). A chunk's block of an output goes to ``dims.own_index(index,
axes, dims)``, and only the chunk that starts at 0 along the dims it lacks hands it over. Sizes
(memory, disk) are the outputs' real ones (``result_bytes``).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Protocol

import xarray as xr

from engine.errors import ResourceError
from engine.request.spec import SweepRequest
from engine.runtime.categories import Slab
from engine.runtime.compile import Kernel
from engine.runtime.plan import ChunkPlan, Footprint, format_bytes
from engine.sinks.result import SweepResult, Timing


class Sink(Protocol):
    """Where ``engine.run`` puts a run's chunks (the module docstring lists what each method does)."""

    kind: str
    description: str
    target: Path | None

    @classmethod
    def can_write(cls, target: Any) -> bool: ...

    def check(self) -> None: ...

    def prepare(self, request: SweepRequest, kernel: Kernel) -> None: ...

    def device_function(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan): ...

    def start(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> None: ...

    def slab(self, slab: Slab) -> None: ...

    def consume(self, index: tuple, n_valid: int, device_out) -> None: ...

    def finish(self, timing: Timing) -> SweepResult: ...

    def abort(self) -> None: ...

    def write(self, dataset: xr.Dataset, request: SweepRequest) -> Path | None: ...


def result_bytes(request: SweepRequest, kernel: Kernel) -> int:
    """Uncompressed bytes of the full result cube: every output over its own dims."""
    return Footprint.of(kernel.dtypes, kernel.dims, list(request.axes)).bytes(request.shape)


def chunk_points(index: tuple) -> int:
    """Grid points of a chunk (``index``: one slice with explicit bounds per dim, padding excluded)."""
    return math.prod(ix.stop - ix.start for ix in index)


def check_disk(request: SweepRequest, kernel: Kernel, folder: Path, hint: str) -> None:
    """ResourceError when the uncompressed cube cannot fit the free space of ``folder`` (a compressed cube's size
    is unknown beforehand: the streaming sinks check it chunk by chunk). ``hint`` says what to do instead."""
    need = result_bytes(request, kernel)
    free = shutil.disk_usage(folder).free
    if request.compression == 0 and need > free:
        raise ResourceError(
            f"the cube needs {format_bytes(need)} uncompressed ({request.points:,} points x {len(request.quantities)} "
            f"quantities) and {folder} has {format_bytes(free)} free: {hint}")
