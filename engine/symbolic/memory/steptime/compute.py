"""One micro-batch's compute on one device: the roofline of its matmuls and attention kernels, the memory-bound
element-wise kernels and the loss."""

from __future__ import annotations

import sympy

from engine.symbolic.memory.base import b, h, pp, q, s, tp
from engine.symbolic.memory.steptime.common import (attn_ceiling, attn_peak, ceiling, cp, eta_attn, eta_mm,
                                                    hbm_bw, peak, stage_layers)
from engine.symbolic.symbols import symbol

def micro_batch(structure, o, act: int, m: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """``(micro, t_attn)``: one micro-batch's roofline on one device (its compute or its memory traffic, plus the
    memory-bound element-wise kernels and loss), and the attention kernels' share of its compute."""
    layers = stage_layers()
    # compute: hardware FLOPs (model FLOPs + recomputation) of this device's share of a micro-batch; the
    # attention kernels (forward, backward x 2, and the recomputed forward) at their own efficiency
    share = b * s / (tp * pp * cp)
    attn_passes = 3 + (1 if o.recompute != "none" else 0)
    attn = q("flops_attention_token") * attn_passes * share
    # what the attention kernels execute: a fused causal kernel (FlashAttention, SDPA's flash and efficient
    # kernels) skips the masked half of the scores; eager attention multiplies them all and masks afterwards
    counted = sympy.Rational(1, 2) if o.causal_flops == "half" else 1
    executed = (sympy.Rational(1, 2) if o.attention != "eager" else 1) / counted
    t_attn = attn * executed / (attn_peak * attn_ceiling * eta_attn)
    compute = (q("hardware_flops_token") * share - attn) / (peak * ceiling * eta_mm) + t_attn
    # memory traffic: the weights read forward, backward (dgrad) and written (wgrad), the saved activations
    # written and read once; the matmuls' roofline
    traffic = 3 * q("mem_weights") + 2 * q("mem_activations") / (m * cp)  # a cp shard holds 1/cp of the sequence
    # element-wise kernels (norms, residual adds, the MLP activation, their backward) are memory-bound and run
    # between the matmuls: forward ~ 10 d_model + 2 d_ff elements read or written per token and layer, backward
    # twice that (recomputation adds a forward)
    passes = 3 + (1 if o.recompute == "full" else 0)
    # the MLP's activation runs over d_ff units per token, or over top_k experts' in a MoE layer
    width = symbol("top_k") * symbol("d_ff_expert") if structure.moe else symbol("d_ff")
    elementwise = passes * (10 * h + 2 * width) * act * layers * b * s / cp / tp
    # the loss over the vocabulary (on the last pipeline stage, vocab-parallel over tp): the logits upcast to fp32,
    # softmax and its gradient, about eight fp32 passes over b s V / tp elements (Megatron's VocabParallel-
    # CrossEntropy, PyTorch's log_softmax + nll_loss): memory-bound, and the bottleneck stage's
    loss = 8 * 4 * b * s / cp * symbol("vocab") / tp
    return sympy.Max(compute, traffic / hbm_bw) + (elementwise + loss) / hbm_bw, t_attn

