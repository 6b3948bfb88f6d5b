"""precision fp8 (TransformerEngine recipes under Megatron): hand-computed bytes for GPT-2 small."""

import json

import pytest

from engine.catalog.model import architecture, memory_estimate, memory_options
from engine.errors import SpecError

L, H, V, S, B = 12, 768, 50257, 128, 1
LINEAR = L * (4 * H * H + 2 * H * 4 * H)  # QKV + output projection + fc1 + fc2 per layer (no biases)
SHAPE = {"batch": B, "seq_len": S}


def _est(precision, **kw):
    return memory_estimate(architecture("gpt2"), memory_options(precision=precision, memory_model="korthikanti",
                                                                **kw), SHAPE)


def test_fp8_model_states_per_parameter():
    fp8, bf16 = _est("fp8")["breakdown"], _est("bf16")["breakdown"]
    n = bf16["weights"] // 2  # 16-bit weights: 2 bytes per parameter
    # bf16's states (2 + 2 grad + 4 master + 8 Adam), as precision bf16 (Megatron's fp32 main grad not counted)
    for k in ("weights", "gradients", "master", "optimizer"):
        assert fp8[k] == bf16[k]
    assert (fp8["weights"], fp8["master"], fp8["optimizer"]) == (2 * n, 4 * n, 8 * n)
    assert fp8["fp8_weights"] == 2 * LINEAR == 169_869_312  # fp8 copy 1 + fp8 transpose 1 per linear weight
    # DelayedScaling: 4 GEMMs x 5 fp8 tensors x (1024 amax history + scale + scale_inv) x 4 bytes, per layer
    assert fp8["fp8_scaling"] == L * 4 * 5 * (1024 + 2) * 4 == 984_960


def test_fp8_activations_vs_bf16():
    # bf16 (dropout off, sdpa): per layer sbh(34 - 2 masks) - ... ; fp8 saves QKV, proj, fc1, fc2 inputs in 1 byte
    fp8, bf16 = _est("fp8")["breakdown"], _est("bf16")["breakdown"]
    sb = S * B
    saved = L * (sb * H + sb * H + sb * H + sb * 4 * H)  # QKV, out-proj, fc1 (each h) and fc2 (4h) inputs
    assert bf16["activations"] - fp8["activations"] == saved == 8_257_536
    assert fp8["logits"] == bf16["logits"]


def test_fp8_full_recompute_keeps_16bit_layer_inputs():
    assert _est("fp8", recompute="full")["breakdown"]["activations"] == \
        _est("bf16", recompute="full")["breakdown"]["activations"] == L * 2 * S * B * H


def test_fp8_peak_is_bf16_plus_extras():
    fp8, bf16 = _est("fp8"), _est("bf16")
    assert fp8["peak"] == bf16["peak"] + 169_869_312 + 984_960 - 8_257_536 == sum(fp8["breakdown"].values())


def test_fp8_tensor_parallel_splits_copies():
    e = _est("fp8")["breakdown"]
    t = memory_estimate(architecture("gpt2"), memory_options(precision="fp8", memory_model="korthikanti"),
                        {**SHAPE, "tp": 2})["breakdown"]
    assert t["fp8_weights"] == e["fp8_weights"] // 2 and t["fp8_scaling"] == e["fp8_scaling"]


@pytest.mark.parametrize("name", ["fp8", "transformer-engine", "transformer-engine-float16"])
def test_cli_fp8_json(name, run_cli):
    r = run_cli("memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "128", "--memory-model", "korthikanti",
                "--precision", name, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["breakdown"]["fp8_weights"] == 169_869_312 and out["breakdown"]["fp8_scaling"] == 984_960
    assert out["peak"] == 2_217_580_928


def test_seed_model_takes_fp8_states():
    e = memory_estimate(architecture("gpt2"), memory_options(precision="fp8", memory_model="seed"), SHAPE)
    assert e["breakdown"]["fp8_weights"] == 169_869_312


def test_pytorch_model_refuses_fp8(run_cli):
    with pytest.raises(SpecError, match="korthikanti"):
        memory_options(precision="fp8")
    r = run_cli("memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--precision", "transformer-engine")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "TransformerEngine" in r.stderr


def test_fp8_refusals():  # fp8 with zero 3 is modelled (tests/test_timing_layouts.py)
    with pytest.raises(SpecError, match="fp8"):
        memory_options(precision="fp8", memory_model="pytorch", mode="inference")


def test_fp8_weights_of_moe_and_mla_models_follow_expert_parallelism():
    """MoE and MLA models: the fp8 copies cover every linear weight (from the parameter counts), routed experts
    split over ep x etp like their bf16 weights, the rest over tp; DeepSeek-V3 (MLA, dense first layers) is
    no longer refused."""
    from engine.catalog.model import estimate_formulas

    arch = architecture("qwen3-30b-a3b")
    opts = memory_options(precision="fp8", memory_model="korthikanti", attention="flash")
    fs = estimate_formulas(arch.family, arch.structure, opts)
    given = {**arch.values, "batch": 1, "seq_len": 4096, "tp": 2, "pp": 2, "ep": 8, "etp": 1, "dp": 8}
    p = {k: int(fs.evaluate_exact(k, given)) for k in ("params_total", "params_routed_experts", "params_embedding",
                                                       "params_head", "params_norms", "params_router")}
    dense = p["params_total"] - p["params_routed_experts"] - p["params_embedding"] - p["params_head"] \
        - p["params_norms"] - p["params_router"]
    want = 2 * (dense / 2 + p["params_routed_experts"] / 8) / 2  # two 1-byte copies; tp 2, ep 8 x etp 1, pp 2
    assert float(fs.evaluate_exact("mem_fp8_weights", given)) == pytest.approx(want, rel=1e-12)
    ds = architecture("deepseek-v3")
    est = memory_estimate(ds, memory_options(precision="fp8", memory_model="korthikanti", attention="flash"),
                          {"batch": 1, "seq_len": 4096, "tp": 2, "pp": 1, "ep": 64, "dp": 64})
    assert est["breakdown"]["fp8_weights"] > 0
