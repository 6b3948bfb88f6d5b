"""On-device queries: constraints as masks and reductions over named dims, inside the kernel.

A query keeps the full cube on the device: the jitted function evaluates a chunk, masks it with
the constraints, and reduces the ``over`` dims to

    n_feasible      how many points satisfy every constraint
    best            max (or min) of the objective among them
    best_<dim>      the coordinate of each reduced dim where the best is reached

so only arrays over the remaining dims leave the device. Chunks are combined on the host
(small arrays; ties keep the first point in grid order, whatever order the chunks come in). Of a
cube with categorical dims, each combination's kernel reduces the numeric ``over`` dims on the
device, and the host accumulator, which spans every dim of the cube, reduces the categorical ones
(``best_<dim>`` of a categorical dim holds the winner's label). Where ``n_feasible`` is 0 nothing
satisfies the constraints and the other variables hold the fill value (NaN; see ``numerics.INT64_FILL``).

Mixed dims: the kernel returns each output over its own dims (``Kernel.dims``); the constraints, the
objective and ``valid`` are broadcast to the chunk's full grid on the device (``dims.expand``; XLA
fuses the broadcast into the mask), so a constraint on ``mem_peak`` (every axis) with an objective on
``params_total`` (two of them) reduces exactly as on the dense cube. Invalid points never satisfy a
query, whichever dims the objective has.

The query itself (constraints, objective, ``over``) is read and checked in the request layer
(``engine.request.query``: ``make_query``, ``Query``); this module only answers one.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from engine.request.query import OPS, Query
from engine.runtime.dims import expand
from engine.symbolic.symbols import SYMBOLS

# jax.numpy is imported inside the functions that trace: engine.plot (the ds.llm accessor: fronts, draw) reads this
# module's edge helpers without loading JAX.


def _constant(value, like):
    """``value`` as a constant of ``like``'s dtype where that is exact, else float (no int overflow)."""
    import jax.numpy as jnp

    if jnp.issubdtype(like.dtype, jnp.integer) and isinstance(value, int) and abs(value) < 2**62 and \
            like.dtype == jnp.int64:
        return jnp.asarray(value, like.dtype)
    dtype = like.dtype if jnp.issubdtype(like.dtype, jnp.floating) else jnp.float64
    if jnp.issubdtype(like.dtype, jnp.integer) and like.dtype != jnp.int64:
        dtype = jnp.float32
    return jnp.asarray(float(value), dtype)


def masks(query: Query, out: Mapping, full, shape: tuple[int, ...], split: int, n_valid):
    """``(valid, feasible)`` over a chunk's full grid: the grid points (padding on the split axis excluded) that
    pass the request's validity, and those of them that satisfy every constraint of ``query``. ``full(name)``:
    output ``name`` broadcast over the chunk."""
    import jax.numpy as jnp

    valid = jnp.ones(shape, dtype=bool)
    if "valid" in out:  # invalid architectures never satisfy a query
        valid = valid & full("valid").astype(bool)
    # padded coordinates on the split axis are not part of the grid
    idx = jnp.arange(shape[split]).reshape([-1 if i == split else 1 for i in range(len(shape))])
    valid = valid & (idx < n_valid)
    mask = valid
    for c in query.where:
        mask = mask & OPS[c.op](full(c.quantity), _constant(c.value, out[c.quantity]))
    return valid, mask


def objective_values(query: Query, out: Mapping, full, coords: Sequence, axes: Sequence[str],
                     shape: tuple[int, ...]):
    """The objective over a chunk's full grid: a quantity, or a swept input's coordinates."""
    import jax.numpy as jnp

    if query.objective in out:
        return full(query.objective)
    i = list(axes).index(query.objective)  # a swept input: the largest (smallest) coordinate that fits
    return jnp.broadcast_to(coords[i].reshape([-1 if j == i else 1 for j in range(len(shape))]), shape)


