"""The CF rules every written cube relies on, fill values at invalid points, and precision notes.

No compliance-checker needed: benchmarks/cf_check.py runs the full IOOS checker; these tests
check the rules it found or that we promise (numeric flag_values, typed _FillValue, monotonic
coordinates, UDUNITS units, long_name), and what a reader sees at invalid points.
"""

from __future__ import annotations

import re

import netCDF4
import numpy as np
import pytest
import xarray as xr

from engine.sinks.dataset import combine, write_netcdf
from engine.errors import PrecisionError
from engine.request.numerics import INT64_FILL
from engine.request.query import make_query
from engine.request.spec import parse_spec
from engine.runtime.sweep import process_share, run
from engine.sinks import QuerySink

# units we write, each checked to parse in UDUNITS-2 (cf_units.Unit): "bytes" is UDUNITS's plural
# of "byte" (8 bit), "1" is dimensionless, "s" is seconds
UDUNITS_VALID = {"1", "bytes", "s"}

SEED = {"sweep": {"formula_set": "seed", "quantities": ["params_total", "mem_peak", "perf_relative"]},
        "fixed": {"vocab": 50000},
        "axes": {"d_model": [512, 768], "n_layers": [6, 12], "batch": [1, 8], "seq_len": [256, 1024]}}
# n_kv_heads 3 does not divide 32 heads, d_model 4000 is not a multiple of 32: invalid points
ARCH = {"sweep": {"arch": "llama-2-7b"},
        "axes": {"d_model": [2048, 4000, 4096], "n_layers": [16, 32], "n_kv_heads": [1, 3, 8, 32]}}
MEMORY = {"sweep": {"arch": "meta-llama-3-8b", "quantities": ["mem_peak", "mem_kv_cache", "mem_weights"]},
          "options": {"mode": "inference", "precision": "bf16"},
          "axes": {"batch": [1, 4, 16], "seq_len": [512, 4096, 32768]}}


def _query(req, where, objective="params_total", over=("d_model", "n_layers")):
    return make_query([where], objective, None, list(over), req.quantities, list(req.axes))


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    """One file of each kind the tool writes: seed, arch, memory, query, combined parts."""
    folder = tmp_path_factory.mktemp("cubes")
    out = {}
    for kind, spec in (("seed", SEED), ("arch", ARCH), ("memory", MEMORY)):
        out[kind] = run(parse_spec(spec), folder / f"{kind}.nc").path
    req = parse_spec(ARCH)
    out["query"] = write_netcdf(run(req, QuerySink(_query(req, "params_total <= 6e9"))).dataset, folder / "query.nc")
    parts = [run(process_share(req, i, 2), folder / f"part{i}.nc").path for i in range(2)]
    out["combined"] = combine(parts, folder / "combined.nc")
    return out


