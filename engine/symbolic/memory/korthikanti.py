"""Korthikanti et al. 2022: activations per device under tensor, sequence and pipeline parallelism.

Sources: Korthikanti et al. 2022 §4.1 (sbh(34 + 5as/h) per layer), Table 2 (TP, SP, selective and
full recompute), §4.2.3 (pipeline first stage, interleaving); Megatron-LM theoretical_memory_usage.py
(the logits term); Dao et al. 2022 (FlashAttention) §3.1 for fused attention.
"""

from __future__ import annotations

import sympy

from engine.options.memory import model_refusals
from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.architectures import mixer_counts, mlp_counts
from engine.symbolic.memory.steptime.common import in_flight_layers
from engine.symbolic.memory.base import additive_moments, no_conditions, L, Term, V, a, b, etp, h, pp, s, tp, vp

name = "korthikanti"
SRC_KORTHIKANTI = ("Korthikanti et al. 2022 §4.1 (sbh(34 + 5as/h) per layer), Table 2 (TP, SP, selective and full "
                   "recompute), §4.2.3 (pipeline first stage, interleaving); Megatron-LM theoretical_memory_usage.py")
SRC_FLASH = "Dao et al. 2022 (FlashAttention) §3.1: no s^2 term; fp32 logsumexp per row saved"
SRC_FP8_ACT = ("TransformerEngine transformer_engine/pytorch/module/linear.py (_Linear.forward saves the fp8-cast "
               "input, inputmat / its columnwise copy, for the wgrad GEMM) and layernorm_linear.py (LayerNormLinear "
               "saves the LayerNorm input in 16 bits, mu/rsigma and the fp8 ln_out); DotProductAttention stays "
               "16-bit (DelayedScaling.fp8_dpa = False by default)")
SRC_MOE_ACT = ("Megatron-Core MoE token dispatch (moe_utils.permute: each token copied once per routed expert; "
               "the grouped expert MLP saves its permuted input and hidden activations; the router's fp32 logits); "
               "expert parallelism: megatron/core/transformer/moe/token_dispatcher.py (all-to-all over ep, "
               "all-gather over etp)")
source = SRC_KORTHIKANTI
# an additive model: everything is alive at once, nothing refused, no conditions
validity, moments = no_conditions, additive_moments


def refuses(o) -> list[str]:
    """Training options this model cannot express: its rules in ``engine.options.memory.RULES`` (none today)."""
    return model_refusals(name, o)


def attention_dims(structure) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr, sympy.Expr]:
    """Widths of the saved query, key, value and output-projection input of one attention layer (MLA:
    decompressed per head; the output projection reads n_heads values)."""
    if structure.mla:
        qk = a * (C.qk_nope_head_dim + C.qk_rope_head_dim)
        return qk, qk, a * C.v_head_dim, a * C.v_head_dim
    kv = C.n_kv_heads * C.head_dim
    return a * C.head_dim, kv, kv, a * C.head_dim