def worst(dtype, sense: str):
    """The value no point is worse than: where masked points go before a ``sense`` reduction."""
    import jax.numpy as jnp

    if jnp.issubdtype(dtype, jnp.integer):
        info = jnp.iinfo(dtype)
        return info.min if sense == "max" else info.max
    return -jnp.inf if sense == "max" else jnp.inf


class QueryFunction:
    """Builds the on-device reduction for one kernel, axis order and split axis (hashable).

    ``dims``: each output's dims (``Kernel.dims``); an output not named spans every axis.
    """

    def __init__(self, query: Query, axes: Sequence[str], split_axis: int, integer_objective: bool,
                 dims: Mapping[str, Sequence[str]] | None = None):
        self.query = query
        self.axes = tuple(axes)
        self.split_axis = split_axis
        self.integer_objective = integer_objective
        self.dims = {q: tuple(d) for q, d in (dims or {}).items()}
        self._key = (query, self.axes, split_axis, integer_objective, tuple(sorted(self.dims.items())))

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, QueryFunction) and other._key == self._key

    @property
    def keep(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.axes) if a not in self.query.over)

    @property
    def reduce(self) -> tuple[int, ...]:
        return tuple(i for i, a in enumerate(self.axes) if a in self.query.over)

    def __call__(self, evaluate):
        import jax.numpy as jnp

        q, keep, red, split = self.query, self.keep, self.reduce, self.split_axis

        def fn(*args):
            *coords, n_valid = args
            out, overflow = evaluate(*coords)
            shape = tuple(c.shape[0] for c in coords)
            full = lambda name: jnp.broadcast_to(self.over_axes(out[name], name), shape)  # noqa: E731
            _, mask = masks(q, out, full, shape, split, n_valid)
            perm = keep + red
            flat = lambda x: jnp.transpose(x, perm).reshape(tuple(shape[i] for i in keep) + (-1,))  # noqa: E731
            result = {"n_feasible": jnp.sum(flat(mask), axis=-1, dtype=jnp.int64 if n_valid.dtype == jnp.int64
                                            else jnp.int32)}
            if q.objective is not None:
                obj = objective_values(q, out, full, coords, self.axes, shape)
                masked = flat(jnp.where(mask, obj, worst(obj.dtype, q.sense)))
                arg = jnp.argmax(masked, axis=-1) if q.sense == "max" else jnp.argmin(masked, axis=-1)
                result["best"] = jnp.take_along_axis(masked, arg[..., None], axis=-1)[..., 0]
                result["arg"] = arg
            return result, overflow

        return fn

    def over_axes(self, values, name: str):
        """Output ``name`` (over its own dims) shaped to broadcast over every axis of the chunk."""
        return expand(values, self.dims.get(name, self.axes), self.axes)


