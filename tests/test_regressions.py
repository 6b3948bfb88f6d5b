"""Defects found in review, each pinned by a test that failed before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import PrecisionError
from engine.catalog.model import architecture, flops_estimate, memory_estimate, memory_options
from engine.request.query import parse_constraint
from engine.request.spec import parse_spec
from engine.runtime.sweep import run_query, run_sweep

SERVE = {"sweep": {"arch": "meta-llama-3-8b", "quantities": ["mem_peak", "mem_kv_cache"]},
         "options": {"mode": "inference", "precision": "bf16"},
         "axes": {"batch": [1, 2, 4], "seq_len": [1024, 8192, 65536]}}


def test_fast_precision_with_constants_past_int32():
    fast = parse_spec({**SERVE, "sweep": {**SERVE["sweep"], "numerics": "fast"}})
    exact = parse_spec(SERVE)
    f, e = run_sweep(fast).dataset, run_sweep(exact).dataset
    np.testing.assert_allclose(f.mem_peak.values, e.mem_peak.values, rtol=1e-6)
    q = parse_spec({**SERVE, "sweep": {**SERVE["sweep"], "numerics": "fast"},
                    "query": {"where": "mem_peak <= 80GiB", "maximize": "mem_kv_cache", "over": ["seq_len"]}})
    got = run_query(q, q.query).dataset
    assert got.n_feasible.values.tolist() == [3, 3, 2]


def test_huge_constraint_values_compare_exactly():
    q = parse_spec({**SERVE, "query": {"where": "mem_peak <= 1e30", "over": ["seq_len"]}})
    assert run_query(q, q.query).dataset.n_feasible.values.tolist() == [3, 3, 3]


def test_constraint_numbers_with_exponents_are_numbers():
    assert parse_constraint("perf_relative <= 6.35e0").value == pytest.approx(6.35)
    assert parse_constraint("perf_relative >= 2.5e-1").value == pytest.approx(0.25)
    assert parse_constraint("mem_peak <= 80 GiB").value == 80 * 2**30
    assert parse_constraint("mem_peak <= 1.5e3MB").value == 1_500_000_000
    with pytest.raises(ValueError, match="cannot read"):
        parse_constraint("mem_peak <= lots")


def test_a_sweep_with_no_valid_point_reports_it(run_cli, tmp_path):
    spec = tmp_path / "invalid.toml"
    spec.write_text('[sweep]\narch = "llama-2-7b"\n[axes]\nn_kv_heads = [3, 5]\n')
    r = run_cli("run", spec, "-o", tmp_path / "out.nc")
    assert r.returncode == 0, r.stderr
    assert "no valid grid point" in r.stdout and "n_kv_heads must divide n_heads" in r.stdout


def test_kv_cache_per_device_under_pipeline_and_tensor_parallelism():
    opts = memory_options(mode="inference", precision="bf16")
    base = memory_estimate(architecture("llama-2-7b"), opts, {"batch": 1, "seq_len": 4096})["breakdown"]["kv_cache"]
    assert base == 2 * 2**30
    pp4 = memory_estimate(architecture("llama-2-7b"), opts, {"batch": 1, "seq_len": 4096, "pp": 4})
    assert pp4["breakdown"]["kv_cache"] == base // 4
    # falcon-7b has one kv head: tensor parallelism replicates it instead of splitting it
    one = memory_estimate(architecture("falcon-7b"), opts, {"batch": 1, "seq_len": 2048})["breakdown"]["kv_cache"]
    tp = memory_estimate(architecture("falcon-7b"), opts, {"batch": 1, "seq_len": 2048, "tp": 71})
    assert tp["breakdown"]["kv_cache"] == one
    fp32 = memory_estimate(architecture("llama-2-7b"), memory_options(mode="inference", precision="fp32"),
                           {"batch": 1, "seq_len": 4096})
    assert fp32["breakdown"]["kv_cache"] == 2 * base


def test_moe_flops_count_active_and_shared_experts():
    mixtral = architecture("mixtral-8x7b")
    out = flops_estimate(mixtral, memory_options(), {"batch": 1, "seq_len": 4096})
    assert out["flops_palm_token"] == pytest.approx(out["flops_token"], rel=0.05)  # both use active parameters
    shared = architecture("mixtral-8x7b", {"shared_experts": True})
    with_shared = flops_estimate(shared, memory_options(), {"batch": 1, "seq_len": 4096, "n_shared_experts": 1})
    assert with_shared["flops_forward_token"] > out["flops_forward_token"]


def test_breakdown_sums_to_the_peak():
    for arch, opts in (("gpt2", {}), ("llama-2-7b", {"mode": "inference", "precision": "bf16"}),
                       ("mixtral-8x7b", {"memory_model": "korthikanti", "precision": "bf16"})):
        est = memory_estimate(architecture(arch), memory_options(**opts), {"batch": 3, "seq_len": 777})
        assert sum(est["breakdown"].values()) == est["peak"], arch


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


def test_fast_precision_refuses_coordinates_past_int32():
    req = parse_spec({"sweep": {"formula_set": "seed", "numerics": "fast", "quantities": ["params_total"]},
                      "fixed": {"vocab": 10, "n_layers": 2}, "axes": {"d_model": [2**31]}})
    with pytest.raises(PrecisionError, match="int32"):
        run_sweep(req)


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


def test_flops_with_parallelism_and_inference(run_cli):
    args = ("flops", "--arch", "llama-2-7b", "--batch", "1", "--seq-len", "1024", "--json")
    ok = run_cli(*args, "--tp", "2")
    assert ok.returncode == 0, ok.stderr
    tp2, tp1 = json.loads(ok.stdout), json.loads(run_cli(*args).stdout)
    assert tp2 == tp1  # model FLOPs per token and per step do not depend on how the model is split
    assert tp2["flops_step"] == tp2["flops_token"] * 1024 and tp2["flops_token"] == 3 * tp2["flops_forward_token"]
    train = flops_estimate(architecture("llama-2-7b"), memory_options(), {"batch": 1, "seq_len": 4096})
    infer = flops_estimate(architecture("llama-2-7b"), memory_options(mode="inference", precision="bf16"),
                           {"batch": 1, "seq_len": 4096})
    assert infer["flops_token"] * 3 == pytest.approx(train["flops_token"])


def test_quantized_weights_keep_embedding_and_head_in_16_bits():
    arch = architecture("meta-llama-3-8b")
    est = memory_estimate(arch, memory_options(mode="inference", precision="bf16", quantized=True),
                          {"batch": 1, "seq_len": 8, "bits_weight": 4})
    emb_head = 2 * 128256 * 4096
    linear = 8_030_261_248 - emb_head - 266_240  # params_total - embedding - head - norms
    norms = 266_240
    want = (linear + norms) * (4 / 8 + 32 / (8 * 128)) + emb_head * 2
    assert est["breakdown"]["weights"] == pytest.approx(want, abs=2)
