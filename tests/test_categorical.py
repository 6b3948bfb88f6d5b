"""Categorical dims: structural options and gpu swept as dims of one cube, one kernel per combination.

The cube must equal the plain runs of its combinations exactly, in memory and read back; its kernels
must agree with exact sympy evaluation; a query over categorical dims must equal the brute-force answer
on the host; bad specs are refused in one line naming the key.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import tomllib

import netCDF4
import numpy as np
import pytest
import xarray as xr

from engine.backend import open_cube
from engine.catalog.hardware import device
from engine.errors import SpecError
from engine.request.spec import parse_spec
from engine.runtime.categories import slabs
from engine.request.query import make_query
from engine.runtime.sweep import kernel_for, process_share, run
from engine.sinks import QuerySink
from engine.sinks.dataset import combine, write_netcdf

# 4 combinations (recompute x gpu), the categorical dims between the numeric ones; a boolean dim is in SEED
STEP = """
[sweep]
arch = "gpt2"
quantities = ["step_time", "mem_peak"]
headline = ["step_time", "mem_peak"]

[options]
memory_model = "korthikanti"
precision = "bf16"
attention = "flash"

[fixed]
n_gpus = 8
seq_len = 1024
global_batch = 16

[axes]
tp = [1, 2, 4]
recompute = ["none", "full"]
pp = [1, 2]
dp = [1, 2, 4, 8]
gpu = ["a100", "h100"]
batch = [1, 2]
"""
CATEGORIES = {"recompute": ["none", "full"], "gpu": ["a100-80gb", "h100-sxm"]}
NUMERIC = ("tp", "pp", "dp", "batch")

SEED = """
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

QUERY = dict(where=["mem_peak <= 2GiB", "step_time <= 0.012"], minimize="step_time",  # the a100 cells: none fits
             over=["tp", "recompute", "pp", "dp"])


def _spec(text: str, **tables) -> dict:
    """A spec's tables with some keys changed (None removes a key)."""
    data = tomllib.loads(text)
    for table, values in tables.items():
        for key, value in values.items():
            if value is None:
                data.get(table, {}).pop(key, None)
            else:
                data.setdefault(table, {})[key] = value
    return data


def _plain(text: str, labels: dict) -> dict:
    """The spec of one combination as a plain spec: its labels in [options] (gpu in [sweep])."""
    data = _spec(text)
    for key, value in labels.items():
        del data["axes"][key]
        if key == "gpu":
            data["sweep"]["gpu"] = value
        else:
            data.setdefault("options", {})[key] = value
    return data


@pytest.fixture(scope="module")
def step():
    req = parse_spec(_spec(STEP), text=STEP)
    return req, run(req).dataset


def _combinations():
    return [dict(zip(CATEGORIES, chosen)) for chosen in itertools.product(*CATEGORIES.values())]


def test_the_request_has_categorical_dims_in_the_order_written(step):
    req, cube = step
    assert list(req.axes) == ["tp", "recompute", "pp", "dp", "gpu", "batch"]
    assert req.categories == ("recompute", "gpu")
    assert req.shape == (3, 2, 2, 4, 2, 2) and req.points == 192
    assert req.axes["recompute"].tolist() == ["none", "full"] and req.axes["gpu"].tolist() == CATEGORIES["gpu"]
    assert req.axes["recompute"].dtype.kind == "U" and len(req.variants) == 4
    assert list(cube.dims) == list(req.axes) and cube.attrs["categories"] == "recompute, gpu"
    assert cube["recompute"].attrs["long_name"] == "activation recomputation"


def test_one_cached_kernel_per_combination_compiled_once(step):
    req, cube = step
    kernels = [kernel_for(s.request) for s in slabs(req)]
    assert len({id(k) for k in kernels}) == 4 and all(kernel_for(s.request) is k for s, k in zip(slabs(req), kernels))
    compiled = [dict(k._executables) for k in kernels]
    again = run(req)
    assert [dict(k._executables) for k in kernels] == compiled and again.combinations == 4
    xr.testing.assert_identical(again.dataset.drop_attrs(), cube.drop_attrs())


