"""The run summary's running min/max (``sweep.Extremes``): fills never win, with or without the in-place fast path."""

from __future__ import annotations

import numpy as np
import pytest

from engine.request.numerics import INT64_FILL
from engine.sinks.result import Extremes


def _brute(blocks):
    """(min value, its cube index), (max value, its cube index) over the points that hold a result."""
    found = [(v, (k,) + j) for k, b in enumerate(blocks) for j, v in np.ndenumerate(b)
             if not (np.isnan(v) if b.dtype.kind == "f" else v == INT64_FILL)]
    low = min(found, key=lambda t: t[0])  # first of equal values, as argmin
    high = max(found, key=lambda t: t[0])
    return low, high


@pytest.mark.parametrize("dtype", ["int64", "float64"])
@pytest.mark.parametrize("fills", [0, 1, 5])
def test_extremes_leave_fills_out_and_keep_the_first_position(dtype, fills):
    rng = np.random.default_rng(fills)
    blocks = []
    for k in range(4):
        b = rng.integers(-50, 50, size=(3, 5)).astype(dtype)
        for _ in range(fills):  # fills at random points, some chunks holding the would-be extremes
            b[rng.integers(3), rng.integers(5)] = np.nan if dtype == "float64" else INT64_FILL
        blocks.append(b)
    ex = Extremes(["q"], ("a", "b", "c"))
    for k, b in enumerate(blocks):
        ex.add((slice(k, k + 1), slice(0, 3), slice(0, 5)), {"q": b[None]})
    low, high = _brute(blocks)
    assert ex.best[("q", "min")][0] == low[0] and ex.best[("q", "max")][0] == high[0]
    assert ex.best[("q", "min")][1] == low[1] and ex.best[("q", "max")][1] == high[1]


def test_a_block_of_fills_only_changes_nothing():
    ex = Extremes(["q"], ("a",))
    ex.add((slice(0, 3),), {"q": np.full(3, np.nan)})
    ex.add((slice(3, 6),), {"q": np.full(3, INT64_FILL, dtype=np.int64)})
    assert ex.best == {}
    ex.add((slice(6, 9),), {"q": np.array([np.nan, 2.0, -1.0])})
    assert ex.best[("q", "min")] == (-1.0, (8,)) and ex.best[("q", "max")] == (2.0, (7,))
