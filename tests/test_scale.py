"""Accelerator-scale runs on the CPU: chunk plans, streaming, queries, sharding, pre-flight, progress."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from engine.errors import ResourceError, SpecError
from engine.runtime.plan import parse_bytes, plan_chunks
from engine.request.query import make_query
from engine.request.spec import parse_spec
from engine.runtime.sweep import Progress, run
from engine.sinks import QuerySink

REPO = Path(__file__).resolve().parents[1]

GRID = {
    "sweep": {"formula_set": "seed", "quantities": ["params_total", "mem_peak", "mem_steady", "perf_relative"]},
    "fixed": {"vocab": 50000},
    "axes": {"d_model": list(range(256, 4097, 256)), "n_layers": list(range(2, 49, 2)),
             "batch": [1, 2, 4, 8, 16], "seq_len": [512, 1024, 2048, 4096, 8192, 16384, 32768]},
}


def test_parse_bytes():
    assert parse_bytes("80GiB") == 80 * 2**30 and parse_bytes("512 MB") == 512 * 10**6
    assert parse_bytes("1e9") == 10**9 and parse_bytes(4096) == 4096
    with pytest.raises(ValueError, match="units: b, kb"):
        parse_bytes("80 parsecs")
    with pytest.raises(ValueError, match="positive"):
        parse_bytes("0")


@pytest.mark.parametrize("shape,bpp,budget,devices", [
    ((16, 24, 5, 7), 32, 10_000, 1), ((16, 24, 5, 7), 32, 10_000, 4), ((16, 24, 5, 7), 32, 10**9, 1),
    ((3, 5, 7), 8, 100, 4), ((1000,), 8, 1600, 3), ((2, 3), 8, 1, 1),
])
def test_chunk_plans_cover_the_grid_once_within_budget(shape, bpp, budget, devices):
    plan = plan_chunks(shape, bpp, budget, devices)
    seen = np.zeros(shape, dtype=int)
    for outer, lo, hi in plan.chunks():
        seen[tuple(outer) + (slice(lo, hi),)] += 1
    assert np.all(seen == 1)
    assert plan.block % devices == 0  # shards evenly
    assert plan.block % plan.file_chunk[plan.split_axis] == 0  # covers whole file chunks
    inner = int(np.prod(shape[plan.split_axis + 1:]))
    if inner * bpp <= budget // 2:  # the budget is per device; one unit of whole file chunks at least
        unit = np.lcm(plan.file_chunk[plan.split_axis], devices)
        assert plan.chunk_points * bpp <= max(budget // 2 * devices, unit * inner * bpp)
    if plan.split_axis > 0:  # a deeper split only when a block of the trailing axes does not fit
        assert int(np.prod(shape[plan.split_axis:])) * bpp > budget // 2 or plan.split_axis == len(shape) - 1


@pytest.mark.parametrize("budget", [None, 50_000, 3_000, 500])
def test_streamed_file_equals_in_memory(tmp_path, budget):
    req = parse_spec(GRID)
    memory = run(req).dataset
    result = run(req, tmp_path / "cube.nc", budget=budget)
    if budget is not None and budget <= 3_000:
        assert result.plan.n_chunks > 10 and result.plan.split_axis >= 1
    with xr.open_dataset(tmp_path / "cube.nc") as back:
        xr.testing.assert_identical(back.drop_attrs(), memory.drop_attrs())
        assert back["mem_peak"].encoding["chunksizes"] == result.plan.file_chunk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.nc"]


def _reference(ds, where, objective, mode, over):
    mask = xr.ones_like(ds[objective], dtype=bool)
    for quantity, limit in where:
        mask = mask & (ds[quantity] <= limit)
    count = mask.sum(over)
    values = ds[objective].where(mask)
    best = values.max(over) if mode == "max" else values.min(over)
    return count, best


@pytest.mark.parametrize("over", [["d_model", "n_layers"], ["batch", "seq_len"], ["d_model"], ["n_layers", "seq_len"]])
@pytest.mark.parametrize("budget", [None, 3_000])
@pytest.mark.parametrize("mode", ["max", "min"])
def test_query_equals_numpy_reference(over, budget, mode):
    req = parse_spec(GRID)
    full = run(req).dataset
    limit = 40 * 2**30
    query = make_query([f"mem_peak <= {limit}"], *(("params_total", None) if mode == "max" else (None, "params_total")),
                       over, req.quantities, list(req.axes))
    ds = run(req, QuerySink(query), budget=budget).dataset
    count, best = _reference(full, [("mem_peak", limit)], "params_total", mode, over)
    np.testing.assert_array_equal(ds["n_feasible"].values, count.transpose(*ds["n_feasible"].dims).values)
    feasible = ds["n_feasible"].values > 0
    assert feasible.any()
    if over == ["d_model", "n_layers"]:
        assert (~feasible).any()  # cells where nothing fits are exercised too
    want = best.transpose(*ds["params_total"].dims).values
    np.testing.assert_array_equal(ds["params_total"].values[feasible], want[feasible].astype(np.int64))
    assert np.all(np.isnan(ds["params_total"].values[~feasible]))  # the fill value where nothing fits
    # the reported coordinates reach the reported best and satisfy the constraint
    for idx in zip(*np.nonzero(feasible)):
        keep = {d: ds[d].values[i] for d, i in zip(ds["n_feasible"].dims, idx)}
        at = {d: ds[f"best_{d}"].values[idx] for d in over}
        point = full.sel({**keep, **at})
        assert point["params_total"].item() == ds["params_total"].values[idx]
        assert point["mem_peak"].item() <= limit


def test_constraint_only_query_counts_points():
    req = parse_spec(GRID)
    full = run(req).dataset
    query = make_query(["mem_peak <= 20GiB", "params_total >= 1e9"], None, None, ["d_model"], req.quantities,
                       list(req.axes))
    ds = run(req, QuerySink(query), budget=3_000).dataset
    want = ((full.mem_peak <= 20 * 2**30) & (full.params_total >= 1e9)).sum("d_model")
    np.testing.assert_array_equal(ds["n_feasible"].values, want.values)
    assert list(ds.data_vars) == ["n_feasible"]


@pytest.mark.parametrize("kwargs,message", [
    (dict(where=["mem_peak <= 80 parsecs"], over=["d_model"]), "cannot read"),
    (dict(where=["mem_peek <= 80GiB"], over=["d_model"]), "unknown quantity 'mem_peek'"),
    (dict(where=["mem_peak 80GiB"], over=["d_model"]), "QUANTITY OP VALUE"),
    (dict(maximize="flops", over=["d_model"]), "not a requested quantity"),
    (dict(maximize="params_total"), "at least one dim"),
    (dict(maximize="params_total", over=["width"]), "not a swept axis"),
    (dict(maximize="params_total", minimize="mem_peak", over=["d_model"]), "not both"),
    (dict(over=["d_model"]), "needs a constraint"),
])
def test_bad_queries(kwargs, message):
    req = parse_spec(GRID)
    with pytest.raises(ValueError, match=message):
        make_query(kwargs.get("where", []), kwargs.get("maximize"), kwargs.get("minimize"), kwargs.get("over", []),
                   req.quantities, list(req.axes))


def test_query_in_a_spec_and_its_errors():
    spec = {**GRID, "query": {"where": "mem_peak <= 80GiB", "maximize": "params_total", "over": ["d_model"]}}
    req = parse_spec(spec)
    assert req.query.objective == "params_total" and req.query.over == ("d_model",)
    for table, key in [({"colour": 1}, "query.colour"), ({"where": 3, "over": ["d_model"]}, "query.where"),
                       ({"maximize": "params_total", "over": ["nope"]}, "query.over")]:
        with pytest.raises(SpecError) as info:
            parse_spec({**GRID, "query": table}, source="q.toml")
        assert info.value.key == key


def test_preflight_refuses_an_uncompressed_cube_larger_than_the_disk(tmp_path, monkeypatch):
    import shutil as sh

    usage = sh.disk_usage(tmp_path)
    monkeypatch.setattr("shutil.disk_usage", lambda p: usage._replace(free=1000))
    req = parse_spec({**GRID, "sweep": {**GRID["sweep"], "compression": 0}})
    with pytest.raises(ResourceError, match="free"):
        run(req, tmp_path / "cube.nc")
    assert list(tmp_path.iterdir()) == []


def test_a_compressed_run_stops_when_the_disk_fills(tmp_path, monkeypatch):
    import shutil as sh

    usage = sh.disk_usage(tmp_path)
    monkeypatch.setattr("shutil.disk_usage", lambda p: usage._replace(free=10))
    with pytest.raises(ResourceError, match="projected"):
        run(parse_spec(GRID), tmp_path / "cube.nc", budget=3_000)
    assert list(tmp_path.iterdir()) == []


def test_compressed_chunks_reach_the_file_as_they_are_written(tmp_path, monkeypatch):
    """The disk projection reads the file's size after each chunk: chunks must be compressed and written as they
    come, not held in HDF5's chunk cache until the file closes (netCDF-C reads a cache size of 0 as the default)."""
    from engine.sinks.dataset import StreamWriter

    real, sizes = StreamWriter.write, []

    def write(self, index, values):
        real(self, index, values)
        sizes.append(os.path.getsize(self.tmp))

    monkeypatch.setattr(StreamWriter, "write", write)
    result = run(parse_spec(GRID), tmp_path / "cube.nc", budget=3_000)
    assert result.plan.n_chunks >= 4 and len(sizes) == result.plan.n_chunks
    final = os.path.getsize(tmp_path / "cube.nc")  # HDF5 packs small chunks into 2 KiB blocks: it grows in steps
    assert sizes[len(sizes) // 2] < sizes[-1] and sizes[-1] > 0.9 * final, (sizes, final)


def test_progress_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(1000, True, stream)
        p.update(400)
        p.last -= 1
        p.update(600)
    assert "100.0%" in tty.getvalue() and "1,000/1,000 points" in tty.getvalue() and "ETA" in tty.getvalue()
    assert pipe.getvalue() == ""
    quiet = Tty()
    Progress(10, False, quiet).update(10)
    assert quiet.getvalue() == ""


SHARDED = r"""
import json, sys, numpy as np, jax
import engine
from tests.test_scale import GRID
req = engine.parse_spec(GRID)
assert len(jax.local_devices()) == 4, jax.local_devices()
res = engine.run(req, sys.argv[1], budget=6_000)
q = engine.make_query(["mem_peak <= 40GiB"], "params_total", None, ["d_model", "n_layers"], req.quantities,
                      list(req.axes))
out = engine.run(req, engine.sink_for(None, query=q), budget=6_000).dataset
out.to_netcdf(sys.argv[2])
print(json.dumps({"devices": len(jax.local_devices()), "block": res.plan.block, "chunks": res.plan.n_chunks}))
"""


def test_sharded_over_four_devices_equals_one_device(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", SHARDED, str(tmp_path / "cube.nc"), str(tmp_path / "q.nc")],
                       capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["devices"] == 4 and info["block"] % 4 == 0 and info["chunks"] > 1
    req = parse_spec(GRID)
    with xr.open_dataset(tmp_path / "cube.nc") as sharded:
        xr.testing.assert_identical(sharded.drop_attrs(), run(req).dataset.drop_attrs())
    q = make_query(["mem_peak <= 40GiB"], "params_total", None, ["d_model", "n_layers"], req.quantities,
                   list(req.axes))
    with xr.open_dataset(tmp_path / "q.nc") as sharded_q:
        xr.testing.assert_identical(sharded_q.drop_attrs(), run(req, QuerySink(q)).dataset.drop_attrs())


def test_parts_of_a_multi_process_run_combine_to_the_whole(tmp_path):
    from engine.sinks.dataset import combine
    from engine.runtime.sweep import process_share, run
    from engine.sinks.netcdf import part_path

    req = parse_spec(GRID)
    whole = run(req).dataset
    parts = []
    for i in range(3):
        share = process_share(req, i, 3)
        parts.append(run(share, part_path(tmp_path / "cube.nc", i, 3), budget=3_000).path)
    assert [p.name for p in parts] == [f"cube.part00{i}-of-003.nc" for i in range(3)]
    out = combine(list(reversed(parts)), tmp_path / "cube.nc")
    with xr.open_dataset(out) as back:
        xr.testing.assert_identical(back.drop_attrs(), whole.drop_attrs())
        assert back.attrs["history"].endswith("combined from 3 parts")
    assert process_share(req, 20, 40) is None  # more processes than d_model values: some idle
    with pytest.raises(ValueError, match="overlap"):
        combine([parts[0], parts[0]], tmp_path / "bad.nc")
    assert not (tmp_path / "bad.nc").exists()


def test_cli_parts_and_combine(run_cli, tmp_path, small_spec):
    cli = run_cli
    for i in range(2):
        r = cli("run", small_spec, "-o", tmp_path / "c.nc", "--part", f"{i}/2", "--quiet")
        assert r.returncode == 0, r.stderr
    r = cli("combine", tmp_path / "c.part001-of-002.nc", tmp_path / "c.part000-of-002.nc", "-o", tmp_path / "c.nc")
    assert r.returncode == 0, r.stderr
    with xr.open_dataset(tmp_path / "c.nc") as ds:
        assert ds.sizes["d_model"] == 3
        assert ds.sel(d_model=768, n_layers=12, batch=1, seq_len=256)["params_total"].item() == 123_417_600
    r = cli("run", small_spec, "--part", "2/2")
    assert r.returncode == 2 and "0 <= I < N" in r.stderr
    r = cli("combine", tmp_path / "nope.nc", "-o", tmp_path / "x.nc")
    assert r.returncode == 2 and "no such part file" in r.stderr


def test_combine_orders_parts_by_index_and_finds_missing_parts(tmp_path):
    # axes are strictly increasing (a descending list is refused by the spec, issue 8); parts are
    # ordered by the part_index they carry, not by the order given
    from engine.sinks.dataset import combine
    from engine.runtime.sweep import process_share, run
    from engine.sinks.netcdf import part_path

    spec = {**GRID, "axes": {**GRID["axes"], "d_model": [256, 512, 1024, 2048, 4096]}}
    req = parse_spec(spec)
    parts = [run(process_share(req, i, 3), part_path(tmp_path / "c.nc", i, 3)).path for i in range(3)]
    out = combine(parts[::-1], tmp_path / "c.nc")
    with xr.open_dataset(out) as back:
        assert back.d_model.values.tolist() == [256, 512, 1024, 2048, 4096]
        xr.testing.assert_identical(back.drop_attrs(), run(req).dataset.drop_attrs())
        assert "part_index" not in back.attrs
    with pytest.raises(ValueError, match=r"missing parts: \[1\]"):
        combine([parts[0], parts[2]], tmp_path / "bad.nc")
    assert not (tmp_path / "bad.nc").exists()
