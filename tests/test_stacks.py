"""Training stacks as data: every record complete and sourced, vocabularies closed, lookups and their errors."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from engine.options.stacks import (ATTENTION_LIBRARIES, FIELDS, GENERATIONS, OVERLAP_NAMES, STACK_NAMES, STACKS,
                                   device_generation, format_overlap, load_stacks, parse_overlap, stack, stack_overlap)

REQUIRED = ("megatron-core", "nemo", "megatron-bridge", "megatron-lm-2021", "deepspeed", "torchtitan", "hf-trainer",
            "llm-foundry", "maxtext", "paxml")
CATALOG_DEVICES = ("v100-32gb", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h800", "h200", "b200", "mi250x",
                   "mi300x", "tpu-v4", "tpu-v5e", "tpu-v5p", "l40s", "rtx-4090")


def data() -> dict:
    return json.loads(resources.files("engine.options").joinpath("data/stacks.json").read_text(encoding="utf-8"))


def test_required_stacks_present_in_order():
    assert STACK_NAMES[:len(REQUIRED)] == REQUIRED
    assert set(STACKS) == set(STACK_NAMES)


@pytest.mark.parametrize("name", REQUIRED)
def test_record_has_every_field_with_a_source(name):
    record = data()["stacks"][name]
    assert record["description"] and record["version"]
    for key in FIELDS:
        assert "value" in record[key], key
        assert isinstance(record[key]["source"], str) and record[key]["source"].strip(), key
    s = stack(name)
    assert set(s.sources) == set(FIELDS) and all(s.sources.values())


@pytest.mark.parametrize("name", REQUIRED)
def test_values_in_vocabularies(name):
    s = stack(name)
    assert set(s.attention) == set(GENERATIONS)
    assert all(v is None or v in ATTENTION_LIBRARIES for v in s.attention.values())
    assert s.attention["sm80"] is not None  # every stack runs on some GPU
    assert s.overlap <= set(OVERLAP_NAMES)
    assert s.grad_reduce_dtype in ("fp32", "bf16")
    assert s.pipeline_schedule in ("1f1b", "interleaved", "gpipe", "none")
    assert s.fp8_recipe in (None, "delayed", "current", "blockwise", "mxfp8")
    assert isinstance(s.sequence_parallel, bool)


def test_verified_defaults():
    mc = stack("megatron-core")
    assert mc.attention_for("h100-sxm") == "cudnn" and mc.attention_for("a100-80gb") == "flash"
    assert mc.attention_for("b200") == "cudnn" and mc.attention_for("h200") == "cudnn"
    assert mc.grad_reduce_dtype == "fp32" and "dp_reduce" not in mc.overlap and mc.fp8_recipe == "delayed"
    assert {"dp_reduce", "dp_gather", "tp"} <= stack("nemo").overlap and stack("nemo").grad_reduce_dtype == "bf16"
    old = stack("megatron-lm-2021")
    assert old.overlap == frozenset() and old.attention_for("a100") == "eager"
    assert stack("torchtitan").attention_for("h100-sxm") == "flash" and stack("torchtitan").grad_reduce_dtype == "fp32"
    assert stack("maxtext").attention_for("tpu-v5p") == "splash"
    assert stack("hf-trainer").overlap == {"dp_reduce"}


def test_paxml_defaults():
    """Pax as NVIDIA JAX-Toolbox runs it on GPU (TE + NVTE_FUSED_ATTN=1 -> cuDNN fused attention) and as praxis runs
    it on TPU (plain einsum/softmax attention); appended last so the earlier stacks keep their positions."""
    assert STACK_NAMES[-1] == "paxml"
    record = data()["stacks"]["paxml"]
    assert record["description"] and record["version"]
    assert all(record[key]["source"].strip() for key in FIELDS)
    pax = stack("paxml")
    assert pax.attention_for("h100-sxm") == "cudnn" and pax.attention_for("a100-80gb") == "cudnn"
    assert pax.attention_for("tpu-v4") == "eager" and pax.attention_for("tpu-v5e") == "eager"
    assert pax.overlap == {"dp_reduce", "fsdp_prefetch"} and stack_overlap("paxml") == {"dp_reduce", "dp_gather"}
    assert pax.grad_reduce_dtype == "bf16" and pax.pipeline_schedule == "gpipe"
    assert pax.fp8_recipe == "delayed" and pax.sequence_parallel is False
    assert "sm100" in pax.sources["attention"] and "assumed" in pax.sources["attention"]


def test_maxtext_gpu_fields():
    """MaxText on GPU per NVIDIA JAX-Toolbox: cudnn_flash_te attention, bf16 gradient reduction (the SPMD all-reduce
    sits on the bf16 weight-gradient dot), fp8 through flax's delayed-scaling Fp8DirectDotGeneralOp."""
    mt = stack("maxtext")
    assert mt.attention_for("h100-sxm") == "cudnn" and mt.attention_for("b200") == "cudnn"
    assert mt.grad_reduce_dtype == "bf16" and mt.fp8_recipe == "delayed"
    # no dp_reduce on GPU: XLA:GPU leaves most of the weight-gradient all-reduce exposed (openxla/xla#1539)
    assert mt.overlap == {"fsdp_prefetch"} and "openxla/xla#1539" in mt.sources["overlap"]


