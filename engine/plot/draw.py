"""The figures: heatmap with a budget contour, lines, frontier lines, Pareto fronts. matplotlib loads here only.

Every function draws on ``ax`` when given (the command line passes an Agg figure's axes), else on
a new ``matplotlib.pyplot`` figure, and returns the Axes. Axis and colour-bar labels are the
variables' short names in human units (``engine.plot.units``). An axis whose coordinates are
geometric (1, 2, 4, 8, ...) is drawn on a log scale; labels (strings, booleans) are drawn at
equal steps with their text.
"""

from __future__ import annotations

import textwrap
import tomllib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from engine.plot.fronts import Search, constraints_of, feasible, pareto_front
from engine.plot.select import check_at, check_dim, check_variable, fix_dims
from engine.plot.units import Scale, parse_budget, scale_for, scale_of
from engine.runtime.query import EDGE_PREFIX, ENDS, answer_of, edge_note

MISSING_MATPLOTLIB = "plotting needs matplotlib, which is not installed: pip install 'llm-sweep[plot]'"
BUDGET_COLOR = "tab:red"  # the heatmap's budget contour (on viridis)
BUDGET_LINE_COLOR = "black"  # a line plot's budget: apart from the colour cycle
BLANK_HATCH, BLANK_COLOR = "///", "0.75"  # a heatmap's cells without a value
LOG_SPAN = 100  # a line plot's values (and budget) spanning more than this ratio get a log axis
SQUEEZED = 0.1  # ... and so do a budget and values one of which a linear axis would hold below this fraction
TITLE_WIDTH = 64  # characters of a title or legend line before it wraps (fits beside a legend)
NOTE_WIDTH = 26  # ... of a legend entry beside the axes


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
    """``batch=8, seq_len=1024``: the dims of ``ds`` that ``da`` holds at one coordinate, and the coordinates
    ``ds`` itself was cut to (``cube.sel(d_model=768)``)."""
    fixed = [d for d in ds.dims if d not in da.dims and d in da.coords and da[d].ndim == 0]
    fixed += [str(c) for c in da.coords if c not in ds.dims and c in ds.coords and ds[c].ndim == 0]
    return ", ".join(f"{d}={da[d].item()}" for d in fixed)


def _title(name: str, fixed: str, extra: str = "", ds: xr.Dataset | None = None) -> str:
    """``mem_peak at batch=8, seq_len=1024``, under the model the cube describes (``model_text``), with a line
    for ``extra`` (the budget)."""
    model = model_text(ds) if ds is not None else ""
    query = ds.attrs.get("query", "") if ds is not None else ""  # a query's answer: the question it answers
    if len(query) > TITLE_WIDTH:  # the question on one line, its constraints on the next
        query = "\n".join(_wrapped(part) for part in query.replace(" subject to ", "\nsubject to ").splitlines())
    return "".join(f"{line}\n" for line in (model, query) if line) + name + (f" at {fixed}" if fixed else "") + \
        (f"\n{extra}" if extra else "")


def model_text(ds: xr.Dataset) -> str:
    """What an llm-sweep cube describes: ``meta-llama-3-8b (mode=inference, precision=bf16)``, ``formula set seed
    (tied_head=true); vocab=50000``: the architecture or formula set, the device, the options and the fixed
    inputs as the spec gives them (the dataset's ``spec``; else its ``fixed``); "" for a dataset without them."""
    attrs = ds.attrs
    name = attrs.get("arch") or (f"formula set {attrs['formula_set']}" if attrs.get("formula_set") else "")
    if not name:
        return ""
    spec = _spec_tables(attrs.get("spec", ""))
    if "sweep" in spec:
        gpu = spec["sweep"].get("gpu")
        name += f" on {gpu}" if isinstance(gpu, str) else ""
        options, fixed = spec.get("options", {}), spec.get("fixed", {})
    else:  # a spec given as a mapping: the values the cube was computed with
        options, fixed = {}, _pairs(attrs)
    options_text = ", ".join(f"{k}={_shown(v)}" for k, v in options.items())
    fixed_text = ", ".join(f"{k}={_shown(v)}" for k, v in fixed.items())
    return _wrapped(name + (f" ({options_text})" if options_text else "") + (f"; {fixed_text}" if fixed_text else ""))


def _spec_tables(spec: str) -> dict:
    """The tables of the spec a cube keeps in its ``spec`` attribute ({} when it is not TOML)."""
    try:
        tables = tomllib.loads(spec)
    except (tomllib.TOMLDecodeError, TypeError):
        return {}
    return {k: v for k, v in tables.items() if isinstance(v, dict)}


