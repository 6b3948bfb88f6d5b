"""Plots and frontiers (engine.plot): frontier and Pareto front against brute force, figures with their
labels and budget contour, and ``llm-sweep plot`` in-process, bad input included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import engine.plot  # noqa: E402,F401  (registers ds.llm)
from engine.plot import nondominated, parse_budget, scale_of  # noqa: E402
from engine.plot.draw import MISSING_MATPLOTLIB  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GiB = 2**30
TINY_SPEC = {
    "sweep": {"formula_set": "seed", "quantities": ["params_total", "mem_peak", "mem_activations"]},
    "fixed": {"vocab": 50000},
    "axes": {"d_model": [512, 768, 1024], "n_layers": [6, 12, 18, 24], "batch": [1, 2, 4, 8], "seq_len": [256, 1024]},
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _coord(name, values):
    return xr.Variable(name, np.asarray(values), attrs={"units": "1", "long_name": name})


@pytest.fixture(scope="module")
def mixed() -> xr.Dataset:
    """A hand-made cube with the engine's attrs: variables on different dims, NaN fill, a valid mask."""
    rng = np.random.default_rng(7)
    d_model, n_layers = np.array([256, 512, 1024]), np.array([2, 4, 8, 16])
    batch, seq_len = np.array([1, 2, 4, 8]), np.array([2048, 4096, 8192, 16384, 32768])
    params = 12 * n_layers[None, :] * d_model[:, None] ** 2 + 50_000 * d_model[:, None]
    mem = rng.uniform(1, 100, size=(3, 4, 4, 5)) * GiB
    mem[0, 1, 2, 3] = np.nan  # a fill value: never fits
    valid = np.ones((3, 4), dtype=np.uint8)
    valid[2, 0] = 0
    coords = {"d_model": _coord("d_model", d_model), "n_layers": _coord("n_layers", n_layers),
              "batch": _coord("batch", batch), "seq_len": _coord("seq_len", seq_len)}
    return xr.Dataset({
        "params_total": (("d_model", "n_layers"), params, {"units": "1", "long_name": "total parameters"}),
        "mem_peak": (("d_model", "n_layers", "batch", "seq_len"), mem, {"units": "bytes", "long_name": "peak memory"}),
        "valid": (("d_model", "n_layers"), valid, {"units": "1"}),
    }, coords=coords)


@pytest.fixture(scope="module")
def cube() -> xr.Dataset:
    """A real cube: a tiny seed spec run in memory."""
    from engine.request.spec import parse_spec
    from engine.runtime.sweep import run

    return run(parse_spec(TINY_SPEC)).dataset


@pytest.fixture(scope="module")
def cube_file(cube, tmp_path_factory) -> Path:
    from engine.sinks.dataset import write_netcdf

    path = tmp_path_factory.mktemp("cube") / "tiny.nc"
    write_netcdf(cube, path)
    return path


# -- frontier ----------------------------------------------------------------------------------------------


def _fits(ds, budget):
    mem = ds.mem_peak.values
    return (mem <= budget) & (ds.valid.values[:, :, None, None] == 1)


def test_frontier_of_a_dim_is_the_brute_force_answer(mixed):
    budget = 40 * GiB
    got = mixed.llm.frontier("mem_peak <= 40GiB", maximize="seq_len", over="batch")
    assert got.dims == ("batch", "d_model", "n_layers") and got.name == "seq_len"
    fits, seq = _fits(mixed, budget), mixed.seq_len.values
    want = np.full((4, 3, 4), np.nan)
    for i, j, k in np.ndindex(3, 4, 4):
        ok = seq[fits[i, j, k]]
        if ok.size:
            want[k, i, j] = ok.max()
    assert np.isnan(want).any() and not np.isnan(want).all()  # the case has both answers
    np.testing.assert_array_equal(got.values, want)
    assert got.attrs["long_name"] == "largest seq_len such that mem_peak <= 40GiB"


