"""combine: the parts of one request into one cube; parts of different requests are refused naming the
difference; the copy goes in bounded blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_combine_refuses_a_part_as_its_target(tmp_path, monkeypatch, run_cli, tiny, one_line_error):
    monkeypatch.chdir(tmp_path)
    spec = tiny(tmp_path)
    for i in (0, 1):
        assert run_cli("run", spec, "--part", f"{i}/2", "--quiet").returncode == 0
    size = Path("spec.part000-of-002.nc").stat().st_size
    result = run_cli("combine", "spec.part000-of-002.nc", "spec.part001-of-002.nc", "-o", "spec.part000-of-002.nc")
    code, err = result.returncode, result.stderr
    assert code == 2 and "one of this command's inputs" in one_line_error(err)
    assert Path("spec.part000-of-002.nc").stat().st_size == size


@pytest.mark.parametrize("other,difference", [
    (dict(vocab=32000), "fixed is 'vocab = 32000' there and 'vocab = 50000'"),
    (dict(precision="fast"), "numerics is 'fast' there and 'exact'"),
])
def test_combine_refuses_parts_of_different_requests(tmp_path, other, difference, run_cli, temps, one_line_error,
                                                     run_parts):
    a = run_parts("a")
    b = run_parts("b", **other)
    result = run_cli("combine", a[0], b[1], "-o", tmp_path / "x.nc")
    code, err = result.returncode, result.stderr
    assert code == 2 and difference in one_line_error(err)
    assert not (tmp_path / "x.nc").exists() and temps(tmp_path) == []
    assert run_cli("combine", a[1], a[0], "-o", tmp_path / "x.nc").returncode == 0


def test_combine_copies_in_bounded_blocks():
    from engine.sinks.dataset import COPY_BLOCK_ELEMENTS, _blocks

    shape = (3, 5000, 3000)
    blocks = list(_blocks(shape))
    covered = np.zeros(shape, dtype=np.int8)
    for b in blocks:
        covered[b] += 1
        assert covered[b].size <= COPY_BLOCK_ELEMENTS
    assert covered.min() == 1 and covered.max() == 1
