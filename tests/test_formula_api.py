"""The Python API of formula sets and kernels: JSON-ready numbers, sizes that must be positive."""

from __future__ import annotations

import numpy as np
import pytest


def test_evaluate_returns_json_ready_numbers():
    import json

    import engine

    fs = engine.build_formula_set("seed")
    point = {"d_model": 768, "n_layers": 12, "vocab": 50000}
    value = fs.evaluate("params_total", point)
    assert type(value) is int and json.dumps({"n": value}) == '{"n": 123417600}'
    assert isinstance(fs.evaluate("perf_relative", point), float)
    assert fs.evaluate_exact("params_total", point) == 123417600


def test_the_kernel_api_refuses_non_positive_sizes():
    import engine
    from engine.runtime.compile import compile_kernel

    fs = engine.build_formula_set("seed")
    expr = fs.resolve("params_total", {"d_model": None, "n_layers": None, "vocab": 50000})
    kernel = compile_kernel({"params_total": expr}, {"params_total": True}, ["d_model", "n_layers"])
    for bad in ([-5], [0], [768, -1]):
        with pytest.raises(ValueError, match="must be positive integers"):
            kernel(d_model=np.array(bad), n_layers=np.array([2]))
    assert kernel(d_model=np.array([768]), n_layers=np.array([12]))["params_total"].item() == 123417600
