"""Transformer components as sympy expressions, one function per component (pure sympy).

Each function returns the parameter count of ONE instance of the component (per layer where
that applies) for the structural choices it is given. Sources are given per function; they are
carried into the quantities built from them (``architectures.py``).
"""

from __future__ import annotations

import sympy

from engine.symbolic.symbols import symbol

d_model, n_heads, n_kv_heads, head_dim = symbol("d_model"), symbol("n_heads"), symbol("n_kv_heads"), symbol("head_dim")
d_ff, vocab, n_positions, d_embed = symbol("d_ff"), symbol("vocab"), symbol("n_positions"), symbol("d_embed")
n_experts, top_k = symbol("n_experts"), symbol("top_k")
n_shared_experts, d_ff_shared = symbol("n_shared_experts"), symbol("d_ff_shared")

NORMS = ("layernorm", "layernorm_nobias", "rmsnorm")
ATTN_BIAS = ("none", "qkv", "all")
MLPS = ("gelu", "gated")
POSITIONS = ("learned", "rotary", "alibi", "none")

SRC_ATTENTION = ("Vaswani et al. 2017 §3.2 (Q, K, V, output projections); GQA: Ainslie et al. 2023 "
                 "(K and V with n_kv_heads heads); Megatron-LM theoretical_memory_usage.py")
SRC_MLP = ("2-matrix MLP: Vaswani et al. 2017 §3.3; gated (SwiGLU/GeGLU) 3-matrix MLP: Shazeer 2020, "
           "LLaMA (Touvron et al. 2023 §2.2)")
SRC_NORM = "LayerNorm: Ba et al. 2016 (gain and bias); RMSNorm: Zhang & Sennrich 2019 (gain only)"
SRC_EMBED = "token embedding vocab x d_embed (Vaswani et al. 2017 §3.4); OPT projects d_embed <-> d_model"
SRC_POS = ("learned absolute positions: GPT-2/3 (Radford et al. 2019), OPT keeps 2 extra rows (Zhang et al. "
           "2022, OPTLearnedPositionalEmbedding offset 2); rotary (Su et al. 2021) and ALiBi (Press et al. 2022) "
           "have no parameters")
SRC_MOE = ("router: one d_model x n_experts linear (Fedus et al. 2022; EleutherAI cookbook); experts: n_experts "
           "MLPs, top_k active per token (Jiang et al. 2024, Mixtral)")


def attention(bias: str) -> sympy.Expr:
    """Q, K, V and output projections of one attention block (GQA/MQA via n_kv_heads)."""
    q_dim, kv_dim = n_heads * head_dim, n_kv_heads * head_dim
    weights = d_model * q_dim + 2 * d_model * kv_dim + q_dim * d_model
    if bias == "none":
        return weights
    if bias == "qkv":  # Qwen2: biases on q, k, v only
        return weights + q_dim + 2 * kv_dim
    return weights + q_dim + 2 * kv_dim + d_model  # GPT-2, OPT, BLOOM, NeoX, Phi: every projection


def mlp(kind: str, bias: bool, width: sympy.Expr = d_ff) -> sympy.Expr:
    """One feed-forward block: 2 matrices (GELU/ReLU) or 3 (gated: gate, up, down)."""
    if kind == "gelu":
        return 2 * d_model * width + ((width + d_model) if bias else 0)
    return 3 * d_model * width + ((2 * width + d_model) if bias else 0)


def norm(kind: str, width: sympy.Expr = d_model) -> sympy.Expr:
    """One normalization layer: LayerNorm has gain and bias, RMSNorm (or bias-free LN) a gain."""
    return 2 * width if kind == "layernorm" else width


def embedding(projected: bool) -> sympy.Expr:
    """Token embedding; with ``projected``, OPT's project_in and project_out (no biases)."""
    return vocab * d_embed + (2 * d_embed * d_model if projected else 0)


def positions(kind: str, offset: int) -> sympy.Expr:
    """Position embedding table: learned absolute has (n_positions + offset) x d_model."""
    return (n_positions + offset) * d_model if kind == "learned" else sympy.Integer(0)


def head(tied: bool, bias: bool) -> sympy.Expr:
    """Output (LM) head: nothing new when tied to the embedding; a bias of vocab if it has one."""
    return (0 if tied else vocab * d_model) + (vocab if bias else 0)


def router() -> sympy.Expr:
    """MoE router: a d_model x n_experts linear without bias."""
    return d_model * n_experts
