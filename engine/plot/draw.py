"""The figures: heatmap with a budget contour, lines, frontier lines, Pareto fronts. matplotlib loads here only.

Every function draws on ``ax`` when given (the command line passes an Agg figure's axes), else on
a new ``matplotlib.pyplot`` figure, and returns the Axes. Axis and colour-bar labels are the
variables' short names in human units (``engine.plot.units``). An axis whose coordinates are
geometric (1, 2, 4, 8, ...) is drawn on a log scale; labels (strings, booleans) are drawn at
equal steps with their text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from engine.plot.fronts import constraints_of, feasible, frontier, pareto_front
from engine.plot.select import check_at, check_dim, check_variable, fix_dims
from engine.plot.units import Scale, parse_budget, scale_for, scale_of

MISSING_MATPLOTLIB = "plotting needs matplotlib, which is not installed: pip install 'llm-sweep[plot]'"
BUDGET_COLOR = "tab:red"  # the heatmap's budget contour (on viridis)
BUDGET_LINE_COLOR = "black"  # a line plot's budget: apart from the colour cycle


def pyplot():
    """``matplotlib.pyplot`` (ImportError saying how to install it when missing)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(MISSING_MATPLOTLIB) from None
    return plt


def agg_axes(figsize=(7.0, 5.0)):
    """Axes of a new figure on matplotlib's Agg canvas: no window, no pyplot state (the command line's)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(MISSING_MATPLOTLIB) from None
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure.add_subplot()


def _axes(ax):
    return ax if ax is not None else pyplot().subplots(layout="constrained")[1]


@dataclass(frozen=True)
class Axis:
    """How one dim is laid out along an axis: centres, cell edges, scale, tick labels."""

    scale: Scale
    centers: np.ndarray
    edges: np.ndarray
    log_base: int | None = None
    ticks: tuple[str, ...] | None = None  # labels of a categorical dim, drawn at 0, 1, 2, ...


def geometric_base(values: np.ndarray) -> int | None:
    """2 or 10 when ``values`` (3 or more, positive, increasing) grow by a constant ratio, else None."""
    if values.size < 3 or values.dtype.kind not in "iuf" or np.any(values <= 0):
        return None
    ratios = values[1:] / values[:-1]
    if not np.allclose(ratios, ratios[0], rtol=1e-9) or ratios[0] < 1.5:
        return None
    return 2 if np.isclose(np.log2(ratios[0]), np.round(np.log2(ratios[0]))) else 10


def _edges(centers: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges halfway between centres (geometrically on a log axis)."""
    if centers.size == 1:
        return centers * np.array([0.5, 2.0]) if log else centers + np.array([-0.5, 0.5])
    values = np.log(centers) if log else centers
    mid = (values[1:] + values[:-1]) / 2
    edges = np.concatenate([[2 * values[0] - mid[0]], mid, [2 * values[-1] - mid[-1]]])
    return np.exp(edges) if log else edges


def axis_of(coordinate: xr.DataArray) -> Axis:
    """The layout of a coordinate: numbers in their human scale (log when geometric), labels at 0, 1, 2, ..."""
    values = np.asarray(coordinate.values)
    if values.dtype.kind not in "iuf":
        centers = np.arange(values.size, dtype=float)
        return Axis(Scale(str(coordinate.name)), centers, _edges(centers, False), ticks=tuple(map(str, values)))
    scale = scale_for(coordinate)
    base = geometric_base(values.astype(float))
    centers = values.astype(float) / scale.factor
    return Axis(scale, centers, _edges(centers, base is not None), base)


