"""Korthikanti et al. 2022: activations per device under tensor, sequence and pipeline parallelism.

Sources: Korthikanti et al. 2022 §4.1 (sbh(34 + 5as/h) per layer), Table 2 (TP, SP, selective and
full recompute), §4.2.3 (pipeline first stage, interleaving); Megatron-LM theoretical_memory_usage.py
(the logits term); Dao et al. 2022 (FlashAttention) §3.1 for fused attention.
"""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import components as C
from engine.symbolic.memory.base import additive_moments, no_conditions, refuses_nothing, L, Term, V, a, b, h, pp, s, tp, vp

name = "korthikanti"
SRC_KORTHIKANTI = ("Korthikanti et al. 2022 §4.1 (sbh(34 + 5as/h) per layer), Table 2 (TP, SP, selective and full "
                   "recompute), §4.2.3 (pipeline first stage, interleaving); Megatron-LM theoretical_memory_usage.py")
SRC_FLASH = "Dao et al. 2022 (FlashAttention) §3.1: no s^2 term; fp32 logsumexp per row saved"
SRC_FP8_ACT = ("TransformerEngine transformer_engine/pytorch/module/linear.py (_Linear.forward saves the fp8-cast "
               "input, inputmat / its columnwise copy, for the wgrad GEMM) and layernorm_linear.py (LayerNormLinear "
               "saves the LayerNorm input in 16 bits, mu/rsigma and the fp8 ln_out); DotProductAttention stays "
               "16-bit (DelayedScaling.fp8_dpa = False by default)")
source = SRC_KORTHIKANTI
# an additive model: everything is alive at once, nothing refused, no conditions
refuses, validity, moments = refuses_nothing, no_conditions, additive_moments


def activations(structure, o) -> Term:
    """Korthikanti et al. §4.1 / Table 2, per device; GQA, d_ff != 4h, gated MLPs are derived terms.

    With MHA, d_ff = 4 d_model and dropout on, this is exactly Table 2: sbh(34 + 5as/h) per layer
    without parallelism, sbh(10 + 24/t + 5as/(ht)) with TP, sbh(34/t + 5as/(ht)) with TP + SP,
    sbh(10 + 24/t) / 34sbh/t with selective recompute, 2sbh with full recompute.
    """
    sb = s * b
    mask = 1 if o.dropout else 0
    w = 2 if o.precision == "fp32" else 1  # Table 2 counts 16-bit activations; fp32 doubles them (not masks)
    q_dim, kv_dim, f = a * C.head_dim, C.n_kv_heads * C.head_dim, C.d_ff
    experts = C.top_k if structure.moe else 1  # a token's MLP activations, once per expert it uses
    # kept whole by TP without SP: LN inputs, the two dropout masks, attention and MLP block inputs
    whole = w * 2 * structure.norms_per_layer * sb * h + 2 * mask * sb * h + w * 4 * sb * h
    # split by TP: Q, K, V, output-projection input; MLP hidden activations
    attn = w * (2 * sb * q_dim + 4 * sb * kv_dim + 2 * sb * q_dim)
    mlp = w * (6 if structure.mlp == "gated" else 4) * sb * f * experts
    split = attn + mlp
    if o.precision == "fp8":  # TE Linear / LayerNormLinear save their fp8-cast input (1 byte) for the wgrad GEMM
        whole -= 2 * sb * h  # QKV and fc1 inputs (LayerNormLinear's fp8 ln_out); LN inputs stay 16-bit
        split -= sb * q_dim + sb * f * experts  # output-projection and fc2 inputs; Q, K, V, GELU/SwiGLU stay 16-bit
    if o.attention in ("flash", "sdpa"):
        scores = 4 * a * sb  # fused kernels keep an fp32 log-sum-exp per row; no s^2 term
    else:
        scores = (w * 4 + mask) * a * s * sb if mask else w * 2 * a * s * sb  # softmax out (+ mask, dropout out)
    t = tp
    if o.recompute == "full":
        per_layer = 2 * sb * h / (t if o.sequence_parallel else 1)
    else:
        kept = split + (0 if o.recompute == "selective" else scores)
        per_layer = (whole + kept) / t if o.sequence_parallel else whole + kept / t
    # first pipeline stage: p micro-batches in flight x L/p layers = L layers (§4.2.3); interleaving costs more
    interleave = sympy.Piecewise((1, sympy.Eq(vp, 1)), (1 + (pp - 1) / (pp * vp), True))
    note = ("Table 2 assumes 16-bit activations, eager attention and dropout (precision bf16, attention eager, "
            "dropout true reproduce it); fp32 doubles every tensor but the masks; GQA, d_ff != 4 d_model, gated "
            "MLPs and MoE top_k are derived generalisations (Megatron's 18 + 4f/h)")
    src = SRC_KORTHIKANTI + ("; " + SRC_FLASH if o.attention != "eager" else "")
    if o.precision == "fp8":
        src += "; " + SRC_FP8_ACT
        note += ("; fp8: the four linear layers' saved inputs are fp8 (1 byte), every other tensor stays 16-bit "
                 "(TE DotProductAttention without fp8_dpa, norms, activation functions, softmax)")
    return Term(per_layer * L * interleave, src, note)


def logits(structure, o) -> Term:
    """Megatron: final LN, output projection input and fp32 cross-entropy, when p = 1 (÷ t)."""
    return Term(sympy.Piecewise((4 * s * b * h * (1 + V / h) / tp, sympy.Eq(pp, 1)), (0, True)),
                "Megatron-LM theoretical_memory_usage.py: 4sbh(1 + V/h) / t on the last stage (p = 1)")