def test_maxtext_overlaps_tensor_parallel_collectives_on_tpu_only():
    """MaxText's TPU scripts set XLA's async collective fusion flags (LIBTPU_INIT_ARGS), so its tensor-parallel
    collectives hide behind the matmuls on a TPU; its GPU flags leave collective matmul off. time and plan resolve
    the stack's default on the device's kind (hardware.stack_and_kernel); a given overlap is kept."""
    from engine.catalog.hardware import stack_and_kernel

    mt = stack("maxtext")
    assert mt.tpu_overlap == {"fsdp_prefetch", "dp_reduce", "tp"} and "LIBTPU_INIT_ARGS" in mt.sources["overlap"]
    assert stack_overlap("maxtext", "tpu-v5e") == {"dp_reduce", "dp_gather", "tp"}
    assert stack_overlap("maxtext", "h100-sxm") == {"dp_gather"}
    assert stack_and_kernel("tpu-v5p", None, None) == ("maxtext", "splash", "dp_reduce,dp_gather,tp")
    assert stack_and_kernel("tpu-v5p", None, None, "none") == ("maxtext", "splash", "none")
    assert stack_and_kernel("h100-sxm", "maxtext", None, "stack") == ("maxtext", "cudnn", "stack")
    assert stack_and_kernel("h100-sxm", None, None) == ("megatron-core", "cudnn", "stack")
    assert all(s.overlap == s.tpu_overlap for n, s in STACKS.items() if n != "maxtext")


@pytest.mark.parametrize("device", CATALOG_DEVICES)
def test_attention_for_every_catalog_device(device):
    for name in STACK_NAMES:
        s = stack(name)
        if device.startswith("tpu") and s.attention["tpu"] is None:
            with pytest.raises(ValueError, match="does not run on"):
                s.attention_for(device)
        else:
            assert s.attention_for(device) in ATTENTION_LIBRARIES


def test_device_generation_rules():
    assert [device_generation(d) for d in ("a100-40gb", "A800", "h100-pcie", "h20", "h800", "b300", "gb200",
                                           "tpu-v4", "v5e", "v100-32gb", "mi300x", "l40s")] == \
        ["sm80", "sm80", "sm90", "sm90", "sm90", "sm100", "sm100", "tpu", "tpu", "sm70", None, None]
    # other devices take the sm80 choice; V100 gets eager, or SDPA's own dispatch
    assert stack("megatron-core").attention_for("mi300x") == "flash"
    assert stack("megatron-core").attention_for("v100-32gb") == "eager"
    assert stack("hf-trainer").attention_for("v100") == "sdpa"


def test_unknown_stack_lists_valid_and_suggests():
    with pytest.raises(ValueError) as info:
        stack("megatron-cor")
    text = str(info.value)
    assert text.startswith("unknown stack 'megatron-cor'; valid: ")
    assert all(name in text for name in STACK_NAMES)
    assert "did you mean 'megatron-core'?" in text
    assert stack(" NeMo ") is stack("nemo")


def test_parse_overlap():
    assert parse_overlap("none") == frozenset() and parse_overlap("") == frozenset()
    assert parse_overlap("all") == frozenset(OVERLAP_NAMES)
    assert parse_overlap("dp_reduce, tp") == {"dp_reduce", "tp"}
    for name in STACK_NAMES:
        overlap = stack(name).overlap
        assert parse_overlap(format_overlap(overlap)) == overlap
    with pytest.raises(ValueError) as info:
        parse_overlap("dp_reduce,tpp")
    assert "unknown overlap 'tpp'" in str(info.value) and all(n in str(info.value) for n in OVERLAP_NAMES)


