"""One default per concept (issue 23 item 5): the CLI, specs and the Python API answer one question alike.

The default precision is defined once (``DEFAULT_PRECISION``, engine/options/precision.py) and
documented once (README, "Memory and compute"); every entry point reads it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import engine
from engine.cli import main
from engine.errors import LlmSweepNote
from engine.options import DEFAULT_PRECISION, MEMORY_OPTIONS as OPTIONS, PRECISION_ALIASES, MemoryOptions

README = Path(__file__).resolve().parents[1] / "README.md"


def cli_json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_one_definition():
    assert DEFAULT_PRECISION == "bf16"
    assert MemoryOptions().precision == OPTIONS["precision"].default == DEFAULT_PRECISION
    assert engine.memory_options().precision == engine.memory_options(mode="inference").precision == "bf16"


def test_memory_options_defaults_are_the_option_specs():
    """MemoryOptions() (the Python API) and the OptionSpecs (CLI help, specs) name the same default for every
    option, so no entry point can drift from the others again."""
    from dataclasses import fields

    assert {f.name: getattr(MemoryOptions(), f.name) for f in fields(MemoryOptions)} == \
        {name: spec.default for name, spec in OPTIONS.items()}


def test_readme_documents_the_default_once():
    text = README.read_text()
    assert len(re.findall(r"default\s+precision is `bf16`", text)) == 1
    assert "fp32 for training, bf16 for inference" not in text


@pytest.mark.parametrize("mode", ["training", "inference"])
def test_memory_cli_spec_and_python_agree(mode, capsys, tmp_path):
    """Llama-2-7B at 1 x 4,096 tokens: inference 15.9 GB in all three (the Python API said 31.9 GB, fp32);
    training the same bf16 peak in all three (`memory` trained in fp32 while `time` and `plan` used bf16)."""
    values = {"batch": 1, "seq_len": 4096}
    arch = engine.architecture("llama-2-7b")
    python = engine.memory_estimate(arch, engine.memory_options(mode=mode), values)["peak"]
    cli = cli_json(capsys, "memory", "--arch", "llama-2-7b", "--batch", "1", "--seq-len", "4096", "--mode", mode,
                   "--json")["peak"]
    spec = tmp_path / "s.toml"
    spec.write_text(f'[sweep]\narch = "llama-2-7b"\nquantities = ["mem_peak"]\n[options]\nmode = "{mode}"\n'
                    '[fixed]\nbatch = 1\nseq_len = 4096\n[axes]\nn_layers = [32]\n')
    cube = engine.run(engine.load_spec(spec)).dataset
    assert "precision = 'bf16'" in cube.attrs["options"]
    in_cube = int(cube["mem_peak"].values.ravel()[0])
    assert python == cli == pytest.approx(in_cube, abs=1)
    explicit = engine.memory_estimate(arch, engine.memory_options(mode=mode, precision="bf16"), values)["peak"]
    assert python == explicit
    if mode == "inference":
        assert python == 15_928_401_920  # 15.9 GB, as before in the CLI and specs


def test_training_default_is_what_time_and_plan_use(capsys):
    """time's memory peak at dp 1 equals memory's korthikanti peak with the defaults of both."""
    t = cli_json(capsys, "time", "--arch", "gpt2", "--gpu", "h100", "--gpus", "1", "--seq-len", "1024",
                 "--global-batch", "1", "--zero", "0", "--json")
    m = cli_json(capsys, "memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "1024", "--memory-model",
                 "korthikanti", "--attention", "flash", "--json")
    assert t["mem_peak"] == m["peak"]


@pytest.mark.parametrize("alias, canonical", PRECISION_ALIASES)
def test_every_precision_alias_in_every_command(alias, canonical, capsys):
    """bf16-amp (and Lightning's names) read as their canonical precision in memory, flops, time and plan
    alike (plan raised a ValueError traceback for bf16-amp)."""
    fp8 = canonical == "fp8"
    same = ["--arch", "gpt2", "--batch", "1", "--seq-len", "64", "--json"] + (
        ["--memory-model", "korthikanti", "--zero", "1", "--dp", "2"] if fp8 else [])
    for command in ("memory", "flops"):
        assert cli_json(capsys, command, *same, "--precision", alias) == \
            cli_json(capsys, command, *same, "--precision", canonical)
    run = ["--arch", "gpt2", "--gpu", "h100", "--gpus", "2", "--seq-len", "64", "--global-batch", "2", "--json"]
    assert cli_json(capsys, "time", *run, "--precision", alias) == \
        cli_json(capsys, "time", *run, "--precision", canonical)
    search = run + ["--top", "1", "--zero", "1", "--recompute", "none"]
    a, c = (cli_json(capsys, "plan", *search, "--precision", p)["layouts"] for p in (alias, canonical))
    assert a == c and a


@pytest.mark.parametrize("command", ["time", "plan"])
def test_unknown_precision_is_refused_in_the_flags_name(command, capsys):
    code = main([command, "--arch", "gpt2", "--gpu", "h100", "--gpus", "1", "--seq-len", "64", "--global-batch", "1",
                 "--precision", "bf17"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"llm-sweep {command}: error: --precision: bf17: option 'precision' must be one of" in err[0]
    assert "'bf16-amp' = 'bf16-mixed'" in err[0]


def test_device_peak_reads_the_aliases():
    from engine.catalog.hardware import device

    h100 = device("h100")
    for alias, canonical in PRECISION_ALIASES:
        assert h100.values(alias) == h100.values(canonical)


def _readme_device() -> tuple[str, list[str]]:
    """The README's custom device file, verbatim, and the command line its first comment gives."""
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    block = next(b for b in blocks if b.startswith("# my-gpu.toml:"))
    command = block.splitlines()[0].split("llm-sweep ", 1)[1].split()
    return block, command


def test_readme_custom_device_works_verbatim_and_names_its_default(tmp_path, capsys, monkeypatch):
    """Written as the README shows it, the file is read; its omitted matmul ceiling is named in a note with the
    value used, and the device equals the same file with that ceiling written out (a ceiling of 1 made it ~20 %
    faster)."""
    from engine.catalog.hardware import TYPICAL_MAMF, device

    block, command = _readme_device()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-gpu.toml").write_text(block)
    assert main([*command, "--json"]) == 0
    out, err = capsys.readouterr()
    notes = err.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith("llm-sweep time: note: my-gpu.toml: mamf_fraction not given: "
                                                   "0.786 used, the median of the 13 measured matmul ceilings")
    custom = json.loads(out)
    with pytest.warns(LlmSweepNote, match="mamf_fraction not given: 0.786 used"):
        assert TYPICAL_MAMF == 0.786 and device("my-gpu.toml").defaulted == ("mamf_fraction",)
    # the same file with the ceiling written out gives the same answer: the note names the value used
    written = block.replace("[peak_tflops]", f"mamf_fraction = {TYPICAL_MAMF}\n[peak_tflops]", 1)
    (tmp_path / "explicit.toml").write_text(written)
    assert "mamf_fraction = 0.786" in (tmp_path / "explicit.toml").read_text()
    explicit = [a if a != "my-gpu.toml" else "explicit.toml" for a in command]
    assert main([*explicit, "--json"]) == 0
    reference = json.loads(capsys.readouterr().out)
    assert custom["step_time"] == reference["step_time"] and custom["breakdown"] == reference["breakdown"]


def test_a_device_file_that_gives_every_field_gets_no_note(tmp_path, capsys, monkeypatch):
    from engine.catalog.hardware import device

    block, command = _readme_device()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-gpu.toml").write_text(block.replace("# mamf_fraction = 0.801", "mamf_fraction = 0.9"))
    assert main(command) == 0
    assert capsys.readouterr().err == ""
    assert device("my-gpu.toml").defaulted == () and device("my-gpu.toml").mamf_fraction == 0.9


def test_catalog_devices_keep_their_ceilings():
    """Catalog entries are unchanged: a published ceiling where there is one, else 1 as the catalog documents."""
    from engine.catalog.hardware import DEVICES

    assert DEVICES["h100-sxm"].mamf_fraction == 0.801 and DEVICES["h100-sxm"].defaulted == ()
    assert DEVICES["b200"].mamf_fraction == 0.776 and DEVICES["b200"].defaulted == ()  # Bekman's table, B200 SXM
    assert DEVICES["h100-pcie"].mamf_fraction == 1.0 and DEVICES["h100-pcie"].defaulted == ("mamf_fraction",)


def test_peak_tflops_given_as_a_number_is_refused_with_the_table_form(tmp_path, capsys, monkeypatch):
    block, command = _readme_device()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-gpu.toml").write_text(block.split("[peak_tflops]")[0] + "peak_tflops = 989.4\n")
    code = main(command)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "my-gpu.toml: peak_tflops: must be a table of dense TFLOP/s by dtype" in err[0]
    assert "e.g. [peak_tflops] bf16 = 989.4" in err[0]
