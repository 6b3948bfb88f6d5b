"""The option registry (engine/options/): one declaration per option, rules as data, one precision record,
dtype options for bits_kv / bits_weight, "did you mean" for unknown names, the README's generated table."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import pytest

import engine
from engine.errors import SpecError
from engine.options import (ARCH_OPTIONS, DTYPE_BITS, MEMORY_OPTIONS, PRECISION_ALIASES, PRECISIONS, RULES,
                            SPEC_OPTIONS, MemoryOptions, Not, Rule, Structure, broken_rules, option, precision,
                            specs_of)
from engine.options.__main__ import main as options_main
from engine.options.memory import model_refusals
from engine.options.table import BEGIN, END, between_markers, readme_block
from engine.request.spec import parse_spec

README = Path(__file__).resolve().parents[1] / "README.md"


def test_each_option_is_one_field_and_its_record_derives_from_it():
    for cls, records in ((MemoryOptions, MEMORY_OPTIONS), (Structure, ARCH_OPTIONS)):
        declared = {f.name: f.default for f in fields(cls)}
        assert MISSING not in declared.values()
        assert {name: spec.default for name, spec in records.items()} == declared
        assert list(records) == list(declared)  # field order
    assert set(SPEC_OPTIONS) == set(MEMORY_OPTIONS) | set(ARCH_OPTIONS)
    assert not set(MEMORY_OPTIONS) & set(ARCH_OPTIONS)


def test_a_new_field_is_a_new_option():
    @dataclass(frozen=True)
    class Opts:
        fused_adam: bool = option(False, meaning="fused AdamW kernel", source="torch.optim.AdamW(fused=True)")
        stage: int = option(1, (1, 2), "a stage", flag="--st")

    specs = specs_of(Opts)
    assert specs["fused_adam"].choices == (True, False) and specs["fused_adam"].command_flag == "--fused-adam"
    assert specs["fused_adam"].source == "torch.optim.AdamW(fused=True)"
    assert specs["stage"].command_flag == "--st" and specs["stage"].default == 1


def test_booleans_and_choices_are_checked_by_type():
    with pytest.raises(ValueError, match="option 'zero' must be one of 0, 1, 2, 3, got 4"):
        MemoryOptions().with_options(zero=4)
    with pytest.raises(ValueError, match="option 'dropout' must be one of true, false, got 1"):
        MemoryOptions().with_options(dropout=1)


def test_rule_conditions():
    rule = Rule({"mode": "training", "finetune": Not("none")}, "finetune {finetune} needs zero 0", "x",
                requires={"zero": 0})
    assert rule.broken({"mode": "training", "finetune": "lora", "zero": 1})
    assert not rule.broken({"mode": "training", "finetune": "lora", "zero": 0})
    assert not rule.broken({"mode": "training", "finetune": "none", "zero": 1})
    assert not rule.broken({"mode": "inference", "finetune": "lora", "zero": 1})
    refusing = Rule({"mode": "training"}, "no", "x", refuses={"zero": (2, 3)})
    assert refusing.broken({"mode": "training", "zero": 3}) and not refusing.broken({"mode": "training", "zero": 1})
    assert broken_rules([rule, refusing], MemoryOptions(finetune="lora", zero=3)) == \
        ["finetune lora needs zero 0", "no"]


def test_every_rule_names_real_options_and_values():
    for rule in RULES:
        assert rule.requires or rule.refuses
        assert rule.source and rule.message
        for condition in (rule.when, rule.requires, rule.refuses):
            for name, want in condition.items():
                values = want.values if isinstance(want, Not) else want if isinstance(want, tuple) else (want,)
                for value in values:
                    MEMORY_OPTIONS[name].check(value)


def test_rule_messages_and_their_order():
    """The messages MemoryOptions.with_options raised from its if-chains, in the same order."""
    with pytest.raises(ValueError) as info:
        MemoryOptions().with_options(mode="inference", zero=1, sequence_parallel=True, finetune="lora")
    assert str(info.value) == (
        "finetune lora applies to training, not to mode inference; zero applies to training, not to mode inference "
        "(a prefill holds every layer's full weights and saves no activations); sequence_parallel applies to "
        "training, not to mode inference (a prefill holds every layer's full weights and saves no activations)")
    with pytest.raises(ValueError) as info:
        MemoryOptions().with_options(precision="fp8", sequence_parallel=True, offload="params", zero=2)
    assert str(info.value).split("; ")[:3] == [
        "precision fp8 needs memory_model korthikanti or seed (Hugging Face models run torch.nn.Linear, not "
        "TransformerEngine's fp8 layers)",
        "sequence_parallel needs memory_model korthikanti (the pytorch model has no tensor parallelism)",
        "offload params needs zero 3 (ZeRO-Infinity offload_param / FSDP CPUOffload offload the parameter shards "
        "of ZeRO-3 / full sharding), got zero 2"]


def test_a_models_refusals_are_its_tagged_rules():
    o = MemoryOptions(recompute="selective")
    assert model_refusals("pytorch", o) == engine.MEMORY_MODELS["pytorch"].refuses(o) == [
        "recompute selective needs memory_model korthikanti (Hugging Face models checkpoint whole layers: "
        "recompute full)"]
    assert engine.MEMORY_MODELS["korthikanti"].refuses(o) == []


# bits of weights, gradients, master copy (0: none), optimizer states, activations; matmul dtype
BITS = {"fp32": (32, 32, 0, 32, 32, "fp32"), "bf16-mixed": (32, 32, 0, 32, 16, "bf16"),
        "fp16-mixed": (32, 32, 0, 32, 16, "fp16"), "bf16-true": (16, 16, 0, 16, 16, "bf16"),
        "fp16-true": (16, 16, 0, 16, 16, "fp16"), "bf16": (16, 16, 32, 32, 16, "bf16"),
        "fp16": (16, 16, 32, 32, 16, "fp16"), "fp8": (16, 16, 32, 32, 16, "fp8")}


def test_one_precision_record_per_precision():
    assert {p.name: (p.weights, p.grads, p.master, p.optimizer, p.activations, p.matmul)
            for p in PRECISIONS.values()} == BITS
    assert MEMORY_OPTIONS["precision"].choices == tuple(BITS)


@pytest.mark.parametrize("alias, canonical", [("bfloat16", "bf16-true"), ("float16", "fp16-true"),
                                              ("float32", "fp32"), ("32", "fp32"), ("32-true", "fp32"),
                                              ("16-mixed", "fp16-mixed"), ("16", "fp16-mixed"),
                                              ("bf16-amp", "bf16-mixed"), ("transformer-engine", "fp8")])
def test_torch_and_lightning_spellings(alias, canonical):
    assert precision(alias).name == canonical
    model = "korthikanti" if canonical == "fp8" else "pytorch"  # the pytorch model refuses fp8
    assert MemoryOptions().with_options(precision=alias, memory_model=model).precision == canonical
    assert (alias, canonical) in PRECISION_ALIASES


def test_an_unknown_precision_names_the_closest():
    with pytest.raises(ValueError, match=r"unknown precision 'bf17' \(did you mean 'bf16'\?\); valid: fp32, "):
        precision("bf17")
    with pytest.raises(ValueError, match=r"got 'bfloat61' \(did you mean 'bfloat16'\?\)"):
        engine.memory_options(precision="bfloat61")


SHAPE = {"batch": 2, "seq_len": 512}


@pytest.mark.parametrize("dtype", ["fp8", "int4", "fp32"])
def test_kv_dtype_is_the_default_of_bits_kv(dtype):
    arch = engine.architecture("llama-2-7b")
    chosen = engine.memory_estimate(arch, engine.memory_options(mode="inference", kv_dtype=dtype), SHAPE)
    given = engine.memory_estimate(arch, engine.memory_options(mode="inference"),
                                   {**SHAPE, "bits_kv": DTYPE_BITS[dtype]})
    assert chosen == given


@pytest.mark.parametrize("dtype, quantized", [("int4", True), ("int8", True), ("fp8", False)])
def test_weight_dtype_is_the_default_of_bits_weight(dtype, quantized):
    arch = engine.architecture("llama-2-7b")
    chosen = engine.memory_estimate(arch, engine.memory_options(mode="inference", weight_dtype=dtype), SHAPE)
    given = engine.memory_estimate(arch, engine.memory_options(mode="inference", quantized=quantized),
                                   {**SHAPE, "bits_weight": DTYPE_BITS[dtype]})
    assert chosen == given


def test_dtype_options_are_spec_keys_and_refused_in_training():
    spec = {"sweep": {"arch": "llama-2-7b", "quantities": ["mem_kv_cache"]},
            "options": {"mode": "inference", "kv_dtype": "fp8"}, "fixed": {"batch": 1}, "axes": {"seq_len": [1024]}}
    assert parse_spec(spec).formulas.defaults["bits_kv"] == 8
    with pytest.raises(ValueError, match="kv_dtype fp8 applies to mode inference"):
        engine.memory_options(kv_dtype="fp8")


@pytest.mark.parametrize("change, key, message", [
    ({"options": {"precison": "bf16"}}, "options.precison", "unknown option (did you mean 'precision'?)"),
    ({"options": {"precision": "bf61"}}, "options", "got 'bf61' (did you mean 'bf16'?)"),
    ({"axes": {"seq_len": [8], "recompute": ["ful"]}}, "axes.recompute", "got 'ful' (did you mean 'full'?)"),
    ({"fixed": {"bach": 1}}, "fixed.bach", "unknown input 'bach' (did you mean 'batch'?)"),
    ({"sweep": {"arch": "gpt2", "quantities": ["params_totl"]}}, "sweep.quantities",
     "unknown name 'params_totl' (did you mean 'params_total'?)"),
])
def test_unknown_names_in_a_spec_get_the_closest(change, key, message):
    spec = {"sweep": {"arch": "gpt2"}, "fixed": {"batch": 1}, "axes": {"seq_len": [8]}}
    for table, values in change.items():
        spec[table] = {**spec.get(table, {}), **values}
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    assert info.value.key == key and message in info.value.message


def test_an_unknown_formula_set_gets_the_closest():
    with pytest.raises(SpecError, match=r"unknown formula set 'sed' \(did you mean 'seed'\?\)"):
        parse_spec({"sweep": {"formula_set": "sed"}, "axes": {"d_model": [8]}})


def test_readme_table_is_the_generated_one():
    text = README.read_text()
    assert text.count(BEGIN) == text.count(END) == 1
    assert between_markers(text) == readme_block(), "regenerate it: python -m engine.options --markdown"


def test_the_table_command_prints_the_block(capsys):
    assert options_main(["--markdown"]) == 0
    out = capsys.readouterr().out
    assert out == readme_block() and "| `kv_dtype` | memory | `--kv-dtype` |" in out


def test_the_registry_loads_no_heavy_module():
    """The parser's records come without sympy, numpy or JAX (a fresh interpreter is the thing tested)."""
    code = ("import sys, engine.options, engine.request.options; "
            "print(sorted(m for m in ('sympy', 'numpy', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"


def test_scaling_laws_are_the_fits_of_the_sympy_side():
    """flops --scaling-law offers engine.options.SCALING_LAWS (pure data, read by --help); each names a fit."""
    from engine.options import SCALING_LAWS
    from engine.symbolic.formulas.scaling import CHINCHILLA_FITS

    assert SCALING_LAWS == tuple(CHINCHILLA_FITS)