KINDS = ["seed", "arch", "memory", "query", "combined"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_cube_keeps_the_cf_rules_it_declares(cubes, kind):
    with netCDF4.Dataset(cubes[kind]) as nc:
        nc.set_auto_maskandscale(False)
        assert nc.getncattr("Conventions") == "CF-1.11"
        for name, var in nc.variables.items():
            attrs = {k: var.getncattr(k) for k in var.ncattrs()}
            assert attrs.get("units") in UDUNITS_VALID, (name, attrs.get("units"))
            assert isinstance(attrs.get("long_name"), str) and attrs["long_name"], name
            assert "standard_name" not in attrs, name  # none of ours is in the CF standard name table
            if "_FillValue" in attrs:
                assert np.asarray(attrs["_FillValue"]).dtype == var.dtype, name
            if "flag_values" in attrs:
                flags = np.asarray(attrs["flag_values"])
                assert flags.dtype == var.dtype and flags.tolist() == [0, 1], name
                assert len(attrs["flag_meanings"].split()) == flags.size
            for k, v in attrs.items():  # strings or numbers only: no bools, no objects
                assert isinstance(v, str) or np.asarray(v).dtype.kind in "iuf", (name, k, type(v))
            if name in nc.dimensions:  # a coordinate variable: strictly monotonic, no fill
                assert np.all(np.diff(var[:]) > 0), name
                assert "_FillValue" not in attrs
        for k in nc.ncattrs():
            v = nc.getncattr(k)
            assert isinstance(v, str) or np.asarray(v).dtype.kind in "iuf", (k, type(v))


# string labels (recompute), integers out of order (zero): both coded; split along recompute for combine
CATEGORICAL = {"sweep": {"arch": "gpt2", "gpu": "h100", "quantities": ["step_time", "mem_peak"]},
               "options": {"memory_model": "korthikanti", "precision": "bf16", "attention": "flash"},
               "fixed": {"n_gpus": 8, "seq_len": 1024, "global_batch": 16},
               "axes": {"recompute": ["none", "full"], "tp": [1, 2], "zero": [3, 1, 2], "pp": [1, 2],
                        "dp": [1, 2, 4, 8], "batch": [1, 2]}}
CF_WORD = re.compile(r"[A-Za-z0-9_.+@-]+")  # a flag_meanings word


@pytest.fixture(scope="module")
def categorical_cubes(tmp_path_factory):
    """A categorical cube, a query answer over categorical dims, and the cube combined from two parts."""
    folder = tmp_path_factory.mktemp("categorical")
    req = parse_spec(CATEGORICAL)
    query = make_query(["mem_peak <= 2GiB", "step_time <= 0.004"], None, "step_time", ["recompute", "tp", "pp", "dp"],
                       req.quantities, list(req.axes))
    parts = [run(process_share(req, i, 2), folder / f"part{i}.nc").path for i in range(2)]
    return {"cube": run(req, folder / "cube.nc").path,
            "query": write_netcdf(run(req, QuerySink(query)).dataset, folder / "query.nc"),
            "combined": combine(parts, folder / "combined.nc")}


@pytest.mark.parametrize("kind", ["cube", "query", "combined"])
def test_categorical_cubes_keep_the_cf_rules(categorical_cubes, kind):
    """CF §1.3 and §5: coordinate variables numeric and strictly monotonic; labels in auxiliary coordinates that
    the variables on their dim name; flag_values typed like their variable, one flag_meanings word each."""
    with netCDF4.Dataset(categorical_cubes[kind]) as nc:
        nc.set_auto_maskandscale(False)
        assert nc.getncattr("Conventions") == "CF-1.11"
        for name, var in nc.variables.items():
            attrs = {k: var.getncattr(k) for k in var.ncattrs()}
            if name in nc.dimensions:
                assert var.dtype.kind in "iuf" and "_FillValue" not in attrs, name
                steps = np.diff(var[:])
                assert np.all(steps > 0) or np.all(steps < 0), name
            if "flag_values" in attrs:
                flags = np.asarray(attrs["flag_values"])
                assert flags.dtype == var.dtype and len(attrs["flag_meanings"].split()) == flags.size, name
                assert all(CF_WORD.fullmatch(w) for w in attrs["flag_meanings"].split()), name
                assert "_FillValue" not in attrs or attrs["_FillValue"] not in flags.tolist(), name
            if "labels" in attrs and attrs["labels"] != "flag_meanings":
                label = nc.variables[attrs["labels"]]
                assert label.dimensions == (name,) and (label.dtype is str or label.dtype.kind == "i"), name
            for aux in attrs.get("coordinates", "").split():
                assert set(nc.variables[aux].dimensions) <= set(var.dimensions), (name, aux)
            if any(f"{d}_label" in nc.variables for d in var.dimensions) and name not in nc.dimensions \
                    and not name.endswith("_label"):
                named = attrs.get("coordinates", "").split()
                assert all(f"{d}_label" in named for d in var.dimensions if f"{d}_label" in nc.variables), name
            for k, v in attrs.items():
                assert isinstance(v, str) or np.asarray(v).dtype.kind in "iuf", (name, k, type(v))
        coded = {d for d in ("recompute", "zero") if d in nc.dimensions}  # a query reduces recompute
        assert {d for d in nc.dimensions if f"{d}_label" in nc.variables} == coded
        if kind == "query":
            assert nc.variables["best_recompute"].getncattr("flag_meanings") == "none full"


def test_the_units_we_write_are_udunits():
    cf_units = pytest.importorskip("cf_units")
    for u in UDUNITS_VALID:
        assert not cf_units.Unit(u).is_unknown(), u
    assert cf_units.Unit("bytes") == cf_units.Unit("byte")


def test_valid_flag_values_are_numeric_uint8(cubes):
    ds = run(parse_spec(ARCH)).dataset
    flags = ds["valid"].attrs["flag_values"]
    assert isinstance(flags, np.ndarray) and flags.dtype == np.uint8 and flags.tolist() == [0, 1]
    assert ds["valid"].attrs["flag_meanings"] == "invalid valid"
    with xr.open_dataset(cubes["arch"]) as back:
        assert back["valid"].dtype == np.uint8 and back["valid"].attrs["flag_values"].dtype == np.uint8


def _none_valid(ds, q):
    """Where no grid point over ``q``'s coordinates is valid (``valid`` reduced over the dims ``q`` lacks), on
    ``q``'s dims: with these conditions (one per dim), exactly where ``q`` holds the fill."""
    lacking = [d for d in ds["valid"].dims if d not in ds[q].dims]
    return (ds["valid"].max(lacking) == 0).broadcast_like(ds[q]).transpose(*ds[q].dims).values


def test_invalid_points_hold_nan_in_memory_and_once_read(cubes):
    memory = run(parse_spec(ARCH)).dataset
    invalid = memory["valid"].values == 0
    assert invalid.any() and (~invalid).any()
    with xr.open_dataset(cubes["arch"]) as back:
        for q in memory.data_vars:
            if q == "valid":
                continue
            for ds in (memory, back):
                assert ds[q].dtype == np.float64
                np.testing.assert_array_equal(np.isnan(ds[q].values), _none_valid(ds, q), q)
            np.testing.assert_array_equal(back[q].values, memory[q].values)
            assert back[q].encoding["_FillValue"] == memory[q].encoding["_FillValue"] == INT64_FILL
    # the file holds exact int64 with netCDF's default int64 fill
    with xr.open_dataset(cubes["arch"], mask_and_scale=False) as raw:
        assert raw["params_total"].dtype == np.int64
        assert (raw["params_total"].values[_none_valid(memory, "params_total")] == INT64_FILL).all()
        assert raw["params_total"].sel(d_model=4096, n_layers=32, n_kv_heads=32).item() == 6_738_415_616


def test_where_and_max_skip_invalid_points(cubes):
    memory = run(parse_spec(ARCH)).dataset
    valid = (memory["valid"] == 1).broadcast_like(memory["params_total"]).transpose(*memory["params_total"].dims)
    truth = memory["params_total"].values[valid.values]
    with xr.open_dataset(cubes["arch"]) as back:
        for ds in (memory, back):
            small = ds.params_total.where(ds.params_total <= 6e9)
            assert small.count().item() == int((truth <= 6e9).sum())  # invalid points never picked
            assert small.max().item() == truth[truth <= 6e9].max()
            assert ds.params_total.min().item() == truth.min() > 0
            assert ds.params_total.max().item() == truth.max()


def test_write_netcdf_round_trips_the_in_memory_cube(tmp_path):
    memory = run(parse_spec(ARCH)).dataset
    path = write_netcdf(memory, tmp_path / "mem.nc")
    with xr.open_dataset(path) as back:
        xr.testing.assert_identical(back.drop_attrs(), memory.drop_attrs())
    with netCDF4.Dataset(path) as nc:
        assert nc.variables["params_total"].dtype == np.int64
        assert nc.variables["params_total"].getncattr("_FillValue") == INT64_FILL


def test_a_float_cube_with_a_mask_uses_nan_fill(tmp_path):
    spec = {**MEMORY, "sweep": {**MEMORY["sweep"], "quantities": ["mem_peak"]}, "axes": {"tp": [1, 3], "batch": [1]},
            "fixed": {"seq_len": 4096}}
    req = parse_spec(spec)
    memory = run(req).dataset
    assert memory["valid"].dims == ("tp",) and memory["valid"].values.tolist() == [1, 0]  # 3 does not divide 32 heads
    assert np.isnan(memory["mem_peak"].values[1, 0]) and memory["mem_peak"].values[0, 0] > 0
    path = run(req, tmp_path / "tp.nc").path
    with netCDF4.Dataset(path) as nc:
        fill = nc.variables["mem_peak"].getncattr("_FillValue")
        assert np.asarray(fill).dtype == np.float64 and np.isnan(fill)
    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(back["mem_peak"].values, memory["mem_peak"].values)


def test_query_cells_where_nothing_fits_hold_the_fill(cubes):
    req = parse_spec(ARCH)
    ds = run(req, QuerySink(_query(req, "params_total <= 6e9"))).dataset
    none = ds["n_feasible"].values == 0
    assert ds["n_feasible"].dtype == np.int64 and none.any() and (~none).any()  # n_kv_heads=3 never valid
    with xr.open_dataset(cubes["query"]) as back:
        assert back["n_feasible"].dtype == np.int64 and "_FillValue" not in back["n_feasible"].encoding
        for name in ("params_total", "best_d_model", "best_n_layers"):
            for d in (ds, back):
                assert np.isnan(d[name].values[none]).all() and not np.isnan(d[name].values[~none]).any()
            np.testing.assert_array_equal(back[name].values, ds[name].values)


def test_summary_says_no_valid_grid_point_in_words(tmp_path):
    req = parse_spec({"sweep": {"arch": "llama-2-7b"}, "axes": {"n_kv_heads": [3, 5]}})
    for result in (run(req), run(req, tmp_path / "none.nc")):
        text = result.report()
        assert "no valid grid point" in text and not re.search(r"\b(min|max) ", text)
    with xr.open_dataset(tmp_path / "none.nc") as back:
        assert back["params_total"].isnull().all()


def test_summary_of_a_query_nothing_satisfies(tmp_path):
    req = parse_spec(ARCH)
    result = run(req, QuerySink(_query(req, "params_total <= 1000")))
    text = result.report()
    assert "no grid point satisfies params_total <= 1000" in text
    assert text.splitlines()[-1] == "  query     max of params_total over d_model, n_layers subject to params_total <= 1000"
    values = "\n".join(text.splitlines()[:-1])  # the report's lines above the query's description
    assert not re.search(r"\b(min|max) ", values)  # no min/max of fill values or of zero counts
    partial = run(req, QuerySink(_query(req, "params_total <= 6e9"))).report()
    assert "nothing fits in 1 of 4 cells" in partial
    line = next(x for x in partial.splitlines() if x.strip().startswith("params_total"))
    assert "nan" not in line.lower() and "min 3,500,281,856 at n_kv_heads=32" in line


# -- precision honesty ------------------------------------------------------------------------------


def test_int64_quantities_note_2_53_and_refuse_2_63(tmp_path):
    spec = {**SEED, "sweep": {**SEED["sweep"], "quantities": ["params_total"]},
            "axes": {"d_model": [2**25], "n_layers": [2**5, 2**8]}}
    req = parse_spec(spec)
    ds = run(req).dataset
    assert ds["params_total"].dtype == np.int64 and ds["params_total"].max().item() >= 2**53
    assert "2^53" in ds["params_total"].attrs["precision_note"]
    run(req, tmp_path / "big.nc")
    with xr.open_dataset(tmp_path / "big.nc") as back:
        assert "2^53" in back["params_total"].attrs["precision_note"]
    too_big = parse_spec({**spec, "axes": {"d_model": [2**30], "n_layers": [2**8]}})
    with pytest.raises(PrecisionError, match="params_total.*2\\*\\*63.*shrink the axes"):
        run(too_big)


def test_float64_byte_counts_note_2_53_and_refuse_2_63(tmp_path):
    spec = {**MEMORY, "axes": {"batch": [1, 2**20], "seq_len": [1024, 2**20]}}
    req = parse_spec(spec)
    ds = run(req).dataset
    assert ds["mem_peak"].dtype == np.float64 and ds["mem_peak"].max().item() >= 2**53
    assert "float64" in ds["mem_peak"].attrs["precision_note"]
    assert "precision_note" not in ds["mem_weights"].attrs  # 16 GB: exact
    run(req, tmp_path / "mem.nc")
    with xr.open_dataset(tmp_path / "mem.nc") as back:
        assert back["mem_peak"].attrs["precision_note"] == ds["mem_peak"].attrs["precision_note"]
    huge = parse_spec({**spec, "axes": {"batch": [1, 2**34], "seq_len": [1024, 2**20]}})
    with pytest.raises(PrecisionError, match="mem_peak.*2\\*\\*63.*shrink the axes"):
        run(huge)
    with pytest.raises(PrecisionError, match="mem_peak"):
        run(huge, tmp_path / "huge.nc")
    assert not (tmp_path / "huge.nc").exists()


def test_real_valued_quantities_past_2_63_get_the_note_only():
    # FLOPs are legitimately huge (1e25 for a large training run): noted, never refused
    spec = {"sweep": {"arch": "meta-llama-3-8b", "quantities": ["flops_step"]},
            "options": {"mode": "training"}, "axes": {"batch": [1, 2**34], "seq_len": [2**20]}}
    ds = run(parse_spec(spec)).dataset
    assert ds["flops_step"].max().item() >= 2**63
    assert "2^53" in ds["flops_step"].attrs["precision_note"]


def test_fast_mode_notes_values_past_2_24(tmp_path):
    spec = {**MEMORY, "sweep": {**MEMORY["sweep"], "numerics": "fast"}}
    req = parse_spec(spec)
    ds = run(req).dataset
    assert ds["mem_peak"].dtype == np.float32 and "2^24" in ds["mem_peak"].attrs["precision_note"]
    small = parse_spec({**SEED, "sweep": {**SEED["sweep"], "numerics": "fast", "quantities": ["perf_relative"]}})
    assert "precision_note" not in run(small).dataset["perf_relative"].attrs
    run(req, tmp_path / "fast.nc")
    with xr.open_dataset(tmp_path / "fast.nc") as back:
        assert "2^24" in back["mem_peak"].attrs["precision_note"]


def test_combined_parts_keep_a_note_only_one_part_has(tmp_path):
    spec = {**SEED, "sweep": {**SEED["sweep"], "quantities": ["params_total"]},
            "axes": {"d_model": [2**10, 2**25], "n_layers": [2**5, 2**8]}}
    req = parse_spec(spec)
    parts = [run(process_share(req, i, 2), tmp_path / f"p{i}.nc").path for i in range(2)]
    with netCDF4.Dataset(parts[0]) as nc:
        assert "precision_note" not in nc.variables["params_total"].ncattrs()
    combine(parts, tmp_path / "all.nc")
    with xr.open_dataset(tmp_path / "all.nc") as back:
        assert "2^53" in back["params_total"].attrs["precision_note"]
