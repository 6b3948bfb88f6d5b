"""The zarr sink: -o cube.zarr writes a zarr v3 store equal to the netCDF cube; shares of one run write one store."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("zarr")
pytest.importorskip("dask")

SPEC = """
[sweep]
formula_set = "seed"
[options]
tied_head = true
[fixed]
vocab = 50000
[axes]
d_model = { start = 128, stop = 1024, step = 128 }
n_layers = { start = 1, stop = 6 }
batch = [1, 2, 4]
seq_len = [256, 512]
"""

ARCH_SPEC = """
[sweep]
arch = "llama-2-7b"
quantities = ["params_total", "mem_peak", "mem_kv_cache"]
[options]
mode = "inference"
[axes]
n_kv_heads = [1, 3, 4, 8]
batch = [1, 2]
seq_len = [512, 1024]
"""


def _open(path):
    return xr.open_dataset(path, engine="zarr" if str(path).endswith(".zarr") else None)


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for v in b.data_vars:
        x = a[v].broadcast_like(b[v]).transpose(*b[v].dims)
        assert x.dtype == b[v].dtype, v
        assert np.array_equal(x.values, b[v].values, equal_nan=True), v
        assert a[v].attrs.get("formula") == b[v].attrs.get("formula"), v


@pytest.mark.parametrize("text", [SPEC, ARCH_SPEC], ids=["seed", "arch-with-valid"])
def test_a_store_equals_the_netcdf_cube(run_cli, tmp_path, text):
    (tmp_path / "s.toml").write_text(text)
    r = run_cli("run", "s.toml", "-o", "c.zarr", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert run_cli("run", "s.toml", "-o", "c.nc", "--quiet", cwd=tmp_path).returncode == 0
    z, n = _open(tmp_path / "c.zarr"), _open(tmp_path / "c.nc")
    _same(z, n)
    assert (tmp_path / "c.zarr" / "zarr.json").is_file() and not list(tmp_path.glob(".c.zarr*"))
    assert z["params_total"].dims != z["mem_peak"].dims or len(z.sizes) == len(z["mem_peak"].dims)


def test_three_processes_write_one_store_equal_to_one_run(run_cli, tmp_path):
    """--part I/N into a .zarr: every share writes its region of one store; it appears when all are done."""
    (tmp_path / "s.toml").write_text(SPEC)
    assert run_cli("run", "s.toml", "-o", "one.zarr", "--quiet", cwd=tmp_path).returncode == 0
    for i in (2, 0, 1):  # in any order
        r = run_cli("run", "s.toml", "-o", "parts.zarr", "--part", f"{i}/3", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "parts.zarr").exists() == (i == 1)  # nothing at the target before the last share
    assert "every share is done" in r.stdout
    _same(_open(tmp_path / "parts.zarr"), _open(tmp_path / "one.zarr"))
    assert not list(tmp_path.glob("parts.part*")) and not list(tmp_path.glob(".parts.zarr*"))


def test_an_interrupted_run_leaves_no_store(run_cli, tmp_path, monkeypatch):
    from engine.sinks import zarr_store

    (tmp_path / "s.toml").write_text(SPEC)

    def broken(self, index, block):
        raise KeyboardInterrupt

    monkeypatch.setattr(zarr_store.ZarrSink, "_write", broken)
    r = run_cli("run", "s.toml", "-o", "c.zarr", "--quiet", cwd=tmp_path)
    assert r.returncode == 130  # stopped like Ctrl-C
    assert not (tmp_path / "c.zarr").exists() and not list(tmp_path.glob(".c.zarr*"))


def test_a_store_replaces_an_earlier_store(run_cli, tmp_path):
    (tmp_path / "s.toml").write_text(SPEC)
    assert run_cli("run", "s.toml", "-o", "c.zarr", "--quiet", cwd=tmp_path).returncode == 0
    (tmp_path / "s.toml").write_text(SPEC.replace("batch = [1, 2, 4]", "batch = [8]"))
    assert run_cli("run", "s.toml", "-o", "c.zarr", "--quiet", cwd=tmp_path).returncode == 0
    assert _open(tmp_path / "c.zarr").sizes["batch"] == 1


@pytest.mark.parametrize("make", ["file", "folder"])
def test_a_target_that_is_not_a_store_is_one_line_and_untouched(run_cli, tmp_path, make):
    (tmp_path / "s.toml").write_text(SPEC)
    target = tmp_path / "c.zarr"
    if make == "file":
        target.write_text("keep")
    else:
        (target / "data").mkdir(parents=True)
    r = run_cli("run", "s.toml", "-o", "c.zarr", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not a zarr store" in r.stderr
    assert (target.read_text() == "keep") if make == "file" else (target / "data").is_dir()


def test_a_query_answer_and_a_categorical_cube_as_stores(run_cli, tmp_path):
    (tmp_path / "s.toml").write_text(SPEC)
    r = run_cli("run", "s.toml", "-o", "q.zarr", "--where", "mem_peak <= 2GiB", "--maximize", "seq_len",
                "--over", "seq_len", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "n_feasible" in _open(tmp_path / "q.zarr")
    cat = ARCH_SPEC.replace('[axes]\n', '[axes]\nattention = ["eager", "sdpa"]\n').replace(
        'mode = "inference"', 'mode = "training"\nmemory_model = "pytorch"\nprecision = "bf16-mixed"')
    (tmp_path / "c.toml").write_text(cat.replace('"mem_kv_cache"', '"mem_activations"'))
    assert run_cli("run", "c.toml", "-o", "c.zarr", "--quiet", cwd=tmp_path).returncode == 0
    assert run_cli("run", "c.toml", "-o", "c.nc", "--quiet", cwd=tmp_path).returncode == 0
    _same(_open(tmp_path / "c.zarr"), _open(tmp_path / "c.nc"))


def test_no_store_chunk_spans_two_shares(run_cli, tmp_path):
    """Shares of 3, 3 and 2 coordinates of d_model: a chunk along d_model longer than 1 would be written by two
    processes (zarr merges a partial chunk by read-modify-write, and one writer's values would be lost)."""
    import zarr

    (tmp_path / "s.toml").write_text(SPEC)
    for i in (2, 0, 1):  # the share of 2 coordinates builds the store's template
        assert run_cli("run", "s.toml", "-o", "parts.zarr", "--part", f"{i}/3", "--quiet", cwd=tmp_path).returncode == 0
    group = zarr.open_group(str(tmp_path / "parts.zarr"), mode="r")
    starts = (3, 6)
    for name, array in group.arrays():
        dims = array.metadata.dimension_names
        if dims and dims[0] == "d_model" and name != "d_model":  # the coordinate is the template's
            assert all(s % array.chunks[0] == 0 for s in starts), (name, array.chunks)


def test_raw_chunks_written_directly_equal_zarrs_own_writes(tmp_path):
    """The sink writes whole raw chunks as files and the rest (the array's edge, chunks a block cuts) through
    zarr: a store written block by block in uneven blocks reads back equal to the array."""
    import zarr

    from engine.sinks.zarr_store import ZarrSink, _raw_chunks

    group = zarr.open_group(str(tmp_path / "a.zarr"), mode="w", zarr_format=3)
    a = group.create_array("v", shape=(11, 6, 5), chunks=(3, 4, 5), dtype="i8", compressors=None, fill_value=-1)
    z = group.create_array("z", shape=(11, 6, 5), chunks=(3, 4, 5), dtype="i8", fill_value=-1)  # zstd
    assert _raw_chunks(a) and not _raw_chunks(z)
    sink = ZarrSink(tmp_path / "out.zarr")
    sink.staging, sink.arrays, sink.direct, sink._folders = tmp_path / "a.zarr", {"v": a, "z": z}, \
        {"v": True, "z": False}, set()
    want = np.arange(11 * 6 * 5, dtype=np.int64).reshape(11, 6, 5)
    for lo, hi in ((0, 3), (3, 4), (4, 9), (9, 11)):  # whole chunks, cut chunks, the edge
        for name in ("v", "z"):
            sink._put(name, (slice(lo, hi), slice(0, 6), slice(0, 5)), want[lo:hi])
    assert (tmp_path / "a.zarr" / "v" / "c" / "0" / "0" / "0").stat().st_size == 3 * 4 * 5 * 8
    again = zarr.open_group(str(tmp_path / "a.zarr"), mode="r")
    assert np.array_equal(again["v"][...], want) and np.array_equal(again["z"][...], want)
