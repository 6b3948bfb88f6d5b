"""Frontiers and Pareto fronts of a cube, on the host, with xarray broadcasting (no matplotlib).

Constraints are the engine's query constraints (``engine.runtime.query``): ``QUANTITY OP
VALUE[UNIT]`` with OP one of ``<= < >= > ==`` and an optional byte unit, e.g. ``mem_peak <= 80GiB``;
several must all hold. Where the cube has a ``valid`` mask, invalid points never satisfy a
constraint, and neither does a point where a constrained variable is NaN (its fill value).

Variables may live on different dims (``params_total`` over ``d_model, n_layers`` beside
``mem_peak`` over ``d_model, n_layers, batch, seq_len``): every comparison and reduction
broadcasts them against each other by dim name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import xarray as xr

from engine.plot.select import check_dim, check_variable
from engine.request.query import OPS, Constraint, make_query, parse_constraint
from engine.runtime.query import clipping_ends, edge_attrs, edge_flags, edge_name, has_edges


def _names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"batch"``, ``["batch", "seq_len"]`` or None -> a tuple of names."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def feasible(ds: xr.Dataset, constraints: Sequence[Constraint]) -> xr.DataArray:
    """True where every constraint holds (and ``valid`` is 1): a boolean over the dims involved."""
    mask = xr.DataArray(True)
    if "valid" in ds.data_vars:
        mask = mask & (ds["valid"] == 1)
    for c in constraints:
        mask = mask & OPS[c.op](ds[c.quantity], c.value)
    return mask


def constraints_of(ds: xr.Dataset, where: str | Sequence[str] | None) -> tuple[Constraint, ...]:
    """``where`` read as query constraints on data variables of ``ds`` (ValueError naming the fix)."""
    out = tuple(parse_constraint(w) for w in _names(where))
    for c in out:
        if c.quantity not in ds.data_vars:
            raise ValueError(f"constraint on unknown variable {c.quantity!r}; variables: "
                             f"{', '.join(map(str, ds.data_vars))}")
    return out


def frontier(ds: xr.Dataset, where: str | Sequence[str], maximize: str | None = None, minimize: str | None = None,
             over: str | Sequence[str] | None = None, across: str | Sequence[str] | None = None) -> xr.DataArray:
    """The largest (``maximize``) or smallest (``minimize``) value of an objective that satisfies ``where``.

    The objective is a dim (``seq_len``: its coordinate) or a data variable (``params_total``).
    It is maximized ``across`` some dims and kept as a function of all the others:

        frontier[rest] = max { objective[rest, a] : a in across, every constraint holds at (rest, a) }

    where ``a`` runs over the points of the ``across`` dims and ``rest`` over the points of every
    other dim of the variables involved (constraints, objective). ``across`` defaults to the
    objective itself when it is a dim, and to the objective's dims outside ``over`` when it is a
    variable. ``over`` (a dim or a list) names the dims the frontier is drawn over: they are kept,
    come first in the result, and are never in ``across``.

    ``ds.llm.frontier("mem_peak <= 80GiB", maximize="seq_len", over="batch")``: the longest
    sequence whose peak memory fits in 80 GiB, for each batch (and each point of any other dim).

    Returns a float DataArray named after the objective, with its ``units`` and a ``long_name``
    that states the frontier; NaN where no point satisfies the constraints. ValueError for an
    unknown variable or dim, or a dim both in ``over`` and ``across``. Where the answer sits on an
    end of an ``across`` axis (the grid may clip it): ``best_points``.
    """
    return Search.of(ds, where, maximize, minimize, over, across).frontier()


def best_points(ds: xr.Dataset, where: str | Sequence[str], maximize: str | None = None, minimize: str | None = None,
                over: str | Sequence[str] | None = None, across: str | Sequence[str] | None = None) -> xr.Dataset:
    """Where ``frontier(...)`` (same arguments) is reached, and whether the grid may clip it, as a query answers it.

    A Dataset over the frontier's dims: ``best_<dim>``, the coordinate of the best point along each
    ``across`` dim other than the objective (the first in grid order on ties, as the on-device query),
    and ``at_edge_<dim>``, 1 where the best point sits on an end of the ``<dim>`` axis that can clip
    it, 0 inside (``engine.runtime.query.clipping_ends``: both ends, the objective's own axis only the
    end it is pushed towards, no bottom at an input's smallest value), NaN where nothing fits; with
    the query's attributes (``top_of_axis``, ``cells_at_top_of_axis``, ...). Labels (categorical dims)
    and single values have no ends and no flag.
    """
    return Search.of(ds, where, maximize, minimize, over, across).best_points()


@dataclass(frozen=True)
class Search:
    """A frontier's question, checked against the cube: the objective among the points that satisfy ``where``."""

    ds: xr.Dataset
    objective: str
    sense: str  # "max" or "min"
    over: tuple[str, ...]
    across: tuple[str, ...]
    where: tuple[Constraint, ...]
    chosen: xr.DataArray  # the objective where every constraint holds, NaN elsewhere

    @classmethod
    def of(cls, ds: xr.Dataset, where, maximize=None, minimize=None, over=None, across=None) -> "Search":
        """The search ``frontier`` describes (ValueError naming the fix for a bad argument)."""
        if (maximize is None) == (minimize is None):
            raise ValueError("give the objective as maximize=NAME or minimize=NAME (one of them)")
        objective = maximize or minimize
        over = _names(over)
        for dim in over:
            check_dim(ds, dim, "over")
        if objective not in ds.dims:
            check_variable(ds, objective)
        across = _names(across) or ((objective,) if objective in ds.dims else
                                    tuple(str(d) for d in ds[objective].dims if d not in over))
        both = [d for d in across if d in over]
        if both:
            raise ValueError(f"{', '.join(both)}: a dim is either kept (over) or maximized across (across), not both")
        if objective in ds.dims and objective not in across:
            raise ValueError(f"the objective {objective!r} is a dim: list it in across")
        if not across:
            raise ValueError(f"nothing to maximize across: every dim of {objective!r} is in over; give across=[...]")
        query = make_query(_names(where), maximize, minimize, across, list(map(str, ds.data_vars)),
                           list(map(str, ds.dims)))
        values = ds[objective]
        if values.dtype.kind not in "iuf":
            raise ValueError(f"the objective {objective!r} holds {values.dtype} values, not numbers")
        chosen = values.where(feasible(ds, query.where))
        missing = [d for d in across if d not in chosen.dims]
        if missing:
            raise ValueError(f"no variable of this frontier varies along {', '.join(missing)}; leave it out of across")
        return cls(ds, objective, "max" if maximize else "min", over, across, query.where, chosen)

    def frontier(self) -> xr.DataArray:
        """The best objective over the kept dims (``frontier``)."""
        chosen, across = self.chosen, list(self.across)
        best = chosen.max(across, skipna=True) if self.sense == "max" else chosen.min(across, skipna=True)
        best = self._laid_out(best).astype(float)
        best.name = self.objective
        word = "largest" if self.sense == "max" else "smallest"
        condition = " and ".join(map(str, self.where))
        best.attrs = {"units": self.ds[self.objective].attrs.get("units", "1"),
                      "long_name": f"{word} {self.objective}" + (f" such that {condition}" if condition else ""),
                      "frontier": f"{self.sense} of {self.objective} across {', '.join(self.across)} subject to "
                                  f"{condition or 'no constraint'}"}
        return best

    def best_points(self) -> xr.Dataset:
        """``best_<dim>`` and ``at_edge_<dim>`` over the kept dims (``best_points``)."""
        reduced = [str(d) for d in self.ds.dims if d in self.across]  # grid order: a tie goes to the first point
        kept = [str(d) for d in self.chosen.dims if d not in reduced]
        block = self.chosen.transpose(*kept, *reduced)
        values = np.asarray(block.values, dtype=float).reshape(block.shape[:len(kept)] + (-1,))
        nothing = np.isnan(values).all(axis=-1)
        filled = np.where(np.isnan(values), -np.inf if self.sense == "max" else np.inf, values)
        flat = np.argmax(filled, axis=-1) if self.sense == "max" else np.argmin(filled, axis=-1)
        index = np.unravel_index(flat, block.shape[len(kept):])
        coords = {d: block[d] for d in kept}
        data = {}
        labels = set(str(self.ds.attrs.get("categories", "")).replace(",", " ").split())
        for dim, i in zip(reduced, index):
            axis = self.ds[dim].values
            best = np.where(nothing, np.nan, axis[i].astype(float)) if axis.dtype.kind in "iuf" else \
                np.where(nothing, "", axis[i])
            answer = self.objective if dim == self.objective else f"best_{dim}"
            if dim != self.objective:
                data[answer] = xr.DataArray(best, dims=kept, coords=coords, attrs=dict(self.ds[dim].attrs))
            ends = clipping_ends(dim, axis, self.objective, self.sense)
            if dim in labels or not has_edges(axis) or not ends:
                continue
            data[edge_name(dim)] = xr.DataArray(edge_flags(best, axis, ends), dims=kept, coords=coords,
                                                attrs=edge_attrs(answer, dim, best, axis, ends))
        return xr.Dataset({name: self._laid_out(da) for name, da in data.items()})

    def _laid_out(self, da: xr.DataArray) -> xr.DataArray:
        """``da`` over the ``over`` dims first (broadcast where nothing depends on one), then the cube's others."""
        for dim in self.over:  # a frontier drawn over a dim nothing depends on is the same at each coordinate
            if dim not in da.dims:
                da = xr.broadcast(da, self.ds[dim])[0]
        order = list(self.over) + [d for d in self.ds.dims if d in da.dims and d not in self.over]
        return da.transpose(*order)


def nondominated(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates, both coordinates minimized, sorted by x then y.

    q dominates p when q_x <= p_x and q_y <= p_y, one of them strictly. Equal points do not
    dominate each other: both are on the front. O(n log n): sort by x, sweep the smallest y so far.
    """
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    keep = np.zeros(len(order), dtype=bool)
    best_before = np.inf  # the smallest y among points with a smaller x
    start = 0
    while start < len(order):
        stop = start + int(np.searchsorted(xs[start:], xs[start], side="right"))
        group_min = ys[start]  # sorted by y within equal x
        if group_min < best_before:
            keep[start:stop] = ys[start:stop] == group_min
        best_before = min(best_before, group_min)
        start = stop
    return order[keep]


def pareto_front(ds: xr.Dataset, x: str, y: str, maximize: str | Sequence[str] = (),
                 where: str | Sequence[str] | None = None) -> xr.Dataset:
    """The Pareto front of two variables (or dims) ``x`` and ``y``: minimize both, or maximize those in ``maximize``.

    The candidates are every point of the broadcast of ``x``, ``y`` and the constraints' variables
    where ``where`` holds (and ``valid`` is 1), and ``x`` and ``y`` are finite. A point is on the
    front when no candidate is at least as good in both and better in one; equal points are all
    on it.

    Returns a Dataset over a dim ``point`` (the front, by increasing ``x``): ``x`` and ``y`` as data
    variables (a dim among them as a coordinate), and every dim of the broadcast as a coordinate
    along ``point``, holding where each front point lies; attrs ``senses`` (``min mem_peak, max
    params_total``) and ``candidates`` (how many points were compared).
    """
    maximize = _names(maximize)
    for name in (x, y):
        if name not in ds.dims:
            check_variable(ds, name)
    wrong = [m for m in maximize if m not in (x, y)]
    if wrong:
        raise ValueError(f"maximize names {', '.join(wrong)}, which is neither x ({x!r}) nor y ({y!r})")
    if x == y:
        raise ValueError(f"x and y are both {x!r}: a Pareto front needs two quantities")
    for name in (x, y):
        if ds[name].dtype.kind not in "iuf":
            raise ValueError(f"{name!r} holds {ds[name].dtype} values, not numbers")
    mask = feasible(ds, constraints_of(ds, where))
    xa, ya, ok = xr.broadcast(ds[x], ds[y], mask)
    dims = [str(d) for d in xa.dims]
    xv, yv = xa.values.astype(float).ravel(), ya.values.astype(float).ravel()
    candidate = np.flatnonzero(ok.values.ravel() & np.isfinite(xv) & np.isfinite(yv))
    sign = {n: -1.0 if n in maximize else 1.0 for n in (x, y)}
    front = candidate[nondominated(sign[x] * xv[candidate], sign[y] * yv[candidate])]
    front = front[np.lexsort((yv[front], xv[front]))]  # by increasing x, whatever the senses
    where_on_grid = np.unravel_index(front, xa.shape)
    coords = {d: ("point", ds[d].values[i], ds[d].attrs) for d, i in zip(dims, where_on_grid)}
    data = {n: ("point", a.values.ravel()[front], ds[n].attrs) for n, a in ((x, xa), (y, ya)) if n not in dims}
    senses = ", ".join(f"{'max' if n in maximize else 'min'} {n}" for n in (x, y))
    return xr.Dataset(data, coords=coords, attrs={"senses": senses, "candidates": int(candidate.size)})
