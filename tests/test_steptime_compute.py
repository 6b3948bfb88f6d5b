"""One micro-batch's compute (engine/symbolic/memory/steptime/compute.py) and the device values it takes: the
attention kernels at their library's measured rate curve r_max n / (n + n_half) (engine/catalog/kernels.py,
read by engine/catalog/hardware.py), routed experts' grouped GEMMs at M / (M + m_half), and the devices without a curve
at the ceiling model. Substitutes numbers into the sympy expressions; compiles nothing."""

from __future__ import annotations

from functools import lru_cache

import pytest
import sympy

from engine.catalog.hardware import device, fused_attention_share
from engine.catalog.model import architecture, memory_options
from engine.options.memory import ATTENTIONS
from engine.symbolic.memory.base import q
from engine.symbolic.memory.steptime import DEFAULTS
from engine.symbolic.memory.steptime.compute import micro_batch
from engine.symbolic.symbols import symbol

FLOPS_ATTN = 1e9  # flops_attention_token: any value, the ratios below do not depend on it


@lru_cache(maxsize=None)
def _micro(arch: str, attention: str, recompute: str = "none"):
    o = memory_options(memory_model="korthikanti", precision="bf16", attention=attention, recompute=recompute)
    return micro_batch(architecture(arch).structure, o, 2, sympy.Integer(1))[:2]


def _subs(expr, values: dict) -> float:
    return float(expr.subs({(q(k) if k.startswith(("flops_", "hardware_", "mem_")) else symbol(k)): v
                            for k, v in values.items()}))


def attention_time(gpu: str, attention: str, seq_len: int, cp: int = 1, recompute: str = "none") -> float:
    """The attention kernels' time of one sequence's tokens on one device (t_attn), per attention FLOP counted."""
    t_attn = _micro("llama-2-7b", attention, recompute)[1]
    values = {**device(gpu).values("bf16", attention), **{k: v for k, v in DEFAULTS.items()},
              "flops_attention_token": FLOPS_ATTN, "batch": 1, "seq_len": seq_len, "tp": 1, "pp": 1, "cp": cp,
              "n_layers": 32, "stage_layers": 32}
    return _subs(t_attn, values) / (FLOPS_ATTN * seq_len / cp)


def test_flash2_a100_rate_follows_its_curve_in_tokens_per_device():
    """FlashAttention-2 on A100 (Dao 2023 Fig. 4 fit, engine/catalog/kernels.py: 193.5 TFLOP/s, n_half 484): 512
    tokens run at 512/996 of r_max, 16384 at 16384/16868; the ratio of the rates is 0.529."""
    slow, fast = attention_time("a100-80gb", "flash", 512), attention_time("a100-80gb", "flash", 16384)
    assert fast / slow == pytest.approx((512 / (512 + 484)) / (16384 / (16384 + 484)), rel=1e-9)
    assert fast / slow == pytest.approx(0.529, abs=0.001)
    # context parallelism shards the sequence: 16384 tokens over cp = 32 run at the 512-token rate
    assert attention_time("a100-80gb", "flash", 16384, cp=32) == pytest.approx(slow, rel=1e-9)


def test_attention_time_in_the_flashattention_flop_convention():
    """Causal fused kernels execute half the scores; the curves count the backward as 2.5 forwards (it
    recomputes them: flash-attention benchmarks/benchmark_flash_attention.py), so a training step's 3 passes of
    counted FLOPs take 3.5 forwards at r(n); with recomputation, 4.5 forwards for 4 passes."""
    n, (r_max, n_half) = 4096, device("h100-sxm").attention_kernel_curve("bf16", "flash")
    rate = r_max * n / (n + n_half)
    assert attention_time("h100-sxm", "flash", n) == pytest.approx(3.5 * 0.5 / rate, rel=1e-9)
    assert attention_time("h100-sxm", "flash", n, recompute="selective") == pytest.approx(4.5 * 0.5 / rate,
                                                                                        rel=1e-9)


