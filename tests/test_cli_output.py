"""What the commands print: sizes and units, a closed pipe, the notes for renamed keys and flags, and the
preset a cube records."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from engine.errors import SpecError
from engine.request.spec import parse_spec


def test_formulas_of_a_preset_show_its_sizes_and_evaluate_them(run_cli):
    result = run_cli("formulas", "--arch", "llama-2-7b", "--with-sizes")
    code, out = result.returncode, result.stdout
    assert code == 0
    assert "Values: d_model = 4096" in out
    assert "params_total            6,738,415,616 [1]" in out
    result = run_cli("formulas", "--arch", "llama-2-7b", "--format", "latex")
    code, out = result.returncode, result.stdout
    assert code == 0 and "\\noindent Sizes: $d_{\\mathrm{model}} = 4096$" in out


def test_flops_prints_units(run_cli):
    result = run_cli("flops", "--arch", "gpt2", "--batch", "4", "--seq-len", "1024", "--tokens", "1e9",
                     "--peak-flops", "1e15")
    code, out = result.returncode, result.stdout
    assert code == 0
    assert "FLOP per token" in out and "FLOP per step" in out
    assert "train_seconds" in out and " s  (28.5 minutes)" in out


def test_a_closed_pipe_is_not_an_error(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m engine formulas --arch llama-2-7b | head -1", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert proc.stderr == "" and proc.stdout.startswith("Formula set")


def test_the_old_precision_key_and_flag_still_work_with_a_note(tmp_path, run_cli, tiny):
    spec = tiny(tmp_path, extra='precision = "fast"')
    result = run_cli("run", spec, "-o", tmp_path / "a.nc", "--quiet")
    code, err = result.returncode, result.stderr
    assert code == 0 and err.strip() == (f"llm-sweep run: note: {spec}: sweep.precision is now sweep.numerics "
                                         "(exact or fast); the old key is read for now")
    import xarray as xr

    with xr.open_dataset(tmp_path / "a.nc") as ds:
        assert ds.attrs["numerics"] == "fast" and ds["params_total"].dtype == np.float32
    result = run_cli("run", tiny(tmp_path, "b.toml"), "-o", tmp_path / "b.nc", "--quiet", "--precision", "fast")
    code, err = result.returncode, result.stderr
    assert code == 0 and "note: --precision exact|fast is now --numerics" in err
    with pytest.raises(SpecError, match="give sweep.numerics only"):
        parse_spec({"sweep": {"formula_set": "seed", "numerics": "fast", "precision": "fast"},
                    "fixed": {"vocab": 5, "batch": 1, "seq_len": 2}, "axes": {"d_model": [8], "n_layers": [1]}})


def test_an_arch_cube_records_the_preset_it_came_from(tmp_path, run_cli):
    spec = tmp_path / "a.toml"
    spec.write_text('[sweep]\narch = "llama-2-7b"\nquantities = ["params_total"]\n[axes]\nn_layers = [16, 32]\n')
    assert run_cli("run", spec, "-o", tmp_path / "a.nc", "--quiet").returncode == 0
    import xarray as xr

    with xr.open_dataset(tmp_path / "a.nc") as ds:
        assert ds.attrs["arch"] == "llama-2-7b" and ds.attrs["formula_set"] == "llama"
