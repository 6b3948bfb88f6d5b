"""Step time: a roofline per micro-batch, collectives in the alpha-beta form, the pipeline schedule.

Training (one optimizer step of ``global_batch`` sequences of ``seq_len`` tokens; ``batch`` is the
micro-batch; dp x tp x pp x cp devices):

    t_step = (m + (pp - 1) / vp) t_micro + t_p2p + (1 - dp_overlap) t_dp + t_optimizer

with m = global_batch / (dp batch) micro-batches per pipeline, and per micro-batch and device

    t_micro = max(F / (peak_flops matmul_efficiency), bytes / hbm_bandwidth) + t_tp + t_ep + t_cp

F the hardware FLOPs of its share of the layers (recompute included). Collectives on p devices move
``bytes`` in the ring forms (Thakur et al. 2005; NCCL's bus bandwidth, nccl-tests PERFORMANCE.md):
all-reduce 2 (p - 1)/p bytes / bw + 2 (p - 1) alpha, reduce-scatter and all-gather (p - 1)/p bytes /
bw + (p - 1) alpha, all-to-all (p - 1)/p bytes / bw + (p - 1) alpha; bw = comm_efficiency x the link
a group uses: the scale-up link while the group fits in a node, the network otherwise.

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
from engine.symbolic.memory.steptime.training import inference, training
from engine.symbolic.symbols import symbol

__all__ = ["DEFAULTS", "LAYOUT_RULES", "LayoutRule", "all_reduce", "all_to_all", "alpha", "bandwidth", "defaults",
           "divisors_text", "half_ring", "inference", "layout_rules", "quantities", "symbol", "training",
           "validity"]


def quantities(structure, o) -> list[Quantity]:
    return training(structure, o) if o.mode == "training" else inference(structure, o)


def defaults() -> dict[str, sympy.Expr]:
    return dict(DEFAULTS)
