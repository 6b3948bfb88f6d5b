"""The memory model against measured peaks: PyTorch's on an H200 (tests/data/measured_memory_pytorch_h200.json),
and torch.cuda.max_memory_allocated() emulated on the CPU by ``benchmarks/measure_memory_cpu.py`` (allocator trace
with CUDA block rounding and CUDA autocast's dtype policy; it reproduces the H200 file within 0.4 %).

tests/data/cpu_measured_memory_extra.json (``--issue10``; torch 2.13.0+cpu, transformers 5.24.0) adds pure 16-bit
training (bf16-true) and GQA attention through SDPA. Its SDPA records run under ``torch.nn.attention.sdpa_kernel``
with the backend the pytorch memory model predicts for CUDA: math for fp32 with grouped k/v, and for 16-bit inputs
(CUDA: cuDNN or flash, absent on the CPU) the CPU flash kernel, which saves the same tensors (q, k, v, the output and
an fp32 log-sum-exp; no S x S tensor).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from engine.catalog.families import from_hf_config
from engine.catalog.model import architecture, memory_estimate, memory_options

REPO = Path(__file__).resolve().parents[1]

# a copy of tests/data/measured_memory_pytorch_h200.json (GPT-2 training peaks measured on an H200)
MEASURED = REPO / "tests" / "data" / "measured_memory_pytorch_h200.json"


def _records():
    return json.loads(MEASURED.read_text())["records"]


def _predict(record) -> int:
    arch = architecture("gpt2")
    opts = memory_options(precision=record["precision"], attention=record["attn"],
                          recompute="full" if record["checkpointing"] else "none", dropout=record["dropout"] > 0,
                          optimizer=record["optimizer"])
    return memory_estimate(arch, opts, {"batch": record["batch"], "seq_len": record["seq"]})["peak"]


# Accuracy bounds, pinned just above the errors measured when they were set (median / worst):
# H200 file 0.144 % / 4.09 % (11 records); CPU-traced training 1.17 % / 8.99 % (81); prefill 0.125 % / 6.70 % (64).
# A model that got a few times worse fails.
BOUNDS = {"h200": (0.005, 0.05), "train": (0.015, 0.10), "prefill": (0.005, 0.075)}


def _within_bounds(name: str, errors: list[float]) -> None:
    median, worst = statistics.median(errors), max(errors)
    print(f"{name}: median {median:.5f}, worst {worst:.5f} over {len(errors)} records")  # pytest -s shows them
    assert median <= BOUNDS[name][0], (name, median)
    assert worst <= BOUNDS[name][1], (name, worst)


def test_measured_h200_peaks_within_half_percent_median_5_worst():
    _within_bounds("h200", [abs(_predict(r) / r["peak_total"] - 1) for r in _records()])


CPU_FIXTURE = REPO / "tests" / "data" / "cpu_measured_memory.json"


def _cpu_records(kind):
    records = json.loads(CPU_FIXTURE.read_text())["records"]
    keep = []
    for r in records:
        if r.get("kind") != kind or not r.get("ok", True):
            continue
        if r.get("autocast_policy") == "cpu" or r.get("precision_autocast_policy") == "cpu":
            continue  # plain CPU autocast: not what a GPU run does
        if kind == "train" and r["attn"] == "sdpa" and r["dropout"] > 0:
            continue  # CPU SDPA with dropout falls back to the math kernel (S^2 masks); CUDA's kernels do not
        cfg = r.get("config") or {}
        grouped = cfg.get("num_key_value_heads", cfg.get("num_attention_heads")) != cfg.get("num_attention_heads")
        if kind == "train" and r["attn"] == "sdpa" and r["precision"] == "fp32" and grouped:
            continue  # CPU's flash kernel takes fp32 with enable_gqa; CUDA runs math (pytorch.kernel_rules)
        keep.append(r)
    return keep


def _cpu_prediction(r) -> int:
    arch = from_hf_config(r["config"])
    if r["kind"] == "train":
        opts = memory_options(precision=r["precision"], attention=r["attn"], dropout=r["dropout"] > 0,
                              recompute="full" if r["checkpointing"] else "none", optimizer=r["optimizer"])
    else:
        opts = memory_options(mode="inference", precision=r["dtype"], attention=r["attn"])
    return memory_estimate(arch, opts, {"batch": r["batch"], "seq_len": r["seq"]})["peak"]


@pytest.mark.parametrize("kind", ["train", "prefill"])
def test_cpu_traced_peaks_beyond_the_shared_file(kind):
    # GPT-2 and LLaMA-style (GQA) models of other widths, depths and vocabularies, dropout, checkpointing,
    # prefills: torch.cuda.max_memory_allocated emulated on the CPU (benchmarks/measure_memory_cpu.py,
    # which reproduces the shared H200 measurements within 0.4%)
    records = _cpu_records(kind)
    assert len(records) >= 20
    _within_bounds(kind, [abs(_cpu_prediction(r) / r["peak_total"] - 1) for r in records])


EXTRA_FIXTURE = REPO / "tests" / "data" / "cpu_measured_memory_extra.json"

# Accuracy bounds (median, worst relative error of the predicted peak), pinned just above the errors
# measured when they were set (the bar is 2 % / 10 %): bf16-true 0.55 % / 1.75 % (15 records),
# gqa-sdpa 1.04 % / 4.10 % (12; the worst are bf16-true through SDPA, over-predicted by ~4 %).
EXTRA_BOUNDS = {"bf16-true": (0.007, 0.02), "gqa-sdpa": (0.0125, 0.045)}


def _extra_records(group=None):
    recs = [r for r in json.loads(EXTRA_FIXTURE.read_text())["records"] if r.get("ok")]
    return [r for r in recs if group is None or r["group"] == group]


def _extra_prediction(r) -> dict:
    opts = memory_options(precision=r["precision"], attention=r["attn"], dropout=r["dropout"] > 0,
                          recompute="full" if r["checkpointing"] else "none", optimizer=r["optimizer"])
    return memory_estimate(from_hf_config(r["config"]), opts, {"batch": r["batch"], "seq_len": r["seq"]})


def _extra_errors(group):
    return [abs(_extra_prediction(r)["peak"] / r["peak_total"] - 1) for r in _extra_records(group)]


def test_the_extra_fixture_has_bf16_true_and_gqa_sdpa_records():
    meta = json.loads(EXTRA_FIXTURE.read_text())["meta"]
    assert meta["torch"].startswith("2.") and meta["transformers"]
    true16 = _extra_records("bf16-true")
    assert len(true16) >= 8
    assert {r["arch"] for r in true16} == {"gpt2", "llama"} and {r["checkpointing"] for r in true16} == {False, True}
    gqa = _extra_records("gqa-sdpa")
    assert len(gqa) >= 8 and {r["precision"] for r in gqa} == {"fp32", "bf16-mixed", "bf16-true"}
    assert all(r["n_kv_heads"] < r["n_heads"] for r in gqa)


def test_sdpa_records_ran_the_kernel_the_model_predicts_with_enable_gqa():
    sdpa = [r for r in _extra_records() if r["attn"] == "sdpa"]
    assert sdpa
    for r in sdpa:
        kernel = _extra_prediction(r)["attention_kernel"]
        forced = r["sdpa_backend_forced"]
        # the CPU stands in for CUDA's 16-bit kernels with its flash kernel (same saved tensors)
        assert forced == ("math" if kernel == "math" else "flash"), (kernel, forced)
        assert kernel in (("math",) if r["precision"] == "fp32" else ("cudnn", "flash")), kernel
        ops = set(r["sdpa_ops"])
        if forced == "math":
            assert not any("flash" in op for op in ops), ops
        else:
            assert "aten::_scaled_dot_product_flash_attention_for_cpu" in ops, ops
        # transformers passes no mask, is_causal=True, and enable_gqa=True for grouped k/v (no repeat_kv)
        grouped = r["n_kv_heads"] < r["n_heads"]
        assert r["sdpa_calls"] and bool(r["sdpa_calls_recompute"]) == r["checkpointing"]
        for call in [*r["sdpa_calls"], *r["sdpa_calls_recompute"]]:
            assert "mask=none" in call and "is_causal=True" in call, call
            assert f"enable_gqa={grouped}" in call and f"k_heads={r['n_kv_heads']}" in call, call
            assert ("float32" in call) == (r["precision"] == "fp32"), call


@pytest.mark.parametrize("group", sorted(EXTRA_BOUNDS))
def test_bf16_true_and_gqa_sdpa_peaks_within_bounds(group):
    errors = _extra_errors(group)
    median, worst = statistics.median(errors), max(errors)
    print(f"{group}: median {median:.5f}, worst {worst:.5f} over {len(errors)} records")  # pytest -s shows them
    assert median <= EXTRA_BOUNDS[group][0], (group, median)
    assert worst <= EXTRA_BOUNDS[group][1], (group, worst)
