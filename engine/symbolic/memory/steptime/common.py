"""The step-time model's symbols, sources and fitted knobs, shared by its modules."""

from __future__ import annotations

import sympy

from engine.symbolic.memory.base import L, pp, vp
from engine.symbolic.symbols import symbol

peak, attn_peak, hbm_bw = symbol("peak_flops"), symbol("attention_peak_flops"), symbol("hbm_bandwidth")
link_bw, net_bw, per_node = symbol("link_bandwidth"), symbol("inter_bandwidth"), symbol("devices_per_node")
global_batch, cp = symbol("global_batch"), symbol("cp")
eta_mm, eta_net, alpha = symbol("matmul_efficiency"), symbol("comm_efficiency"), symbol("collective_latency")
eta_attn = symbol("attention_efficiency")
ceiling, attn_ceiling = symbol("matmul_ceiling"), symbol("attention_ceiling")

SRC_RING = ("ring collectives: Thakur, Rabenseifner & Gropp 2005 (all-reduce 2(p-1)/p n / B + 2(p-1) alpha); NCCL "
            "bus bandwidth (nccl-tests doc/PERFORMANCE.md); Megatron-LM (Shoeybi et al. 2019 §3: 2 all-reduces per "
            "layer forward, 2 backward; Korthikanti et al. 2022 §4.2.2: reduce-scatter + all-gather with sequence "
            "parallelism, the same bytes)")
SRC_PIPE = ("Narayanan et al. 2021 §2.2 (1F1B bubble (p - 1)/m of the ideal time; interleaved (p - 1)/(v m)); "
            "point-to-point sends of one micro-batch's activations between stages, v times as many interleaved "
            "(§2.2.2)")
SRC_ROOF = "roofline (Williams, Waterman & Patterson 2009): the longer of FLOPs / peak and bytes / bandwidth"
SRC_DP = ("data parallelism: a ring all-reduce of the gradients (PyTorch DDP, Megatron); ZeRO-1/2 reduce-scatter the "
          "gradients and all-gather the parameters (the same bytes); ZeRO-3/FSDP also all-gathers the parameters for "
          "the backward (1.5x; Rajbhandari et al. 2020 §7); hybrid sharding (FSDP HYBRID_SHARD; MaxText ICI-FSDP x "
          "DCN-data; Zhao et al. 2023, PyTorch FSDP §3.2.2) shards within groups of shard_group devices and "
          "all-reduces each shard across the dp / shard_group groups; what of it hides behind compute: SRC_OVERLAP")
SRC_NCCL = ("ring bus bandwidth and latency, nccl-tests as collected in Bekman, ml-engineering network/README.md "
            "(commit 744d01e): NVLink4 all-reduce 0.816, all-gather 0.803, reduce-scatter 0.806 of the link; NVLink3 "
            "0.783; EFA NIC 0.73; about 6 us per ring step inside a node, 8 us across nodes; InfiniBand: DeepEP's "
            "internode all-to-all reaches 43 of a CX7 400 Gb/s NIC's ~50 GB/s (deepseek-ai/DeepEP docs/legacy.md, EP "
            "16), 0.86; hierarchical rings: NCCL runs one ring per NIC (channel), so a group with k members per node "
            "crosses nodes over k NICs, min(link, k x NIC)")
SRC_OVERLAP = ("overlap as physics, per collective: exposed = max(floor, communication - the compute it hides "
               "behind). DP (Megatron-Core overlap_grad_reduce / overlap_param_gather; PyTorch DDP bucketing, Li "
               "et al. 2020 §3.2.3; NeMo performance docs: DP overlap exposes only one DP communication chunk): the "
               "gradient reduction hides behind the last micro-batch's backward, the ZeRO-1/2 parameter gather "
               "behind the first forward, the last bucket (Megatron-Core bucket_size max(40M, 1M x dp) parameters) "
               "exposed; ZeRO-3/FSDP (reshard_after_forward, its default) gathers the parameters forward and "
               "backward and reduce-scatters the gradients every micro-batch, prefetched a layer ahead behind the "
               "micro-batch's compute, one layer's share exposed. TP (Transformer Engine userbuffers comm-GEMM "
               "overlap): behind the micro-batch's GEMMs; EP behind what the GEMMs leave; PP (Megatron-Core "
               "overlap_p2p_comm): each send behind one forward. Without overlap, all of it exposed")