def test_frontier_of_a_variable_and_minimize(mixed):
    budget = 30 * GiB
    best = mixed.llm.frontier("mem_peak <= 30GiB", maximize="params_total", over="batch")
    least = mixed.llm.frontier(["mem_peak <= 30GiB", "mem_peak >= 5GiB"], minimize="params_total", over="batch")
    assert best.dims == ("batch", "seq_len")  # maximized across params_total's own dims
    fits = _fits(mixed, budget)
    params = mixed.params_total.values
    want_max, want_min = np.full((4, 5), np.nan), np.full((4, 5), np.nan)
    for k, m in np.ndindex(4, 5):
        ok = params[fits[:, :, k, m]]
        if ok.size:
            want_max[k, m] = ok.max()
        low = params[fits[:, :, k, m] & (mixed.mem_peak.values[:, :, k, m] >= 5 * GiB)]
        if low.size:
            want_min[k, m] = low.min()
    np.testing.assert_array_equal(best.values, want_max)
    np.testing.assert_array_equal(least.values, want_min)


def test_frontier_agrees_with_the_on_device_query(cube):
    from engine.request.spec import parse_spec
    from engine.request.query import make_query
    from engine.runtime.sweep import run
    from engine.sinks import QuerySink

    request = parse_spec(TINY_SPEC)
    query = make_query(["mem_peak <= 4GiB"], maximize="seq_len", over=["seq_len"], quantities=request.quantities,
                       axes=list(request.axes))
    want = run(request, QuerySink(query)).dataset["max_seq_len"]
    got = cube.llm.frontier("mem_peak <= 4GiB", maximize="seq_len")
    xr.testing.assert_equal(got.transpose(*want.dims).drop_attrs(), want.astype(float).drop_attrs().rename("seq_len"))


@pytest.mark.parametrize("kwargs,message", [
    (dict(where="mem_peak <= 40GiB"), "give the objective as maximize=NAME or minimize=NAME"),
    (dict(where="memory <= 40GiB", maximize="seq_len"), "constraint on unknown quantity 'memory'"),
    (dict(where="mem_peak <= 40GiB", maximize="width"), "unknown variable 'width'"),
    (dict(where="mem_peak <= 40GiB", maximize="seq_len", over="width"), "over 'width' is not a dim of the cube"),
    (dict(where="mem_peak <= 40GiB", maximize="seq_len", over="seq_len"), "either kept (over) or maximized"),
    (dict(where="mem_peak <= lots", maximize="seq_len"), "cannot read 'lots'"),
])
def test_frontier_refuses_bad_arguments_in_one_line(mixed, kwargs, message):
    with pytest.raises(ValueError) as info:
        mixed.llm.frontier(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


# -- Pareto front ------------------------------------------------------------------------------------------


def _brute_front(x, y):
    """Indices of the points no other point dominates (both minimized), by comparing every pair."""
    better_eq = (x[None, :] <= x[:, None]) & (y[None, :] <= y[:, None])
    strictly = (x[None, :] < x[:, None]) | (y[None, :] < y[:, None])
    return set(np.flatnonzero(~(better_eq & strictly).any(axis=1)).tolist())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nondominated_equals_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 8, 300).astype(float), rng.integers(0, 8, 300).astype(float)
    got = nondominated(x, y)
    assert set(got.tolist()) == _brute_front(x, y)
    assert np.all(np.diff(x[got]) >= 0)


def test_pareto_front_equals_brute_force(mixed):
    front = mixed.llm.pareto("mem_peak", "params_total", maximize="params_total")
    mem, params, ok = xr.broadcast(mixed.mem_peak, mixed.params_total, mixed.valid == 1)
    keep = np.flatnonzero(ok.values.ravel() & np.isfinite(mem.values.ravel()))
    want = _brute_front(mem.values.ravel()[keep], -params.values.ravel()[keep].astype(float))
    where = np.unravel_index(keep[sorted(want)], mem.shape)
    want_points = {tuple(mixed[d].values[i] for d, i in zip(mem.dims, ix)) for ix in zip(*where)}
    got_points = set(zip(*(front[d].values.tolist() for d in mem.dims)))
    assert got_points == want_points and len(got_points) > 2
    assert front.sizes["point"] == len(want) and np.all(np.diff(front.mem_peak.values) >= 0)
    assert front.attrs["senses"] == "min mem_peak, max params_total"
    assert front.params_total.attrs["units"] == "1" and front.params_total.dtype == mixed.params_total.dtype


