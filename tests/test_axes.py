"""Sweep axes: linear-time checks, strictly increasing values, refused before allocation when too large;
the request they build is frozen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import SpecError
from engine.request.spec import parse_spec

REPO = Path(__file__).resolve().parents[1]


SEED_FIXED = {"vocab": 5, "batch": 1, "seq_len": 2}


def _axes(**axes):
    return parse_spec({"sweep": {"formula_set": "seed"}, "fixed": SEED_FIXED, "axes": axes})


def test_a_ten_million_value_axis_is_accepted():
    req = _axes(d_model={"start": 1, "stop": 10**7}, n_layers=list(range(1, 100_001)))
    assert req.shape == (10**7, 100_000)
    assert req.axes["d_model"][-1] == 10**7 and req.axes["d_model"].dtype == np.int64


@pytest.mark.parametrize("values,message", [
    ([32, 3, 8], "is not in increasing order; coordinates must be distinct and strictly increasing: [3, 8, 32]"),
    ([1, 2, 2, 4], "repeats 2; coordinates must be distinct and strictly increasing: [1, 2, 4]"),
])
def test_unsorted_or_repeated_axes_are_refused_with_the_sorted_list(values, message):
    with pytest.raises(SpecError) as info:
        _axes(d_model=values, n_layers=[1])
    assert message in info.value.message and info.value.key == "axes.d_model"


def test_an_axis_too_large_for_memory_is_refused_before_allocation(monkeypatch):
    monkeypatch.setattr("engine.runtime.plan.available_host_memory", lambda: 1 << 30)
    with pytest.raises(SpecError, match="an axis may take an eighth"):
        _axes(d_model={"start": 1, "stop": 10**8}, n_layers=[1])
    with pytest.raises(SpecError, match="at most 1,000,000,000"):
        _axes(d_model={"start": 1, "stop": 10**12}, n_layers=[1])


def test_the_shipped_specs_have_increasing_axes():
    from engine.request.spec import load_spec

    for path in sorted((REPO / "sweeps").glob("*.toml")):
        if path.name.endswith("-claims.toml"):
            continue
        req = load_spec(path)
        for name, values in req.axes.items():
            if name in req.categories:  # labels: distinct, in the order written
                assert len(set(values.tolist())) == len(values), (path.name, name)
                continue
            assert np.all(np.diff(values) > 0), (path.name, name)


def test_the_request_is_frozen():
    import dataclasses

    req = _axes(d_model=[8], n_layers=[1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.numerics = "fast"
    assert req.formulas is not None and req.numerics.name == "exact"