SRC_EP = ("expert parallelism: two all-to-alls (dispatch, combine) per MoE layer forward and two backward, each of "
          "the micro-batch's top_k token copies (Lepikhin et al. 2021, GShard §2.2; Megatron-Core token dispatcher)")
SRC_CP = ("context parallelism: ring attention passes each device's K and V around the cp ring, cp - 1 hops forward "
          "and backward (Liu et al. 2023, Ring Attention; Megatron-Core context parallelism)")
# Two knobs are fitted, on the 136 usable measured runs of the four source groups of the shared file only
# (Korthikanti et al. 2022, Narayanan et al. 2021, MT-NLG, MosaicML llm-foundry): `python benchmarks/
# validate_steptime.py --calibrate korthikanti2022,narayanan2021_t2,mtnlg2022,mpt_llmfoundry` (grid search in steps
# of 0.01, the mean over the groups of each group's median |log error|): matmul_efficiency, and attention_efficiency,
# which prices eager attention only (fused kernels run at their libraries' published curves, Device.values). The
# other sources are predictions. Every other constant is published, not fitted: the communication's (SRC_NCCL),
# the grouped GEMMs' (DeepGEMM), the overlap's contention (DeepSeek-V3); the overlap itself is the physics of what
# each collective hides behind (SRC_OVERLAP). A TPU's matmul_efficiency is the device's own value, a third knob
# fitted on MaxText's TPU v5e table alone (engine/catalog/hardware.py TPU_MATMUL_EFFICIENCY).
DEFAULTS = {
    "matmul_efficiency": sympy.Rational(73, 100),  # of the measured matmul ceiling (matmul_ceiling x peak_flops)
    "attention_efficiency": sympy.Rational(3, 10),  # eager attention: of attention_ceiling x attention_peak_flops
    # (the 16-bit ceiling and peak, also under fp8), on the FLOPs the kernels execute
    # a routed expert's grouped GEMM reaches M / (M + expert_half_tokens) of the dense rate with M tokens per expert:
    # DeepGEMM's published grouped (contiguous) fp8 GEMMs on H800 fit r_max M / (M + ~120) (deepseek-ai/DeepGEMM
    # README performance tables; dense GEMMs ~220); not fitted on any run here
    "expert_half_tokens": sympy.Integer(120),
    # ring bus bandwidth over the scale-up link / the link (nccl-tests on NVLink4: all-reduce 0.816, all-gather
    # 0.803, reduce-scatter 0.806; NVLink3 0.783): published, not fitted (SRC_NCCL)
    "comm_efficiency": sympy.Rational(4, 5),
    "network_efficiency": sympy.Rational(86, 100),  # the same across nodes over an InfiniBand NIC (SRC_NCCL)
    "collective_latency": sympy.Rational(6, 1000000),  # 6 us per ring step inside a node (NVLink; SRC_NCCL)
    "network_latency": sympy.Rational(8, 1000000),  # 8 us per ring step that crosses nodes (SRC_NCCL)
    "dp_bucket_params": sympy.Integer(40_000_000),  # Megatron-Core DDP bucket: max(40M, 1M x dp) parameters
    # communication kernels hidden behind compute take SMs from it: DeepSeek-V3 (arXiv:2412.19437 §3.2.2) dedicates
    # 20 of the H800's 132 SMs to its overlapped all-to-alls ("only 20 SMs are sufficient to fully utilize the
    # bandwidths of IB and NVLink"); NCCL's ring kernels take one SM per channel, as many: 20/132 of the compute
    "overlap_contention": sympy.Rational(20, 132),
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