@pytest.mark.parametrize("labels", _combinations(), ids=lambda c: "-".join(map(str, c.values())))
def test_each_slab_equals_the_plain_run_of_its_combination(step, labels):
    req, cube = step
    plain = run(parse_spec(_plain(STEP, labels))).dataset
    slab = cube.sel(labels).drop_vars(list(labels))
    assert slab["valid"].values.sum() > 0
    for q in ("step_time", "mem_peak", "valid"):
        np.testing.assert_array_equal(slab[q].values, plain[q].values)  # NaN where invalid, in both
    xr.testing.assert_equal(slab, plain.drop_attrs())


def test_the_file_reads_back_identical_and_sel_works_on_labels(step, tmp_path):
    req, cube = step
    run(req, tmp_path / "cube.nc")
    with open_cube(tmp_path / "cube.nc") as back:  # the file holds codes (CF); open_cube gives the labels back
        for ds in (back, cube):
            ds.attrs.pop("history")
        xr.testing.assert_identical(back, cube)
        assert back["recompute"].values.tolist() == ["none", "full"] and back["gpu"].attrs["categorical"] == "device"
        point = dict(recompute="full", gpu="h100-sxm", tp=2, pp=1, dp=4, batch=1)
        assert back["step_time"].sel(point).item() == cube["step_time"].sel(point).item()
        assert "formula_by_combination" in back["step_time"].attrs


def test_kernels_agree_with_exact_sympy_in_every_combination(step):
    req, cube = step
    for labels in _combinations():
        variant = req.variants[tuple(labels.values())]
        slab = cube.sel(labels)
        points = np.argwhere(slab["valid"].values == 1)[[0, -1]]
        for index in points:
            point = {d: int(slab[d].values[i]) for d, i in zip(slab["valid"].dims, index)}
            for q in ("step_time", "mem_peak"):
                exact = float(variant.formulas.evaluate_exact(q, {**variant.fixed, **point}))
                assert slab.sel(point)[q].item() == pytest.approx(exact, rel=1e-12), (labels, point, q)


def test_a_gpu_dim_fills_each_device_for_its_combination_precision(step):
    req, cube = step
    for name in CATEGORIES["gpu"]:
        fields = device(name).values("bf16")
        for labels, variant in req.variants.items():
            if labels[-1] == name:
                assert {k: variant.fixed[k] for k in fields} == fields
    assert "peak_flops" not in req.fixed  # not shared: each combination holds its own
    assert "gpu = 'h100-sxm'" in cube.attrs["fixed_by_combination"]
    # a precision dim: each combination's device fields for its own precision
    fp8 = parse_spec(_spec(STEP, sweep={"gpu": "h100"}, options={"precision": None},
                           axes={"precision": ["bf16", "fp8"], "gpu": None, "recompute": None}))
    assert [v.fixed["peak_flops"] for v in fp8.variants.values()] == [
        device("h100").values(p)["peak_flops"] for p in ("bf16", "fp8")]


def test_a_slow_and_a_fast_gpu_differ_where_they_should(step):
    _, cube = step
    fast, slow = (cube["step_time"].sel(gpu=g) for g in ("h100-sxm", "a100-80gb"))
    ok = np.isfinite(fast.values)
    assert ok.any() and (fast.values[ok] < slow.values[ok]).all()
    memory = [cube["mem_peak"].sel(gpu=g).values for g in ("h100-sxm", "a100-80gb")]
    np.testing.assert_array_equal(*memory)  # the device changes the time, not the memory


def _brute_force(cube: xr.Dataset, over: list[str]) -> dict:
    """QUERY answered on the host from the whole cube: first point in grid order among the best."""
    keep = [d for d in cube.dims if d not in over]
    ok = (cube["valid"] == 1) & (cube["mem_peak"] <= 2 * 2**30) & (cube["step_time"] <= 0.012)
    answers = {}
    for cell in itertools.product(*(cube[d].values.tolist() for d in keep)):
        at = dict(zip(keep, cell))
        mask, step = ok.sel(at).values, cube["step_time"].sel(at).values
        dims = ok.sel(at).dims
        if not mask.any():
            answers[cell] = (0, None, None)
            continue
        index = np.unravel_index(int(np.argmin(np.where(mask, step, np.inf))), mask.shape)
        where = {d: cube[d].values[i].item() for d, i in zip(dims, index)}
        answers[cell] = (int(mask.sum()), float(step[index]), where)
    return answers


