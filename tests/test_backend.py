"""The virtual cube: ``xr.open_dataset(SPEC, engine="llm-sweep")`` (engine/backend.py).

It must equal the written cube exactly on any slab (values, dtypes, dims, fills), stay lazy until read
(opening a 10^12-point spec evaluates nothing and takes well under a second), evaluate a 2-D slice of
it quickly, reduce chunk by chunk with ``chunks=``, refuse reads that do not fit host memory, and turn
bad input away in one line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
import time
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import backend
from engine.backend import LlmSweepBackend, open_cube, outline, padded_length
from engine.errors import ResourceError, SpecError
from engine.request.spec import load_spec
from engine.runtime import sweep
from engine.runtime.compile import Kernel
from engine.runtime.dims import natural_dims
from engine.runtime.sweep import run

SEED = """
[sweep]
formula_set = "seed"
quantities = ["params_output", "params_total", "mem_input", "hidden_elements", "mem_peak", "perf_relative"]

[options]
tied_head = true  # params_output has no swept input: a 0-d variable

[fixed]
vocab = 50000

[axes]
d_model = [512, 768, 1024, 1536, 2048]
n_layers = [2, 6, 12]
batch = [1, 4, 16]
seq_len = [128, 512]
"""

# an architecture: n_kv_heads 3 and 5 do not divide 32 heads, so those points are masked (valid = 0)
LLAMA = """
[sweep]
arch = "llama-2-7b"
quantities = ["params_total", "params_attention", "params_mlp", "params_embedding"]

[axes]
d_model = [2048, 4096, 6144]
n_layers = [16, 32]
n_kv_heads = [1, 3, 4, 5, 8]
"""

# a categorical dim (tied_head), one kernel per combination
CATEGORICAL = """
[sweep]
formula_set = "seed"
quantities = ["params_total", "mem_peak", "perf_relative"]

[fixed]
vocab = 50000
seq_len = 128

[axes]
tied_head = [true, false]
d_model = [512, 768, 1024]
n_layers = [2, 4]
batch = [1, 4]
"""

# 1000 values per axis: 10^12 grid points
HUGE = """
[sweep]
formula_set = "seed"

[options]
tied_head = true

[fixed]
vocab = 50000

