"""Natural dims: every output is computed and stored over the swept dims its formula depends on.

Broadcast to the full grid, the cube must hold what a dense kernel (every output over every axis: the
old behaviour) holds at every valid point, exactly as sympy evaluates it, and the fill only where a
condition over the output's own dims fails. The file defines each variable on its dims and writes an
output without the split or walked axes once; queries over mixed dims, ``--part``/``combine``, categorical
cubes and the run summary agree with brute force on the broadcast cube.
"""

from __future__ import annotations

import math

import netCDF4
import numpy as np
import pytest
import sympy
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.catalog.model import architecture, estimate_formulas, memory_options
from engine.request.spec import SweepRequest, load_spec, parse_spec
from engine.runtime.dims import natural_dims
from engine.request.query import make_query
from engine.request.numerics import INT64_FILL
from engine.runtime.sweep import kernel_for, process_share, run
from engine.sinks import sink_for
from engine.sinks.base import result_bytes
from engine.sinks.dataset import StreamWriter, combine
from engine.symbolic.formulas import FORMULA_SETS, build_formula_set
from engine.symbolic.symbols import SYMBOLS

SEED = {"sweep": {"formula_set": "seed"}, "fixed": {"vocab": 50000},
        "axes": {"d_model": [256, 768, 1024], "n_layers": [2, 12], "batch": [1, 8], "seq_len": [128, 1024]}}
# sweeps/llama-gqa.toml shrunk: 3 does not divide 32 heads, 4000 is not a multiple of 32 (invalid points)
GQA = {"sweep": {"arch": "llama-2-7b", "quantities": ["params_total", "params_attention", "params_mlp",
                                                      "params_embedding", "params_head"]},
       "axes": {"d_model": [2048, 4000, 4096], "n_layers": [16, 32], "n_kv_heads": [1, 3, 8, 32]}}
SPECS = {"seed": SEED, "gqa": GQA}
SMALL_BUDGET = {"seed": 1_200, "gqa": 250}  # several chunks: walk d_model, split the next axis
# fewer quantities where a test compiles new kernels (other axes, other options): every kind of dims
FEW = ["params_output", "params_layer", "params_total", "mem_input", "mem_peak"]


@pytest.fixture(scope="module")
def cubes():
    """Each spec's request and its cube in memory."""
    out = {}
    for name, spec in SPECS.items():
        req = parse_spec(spec)
        out[name] = req, run(req).dataset
    return out


def _full(ds: xr.Dataset, q: str, axes) -> np.ndarray:
    """Variable ``q`` broadcast to every dim of the grid, in axes order."""
    return ds[q].broadcast_like(ds[list(axes)]).transpose(*axes).values


def _failed(req: SweepRequest, point: dict) -> list[tuple[str, ...]]:
    """The dims of each validity condition that fails at ``point`` (sympy, on the host)."""
    given_ = {**{a: None for a in req.axes}, **req.fixed}
    out = []
    for _, cond in req.formulas.conditions(given_):
        if not bool(cond.xreplace({SYMBOLS[a].symbol: sympy.Integer(int(v)) for a, v in point.items()})):
            out.append(tuple(a for a in req.axes if SYMBOLS[a].symbol in cond.free_symbols))
    return out


# -- dims -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPECS)
def test_each_output_spans_the_dims_its_formula_depends_on(cubes, name):
    req, ds = cubes[name]
    dims = natural_dims(req)
    assert {q: ds[q].dims for q in ds.data_vars} == dims
    assert list(ds.dims) == list(req.axes)
    if name == "seed":
        assert dims["params_total"] == ("d_model", "n_layers") and dims["mem_input"] == ("batch", "seq_len")
        assert dims["mem_peak"] == tuple(req.axes) and dims["params_output"] == ()
        assert ds["params_output"].ndim == 0 and ds["params_output"].item() == 0  # tied head: a 0-d variable
    else:
        assert dims["valid"] == ("d_model", "n_kv_heads") and dims["params_mlp"] == ("d_model", "n_layers")