@pytest.mark.parametrize("over", [QUERY["over"], ["recompute", "gpu"]], ids=["mixed", "categorical"])
def test_a_query_over_categorical_dims_equals_brute_force(step, over, tmp_path):
    req, cube = step
    query = make_query(QUERY["where"], minimize="step_time", over=over, quantities=req.quantities, axes=list(req.axes))
    answer = run(req, QuerySink(query)).dataset
    write_netcdf(answer, tmp_path / "q.nc")
    back = open_cube(tmp_path / "q.nc")  # best_recompute holds codes in the file, labels once decoded
    expected = _brute_force(cube, over)
    assert 0 < sum(n == 0 for n, _, _ in expected.values()) < len(expected)  # some cells fit, some do not
    for ds in (answer, back):
        keep = list(answer["n_feasible"].dims)
        assert keep == [d for d in req.axes if d not in over]
        for cell, (n, best, where) in expected.items():
            got = ds.sel(dict(zip(keep, cell)))
            assert int(got["n_feasible"]) == n
            if n == 0:
                assert np.isnan(float(got["step_time"])) and str(got["best_recompute"].values) == ""
                continue
            assert float(got["step_time"]) == best
            assert {d: got[f"best_{d}"].values.item() for d in over} == where
    back.close()


def test_query_ties_go_to_the_first_point_in_grid_order_whatever_order_chunks_come_in():
    """Combinations are reduced slab by slab, not in grid order: a tie must still keep the grid's first point."""
    from engine.request.query import Query
    from engine.runtime.query import QueryAccumulator, QueryFunction

    qf = QueryFunction(Query((), "x", "min", ("a", "b")), ("a", "b"), 0, True)
    acc = QueryAccumulator(qf, (2, 3), [np.arange(2), np.arange(3)], np.int64)
    for row, col in ((1, 0), (0, 2), (1, 1)):  # the same best value three times, row 1 first
        acc.add((slice(row, row + 1), slice(None)), (1, 3), {"n_feasible": np.array(3), "best": np.array(5),
                                                             "arg": np.array(col)})
    assert (int(acc.best_index[0]), int(acc.best_index[1])) == (0, 2) and int(acc.n_feasible) == 9


def test_the_seed_set_with_a_categorical_first_dim(tmp_path):
    req = parse_spec(_spec(SEED), text=SEED)
    cube = run(req).dataset
    assert cube["tied_head"].values.tolist() == [True, False] and "valid" not in cube
    for tied in (True, False):
        plain = run(parse_spec(_plain(SEED, {"tied_head": tied}))).dataset
        xr.testing.assert_equal(cube.sel(tied_head=tied).drop_vars("tied_head"), plain.drop_attrs())
        fs = req.variants[(tied,)].formulas
        point = dict(d_model=768, n_layers=4, batch=4, vocab=50000, seq_len=128)
        assert cube.sel(tied_head=tied, d_model=768, n_layers=4, batch=4)["params_total"].item() == \
            int(fs.evaluate_exact("params_total", point))
    assert cube["params_total"].dtype == np.int64
    assert cube.sel(tied_head=False, d_model=512, n_layers=2, batch=1)["params_total"].item() - \
        cube.sel(tied_head=True, d_model=512, n_layers=2, batch=1)["params_total"].item() == 512 * 50000
    # split along the categorical first dim, each part written on its own, joined in part order
    parts = []
    for i in range(2):
        share = process_share(req, i, 2)
        assert share.axes["tied_head"].tolist() == [[True], [False]][i]
        parts.append(run(share, tmp_path / f"p{i}.nc").path)
    run(req, tmp_path / "whole.nc")
    combine(parts[::-1], tmp_path / "joined.nc")
    with xr.open_dataset(tmp_path / "whole.nc") as whole, xr.open_dataset(tmp_path / "joined.nc") as joined:
        for ds in (whole, joined, cube):
            ds.attrs.pop("history")
        xr.testing.assert_identical(whole, joined)
        xr.testing.assert_identical(whole, cube)  # booleans read back as booleans (int8 with dtype = "bool")
        assert whole["tied_head"].dtype == np.bool_ and whole["tied_head"].attrs["categorical"] == "structural option"
        assert whole["params_total"].sel(tied_head=False).equals(cube["params_total"].sel(tied_head=False))