def test_pareto_with_a_constraint_and_a_plot(mixed):
    ax = plt.figure().add_subplot()
    front = mixed.llm.pareto("mem_peak", "params_total", maximize="params_total", where="mem_peak <= 20GiB", ax=ax)
    assert float(front.mem_peak.max()) <= 20 * GiB
    assert ax.get_xlabel() == "mem_peak [GiB]" and ax.get_ylabel() == "params_total [M]"
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == front.sizes["point"]


# -- labels and budgets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,units,largest,label,factor", [
    ("mem_peak", "bytes", 80 * GiB, "mem_peak [GiB]", GiB),
    ("mem_peak", "bytes", 300 * 2**20, "mem_peak [MiB]", 2**20),
    ("mem_peak", "bytes", 3 * 2**40, "mem_peak [TiB]", 2**40),
    ("params_total", "1", 7e9, "params_total [B]", 1e9),
    ("params_layer", "1", 1.2e8, "params_layer [M]", 1e6),
    ("seq_len", "1", 131072, "seq_len [k tokens]", 1e3),
    ("seq_len", "1", 4096, "seq_len [tokens]", 1),
    ("tokens", "1", 2e12, "tokens [T tokens]", 1e12),
    ("d_model", "1", 8192, "d_model", 1),
    ("step_time", "s", 0.02, "step_time [ms]", 1e-3),
    ("step_time", "s", 3.5, "step_time [s]", 1),
    ("flops_token", "1", 4e13, "flops_token [TFLOP]", 1e12),
    ("tokens_per_s", "1/s", 5e4, "tokens_per_s [k tokens/s]", 1e3),
    ("hbm_bandwidth", "bytes/s", 3.35e12, "hbm_bandwidth [TiB/s]", 2**40),
])
def test_labels_in_human_units(name, units, largest, label, factor):
    scale = scale_of(name, units, largest)
    assert (scale.label, scale.factor) == (label, factor)


def test_budgets_are_read_like_query_thresholds():
    assert parse_budget("80GiB", "mem_peak", "bytes") == 80 * GiB
    assert parse_budget("512 MB", "mem_peak", "bytes") == 512 * 10**6
    assert parse_budget("0.5", "step_time", "s") == 0.5
    assert parse_budget(2 * GiB, "mem_peak", "bytes") == 2 * GiB
    for text, units, message in (("80", "bytes", "has no unit"), ("80XB", "bytes", "cannot read budget '80XB'"),
                                 ("1GiB", "s", "is a size in bytes, but step_time"), ("", "bytes", "empty")):
        with pytest.raises(ValueError, match=message):
            parse_budget(text, "step_time" if units == "s" else "mem_peak", units)


# -- figures -----------------------------------------------------------------------------------------------


def test_heatmap_draws_the_budget_contour_with_labels_in_units(mixed):
    ax = mixed.llm.heatmap("mem_peak", x="d_model", y="n_layers", budget="40GiB", at={"batch": 2, "seq_len": 8192})
    from matplotlib.contour import ContourSet

    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours) == 1 and list(contours[0].levels) == [40.0]  # drawn in GiB
    assert ax.get_xlabel() == "d_model" and ax.get_ylabel() == "n_layers"
    colorbar = [a for a in ax.figure.axes if a is not ax][0]
    assert colorbar.get_ylabel() == "mem_peak [GiB]"
    assert "batch=2" in ax.get_title() and "seq_len=8192" in ax.get_title() and "budget 40 GiB" in ax.get_title()
    mesh = ax.collections[0]
    want = mixed.mem_peak.sel(batch=2, seq_len=8192).transpose("n_layers", "d_model").values / GiB
    np.testing.assert_allclose(np.ma.filled(mesh.get_array(), np.nan).reshape(want.shape), want)
    assert ax.get_yscale() == "log"  # n_layers 2, 4, 8, 16 is geometric


