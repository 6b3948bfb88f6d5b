"""Issue 10: pure 16-bit training (bf16-true) and GQA attention through SDPA, against CPU-traced peaks.

tests/data/cpu_measured_memory_extra.json comes from ``benchmarks/measure_memory_cpu.py --issue10`` (torch
2.13.0+cpu, transformers 5.24.0): torch.cuda.max_memory_allocated() emulated on the CPU (allocator trace with
CUDA block rounding and CUDA autocast's dtype policy). The SDPA records run under
``torch.nn.attention.sdpa_kernel`` with the backend the pytorch memory model predicts for CUDA: math for fp32
with grouped k/v, and for 16-bit inputs (CUDA: cuDNN or flash, absent on the CPU) the CPU flash kernel,
which saves the same tensors (q, k, v, the output and an fp32 log-sum-exp; no S x S tensor).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from engine.catalog.families import from_hf_config
from engine.catalog.model import memory_estimate, memory_options

FIXTURE = Path(__file__).resolve().parent / "data" / "cpu_measured_memory_extra.json"

# Accuracy bounds (median, worst relative error of the predicted peak), pinned just above the errors
# measured when they were set (the issue's bar is 2 % / 10 %): bf16-true 0.55 % / 1.75 % (15 records),
# gqa-sdpa 1.04 % / 4.10 % (12; the worst are bf16-true through SDPA, over-predicted by ~4 %).
BOUNDS = {"bf16-true": (0.007, 0.02), "gqa-sdpa": (0.0125, 0.045)}


def _records(group=None):
    recs = [r for r in json.loads(FIXTURE.read_text())["records"] if r.get("ok")]
    return [r for r in recs if group is None or r["group"] == group]


def _predict(r) -> dict:
    opts = memory_options(precision=r["precision"], attention=r["attn"], dropout=r["dropout"] > 0,
                          recompute="full" if r["checkpointing"] else "none", optimizer=r["optimizer"])
    return memory_estimate(from_hf_config(r["config"]), opts, {"batch": r["batch"], "seq_len": r["seq"]})


def _errors(group):
    return [abs(_predict(r)["peak"] / r["peak_total"] - 1) for r in _records(group)]


def test_fixture_has_the_issue_10_records():
    meta = json.loads(FIXTURE.read_text())["meta"]
    assert meta["torch"].startswith("2.") and meta["transformers"]
    true16 = _records("bf16-true")
    assert len(true16) >= 8
    assert {r["arch"] for r in true16} == {"gpt2", "llama"} and {r["checkpointing"] for r in true16} == {False, True}
    gqa = _records("gqa-sdpa")
    assert len(gqa) >= 8 and {r["precision"] for r in gqa} == {"fp32", "bf16-mixed", "bf16-true"}
    assert all(r["n_kv_heads"] < r["n_heads"] for r in gqa)


def test_sdpa_records_ran_the_kernel_the_model_predicts_with_enable_gqa():
    sdpa = [r for r in _records() if r["attn"] == "sdpa"]
    assert sdpa
    for r in sdpa:
        kernel = _predict(r)["attention_kernel"]
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


@pytest.mark.parametrize("group", sorted(BOUNDS))
def test_issue_10_peaks_within_bounds(group):
    errors = _errors(group)
    median, worst = statistics.median(errors), max(errors)
    print(f"{group}: median {median:.5f}, worst {worst:.5f} over {len(errors)} records")  # pytest -s shows them
    assert median <= BOUNDS[group][0], (group, median)
    assert worst <= BOUNDS[group][1], (group, worst)
