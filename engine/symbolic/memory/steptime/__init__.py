"""Step time: a roofline per micro-batch, collectives as NCCL runs them, overlap as physics, the pipeline.

Training (one optimizer step of ``global_batch`` sequences of ``seq_len`` tokens; ``batch`` is the
micro-batch; dp x tp x pp x cp devices; m = global_batch / (dp batch) micro-batches per pipeline):

    t_step = (m + (pp - 1) / vp) t_micro + t_p2p + t_dp + t_optimizer
    t_micro = max(GEMMs + attention, bytes / hbm_bandwidth) + element-wise + loss + t_tp + t_ep + t_cp

per micro-batch and device, on the bottleneck stage's layers (compute.py): the GEMMs' hardware FLOPs at
peak_flops x matmul_ceiling x matmul_efficiency (routed experts' grouped GEMMs at M / (M + m_half) of it), the
attention kernels at their library's published curve r_max n / (n + n_half) in the tokens n of a sequence on the
device (eager attention at attention_efficiency). Collectives (collectives.py): rings inside a node at
comm_efficiency x the scale-up link, one ring per NIC across nodes (min(link, k NICs) at network_efficiency),
alpha per ring step; an all-to-all's peers in the node over the link, the rest over the network. What the stack
overlaps (parallel.py, training.py) is exposed as max(floor, comm - the compute it hides behind), the hidden part
slowing the compute by overlap_contention; the rest is exposed whole. Sources: common.py (SRC_*, DEFAULTS).

Inference: ``ttft`` is a prefill's roofline (its FLOPs or its bytes, whichever takes longer) plus its
tensor-parallel all-reduces; ``tpot`` one decode step: every weight and the KV cache read once
(Pope et al. 2022 §2; kipply, Transformer Inference Arithmetic).
"""

from __future__ import annotations

import sympy

from engine.symbolic.formulas.base import Quantity
from engine.symbolic.memory.steptime.collectives import all_reduce, all_to_all, bandwidth, half_ring
from engine.symbolic.memory.steptime.common import DEFAULTS, alpha
from engine.symbolic.memory.steptime.layout import (LAYOUT_RULES, LayoutRule, divisors_text, layout_rules,
                                                    validity)
from engine.symbolic.memory.steptime.training import training
from engine.symbolic.symbols import symbol

__all__ = ["DEFAULTS", "LAYOUT_RULES", "LayoutRule", "all_reduce", "all_to_all", "alpha", "bandwidth", "defaults",
           "divisors_text", "half_ring", "layout_rules", "quantities", "symbol", "training",
           "validity"]


def quantities(structure, o) -> list[Quantity]:
    return training(structure, o)


def defaults() -> dict[str, sympy.Expr]:
    return dict(DEFAULTS)
