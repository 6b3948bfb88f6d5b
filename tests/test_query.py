"""Query constraints as written in a spec's [query] or a ``--where``: numbers with exponents and units."""

from __future__ import annotations

import pytest

from engine.request.query import parse_constraint


def test_constraint_numbers_with_exponents_are_numbers():
    assert parse_constraint("perf_relative <= 6.35e0").value == pytest.approx(6.35)
    assert parse_constraint("perf_relative >= 2.5e-1").value == pytest.approx(0.25)
    assert parse_constraint("mem_peak <= 80 GiB").value == 80 * 2**30
    assert parse_constraint("mem_peak <= 1.5e3MB").value == 1_500_000_000
    with pytest.raises(ValueError, match="cannot read"):
        parse_constraint("mem_peak <= lots")