def test_heatmap_broadcasts_a_variable_on_fewer_dims(mixed):
    ax = mixed.llm.heatmap("params_total", x="d_model", y="batch", at={"n_layers": 4})
    values = np.asarray(ax.collections[0].get_array()).reshape(4, 3)
    np.testing.assert_allclose(values, np.tile(mixed.params_total.sel(n_layers=4).values / 1e6, (4, 1)))
    assert [a.get_ylabel() for a in ax.figure.axes if a is not ax] == ["params_total [M]"]


def test_heatmap_without_a_crossing_says_so_and_draws_no_contour(mixed):
    ax = mixed.llm.heatmap("mem_peak", x="d_model", y="n_layers", budget="1TiB", at={"batch": 1, "seq_len": 2048})
    assert len(ax.collections) == 1 and "all within budget 1 TiB" in ax.get_title()


def test_heatmap_over_labels_draws_the_budget_between_cells():
    from matplotlib.collections import LineCollection

    mem = np.array([[10, 90, 50], [70, 20, 95]], dtype=float) * GiB  # (batch, recompute)
    ds = xr.Dataset({"mem_peak": (("batch", "recompute"), mem, {"units": "bytes"})},
                    coords={"batch": [1, 2], "recompute": ["none", "selective", "full"]})
    ax = ds.llm.heatmap("mem_peak", x="recompute", y="batch", budget="60GiB")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "selective", "full"]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and "red line between cells" in ax.get_title()
    fits = mem <= 60 * GiB
    want = int((fits[:, 1:] != fits[:, :-1]).sum() + (fits[1:] != fits[:-1]).sum())
    assert len(lines[0].get_segments()) == want == 7


@pytest.mark.parametrize("at,message", [
    ({"batch": 2}, "mem_peak also varies along seq_len: fix each with at={'seq_len': 2048}"),
    ({}, "mem_peak also varies along batch, seq_len"),
    ({"batch": 3, "seq_len": 2048}, "batch=3 is not a coordinate of batch; valid: 1, 2, 4, 8"),
    ({"width": 3}, "at 'width' is not a dim of the cube"),
    ({"d_model": 512, "batch": 1, "seq_len": 2048}, "at fixes 'd_model', which the figure draws"),
])
def test_heatmap_refuses_dims_left_over_in_one_line(mixed, at, message):
    with pytest.raises(ValueError) as info:
        mixed.llm.heatmap("mem_peak", x="d_model", y="n_layers", at=at)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_line_and_frontier_plots(mixed):
    ax = mixed.llm.line("mem_peak", x="seq_len", hue="batch", at={"d_model": 512, "n_layers": 8}, budget="40GiB")
    assert ax.get_xlabel() == "seq_len [k tokens]" and ax.get_ylabel() == "mem_peak [GiB]"
    assert len(ax.lines) == 5 and ax.lines[-1].get_ydata()[0] == 40  # 4 batches and the budget line
    np.testing.assert_allclose(ax.lines[0].get_xdata(), mixed.seq_len.values / 1e3)
    ax = mixed.llm.plot_frontier("mem_peak <= 40GiB", x="batch", maximize="seq_len", at={"d_model": 512,
                                                                                       "n_layers": 8})
    want = mixed.llm.frontier("mem_peak <= 40GiB", maximize="seq_len", over="batch").sel(d_model=512, n_layers=8)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), want.values / 1e3)
    assert ax.get_ylabel() == "seq_len [k tokens]" and "largest seq_len such that" in ax.get_title()


# -- paper quality: titles, blank cells, budget lines ------------------------------------------------------


