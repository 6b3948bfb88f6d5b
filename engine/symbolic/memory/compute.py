"""Compute: FLOPs per token and per step (model and hardware) and the training time.

Sources: Kaplan et al. 2020 §2.1 (2 FLOPs per weight per token, backward = 2 x forward); PaLM
(Chowdhery et al. 2022) App. B; Narayanan et al. 2021 §5.1 Eq. (3) and Eq. (4).
"""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.base import Quantity
from engine.symbolic.memory.base import L, V, a, b, h, mfu, n_gpus, peak_flops, q, qi, quantity, s, tokens


def quantities(structure, o) -> list[Quantity]:
    """``flops_forward_token`` ... ``train_seconds`` for ``o.mode`` and ``o.recompute``."""
    qs: list[Quantity] = []

    def add(name, definition, long_name, latex, source, units="bytes", note=""):
        qs.append(quantity(name, definition, long_name, latex, source, units=units, note=note))

    head_dim = C.head_dim
    q_dim = a * head_dim
    n_matmul = qi("params_attention") + qi("params_mlp")
    if structure.moe:  # a token runs through top_k experts (and every shared expert)
        n_matmul += L * C.top_k * C.mlp(structure.mlp, structure.mlp_bias)
        if structure.shared_experts:
            n_matmul += L * C.n_shared_experts * C.mlp(structure.mlp, structure.mlp_bias, C.d_ff_shared)
    attn_factor = sympy.Rational(1, 2) if o.causal_flops == "half" else 1
    attn_fwd = 4 * L * s * q_dim * attn_factor  # QK^T and AV, 2 FLOPs per multiply-add
    fwd_token = 2 * n_matmul + 2 * h * V + attn_fwd + 2 * qi("params_router")
    add("flops_forward_token", fwd_token, "forward FLOPs per token (matmuls, attention, logits)",
        r"C_{\mathrm{fwd}}", "2 FLOPs per weight per token (Kaplan et al. 2020 §2.1) + attention 4 s d_attn per layer "
        "(full, Narayanan/PaLM) or half of it (causal, Kaplan) + logits 2 d V", units="1")
    if o.mode == "training":
        add("flops_token", 3 * q("flops_forward_token"), "model FLOPs per training token (forward + backward)",
            r"C_{\mathrm{token}}", "backward = 2 x forward (Kaplan et al. 2020 §2.1)", units="1")
    else:
        add("flops_token", q("flops_forward_token"), "model FLOPs per token of a prefill (one forward pass)",
            r"C_{\mathrm{token}}", "Kaplan et al. 2020 §2.1", units="1")
    recompute_fwd = {"none": 0, "selective": 4 * L * s * q_dim * attn_factor, "full": fwd_token - 2 * h * V}[o.recompute]
    add("hardware_flops_token", q("flops_token") + recompute_fwd,
        "hardware FLOPs per training token (model FLOPs + recomputation)", r"C_{\mathrm{hw}}",
        "Narayanan et al. 2021 §5.1: full recompute adds one forward pass without the logits", units="1")
    add("flops_step", q("flops_token") * b * s, "model FLOPs of one step (batch x seq_len tokens)",
        r"C_{\mathrm{step}}", "flops_token x tokens per step", units="1")
    add("flops_palm_token", 6 * (qi("params_active") - qi("params_embedding") - qi("params_head")
                                 - qi("params_positions")) + 12 * L * a * head_dim * s,
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