def test_the_cli_runs_a_categorical_spec(run_cli, write_spec, tmp_path):
    spec = write_spec(STEP, "cat.toml")
    r = run_cli("run", spec, "-o", tmp_path / "cat.nc")
    assert r.returncode == 0, r.stderr
    assert "tp=3 x recompute=2 x pp=2 x dp=4 x gpu=2 x batch=2" in r.stdout
    assert "kernels   4 (one per combination of recompute, gpu)" in r.stdout
    assert "step_time  min" in r.stdout and "recompute=" in r.stdout
    with open_cube(tmp_path / "cat.nc") as ds:
        assert ds.sizes["gpu"] == 2 and ds["recompute"].values.tolist() == ["none", "full"]
    r = run_cli("run", spec, "-o", tmp_path / "q.nc", *(f"--where={w}" for w in QUERY["where"]), "--minimize",
                "step_time", "--over", ",".join(QUERY["over"]))
    assert r.returncode == 0, r.stderr
    with open_cube(tmp_path / "q.nc") as ds:
        assert set(ds["best_recompute"].values.ravel()) <= {"none", "full", ""}
    r = run_cli("run", spec, "-o", tmp_path / "bad.nc", "--minimize", "recompute", "--over", "recompute")
    assert r.returncode == 2 and "recompute is a categorical dim" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "bad.nc").exists()


@pytest.mark.parametrize("change,key,words", [
    (dict(axes={"recompute": ["none", "partial"]}), "axes.recompute", ["'partial'", "'none', 'selective', 'full'"]),
    (dict(axes={"zero": [1, 3, 1]}), "axes.zero", ["lists 1 more than once"]),
    (dict(axes={"precision": ["bf16", "bf16-mixed", "bf16-amp"]}, options={"precision": None}), "axes.precision",
     ["'bf16-mixed' more than once"]),
    (dict(options={"recompute": "full"}), "axes.recompute", ["also in [options]"]),
    (dict(sweep={"gpu": "a100"}), "axes.gpu", ["also sweep.gpu"]),
    (dict(axes={"gpu": ["a100", "z80"]}), "axes.gpu", ["'z80'", "a100-80gb", "h100-sxm"]),
    (dict(axes={"sequence_parallel": []}), "axes.sequence_parallel", ["non-empty list"]),
    (dict(axes={"zero": [1, 2]}, options={"offload": "params"}), "axes",
     ["the combination", "zero = 1", "offload params needs zero 3"]),
    (dict(axes={"memory_model": ["korthikanti", "pytorch"]}, options={"memory_model": None, "sequence_parallel": True}),
     "axes", ["the combination recompute = 'none', gpu = 'a100-80gb', memory_model = 'pytorch'",
              "sequence_parallel needs memory_model korthikanti"]),
    (dict(sweep={"quantities": ["mem_peak_backward"]}, axes={"memory_model": ["pytorch", "korthikanti"]},
          options={"memory_model": None}), "sweep.quantities",
     ["mem_peak_backward is not available in the combination", "memory_model = 'korthikanti'"]),
    (dict(fixed={"seq_len": None}), "fixed", ["seq_len is needed", "(the combination recompute = 'none'"]),
    (dict(query={"minimize": "recompute", "over": ["recompute"]}), "query.minimize", ["categorical dim"]),
], ids=["unknown-label", "duplicate", "alias-duplicate", "in-options", "gpu-in-sweep", "unknown-gpu", "empty",
        "conflict", "model-conflict", "absent-quantity", "missing-input", "categorical-objective"])
def test_bad_categorical_specs_are_one_line_errors_naming_the_key(change, key, words):
    with pytest.raises(SpecError) as info:
        parse_spec(_spec(STEP, **change), source="s.toml")
    exc = info.value
    assert exc.key == key and "\n" not in str(exc), str(exc)
    for w in words:
        assert w in exc.message, (w, exc.message)