@pytest.mark.parametrize("name", SPECS)
def test_the_cube_broadcast_holds_the_dense_cube_exactly(cubes, name):
    """The old behaviour: one kernel with every output over every axis, masked wherever ``valid`` is 0."""
    req, ds = cubes[name]
    axes = list(req.axes)
    outputs = list(ds.data_vars)
    dense = kernel_for(req, {q: tuple(axes) for q in outputs}).natural(**req.axes)
    valid = dense["valid"].astype(bool) if "valid" in dense else np.ones(req.shape, bool)
    assert valid.any() and (name == "seed" or (~valid).any())
    for q in outputs:
        got = _full(ds, q, axes)
        want = dense[q] if dense[q].dtype.kind == "f" or "valid" not in dense else \
            np.where(dense[q] == INT64_FILL, np.nan, dense[q].astype(np.float64))
        np.testing.assert_array_equal(got[valid], want[valid], err_msg=q)
    # exact against sympy at every point; the fill where a condition over the output's own dims fails
    full = {q: _full(ds, q, axes) for q in req.quantities}
    for index in np.ndindex(*req.shape):
        point = {a: req.axes[a][i].item() for a, i in zip(axes, index)}
        failed = _failed(req, point)
        for q in req.quantities:
            value = full[q][index]
            if any(set(d) <= set(ds[q].dims) for d in failed):
                assert np.isnan(value), (q, point)
            else:
                assert value == pytest.approx(float(req.formulas.evaluate_exact(q, {**req.fixed, **point})),
                                              rel=1e-12), (q, point)
        if "valid" in ds:
            assert ds["valid"].sel({d: point[d] for d in ds["valid"].dims}).item() == (not failed)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_natural_dims_are_the_free_symbols_of_every_formula_set(data):
    for name in FORMULA_SETS:
        fs = build_formula_set(name)
        inputs = sorted({s.name for q in fs.quantities for s in fs.expanded(q).free_symbols} & set(SYMBOLS))
        swept = data.draw(st.lists(st.sampled_from(inputs), min_size=1, unique=True), label=name)
        _check_free_symbols(fs, swept)


@pytest.mark.parametrize("arch,mode", [("llama-2-7b", "training"), ("mixtral-8x7b", "inference")])
def test_natural_dims_are_the_free_symbols_of_architectures(arch, mode):
    a = architecture(arch)
    fs = estimate_formulas(a.family, a.structure, memory_options(mode=mode))
    inputs = sorted({s.name for q in fs.quantities for s in fs.expanded(q).free_symbols} & set(SYMBOLS))
    _check_free_symbols(fs, inputs[1::2])  # every other input swept, the rest left to the preset's sizes


def _check_free_symbols(fs, swept) -> None:
    """natural_dims of a request sweeping ``swept`` (everything else left to defaults) = each expression's free
    symbols among them, in axes order; ``valid``'s = its conditions'."""
    req = SweepRequest(formula_set=fs.name, formulas=fs, options={}, axes={a: np.array([1, 2]) for a in swept},
                       fixed={}, quantities=list(fs.quantities), headline=[])
    given_ = {a: None for a in swept}
    dims = natural_dims(req)
    for q in fs.quantities:
        free = {s.name for s in fs.resolve(q, given_).free_symbols}
        assert dims[q] == tuple(a for a in swept if a in free), q
    conditions = [c for _, c in fs.conditions(given_)]
    free = {s.name for c in conditions for s in c.free_symbols}
    assert dims.get("valid") == (tuple(a for a in swept if a in free) if conditions else None)


# -- sizes, the file, chunks -----------------------------------------------------------------------


def test_the_seed_cube_is_at_least_five_times_smaller():
    req = load_spec("sweeps/seed.toml")
    kernel = kernel_for(req)
    natural = result_bytes(req, kernel)
    dense = req.points * kernel.bytes_per_point  # every output over every axis
    assert dense >= 5 * natural
    assert natural == sum(8 * math.prod(len(req.axes[a]) for a in d) for d in natural_dims(req).values())


def test_the_file_defines_each_variable_on_its_dims_and_writes_it_once(cubes, tmp_path, monkeypatch):
    req, memory = cubes["seed"]
    puts: dict[str, int] = {}
    real = StreamWriter._put

    def put(self, q, index, block):
        puts[q] = puts.get(q, 0) + 1
        assert len(index) == block.ndim == len(self.dims[q])
        real(self, q, index, block)

    monkeypatch.setattr(StreamWriter, "_put", put)
    result = run(req, sink_for(tmp_path / "cube.nc"), budget=1_200)  # walk d_model, split n_layers
    plan = result.plan
    assert plan.split_axis == 1 and plan.block == 1 and plan.n_chunks == 6
    # written once per block of the walked and split dims it has, never once per chunk
    for q, dims in natural_dims(req).items():
        want = (3 if "d_model" in dims else 1) * (2 if "n_layers" in dims else 1)
        assert puts[q] == want, q
    assert puts["params_output"] == 1 and puts["mem_input"] == 1 and puts["mem_peak"] == 6
    assert plan.chunk_bytes >= max(memory[q].nbytes for q in memory.data_vars)  # never under-estimated
    with netCDF4.Dataset(tmp_path / "cube.nc") as nc:
        for q, var in nc.variables.items():
            if q in req.axes:
                continue
            assert var.dimensions == memory[q].dims
            chunk = tuple(n for a, n in zip(req.axes, plan.file_chunk) if a in var.dimensions)
            assert var.chunking() == (list(chunk) if chunk else "contiguous"), q
    with xr.open_dataset(tmp_path / "cube.nc") as back:
        xr.testing.assert_identical(back.drop_attrs(), memory.drop_attrs())
    assert result_bytes(req, kernel_for(req)) == sum(memory[q].nbytes for q in memory.data_vars)