[axes]
d_model = { start = 64, stop = 64000, step = 64 }
n_layers = { start = 1, stop = 1000 }
batch = { start = 1, stop = 1000 }
seq_len = { start = 16, stop = 16000, step = 16 }
"""


def _write(folder, name: str, text: str):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _cubes(folder, name: str, text: str):
    """(spec path, the netCDF cube ``llm-sweep run SPEC -o`` writes: ``run_to_netcdf``) of a spec."""
    spec = _write(folder, f"{name}.toml", text)
    out = folder / f"{name}.nc"
    run(load_spec(spec), out)
    return spec, out


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backend")
    return {name: _cubes(folder, name, text) for name, text in (("seed", SEED), ("llama", LLAMA),
                                                                 ("categorical", CATEGORICAL))}


def _assert_same(virtual: xr.Dataset, written: xr.Dataset) -> None:
    """Every variable of the virtual cube equals the written one: dims, dtype, values (NaN where masked)."""
    assert list(virtual.data_vars) == list(written.data_vars)
    for name, var in virtual.data_vars.items():
        expected = written[name]
        assert var.dims == expected.dims, name
        got = var.values
        assert var.dtype == got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected.values, err_msg=name)
    for name in virtual.coords:
        np.testing.assert_array_equal(virtual[name].values, written[name].values)


def _slab(sizes: dict):
    """A random slab: per dim nothing, an integer, a slice or a list of indices (unsorted, repeats allowed)."""
    def one(n):
        return st.one_of(st.none(), st.integers(0, n - 1),
                         st.builds(slice, st.integers(0, n - 1), st.integers(1, n), st.integers(1, 2)),
                         st.lists(st.integers(0, n - 1), min_size=1, max_size=4))
    return st.fixed_dictionaries({d: one(n) for d, n in sizes.items()}).map(
        lambda picked: {d: k for d, k in picked.items() if k is not None})


# -- equality with the written cube ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["seed", "llama", "categorical"])
def test_whole_cube_equals_written_cube(specs, name):
    spec, out = specs[name]
    virtual, written = open_cube(spec), xr.open_dataset(out)
    assert {v: virtual[v].dims for v in virtual.data_vars} == natural_dims(load_spec(spec))
    _assert_same(virtual, written)
    raw, raw_written = open_cube(spec, mask_and_scale=False), xr.open_dataset(out, mask_and_scale=False)
    _assert_same(raw, raw_written)
    for var in virtual.data_vars:
        for key in ("units", "long_name", "formula", "formula_expanded", "source"):
            assert virtual[var].attrs.get(key) == written[var].attrs.get(key), (var, key)
        v, w = virtual[var].encoding, written[var].encoding
        assert ("_FillValue" in v) == ("_FillValue" in w) and v.get("dtype") == w.get("dtype"), var
    for key in ("formula_set", "arch", "options", "fixed", "numerics", "spec", "request"):
        assert virtual.attrs[key] == written.attrs[key], key
    assert "virtual_cube" in virtual.attrs


@pytest.mark.parametrize("name", ["seed", "llama"])
def test_random_slabs_equal_written_cube(specs, name):
    spec, out = specs[name]
    virtual, written = open_cube(spec), xr.open_dataset(out)

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(_slab(dict(virtual.sizes)))
    def check(slab):
        _assert_same(virtual.isel(slab), written.isel(slab))

    check()


def test_categorical_slab_and_sel(specs):
    spec, out = specs["categorical"]
    virtual, written = open_cube(spec), xr.open_dataset(out)
    assert virtual.tied_head.dtype == bool
    picked = dict(tied_head=False, d_model=[1024, 512])
    _assert_same(virtual.sel(picked), written.sel(picked))


# -- laziness, dask, reductions -------------------------------------------------------------------------


def test_chunks_give_dask_arrays_whose_reductions_equal_in_memory(specs):
    import dask.array as da

    spec, out = specs["llama"]
    lazy, memory = open_cube(spec, chunks={"d_model": 2}), open_cube(spec).load()
    assert isinstance(lazy.params_total.data, da.Array) and lazy.params_total.data.numblocks[0] == 2
    for name in ("params_total", "params_mlp", "valid"):
        for reduce in ("max", "min", "sum"):
            xr.testing.assert_equal(getattr(lazy[name], reduce)().compute(), getattr(memory[name], reduce)())
    # where/max skip invalid points, chunk by chunk and in memory alike
    best = lazy.params_total.where(lazy.valid == 1).max("n_kv_heads").compute()
    xr.testing.assert_equal(best, memory.params_total.where(memory.valid == 1).max("n_kv_heads"))
    written = xr.open_dataset(out)
    assert float(lazy.params_attention.where(lazy.n_kv_heads >= 4).max()) == float(
        written.params_attention.where(written.n_kv_heads >= 4).max())


def test_huge_spec_opens_lazily_and_slices_fast(tmp_path, monkeypatch):
    spec = _write(tmp_path, "huge.toml", HUGE)
    monkeypatch.setattr(sweep, "_KERNELS", {})  # timed from scratch: spec, kernel, attrs (imports done)
    dispatched = []
    real = Kernel.dispatch
    monkeypatch.setattr(Kernel, "dispatch", lambda self, *a, **k: dispatched.append(1) or real(self, *a, **k))
    t0 = time.perf_counter()
    ds = open_cube(spec)
    opened = time.perf_counter() - t0
    assert ds.sizes == {"d_model": 1000, "n_layers": 1000, "batch": 1000, "seq_len": 1000}
    assert opened < 1.0 and not dispatched
    ds.mem_peak.isel(batch=3, seq_len=7).values  # compile this slab shape once
    t0 = time.perf_counter()
    plane = ds.mem_peak.isel(batch=4, seq_len=8)
    values = plane.values
    sliced = time.perf_counter() - t0
    assert values.shape == (1000, 1000) and values.dtype == np.int64 and sliced < 0.5
    # a few of its points equal a run over them
    few = dict(d_model=ds.d_model.values[::333], n_layers=ds.n_layers.values[::333], batch=np.array([5]),
               seq_len=np.array([144]))
    small = run(replace(load_spec(spec), axes=few))
    np.testing.assert_array_equal(values[::333, ::333], small.dataset.mem_peak.values[:, :, 0, 0])
    with pytest.raises(ResourceError, match=r"reading mem_peak over .* needs 7\.3 TiB"):
        ds.mem_peak.values


# -- small parts ----------------------------------------------------------------------------------------


def test_registered_and_guesses_specs(tmp_path):
    assert isinstance(xr.backends.list_engines()["llm-sweep"], LlmSweepBackend)
    entry = LlmSweepBackend()
    assert entry.guess_can_open("sweeps/seed.toml")
    assert not entry.guess_can_open("pyproject.toml") and not entry.guess_can_open(tmp_path / "cube.nc")
    assert entry.description
    assert xr.open_dataset("sweeps/llama-gqa.toml").attrs["virtual_cube"]  # a spec needs no engine=


def test_bad_input_is_one_clear_line(tmp_path):
    with pytest.raises(SpecError, match="missing.toml: no such file"):
        xr.open_dataset(tmp_path / "missing.toml", engine="llm-sweep")
    cube = tmp_path / "cube.nc"
    cube.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(SpecError, match="not a sweep spec"):
        xr.open_dataset(cube, engine="llm-sweep")
    with pytest.raises(SpecError, match="unknown table"):
        xr.open_dataset(_write(tmp_path, "other.toml", "[tool]\nx = 1\n"), engine="llm-sweep")


def test_query_is_ignored_and_said(tmp_path):
    ds = open_cube("sweeps/moe-2025.toml")
    assert ds.sizes == {"kv_lora_rank": 4, "n_experts": 4, "top_k": 5}
    assert "is not applied" in ds.attrs["query_ignored"] and "params_active" in ds.data_vars


def test_outline_lists_dims_and_variables(specs):
    text = outline(specs["llama"][0])
    assert "d_model=3 x n_layers=2 x n_kv_heads=5" in text and "30, none evaluated" in text
    assert "params_mlp" in text and "(d_model, n_layers)" in text and "int64" in text


def test_padded_lengths():
    assert [padded_length(n) for n in (1, 8, 9, 17, 1000, 1024, 1025)] == [1, 8, 9, 18, 1024, 1024, 1152]
    assert all(n <= padded_length(n) <= n * 1.125 for n in range(1, 5000))
    assert backend.outer_indices((2, slice(1, None), np.array([-1, 0])), (4, 3, 5))[1] == (0, slice(None),
                                                                                          slice(None))


def test_the_open_command_summarises_a_virtual_cube(run_cli):
    root = Path(__file__).resolve().parents[1]
    r = run_cli("open", root / "examples" / "design-space.toml")
    assert r.returncode == 0 and "10,240,000,000, none evaluated" in r.stdout
    assert "mem_peak         (d_model, n_layers, batch, seq_len)" in r.stdout
    assert "params_total     (d_model, n_layers) " in r.stdout
    r = run_cli("open", root / "missing.toml")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
