"""The step-time model's symbols, sources and fitted knobs, shared by its modules."""

from __future__ import annotations

import sympy

from engine.symbolic.memory.base import L, pp, vp
from engine.symbolic.symbols import symbol

peak, attn_peak, hbm_bw = symbol("peak_flops"), symbol("attention_peak_flops"), symbol("hbm_bandwidth")
link_bw, net_bw, per_node = symbol("link_bandwidth"), symbol("inter_bandwidth"), symbol("devices_per_node")
global_batch, cp = symbol("global_batch"), symbol("cp")
eta_mm, eta_net, overlap, alpha = (symbol("matmul_efficiency"), symbol("comm_efficiency"), symbol("dp_overlap"),
                                   symbol("collective_latency"))
eta_attn = symbol("attention_efficiency")
ceiling, attn_ceiling = symbol("matmul_ceiling"), symbol("attention_ceiling")

SRC_RING = ("ring collectives: Thakur, Rabenseifner & Gropp 2005 (all-reduce 2(p-1)/p n / B + 2(p-1) alpha); NCCL "
            "bus bandwidth (nccl-tests doc/PERFORMANCE.md); Megatron-LM (Shoeybi et al. 2019 §3: 2 all-reduces per "
            "layer forward, 2 backward; Korthikanti et al. 2022 §4.2.2: reduce-scatter + all-gather with sequence "
            "parallelism, the same bytes)")
SRC_PIPE = ("Narayanan et al. 2021 §2.2 (1F1B bubble (p - 1)/m of the ideal time; interleaved (p - 1)/(v m)); "
            "point-to-point sends of one micro-batch's activations between stages")
SRC_ROOF = "roofline (Williams, Waterman & Patterson 2009): the longer of FLOPs / peak and bytes / bandwidth"
SRC_DP = ("data parallelism: a ring all-reduce of the gradients (PyTorch DDP, Megatron); ZeRO-1/2 reduce-scatter the "
          "gradients and all-gather the parameters (the same bytes); ZeRO-3/FSDP also all-gathers the parameters for "
          "the backward (1.5x; Rajbhandari et al. 2020 §7); hybrid sharding (FSDP HYBRID_SHARD; MaxText ICI-FSDP x "
          "DCN-data; Zhao et al. 2023, PyTorch FSDP §3.2.2) shards within groups of shard_group devices and "
          "all-reduces each shard across the dp / shard_group groups; dp_overlap of it hidden behind the backward "
          "(Li et al. 2020, PyTorch DDP §3.2.3 bucketing)")
SRC_EP = ("expert parallelism: two all-to-alls (dispatch, combine) per MoE layer forward and two backward, each of "
          "the micro-batch's top_k token copies (Lepikhin et al. 2021, GShard §2.2; Megatron-Core token dispatcher)")
SRC_CP = ("context parallelism: ring attention passes each device's K and V around the cp ring, cp - 1 hops forward "
          "and backward (Liu et al. 2023, Ring Attention; Megatron-Core context parallelism)")
SRC_DECODE = ("decode roofline: every weight and the whole KV cache are read once per generated token (Pope et al. "
              "2022 §2; kipply, Transformer Inference Arithmetic); prefill: compute-bound")

# Calibrated on the 136 usable measured runs of the shared file (Korthikanti et al. 2022, Narayanan et al. 2021,
# MT-NLG, MosaicML llm-foundry): `python benchmarks/validate_steptime.py --per-record --calibrate
# korthikanti2022,narayanan2021_t2,mtnlg2022,mpt_llmfoundry` (grid search, median |log error| over the records;
# comm_efficiency at most 0.9, the NCCL bus bandwidth of a link). The other sources are predictions.
DEFAULTS = {
    "matmul_efficiency": sympy.Rational(7, 10),  # of the measured matmul ceiling (matmul_ceiling x peak_flops)
    "attention_efficiency": sympy.Rational(7, 20),  # of attention_ceiling x attention_peak_flops (the 16-bit
    # ceiling and peak, also under fp8), on the FLOPs the kernels execute
    "comm_efficiency": sympy.Rational(9, 10),
    "dp_overlap": sympy.Rational(1, 5),
    "collective_latency": sympy.Rational(1, 100000),  # 10 microseconds per ring step
    "cp": sympy.Integer(1),
}



SRC_STAGES = ("Megatron-LM: with interleaving each of a stage's vp model chunks holds n_layers / (pp vp) layers "
              "(megatron/core/transformer/transformer_block.py get_num_layers_to_build); "
              "--decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers give the first and last "
              "stages their own counts, the rest split evenly over the middle stages; Llama 3 (Dubey et al. 2024 "
              "§3.3.2): 126 layers over pp 16 with one layer fewer on the first and last stages")
first_layers, last_layers = symbol("first_stage_layers"), symbol("last_stage_layers")


def _middle() -> tuple[sympy.Expr, sympy.Expr]:
    """``(stages, layers)``: the middle stages (every stage whose count is not given) and the layers of the
    fullest of them, as even as possible (whole layers per virtual chunk)."""
    stages = pp - sympy.Min(first_layers, 1) - sympy.Min(last_layers, 1)  # 0 = not given: an even stage
    rest = L - first_layers - last_layers
    return stages, sympy.Piecewise((0, sympy.Eq(stages, 0)), (sympy.ceiling(rest / (stages * vp)) * vp, True))


def stage_layers() -> sympy.Expr:
    """The layers of the bottleneck pipeline stage (the one every micro-batch waits for): the split as even as
    possible, ceiling(n_layers / (pp vp)) vp (every virtual chunk whole layers); with first_stage_layers /
    last_stage_layers given (0: not given), the largest of those and a middle stage's (``SRC_STAGES``)."""
    even = sympy.ceiling(L / (pp * vp)) * vp
    _, middle = _middle()
    return sympy.Piecewise((even, sympy.Eq(first_layers + last_layers, 0)),
                           (sympy.Max(first_layers, last_layers, middle), True))


def in_flight_layers() -> sympy.Expr:
    """Layers times micro-batches in flight on the stage whose saved activations peak under 1F1B: stage i of pp
    holds pp - i micro-batches' activations of its layers (Korthikanti et al. 2022 §4.2.3: the first stage, pp x
    n_layers / pp = n_layers when even). The even split puts its fuller stages first; with first/last counts
    given, the largest of the first stage's pp, the second's pp - 1 and the last stage's one."""
    even = pp * sympy.ceiling(L / (pp * vp)) * vp
    _, middle = _middle()
    first = sympy.Piecewise((middle, sympy.Eq(first_layers, 0)), (first_layers, True))
    return sympy.Piecewise((even, sympy.Eq(first_layers + last_layers, 0)),
                           (sympy.Max(pp * first, (pp - 1) * middle, last_layers), True))
