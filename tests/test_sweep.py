"""Sweep -> Dataset -> netCDF: labels, values, attrs, round trip and atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import engine
from engine.errors import ResourceError
from engine.symbolic.formulas import build_formula_set
from engine.request.spec import load_spec
from engine.runtime.sweep import run


def test_dataset_is_labelled_and_exact(small_spec):
    req = load_spec(small_spec)
    ds = run(req).dataset
    assert list(ds.dims) == ["d_model", "n_layers", "batch", "seq_len"]
    assert ds.sizes == {"d_model": 3, "n_layers": 4, "batch": 4, "seq_len": 2}
    assert list(ds.data_vars) == req.quantities
    assert ds.sel(d_model=768, n_layers=12, batch=1, seq_len=256)["params_total"].item() == 123_417_600
    assert ds["params_total"].dtype == np.int64 and ds["perf_relative"].dtype == np.float64
    fs = build_formula_set("seed")
    point = dict(d_model=1024, n_layers=18, batch=8, seq_len=1024, vocab=50000)
    assert ds["mem_peak"].sel({k: v for k, v in point.items() if k != "vocab"}).item() == int(
        fs.evaluate("mem_peak", point))
    attrs = ds["mem_peak"].attrs
    assert attrs["units"] == "bytes" and attrs["long_name"] == "peak training memory"
    assert attrs["formula"] == "mem_peak = mem_activations + mem_peak_extra + mem_steady"
    assert "M_{\\mathrm{peak}}" in attrs["formula_latex"] and attrs["source"].startswith("seed article")
    assert ds["params_total"].attrs["units"] == "1"
    assert ds["d_model"].attrs["long_name"].startswith("model (hidden) width")
    assert ds.attrs["engine_version"] == engine.__version__
    assert "[axes]" in ds.attrs["spec"] and ds.attrs["fixed"] == "vocab = 50000"


def test_chunked_equals_unchunked(small_spec):
    req = load_spec(small_spec)
    whole = run(req).dataset
    # bytes over natural dims (584 per d_model, 152 per (d_model, n_layers), 56 per (d_model, n_layers, batch);
    # one row of seq_len is 56 bytes, so 112 is the smallest budget allowed):
    # split d_model, then walk d_model and split n_layers, then walk both and split batch
    for budget, axis in ((2_000, 0), (700, 1), (160, 2)):
        sliced = run(req, budget=budget)
        assert sliced.plan.n_chunks > 1 and sliced.plan.split_axis == axis
        xr.testing.assert_identical(whole.drop_attrs(), sliced.dataset.drop_attrs())


def test_netcdf_round_trip_is_identical(small_spec, tmp_path):
    req = load_spec(small_spec)
    out = tmp_path / "cube.nc"
    result = run(req, out)
    assert result.path == out and out.stat().st_size > 0
    back = xr.open_dataset(out)
    memory = run(req).dataset
    try:
        for ds in (back, memory):
            ds.attrs.pop("history")
        xr.testing.assert_identical(back, memory)
        assert back["params_total"].dtype == np.int64
        assert back["mem_peak"].encoding.get("zlib") is True
    finally:
        back.close()
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".toml"] == ["cube.nc"]


def _fail_on_second_write(monkeypatch, exc):
    from engine.sinks.dataset import StreamWriter

    real, calls = StreamWriter.write, []

    def write(self, index, values):
        calls.append(index)
        if len(calls) == 2:
            raise exc
        real(self, index, values)

    monkeypatch.setattr(StreamWriter, "write", write)
    return calls


def test_failed_write_leaves_no_file(small_spec, tmp_path, monkeypatch):
    calls = _fail_on_second_write(monkeypatch, OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        run(load_spec(small_spec), tmp_path / "cube.nc", budget=2_000)
    assert len(calls) == 2  # it failed mid-stream, after one chunk was written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


def test_interrupted_write_keeps_an_existing_target(small_spec, tmp_path, monkeypatch):
    out = tmp_path / "cube.nc"
    out.write_bytes(b"previous result")
    _fail_on_second_write(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run(load_spec(small_spec), out, budget=2_000)
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.nc", "spec.toml"]


def test_bad_output_paths(small_spec, tmp_path):
    req = load_spec(small_spec)
    with pytest.raises(ResourceError, match="does not exist"):
        run(req, tmp_path / "missing" / "cube.nc")
    with pytest.raises(ResourceError, match="is a folder"):
        run(req, tmp_path)


def test_a_cube_too_big_for_host_memory_is_refused(write_spec, monkeypatch):
    from engine.sinks import memory

    monkeypatch.setattr(memory, "available_host_memory", lambda: 1 << 20)  # a 1 MiB machine
    path = write_spec("""
        [sweep]
        formula_set = "seed"
        [fixed]
        vocab = 50000
        [axes]
        d_model = { start = 64, stop = 4096, step = 64 }
        n_layers = { start = 1, stop = 64 }
        batch = { start = 1, stop = 16 }
        seq_len = [1024]
    """)
    with pytest.raises(ResourceError, match="needs .* of host memory"):
        run(load_spec(path))