def test_eager_attention_keeps_the_ceiling_model():
    """Eager attention executes all s^2 scores at attention_efficiency x attention_ceiling x peak, at any length."""
    dev = device("a100-80gb").values("bf16")
    want = 3 / (dev["attention_peak_flops"] * dev["attention_ceiling"] * float(DEFAULTS["attention_efficiency"]))
    for n in (512, 16384):
        assert attention_time("a100-80gb", "eager", n) == pytest.approx(want, rel=1e-9)


def test_devices_without_a_curve_run_flashattention_2s_share_of_their_ceiling():
    """TPUs, B200, MI300X, ... and splash: no published curve of their own, so the fused kernels run FlashAttention-
    2's H100 curve as a share of the device's 16-bit ceiling (333.5 TFLOP/s of 989.4 x 0.801: 0.42) with its n_half,
    their backward recomputing the scores as every fused kernel's does (3.5 forwards for 3 passes)."""
    share, n_half = fused_attention_share()
    assert share == pytest.approx(333.5 / (989.4 * 0.801), rel=2e-3) and n_half == 532
    for gpu, attention in (("tpu-v5e", "flash"), ("tpu-v5p", "splash"), ("b200", "flash"), ("mi300x", "cudnn"),
                           ("a100-80gb", "flash3"), ("h100-sxm", "splash"), ("h100-pcie", "flash")):
        v = device(gpu).values("bf16", attention)
        r_max = v["attention_peak_flops"] * v["attention_ceiling"] * share
        assert (v["attention_curve_peak_flops"], v["attention_half_tokens"]) == (pytest.approx(r_max), n_half)
        for n in (512, 16384):
            rate = r_max * n / (n + n_half)
            assert attention_time(gpu, attention, n) == pytest.approx(3.5 * 0.5 / rate, rel=1e-9), (gpu, n)


def test_device_values_per_library():
    """Each library's curve on the silicon it was measured on; H200 and H800 run the H100's, A100 40GB the A100
    80GB's; Transformer Engine's cuDNN on A100 runs FlashAttention-2; fp8 training keeps 16-bit attention."""
    # the fits of engine/catalog/data/kernels.json (causal, head dim 128): FlashAttention-2 Dao 2023 Figs. 4 and 7;
    # FlashAttention-1 Dao 2023's FlashAttention bars; FlashAttention-3 and cuDNN derived from Shah et al. 2024's
    # separate forward and backward figures
    table = {("a100-80gb", "flash"): (193.5e12, 484), ("a100-40gb", "sdpa"): (193.5e12, 484),
             ("a100-80gb", "flash1"): (82.1e12, 292), ("a100-80gb", "cudnn"): (193.5e12, 484),
             ("h100-sxm", "flash"): (333.5e12, 532), ("h100-sxm", "cudnn"): (544.4e12, 364),
             ("h100-sxm", "flash3"): (604.1e12, 452), ("h200", "flash3"): (604.1e12, 452),
             ("h800", "sdpa"): (333.5e12, 532)}
    for (gpu, attention), (r_max, n_half) in table.items():
        for precision in ("bf16", "fp8") if device(gpu).peak_flops["fp8"] else ("bf16",):
            v = device(gpu).values(precision, attention)
            assert (v["attention_curve_peak_flops"], v["attention_half_tokens"]) == (pytest.approx(r_max, rel=2e-3), n_half), (
                gpu, attention, precision)
    assert device("h100-sxm").values("bf16") == device("h100-sxm").values("bf16", "flash")  # the default
    fp32 = device("a100-80gb").values("fp32", "flash")  # the curves are 16-bit: fp32 runs the share of its ceiling
    assert fp32["attention_curve_peak_flops"] == pytest.approx(
        fp32["attention_peak_flops"] * fp32["attention_ceiling"] * fused_attention_share()[0])
    with pytest.raises(ValueError, match="unknown attention 'flash4'"):
        device("h100-sxm").values("bf16", "flash4")
    assert all(device("h100-sxm").values("bf16", a) for a in ATTENTIONS)


