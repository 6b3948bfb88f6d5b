"""LoRA / QLoRA fine-tuning memory (engine/symbolic/memory/finetune.py, peft semantics)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import sympy

from engine.catalog.model import architecture, memory_estimate, memory_options
from engine.cli import main
from engine.symbolic.memory import finetune

DATA = Path(__file__).parent / "data" / "cpu_measured_lora.json"


def _estimate(arch, rank, targets=None, **opts):
    return memory_estimate(architecture(arch) if isinstance(arch, str) else arch, memory_options(**opts),
                           {"batch": 4, "seq_len": 256}, lora_rank=rank, lora_targets=targets)


def _errors(tmp_path):
    out = []
    for i, r in enumerate(json.loads(DATA.read_text())["records"]):
        p = tmp_path / f"c{i}.json"
        p.write_text(json.dumps(r["config"]))
        est = memory_estimate(architecture(str(p)), memory_options(
            precision=r["precision"], finetune="lora", recompute="full" if r["checkpointing"] else "none"),
            {"batch": r["batch"], "seq_len": r["seq"]}, lora_rank=r["rank"], lora_targets=r["targets"])
        out.append((est["peak"] - r["measured"]["peak_total"]) / r["measured"]["peak_total"])
    return out


def test_lora_peaks_match_cpu_traced_peft_runs(tmp_path):
    recs = json.loads(DATA.read_text())["records"]
    assert len(recs) >= 8
    assert {r["arch"] for r in recs} == {"gpt2", "llama"}
    assert {r["rank"] for r in recs} >= {8, 64} and any(r["checkpointing"] for r in recs)
    errs = [abs(e) for e in _errors(tmp_path)]
    # pinned near what was measured (median ~1 %, worst ~3 %)
    assert statistics.median(errs) <= 0.02
    assert max(errs) <= 0.05


def test_nf4_double_quant_golden():
    # bitsandbytes functional.py quantize_4bit: 4-bit codes (1/2 B), fp32 absmax per 64 weights, with
    # compress_statistics an 8-bit absmax (1/64 B) and one fp32 scale per 256 blocks (4/(64*256) B)
    assert finetune.NF4_DQ_BYTES == sympy.Rational(1, 2) + sympy.Rational(1, 64) + sympy.Rational(4, 64 * 256)
    assert float(finetune.NF4_DQ_BYTES) == pytest.approx(0.51587, abs=1e-5)


def test_qlora_weights_by_hand():
    from engine.catalog.model import lora_counts, param_counts

    arch = architecture("llama-2-7b")
    bd = param_counts(arch)["breakdown"]
    total = param_counts(arch)["total"]
    kept = bd["embedding"] + bd["norms"] + bd["head"] + bd["positions"] + bd["router"] + bd["experts"]
    quantized = total - kept
    trainable = lora_counts(arch, 16)["trainable"]
    by_hand = quantized * (0.5 + 1 / 64 + 4 / (64 * 256)) + 2 * kept + 4 * trainable
    est = _estimate(arch, 16, precision="bf16-true", finetune="qlora")
    assert est["breakdown"]["weights"] == pytest.approx(by_hand, abs=2)
    assert est["breakdown"]["optimizer"] == 8 * trainable
    lora = _estimate(arch, 16, precision="bf16-true", finetune="lora")
    assert lora["breakdown"]["weights"] == 2 * total + 4 * trainable
    assert est["peak"] < lora["peak"]


def test_checkpointing_and_targets_order():
    a = "llama-2-7b"
    plain = _estimate(a, 16, precision="bf16-true", finetune="lora")["peak"]
    ckpt = _estimate(a, 16, precision="bf16-true", finetune="lora", recompute="full")["peak"]
    every = _estimate(a, 16, "all-linear", precision="bf16-true", finetune="lora")["peak"]
    assert ckpt < plain < every


def test_refusals_exit_2(capsys):
    base = ["memory", "--arch", "llama-2-7b", "--batch", "1", "--seq-len", "512"]
    for extra in (["--lora-rank", "8"], ["--finetune", "qlora", "--lora-rank", "8", "--precision", "fp32"],
                  ["--finetune", "lora", "--lora-rank", "8", "--mode", "inference"], ["--finetune", "lora"],
                  ["--finetune", "lora", "--lora-rank", "8", "--lora-targets", "nope"]):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "error" in err


def test_cli_json(capsys):
    assert main(["memory", "--arch", "gpt2", "--batch", "2", "--seq-len", "128", "--finetune", "lora",
                 "--lora-rank", "8", "--precision", "bf16-true", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["peak"] == sum(est["breakdown"].values())


def test_without_finetune_unchanged():
    o = memory_options(precision="bf16-true")
    a = architecture("llama-2-7b")
    assert memory_estimate(a, o, {"batch": 1, "seq_len": 512}) == memory_estimate(
        a, memory_options(precision="bf16-true", finetune="none"), {"batch": 1, "seq_len": 512})