def test_titles_name_the_model_options_and_fixed_inputs(write_spec):
    from engine.request.spec import load_spec
    from engine.runtime.sweep import run

    spec = write_spec("""
        [sweep]
        formula_set = "seed"
        quantities = ["params_total", "mem_peak"]
        [options]
        tied_head = true
        [fixed]
        vocab = 50000
        [axes]
        d_model = [512, 768]
        n_layers = [6, 12]
        batch = [1, 2, 4]
        seq_len = [256, 1024]
        """)
    ds = run(load_spec(spec)).dataset
    model = "formula set seed (tied_head=true); vocab=50000"
    pareto = plt.subplots()[1]
    ds.llm.pareto("mem_peak", "params_total", maximize="params_total", ax=pareto)
    axes = [ds.llm.heatmap("mem_peak", x="d_model", y="n_layers", at={"batch": 1, "seq_len": 256}),
            ds.llm.line("mem_peak", x="seq_len", hue="batch", at={"d_model": 512, "n_layers": 6}),
            ds.llm.plot_frontier("mem_peak <= 1GiB", x="batch", maximize="seq_len", at={"d_model": 512,
                                                                                       "n_layers": 6}),
            pareto]
    for ax in axes:
        assert ax.get_title().splitlines()[0] == model
    assert "mem_peak at batch=1, seq_len=256" in axes[0].get_title()
    small = ds.sel(d_model=768, n_layers=12)  # cut before drawing: the title still says where
    assert "at d_model=768, n_layers=12" in small.llm.plot_frontier("mem_peak <= 1GiB", x="batch",
                                                                    maximize="seq_len").get_title()


def test_titles_of_an_architecture_and_of_a_cube_without_a_spec(cube, mixed):
    from engine.plot.draw import model_text

    assert model_text(cube) == "formula set seed; vocab=50000"  # a spec given as a mapping: the cube's values
    assert model_text(mixed) == ""  # not an llm-sweep cube: no model line
    assert mixed.llm.heatmap("params_total", x="d_model", y="n_layers").get_title() == "params_total"
    arch = xr.Dataset(attrs={"arch": "meta-llama-3-8b", "formula_set": "llama", "fixed": "",
                             "spec": '[sweep]\narch = "meta-llama-3-8b"\ngpu = "h100-sxm"\n'
                                     '[options]\nmode = "inference"\nprecision = "bf16"\n'})
    assert model_text(arch) == "meta-llama-3-8b on h100-sxm (mode=inference, precision=bf16)"
    by_gpu = xr.Dataset(attrs={"formula_set": "gpt2", "spec": "axes = 'tp, gpu'",
                               "fixed": "n_gpus = 8, hbm_capacity = 80000000000, peak_flops = 312000000000000.0",
                               "fixed_by_combination": "gpu = 'a': n_gpus = 8, hbm_capacity = 80000000000, "
                                                       "peak_flops = 312000000000000.0\ngpu = 'b': n_gpus = 8, "
                                                       "hbm_capacity = 80000000000, peak_flops = 989400000000000.0"})
    assert model_text(by_gpu) == "formula set gpt2; n_gpus=8, hbm_capacity=8e+10"  # a gpu's own fields left out


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def test_heatmap_explains_its_blank_cells_in_the_legend(mixed, cube):
    from engine.request.spec import parse_spec
    from engine.request.query import make_query
    from engine.runtime.sweep import run
    from engine.sinks import QuerySink

    masked = mixed.assign(mem_peak=mixed.mem_peak.where(mixed.valid == 1))  # as the engine writes a cube
    at = {"batch": 4, "seq_len": 16384}
    ax = masked.llm.heatmap("mem_peak", x="d_model", y="n_layers", at=at)
    assert np.ma.getmaskarray(ax.collections[0].get_array()).sum() == 2  # valid 0, and a fill
    assert _legend_texts(ax) == ["invalid grid point (valid 0)"] and ax.patch.get_hatch()
    arch = masked.assign(valid=mixed.valid.assign_attrs(conditions="n_kv_heads must divide n_heads"))
    ax = arch.llm.heatmap("mem_peak", x="d_model", y="n_layers", at=at)
    assert _legend_texts(ax) == ["invalid grid point (valid 0): n_kv_heads must divide n_heads"]
    request = parse_spec(TINY_SPEC)
    query = make_query(["mem_peak <= 2GiB"], maximize="params_total", over=["d_model", "n_layers"],
                       quantities=request.quantities, axes=list(request.axes))
    best = run(request, QuerySink(query)).dataset
    assert (best.n_feasible == 0).any()
    ax = best.llm.heatmap("params_total", x="seq_len", y="batch")
    assert _legend_texts(ax) == ["nothing fits (n_feasible 0)"]
    assert "max of params_total over d_model, n_layers\nsubject to mem_peak <= 2GiB\nparams_total" in ax.get_title()
    ax = cube.llm.heatmap("mem_peak", x="d_model", y="n_layers", at={"batch": 1, "seq_len": 256})
    assert ax.get_legend() is None and not ax.patch.get_hatch()  # nothing blank, nothing to explain


