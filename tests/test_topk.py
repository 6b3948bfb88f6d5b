"""The top-k reducer (``engine.runtime.topk``, ``engine.sinks.topk.TopKSink``): the k best feasible points of a
cube, found chunk by chunk on the device, equal the brute force over the whole cube computed with numpy --
invalid points (the layout rules) never come back, ties keep grid order, and so does a categorical cube."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from engine.request.query import make_query
from engine.request.spec import parse_spec
from engine.runtime.sweep import run
from engine.sinks.topk import TopKSink

AXES = {"recompute": ["none", "full"], "zero": [1, 3], "tp": [1, 2, 3, 4], "pp": [1, 2, 4, 5], "dp": [1, 2, 4, 8, 16],
        "batch": [1, 2, 4], "vp": [1, 2]}


@pytest.fixture(scope="module")
def request_and_cube():
    """A layout cube of GPT-3 1.3B on 16 devices (most points break a layout rule) and its values in memory."""
    req = parse_spec({"sweep": {"arch": "gpt3-1.3b", "gpu": "a100-40gb", "quantities": ["step_time", "mem_peak"]},
                      "options": {"memory_model": "korthikanti", "precision": "bf16", "attention": "flash"},
                      "fixed": {"n_gpus": 16, "seq_len": 2048, "global_batch": 64}, "axes": AXES})
    return req, run(req).dataset


def _brute(req, ds, query, k):
    """The rows numpy finds over the whole cube: feasible points (valid, constraints held), best first, ties in
    grid order (the cube's flat C-order index)."""
    dims = list(req.axes)
    full = {q: ds[q].transpose(*[d for d in dims if d in ds[q].dims]).broadcast_like(ds["valid"])
            .transpose(*dims).values for q in ("step_time", "mem_peak", "valid")}
    ok = full["valid"].astype(bool)
    for c in query.where:
        ok &= {"<=": np.less_equal, ">=": np.greater_equal}[c.op](full[c.quantity], c.value)
    if query.objective in full:
        value = full[query.objective]
    else:
        value = np.broadcast_to(req.axes[query.objective].reshape([-1 if d == query.objective else 1 for d in dims]),
                                ok.shape)
    index = np.flatnonzero(ok.ravel())
    key = value.ravel()[index]
    rank = index[np.lexsort((index, -key if query.sense == "max" else key))][:k]
    at = np.unravel_index(rank, ok.shape)
    return value.ravel()[rank], {d: req.axes[d][i] for d, i in zip(dims, at)}, int(full["valid"].sum()), int(ok.sum())


@pytest.mark.parametrize("where, objective, sense, k, budget", [
    (["mem_peak <= 4GB"], "step_time", "min", 7, 20_000),  # several chunks
    (["mem_peak <= 4GB"], "step_time", "min", 10_000, None),  # more rows asked than feasible: every one
    (["mem_peak <= 4GB"], "step_time", "min", 3, None),  # few rows of a long chunk: the two-stage top-k
    (["mem_peak <= 8GB"], "mem_peak", "max", 12, 20_000),  # maximized: equal peaks across vp, ...
    ([], "tp", "max", 25, 20_000),  # a swept input: every tp-4 layout ties, grid order decides
])
def test_top_k_equals_brute_force(request_and_cube, where, objective, sense, k, budget):
    req, ds = request_and_cube
    query = make_query(where, objective if sense == "max" else None, objective if sense == "min" else None,
                       list(req.axes), req.quantities, list(req.axes))
    out = run(req, TopKSink(query, k), budget=budget).dataset
    value, coords, n_valid, n_feasible = _brute(req, ds, query, k)
    assert int(out["n_valid"]) == n_valid and int(out["n_feasible"]) == n_feasible
    assert 0 < n_feasible <= n_valid < req.points and (n_feasible < n_valid or not where)  # both mask points
    name = objective if objective in req.quantities else f"{sense}_{objective}"
    assert out.sizes["rank"] == min(k, n_feasible)
    if out[name].dtype.kind == "f":
        # XLA may round a float differently in another chunk shape (an ulp): the same values, and each row the
        # cube's value at its coordinates; ties and order exactly where the objective is exact (below)
        np.testing.assert_allclose(out[name].values, value, rtol=1e-12)
        assert (np.diff(out[name].values) * (1 if sense == "min" else -1) >= 0).all()
        rows = {d: out[d].values for d in req.axes}
        at = ds[objective].sel({d: xr.DataArray(v, dims="rank") for d, v in rows.items()
                                if d in ds[objective].dims})
        np.testing.assert_allclose(at.values, out[name].values, rtol=1e-12)
        return
    np.testing.assert_array_equal(out[name].values, value)
    for d, c in coords.items():
        if d != objective:
            np.testing.assert_array_equal(out[d].values, c)
    if objective == "tp":  # ties everywhere: the rows are tp 4's first valid points in grid order
        assert set(out[name].values) == {4}


def test_top_k_refuses_a_query_that_keeps_a_dim(request_and_cube):
    from engine.errors import SpecError

    req, _ = request_and_cube
    query = make_query([], None, "step_time", ["tp", "pp"], req.quantities, list(req.axes))
    with pytest.raises(SpecError, match="list recompute, zero, dp, batch, vp in over"):
        run(req, TopKSink(query, 3))


@pytest.mark.parametrize("n, k", [(1000, 3), (4096, 64), (100_003, 50), (500, 20)])
def test_two_stage_top_k_is_jax_top_k(n, k):
    """The rows-first top-k (``topk._top_k``) picks what ``jax.lax.top_k`` picks, ties in index order included:
    few distinct values (ties everywhere), the worst value (masked points) among them, a length no row divides."""
    import jax

    from engine.runtime.topk import _top_k

    rng = np.random.default_rng(n)
    key = rng.integers(0, 7, n).astype(np.float64)
    key[rng.random(n) < 0.3] = -np.inf
    np.testing.assert_array_equal(np.asarray(jax.jit(_top_k, static_argnums=1)(key, k)),
                                  np.asarray(jax.lax.top_k(key, k)[1]))
    # k covering the chunk: every index, unsorted (the host orders them)
    np.testing.assert_array_equal(np.asarray(jax.jit(_top_k, static_argnums=1)(key, n)), np.arange(n))