def _pairs(attrs: Mapping) -> dict[str, str]:
    """The dataset's ``fixed`` (``vocab = 50000, ...``) as a mapping, without the values that differ between the
    combinations of a categorical cube (``fixed_by_combination``: a ``gpu`` dim's device fields)."""
    pairs = [p for p in str(attrs.get("fixed", "")).split(", ") if " = " in p]
    by_combination = str(attrs.get("fixed_by_combination", "")).splitlines()
    lines = [set(line.split(": ", 1)[-1].split(", ")) for line in by_combination if line.strip()]
    return dict(p.split(" = ", 1) for p in pairs if all(p in line for line in lines))


def _shown(value) -> str:
    """A spec value in a title: ``true``, ``bf16``, ``50000``, ``8e+10`` (numbers from a million on in 4 digits)."""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value).strip("'")
    return f"{number:.4g}" if abs(number) >= 1e6 else str(value)


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
    if np.ma.getmaskarray(values).any():
        _explain_blank(ax, ds, name)
    ax.set_title(_title(name, _fixed_text(da, ds), note, ds), fontsize="medium")
    return ax


def _explain_blank(ax, ds: xr.Dataset, name: str) -> None:
    """Hatch the cells without a value and say why in a legend below the axes (``blank_reason``)."""
    from matplotlib.patches import Patch

    ax.patch.set_facecolor("white")
    ax.patch.set_hatch(BLANK_HATCH)
    ax.patch.set_edgecolor(BLANK_COLOR)
    patch = Patch(facecolor="white", edgecolor=BLANK_COLOR, hatch=BLANK_HATCH, label=blank_reason(ds, name))
    ax.legend(handles=[patch], loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize="small", frameon=False)


def blank_reason(ds: xr.Dataset, name: str) -> str:
    """Why a cell of ``name`` holds no value: an invalid grid point (``valid``'s conditions), nothing that fits
    (a query's answer), or the fill value."""
    if "valid" in ds.data_vars:
        conditions = ds["valid"].attrs.get("conditions", "")
        return _wrapped("invalid grid point (valid 0)" + (f": {conditions}" if conditions else ""))
    if "n_feasible" in ds.data_vars:
        return "nothing fits (n_feasible 0)"
    return f"no value ({name} holds its fill)"


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

    Other dims as for ``heatmap``. ``budget`` draws a dashed horizontal line at that value. A query's
    answer whose best point sits on an edge of the grid (its ``at_edge_<dim>`` flags, named in
    ``ancillary_variables``) is drawn with an open marker.
    """
    check_variable(ds, name)
    check_dim(ds, x, "x")
    if hue is not None:
        check_dim(ds, hue, "hue")
    keep = [hue, x] if hue else [x]
    da = fix_dims(ds, ds[name], keep, at)
    limit = parse_budget(budget, name, ds[name].attrs.get("units")) if budget is not None else None
    flags = [f for f in ds[name].attrs.get("ancillary_variables", "").split() if f.startswith(EDGE_PREFIX)
             and f in ds.data_vars]
    edges = Edges.of(ds, flags, keep, at)
    return draw_lines(da, ds, x, hue, limit, ax, edges=edges)


@dataclass(frozen=True)
class Edges:
    """Where drawn answers sit on an edge of the grid: 1 over the drawn dims, and the legend's words for it."""

    at_edge: xr.DataArray
    label: str

    @classmethod
    def of(cls, points: xr.Dataset, flags: Sequence[str], keep: Sequence[str],
           at: Mapping[str, object] | None) -> "Edges | None":
        """The ``at_edge_<dim>`` ``flags`` of ``points`` (beside their answers, ``best_<dim>`` ...) over ``keep``;
        None when no drawn point sits on an edge."""
        drawn = {f: fix_dims(points, points[f], keep, at) for f in flags}
        notes = []
        for flag, on in drawn.items():
            dim = flag[len(EDGE_PREFIX):]
            answer = answer_of(points.data_vars, dim)
            if answer is None:
                continue
            best = fix_dims(points, points[answer], keep, at).values[on.values == 1]
            attrs = points[flag].attrs
            notes += [edge_note(answer, dim, end, attrs[f"{end}_of_axis"]) for end in ENDS
                      if f"{end}_of_axis" in attrs and (best == attrs[f"{end}_of_axis"]).any()]
        if not notes:
            return None
        at_edge = sum((on == 1).astype(int) for on in drawn.values()) > 0
        return cls(at_edge, "open marker: " + "; ".join(notes) + ", the true answer may lie beyond")