def test_summary_extremes_are_over_each_outputs_own_dims(cubes, tmp_path):
    req, memory = cubes["gqa"]
    result = run(req, sink_for(tmp_path / "gqa.nc", track=["params_total", "params_mlp"]), budget=250)
    assert result.plan.n_chunks > 1
    for q in ("params_total", "params_mlp"):
        var = memory[q]
        for which, pick in (("min", np.nanargmin), ("max", np.nanargmax)):
            value, where = result.extremes.best[(q, which)]
            index = np.unravel_index(pick(var.values), var.shape)
            assert where == tuple(int(i) for i in index) and value == var.values[index]
    result.headline = ["params_mlp"]
    text = result.report("gqa")
    line = next(t for t in text.splitlines() if t.strip().startswith("params_mlp"))
    assert "d_model=2048, n_layers=16" in line and "n_kv_heads" not in line  # no dim it lacks


# -- queries, parts, categorical cubes -------------------------------------------------------------


@pytest.mark.parametrize("name,where,sense,objective,over", [
    ("seed", ["mem_peak <= 8GiB"], "max", "params_total", ["d_model", "n_layers"]),  # fewer dims than the constraint
    ("seed", ["params_total >= 5e7", "params_layer <= 1e7"], "min", "mem_input", ["batch"]),  # disjoint dims
    ("gqa", ["params_total <= 6e9"], "max", "params_mlp", ["d_model", "n_kv_heads"]),  # valid on other dims
    ("gqa", ["params_embedding >= 1e8"], None, None, ["n_layers"]),
])
def test_queries_over_mixed_dims_equal_brute_force(cubes, name, where, sense, objective, over):
    req, cube = cubes[name]
    query = make_query(where, objective if sense == "max" else None, objective if sense == "min" else None, over,
                       req.quantities, list(req.axes))
    answer = run(req, sink_for(query=query), budget=SMALL_BUDGET[name]).dataset
    ok = (cube["valid"] == 1) if "valid" in cube else xr.DataArray(True)
    for c in query.where:
        ok = ok & (cube[c.quantity] <= c.value if c.op == "<=" else cube[c.quantity] >= c.value)
    ok = ok.broadcast_like(cube[list(req.axes)]).transpose(*req.axes)
    keep = [d for d in req.axes if d not in over]
    np.testing.assert_array_equal(answer["n_feasible"].values, ok.sum(over).transpose(*keep).values)
    if objective is None:
        return
    values = cube[objective].broadcast_like(ok).where(ok)
    best = (values.max(over) if sense == "max" else values.min(over)).transpose(*keep).values
    np.testing.assert_array_equal(answer[objective].values, best)
    assert np.isfinite(best).any()


@pytest.mark.parametrize("name,axes", [("seed", ["batch", "seq_len", "d_model", "n_layers"]), ("gqa", None)])
def test_parts_and_combine_reproduce_the_single_run(name, axes, tmp_path):
    spec = dict(SPECS[name])
    if axes:  # a first axis most outputs lack: they are taken once, from the first part
        spec["axes"] = {a: SPECS[name]["axes"][a] for a in axes}
        spec["sweep"] = {**spec["sweep"], "quantities": FEW}
    req = parse_spec(spec)
    whole = run(req, tmp_path / "whole.nc").path
    parts = [run(process_share(req, i, 2), tmp_path / f"p{i}.nc").path for i in range(2)]
    joined = combine(parts[::-1], tmp_path / "joined.nc")
    with xr.open_dataset(whole) as a, xr.open_dataset(joined) as b:
        for ds in (a, b):
            ds.attrs.pop("history")
        xr.testing.assert_identical(a, b)
        assert b["params_total"].dims == natural_dims(req)["params_total"]
    if name == "seed":  # a variable without the first dim that differs between parts: not one sweep
        with netCDF4.Dataset(parts[1], "a") as nc:
            nc.variables["params_total"][0, 0] = 1
        with pytest.raises(ValueError, match="params_total .not on batch. differs"):
            combine(parts, tmp_path / "bad.nc")
        assert not (tmp_path / "bad.nc").exists()


def test_a_categorical_cube_equals_its_plain_runs_broadcast(tmp_path):
    spec = {**SEED, "sweep": {**SEED["sweep"], "quantities": FEW}, "axes": {"tied_head": [True, False], **SEED["axes"]}}
    req = parse_spec(spec)
    cube = run(req).dataset
    # untied, the output head spans d_model; tied it is 0: the cube's variable spans the union
    assert cube["params_output"].dims == ("tied_head", "d_model") and cube["params_total"].dims[0] == "tied_head"
    for tied in (True, False):
        plain = run(parse_spec({**spec, "options": {"tied_head": tied}, "axes": SEED["axes"]})).dataset
        slab = cube.sel(tied_head=tied).drop_vars("tied_head")
        for q in plain.data_vars:
            a, b = xr.broadcast(slab[q], plain[q])
            np.testing.assert_array_equal(a.transpose(*b.dims).values, b.values, err_msg=q)
    run(req, tmp_path / "cat.nc")
    with xr.open_dataset(tmp_path / "cat.nc") as back:
        back.attrs.pop("history")
        cube.attrs.pop("history")
        xr.testing.assert_identical(back, cube)
