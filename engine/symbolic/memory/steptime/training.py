"""A training step's time (the pipeline of micro-batches, the exposed communication, the optimizer step) and an
inference batch's time to first token and per output token."""

from __future__ import annotations

import sympy

from engine.symbolic.formulas.base import Quantity
from engine.symbolic.memory.base import b, dp, h, pp, q, quantity, s, tp, vp
from engine.symbolic.memory.steptime.collectives import exposed, latency, per_byte
from engine.symbolic.memory.steptime.common import (SRC_CP, SRC_DP, SRC_EP, SRC_NCCL, SRC_OVERLAP,
                                                    SRC_PIPE, SRC_RING, SRC_ROOF, cp, global_batch, hbm_bw,
                                                    peak)
from engine.symbolic.memory.steptime.compute import micro_batch
from engine.symbolic.memory.steptime.parallel import backward_share, data_parallel, model_parallel

def training(structure, o) -> list[Quantity]:
    act = 4 if o.precision == "fp32" else 2  # bytes of an activation element on the wire
    m = global_batch / (dp * b)  # micro-batches per pipeline and step (gradient accumulation)
    # what communication hides behind: one micro-batch's compute on the device, its GEMMs at the matmul rate and its
    # attention kernels (compute.py's FLOPs side), without the roofline's max
    micro, t_attn, gemm = micro_batch(structure, o, act, m)
    hide = gemm + t_attn
    t_tp, t_ep, t_cp = model_parallel(structure, o, act, t_attn, gemm)
    t_micro = micro + t_tp + t_ep + t_cp
    # pipeline: the bubble and one micro-batch's activations sent forward and its gradient back per stage boundary;
    # interleaved, a device holds vp model chunks and sends each micro-batch on from every one of them, vp times
    # the sends (Narayanan et al. 2021 §2.2.2: "the amount of communication also increases by v")
    # (a tp-th of them per tensor-parallel rank when they are sequence-parallel shards, or when the stack sends
    # them partitioned: Megatron-LM 2021's scatter/gather, Narayanan et al. 2021 §4.1; DeepSpeed's pipe engine)
    sharded = o.sequence_parallel or o.pipeline_sends == "partitioned"
    p2p_bytes = act * b * s / cp * h / (tp if sharded else 1)
    send = p2p_bytes * per_byte(2, tp * dp) + latency(2, tp * dp)
    if "pp" in o.overlapped:  # Megatron-Core overlap_p2p_comm: each send hides behind the forward of the model
        # chunk it follows, a vp-th of a micro-batch's
        send = exposed(send, (1 - backward_share(o)) * hide / vp)
    t_p2p = sympy.Piecewise((0, sympy.Eq(pp, 1)), (2 * (vp * m + pp - 1) * send, True))
    t_pipe = (m + (pp - 1) / vp) * t_micro + t_p2p
    t_dp = data_parallel(structure, o, act, hide, m)
    # the optimizer step: model states read and written once (memory-bound)
    t_opt = 2 * q("mem_model_states") / hbm_bw
    step = t_pipe + t_dp + t_opt
    n_dev = dp * tp * pp * cp
    tokens_step = global_batch * s
    return [
        quantity("time_compute", m * micro, "roofline time of the step's micro-batches per device (FLOPs or bytes)",
                 r"T_{\mathrm{compute}}", SRC_ROOF + "; under fp8 the output layer's GEMMs at the 16-bit rate (fp8 "
                 "recipes convert the transformer layers' linears only: Megatron-Core's output_layer is not a "
                 "Transformer Engine module; torchtitan's float8 conversion skips 'output')", units="s"),
        quantity("time_tp", m * t_tp, "exposed tensor-parallel communication per step", r"T_{\mathrm{TP}}",
                 SRC_RING + "; " + SRC_NCCL + "; " + SRC_OVERLAP,
                 units="s"),
        quantity("time_ep", m * t_ep, "expert-parallel all-to-alls per step", r"T_{\mathrm{EP}}", SRC_EP, units="s"),
        quantity("time_cp", m * t_cp, "context-parallel ring exchanges per step", r"T_{\mathrm{CP}}", SRC_CP,
                 units="s"),
        quantity("time_bubble", (pp - 1) / vp * t_micro, "pipeline bubble per step", r"T_{\mathrm{bubble}}",
                 SRC_PIPE, units="s"),
        quantity("time_p2p", t_p2p, "pipeline point-to-point sends per step", r"T_{\mathrm{p2p}}", SRC_PIPE,
                 units="s"),
        quantity("time_dp", t_dp, "exposed data-parallel gradient communication per step",
                 r"T_{\mathrm{DP}}", SRC_DP + "; " + SRC_NCCL + "; " + SRC_OVERLAP, units="s"),
        quantity("time_optimizer", t_opt, "optimizer step (model states read and written once)",
                 r"T_{\mathrm{opt}}", SRC_ROOF, units="s"),
        quantity("step_time", step, "time of one training step", r"T_{\mathrm{step}}",
                 "sum of the above: " + SRC_PIPE, units="s"),
        quantity("tokens_per_s", tokens_step / q("step_time"), "training tokens per second, all devices",
                 r"\mathrm{tok/s}", "global_batch x seq_len / step_time", units="1/s"),
        quantity("step_mfu", q("flops_token") * tokens_step / (n_dev * peak * q("step_time")),
                 "model FLOPs utilization of the step", r"\mathrm{MFU}",
                 "Chowdhery et al. 2022 App. B: model FLOPs per second / peak", units="1"),
        quantity("step_hfu", q("hardware_flops_token") * tokens_step / (n_dev * peak * q("step_time")),
                 "hardware FLOPs utilization (recomputation counted)", r"\mathrm{HFU}",
                 "Chowdhery et al. 2022 App. B; Korthikanti et al. 2022 §6", units="1"),
    ]