def draw_lines(da: xr.DataArray, ds: xr.Dataset, x: str, hue: str | None = None, limit: float | None = None,
               ax=None, title: str | None = None, yscale: Scale | None = None, edges: Edges | None = None):
    """Draw ``da`` (over ``(hue, x)`` or ``(x,)``) as lines with markers; NaN leaves a gap.

    ``yscale`` defaults to the scale of ``da``'s own values; the axis is logarithmic when a linear one
    would squeeze the lines or the budget (``log_axis``). Points where ``edges`` is 1 get an open marker
    and a legend entry.
    """
    xaxis = axis_of(ds[x])
    log = log_axis(np.asarray(da.values, dtype=float), limit)
    yscale = yscale or (_middle_scale(da, limit) if log else scale_for(da))
    ax = _axes(ax)
    rows = [(None, da)] if hue is None else [(v, da.sel({hue: v})) for v in ds[hue].values]
    for value, row in rows:
        label = None if value is None else f"{hue}={value}"
        ys = np.asarray(row.values, dtype=float) / yscale.factor
        drawn = ax.plot(xaxis.centers, ys, marker="o", markersize=3, label=label)[0]
        if edges is not None:
            on = np.asarray((edges.at_edge if value is None else edges.at_edge.sel({hue: value})).values, bool)
            ax.plot(xaxis.centers[on], ys[on], linestyle="none", marker="o", markersize=6, markerfacecolor="white",
                    color=drawn.get_color(), zorder=drawn.get_zorder() + 0.1)  # a colour given: the cycle stays
    note = ""
    if limit is not None:
        note = f"budget {_budget_text(da, limit)}"
        ax.axhline(limit / yscale.factor, color=BUDGET_LINE_COLOR, linestyle="--", label=note)
    if log:
        _log_y(ax)
    _legends(ax, edges)
    _lay_out(ax, "x", xaxis)
    ax.set_ylabel(yscale.label)
    ax.set_title(title or _title(str(da.name), _fixed_text(da, ds), note, ds), fontsize="medium")
    ax.grid(True, alpha=0.3)
    return ax


def log_axis(values: np.ndarray, limit: float | None = None) -> bool:
    """Whether a line plot's y axis is logarithmic: its values (and budget), all positive, span more than
    ``LOG_SPAN``, or a linear axis from 0 would hold the budget or every value below ``SQUEEZED`` of its height
    (80 GiB beside 2 TiB; 4 GiB of values under an 80 GiB budget)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or (finite <= 0).any() or (limit is not None and limit <= 0):
        return False
    low, high = float(finite.min()), float(finite.max())
    if limit is None:
        return high / low > LOG_SPAN
    return max(high, limit) / min(low, limit) > LOG_SPAN or min(high, limit) / max(high, limit) < SQUEEZED


def _legends(ax, edges: Edges | None) -> None:
    """One legend: beside the axes with an entry per hue (where no line runs under it), then the budget and
    what an open marker means; without hues, those two below the axes."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    hues = any(not label.startswith("budget") for label in labels)
    if edges is not None:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=6, markerfacecolor="white",
                              markeredgecolor="0.3", label=_wrapped(edges.label, NOTE_WIDTH if hues else TITLE_WIDTH)))
    if hues:
        ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    elif handles:
        ax.legend(handles=handles, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)


def _middle_scale(da: xr.DataArray, limit: float | None) -> Scale:
    """The unit of a log axis: the budget's (``80 GiB`` reads 80), else that of the values' geometric middle."""
    values = np.asarray(da.values, dtype=float)
    values = values[np.isfinite(values)]
    middle = float(limit) if limit is not None else float(np.sqrt(values.min() * values.max()))
    return scale_of(str(da.name), da.attrs.get("units"), middle)


def _log_y(ax) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _wrapped(text: str, width: int = TITLE_WIDTH) -> str:
    """``text`` in lines of at most ``width`` characters (a title's, a legend entry's)."""
    return textwrap.fill(text, width)


def frontier_lines(ds: xr.Dataset, where: str | Sequence[str], x: str, maximize: str | None = None,
                   minimize: str | None = None, hue: str | None = None, at: Mapping[str, object] | None = None,
                   ax=None):
    """``frontier(where, maximize, over=[x, hue])`` drawn against ``x`` (one line per ``hue``); returns the Axes.

    ``at`` first selects points of the cube (so it fixes dims before the frontier is taken); the
    frontier's remaining dims must then have one coordinate each. Points whose best sits on an edge
    of the grid (``fronts.best_points``) get an open marker: ``≥ 8,192 (the top of the seq_len axis)``.
    """
    keep = [x] + ([hue] if hue else [])
    part = ds.sel(check_at(ds, at, keep))
    search = Search.of(part, where, maximize=maximize, minimize=minimize, over=keep)
    best = search.frontier()
    points = search.best_points().assign({str(best.name): best})
    drawn = [hue, x] if hue else [x]
    edges = Edges.of(points, [f for f in points.data_vars if str(f).startswith(EDGE_PREFIX)], drawn, None)
    best = fix_dims(part, best, drawn, None)
    title = _title(best.attrs["long_name"], _fixed_text(best, ds), ds=ds)
    objective = str(best.name)  # drawn in the scale of its whole range, not of the frontier's values
    return draw_lines(best, part, x, hue, None, ax, title, scale_for(part[objective], objective), edges)


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
    model = model_text(ds)
    ax.set_title((f"{model}\n" if model else "") + f"Pareto front: {front.attrs['senses']}", fontsize="medium")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return front, ax