def test_every_dim_categorical_is_refused():
    data = _spec(SEED)
    data["axes"] = {"tied_head": [True, False]}
    data["fixed"].update(d_model=512, n_layers=2, batch=1)
    with pytest.raises(SpecError, match="every dim is categorical"):
        parse_spec(data)


# -- in the file: codes as CF wants them, labels beside them --------------------------------------------------

CF_WORD = re.compile(r"[A-Za-z0-9_.+@-]+")  # what CF allows in a flag_meanings word


def _codes_and_labels(nc, dim: str, labels: list) -> None:
    """``dim`` in netCDF file ``nc`` (read with plain netCDF4) is int8 codes 0..n-1 with consistent flag attributes,
    beside ``<dim>_label``, a netCDF string variable holding ``labels``, named by every variable on the dim."""
    var = nc.variables[dim]
    assert var.dtype == np.int8 and var[:].tolist() == list(range(len(labels))), dim
    flags = var.getncattr("flag_values")
    assert flags.dtype == var.dtype and flags.tolist() == var[:].tolist(), dim
    words = var.getncattr("flag_meanings").split()
    assert len(words) == len(labels) and all(CF_WORD.fullmatch(w) for w in words), words
    assert var.getncattr("labels") == f"{dim}_label" and "_FillValue" not in var.ncattrs()
    label = nc.variables[f"{dim}_label"]
    assert label.dtype is str and label.dimensions == (dim,) and label[:].tolist() == labels
    for name, v in nc.variables.items():
        if dim in v.dimensions and name not in (dim, f"{dim}_label"):
            assert f"{dim}_label" in v.getncattr("coordinates").split(), name


def test_the_netcdf_file_holds_numeric_coordinates_and_string_labels(step, tmp_path):
    req, cube = step
    path = run(req, tmp_path / "cube.nc").path
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        assert all(nc.variables[d].dtype.kind in "iuf" for d in nc.dimensions)  # CF §1.3, §5: numeric
        assert nc.variables["recompute"].getncattr("flag_meanings") == "none full"
        for dim in CATEGORIES:
            _codes_and_labels(nc, dim, CATEGORIES[dim])
        for q in ("step_time", "mem_peak", "valid"):  # the same numbers as the cube in memory
            raw = nc.variables[q][:]
            held = cube[q].transpose(*nc.variables[q].dimensions).values
            np.testing.assert_array_equal(np.where(raw == nc.variables[q].getncattr("_FillValue"), np.nan, raw)
                                          if q != "valid" else raw, held)
    with xr.open_dataset(path) as plain:  # plain xarray: the codes, the labels beside them
        assert plain["recompute"].values.tolist() == [0, 1] and plain["recompute_label"].values.tolist() == \
            CATEGORIES["recompute"]


def test_the_zarr_store_holds_codes_and_variable_length_utf8_labels(step, tmp_path):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("dask")
    import warnings

    from engine.runtime.sweep import run
    from engine.sinks.zarr_store import ZarrSink

    req, cube = step
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zarr warns of a data type without a v3 specification (FixedLengthUTF32)
        run(req, ZarrSink(tmp_path / "cube.zarr"))
    group = zarr.open_group(str(tmp_path / "cube.zarr"), mode="r")
    for dim, labels in CATEGORIES.items():
        codes, label = group[dim], group[f"{dim}_label"]
        assert codes.dtype == np.int8 and codes[:].tolist() == list(range(len(labels)))
        assert list(codes.attrs["flag_values"]) == codes[:].tolist()
        assert codes.attrs["flag_meanings"].split() == labels and codes.attrs["labels"] == f"{dim}_label"
        assert label.metadata.to_dict()["data_type"] == "string" and label[:].tolist() == labels
    for name, array in group.arrays():
        assert "fixed_length" not in str(array.metadata.to_dict()["data_type"]), name
    assert set(group["step_time"].attrs["coordinates"].split()) == {"recompute_label", "gpu_label"}
    with open_cube(tmp_path / "cube.zarr") as back:
        for ds in (back, cube):
            ds.attrs.pop("history", None)
        xr.testing.assert_identical(back, cube)