def test_a_custom_device_with_the_catalog_silicon_gets_its_curve(tmp_path):
    """A file with the H100 SXM's bf16 peak runs the H100's curves; one naming attention_curve gets that one."""
    from engine.catalog.hardware import load_device_file

    base = ("hbm_gb = 80\nhbm_bandwidth_gbps = 3350\nintra_node_gbps = 450\ndevices_per_node = 8\n"
            "inter_node_gbps = 50\nmamf_fraction = 0.8\n")
    (tmp_path / "same.toml").write_text(base + "[peak_tflops]\nbf16 = 989.4\n")
    (tmp_path / "other.toml").write_text(base + "[peak_tflops]\nbf16 = 700.0\n")
    (tmp_path / "named.toml").write_text('attention_curve = "a100"\n' + base + "[peak_tflops]\nbf16 = 700.0\n")
    assert load_device_file(tmp_path / "same.toml").attention_curve == "h100"
    assert load_device_file(tmp_path / "other.toml").attention_curve is None
    assert load_device_file(tmp_path / "named.toml").values("bf16")["attention_curve_peak_flops"] == \
        pytest.approx(device("a100-80gb").values("bf16")["attention_curve_peak_flops"] * 700 / 312)  # its clocks


def _moe_compute(ep: int, etp: int = 1, batch: int = 1, seq_len: int = 4096, m_half=None) -> float:
    """qwen3-30b-a3b's compute term of one micro-batch (128 experts, top 8, d_ff_expert 768) with routed
    experts' grouped GEMMs at M / (M + m_half)."""
    arch = architecture("qwen3-30b-a3b")
    micro, _ = _micro("qwen3-30b-a3b", "flash")
    values = {**arch.values, **device("h100-sxm").values("bf16"), **DEFAULTS, "batch": batch, "seq_len": seq_len,
              "tp": 1, "pp": 1, "cp": 1, "ep": ep, "etp": etp, "stage_layers": arch.values["n_layers"],
              "hardware_flops_token": 0, "flops_attention_token": 0,
              "mem_weights": 0, "mem_activations": 0, "vocab": 0}
    if m_half is not None:
        values["expert_half_tokens"] = m_half
    return _subs(micro, values)


def test_routed_expert_gemms_at_the_grouped_gemm_rate():
    """M tokens per expert = b s / (cp tp) x etp x top_k x ep / n_experts; the routed FLOPs F at
    rate x M / (M + m_half) cost F m_half / M more than at the dense rate. With the matmul FLOPs and weights
    zeroed, what is left is that penalty (and the permute traffic, which does not depend on m_half): its ratio
    at M = 256 and 8192 tokens per expert is the DeepGEMM-fit ratio of the slowdowns m_half/256 : m_half/8192."""
    def penalty(ep, batch):
        return _moe_compute(ep, batch=batch) - _moe_compute(ep, batch=batch, m_half=0)

    # 4096 tokens x top 8 x ep / 128 experts: ep = 1 -> 256 tokens per expert; 8 sequences, ep = 4 -> 8192
    m_small, m_large = 4096 * 8 * 1 // 128, 8 * 4096 * 8 * 4 // 128
    assert (m_small, m_large) == (256, 8192)
    r_max = 1.0
    time_per_flop = {m: 1 / (r_max * m / (m + 120)) - 1 / r_max for m in (m_small, m_large)}  # the extra time
    flops_small, flops_large = 1 * 4096, 8 * 4096  # routed FLOPs scale with the device's tokens
    want = (time_per_flop[m_small] * flops_small) / (time_per_flop[m_large] * flops_large)
    assert penalty(1, 1) / penalty(4, 8) == pytest.approx(want, rel=1e-9)
    # the rate factors themselves: M / (M + 120) = 0.681 at 256, 0.986 at 8192 tokens per expert
    assert m_small / (m_small + 120) == pytest.approx(0.681, abs=1e-3)
    # expert tensor parallelism gathers etp token shards: the same M with etp x fewer experts' weights per device
    assert penalty(1, 1) == pytest.approx(2 * (_moe_compute(1, etp=2) - _moe_compute(1, etp=2, m_half=0)), rel=1e-9)


