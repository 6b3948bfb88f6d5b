"""The netCDF sink: the cube streamed into a netCDF4 file, chunk by chunk, host memory bounded, atomic.

It takes any file path no other sink claims (``out.nc``; ``-o .bashrc`` too: the user named it). One
process's share of a run (``--part I/N``, ``--distributed``) is a file of its own beside the target
(``part_path``), joined afterwards by ``engine.combine``.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xarray as xr

from engine.errors import ResourceError
from engine.files import check_target
from engine.request.spec import SweepRequest
from engine.runtime.categories import Slab, cube_shape
from engine.runtime.compile import Kernel
from engine.runtime.plan import ChunkPlan, format_bytes
from engine.sinks.base import check_disk, chunk_points
from engine.sinks.dataset import StreamWriter, write_netcdf
from engine.sinks.result import Extremes, SweepResult, Timing


def part_path(path: str | os.PathLike, index: int, count: int) -> Path:
    """Where process ``index`` of ``count`` writes its share: ``OUT.part003-of-016.nc``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.part{index:03d}-of-{count:03d}{p.suffix or '.nc'}")


class NetCDFSink:
    """The cube streamed into a netCDF file at ``path``: chunk by chunk, host memory bounded, atomic.

    A writer thread puts chunk k into its hyperslab while chunk k+1 computes. With compression
    the compressed size is unknown beforehand: after each chunk the projected file size is
    compared with the free disk, and the run stops (deleting its temporary file) as soon as it
    cannot fit.

    Parameters
    ----------
    path : str or path-like
        The file. Of a share (``part``): the file is ``part_path(path, *part)`` beside it.
    inputs : sequence of path-like, optional
        Files the run reads (the spec, a config.json): refused as the target.
    track : list of str, optional
        The quantities whose min/max the result's report shows (default: the spec's headline).
    whole : SweepRequest, optional
        The whole run's request when this run is one share (a file needs only ``part``; a zarr store both).
    part : (int, int), optional
        (index, count) of this process's share of the first axis (``engine.runtime.sweep.process_share``).
    """

    kind = "netcdf"
    description = "any other file path: a netCDF4 file (out.nc)"

    def __init__(self, path: str | os.PathLike, inputs=(), track: list[str] | None = None,
                 whole: SweepRequest | None = None, part: tuple[int, int] | None = None):
        self.target = Path(path) if part is None else part_path(path, *part)
        self.inputs, self.track = tuple(inputs), track

    @classmethod
    def can_write(cls, target: Any) -> bool:
        return isinstance(target, (str, os.PathLike))

    def check(self) -> None:
        check_target(self.target, self.inputs)

    def prepare(self, request: SweepRequest, kernel: Kernel) -> None:
        self.check()
        check_disk(request, kernel, self.target.parent,
                   "enable compression, free space, ask an on-device query, or shrink the axes")

    def device_function(self, request, kernel, plan):
        return None

    def start(self, request: SweepRequest, kernel: Kernel, plan: ChunkPlan) -> None:
        self.request, self.kernel, self.plan = request, kernel, plan
        self.extremes = Extremes(self._headline(), request.axes, kernel.dims)
        file_chunk = cube_shape(request, plan.file_chunk) if plan.file_chunk else plan.file_chunk
        self.writer = StreamWriter(self.target, request, request.formulas, kernel.dtypes, file_chunk,
                                   request.compression, self.inputs, kernel.dims)
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future = None
        self.write_busy = 0.0
        self.done = 0

    def _headline(self) -> list[str]:
        return list(self.track if self.track is not None else self.request.headline)

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

    def finish(self, timing: Timing) -> SweepResult:
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
                           combinations=timing.slabs, headline=self._headline())

    def abort(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=True)  # the writer thread is done before its file is removed
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.abort()

    def write(self, dataset: xr.Dataset, request: SweepRequest) -> Path:
        """``dataset`` (a query's answer) as a netCDF4 file at the target, atomically (``write_netcdf``)."""
        return write_netcdf(dataset, self.target, request.compression, self.inputs)
