"""A sweep's numerics: ``fast`` (float32/int32 on the device) against ``exact`` (int64/float64), and exact
comparison of huge values in a query's constraints."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import PrecisionError
from engine.request.spec import parse_spec
from engine.runtime.sweep import run
from engine.sinks import sink_for


SERVE = {"sweep": {"arch": "meta-llama-3-8b", "quantities": ["mem_peak", "mem_kv_cache"]},
         "options": {"mode": "inference", "precision": "bf16"},
         "axes": {"batch": [1, 2, 4], "seq_len": [1024, 8192, 65536]}}


def test_fast_precision_with_constants_past_int32():
    fast = parse_spec({**SERVE, "sweep": {**SERVE["sweep"], "numerics": "fast"}})
    exact = parse_spec(SERVE)
    f, e = run(fast).dataset, run(exact).dataset
    np.testing.assert_allclose(f.mem_peak.values, e.mem_peak.values, rtol=1e-6)
    q = parse_spec({**SERVE, "sweep": {**SERVE["sweep"], "numerics": "fast"},
                    "query": {"where": "mem_peak <= 80GiB", "maximize": "mem_kv_cache", "over": ["seq_len"]}})
    got = run(q, sink_for(query=q.query)).dataset
    assert got.n_feasible.values.tolist() == [3, 3, 2]


def test_fast_precision_refuses_coordinates_past_int32():
    req = parse_spec({"sweep": {"formula_set": "seed", "numerics": "fast", "quantities": ["params_total"]},
                      "fixed": {"vocab": 10, "n_layers": 2}, "axes": {"d_model": [2**31]}})
    with pytest.raises(PrecisionError, match="int32"):
        run(req)


def test_huge_constraint_values_compare_exactly():
    q = parse_spec({**SERVE, "query": {"where": "mem_peak <= 1e30", "over": ["seq_len"]}})
    assert run(q, sink_for(query=q.query)).dataset.n_feasible.values.tolist() == [3, 3, 3]
