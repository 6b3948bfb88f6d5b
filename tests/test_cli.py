"""The command line end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_run_writes_the_cube_and_prints_a_summary(small_spec, tmp_path):
    out = tmp_path / "small.nc"
    r = cli("run", small_spec, "-o", out)
    assert r.returncode == 0, r.stderr
    for word in ("dims", "d_model=3 x n_layers=4 x batch=4 x seq_len=2", "points    96", "points/s",
                 "file", "params_total", "mem_peak", "min", "max"):
        assert word in r.stdout, word
    ds = xr.open_dataset(out)
    assert ds["params_total"].sel(d_model=768, n_layers=12, batch=1, seq_len=256).item() == 123_417_600
    ds.close()


def test_run_default_output_name_and_quiet(small_spec, tmp_path):
    r = cli("run", small_spec, "--quiet", "--precision", "fast", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    ds = xr.open_dataset(tmp_path / "spec.nc")
    assert ds.attrs["precision"] == "fast" and str(ds["params_total"].dtype) == "float32"
    ds.close()


@pytest.mark.parametrize("text,key", [
    ("[sweep]\nformula_set = 'seed'\n[axes]\nd_model = [-1]\n", "axes.d_model"),
    ("[sweep]\nformula_set = 'seed'\n[fixed]\nvocab = 5\n[axes]\nd_model = []\n", "axes.d_model"),
    ("[sweep]\nformula_set = 'seed'\n[fixed]\nvocab = 5\n[axes]\nwidth = [8]\n", "axes.width"),
    ("[sweep]\nformula_set = 'seed'\nfoo = 1\n[axes]\nd_model = [8]\n", "sweep.foo"),
    ("[sweep\n", ""),
])
def test_bad_spec_exits_2_with_one_line_and_no_file(write_spec, tmp_path, text, key):
    spec = write_spec(text, "bad.toml")
    out = tmp_path / "out.nc"
    r = cli("run", spec, "-o", out)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.toml" in lines[0] and key in lines[0], r.stderr
    assert "valid" in lines[0] or "TOML" in lines[0] or "empty" in lines[0] or "positive" in lines[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_missing_spec_and_bad_output_folder(small_spec, tmp_path):
    r = cli("run", tmp_path / "nope.toml")
    assert r.returncode == 2 and "no such file" in r.stderr
    r = cli("run", small_spec, "-o", tmp_path / "no" / "dir.nc")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_check_reports_the_articles_errors():
    r = cli("check", REPO / "sweeps" / "seed-claims.toml")
    assert r.returncode == 1
    assert "WRONG" in r.stdout and "4,719,616" in r.stdout and "4,722,432" in r.stdout
    r = cli("check", REPO / "sweeps" / "seed-claims.toml", "--json")
    assert r.returncode == 1
    rows = json.loads(r.stdout)
    assert all(set(row) == {"claim", "claimed", "derived", "ok"} for row in rows)
    total = next(row for row in rows if row["claim"].startswith("Total model parameters"))
    assert total == {"claim": total["claim"], "claimed": 123_383_808, "derived": 123_417_600, "ok": False}


def test_check_exits_0_when_every_claim_holds(write_spec):
    path = write_spec("""
        formula_set = "seed"
        [[claim]]
        claim = "GPT-2-like layer"
        claimed = 7084800
        expr = "params_layer"
        values = { d_model = 768 }
    """, "ok.toml")
    r = cli("check", path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 hold, 0 wrong" in r.stdout


@pytest.mark.parametrize("fmt,marker", [("text", "params_ffn [1]"), ("latex", r"\begin{align}"),
                                        ("markdown", "| quantity | formula |")])
def test_formulas_in_every_format(fmt, marker):
    r = cli("formulas", "--arch", "seed", "--format", fmt)
    assert r.returncode == 0, r.stderr
    assert marker in r.stdout
    assert "seed article" in r.stdout  # sources are carried into the output
    assert "d_model" in r.stdout or r"d_{\mathrm{model}}" in r.stdout


def test_formulas_expand_and_options():
    r = cli("formulas", "--expand")
    assert "= 12*d_model**2 + 9*d_model" in r.stdout  # params_layer with d_ff = 4 d_model
    r = cli("formulas", "--option", "tied_head=false")
    assert "params_output [1]" in r.stdout and "= d_model*vocab" in r.stdout.split("params_output [1]")[1]
    r = cli("formulas", "--option", "tied=false")
    assert r.returncode == 2 and "valid options: tied_head" in r.stderr


def test_version_and_usage_errors():
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("llm-sweep ")
    r = cli("formulas", "--format", "pdf")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_the_default_sweep_runs_as_the_readme_says(tmp_path):
    # README's first command runs exactly this: the default spec, >= 10^6 points, to seed.nc.
    r = cli("run", REPO / "sweeps" / "seed.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "points    1,728,000" in r.stdout
    ds = xr.open_dataset(tmp_path / "seed.nc")
    assert ds.sizes == {"d_model": 125, "n_layers": 48, "batch": 9, "seq_len": 32}
    assert ds["params_total"].sel(d_model=768, n_layers=12, batch=1, seq_len=256).item() == 123_417_600
    ds.close()


def test_run_with_an_on_device_query(small_spec, tmp_path):
    out = tmp_path / "q.nc"
    r = cli("run", small_spec, "-o", out, "--where", "mem_peak <= 4GiB", "--maximize", "params_total",
            "--over", "d_model,n_layers", "--max-device-mem", "2KiB")
    assert r.returncode == 0, r.stderr
    assert "query     max of params_total over d_model, n_layers subject to mem_peak <= 4GiB" in r.stdout
    assert "chunks" in r.stdout
    with xr.open_dataset(out) as ds:
        assert set(ds.dims) == {"batch", "seq_len"}
        assert set(ds.data_vars) == {"n_feasible", "params_total", "best_d_model", "best_n_layers"}
        assert ds.attrs["query"].startswith("max of params_total")


@pytest.mark.parametrize("args,message", [
    (["--where", "mem_peak <= 4 lightyears", "--over", "d_model"], "cannot read"),
    (["--maximize", "params_total", "--over", "width"], "not a swept axis"),
    (["--max-device-mem", "lots"], "--max-device-mem"),
])
def test_bad_run_flags_exit_2_without_output(small_spec, tmp_path, args, message):
    out = tmp_path / "x.nc"
    r = cli("run", small_spec, "-o", out, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not out.exists()
