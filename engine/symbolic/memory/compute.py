"""Compute: FLOPs per token and per step (model and hardware) and the training time.

Sources: Kaplan et al. 2020 §2.1 (2 FLOPs per weight per token, backward = 2 x forward); PaLM
(Chowdhery et al. 2022) App. B; Narayanan et al. 2021 §5.1 Eq. (3) and Eq. (4).
"""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.base import Quantity
from engine.symbolic.formulas.architectures import mixer_counts, mlp_counts
from engine.symbolic.memory.base import L, V, a, b, h, mfu, n_gpus, peak_flops, q, qi, quantity, s, tokens
from engine.symbolic.memory.inference import STATE_KINDS
from engine.symbolic.symbols import symbol


def quantities(structure, o) -> list[Quantity]:
    """``flops_forward_token`` ... ``train_seconds`` for ``o.mode`` and ``o.recompute``."""
    qs: list[Quantity] = []

    def add(name, definition, long_name, latex, source, units="bytes", note=""):
        qs.append(quantity(name, definition, long_name, latex, source, units=units, note=note))

    mlps = mlp_counts(structure)
    n_matmul = qi("params_attention") + qi("params_mlp")
    if set(structure.mixer_kinds) & STATE_KINDS:
        n_matmul += qi("params_ssm")
    if structure.moe:  # a token runs through top_k routed experts (and every shared expert)
        d_in = C.moe_latent_size if structure.moe_latent else h
        routed = C.top_k * C.mlp(structure.mlp, structure.expert_bias, C.d_ff_expert, d_in)
        shared = C.n_shared_experts * C.mlp(structure.mlp, structure.mlp_bias, C.d_ff_shared) \
            if structure.shared_experts else 0
        if structure.moe_latent:
            shared += C.latent_projections(structure.mlp_bias)
        n_matmul += mlps["moe"] * (routed + shared)
    attn_factor = sympy.Rational(1, 2) if o.causal_flops == "half" else 1
    attn_fwd = attention_token_flops(structure, s, attn_factor)
    fwd_token = 2 * n_matmul + 2 * h * V + attn_fwd + 2 * qi("params_router")
    add("flops_attention_token", attn_fwd, "forward FLOPs per token of the attention scores and their values "
        "(and recurrent state updates)", r"C_{\mathrm{attn}}", "the attention term of flops_forward_token", units="1")
    add("flops_forward_token", fwd_token, "forward FLOPs per token (matmuls, attention, logits)",
        r"C_{\mathrm{fwd}}", "2 FLOPs per weight per token (Kaplan et al. 2020 §2.1) + attention 4 s d_attn per layer "
        "(full, Narayanan/PaLM) or half of it (causal, Kaplan), a local layer's over its window, MLA's over its "
        "query/key and value widths + recurrent state updates of Mamba-2 / linear-attention layers (4 or 6 FLOPs per "
        "state element) + logits 2 d V", units="1")
    if o.mode == "training":
        add("flops_token", 3 * q("flops_forward_token"), "model FLOPs per training token (forward + backward)",
            r"C_{\mathrm{token}}", "backward = 2 x forward (Kaplan et al. 2020 §2.1)", units="1")
    else:
        add("flops_token", q("flops_forward_token"), "model FLOPs per token of a prefill (one forward pass)",
            r"C_{\mathrm{token}}", "Kaplan et al. 2020 §2.1", units="1")
    recompute_fwd = {"none": 0, "selective": attn_fwd, "full": fwd_token - 2 * h * V}[o.recompute]
    add("hardware_flops_token", q("flops_token") + recompute_fwd,
        "hardware FLOPs per training token (model FLOPs + recomputation)", r"C_{\mathrm{hw}}",
        "Narayanan et al. 2021 §5.1: full recompute adds one forward pass without the logits", units="1")
    add("flops_step", q("flops_token") * b * s, "model FLOPs of one step (batch x seq_len tokens)",
        r"C_{\mathrm{step}}", "flops_token x tokens per step", units="1")
    add("flops_palm_token", 6 * (qi("params_active") - qi("params_embedding") - qi("params_head")
                                 - qi("params_positions")) + 12 * L * a * C.head_dim * s,
        "PaLM's model FLOPs per token: 6N + 12 L H Q T (N: active, non-embedding)", r"C_{\mathrm{PaLM}}",
        "Chowdhery et al. 2022 App. B (N without embeddings), as in nanoGPT estimate_mfu", units="1")
    add("flops_narayanan_step", 72 * b * s * L * h**2 * (1 + s / (6 * h) + V / (12 * L * h)),
        "Narayanan's model FLOPs per iteration, no recompute: 72 B s l h^2 (1 + s/6h + V/12lh)",
        r"F_{72}", "Narayanan et al. 2021 §5.1 (derived without the recompute pass)", units="1",
        note="assumes MHA and d_ff = 4 d_model (GPT blocks)")
    add("flops_narayanan_recompute_step", 96 * b * s * L * h**2 * (1 + s / (6 * h) + V / (16 * L * h)),
        "Narayanan's FLOPs per iteration with full recompute: 96 B s l h^2 (1 + s/6h + V/16lh)",
        r"F_{96}", "Narayanan et al. 2021 §5.1 Eq. (3)", units="1", note="assumes MHA and d_ff = 4 d_model")
    add("train_seconds", q("flops_token") * tokens / (n_gpus * peak_flops * mfu),
        "training time for `tokens` tokens on n_gpus devices at peak_flops x mfu", r"T",
        "Narayanan et al. 2021 Eq. (4) form: 6TP/(nX) generalised to the model FLOPs per token", units="s")
    return qs


def attention_token_flops(structure, context: sympy.Expr, factor: sympy.Expr = 1) -> sympy.Expr:
    """Forward FLOPs of one token's attention over ``context`` tokens (QK^T and AV, 2 FLOPs per multiply-add; x
    ``factor``: 1/2 for the causal half), a local layer's over its window, plus the recurrent state updates of
    Mamba-2 / linear-attention layers (not scaled by ``factor``)."""
    counts = mixer_counts(structure)
    if structure.mla:  # scores over qk_nope + qk_rope per head, values of v_head_dim
        per_ctx = 2 * a * (C.qk_nope_head_dim + C.qk_rope_head_dim) + 2 * a * C.v_head_dim
    else:
        per_ctx = 4 * a * C.head_dim
    contexts = {"full_attention": context, "sliding_attention": sympy.Min(context, symbol("sliding_window")),
                "chunked_attention": sympy.Min(context, symbol("attention_chunk_size"))}
    if structure.attention_kinds == ("full_attention",) and not structure.separate_mlp:
        flops = L * context * per_ctx * factor
    else:  # local layers attend to their window at most (an upper bound for chunked layers)
        flops = sum(counts[k] * contexts[k] for k in structure.attention_kinds) * per_ctx * factor
    state_flops = {"mamba": 4 * C.mamba_n_heads * C.mamba_head_dim * C.ssm_state_size,
                   "linear_attention": 6 * C.lin_v_heads * C.lin_k_dim * C.lin_v_dim}
    for kind in set(structure.mixer_kinds) & STATE_KINDS:  # recurrent state update and read-out per token
        flops += counts[kind] * state_flops[kind]
    return flops
