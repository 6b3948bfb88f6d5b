"""User errors at the command line: each is refused in one line on stderr with exit 2, naming what was wrong,
where, and what is valid (none escapes as a traceback or passes as silent nonsense)."""

from __future__ import annotations

import os
import re
import time

import pytest

from engine.cli import main


def refused(capsys, *argv) -> str:
    """Run ``llm-sweep ARGV`` in-process; assert one ``error:`` line and exit 2; return the line."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ": error: " in lines[0], err
    return lines[0]


CLAIM = 'formula_set = "seed"\n[values]\nd_model = 768\nn_layers = 12\nvocab = 50000\n' \
        '[[claim]]\nclaim = "x"\nexpr = "params_total"\n'


@pytest.mark.parametrize("claimed", ["nan", "inf", "-inf", "1e400"])
def test_non_finite_claimed_number_is_refused(claimed, tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(CLAIM + f"claimed = {claimed}\n")
    line = refused(capsys, "check", str(path))
    assert "claim[0].claimed: must be a finite number" in line and '"10**400"' in line


@pytest.mark.parametrize("key", ["abs_tol", "rel_tol"])
@pytest.mark.parametrize("tol", ["nan", "inf", "1e400"])
def test_non_finite_tolerance_is_refused(key, tol, tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(CLAIM + f"claimed = 1\n{key} = {tol}\n")
    assert f"claim[0].{key}: must be a non-negative finite number" in refused(capsys, "check", str(path))


@pytest.mark.parametrize("value, what", [("768.5", "d_model must be a positive integer, got 768.5"),
                                         ("nan", "d_model must be a positive integer, got nan"),
                                         ("inf", "d_model must be a positive integer, got inf"),
                                         ("0", "d_model must be a positive integer, got 0"),
                                         ('"768"', "d_model must be a positive integer, got '768'")])
def test_fractional_or_non_finite_size_in_claims_is_refused(value, what, tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(CLAIM.replace("d_model = 768", f"d_model = {value}") + "claimed = 1\n")
    assert f"claim[0].values.d_model: {what}" in refused(capsys, "check", str(path))


def test_claims_real_input_and_whole_float_still_read(tmp_path, capsys):
    """768.0 is the size 768 (as before); a real input (alpha) takes any positive finite number."""
    path = tmp_path / "c.toml"
    path.write_text(CLAIM.replace("d_model = 768", "d_model = 768.0") + "claimed = 123417600\n"
                    '[[claim]]\nclaim = "a"\nexpr = "alpha"\nclaimed = 0.07\nvalues = { alpha = 0.07 }\n')
    assert main(["check", str(path)]) == 0
    assert "2 hold, 0 wrong" in capsys.readouterr().out


@pytest.mark.parametrize("extra, key", [("values = 5", "claim[0].values"), ("options = 5", "claim[0].options")])
def test_claim_tables_of_the_wrong_type_are_refused(extra, key, tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(CLAIM + f"claimed = 1\n{extra}\n")
    assert f"{key}: must be a table" in refused(capsys, "check", str(path))


def _deep_json(levels: int) -> str:
    return '{"model_type": "llama", "x": ' + "[" * levels + "]" * levels + "}"


HF_COMMANDS = [["params"], ["memory", "--batch", "1", "--seq-len", "8"], ["flops", "--batch", "1", "--seq-len", "8"],
               ["time", "--gpu", "h100", "--gpus", "1", "--seq-len", "8", "--global-batch", "1"],
               # one recompute and one ZeRO stage: the flag is what is tested, not the search (12 kernels took 10 s)
               ["plan", "--gpu", "h100", "--gpus", "1", "--seq-len", "8", "--global-batch", "1", "--recompute",
                "full", "--zero", "0"], ["formulas"]]


@pytest.mark.parametrize("command", HF_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("levels", [100, 100_000])
def test_deeply_nested_config_json_is_refused_in_every_command(command, levels, tmp_path, capsys):
    """100,000 levels overflowed json's recursion (RecursionError in every command); 100 would reach code
    that walks the data recursively: both are refused when the file is read."""
    path = tmp_path / "config.json"
    path.write_text(_deep_json(levels))
    line = refused(capsys, command[0], "--hf-config", str(path), *command[1:])
    assert f"{path}: tables or lists nested more than 64 levels deep" in line


def test_a_config_json_nested_within_the_limit_is_read(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(_deep_json(63))
    assert main(["params", "--hf-config", str(path)]) == 0
    assert "6,738,415,616 parameters" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["run", "{}"], ["check", "{}"], ["open", "{}"],
                                  ["time", "--arch", "gpt2", "--gpu", "{}", "--gpus", "1", "--seq-len", "8",
                                   "--global-batch", "1"]], ids=lambda a: a[0])
def test_deeply_nested_toml_is_refused(argv, tmp_path, capsys):
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    line = refused(capsys, *[str(path) if a == "{}" else a for a in argv])
    assert "nested more than 64 levels deep" in line


def test_scaling_law_far_outside_its_fit_says_so(capsys):
    """1 FLOP asks the law for 0.05 parameters: 9 orders of magnitude below the runs it was fitted on. The answer
    stays (the law's value), with one note per quantity outside the fitted range and its source."""
    assert main(["flops", "--compute", "1"]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("  note: ")]
    assert len(notes) == 2
    assert "params 0.0477 is 9.2 orders of magnitude below the 70M to 16B the law was fitted on" in notes[0]
    assert "tokens 3.49 is 9.2 orders of magnitude below the 5B to 500B" in notes[1]
    assert "Besiroglu et al. 2024 §2" in notes[0] and "Hoffmann et al.'s Figure 4" in notes[0]


@pytest.mark.parametrize("law, source", [("chinchilla", "Hoffmann et al. 2022 (abstract, §3)"),
                                         ("chinchilla_tex", "Hoffmann et al. 2022 (abstract, §3)"),
                                         ("besiroglu", "Besiroglu et al. 2024 §2")])
def test_every_scaling_law_reports_its_fitted_range(law, source, capsys):
    import json

    assert main(["flops", "--compute", "1e20", "--scaling-law", law, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)["compute_optimal"]
    assert answer["fitted_range"]["params"] == [70e6, 16e9] and answer["fitted_range"]["tokens"] == [5e9, 500e9]
    assert answer["fitted_range"]["source"].startswith(source)
    inside = 70e6 <= answer["params"] <= 16e9 and 5e9 <= answer["tokens"] <= 500e9
    assert inside and answer["extrapolation"] == []  # 1e20 FLOPs: inside the runs of every fit
    assert main(["flops", "--compute", "5.76e23", "--scaling-law", law, "--json"]) == 0
    chinchilla = json.loads(capsys.readouterr().out)["compute_optimal"]  # Chinchilla's own budget: beyond the fit
    assert [n.split()[0] for n in chinchilla["extrapolation"]] == ["params", "tokens"]


@pytest.mark.parametrize("text, what", [
    ("-d_model", "-d_model can be <= 0 for positive inputs (d_model = 1 gives -1)"),
    ("d_model-n_heads", "d_model - n_heads can be <= 0 for positive inputs (d_model = 1, n_heads = 1 gives 0)"),
    ("Abs(d_model-5)", "(d_model = 5 gives 0)"),
    ("log(d_model)", "(d_model = 1 gives 0)"),
    ("0", "d_ff must be a positive integer, got 0"),
    ("0.5", "d_ff must be a positive integer, got 1/2"),
    ("d_model-d_model", "d_ff must be a positive integer, got 0"),
])
def test_non_physical_substitution_is_refused(text, what, capsys):
    line = refused(capsys, "formulas", "--substitute", f"d_ff={text}")
    assert f"--substitute: d_ff={text}: " in line and what in line


@pytest.mark.parametrize("argv", [["--substitute", "d_ff=4*d_model"], ["--substitute", "d_ff=8*d_model/3"],
                                  ["--substitute", "d_ff=ceiling(8*d_model/3)"],
                                  ["--substitute", "head_dim=d_model/n_heads", "--arch", "llama"],
                                  ["--substitute", "d_ff=max(d_model-5, 1)"], ["--substitute", "d_ff=sqrt(d_model)"],
                                  ["--substitute", "n_shared_experts=0", "--arch", "deepseek-v3"],
                                  ["--substitute", "n_shared_experts=n_layers-1", "--arch", "deepseek-v3"]])
def test_physical_substitutions_still_print(argv, capsys):
    """Positive for every positive input (a count that may be 0 may be 0): accepted as before."""
    assert main(["formulas", *argv]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", HF_COMMANDS, ids=lambda c: c[0])
def test_hf_config_never_means_a_preset(command, tmp_path, capsys, monkeypatch):
    """--hf-config gpt2 with no such file answered for the gpt2 preset (params, formulas) without a word."""
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, command[0], "--hf-config", "gpt2", *command[1:])
    assert f"llm-sweep {command[0]}: error: --hf-config: gpt2: no such file or folder; give a config.json or a " \
           "model folder holding one (a preset or family name goes with --arch)" == line


@pytest.mark.parametrize("command", HF_COMMANDS, ids=lambda c: c[0])
def test_hf_config_takes_a_model_folder(command, tmp_path, capsys, monkeypatch):
    """A model folder (a downloaded snapshot) is read through its config.json, in every command: the answer equals
    the file's. A folder named like a preset is the folder (here a Llama config in ./gpt2), never the preset."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text('{"model_type": "llama", "num_hidden_layers": 2}')
    answers = []
    for path in ("gpt2", "gpt2/config.json"):
        assert main([command[0], "--hf-config", path, *command[1:]]) == 0
        out = capsys.readouterr().out.replace("gpt2/config.json", "PATH").replace("gpt2", "PATH")
        answers.append(re.sub(r"; [0-9.]+ s$", "", out, flags=re.M))  # plan's search time
    assert answers[0] == answers[1]
    if command[0] == "params":
        assert "(llama)" in answers[0]


@pytest.mark.parametrize("command", HF_COMMANDS[:2], ids=lambda c: c[0])
def test_hf_config_folder_without_config_json_is_refused(command, tmp_path, capsys):
    line = refused(capsys, command[0], "--hf-config", str(tmp_path), *command[1:])
    assert f"error: --hf-config: {tmp_path}: a folder without config.json; give a config.json or the model " \
           "folder" in line


def test_a_sweep_with_no_valid_point_reports_it(run_cli, tmp_path):
    spec = tmp_path / "invalid.toml"
    spec.write_text('[sweep]\narch = "llama-2-7b"\n[axes]\nn_kv_heads = [3, 5]\n')
    r = run_cli("run", spec, "-o", tmp_path / "out.nc")
    assert r.returncode == 0, r.stderr
    assert "no valid grid point" in r.stdout and "n_kv_heads must divide n_heads" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["params", "--arch", "llama", "--option", "moe=true"], "needs n_experts,"),
    (["flops", "--compute", "-1"], "must be positive"),
    (["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--mfu", "2"], "from 0 to 1"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--tp", "2"], "korthikanti"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--sequence-parallel"], "korthikanti"),
    (["memory", "--arch", "gpt2", "--batch", "0", "--seq-len", "8"], "positive"),
])
def test_bad_flags_exit_2_with_one_line(run_cli, args, message):
    r = run_cli(*args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("args,message", [
    (["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--tokens", "1e9", "--peak-flops", "inf"], "finite"),
    (["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--mfu", "nan"], "finite"),
    (["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--tokens", "0.5", "--peak-flops", "1e15"],
     "at least 1"),
    (["flops", "--compute", "inf"], "finite"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--recompute", "selective"], "korthikanti"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--weights", "int4"], "inference"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--kv-dtype", "int8"], "inference"),
    (["memory", "--arch", "gpt2", "--mode", "inference", "--batch", "1", "--seq-len", "8", "--zero", "3"],
     "applies to training"),
    (["memory", "--arch", "gpt2", "--mode", "inference", "--batch", "1", "--seq-len", "8",
      "--memory-model", "korthikanti"], "applies to training"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8192"], "n_positions"),
    (["memory", "--hf-config", "/tmp", "--batch", "1", "--seq-len", "8"], "--hf-config"),
])
def test_more_bad_flags_exit_2(run_cli, args, message):
    r = run_cli(*args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_distributed_without_a_cluster_names_what_jax_reads(tmp_path, monkeypatch, run_cli, tiny, one_line_error):
    for var in [v for v in os.environ if v.startswith(("SLURM_", "OMPI_", "JAX_COORDINATOR", "KUBERNETES_"))]:
        monkeypatch.delenv(var)
    spec = tiny(tmp_path)
    result = run_cli("run", spec, "--distributed")
    code, err = result.returncode, result.stderr
    line = one_line_error(err)
    assert code == 2 and "cannot join a cluster" in line
    for name in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "JAX_COORDINATOR_ADDRESS", "--coordinator"):
        assert name in line
    assert not (tmp_path / "spec.nc").exists()


@pytest.mark.parametrize("argv,message", [
    (["--distributed", "--part", "0/2"], "give one or the other"),
    (["--coordinator", "10.0.0.1:1234"], "applies only with --distributed"),
    (["--distributed", "--coordinator", "10.0.0.1:1234"], "needs --num-processes N and --process-id I"),
    (["--distributed", "--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "from 0 to 1"),
    (["--max-device-mem", "32"], "below one grid row"),
])
def test_run_flag_combinations_that_are_refused(tmp_path, argv, message, run_cli, tiny, one_line_error):
    result = run_cli("run", tiny(tmp_path), *argv)
    code, err = result.returncode, result.stderr
    assert code == 2 and message in one_line_error(err)


@pytest.mark.parametrize("argv,message", [
    (["formulas", "--arch", "gpt2", "--hf-config", "x.json"], "not allowed with argument --arch"),
    (["formulas", "--arch", "seed", "--with-sizes"], "a formula set with no sizes"),
    (["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--tokens", "1e9"], "needs --peak-flops"),
    (["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--peak-flops", "1e15"], "needs --tokens"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--mode", "inference", "--optimizer", "sgd"],
     "applies to --mode training"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--vp", "2"], "give --pp > 1"),
])
def test_options_that_would_be_ignored_are_refused(argv, message, run_cli, one_line_error):
    result = run_cli(*argv)  # argparse's own refusals too: one line (issue 23)
    code, err = result.returncode, result.stderr
    assert code == 2 and message in one_line_error(err)


def test_a_claim_whose_values_explode_is_refused_at_once(tmp_path, run_cli, one_line_error):
    path = tmp_path / "c.toml"
    path.write_text('formula_set = "seed"\n[values]\nd_model = 1000000000\n'
                    '[[claim]]\nclaim = "x"\nclaimed = 1\nexpr = "d_model**d_model"\n')
    t0 = time.perf_counter()
    result = run_cli("check", path)
    code, err = result.returncode, result.stderr
    assert code == 2 and "more than 4000 digits" in one_line_error(err)
    assert time.perf_counter() - t0 < 5
