"""Answers clipped by the grid: a query's (or a frontier's) best point on an end of a swept axis is flagged.

``at_edge_<dim>`` must equal the brute-force answer of the full cube: the best point of each cell (the
first in grid order on ties), 1 where its coordinate along ``<dim>`` is an end of the axis that can clip
it, 0 inside, NaN where nothing fits. The run summary says it in a line per end, the file keeps the
flags as CF flag variables, and figures draw those points with open markers.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from engine.request.spec import parse_spec
from engine.request.query import make_query
from engine.runtime.query import clipping_ends, edge_lines
from engine.runtime.sweep import run
from engine.sinks import QuerySink
from engine.sinks.dataset import write_netcdf

GiB = 2**30
SEED = {
    "sweep": {"formula_set": "seed", "quantities": ["params_total", "mem_peak"]},
    "fixed": {"vocab": 50000},
    "axes": {"d_model": [512, 768, 1024, 1536], "n_layers": [1, 6, 12, 24], "batch": [1, 2, 4, 8, 16],
             "seq_len": [256, 512, 1024, 2048]},
}


@pytest.fixture(scope="module")
def request_():
    return parse_spec(SEED)


@pytest.fixture(scope="module")
def cube(request_) -> xr.Dataset:
    return run(request_).dataset


def _query(request, where, over, maximize=None, minimize=None):
    return make_query([where], maximize=maximize, minimize=minimize, over=over, quantities=request.quantities,
                      axes=list(request.axes))


def _brute_force(cube, budget, objective, over, sense="max"):
    """Per kept cell: the best point's coordinate along each ``over`` dim (first in grid order), NaN where none fits."""
    mem, obj = xr.broadcast(cube.mem_peak, cube[objective])
    keep = [d for d in cube.mem_peak.dims if d not in over]
    mem, obj = mem.transpose(*keep, *over).values, obj.transpose(*keep, *over).values
    kept_shape = mem.shape[:len(keep)]
    best = {d: np.full(kept_shape, np.nan) for d in over}
    for cell in np.ndindex(*kept_shape):
        fits = (mem[cell] <= budget).ravel()
        if not fits.any():
            continue
        values = np.where(fits, obj[cell].ravel(), -np.inf if sense == "max" else np.inf)
        flat = int(np.argmax(values) if sense == "max" else np.argmin(values))
        for d, i in zip(over, np.unravel_index(flat, mem[cell].shape)):
            best[d][cell] = cube[d].values[i]
    return best


def _flags(best, axis, ends):
    want = np.zeros(best.shape)
    for end in ends:
        want[best == (axis.min() if end == "bottom" else axis.max())] = 1
    return np.where(np.isnan(best), np.nan, want)