def test_the_virtual_cube_open_and_plot_give_labels(step, run_cli, write_spec, tmp_path):
    pytest.importorskip("matplotlib")
    req, cube = step
    spec = write_spec(STEP, "cat.toml")
    virtual = open_cube(spec)
    assert virtual["recompute"].values.tolist() == CATEGORIES["recompute"] and "recompute_label" not in virtual
    point = dict(recompute="full", gpu="h100-sxm", tp=2, pp=1, dp=4, batch=1)
    assert virtual["step_time"].sel(point).item() == cube["step_time"].sel(point).item()
    r = run_cli("open", spec)
    assert r.returncode == 0 and "recompute=2" in r.stdout and "recompute_label" not in r.stdout
    path = run(req, tmp_path / "cube.nc").path
    with open_cube(path) as written:
        xr.testing.assert_identical(virtual.coords.to_dataset().drop_attrs(deep=False),
                                    written.coords.to_dataset().drop_attrs(deep=False))
    r = run_cli("plot", path, "step_time", "--x", "recompute", "--at", "gpu=h100-sxm", "--at", "tp=2", "--at", "pp=1",
                "--at", "dp=4", "--at", "batch=1", "-o", tmp_path / "fig.png")
    assert r.returncode == 0, r.stderr
    ax = xr.open_dataset(path).llm.line("step_time", x="recompute", at=dict(gpu="h100-sxm", tp=2, pp=1, dp=4, batch=1))
    assert [t.get_text() for t in ax.get_xticklabels()] == CATEGORIES["recompute"]


def test_a_query_answer_holds_label_codes_with_a_fill(step, tmp_path):
    req, cube = step
    query = make_query(QUERY["where"], minimize="step_time", over=QUERY["over"], quantities=req.quantities,
                       axes=list(req.axes))
    answer = run(req, QuerySink(query)).dataset
    assert answer["best_recompute"].dtype.kind == "U"  # labels in memory, as before
    paths = [write_netcdf(answer, tmp_path / "q.nc")]
    if importlib.util.find_spec("zarr") is not None:
        from engine.sinks.zarr_store import write_store

        paths.append(write_store(answer, tmp_path / "q.zarr"))
    none = answer["n_feasible"].values == 0
    assert none.any() and (~none).any()
    for path in paths:
        engine = "zarr" if path.suffix == ".zarr" else None
        with xr.open_dataset(path, engine=engine, mask_and_scale=False) as raw:
            best = raw["best_recompute"]
            assert best.dtype == np.int8 and best.attrs["flag_meanings"] == "none full"
            assert list(best.attrs["flag_values"]) == [0, 1] and best.attrs["labels"] == "flag_meanings"
            fill = best.attrs.get("_FillValue", best.encoding.get("_FillValue"))
            assert fill == -127 and (best.values[none] == fill).all() and set(best.values[~none].ravel()) <= {0, 1}
            assert raw["gpu"].dtype == np.int8 and raw["gpu_label"].values.tolist() == CATEGORIES["gpu"]
        with open_cube(path) as back:
            for name in answer.data_vars:
                np.testing.assert_array_equal(back[name].values, answer[name].values, err_msg=name)
            assert back["gpu"].values.tolist() == CATEGORIES["gpu"]


# zero out of order first (2 shares: [3, 1] and [2]), a string dim after it, one device
FIRST = """
[sweep]
arch = "gpt2"
gpu = "h100"
quantities = ["step_time", "mem_peak"]

[options]
memory_model = "korthikanti"
precision = "bf16"
attention = "flash"

[fixed]
n_gpus = 8
seq_len = 1024
global_batch = 16

[axes]
zero = [3, 1, 2]
recompute = ["none", "full"]
tp = [1, 2]
pp = [1, 2]
dp = [1, 2, 4, 8]
batch = [1, 2]
"""


