"""Top-k queries: the ``k`` best grid points of a cube that satisfy a query's constraints, found on the device.

Where ``engine.runtime.query`` reduces the ``over`` dims to one best point per remaining cell, a top-k
query ranks every point of the cube (its ``over`` lists every dim) and keeps the ``k`` best. Each chunk
is masked on the device as a query masks it (``query.masks``: the request's validity, the padding, the
constraints), then ``jax.lax.top_k`` of the objective (negated to minimize; in two stages, ``_top_k``) picks
the chunk's ``k`` best;
only those rows (their objective, their position in the chunk, whether they are feasible) and two counts
(valid points, feasible points) leave the device. On the host ``TopKAccumulator`` merges the chunks' rows:
the ``k`` best by objective, ties in grid order (the cube's flat index), whatever order chunks come in, as
``jax.lax.top_k`` keeps ties within a chunk (the lower index first). Of a categorical cube the chunks of
every combination are merged alike (their indices span every dim of the cube).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from engine.request.query import Query
from engine.runtime.dims import expand
from engine.runtime.query import masks, objective_values, worst


class TopKFunction:
    """The on-device top-k of one kernel's chunks (hashable: one compiled executable per key).

    Parameters
    ----------
    query : Query
        Constraints and objective; ``over`` must list every axis.
    k : int
        Rows kept per chunk (at most the chunk's points).
    axes : sequence of str
        The kernel's axes, in order.
    split_axis : int
        The chunk plan's split axis (its padding is masked).
    dims : mapping, optional
        Each output's dims (``Kernel.dims``); an output not named spans every axis.
    """

    def __init__(self, query: Query, k: int, axes: Sequence[str], split_axis: int,
                 dims: Mapping[str, Sequence[str]] | None = None):
        self.query, self.k, self.axes, self.split_axis = query, int(k), tuple(axes), split_axis
        self.dims = {q: tuple(d) for q, d in (dims or {}).items()}
        self._key = (query, self.k, self.axes, split_axis, tuple(sorted(self.dims.items())))

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, TopKFunction) and other._key == self._key

    def __call__(self, evaluate):
        import jax.numpy as jnp

        q, split = self.query, self.split_axis

        def fn(*args):
            *coords, n_valid = args
            out, overflow = evaluate(*coords)
            shape = tuple(c.shape[0] for c in coords)
            full = lambda name: jnp.broadcast_to(expand(out[name], self.dims.get(name, self.axes), self.axes),  # noqa: E731
                                                 shape)
            valid, mask = masks(q, out, full, shape, split, n_valid)
            obj = objective_values(q, out, full, coords, self.axes, shape).ravel()
            key = jnp.where(mask.ravel(), obj if q.sense == "max" else -obj, worst(obj.dtype, "max"))
            index = _top_k(key, min(self.k, key.size))
            count = jnp.int64 if n_valid.dtype == jnp.int64 else jnp.int32
            return {"value": obj[index], "index": index, "feasible": mask.ravel()[index],
                    "n_valid": jnp.sum(valid, dtype=count), "n_feasible": jnp.sum(mask, dtype=count)}, overflow

        return fn


ROW = 64  # points per row of the two-stage top-k


def _top_k(key, k: int):
    """Flat indices of the ``k`` largest entries of ``key`` (ties: the lower index first), as
    ``jax.lax.top_k``'s (every index, in index order, when ``k`` covers ``key``), in two cheap stages: XLA's CPU top-k sorts its whole operand (0.9 s for 887,040
    points), so ``key`` is cut into rows of ``ROW``, the ``k`` rows of the largest maxima are kept (the ``k``
    best entries lie in them: an entry of another row has ``k`` rows' maxima before it, ties included, since
    rows tie in index order) and their ``k x ROW`` entries, in index order, go through ``top_k`` (17 ms)."""
    import jax
    import jax.numpy as jnp

    n = key.size
    if k >= n:  # every entry: the host orders them (``TopKAccumulator``)
        return jnp.arange(n)
    if k * ROW >= n:
        return jax.lax.top_k(key, k)[1]
    pad = (-n) % ROW  # padding the worst value at the end: never before a real entry, even a masked one
    rows = jnp.concatenate([key, jnp.full(pad, worst(key.dtype, "max"), key.dtype)]).reshape(-1, ROW)
    best = jnp.sort(jax.lax.top_k(rows.max(axis=1), k)[1])
    _, j = jax.lax.top_k(rows[best].ravel(), k)
    return (best[:, None] * ROW + jnp.arange(ROW)).ravel()[j]


class TopKAccumulator:
    """The ``k`` best rows of every chunk so far, merged on the host.

    Parameters
    ----------
    k : int
        Rows kept.
    shape : sequence of int
        The cube's shape (every dim, categorical ones included): a row's grid order is its flat index.
    sense : {"min", "max"}
        The objective's sense.
    """

    def __init__(self, k: int, shape: Sequence[int], sense: str):
        self.k, self.shape, self.sense = int(k), tuple(shape), sense
        self.value: np.ndarray | None = None  # the objective's dtype, once a chunk came
        self.order = np.zeros(0, np.int64)
        self.n_valid = 0
        self.n_feasible = 0

    def add(self, index: tuple, padded: Sequence[int], result: Mapping[str, np.ndarray]) -> None:
        """Merge one chunk's rows: ``index`` holds the slice of every dim of the cube the chunk covers (its
        padding excluded), ``padded`` the chunk's shape on the device over the same dims (the split axis
        padded), over which ``result["index"]`` counts."""
        self.n_valid += int(result["n_valid"])
        self.n_feasible += int(result["n_feasible"])
        ok = np.asarray(result["feasible"], bool)
        chunk = tuple(ix.stop - ix.start for ix in index)
        local = np.unravel_index(np.asarray(result["index"], np.int64)[ok], tuple(padded))
        inside = np.all([i < n for i, n in zip(local, chunk)], axis=0)
        cube = [i[inside] + ix.start for i, ix in zip(local, index)]
        order = np.ravel_multi_index(cube, self.shape)
        value = np.asarray(result["value"])[ok][inside]
        value = value if self.value is None else np.concatenate([self.value, value])
        order = np.concatenate([self.order, order])
        rank = np.lexsort((order, -value if self.sense == "max" else value))[:self.k]
        self.value, self.order = value[rank], order[rank]

    def rows(self) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """``(objective, positions)``: the best rows in rank order, and each dim's index of every row."""
        value = self.value if self.value is not None else np.zeros(0)
        return value, np.unravel_index(self.order, self.shape)