@pytest.mark.parametrize("budget", [3 * GiB // 2, 4 * GiB, 40 * GiB])
def test_flags_of_a_query_equal_brute_force(request_, cube, budget):
    over = ["d_model", "n_layers"]
    ds = run(request_, QuerySink(_query(request_, f"mem_peak <= {budget}", over, maximize="params_total"))).dataset
    best = _brute_force(cube, budget, "params_total", over)
    ends = {"d_model": ("bottom", "top"), "n_layers": ("top",)}  # n_layers starts at 1: nothing lies below
    for d in over:
        np.testing.assert_array_equal(ds[f"best_{d}"].values, best[d])
        want = _flags(best[d], cube[d].values, ends[d])
        np.testing.assert_array_equal(ds[f"at_edge_{d}"].values, want, d)
        attrs = ds[f"at_edge_{d}"].attrs
        assert attrs["flag_meanings"] == "inside at_edge" and attrs["flag_values"].tolist() == [0, 1]
        for end in ends[d]:
            at = best[d] == (cube[d].values.min() if end == "bottom" else cube[d].values.max())
            assert attrs[f"cells_at_{end}_of_axis"] == int(at.sum())
        assert ds[f"best_{d}"].attrs["ancillary_variables"] == f"at_edge_{d}"
        assert ds[f"best_{d}"].attrs["cells_at_edge"] == int(np.nansum(want))
    assert "bottom_of_axis" not in ds["at_edge_n_layers"].attrs
    anywhere = np.fmax(ds["at_edge_d_model"].values, ds["at_edge_n_layers"].values)
    assert ds["params_total"].attrs["ancillary_variables"] == "at_edge_d_model at_edge_n_layers"
    assert ds["params_total"].attrs["cells_at_edge"] == int(np.nansum(anywhere))


def test_the_cases_hold_every_kind_of_cell(request_, cube):
    """The budgets above reach cells inside, at the top, at the bottom and where nothing fits."""
    seen = set()
    for budget in (3 * GiB // 2, 4 * GiB, 40 * GiB):
        best = _brute_force(cube, budget, "params_total", ["d_model", "n_layers"])["d_model"]
        seen |= {"none" if np.isnan(b) else "bottom" if b == 512 else "top" if b == 1536 else "inside" for b in
                 best.ravel()}
    assert seen == {"none", "bottom", "top", "inside"}


@pytest.mark.parametrize("sense", ["max", "min"])
def test_the_objectives_own_axis_counts_only_the_end_it_is_pushed_towards(request_, cube, sense):
    where = "mem_peak <= 6GiB" if sense == "max" else "mem_peak >= 6GiB"
    kwargs = {"maximize" if sense == "max" else "minimize": "seq_len"}
    ds = run(request_, QuerySink(_query(request_, where, ["seq_len"], **kwargs))).dataset
    answer = ds[f"{sense}_seq_len"].values
    axis = cube.seq_len.values
    end = axis.max() if sense == "max" else axis.min()
    other = axis.min() if sense == "max" else axis.max()
    assert (answer == end).any() and (answer == other).any() and np.isnan(answer).any()  # every case is here
    want = np.where(np.isnan(answer), np.nan, (answer == end).astype(float))
    np.testing.assert_array_equal(ds["at_edge_seq_len"].values, want)
    assert ds[f"{sense}_seq_len"].attrs["ancillary_variables"] == "at_edge_seq_len"


def test_no_flag_for_an_axis_without_ends():
    """Labels (a categorical dim, even of numbers) have no order; a single value has no inside."""
    request = parse_spec({**SEED, "axes": {"tied_head": [True, False], "d_model": [512, 768], "n_layers": [6],
                                           "batch": [1, 2]}, "fixed": {"vocab": 50000, "seq_len": 256}})
    ds = run(request, QuerySink(_query(request, "mem_peak <= 4GiB", ["tied_head", "d_model", "n_layers"],
                                   maximize="params_total"))).dataset
    assert [v for v in ds.data_vars if v.startswith("at_edge_")] == ["at_edge_d_model"]
    assert clipping_ends("n_layers", np.array([1, 2, 3]), None, "max") == ("top",)  # nothing below 1 layer
    assert clipping_ends("d_model", np.array([64, 128]), None, "max") == ("bottom", "top")
    assert clipping_ends("d_model", np.array([64, 128]), "d_model", "min") == ("bottom",)
    from engine.runtime.query import has_edges

    assert not has_edges(np.array([True, False])) and not has_edges(np.array(["none", "full"]))
    assert not has_edges(np.array([4096])) and has_edges(np.array([1.5, 0.5]))


def test_a_categorical_dim_of_numbers_has_no_flag():
    """ZeRO stages 0-3 are labels of one kernel each, not an axis with ends; dp beside them is one."""
    request = parse_spec({"sweep": {"arch": "gpt2", "quantities": ["mem_peak"]}, "options": {"precision": "bf16"},
                          "fixed": {"seq_len": 1024}, "axes": {"zero": [0, 1, 2, 3], "dp": [1, 2, 4, 8],
                                                                "batch": [1, 2, 4]}})
    ds = run(request, QuerySink(_query(request, "mem_peak <= 3GiB", ["zero", "dp", "batch"], maximize="batch"))).dataset
    assert sorted(v for v in ds.data_vars if v.startswith("at_edge_")) == ["at_edge_batch", "at_edge_dp"]
    assert "at_edge_dp" in ds["max_batch"].attrs["ancillary_variables"].split()


def test_a_count_only_query_has_no_flags(request_):
    ds = run(request_, QuerySink(_query(request_, "mem_peak <= 4GiB", ["d_model"]))).dataset
    assert list(ds.data_vars) == ["n_feasible"]


def test_flags_are_cf_int8_on_disk_and_read_back(request_, tmp_path):
    import netCDF4

    ds = run(request_, QuerySink(_query(request_, "mem_peak <= 8GiB", ["d_model", "n_layers"],
                                    maximize="params_total"))).dataset
    path = write_netcdf(ds, tmp_path / "q.nc")
    with netCDF4.Dataset(path) as nc:
        var = nc.variables["at_edge_d_model"]
        assert var.dtype == np.int8 and var.getncattr("_FillValue") == -127
        assert np.asarray(var.getncattr("flag_values")).dtype == np.int8
    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(back["at_edge_d_model"].values, ds["at_edge_d_model"].values)
        assert back["at_edge_d_model"].attrs["cells_at_top_of_axis"] == ds["at_edge_d_model"].attrs[
            "cells_at_top_of_axis"]
        assert edge_lines(back) == edge_lines(ds)


def test_the_run_summary_says_which_answers_lie_on_an_edge(request_):
    result = run(request_, QuerySink(_query(request_, "mem_peak <= 8GiB", ["d_model", "n_layers"],
                                        maximize="params_total")))
    ds = result.dataset
    cells = int((ds.n_feasible.values > 0).sum())
    top = ds["at_edge_d_model"].attrs["cells_at_top_of_axis"]
    assert 0 < top < cells
    line = (f"  at edge   best d_model ≥ 1,536 (the top of the d_model axis) in {top} of {cells} cells: the true "
            "answer may lie beyond")
    summary = result.report().splitlines()
    assert line in summary
    assert all("n_layers ≤" not in s for s in summary)  # n_layers 1 has nothing below it


def test_the_command_line_prints_the_edge_line(run_cli, write_spec, tmp_path):
    spec = write_spec("""
        [sweep]
        formula_set = "seed"
        quantities = ["mem_peak"]
        [fixed]
        vocab = 50000
        d_model = 768
        n_layers = 12
        [axes]
        batch = [1, 2, 4, 8]
        seq_len = [256, 512, 1024, 2048, 4096]
        [query]
        where = "mem_peak <= 16GiB"
        maximize = "seq_len"
        over = ["seq_len"]
        """)
    r = run_cli("run", spec, "-o", tmp_path / "q.nc")
    assert r.returncode == 0, r.stderr
    with xr.open_dataset(tmp_path / "q.nc") as ds:
        n = int((ds.max_seq_len == 4096).sum())
    assert 0 < n < 4
    assert (f"  at edge   max seq_len ≥ 4,096 (the top of the seq_len axis) in {n} of 4 cells: the true answer may "
            "lie beyond") in r.stdout.splitlines()


# -- frontiers and figures ---------------------------------------------------------------------------------


def test_best_points_of_a_frontier_equal_brute_force_and_the_query(request_, cube):
    from engine.plot.fronts import best_points, frontier

    budget = 4 * GiB
    points = best_points(cube, f"mem_peak <= {budget}", maximize="params_total", over=["batch", "seq_len"])
    best = _brute_force(cube, budget, "params_total", ["d_model", "n_layers"])
    answer = run(request_, QuerySink(_query(request_, f"mem_peak <= {budget}", ["d_model", "n_layers"],
                                        maximize="params_total"))).dataset
    ends = {"d_model": ("bottom", "top"), "n_layers": ("top",)}
    for d in ("d_model", "n_layers"):
        np.testing.assert_array_equal(points[f"best_{d}"].transpose("batch", "seq_len").values, best[d])
        flags = points[f"at_edge_{d}"].transpose("batch", "seq_len")
        np.testing.assert_array_equal(flags.values, _flags(best[d], cube[d].values, ends[d]))
        np.testing.assert_array_equal(flags.values, answer[f"at_edge_{d}"].values)
        want = answer[f"at_edge_{d}"].attrs  # the same words and counts as the query's
        assert flags.attrs.keys() == want.keys() and all(np.array_equal(flags.attrs[k], want[k]) for k in want)
    assert points.sizes == frontier(cube, f"mem_peak <= {budget}", maximize="params_total",
                                    over=["batch", "seq_len"]).sizes


def test_best_points_of_a_dim_flag_its_top(cube):
    from engine.plot.fronts import best_points, frontier

    best = frontier(cube, "mem_peak <= 2GiB", maximize="seq_len", over="batch")
    points = best_points(cube, "mem_peak <= 2GiB", maximize="seq_len", over="batch")
    assert list(points.data_vars) == ["at_edge_seq_len"]  # the objective is its own answer
    top = cube.seq_len.values.max()
    assert (best == top).any() and ((best < top) & best.notnull()).any() and best.isnull().any()
    want = xr.where(best.isnull(), np.nan, (best == top).astype(float))
    np.testing.assert_array_equal(points["at_edge_seq_len"].values, want.values)
    assert points["at_edge_seq_len"].dims == best.dims


def _open_markers(ax) -> list:
    return [line for line in ax.lines if line.get_linestyle() == "None" and line.get_markerfacecolor() == "white"]


def test_a_frontier_plot_draws_points_on_an_edge_open(cube):
    import matplotlib

    matplotlib.use("Agg")
    import engine.plot  # noqa: F401

    small = cube.sel(d_model=768, n_layers=12)
    ax = small.llm.plot_frontier("mem_peak <= 8GiB", x="batch", maximize="seq_len")
    want = small.llm.frontier("mem_peak <= 8GiB", maximize="seq_len", over="batch")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), want.values)  # the line itself as before
    at_top = want.values == cube.seq_len.values.max()
    assert 0 < at_top.sum() < at_top.size
    (marks,) = _open_markers(ax)
    np.testing.assert_array_equal(marks.get_ydata(), want.values[at_top])
    legend = [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]
    assert legend == ["open marker: seq_len ≥ 2,048 (the top of the seq_len axis), the true answer may lie beyond"]
    ax = cube.sel(d_model=1024, n_layers=12).llm.plot_frontier("mem_peak <= 4GiB", x="batch", maximize="seq_len")
    assert not _open_markers(ax) and ax.get_legend() is None  # 1,024 tokens at most: nothing on an edge


def test_a_line_of_a_query_answer_draws_its_edge_points_open(request_):
    import matplotlib

    matplotlib.use("Agg")
    import engine.plot  # noqa: F401

    ds = run(request_, QuerySink(_query(request_, "mem_peak <= 4GiB", ["d_model", "n_layers"],
                                    maximize="params_total"))).dataset
    ax = ds.llm.line("params_total", x="seq_len", hue="batch")
    marks = _open_markers(ax)
    assert len(marks) == ds.sizes["batch"]  # one set per line, in its colour
    assert [m.get_color() for m in marks] == [line.get_color() for line in ax.lines if line not in marks]
    at_edge = np.fmax(ds.at_edge_d_model.values, ds.at_edge_n_layers.values) == 1
    assert sum(m.get_ydata().size for m in marks) == at_edge.sum() > 0
    legend = " ".join(t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts())
    assert "open marker: best d_model ≥ 1,536 (the top of the d_model axis)" in legend