class QueryAccumulator:
    """Combines per-chunk query results on the host into arrays over the kept dims."""

    def __init__(self, qf: QueryFunction, shape: Sequence[int], coords: Sequence[np.ndarray], dtype):
        self.qf = qf
        self.shape = tuple(shape)
        self.coords = list(coords)
        keep_shape = tuple(self.shape[i] for i in qf.keep)
        self.n_feasible = np.zeros(keep_shape, dtype=np.int64)
        # "no value yet"; cells that stay infeasible get the fill value in ``sweep.query_dataset``
        dtype = np.dtype(dtype)
        self.best = np.full(keep_shape, np.nan if dtype.kind == "f" else np.iinfo(dtype).min, dtype=dtype)
        self.best_index = {i: np.zeros(keep_shape, dtype=np.int64) for i in qf.reduce}

    def add(self, chunk_index: tuple, chunk_shape: tuple[int, ...], result: dict) -> None:
        """Merge one chunk's result; ``chunk_index`` holds, per axis, the slice the chunk covers."""
        keep, red = self.qf.keep, self.qf.reduce
        target = tuple(chunk_index[i] for i in keep)
        # the kept dims of a chunk: its slice of each kept axis (length-1 for walked axes)
        count = np.asarray(result["n_feasible"]).reshape(self._kept_shape(chunk_index))
        n_before = self.n_feasible[target].copy()
        self.n_feasible[target] += count
        if self.qf.query.objective is None:
            return
        best = np.asarray(result["best"]).reshape(count.shape)
        arg = np.asarray(result["arg"]).reshape(count.shape)
        local = np.unravel_index(arg, tuple(chunk_shape[i] for i in red))
        found = [local[j] + _start(chunk_index[axis]) for j, axis in enumerate(red)]
        current = self.best[target]
        better = best > current if self.qf.query.sense == "max" else best < current
        earlier = (best == current) & (self._order(found) < self._order([self.best_index[a][target] for a in red]))
        take = (count > 0) & ((n_before == 0) | better | earlier)
        self.best[target] = np.where(take, best, current)
        for j, axis in enumerate(red):
            self.best_index[axis][target] = np.where(take, found[j], self.best_index[axis][target])

    def _order(self, index: list[np.ndarray]) -> np.ndarray:
        """Grid order of points given by their index along each reduced dim (a tie goes to the first)."""
        shape = tuple(self.shape[i] for i in self.qf.reduce)
        if not shape:
            return np.zeros((), np.int64)
        return np.ravel_multi_index([np.asarray(i, np.int64) for i in index], shape)

    def _kept_shape(self, chunk_index) -> tuple[int, ...]:
        return tuple(_length(chunk_index[i], self.shape[i]) for i in self.qf.keep)


def _start(index) -> int:
    return index.start or 0 if isinstance(index, slice) else int(index)


def _length(index, n: int) -> int:
    if isinstance(index, slice):
        return len(range(*index.indices(n)))
    return 1


# -- answers clipped by the grid ----------------------------------------------------------------------
#
# A query's best point (a frontier's too) that sits on the first or last value of a swept axis may be a
# bound, not the answer: the optimum could lie beyond the grid. Derived on the host from the answers and
# the axis values (small arrays). Per reduced dim ``<dim>``, ``at_edge_<dim>`` is 1 where the best point's
# coordinate along ``<dim>`` is an end of the axis that can clip it, 0 inside, the fill (NaN) where nothing
# fits. Both ends count for a dim the best point is searched along; for the objective's own axis only
# the end it is pushed towards (the largest seq_len at the bottom of its axis is an answer, not a bound),
# and a bottom at an integer input's smallest valid value (n_layers 1) has nothing beyond it.
# Labels (a categorical dim) have no order and a single value no inside: neither gets a flag.

EDGE_PREFIX = "at_edge_"
ENDS = ("bottom", "top")
_BEYOND = {"bottom": "≤", "top": "≥"}


def edge_name(dim: str) -> str:
    """The flag variable of ``dim``: ``at_edge_d_model``."""
    return f"{EDGE_PREFIX}{dim}"


def has_edges(axis: np.ndarray) -> bool:
    """Whether an axis has ends that can clip an answer: numbers (not labels or booleans), more than one value."""
    axis = np.asarray(axis)
    return axis.dtype.kind in "iuf" and np.unique(axis).size > 1


def clipping_ends(dim: str, axis: np.ndarray, objective: str | None, sense: str) -> tuple[str, ...]:
    """The ends of ``dim``'s axis where an answer may be clipped: both, or for the objective's own axis the one
    it is pushed towards (``top`` for max, ``bottom`` for min). A bottom at the input's smallest valid value
    (``n_layers`` 1) has nothing beyond it and never clips."""
    ends = (("top",) if sense == "max" else ("bottom",)) if dim == objective else ENDS
    smallest = smallest_value(dim)
    if smallest is not None and np.min(axis) <= smallest:
        ends = tuple(end for end in ends if end != "bottom")
    return ends


def smallest_value(dim: str) -> int | None:
    """The smallest valid value of an integer input (1 for sizes, 0 for counts); None for any other dim."""
    info = SYMBOLS.get(dim)
    return info.minimum if info is not None and info.integer else None


