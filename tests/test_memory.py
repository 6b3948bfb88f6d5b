"""Memory and compute: golden numbers from the literature and accuracy against measured peaks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy

from engine.options import MemoryOptions
from engine.symbolic.formulas.scaling import CHINCHILLA_FITS, chinchilla_optimum
from engine.catalog.model import architecture, estimate_formulas, flops_estimate, memory_estimate, memory_options
from engine.symbolic.symbols import symbol

REPO = Path(__file__).resolve().parents[1]


def _states(stage: int, dp: int, params: int, cp: int = 1) -> float:
    """ZeRO model states per device for mixed-precision Adam (2 + 2 + 12 bytes per parameter)."""
    arch = architecture("gpt2")
    fs = estimate_formulas(arch.family, arch.structure, MemoryOptions(precision="bf16", zero=stage))
    N = sympy.Symbol("params_total", integer=True, nonnegative=True)
    total = sum(fs.quantities[q].definition for q in ("mem_weights", "mem_gradients", "mem_master", "mem_optimizer"))
    return float(fs.apply(total.xreplace({N: params}), {"dp": dp, "cp": cp}))


def test_zero_figure_1():
    # Rajbhandari et al. Figure 1: Psi = 7.5B, N_d = 64 -> 120, 31.4, 16.6, 1.9 GB per device
    got = [_states(stage, 64, 7_500_000_000) / 1e9 for stage in range(4)]
    assert got == pytest.approx([120, 31.4, 16.6, 1.9], abs=0.06)
    assert got[0] == 120 and got[3] == 1.875


def test_zero_shards_over_the_context_parallel_ranks_too():
    """The context-parallel ranks hold the same weights, and Megatron's distributed optimizer (the data-parallel
    group with context parallelism) and torchtitan's FSDP (its dp_shard x cp mesh) shard over them: Figure 1's
    7.5B over dp 32 x cp 2 is its N_d = 64; without ZeRO nothing is sharded."""
    for stage in range(4):
        assert _states(stage, 32, 7_500_000_000, cp=2) == pytest.approx(_states(stage, 64, 7_500_000_000))
    assert _states(0, 32, 7_500_000_000, cp=2) == _states(0, 32, 7_500_000_000) == 120e9


S, Bs, H, A, T = (symbol(n) for n in ("seq_len", "batch", "d_model", "n_heads", "tp"))


def _per_layer(**opts) -> sympy.Expr:
    # Table 2's assumptions: 16-bit activations, materialized attention scores, dropout
    arch = architecture("gpt2")
    opts = {"precision": "bf16", "attention": "eager", **opts}
    fs = estimate_formulas(arch.family, arch.structure,
                           MemoryOptions(memory_model="korthikanti", dropout=True, **opts))
    expr = fs.apply(fs.inline(fs.quantities["mem_activations"].definition), {"tp", "vp", "pp"})
    return sympy.simplify(expr.xreplace({symbol("vp"): 1, symbol("pp"): 1}) / symbol("n_layers"))


@pytest.mark.parametrize("opts,expected", [
    ({}, S * Bs * H * (34 + 5 * A * S / H)),
    ({"sequence_parallel": False}, S * Bs * H * (10 + 24 / T + 5 * A * S / (H * T))),
    ({"sequence_parallel": True}, S * Bs * H * (34 / T + 5 * A * S / (H * T))),
    ({"recompute": "selective"}, S * Bs * H * (10 + 24 / T)),
    ({"recompute": "selective", "sequence_parallel": True}, 34 * S * Bs * H / T),
    ({"recompute": "full"}, 2 * S * Bs * H),
])
def test_korthikanti_table_2(opts, expected):
    got = _per_layer(**opts)
    if not opts:  # no parallelism: t = 1
        got = got.xreplace({T: 1})
    assert sympy.simplify(got - expected) == 0


@pytest.mark.parametrize("attention", ["flash", "sdpa"])
def test_fused_attention_has_no_s_squared_term(attention):
    got = _per_layer(attention=attention).xreplace({T: 1})
    assert sympy.degree(sympy.expand(got), S) == 1
    assert sympy.simplify(got - (34 * S * Bs * H + 4 * A * S * Bs)) == 0


def test_korthikanti_fp32_doubles_all_but_the_masks():
    bf16 = _per_layer(recompute="selective").xreplace({T: 1})
    fp32 = _per_layer(recompute="selective", precision="fp32").xreplace({T: 1})
    assert sympy.simplify(fp32 - (2 * bf16 - 2 * S * Bs * H)) == 0  # the two 1-byte dropout masks stay


def test_korthikanti_moe_counts_top_k_experts():
    arch = architecture("mixtral-8x7b")
    one = estimate_formulas(arch.family, arch.structure, MemoryOptions(memory_model="korthikanti", precision="fp32"))
    vals = {**arch.values, "batch": 1, "seq_len": 1024}
    two = float(one.evaluate("mem_activations", vals))
    one_expert = float(one.evaluate("mem_activations", {**vals, "top_k": 1}))
    # fp32: one more expert's gated MLP per token, and one more permuted copy of its input (Megatron's dispatch)
    assert two - one_expert == (2 * 6 * 1024 * 14336 + 2 * 2 * 1024 * 4096) * 32


def test_kv_cache_of_llama_3_8b():
    arch = architecture("meta-llama-3-8b")
    fs = estimate_formulas(arch.family, arch.structure, MemoryOptions(mode="inference", precision="bf16"))
    assert fs.evaluate("kv_cache_per_token", arch.values) == 131_072
    est = memory_estimate(arch, memory_options(mode="inference", precision="bf16"), {"batch": 8, "seq_len": 32768})
    assert est["breakdown"]["kv_cache"] == 32 * 2**30  # twice the ~16 GB of bf16 weights
    windowed = memory_estimate(arch, memory_options(mode="inference", precision="bf16"),
                               {"batch": 8, "seq_len": 32768, "kv_window": 4096})
    assert windowed["breakdown"]["kv_cache"] == 4 * 2**30
    int8 = memory_estimate(arch, memory_options(mode="inference", precision="bf16"),
                           {"batch": 8, "seq_len": 32768, "bits_kv": 8})
    assert int8["breakdown"]["kv_cache"] == 16 * 2**30


def test_narayanan_and_palm_flops():
    arch = architecture("gpt3-175b")
    out = flops_estimate(arch, memory_options(), {"batch": 1, "seq_len": 2048})
    assert out["flops_step"] == pytest.approx(out["flops_narayanan_step"], rel=1e-3)
    rec = flops_estimate(arch, memory_options(recompute="full"), {"batch": 1, "seq_len": 2048})
    assert rec["hardware_flops_token"] * 2048 == pytest.approx(rec["flops_narayanan_recompute_step"], rel=2e-3)
    assert out["flops_token"] == pytest.approx(out["flops_palm_token"], rel=0.01)


def test_chinchilla_optimum():
    N, D = chinchilla_optimum(CHINCHILLA_FITS["chinchilla"], sympy.Float("5.76e23"))
    assert float(N) == pytest.approx(32.2e9, rel=0.01) and float(D / N) == pytest.approx(92.6, rel=0.01)
    N, D = chinchilla_optimum(CHINCHILLA_FITS["chinchilla_tex"], sympy.Float("5.76e23"))
    assert float(D / N) == pytest.approx(59.1, rel=0.01)
    for C_ in (1e21, 1e23, 1e25):
        N, D = chinchilla_optimum(CHINCHILLA_FITS["besiroglu"], sympy.Float(C_))
        assert 17 <= float(D / N) <= 22


def test_seed_memory_model_is_the_articles():
    arch = architecture("gpt2", {"positions": "none"})
    est = memory_estimate(arch, memory_options(memory_model="seed"), {"batch": 4, "seq_len": 1024})
    fs = estimate_formulas(arch.family, arch.structure, memory_options(memory_model="seed"))
    N = int(fs.evaluate("params_total", arch.values))
    B, S_, V, L, d = 4, 1024, 50257, 12, 768
    E = B * S_ * d
    want = 16 * N + 8 * B * S_ + L * (14 * E + 4 * B * S_ * S_) + 6 * B * S_ * V + 4 * B * S_ * V
    assert est["peak"] == want


def test_kernel_equals_sympy_for_memory_quantities():
    from engine.request.spec import parse_spec
    from engine.runtime.sweep import run

    qs = ["mem_peak", "mem_activations", "mem_logits", "mem_optimizer", "flops_token", "hardware_flops_token"]
    spec = {"sweep": {"arch": "llama-2-7b", "quantities": qs},
            "options": {"precision": "bf16-amp", "recompute": "full", "attention": "eager"},
            "axes": {"batch": [1, 3, 8], "seq_len": [128, 1000, 4096], "n_kv_heads": [8, 32]}}
    req = parse_spec(spec)
    ds = run(req).dataset
    for b_ in (1, 8):
        for s_ in (128, 4096):
            for kv in (8, 32):
                vals = {"batch": b_, "seq_len": s_, "n_kv_heads": kv}
                for q in qs:
                    want = float(req.formulas.evaluate(q, vals))
                    assert ds.sel(**vals)[q].item() == pytest.approx(want, rel=1e-12), (q, vals)


def test_memory_and_flops_cli(run_cli):
    cli = run_cli
    r = cli("memory", "--arch", "gpt2", "--batch", "4", "--seq-len", "1024", "--attention", "eager", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"peak", "moment", "breakdown", "attention_kernel"}
    assert sum(out["breakdown"].values()) == pytest.approx(out["peak"], abs=8)
    r = cli("memory", "--hf-config", REPO / "tests" / "data" / "llama-3-8b-config.json", "--mode", "inference",
            "--batch", "8", "--seq-len", "32768", "--precision", "bf16", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["breakdown"]["kv_cache"] == 32 * 2**30
    r = cli("memory", "--arch", "llama-2-70b", "--batch", "1", "--seq-len", "4096", "--precision", "bf16",
            "--zero", "3", "--dp", "64", "--tp", "8", "--memory-model", "korthikanti", "--recompute", "selective")
    assert r.returncode == 0 and "training peak" in r.stdout
    r = cli("memory", "--arch", "llama-2-7b", "--batch", "1", "--seq-len", "8", "--tp", "3")
    assert r.returncode == 2 and "tp must divide n_heads" in r.stderr
    r = cli("memory", "--arch", "gpt2", "--seq-len", "8")
    assert r.returncode == 2 and "--batch" in r.stderr
    r = cli("flops", "--arch", "gpt2", "--batch", "4", "--seq-len", "1024", "--tokens", "1e9", "--peak-flops",
            "1e15", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["train_seconds"] > 0
    r = cli("flops", "--compute", "5.76e23", "--scaling-law", "chinchilla", "--json")
    assert json.loads(r.stdout)["compute_optimal"]["tokens_per_param"] == pytest.approx(92.6, rel=0.01)


def test_longest_context_that_fits_is_an_on_device_query():
    from engine.request.spec import load_spec
    from engine.runtime.sweep import run
    from engine.sinks import sink_for

    req = load_spec(REPO / "sweeps" / "llama3-context.toml")
    ds = run(req, sink_for(query=req.query)).dataset
    full = run(req).dataset
    fits = full.mem_peak <= 80 * 2**30
    want = full.seq_len.where(fits).max("seq_len")
    np.testing.assert_array_equal(ds["max_seq_len"].values, want.values.astype(np.int64))
    assert ds["max_seq_len"].sel(batch=1).item() == 131072
    # the answer is right at the edge: one step more does not fit
    for b_ in (2, 8):
        best = ds["max_seq_len"].sel(batch=b_).item()
        assert full.mem_peak.sel(batch=b_, seq_len=best).item() <= 80 * 2**30 < \
            full.mem_peak.sel(batch=b_, seq_len=best + 512).item()


# (arch, options, values, the moment at the peak, its parts in order; hand-derived values of some parts)
BREAKDOWN_CASES = [
    ("gpt2", dict(precision="fp32", attention="eager"), {"batch": 4, "seq_len": 1024}, "backward",
     ["weights", "master", "optimizer", "activations", "logits"],
     {"weights": 4 * 124439808, "master": 0, "optimizer": 8 * 124439808,
      "logits": (4 + 4 + 8) * 4 * 1024 * 50257}),  # returned, log-softmax, two fp32 gradients
    ("llama-2-7b", dict(precision="bf16", recompute="full"), {"batch": 1, "seq_len": 4096}, "step",
     ["weights", "master", "optimizer", "gradients", "optimizer_step"],
     {"weights": 2 * 6738415616, "master": 4 * 6738415616, "gradients": 2 * 6738415616,
      # bf16 logits still held + AdamW's two fp32 temporaries of the largest matrix (lm_head 32000 x 4096)
      "optimizer_step": 2 * 4096 * 32000 + 2 * 4 * 32000 * 4096}),
    ("llama-2-7b", dict(precision="bf16-amp", attention="eager", recompute="full"), {"batch": 8, "seq_len": 4096},
     "recompute", ["weights", "master", "optimizer", "activations", "recompute"], {"optimizer": 8 * 6738415616}),
    ("gpt2", dict(precision="bf16", optimizer="sgd", recompute="full"), {"batch": 2, "seq_len": 128}, "step",
     ["weights", "master", "optimizer", "gradients", "optimizer_step"],
     {"optimizer": 0, "optimizer_step": 2 * 2 * 128 * 50257}),  # no AdamW temporaries
    ("mixtral-8x7b", dict(memory_model="korthikanti", precision="bf16"), {"batch": 3, "seq_len": 777, "tp": 8},
     "step", ["weights", "gradients", "master", "optimizer", "activations", "logits"],
     {"logits": 4 * 777 * 3 * (4096 + 32000) // 8}),  # Megatron's 4sbh(1 + V/h)/t
    ("gpt2", dict(memory_model="korthikanti", precision="bf16", recompute="selective", sequence_parallel=True),
     {"batch": 2, "seq_len": 1024, "tp": 4, "pp": 4, "vp": 3}, "step",
     ["weights", "gradients", "master", "optimizer", "activations", "logits"], {"logits": 0}),  # not the last stage
    ("gpt2", dict(memory_model="seed"), {"batch": 4, "seq_len": 1024}, "step",
     ["weights", "gradients", "master", "optimizer", "activations", "logits"],
     {"logits": 4 * 4 * 1024 * 50257 + 8 * 4 * 1024}),  # the seed's 4BSV + 8BD
    ("falcon-7b", dict(mode="inference", precision="bf16", quantized=True), {"batch": 3, "seq_len": 999,
                                                                            "bits_weight": 4}, "prefill",
     ["weights", "kv_cache", "working"], {"kv_cache": 3 * 999 * 2 * 32 * 1 * 64 * 2}),  # MQA: one kv head
]


@pytest.mark.parametrize("arch_name,opts,values,moment,names,hand", BREAKDOWN_CASES)
def test_breakdown_parts_are_their_own_formulas(arch_name, opts, values, moment, names, hand):
    # each part of the breakdown is its own formula (a quantity, or the model's own term for the optimizer
    # step's temporaries and the recompute), floored to whole bytes; the rounding goes to the largest part
    from engine.symbolic.memory import moments, pytorch

    arch = architecture(arch_name)
    options = memory_options(**opts)
    est = memory_estimate(arch, options, values)
    fs = estimate_formulas(arch.family, arch.structure, options)
    given = {**arch.values, **values}
    own = {"optimizer_step": pytorch.optimizer_step_extra(arch.structure, options),
           "recompute": pytorch.checkpoint_recompute(arch.structure, options)}
    exact = {k: fs.apply(fs.inline(own[k]), given) if k in own else fs.evaluate_exact(f"mem_{k}", given)
             for k in names}
    assert est["moment"] == moment and list(est["breakdown"]) == names
    for k, value in hand.items():
        assert exact[k] == value, k
    largest = max(est["breakdown"], key=lambda k: est["breakdown"][k])
    for k in names:
        if k != largest:
            assert est["breakdown"][k] == int(sympy.floor(exact[k])), k
        else:
            assert 0 <= est["breakdown"][k] - int(sympy.floor(exact[k])) < len(names), k
    # the peak is the formula set's mem_peak, and the chosen moment is the largest of the step's moments
    assert est["peak"] == int(sympy.ceiling(fs.evaluate_exact("mem_peak", given))) == sum(est["breakdown"].values())
    assert est["peak"] == int(sympy.ceiling(sum(exact.values())))
    for m in moments(arch.structure, options):
        assert fs.apply(fs.inline(m.total), given) <= sum(exact.values()), m.name


def test_memory_models_come_from_the_registry():
    from engine.cli import _parser
    from engine.options import MEMORY_OPTIONS as OPTIONS
    from engine.symbolic.memory import MEMORY_MODELS

    assert set(OPTIONS["memory_model"].choices) == set(MEMORY_MODELS) == {"seed", "korthikanti", "pytorch"}
    memory = next(a for a in _parser()._subparsers._group_actions[0].choices["memory"]._actions
                  if a.dest == "memory_model")
    assert set(memory.choices) == set(MEMORY_MODELS)
    for name, model in MEMORY_MODELS.items():
        assert model.name == name and model.source
        for attr in ("refuses", "validity", "activations", "logits", "moments"):
            assert callable(getattr(model, attr)), (name, attr)
    with pytest.raises(ValueError, match="sequence_parallel needs memory_model korthikanti"):
        MemoryOptions().with_options(sequence_parallel=True)
    assert MemoryOptions().with_options(memory_model="korthikanti", sequence_parallel=True).sequence_parallel


def test_korthikanti_gqa_output_projection_reads_every_head():
    """Only K and V shrink with fewer kv heads: the output projection's saved input is n_heads x head_dim wide
    (a regression once counted it at the V width)."""
    arch = architecture("meta-llama-3-8b")
    fs = estimate_formulas(arch.family, arch.structure, MemoryOptions(memory_model="korthikanti", precision="bf16"))
    vals = {**arch.values, "batch": 1, "seq_len": 4096, "tp": 2}
    eight = fs.evaluate_exact("mem_activations", vals)
    four = fs.evaluate_exact("mem_activations", {**vals, "n_kv_heads": 4})
    assert eight - four == 32 * 4 * 4096 * 4 * 128 // 2  # K and V, 2 bytes each, 4 fewer heads, split by tp
    assert eight == 11_282_677_760


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
