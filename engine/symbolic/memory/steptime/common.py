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
    # a routed expert's grouped GEMM reaches M / (M + expert_half_tokens) of the dense rate with M tokens per expert:
    # DeepGEMM's published grouped (contiguous) fp8 GEMMs on H800 fit r_max M / (M + ~120) (deepseek-ai/DeepGEMM
    # README performance tables; dense GEMMs ~220); not fitted on any run here
    "expert_half_tokens": sympy.Integer(120),
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
stage, in_flight = symbol("stage_layers"), symbol("in_flight_layers")


def stage_layers() -> sympy.Expr:
    """The layers of the bottleneck pipeline stage (the one every micro-batch waits for): the input
    ``stage_layers``, by default the split as even as possible (``even_stage_layers``); ``llm-sweep time`` gives
    it for Megatron's first/last stage counts (``layout.stage_split``, ``SRC_STAGES``). An input rather than the
    expression: the formulas stay small (the default is folded in once)."""
    return stage


def even_stage_layers() -> sympy.Expr:
    """ceiling(n_layers / (pp vp)) vp: whole layers per virtual chunk, the fullest stage's."""
    return sympy.ceiling(L / (pp * vp)) * vp


def in_flight_layers() -> sympy.Expr:
    """Layers times micro-batches in flight on the stage whose saved activations peak under 1F1B (stage i of pp
    holds pp - i micro-batches' activations of its layers; Korthikanti et al. 2022 §4.2.3: the first stage, pp x
    n_layers / pp = n_layers when even): the input ``in_flight_layers``, by default pp x the even split's
    fullest stage (its fuller stages first)."""
    return in_flight
