"""Run a ``SweepRequest``: resolve formulas, compile one kernel, evaluate the grid, label it.

The grid is evaluated in slices along the first axis so the device never holds more than
``chunk_points`` results per quantity at once; results are gathered into host arrays and
returned as an ``xarray.Dataset``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .compile import Kernel, compile_kernel
from .dataset import build_dataset, write_netcdf
from .errors import ResourceError
from .formulas import build_formula_set
from .spec import SweepRequest

DEFAULT_CHUNK_POINTS = 1 << 22
HOST_MEMORY_FRACTION = 0.5


@dataclass
class SweepResult:
    """A finished sweep: the dataset and how long each stage took (seconds)."""

    dataset: xr.Dataset
    points: int
    compile_seconds: float
    eval_seconds: float
    write_seconds: float = 0.0
    path: Path | None = None

    @property
    def seconds(self) -> float:
        return self.compile_seconds + self.eval_seconds + self.write_seconds

    @property
    def points_per_second(self) -> float:
        return self.points / self.eval_seconds if self.eval_seconds > 0 else math.inf

    def summary(self, headline: list[str], source: str = "") -> str:
        """A short report: dims, points, timings, file size, min/max of ``headline``."""
        ds = self.dataset
        dims = " x ".join(f"{d}={n}" for d, n in ds.sizes.items())
        raw = sum(v.nbytes for v in ds.data_vars.values())
        lines = [
            f"llm-sweep run: {source or '(spec)'}" + (f" -> {self.path}" if self.path else ""),
            f"  dims      {dims}",
            f"  points    {self.points:,} x {len(ds.data_vars)} quantities ({ds.attrs.get('precision', '')})",
            f"  seconds   {self.seconds:.2f} (compile {self.compile_seconds:.2f}, evaluate "
            f"{self.eval_seconds:.2f}, write {self.write_seconds:.2f})",
            f"  rate      {self.points_per_second:,.0f} points/s (evaluation)",
        ]
        if self.path is not None:
            lines.append(f"  file      {_human(self.path.stat().st_size)} ({_human(raw)} uncompressed)")
        width = max(len(q) for q in headline)
        for q in headline:
            lines.append(f"  {q:<{width}}  {_extreme(ds[q], 'min')}   {_extreme(ds[q], 'max')}")
        return "\n".join(lines)


def kernel_for(request: SweepRequest) -> Kernel:
    """The compiled kernel of ``request``: fixed values folded in, swept inputs as arguments."""
    formulas = request.formulas or build_formula_set(request.formula_set, request.options)
    given = {**{k: None for k in request.axes}, **request.fixed}
    exprs = {q: formulas.resolve(q, given) for q in request.quantities}
    integer = {q: formulas.quantities[q].integer for q in request.quantities}
    return compile_kernel(exprs, integer, list(request.axes), request.precision)


def result_bytes(request: SweepRequest, kernel: Kernel) -> int:
    """Uncompressed bytes of the full result cube."""
    return request.points * sum(kernel.dtypes[q].itemsize for q in request.quantities)


def run_sweep(request: SweepRequest, chunk_points: int = DEFAULT_CHUNK_POINTS) -> SweepResult:
    """Evaluate every requested quantity on the request's grid and label the result."""
    formulas = request.formulas or build_formula_set(request.formula_set, request.options)
    t0 = time.perf_counter()
    kernel = kernel_for(request)
    need = result_bytes(request, kernel)
    available = _host_memory()
    if available and need > HOST_MEMORY_FRACTION * available:
        raise ResourceError(
            f"{request.source}: the result cube needs {_human(need)} of host memory "
            f"({request.points:,} points x {len(request.quantities)} quantities); this machine has "
            f"{_human(available)} and a run may use half of it: shrink the axes or request fewer quantities"
        )
    axes = list(request.axes)
    first, rest = axes[0], axes[1:]
    inner = math.prod(len(request.axes[a]) for a in rest)
    step = max(1, chunk_points // max(inner, 1))
    coords0 = request.axes[first]
    for n in sorted({min(step, len(coords0)), len(coords0) % step or step}):
        kernel.compile_for([n, *(len(request.axes[a]) for a in rest)])
    compile_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    results = {q: np.empty(request.shape, dtype=kernel.dtypes[q]) for q in request.quantities}
    for lo in range(0, len(coords0), step):
        hi = min(lo + step, len(coords0))
        coords = {first: coords0[lo:hi], **{a: request.axes[a] for a in rest}}
        for q, values in kernel(**coords).items():
            results[q][lo:hi] = values
    eval_seconds = time.perf_counter() - t0
    dataset = build_dataset(request, results, formulas)
    return SweepResult(dataset, request.points, compile_seconds, eval_seconds)


def run_to_netcdf(request: SweepRequest, path: str | os.PathLike) -> SweepResult:
    """``run_sweep`` then write the cube to ``path`` atomically (nothing is left there on failure)."""
    target = Path(path)
    if not target.parent.exists():
        raise ResourceError(f"output folder {str(target.parent)!r} does not exist")
    if target.is_dir():
        raise ResourceError(f"output path {str(target)!r} is a folder; give a file name such as out.nc")
    result = run_sweep(request)
    t0 = time.perf_counter()
    write_netcdf(result.dataset, target, request.compression)
    result.write_seconds = time.perf_counter() - t0
    result.path = target
    return result


def _extreme(var: xr.DataArray, which: str) -> str:
    values = var.values
    flat = int(np.argmin(values) if which == "min" else np.argmax(values))
    index = np.unravel_index(flat, values.shape)
    value = values[index]
    where = ", ".join(f"{d}={var[d].values[i]}" for d, i in zip(var.dims, index))
    shown = _human(float(value)) if var.attrs.get("units") == "bytes" else _count(value)
    return f"{which} {shown} at {where}" if where else f"{which} {shown}"


def _count(value) -> str:
    if np.issubdtype(type(value), np.integer):
        return f"{int(value):,}"
    return f"{float(value):.6g}"


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"