def axis_ends(axis: np.ndarray, ends: Sequence[str] = ENDS) -> dict[str, int | float]:
    """``{"bottom": smallest value, "top": largest}`` of ``axis`` (the ends named), as Python numbers."""
    axis = np.asarray(axis)
    value = {"bottom": axis.min(), "top": axis.max()}
    return {end: value[end].item() for end in ends}


def edge_flags(best: np.ndarray, axis: np.ndarray, ends: Sequence[str] = ENDS) -> np.ndarray:
    """float64 over ``best``'s shape: 1 where the best coordinate is one of ``ends`` of ``axis``, 0 where it is
    not, NaN where ``best`` is NaN (nothing fits)."""
    best = np.asarray(best, dtype=np.float64)
    at = np.zeros(best.shape, dtype=bool)
    for value in axis_ends(axis, ends).values():
        at |= best == value
    return np.where(np.isnan(best), np.nan, at.astype(np.float64))


def edge_attrs(answer: str, dim: str, best: np.ndarray, axis: np.ndarray, ends: Sequence[str]) -> dict:
    """CF attributes of the flag of ``answer`` (its best coordinate along ``dim``): flag values and meanings, the
    ends that clip it (``top_of_axis``) and how many cells sit on each (``cells_at_top_of_axis``)."""
    best = np.asarray(best, dtype=np.float64)
    values = axis_ends(axis, ends)
    where = " or ".join(f"the {end} ({_number(v)})" for end, v in values.items())
    attrs = {"units": "1", "long_name": f"1 where {answer} is {where} of the {dim} axis: the true answer may lie "
                                       "beyond the grid; 0 inside; NaN where nothing fits",
             "flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "inside at_edge"}
    for end, value in values.items():
        attrs[f"{end}_of_axis"] = value
        attrs[f"cells_at_{end}_of_axis"] = int((best == value).sum())
    return attrs


def edge_lines(ds) -> list[str]:
    """The run summary's lines on answers at an edge of the grid, one per clipping end that holds any cell:
    ``best d_model ≥ 4,096 (the top of the d_model axis) in 59 of 197 cells: the true answer may lie beyond``.
    ``ds``: a query's answer (its flags' attributes and ``n_feasible``)."""
    flags = [str(v) for v in ds.data_vars if str(v).startswith(EDGE_PREFIX)]
    if not flags:
        return []
    cells = int((np.asarray(ds["n_feasible"].values) > 0).sum()) if "n_feasible" in ds.data_vars else None
    of = f" of {cells:,}" if cells is not None else ""
    lines = []
    for flag in flags:
        dim = flag[len(EDGE_PREFIX):]
        answer = answer_of(ds.data_vars, dim) or dim
        for end in ENDS:
            n = ds[flag].attrs.get(f"cells_at_{end}_of_axis")
            if n:
                lines.append(f"{edge_note(answer, dim, end, ds[flag].attrs[f'{end}_of_axis'])} in {int(n):,}{of} "
                             "cells: the true answer may lie beyond")
    return lines


def answer_of(names, dim: str) -> str | None:
    """Of ``names``, the answer along ``dim``: ``best_<dim>``, ``max_<dim>`` or ``min_<dim>`` (the objective's
    own axis), or ``<dim>`` itself (a frontier's objective); None if none is there."""
    return next((a for a in (f"best_{dim}", f"max_{dim}", f"min_{dim}", dim) if a in names), None)


def edge_note(answer: str, dim: str, end: str, value) -> str:
    """``best d_model ≥ 4,096 (the top of the d_model axis)``: an answer on an end of its axis, in words."""
    word = answer if answer == dim else f"{answer[:-len(dim)].rstrip('_')} {dim}"
    return f"{word} {_BEYOND[end]} {_number(value)} (the {end} of the {dim} axis)"


def _number(value) -> str:
    """``4,096``, ``0.07``: an axis value as text."""
    value = np.asarray(value).item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.6g}"