def activations(structure, o) -> Term:
    """Korthikanti et al. §4.1 / Table 2, per device; GQA, d_ff != 4h, gated MLPs and MoE are derived terms.

    With MHA, d_ff = 4 d_model and dropout on, this is exactly Table 2: sbh(34 + 5as/h) per layer
    without parallelism, sbh(10 + 24/t + 5as/(ht)) with TP, sbh(34/t + 5as/(ht)) with TP + SP,
    sbh(10 + 24/t) / 34sbh/t with selective recompute, 2sbh with full recompute.

    MoE layers (Megatron's token dispatch): each token's MLP activations once per routed expert it
    uses. With ep x etp x edp = dp x tp devices a device holds sb top_k etp / tp dispatched tokens of
    f_expert / etp hidden units each: the routed experts' hidden activations are sb top_k f_expert / tp
    whatever ep and etp, and their saved inputs (the permuted tokens, all-gathered over etp) are
    sb top_k h etp / tp; the router keeps fp32 logits (4 sb n_experts) and shared experts are dense
    MLPs split by tp. Mixed models sum per layer kind (dense layers, MoE layers).
    """
    sb = s * b
    mask = 1 if o.dropout else 0
    w = o.activation_bytes // 2  # Table 2 counts 16-bit activations; fp32 doubles them (not masks)
    q_dim, k_dim, v_dim, o_dim = attention_dims(structure)
    gated = 6 if structure.mlp == "gated" else 4  # bytes per hidden unit: fc1 (and gate) outputs, activation out
    fp8 = o.precision == "fp8"
    # kept whole by TP without SP: LN inputs, the two dropout masks, attention and MLP block inputs
    whole = w * 2 * structure.norms_per_layer * sb * h + 2 * mask * sb * h + w * 4 * sb * h
    # split by TP: Q, K, V, output-projection input
    attn = w * (2 * sb * q_dim + 2 * sb * k_dim + 2 * sb * v_dim + 2 * sb * o_dim)
    if structure.mla:  # the compressed latents are saved too (kv_a / q_a outputs, before their norms)
        attn += w * 2 * sb * (C.kv_lora_rank + C.qk_rope_head_dim + (C.q_lora_rank if structure.q_lora else 0))
    if fp8:  # TE Linear / LayerNormLinear save their fp8-cast input (1 byte) for the wgrad GEMM
        whole -= 2 * sb * h  # QKV and fc1 inputs (LayerNormLinear's fp8 ln_out); LN inputs stay 16-bit
        attn -= sb * o_dim  # output-projection input; Q, K, V stay 16-bit
    dense = w * gated * sb * C.d_ff - (sb * C.d_ff if fp8 else 0)  # fc2 input fp8 under TE
    routed = shared = dispatched = router = sympy.Integer(0)
    if structure.moe:
        k = C.top_k
        routed = w * gated * sb * k * C.d_ff_expert - (sb * k * C.d_ff_expert if fp8 else 0)
        if structure.shared_experts:
            shared = w * gated * sb * C.n_shared_experts * C.d_ff_shared
        dispatched = w * 2 * sb * k * h * etp / tp
        router = 4 * sb * C.n_experts
    if o.attention != "eager":  # every fused kernel (SDPA, FlashAttention 1-3, cuDNN, splash)
        scores = 4 * a * sb  # fused kernels keep an fp32 log-sum-exp per row; no s^2 term
    else:
        scores = (w * 4 + mask) * a * s * sb if mask else w * 2 * a * s * sb  # softmax out (+ mask, dropout out)
    t = tp
    sp = o.sequence_parallel

    def layer(split, kept_whole, gathered=0):
        """One layer's bytes: ``split`` divided by TP, ``kept_whole`` by TP only with SP, ``gathered`` never."""
        if o.recompute == "full":
            return 2 * sb * h / (t if sp else 1)
        return ((kept_whole + split) / t if sp else kept_whole + split / t) + gathered

    att_split = attn + (0 if o.recompute == "selective" else scores)
    mlps = mlp_counts(structure)
    if o.recompute == "full":
        total = layer(0, 0) * L
    elif structure.uniform:
        mlp = (routed + shared) if structure.moe else dense
        total = layer(att_split + mlp, whole + router, dispatched) * L
    else:
        attn_layers = L if not structure.separate_mlp else sum(mixer_counts(structure).values())
        total = layer(att_split, whole) * attn_layers
        total += mlps.get("dense", 0) * layer(dense, 0)
        if structure.moe:
            total += mlps["moe"] * layer(routed + shared, router, dispatched)
    # first pipeline stage: p micro-batches in flight x L/p layers = L layers (§4.2.3); interleaving costs more;
    # uneven stages (steptime.common.in_flight_layers): the peak stage's layers x micro-batches in flight
    interleave = sympy.Piecewise((1, sympy.Eq(vp, 1)), (1 + (pp - 1) / (pp * vp), True))
    note = ("Table 2 assumes 16-bit activations, eager attention and dropout (precision bf16, attention eager, "
            "dropout true reproduce it); fp32 doubles every tensor but the masks; GQA, d_ff != 4 d_model, gated "
            "MLPs, MLA and MoE (top_k dispatched tokens, expert parallelism) are derived generalisations "
            "(Megatron's 18 + 4f/h)")
    src = SRC_KORTHIKANTI + ("; " + SRC_FLASH if o.attention != "eager" else "")
    if structure.moe:
        src += "; " + SRC_MOE_ACT
    if fp8:
        src += "; " + SRC_FP8_ACT
        note += ("; fp8: the four linear layers' saved inputs are fp8 (1 byte), every other tensor stays 16-bit "
                 "(TE DotProductAttention without fp8_dpa, norms, activation functions, softmax)")
    # uneven pipeline stages: the stage whose layers x micro-batches in flight is largest (n_layers when even)
    return Term(total * interleave * in_flight_layers() / L, src, note)


def logits(structure, o) -> Term:
    """Megatron: final LN, output projection input and fp32 cross-entropy, when p = 1 (÷ t)."""
    return Term(sympy.Piecewise((4 * s * b * h * (1 + V / h) / tp, sympy.Eq(pp, 1)), (0, True)),
                "Megatron-LM theoretical_memory_usage.py: 4sbh(1 + V/h) / t on the last stage (p = 1)")
