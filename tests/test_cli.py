"""The command line end to end: ``engine.cli.main`` in-process (the ``run_cli`` fixture), and a few
runs of the console script itself in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[1]


def console(*args, cwd=None):
    """The console script in its own interpreter (``python -m engine`` runs ``entry()``)."""
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_run_writes_the_cube_and_prints_a_summary(run_cli, small_spec, tmp_path):
    out = tmp_path / "small.nc"
    r = run_cli("run", small_spec, "-o", out)
    assert r.returncode == 0, r.stderr
    for word in ("dims", "d_model=3 x n_layers=4 x batch=4 x seq_len=2", "points    96", "points/s",
                 "file", "params_total", "mem_peak", "min", "max"):
        assert word in r.stdout, word
    ds = xr.open_dataset(out)
    assert ds.sel(d_model=768, n_layers=12, batch=1, seq_len=256)["params_total"].item() == 123_417_600
    ds.close()


def test_run_default_output_name_and_quiet(run_cli, small_spec, tmp_path):
    r = run_cli("run", small_spec, "--quiet", "--numerics", "fast", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    ds = xr.open_dataset(tmp_path / "spec.nc")
    assert ds.attrs["numerics"] == "fast" and str(ds["params_total"].dtype) == "float32"
    ds.close()


@pytest.mark.parametrize("text,key,message", [
    ("[sweep]\nformula_set = 'seed'\n[axes]\nd_model = [-1]\n", "axes.d_model",
     "d_model must be a positive integer, got -1"),
    ("[sweep]\nformula_set = 'seed'\n[fixed]\nvocab = 5\n[axes]\nd_model = []\n", "axes.d_model",
     "is empty; an axis needs at least one value"),
    ("[sweep]\nformula_set = 'seed'\n[fixed]\nvocab = 5\n[axes]\nwidth = [8]\n", "axes.width",
     "unknown input 'width'; valid inputs: d_model, n_layers,"),
    ("[sweep]\nformula_set = 'seed'\nfoo = 1\n[axes]\nd_model = [8]\n", "sweep.foo",
     "unknown key; valid keys: formula_set, arch, quantities,"),
    ("[sweep\n", None, "not valid TOML: "),
], ids=["negative", "empty", "unknown-input", "unknown-key", "bad-toml"])
def test_bad_spec_exits_2_with_one_line_and_no_file(run_cli, write_spec, tmp_path, text, key, message):
    spec = write_spec(text, "bad.toml")
    out = tmp_path / "out.nc"
    r = run_cli("run", spec, "-o", out)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    where = f"{spec}: {key}: " if key else f"{spec}: "
    assert lines[0].startswith(f"llm-sweep run: error: {where}{message}"), lines[0]
    if key is None:
        assert "(at line 1, column " in lines[0]  # the TOML error says where
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_bad_spec_through_the_console_script(write_spec, tmp_path):
    # the same one-line error and exit status 2 from the installed entry point, in its own process
    spec = write_spec("[sweep]\nformula_set = 'seed'\n[axes]\nd_model = [-1]\n", "bad.toml")
    r = console("run", spec, "-o", tmp_path / "out.nc")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"llm-sweep run: error: {spec}: axes.d_model: d_model must be a positive integer, got -1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_missing_spec_and_bad_output_folder(run_cli, small_spec, tmp_path):
    r = run_cli("run", tmp_path / "nope.toml")
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run_cli("run", small_spec, "-o", tmp_path / "no" / "dir.nc")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_check_reports_the_articles_errors(run_cli):
    r = run_cli("check", REPO / "sweeps" / "seed-claims.toml")
    assert r.returncode == 1
    assert "WRONG" in r.stdout and "4,719,616" in r.stdout and "4,722,432" in r.stdout
    r = run_cli("check", REPO / "sweeps" / "seed-claims.toml", "--json")
    assert r.returncode == 1
    rows = json.loads(r.stdout)
    assert all(set(row) == {"claim", "claimed", "derived", "ok"} for row in rows)
    total = next(row for row in rows if row["claim"].startswith("Total model parameters"))
    assert total == {"claim": total["claim"], "claimed": 123_383_808, "derived": 123_417_600, "ok": False}


def test_check_exits_0_when_every_claim_holds(run_cli, write_spec):
    path = write_spec("""
        formula_set = "seed"
        [[claim]]
        claim = "GPT-2-like layer"
        claimed = 7084800
        expr = "params_layer"
        values = { d_model = 768 }
    """, "ok.toml")
    r = run_cli("check", path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 hold, 0 wrong" in r.stdout


@pytest.mark.parametrize("fmt,marker,embedding", [
    ("text", "params_ffn [1]", "  = d_model*vocab\n"),
    ("latex", r"\begin{align}", r"P_{\mathrm{embedding}} &= d_{\mathrm{model}} \cdot V \\"),
    ("markdown", "| quantity | formula |",
     r"| `params_embedding` | $P_{\mathrm{embedding}} = d_{\mathrm{model}} \cdot V$ | 1 |"),
], ids=["text", "latex", "markdown"])
def test_formulas_in_every_format(run_cli, fmt, marker, embedding):
    r = run_cli("formulas", "--arch", "seed", "--format", fmt)
    assert r.returncode == 0, r.stderr
    assert marker in r.stdout
    assert "seed article" in r.stdout  # sources are carried into the output
    assert embedding in r.stdout  # the embedding formula, written the way this format writes it


def test_formulas_expand_and_options(run_cli):
    r = run_cli("formulas", "--expand")
    assert r.returncode == 0, r.stderr
    assert "= 12*d_model**2 + 9*d_model" in r.stdout  # params_layer with d_ff = 4 d_model
    r = run_cli("formulas", "--option", "tied_head=false")
    assert r.returncode == 0, r.stderr
    assert "params_output [1]" in r.stdout and "= d_model*vocab" in r.stdout.split("params_output [1]")[1]
    r = run_cli("formulas", "--option", "tied=false")
    assert r.returncode == 2 and "valid options: tied_head" in r.stderr


def test_version_and_usage_errors(run_cli):
    import engine

    r = run_cli("--version")
    assert (r.returncode, r.stdout) == (0, f"llm-sweep {engine.__version__}\n")
    r = run_cli("formulas", "--format", "pdf")
    assert r.returncode == 2 and "argument --format: invalid choice: 'pdf'" in r.stderr


def test_the_default_sweep_runs_as_the_readme_says(run_cli, tmp_path):
    # README's first command runs exactly this: the default spec, >= 10^6 points, to seed.nc.
    r = run_cli("run", REPO / "sweeps" / "seed.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "points    1,728,000" in r.stdout
    ds = xr.open_dataset(tmp_path / "seed.nc")
    assert ds.sizes == {"d_model": 125, "n_layers": 48, "batch": 9, "seq_len": 32}
    assert ds.sel(d_model=768, n_layers=12, batch=1, seq_len=256)["params_total"].item() == 123_417_600
    ds.close()


def test_run_with_an_on_device_query(run_cli, small_spec, tmp_path):
    out = tmp_path / "q.nc"
    r = run_cli("run", small_spec, "-o", out, "--where", "mem_peak <= 4GiB", "--maximize", "params_total",
                "--over", "d_model,n_layers", "--max-device-mem", "2KiB")
    assert r.returncode == 0, r.stderr
    assert "query     max of params_total over d_model, n_layers subject to mem_peak <= 4GiB" in r.stdout
    assert "chunks" in r.stdout
    with xr.open_dataset(out) as ds:
        assert set(ds.dims) == {"batch", "seq_len"}
        assert set(ds.data_vars) == {"n_feasible", "params_total", "best_d_model", "best_n_layers", "at_edge_d_model",
                                     "at_edge_n_layers"}
        assert ds.attrs["query"].startswith("max of params_total")


@pytest.mark.parametrize("args,message", [
    (["--where", "mem_peak <= 4 lightyears", "--over", "d_model"], "cannot read"),
    (["--maximize", "params_total", "--over", "width"], "not a swept axis"),
    (["--max-device-mem", "lots"], "--max-device-mem"),
])
def test_bad_run_flags_exit_2_without_output(run_cli, small_spec, tmp_path, args, message):
    out = tmp_path / "x.nc"
    r = run_cli("run", small_spec, "-o", out, *args)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert r.stderr.startswith("llm-sweep run: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr, r.stderr
    assert not out.exists()


@pytest.mark.parametrize("args,line", [
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--bacth", "2"],
     "llm-sweep memory: error: unrecognized argument: --bacth 2 (did you mean --batch?) (see llm-sweep memory --help)"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--jsn", "extra"],
     "llm-sweep memory: error: unrecognized arguments: --jsn (did you mean --json?), extra "
     "(see llm-sweep memory --help)"),
    (["plan", "--arch", "gpt2", "--gpu", "h100", "--gpus", "1", "--seq-len", "8", "--global-batch", "1",
      "--top-k=3"], "llm-sweep plan: error: unrecognized argument: --top-k=3 (did you mean --top?) "
                    "(see llm-sweep plan --help)"),
    (["run"], "llm-sweep run: error: the following arguments are required: spec (see llm-sweep run --help)"),
    (["time", "--arch", "gpt2", "--gpu", "h100", "--gpus", "x"],
     "llm-sweep time: error: argument --gpus: invalid int value: 'x' (see llm-sweep time --help)"),
    (["run", "x.toml", "--numerics"],
     "llm-sweep run: error: argument --numerics: expected one argument (see llm-sweep run --help)"),
    (["memroy"], "llm-sweep: error: argument COMMAND: invalid choice: 'memroy' (choose from 'run', 'formulas', "
                 "'combine', 'params', 'memory', 'flops', 'time', 'serve', 'serve-plan', 'plan', 'plot', 'open', "
                 "'check'); did you mean memory? (see llm-sweep --help)"),
    ([], "llm-sweep: error: the following arguments are required: COMMAND (see llm-sweep --help)"),
], ids=["misspelt-flag", "unknown-flag-and-word", "flag=value", "missing-positional", "bad-int", "missing-value",
        "misspelt-command", "no-command"])
def test_parser_errors_are_one_line_naming_the_command(run_cli, args, line):
    """argparse printed its usage and then the error (two lines or more), and an unknown flag after a command
    named the top-level usage (issue 23); the usage is one --help away."""
    r = run_cli(*args)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", line + "\n")


def test_parser_error_through_the_console_script():
    r = console("memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--bogus")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "llm-sweep memory: error: unrecognized argument: --bogus (see llm-sweep memory --help)\n"
    r = console("memory", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: llm-sweep memory ") and "--batch B" in r.stdout


def test_help_loads_no_sympy_numpy_or_jax():
    """``llm-sweep --help`` and every command's ``--help`` build the parser from pure data (engine.options): a
    fresh interpreter (the thing tested: what a help imports) answers them all without sympy, numpy or JAX
    (issue 20; benchmarks/help_speed.py times them)."""
    code = ("import sys\nfrom engine.cli import _parser, main\n"
            "sub = next(a for a in _parser()._actions if a.dest == 'command')\n"
            "for argv in ([], *([c] for c in sub.choices)):\n"
            "    try:\n        main([*argv, '--help'])\n    except SystemExit as exc:\n        assert exc.code == 0\n"
            "print(sorted(sub.choices))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sympy', 'numpy', 'jax', 'xarray'}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    *helps, commands, heavy = r.stdout.splitlines()
    assert "'memory'" in commands and "'plan'" in commands
    assert sum(line.startswith("usage: llm-sweep") for line in helps) == len(eval(commands)) + 1
    assert heavy == "[]"