def _height_of(ax, y: float) -> float:
    """Where ``y`` (data) sits on the y axis, 0 at the bottom and 1 at the top."""
    return (ax.transScale + ax.transLimits).transform((1.0, y))[1]


def _spread() -> xr.Dataset:
    """Peak memory over sequence length and batch spanning three decades (2 GiB to 2 TiB), as the seed's does."""
    seq, batch = np.array([256, 1024, 2048, 4096, 8192]), np.array([1, 4, 16, 64, 256])
    mem = (2 * GiB * (seq[None, :] / 256) ** 0.5 * batch[:, None] ** 0.8).astype(float)
    return xr.Dataset({"mem_peak": (("batch", "seq_len"), mem, {"units": "bytes"})},
                      coords={"batch": _coord("batch", batch), "seq_len": _coord("seq_len", seq)})


@pytest.mark.parametrize("budget", ["80GiB", "8GiB", "512GiB"])
def test_a_budget_line_sits_where_it_can_be_read(budget):
    ds = _spread()
    ax = ds.llm.line("mem_peak", x="seq_len", hue="batch", budget=budget)
    limit = parse_budget(budget, "mem_peak", "bytes")
    assert ax.get_yscale() == "log" and ax.get_ylabel() == f"mem_peak [{budget[-3:]}]"  # in the budget's unit
    drawn = ax.lines[-1].get_ydata()[0]
    assert drawn == limit / scale_of("mem_peak", "bytes", limit).factor
    assert 0.1 < _height_of(ax, drawn) < 0.9
    low = min(line.get_ydata().min() for line in ax.lines[:-1])
    assert _height_of(ax, low) < 0.1  # and every line is drawn whole
    assert "budget " + budget.replace("GiB", " GiB").replace("TiB", " TiB") in _legend_texts(ax)


def test_values_near_their_budget_stay_on_a_linear_axis(mixed):
    ax = mixed.llm.line("mem_peak", x="seq_len", hue="batch", at={"d_model": 512, "n_layers": 8}, budget="40GiB")
    assert ax.get_yscale() == "linear"
    from engine.plot.draw import log_axis

    assert not log_axis(np.array([10.0, 60.0]), 40.0) and not log_axis(np.array([10.0, 60.0]))
    assert log_axis(np.array([1.0, 200.0])) and not log_axis(np.array([0.0, 200.0]))  # zero: no log
    assert log_axis(np.array([50.0, 3000.0]), 80.0)  # a budget in the bottom tenth of a linear axis
    assert log_axis(np.array([1.0, 5.0]), 80.0)  # values in the bottom tenth under their budget


