"""The command registry (``engine.commands``): one module per command, its flags read from the option records,
one spelling per concept, old spellings still read."""

from __future__ import annotations

import argparse
import json

import pytest

from engine.cli import _parser
from engine.commands import COMMANDS, command
from engine.options import MEMORY_OPTIONS

TIME = ["time", "--arch", "gpt2", "--gpu", "h100", "--gpus", "2", "--seq-len", "64", "--global-batch", "4",
        "--json"]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    return dict(next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)


def test_the_parser_has_one_subcommand_per_registered_module_in_order():
    assert list(_subparsers()) == list(COMMANDS)
    for name in COMMANDS:
        module = command(name)
        assert module.__name__ == f"engine.commands.{name.replace('-', '_')}"  # serve-plan: serve_plan.py
        assert callable(module.add_parser) and callable(module.main), name
    with pytest.raises(KeyError, match="unknown command 'memroy'; valid: run, formulas"):
        command("memroy")


@pytest.mark.parametrize("name", COMMANDS)
def test_a_flag_of_a_memory_option_offers_the_records_choices(name):
    """time and plan re-typed the recompute, ZeRO, attention and mode lists; every command now reads them from
    engine.options (a flag with aliases, --precision, is checked by the record instead of argparse)."""
    for action in _subparsers()[name]._actions:
        spec = MEMORY_OPTIONS.get(action.dest)
        if spec is not None and action.option_strings and action.choices is not None:
            assert tuple(action.choices) == spec.choices, (name, action.dest)


def test_time_takes_batch_as_memory_does_and_reads_micro_batch_with_a_note(run_cli):
    new, old = run_cli(*TIME, "--batch", "2"), run_cli(*TIME, "--micro-batch", "2")
    assert new.returncode == old.returncode == 0, (new.stderr, old.stderr)
    assert json.loads(new.stdout) == json.loads(old.stdout)
    assert json.loads(new.stdout)["layout"]["micro_batch"] == 2  # the output's keys are unchanged
    assert new.stderr == ""
    assert old.stderr == "llm-sweep time: note: --micro-batch is now --batch (--micro-batch is read for now)\n"
    assert json.loads(run_cli(*TIME).stdout)["layout"]["micro_batch"] == 1  # the default
    help_text = run_cli("time", "--help").stdout
    assert "--batch M" in help_text and "--micro-batch" not in help_text


def test_a_bad_batch_of_time_is_refused_in_the_flag_given(run_cli):
    for flag in ("--batch", "--micro-batch"):
        r = run_cli(*TIME, flag, "0")
        assert (r.returncode, r.stderr) == (2, "llm-sweep time: error: --batch: 0: must be a positive integer\n")
    r = run_cli(*TIME, "--mode", "inference", "--batch", "2")  # serving is its own command
    assert r.stderr.startswith("llm-sweep time: error: --mode: inference: serving is timed by llm-sweep serve")


def test_time_keeps_its_own_defaults_and_says_so(run_cli):
    """ZeRO 1 and the stack's attention kernel on the device (a tuned Megatron-Core run: cuDNN fused attention on
    Hopper, FlashAttention-2 on Ampere), where memory's defaults are 0 and sdpa."""
    assert MEMORY_OPTIONS["zero"].default == 0 and MEMORY_OPTIONS["attention"].default == "sdpa"
    default = json.loads(run_cli(*TIME).stdout)
    kernel = "cudnn" if "h100" in TIME[TIME.index("--gpu") + 1] else "flash"
    assert default == json.loads(run_cli(*TIME, "--zero", "1", "--attention", kernel, "--stack",
                                         "megatron-core").stdout)
    assert default != json.loads(run_cli(*TIME, "--zero", "0").stdout)
    help_text = " ".join(run_cli("time", "--help").stdout.split())
    assert "default here 1: Megatron's distributed optimizer (memory's default is 0)" in help_text
    assert "default here: the stack's kernel on the device" in help_text


def test_run_reads_its_old_numerics_flag(run_cli, small_spec, tmp_path):
    r = run_cli("run", small_spec, "-o", tmp_path / "a.nc", "--quiet", "--precision", "fast")
    assert r.returncode == 0 and r.stderr == ("llm-sweep run: note: --precision exact|fast is now --numerics "
                                              "(--precision is read for now)\n")
    assert "--precision" not in run_cli("run", "--help").stdout


@pytest.mark.parametrize("argv,close", [
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--precision", "bf17"], "bf16"),
    (TIME + ["--precision", "bf16-amx"], "bf16-amp"),
    (TIME + ["--recompute", "ful"], "full"),
    (["plan", "--arch", "gpt2", "--gpu", "h100", "--gpus", "1", "--seq-len", "8", "--global-batch", "1",
      "--recompute", "selectiv"], "selective"),
])
def test_an_unknown_flag_value_names_the_closest(run_cli, argv, close):
    """Once: argparse's choices through commands.parsing, an aliased option's value through its record's check
    (engine.options), which the command does not guess again."""
    r = run_cli(*argv)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.count("did you mean") == 1, r.stderr
    if "invalid choice" in r.stderr:
        assert r.stderr.endswith(f"did you mean {close}? (see llm-sweep {argv[0]} --help)\n"), r.stderr
    else:
        assert r.stderr.endswith(f"(did you mean '{close}'?)\n"), r.stderr


INFERENCE = ["memory", "--arch", "gpt2", "--mode", "inference", "--batch", "2", "--seq-len", "64", "--json"]


def test_weight_dtype_is_the_option_and_weights_its_old_spelling(run_cli):
    new, old = run_cli(*INFERENCE, "--weight-dtype", "int4"), run_cli(*INFERENCE, "--weights", "int4")
    assert new.returncode == old.returncode == 0, (new.stderr, old.stderr)
    assert json.loads(new.stdout) == json.loads(old.stdout)
    assert new.stderr == ""
    assert "--weights fp8|int8|int4|nvfp4|mxfp4 is now --weight-dtype" in old.stderr
    base = json.loads(run_cli(*INFERENCE).stdout)
    assert json.loads(new.stdout)["breakdown"]["weights"] < base["breakdown"]["weights"]


def test_the_dtype_flags_are_the_spec_options(run_cli):
    """--kv-dtype and --weight-dtype are the options kv_dtype and weight_dtype: their bits, their rules."""
    fp8 = json.loads(run_cli(*INFERENCE, "--kv-dtype", "fp8").stdout)
    assert fp8["breakdown"]["kv_cache"] * 2 == json.loads(run_cli(*INFERENCE).stdout)["breakdown"]["kv_cache"]
    r = run_cli("memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--weight-dtype", "int8")
    assert r.returncode == 2 and "weight_dtype int8 applies to mode inference" in r.stderr
