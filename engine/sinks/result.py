"""The result of a run and its summary: ``SweepResult`` (what every sink's ``finish`` returns), ``Timing`` (what
the pipeline hands ``finish``) and ``Extremes`` (the running min/max a streaming sink keeps for the summary).

They live with the sinks that build them, below the pipeline (``engine.runtime.sweep``), which only passes
a ``Timing`` in and hands the sink's ``SweepResult`` back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from engine.files import disk_bytes
from engine.request.numerics import INT64_FILL
from engine.runtime.dims import own_index
from engine.runtime.plan import ChunkPlan, format_bytes
from engine.runtime.query import edge_lines
from engine.sinks.categorical import decode_categories
from engine.sinks.attrs import holds_result


@dataclass
class Timing:
    """Seconds spent compiling and in the chunk loop; the sink says how much of it was writing."""

    compile_seconds: float
    loop_seconds: float
    plan: ChunkPlan
    n_devices: int
    slabs: int = 1  # combinations of a categorical cube's labels, one kernel each


@dataclass
class SweepResult:
    """A finished run: the dataset (or the written path) and how long each stage took (seconds).

    Attributes
    ----------
    dataset : xarray.Dataset or None
        The cube or a query's answer in memory (None once a streaming sink wrote the cube to ``path``).
    points : int
        Grid points evaluated.
    compile_seconds, eval_seconds, write_seconds : float
        Time spent compiling, evaluating and writing (``seconds`` is their sum).
    path : pathlib.Path or None
        Where the cube (or the answer) was written.
    plan, n_devices, extremes, combinations, complete
        The chunk plan, devices used, running min/max of a streamed cube, kernels (one per combination of
        a categorical cube's labels), and whether a share of a zarr store completed the store.
    headline : list of str
        The quantities whose min/max ``report`` shows.
    share : str
        The line a share of a zarr store reports instead (its extremes are not the cube's; "" otherwise).
    """

    dataset: xr.Dataset | None
    points: int
    compile_seconds: float
    eval_seconds: float
    write_seconds: float = 0.0
    path: Path | None = None
    plan: ChunkPlan | None = None
    n_devices: int = 1
    extremes: "Extremes | None" = None
    combinations: int = 1  # kernels: one per combination of a categorical cube's labels
    complete: bool = True  # False for a share of a zarr store that other shares still write
    headline: list[str] = field(default_factory=list)
    share: str = ""

    @property
    def seconds(self) -> float:
        return self.compile_seconds + self.eval_seconds + self.write_seconds

    @property
    def points_per_second(self) -> float:
        return self.points / self.eval_seconds if self.eval_seconds > 0 else math.inf

    def report(self, source: str = "") -> str:
        """What ``llm-sweep run`` prints after a run.

        Parameters
        ----------
        source : str, optional
            The spec's name, shown on the first line.

        Returns
        -------
        str
            Dims, points, timings, the file's size, the min/max (and where) of the ``headline`` quantities, a
            query's edges and description; of a share of a zarr store, its one line (``share``).
        """
        if self.share:
            return self.share
        return "\n".join(self._lines(source))

    def _lines(self, source: str) -> list[str]:
        ds = self.dataset if self.dataset is not None else _open(self.path)
        try:
            dims = " x ".join(f"{d}={ds.sizes[d]}" for d in _axes_order(ds))
            lines = [
                f"llm-sweep run: {source or '(spec)'}" + (f" -> {self.path}" if self.path else ""),
                f"  dims      {dims}",
                f"  points    {self.points:,} x {len(ds.data_vars)} variables ({ds.attrs.get('numerics', '')})",
                f"  seconds   {self.seconds:.2f} (compile {self.compile_seconds:.2f}, evaluate "
                f"{self.eval_seconds:.2f}, write {self.write_seconds:.2f})",
                f"  rate      {self.points_per_second:,.0f} points/s"
                + (f" on {self.n_devices} devices" if self.n_devices > 1 else ""),
            ]
            if self.combinations > 1:
                lines.append(f"  kernels   {self.combinations} (one per combination of "
                             f"{ds.attrs.get('categories', 'the categorical dims')})")
            if self.plan is not None and self.plan.n_chunks * self.combinations > 1:
                chunks = self.plan.n_chunks * self.combinations
                lines.append(f"  chunks    {chunks} of {self.plan.chunk_points:,} points")
            if self.path is not None:
                raw = sum(v.size * v.dtype.itemsize for v in ds.data_vars.values())
                lines.append(f"  {'store' if self.path.is_dir() else 'file':<9} {format_bytes(disk_bytes(self.path))} "
                             f"({format_bytes(raw)} uncompressed)")
            shown = [q for q in self.headline if q in ds.data_vars] or list(ds.data_vars)[:3]
            width = max((len(q) for q in shown), default=0)
            if "valid" in ds.data_vars and not ds["valid"].values.any():  # valid spans its own dims: small
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
                    low, high = _extreme(ds[q], "min"), _extreme(ds[q], "max")
                lines.append(f"  {q:<{width}}  {low}   {high}")
            lines.extend(f"  at edge   {line}" for line in edge_lines(ds))  # a query's answers the grid may clip
            if "n_feasible" in ds.data_vars and "query" in ds.attrs:
                lines.append(f"  query     {ds.attrs['query']}")
            return lines
        finally:
            if self.dataset is None:
                ds.close()


    def _tracked(self, ds: xr.Dataset, q: str, which: str) -> str:
        if (q, which) not in self.extremes.best:  # never fed (every value a fill, or a sink that did not): read it
            return _extreme(ds[q], which)
        value, where = self.extremes.best[(q, which)]
        dims = list(ds[q].dims)
        at = ", ".join(f"{d}={ds[d].values[i]}" for d, i in zip(dims, where))
        shown = format_bytes(float(value)) if ds[q].attrs.get("units") == "bytes" else _count(value)
        return f"{which} {shown} at {at}" if at else f"{which} {shown}"



class Extremes:
    """Running min/max (value and index over the output's own dims) of some quantities, fed chunk by chunk.

    ``axes`` are the cube's dims and ``dims`` each output's (None: every output spans every axis). A
    chunk's block holds only the outputs it writes; fill values (invalid points) are left out.
    """

    def __init__(self, names, axes, dims=None):
        self.names, self.axes, self.dims = list(names), tuple(axes), dims
        self.best: dict[tuple[str, str], tuple] = {}

    def add(self, index: tuple, block: dict[str, np.ndarray]) -> None:
        for q in self.names:
            if q not in block:  # another chunk writes it
                continue
            values = block[q]
            found = _extremes(values)
            if found is None:
                continue
            own = index if self.dims is None else own_index(index, self.axes, self.dims[q])
            for which, value, better in (("min", found[0], np.less), ("max", found[1], np.greater)):
                old = self.best.get((q, which))
                if old is None or better(value, old[0]):
                    # the first point holding the value (fills never equal it: NaN != NaN, the fill is not the min)
                    local = np.unravel_index(int(np.argmax(values == value)), values.shape)
                    where = tuple((ix.start or 0) + j for ix, j in zip(own, local))
                    self.best[(q, which)] = (values[local], where)


# -- formatting ----------------------------------------------------------------------------------


def _axes_order(ds: xr.Dataset) -> list[str]:
    """The cube's dims in the request's axis order (a zarr store lists them in its own order)."""
    try:
        order = list(json.loads(ds.attrs["request"])["axes"])
    except (KeyError, ValueError, TypeError):
        return list(ds.sizes)
    return [d for d in order if d in ds.sizes] + [d for d in ds.sizes if d not in order]


def _extremes(values: np.ndarray) -> tuple | None:
    """(min, max) of ``values`` over the points that hold a result; None if none does.

    Reductions in place: masking every block with ``np.where`` (two copies a chunk) took 1.3 s of a 4 GB run's
    main thread, and argmin/argmax are no way out, since numpy copies a read-only array (every chunk JAX hands
    over is one) before searching it. Only a block holding fills reduces under its mask."""
    if values.size == 0:
        return None
    low = values.min()
    clean = (low > INT64_FILL if values.dtype.kind == "i" else
             not np.isnan(low) if values.dtype.kind == "f" else True)
    if clean:
        return low, values.max()
    keep = holds_result(values)
    if not keep.any():
        return None
    return (np.min(values, where=keep, initial=_far(values.dtype, "min")),
            np.max(values, where=keep, initial=_far(values.dtype, "max")))


def _far(dtype, which: str):
    """A value that never wins ``which`` (min or max) for ``dtype``."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return info.max if which == "min" else info.min
    return np.inf if which == "min" else -np.inf


def _open(path: Path) -> xr.Dataset:
    """A written cube, lazily (attrs and sizes; values only where read), without pandas indexes (the summary
    reads coordinates by position). A file is netCDF: naming the engine skips xarray's search of every
    installed backend. Together a third of a second of a run's summary."""
    engine = "netcdf4" if path.is_file() else None
    try:
        ds = xr.open_dataset(path, engine=engine, create_default_indexes=False)
    except TypeError:  # xarray before 2025.07 always builds them
        ds = xr.open_dataset(path, engine=engine)
    return decode_categories(ds)  # "at recompute=full", not the code the file holds


def _extreme(var: xr.DataArray, which: str) -> str:
    """``which`` (min or max) of ``var`` and where (over its own dims), over the points that hold a result.

    Fill values (NaN: invalid points, infeasible cells) are left out; when none is left the answer
    says so in words instead of printing a fill.
    """
    values = var.values
    keep = holds_result(values)
    if not keep.any():
        return f"{which}: no valid grid point (every value is a fill)"
    values = np.where(keep, values, _far(values.dtype, which))
    flat = int(np.argmin(values) if which == "min" else np.argmax(values))
    index = np.unravel_index(flat, values.shape)
    value = values[index]
    where = ", ".join(f"{d}={var[d].values[i]}" for d, i in zip(var.dims, index))
    if var.attrs.get("units") == "bytes":
        shown = format_bytes(float(value))
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