def test_bad_records_refused():
    good = data()
    record = good["stacks"]["nemo"]
    for key, bad in (("overlap", {"value": ["dp"], "source": "x"}),
                     ("overlap", {"value": {"gpu": ["tp"]}, "source": "x"}),
                     ("overlap", {"value": {"gpu": ["tp"], "tpu": ["dp"]}, "source": "x"}),
                     ("attention", {"value": dict.fromkeys(("sm80", "sm90", "sm100", "tpu"), "flash2"), "source": "x"}),
                     ("grad_reduce_dtype", {"value": "bf16", "source": ""}),
                     ("pipeline_schedule", {"value": "zb", "source": "x"}),
                     ("pipeline_sends", {"value": "scattered", "source": "x"}),
                     ("pipeline_sends", {"value": "whole", "source": ""})):
        with pytest.raises(ValueError):
            load_stacks({"stacks": {"nemo": {**record, key: bad}}})
    with pytest.raises(ValueError, match="pipeline_sends"):
        load_stacks({"stacks": {"nemo": {k: v for k, v in record.items() if k != "pipeline_sends"}}})


def test_pipeline_sends_partitioned_where_the_stack_scatters_them():
    """Megatron-LM 2021 (--no-scatter-gather-tensors-in-pipeline, on by default) and DeepSpeed's pipe engine
    (is_pipe_partitioned) send 1/tp of a stage's activations from each tensor-parallel rank; Megatron-Core and
    its recipes the whole tensor (sequence parallelism shards it)."""
    sends = {name: s.pipeline_sends for name, s in STACKS.items()}
    assert {n for n, v in sends.items() if v == "partitioned"} == {"megatron-lm-2021", "deepspeed"}
    assert "scatter" in stack("megatron-lm-2021").sources["pipeline_sends"]
    assert "is_pipe_partitioned" in stack("deepspeed").sources["pipeline_sends"]


def test_stack_is_hashable_and_frozen():
    s = stack("torchtitan")
    assert {s: 1}[stack("torchtitan")] == 1
    with pytest.raises(AttributeError):
        s.name = "x"  # type: ignore[misc]


def test_a_spec_sweeps_the_stack_as_a_categorical_dim():
    """sweeps/stacks.toml: `stack` is a categorical dim (one formula set per stack): NeMo's overlapped data and
    tensor parallelism print as max(floor, comm - hideable) + the SMs the hidden part takes, the 2021 Megatron-LM's
    as the whole communication."""
    from pathlib import Path

    from engine.request.spec import load_spec

    req = load_spec(Path(__file__).resolve().parents[1] / "sweeps" / "stacks.toml")
    assert req.categories == ("stack",)
    assert list(req.axes["stack"]) == ["megatron-lm-2021", "megatron-core", "torchtitan", "nemo"]
    text = {labels[0]: str(variant.formulas.expanded("time_tp")) for labels, variant in req.variants.items()}
    assert "overlap_contention" in text["nemo"] and "overlap_contention" not in text["megatron-lm-2021"]


def test_a_spec_sweep_takes_the_stacks_overlap_on_each_device(tmp_path):
    """A spec that leaves the overlap to the stack takes the stack's list for each gpu label's kind, as ``time``
    and ``plan`` do: MaxText on a TPU (a catalog TPU, or a device file of a TPU's name, beside the spec) overlaps
    its tensor-parallel collectives (its LIBTPU flags) and its gradient reduction, on an H100 neither; an overlap
    the spec gives is kept on every device."""
    from engine.request.spec import load_spec

    (tmp_path / "lab.toml").write_text('name = "tpu-v5p-lab"\nvendor = "Google"\nhbm_gb = 95\n'
                                       "hbm_bandwidth_gbps = 2765\nintra_node_gbps = 90\ndevices_per_node = 4\n"
                                       'inter_node_gbps = 25\nsources = ["https://example.com"]\n'
                                       "[peak_tflops]\nbf16 = 459\n")
    body = """[sweep]
arch = "llama-2-7b"
quantities = ["time_tp", "time_dp"]
output = "x.nc"
[options]
memory_model = "korthikanti"
precision = "bf16"
attention = "flash"
stack = "maxtext"
{extra}
[fixed]
n_gpus = 64
seq_len = 4096
global_batch = 64
tp = 4
pp = 1
dp = 16
[axes]
gpu = ["h100-sxm", "tpu-v5p", "lab.toml"]
batch = [1]
"""
    tpu = "dp_reduce,dp_gather,tp"
    for extra, want in (("", {"h100-sxm": "stack", "tpu-v5p": tpu, "lab.toml": tpu}),
                        ('overlap = "dp"', {"h100-sxm": "dp", "tpu-v5p": "dp", "lab.toml": "dp"})):
        spec = tmp_path / "s.toml"
        spec.write_text(body.format(extra=extra))
        req = load_spec(spec)
        got = {labels[0]: variant.formulas.options["overlap"] for labels, variant in req.variants.items()}
        assert got == want, extra
        text = {labels[0]: {q: str(variant.formulas.expanded(q)) for q in ("time_tp", "time_dp")}
                for labels, variant in req.variants.items()}
        # the hidden part of a collective costs overlap_contention of it: the TPU's TP collectives hide, and its
        # gradient reduction where the H100's (MaxText on GPU: openxla/xla#1539) is exposed whole
        assert ("overlap_contention" in text["tpu-v5p"]["time_tp"]) == (extra == "")
        assert "overlap_contention" not in text["h100-sxm"]["time_tp"]
        assert text["tpu-v5p"]["time_dp"] != text["h100-sxm"]["time_dp"] or extra