def _lay_out(ax, which: str, axis: Axis) -> None:
    """Label, scale and ticks of ``ax``'s ``which`` ("x" or "y") axis."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    getattr(ax, f"set_{which}label")(axis.scale.label)
    target = ax.xaxis if which == "x" else ax.yaxis
    if axis.log_base:
        getattr(ax, f"set_{which}scale")("log", base=axis.log_base)
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        target.set_minor_formatter(NullFormatter())
    if axis.ticks is not None:
        getattr(ax, f"set_{which}ticks")(axis.centers, list(axis.ticks))


def _fixed_text(da: xr.DataArray, ds: xr.Dataset) -> str:
    """``batch=8, seq_len=1024``: the dims of ``ds`` that ``da`` holds at one coordinate."""
    fixed = [d for d in ds.dims if d not in da.dims and d in da.coords and da[d].ndim == 0]
    return ", ".join(f"{d}={da[d].item()}" for d in fixed)


def _title(name: str, fixed: str, extra: str = "") -> str:
    """``mem_peak at batch=8, seq_len=1024``, with a second line for ``extra`` (the budget)."""
    return name + (f" at {fixed}" if fixed else "") + (f"\n{extra}" if extra else "")


def heatmap(ds: xr.Dataset, name: str, x: str, y: str, budget=None, at: Mapping[str, object] | None = None,
            ax=None):
    """A heatmap of variable ``name`` over dims ``x`` (horizontal) and ``y`` (vertical); returns the Axes.

    Every other dim of the variable is fixed by ``at`` (``{"batch": 8}``) or, with one
    coordinate, squeezed; one left over is a ValueError naming it. ``budget`` (``"80GiB"``, or a
    number in the variable's units) draws the contour where the variable equals it, in
    red, labelled and marked on the colour bar; when every drawn value lies on one side
    of it the title says so instead.
    """
    check_variable(ds, name)
    check_dim(ds, x, "x")
    check_dim(ds, y, "y")
    if x == y:
        raise ValueError(f"x and y are both {x!r}: a heatmap needs two dims")
    da = fix_dims(ds, ds[name], [y, x], at)
    limit = parse_budget(budget, name, ds[name].attrs.get("units")) if budget is not None else None
    zscale = scale_for(da)
    xaxis, yaxis = axis_of(ds[x]), axis_of(ds[y])
    values = np.ma.masked_invalid(np.asarray(da.values, dtype=float) / zscale.factor)
    ax = _axes(ax)
    mesh = ax.pcolormesh(xaxis.edges, yaxis.edges, values, shading="flat", cmap="viridis")
    bar = ax.figure.colorbar(mesh, ax=ax, label=zscale.label)
    note = ""
    if limit is not None:
        note = _budget_contour(ax, bar, xaxis, yaxis, values, limit / zscale.factor, _budget_text(da, limit))
    _lay_out(ax, "x", xaxis)
    _lay_out(ax, "y", yaxis)
    ax.set_title(_title(name, _fixed_text(da, ds), note), fontsize="medium")
    return ax


def _budget_text(da: xr.DataArray, limit: float) -> str:
    """The budget in its own human unit: ``80 GiB`` whatever the scale of the values around it."""
    return scale_of(str(da.name), da.attrs.get("units"), abs(float(limit))).show(limit)


def _budget_contour(ax, bar, xaxis: Axis, yaxis: Axis, values: np.ma.MaskedArray, level: float, text: str) -> str:
    """Draw the contour ``values == level`` (labelled ``text``); the title's note on the budget."""
    finite = values.compressed()
    if finite.size == 0:
        return f"budget {text}: no values"
    if finite.max() < level:
        return f"all within budget {text}"
    if finite.min() > level:
        return f"none within budget {text}"
    if min(values.shape) < 2 or finite.min() == finite.max():  # no line to draw through these
        return f"budget {text}"
    if xaxis.ticks is not None or yaxis.ticks is not None:  # labels: no values between them to interpolate
        ax.add_collection(_cell_boundary(xaxis, yaxis, values, level))
        bar.ax.axhline(level, color=BUDGET_COLOR, linewidth=2)
        return f"budget {text} (red line between cells)"
    contour = ax.contour(xaxis.centers, yaxis.centers, values, levels=[level], colors=BUDGET_COLOR, linewidths=2)
    ax.clabel(contour, fmt={level: text}, fontsize="small")
    bar.add_lines(contour)
    return f"budget {text} (red line)"


def _cell_boundary(xaxis: Axis, yaxis: Axis, values: np.ma.MaskedArray, level: float):
    """The cell edges between a cell within ``level`` and a neighbour above it (both holding values)."""
    from matplotlib.collections import LineCollection

    fits = np.ma.filled(values <= level, False)
    known = ~np.ma.getmaskarray(values)
    xe, ye = xaxis.edges, yaxis.edges
    segments = []
    for i, j in zip(*np.nonzero((fits[:, 1:] != fits[:, :-1]) & known[:, 1:] & known[:, :-1])):
        segments.append([(xe[j + 1], ye[i]), (xe[j + 1], ye[i + 1])])  # between columns j and j + 1
    for i, j in zip(*np.nonzero((fits[1:, :] != fits[:-1, :]) & known[1:, :] & known[:-1, :])):
        segments.append([(xe[j], ye[i + 1]), (xe[j + 1], ye[i + 1])])  # between rows i and i + 1
    return LineCollection(segments, colors=BUDGET_COLOR, linewidths=2)


def line(ds: xr.Dataset, name: str, x: str, hue: str | None = None, budget=None,
         at: Mapping[str, object] | None = None, ax=None):
    """Variable ``name`` against dim ``x``, one line per coordinate of ``hue`` (if given); returns the Axes.

    Other dims as for ``heatmap``. ``budget`` draws a dashed horizontal line at that value.
    """
    check_variable(ds, name)
    check_dim(ds, x, "x")
    if hue is not None:
        check_dim(ds, hue, "hue")
    da = fix_dims(ds, ds[name], [hue, x] if hue else [x], at)
    limit = parse_budget(budget, name, ds[name].attrs.get("units")) if budget is not None else None
    return draw_lines(da, ds, x, hue, limit, ax)


def draw_lines(da: xr.DataArray, ds: xr.Dataset, x: str, hue: str | None = None, limit: float | None = None,
               ax=None, title: str | None = None, yscale: Scale | None = None):
    """Draw ``da`` (over ``(hue, x)`` or ``(x,)``) as lines with markers; NaN leaves a gap.

    ``yscale`` defaults to the scale of ``da``'s own values.
    """
    xaxis = axis_of(ds[x])
    yscale = yscale or scale_for(da)
    ax = _axes(ax)
    rows = [(None, da)] if hue is None else [(v, da.sel({hue: v})) for v in ds[hue].values]
    for value, row in rows:
        label = None if value is None else f"{hue}={value}"
        ax.plot(xaxis.centers, np.asarray(row.values, dtype=float) / yscale.factor, marker="o", markersize=3,
                label=label)
    note = ""
    if limit is not None:
        note = f"budget {_budget_text(da, limit)}"
        ax.axhline(limit / yscale.factor, color=BUDGET_LINE_COLOR, linestyle="--", label=note)
    if hue is not None or limit is not None:
        ax.legend(fontsize="small")
    _lay_out(ax, "x", xaxis)
    ax.set_ylabel(yscale.label)
    ax.set_title(title or _title(str(da.name), _fixed_text(da, ds), note), fontsize="medium")
    ax.grid(True, alpha=0.3)
    return ax


def frontier_lines(ds: xr.Dataset, where: str | Sequence[str], x: str, maximize: str | None = None,
                   minimize: str | None = None, hue: str | None = None, at: Mapping[str, object] | None = None,
                   ax=None):
    """``frontier(where, maximize, over=[x, hue])`` drawn against ``x`` (one line per ``hue``); returns the Axes.

    ``at`` first selects points of the cube (so it fixes dims before the frontier is taken); the
    frontier's remaining dims must then have one coordinate each.
    """
    keep = [x] + ([hue] if hue else [])
    part = ds.sel(check_at(ds, at, keep))
    best = frontier(part, where, maximize=maximize, minimize=minimize, over=keep)
    best = fix_dims(part, best, [hue, x] if hue else [x], None)
    title = _title(best.attrs["long_name"], _fixed_text(best, ds))
    objective = str(best.name)  # drawn in the scale of its whole range, not of the frontier's values
    return draw_lines(best, part, x, hue, None, ax, title, scale_for(part[objective], objective))


def pareto(ds: xr.Dataset, x: str, y: str, maximize: str | Sequence[str] = (), where=None, ax=None):
    """Every candidate of ``pareto_front(...)`` in grey and the front as a line; returns (front, Axes)."""
    front = pareto_front(ds, x, y, maximize, where)
    mask = feasible(ds, constraints_of(ds, where))
    xa, ya, ok = xr.broadcast(ds[x], ds[y], mask)
    keep = ok.values & np.isfinite(xa.values.astype(float)) & np.isfinite(ya.values.astype(float))
    xscale = scale_for(xa.where(ok), x)
    yscale = scale_for(ya.where(ok), y)
    ax = _axes(ax)
    ax.scatter(xa.values[keep] / xscale.factor, ya.values[keep] / yscale.factor, s=6, color="0.75",
               label=f"{int(keep.sum()):,} points")
    ax.plot(front[x].values / xscale.factor, front[y].values / yscale.factor, "o-", color="tab:red",
            markersize=4, label=f"Pareto front ({front.sizes['point']} points)")
    ax.set_xlabel(xscale.label)
    ax.set_ylabel(yscale.label)
    ax.set_title(f"Pareto front: {front.attrs['senses']}", fontsize="medium")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return front, ax