def test_the_accessor_needs_no_matplotlib_until_it_draws():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import xarray as xr, engine.plot\n"
            "ds = xr.Dataset({'m': (('a',), [1.0, 5.0], {'units': 'bytes'})}, coords={'a': [1, 2]})\n"
            "print(ds.llm.frontier('m <= 2', maximize='a').item())\n"
            "try:\n    ds.llm.line('m', x='a')\nexcept ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.splitlines() == ["1.0", MISSING_MATPLOTLIB]
    assert "pip install 'llm-sweep[plot]'" in MISSING_MATPLOTLIB


# -- the command line --------------------------------------------------------------------------------------


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_cli_writes_a_png_heatmap_of_a_cube(run_cli, cube_file, tmp_path):
    out = tmp_path / "heat.png"
    r = run_cli("plot", cube_file, "mem_peak", "--x", "d_model", "--y", "n_layers", "--at", "batch=4",
                "--at", "seq_len=1024", "--budget", "4GiB", "-o", out)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    size = out.stat().st_size
    assert r.stdout == f"llm-sweep plot: wrote {out} (heatmap of mem_peak over d_model x n_layers, budget 4GiB; " \
                       f"{size:,} bytes)\n"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and size > 1000
    assert _only(tmp_path) == ["heat.png"]


def test_cli_runs_a_spec_and_writes_an_svg_frontier(run_cli, small_spec, tmp_path):
    out = tmp_path / "frontier.svg"
    r = run_cli("plot", small_spec, "mem_peak", "--x", "batch", "--maximize", "seq_len", "--budget", "4GiB",
                "--at", "d_model=768", "--at", "n_layers=12", "-o", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"llm-sweep plot: wrote {out} (frontier: largest seq_len with mem_peak <= 4GiB")
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert _only(tmp_path) == ["frontier.svg", "spec.toml"]