def test_combine_joins_coded_first_dims_as_one_run_writes_them(tmp_path):
    """zero = [3, 1, 2] is out of order: coded in the whole cube, not in its parts ([3, 1] and [2] are monotonic);
    combine writes what one run writes. Independent cubes along recompute join in the order given."""
    req = parse_spec(_spec(FIRST), text=FIRST)
    assert list(req.axes)[:2] == ["zero", "recompute"]
    parts = [run(process_share(req, i, 2), tmp_path / f"p{i}.nc").path for i in range(2)]
    with netCDF4.Dataset(parts[0]) as nc:
        assert nc.variables["zero"][:].tolist() == [3, 1] and "zero_label" not in nc.variables
    combine(parts, tmp_path / "joined.nc")
    whole = run(req, tmp_path / "whole.nc").path
    with netCDF4.Dataset(tmp_path / "joined.nc") as nc:
        assert nc.variables["zero"][:].tolist() == [0, 1, 2] and nc.variables["zero_label"][:].tolist() == [3, 1, 2]
        assert nc.variables["zero"].getncattr("flag_meanings") == "3 1 2"
        _codes_and_labels(nc, "recompute", ["none", "full"])
    for opener in (xr.open_dataset, open_cube):  # the file as written, and with its labels
        with opener(whole) as a, opener(tmp_path / "joined.nc") as b:
            for ds in (a, b):
                ds.attrs.pop("history")
            xr.testing.assert_identical(a, b)
    with open_cube(whole) as back:
        assert back["zero"].dtype == np.int64 and back["zero"].values.tolist() == [3, 1, 2]
    # cubes of one label each, joined in the order given: codes of the joined labels
    single = _spec(FIRST, axes={"zero": None})
    cubes = []
    for label in ("full", "none"):
        single["axes"]["recompute"] = [label]
        cubes.append(run(parse_spec(single), tmp_path / f"{label}.nc").path)
    combine(cubes, tmp_path / "both.nc")
    with netCDF4.Dataset(tmp_path / "both.nc") as nc:
        _codes_and_labels(nc, "recompute", ["full", "none"])
    with open_cube(tmp_path / "both.nc") as both:
        for label in ("full", "none"):
            plain = open_cube(tmp_path / f"{label}.nc")
            np.testing.assert_array_equal(both["step_time"].sel(recompute=label).values,
                                          plain["step_time"].sel(recompute=label).values)


@pytest.mark.parametrize("label", ["none", "a100-80gb", "devices/my gpu.toml", "x@y", "größe", "a b\tc"])
def test_flag_meanings_words_spell_every_label_exactly(label):
    from engine.sinks.categorical import flag_meaning, label_of

    word = flag_meaning(label)
    assert CF_WORD.fullmatch(word) and label_of(word) == label
    assert (word == label) == bool(re.fullmatch(r"[A-Za-z0-9_.+-]+", label))  # plain labels read as they are


def test_a_device_file_label_reads_back_exactly(tmp_path):
    """A gpu label may be a TOML path with a blank: flag_meanings escapes it, the label coordinate and a query's
    best_gpu (decoded from flag_meanings) give it back as written."""
    device_file = tmp_path / "my gpu.toml"
    device_file.write_text('name = "box"\nvendor = "Acme"\nhbm_gb = 96\nhbm_bandwidth_gbps = 4000\n'
                           'intra_node_gbps = 400\ndevices_per_node = 4\ninter_node_gbps = 50\n'
                           '[peak_tflops]\nbf16 = 1000\n')
    data = _spec(STEP, axes={"recompute": None, "gpu": ["a100", str(device_file)]})
    req = parse_spec(data)
    labels = ["a100-80gb", str(device_file)]
    assert req.axes["gpu"].tolist() == labels
    path = run(req, tmp_path / "cube.nc").path
    query = make_query(["mem_peak <= 2GiB"], minimize="step_time", over=["gpu", "tp"], quantities=req.quantities,
                       axes=list(req.axes))
    answer = run(req, QuerySink(query)).dataset
    qpath = write_netcdf(answer, tmp_path / "q.nc")
    with netCDF4.Dataset(path) as nc:
        _codes_and_labels(nc, "gpu", labels)
        assert " " not in nc.variables["gpu"].getncattr("flag_meanings").split()[1]
    with open_cube(path) as back, open_cube(qpath) as q:
        assert back["gpu"].values.tolist() == labels
        assert set(q["best_gpu"].values.ravel()) <= {*labels, ""} and str(device_file) in q["best_gpu"].values
        np.testing.assert_array_equal(q["best_gpu"].values, answer["best_gpu"].values)