def test_gradients_are_reduced_in_the_stacks_dtype_unless_given():
    """Megatron-Core reduces its fp32 main gradients in fp32; NeMo's performance recipes in bf16
    (grad_reduce_in_fp32 False); the option overrides the stack; fp32 training reduces in fp32 whatever it says."""
    from engine.options import MemoryOptions

    o = MemoryOptions().with_options(memory_model="korthikanti", precision="bf16")
    assert o.grad_reduce_bits == 32 and o.with_options(stack="nemo").grad_reduce_bits == 16
    assert o.with_options(stack="nemo", grad_reduce_dtype="fp32").grad_reduce_bits == 32
    assert o.with_options(precision="fp32", grad_reduce_dtype="bf16").grad_reduce_bits == 32


def test_the_fp8_recipe_is_the_stacks_unless_given():
    """Megatron-Bridge's fp8 recipes use current scaling, NeMo's delayed; a stack without fp8 gets Transformer
    Engine's default (delayed); the option overrides it and applies to fp8 only."""
    from engine.options import MemoryOptions

    o = MemoryOptions().with_options(memory_model="korthikanti", precision="fp8")
    assert o.with_options(stack="megatron-bridge").fp8_scaling == "current"
    assert o.with_options(stack="nemo").fp8_scaling == "delayed" and o.with_options(stack="hf-trainer").fp8_scaling == "delayed"
    assert o.with_options(stack="nemo", fp8_recipe="mxfp8").fp8_scaling == "mxfp8"
    with pytest.raises(ValueError, match="fp8_recipe current applies to precision fp8, got bf16"):
        MemoryOptions().with_options(memory_model="korthikanti", precision="bf16", fp8_recipe="current")


def test_plan_takes_every_stack_field_and_refuses_a_recipe_without_fp8(run_cli):
    r = run_cli("plan", "--arch", "gpt2", "--gpu", "a100-80gb", "--gpus", "1", "--seq-len", "128",
                "--global-batch", "2", "--fp8-recipe", "current")
    assert r.returncode == 2 and r.stderr.strip().endswith("--fp8-recipe: current: applies to --precision fp8, got bf16")
    r = run_cli("plan", "--arch", "gpt2", "--gpu", "a100-80gb", "--gpus", "1", "--seq-len", "128",
                "--global-batch", "2", "--stack", "nemoo")
    assert r.returncode == 2 and "did you mean nemo?" in r.stderr


def test_elementwise_kernels_per_stack():
    """torchtitan (compile off by default, eager RMSNorm) and transformers' modules run their element-wise ops
    eagerly; Megatron's (Transformer Engine / apex fusions), XLA's and llm-foundry's are fused."""
    eager = {name for name, s in STACKS.items() if s.elementwise == "eager"}
    assert eager == {"torchtitan", "hf-trainer"}
    assert "compile = false" in stack("torchtitan").sources["elementwise"]
    assert "--no-rope-fusion" in stack("megatron-core").sources["elementwise"]
    from engine.catalog.model import memory_options
    from engine.errors import SpecError

    with pytest.raises(SpecError, match="elementwise applies to training, not to mode inference"):
        memory_options(mode="inference", elementwise="eager")