def test_cli_line_with_one_line_per_y(run_cli, cube_file, tmp_path):
    out = tmp_path / "lines.pdf"
    r = run_cli("plot", cube_file, "mem_peak", "--x", "seq_len", "--y", "batch", "--kind", "line",
                "--at", "d_model=768", "--at", "n_layers=12", "--budget", "4GiB", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "line of mem_peak over seq_len, one line per batch" in r.stdout
    assert out.read_bytes()[:5] == b"%PDF-"


def test_cli_pareto_of_two_variables(run_cli, cube_file, tmp_path):
    """--kind pareto: VARIABLE against the variable --x, both maximized, over every point (the serving frontier,
    tokens/s per device against per user, on a serving cube; here two of the seed cube's variables)."""
    out = tmp_path / "front.png"
    r = run_cli("plot", cube_file, "mem_peak", "--x", "params_total", "--kind", "pareto", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "Pareto front of mem_peak against params_total, both maximized" in r.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = run_cli("plot", cube_file, "mem_peak", "--x", "batch", "--kind", "pareto", "-o", out)
    assert r.returncode == 2 and "--x: batch: --kind pareto draws two variables" in r.stderr
    r = run_cli("plot", cube_file, "mem_peak", "--x", "params_total", "--kind", "pareto", "--budget", "4GiB", "-o",
                out)
    assert r.returncode == 2 and "--kind pareto draws VARIABLE against the variable --x" in r.stderr


BAD = [
    (["nope", "--x", "d_model", "--y", "n_layers"], "{cube}: nope: unknown variable; valid: params_total, mem_peak"),
    (["mem_peak", "--x", "width", "--y", "n_layers"], "--x: width: unknown dim; dims of {cube}: d_model, n_layers"),
    (["mem_peak", "--x", "d_model", "--y", "n_layers", "--at", "batch=4", "--at", "seq_len=1024", "--budget", "80"],
     "--budget: 80: budget '80' has no unit: mem_peak is in bytes, give a size such as 80GiB"),
    (["mem_peak", "--x", "d_model", "--y", "n_layers", "--at", "batch=4", "--at", "seq_len=1024", "--budget",
      "80 lots"], "--budget: 80 lots: cannot read budget '80 lots'"),
    (["mem_peak", "--x", "d_model", "--y", "n_layers", "--at", "batch=3", "--at", "seq_len=1024"],
     "--at: batch=3: 3 is not a coordinate of batch; valid: 1, 2, 4, 8"),
    (["mem_peak", "--x", "d_model", "--y", "n_layers", "--at", "width=3", "--at", "seq_len=1024"],
     "--at: width=3: unknown dim 'width'"),
    (["mem_peak", "--x", "d_model", "--kind", "heatmap"], "--kind: heatmap: needs --y DIM"),
    (["mem_peak", "--x", "d_model", "--y", "n_layers"],
     "--at: mem_peak also varies along batch, seq_len: fix each with --at DIM=VALUE, e.g. --at batch=1 --at "
     "seq_len=256"),
    (["mem_peak", "--x", "batch", "--maximize", "seq_len"], "--kind: frontier: needs --maximize DIM and --budget"),
    (["mem_peak", "--x", "params_total", "--kind", "frontier"], "--kind: frontier: needs --maximize DIM and --budget "
     "LIMIT: the largest DIM with mem_peak <= LIMIT; to draw mem_peak against the variable params_total over every "
     "point (a throughput-interactivity frontier), give --kind pareto"),
    (["mem_peak", "--x", "d_model", "--y", "d_model"], "--y: d_model: is --x as well"),
]


@pytest.mark.parametrize("source", ["cube", "spec"])
@pytest.mark.parametrize("args,message", BAD, ids=["variable", "dim", "budget-unit", "budget-text", "at-value",
                                                   "at-dim", "heatmap-y", "leftover", "frontier-budget", "frontier-of-two-variables",
                                                   "same-dim"])
def test_cli_bad_input_is_one_line_and_exit_2(run_cli, cube_file, write_spec, tmp_path, source, args, message):
    if source == "spec":
        path = write_spec("[sweep]\nformula_set = 'seed'\nquantities = ['params_total', 'mem_peak']\n[fixed]\n"
                          "vocab = 50000\n[axes]\nd_model = [512, 768, 1024]\nn_layers = [6, 12, 18, 24]\n"
                          "batch = [1, 2, 4, 8]\nseq_len = [256, 1024]\n", "cube.toml")
    else:
        path = cube_file
    out = tmp_path / "fig.png"
    r = run_cli("plot", path, *args, "-o", out)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("llm-sweep plot: error: " + message.format(cube=path)), lines[0]
    assert not out.exists() and _only(tmp_path) == (["cube.toml"] if source == "spec" else [])


@pytest.mark.parametrize("output,message", [("fig.jpg", "-o: {out}: unknown figure format '.jpg'; give a file ending "
                                                        "in .png, .pdf, .svg"),
                                            ("fig", "-o: {out}: unknown figure format '(no suffix)'"),
                                            ("missing/fig.png", "output folder")])
def test_cli_bad_output_is_one_line_and_exit_2(run_cli, cube_file, tmp_path, output, message):
    out = tmp_path / output
    r = run_cli("plot", cube_file, "params_total", "--x", "d_model", "--y", "n_layers", "-o", out)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("llm-sweep plot: error: " + message.format(out=out)), \
        r.stderr
    assert _only(tmp_path) == []


def test_cli_failed_write_leaves_nothing(run_cli, cube_file, tmp_path, monkeypatch):
    import errno

    from matplotlib.figure import Figure

    def full_disk(self, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full_disk)
    out = tmp_path / "fig.png"
    r = run_cli("plot", cube_file, "params_total", "--x", "d_model", "--y", "n_layers", "-o", out)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert "is full; nothing was left at" in r.stderr
    assert _only(tmp_path) == []


def test_cli_missing_cube_is_one_line(run_cli, tmp_path):
    r = run_cli("plot", tmp_path / "none.nc", "mem_peak", "--x", "d_model", "-o", tmp_path / "fig.png")
    assert r.returncode == 2 and r.stderr == f"llm-sweep plot: error: {tmp_path / 'none.nc'}: no such file (give a " \
                                             "netCDF cube or a TOML spec)\n"