def test_moe_permute_traffic():
    """The dispatcher's permute and unpermute, forward and backward: 4 passes x read + write of top_k x d_model
    elements per token and MoE layer, at the HBM bandwidth."""
    arch = architecture("qwen3-30b-a3b")
    v = arch.values
    with_moe = _moe_compute(8, m_half=0)
    dev = device("h100-sxm").values("bf16")
    layers, h, k = v["n_layers"], v["d_model"], v["top_k"]
    elementwise = 3 * (10 * h + 2 * k * v["d_ff_expert"]) * 2 * layers * 4096
    assert with_moe == pytest.approx((elementwise + 4 * 2 * k * h * 2 * layers * 4096) / dev["hbm_bandwidth"],
                                     rel=1e-9)


def test_fp8_gemm_inputs_are_cast_with_a_transposed_copy():
    """fp8 adds the casts of every linear layer's inputs (forward: 3 d_model + d_ff) and output gradients
    (backward: q, k, v widths + 2 d_model + 2 d_ff for a gated MLP), 4 bytes an element (16-bit read, two fp8
    writes), memory-bound: llama-2-7b, one 4096-token sequence, 32 layers on one device."""
    arch = architecture("llama-2-7b")
    terms = {}
    for precision in ("bf16", "fp8"):
        o = memory_options(memory_model="korthikanti", precision=precision, attention="flash")
        terms[precision] = micro_batch(arch.structure, o, 2, sympy.Integer(1))[0]
    values = {**arch.values, **device("h100-sxm").values("bf16"), **DEFAULTS, "batch": 1, "seq_len": 4096,
              "tp": 1, "pp": 1, "cp": 1, "stage_layers": 32, "hardware_flops_token": 0, "flops_attention_token": 0,
              "mem_weights": 0, "mem_activations": 0, "head_dim": 128}
    h, f = 4096, 11008
    elements = (3 * h + f) + (3 * h + 2 * h + 2 * f)
    want = 4 * elements * 32 * 4096 / 3.35e12
    assert _subs(terms["fp8"] - terms["bf16"], values) == pytest.approx(want, rel=1e-9)


def test_the_last_stage_runs_the_output_layer_on_top_of_its_layers():
    """With pp > 1 the logits GEMM (2 d_model vocab FLOPs a token forward, x3 for training) is the last stage's
    alone, not spread over the stages: llama-2-7b at pp 4 pays 6 d V (1 - 8/32) more FLOPs a token than its even
    share; at pp 1 (stage_layers = n_layers) nothing."""
    arch = architecture("llama-2-7b")
    o = memory_options(memory_model="korthikanti", precision="bf16", attention="flash")
    gemm = micro_batch(arch.structure, o, 2, sympy.Integer(1))[2]
    values = {**arch.values, **device("h100-sxm").values("bf16"), **DEFAULTS, "batch": 1, "seq_len": 4096, "tp": 1,
              "cp": 1, "hardware_flops_token": 0, "flops_attention_token": 0}
    rate = 989.4e12 * 0.801 * float(DEFAULTS["matmul_efficiency"])
    assert _subs(gemm, {**values, "pp": 4, "stage_layers": 8}) == pytest.approx(
        6 * 4096 * 32000 * 4096 * (1 - 8 / 32) / rate, rel=1e-9)
    assert _subs(gemm, {**values, "pp": 1, "stage_layers": 32}) == 0
