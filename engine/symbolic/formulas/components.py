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
n_shared_experts, d_ff_shared, d_ff_expert = symbol("n_shared_experts"), symbol("d_ff_shared"), symbol("d_ff_expert")
q_lora_rank, kv_lora_rank = symbol("q_lora_rank"), symbol("kv_lora_rank")
qk_nope_head_dim, qk_rope_head_dim, v_head_dim = symbol("qk_nope_head_dim"), symbol("qk_rope_head_dim"), symbol("v_head_dim")
mamba_n_heads, mamba_head_dim, ssm_state_size = symbol("mamba_n_heads"), symbol("mamba_head_dim"), symbol("ssm_state_size")
n_groups, conv_kernel = symbol("n_groups"), symbol("conv_kernel")
moe_latent_size = symbol("moe_latent_size")
lin_k_heads, lin_v_heads = symbol("linear_num_key_heads"), symbol("linear_num_value_heads")
lin_k_dim, lin_v_dim = symbol("linear_key_head_dim"), symbol("linear_value_head_dim")

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
           "MLPs, top_k active per token (Jiang et al. 2024, Mixtral); shared experts: DeepSeekMoE (Dai et al. 2024 "
           "§3.2), Qwen1.5-MoE (shared_expert with a sigmoid shared_expert_gate)")
SRC_MLA = ("multi-head latent attention: DeepSeek-V2 (DeepSeek-AI 2024) §2.1.2-2.1.3, Eq. 9-19 (low-rank joint "
           "key-value compression to kv_lora_rank, decoupled rotary key of qk_rope_head_dim shared by all heads, "
           "low-rank queries with q_lora_rank); transformers DeepseekV3Attention (q_a_proj, q_a_layernorm, q_b_proj, "
           "kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj)")
SRC_MAMBA = ("Mamba-2 mixer: Dao & Gu 2024 (SSD) §7 (parallel in_proj producing z, x, B, C, dt; depthwise causal "
             "conv1d over x, B, C; per-head dt_bias, A_log, D; gated RMSNorm; out_proj); transformers "
             "NemotronHMamba2Mixer")
SRC_LINEAR = ("gated DeltaNet linear attention: Yang et al. 2025 (Gated Delta Networks); transformers "
              "Qwen3NextGatedDeltaNet (in_proj_qkvz, in_proj_ba, depthwise conv1d without bias, dt_bias, A_log, "
              "gated RMSNorm of the value head width, out_proj)")
SRC_SINKS = "attention sinks: one learned logit per head added to the softmax (OpenAI gpt-oss model card 2025, §2)"


def attention(bias: str, output_gate: bool = False) -> sympy.Expr:
    """Q, K, V and output projections of one attention block (GQA/MQA via n_kv_heads). ``output_gate``:
    q_proj also produces a per-head sigmoid gate of the attention output (Qwen3-Next), doubling it."""
    q_dim, kv_dim = n_heads * head_dim, n_kv_heads * head_dim
    if output_gate:
        return attention(bias) + d_model * q_dim + (q_dim if bias != "none" else 0)
    weights = d_model * q_dim + 2 * d_model * kv_dim + q_dim * d_model
    if bias == "none":
        return weights
    if bias == "qkv":  # Qwen2: biases on q, k, v only
        return weights + q_dim + 2 * kv_dim
    return weights + q_dim + 2 * kv_dim + d_model  # GPT-2, OPT, BLOOM, NeoX, Phi: every projection


def mla(q_lora: bool, bias: bool, norm_kind: str = "rmsnorm") -> sympy.Expr:
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank queries (or a full q_proj), the joint
    key-value latent with the decoupled rotary key, its up-projection to per-head keys and values,
    the output projection; the latent's norms. ``bias``: attention_bias on q_a_proj,
    kv_a_proj_with_mqa and o_proj (transformers' DeepseekV3Attention)."""
    qk_head = qk_nope_head_dim + qk_rope_head_dim
    if q_lora:
        q = d_model * q_lora_rank + (q_lora_rank if bias else 0) + norm(norm_kind, q_lora_rank) \
            + q_lora_rank * n_heads * qk_head
    else:
        q = d_model * n_heads * qk_head
    kv = d_model * (kv_lora_rank + qk_rope_head_dim) + ((kv_lora_rank + qk_rope_head_dim) if bias else 0) \
        + norm(norm_kind, kv_lora_rank) + kv_lora_rank * n_heads * (qk_nope_head_dim + v_head_dim)
    out = n_heads * v_head_dim * d_model + (d_model if bias else 0)
    return q + kv + out


def mamba2(bias: bool, conv_bias: bool) -> sympy.Expr:
    """One Mamba-2 mixer: in_proj to z, x, B, C and dt; depthwise conv1d over x, B and C; per-head
    dt_bias, A_log and D; the gated RMSNorm over the inner width; out_proj."""
    inner = mamba_n_heads * mamba_head_dim
    conv_dim = inner + 2 * n_groups * ssm_state_size
    in_proj = d_model * (inner + conv_dim + mamba_n_heads) + ((inner + conv_dim + mamba_n_heads) if bias else 0)
    conv = conv_dim * conv_kernel + (conv_dim if conv_bias else 0)
    return in_proj + conv + 3 * mamba_n_heads + inner + inner * d_model + (d_model if bias else 0)


def gated_deltanet() -> sympy.Expr:
    """One gated DeltaNet linear-attention layer (Qwen3-Next): in_proj_qkvz and in_proj_ba, the
    depthwise conv1d over q, k and v (no bias), dt_bias and A_log per value head, the gated RMSNorm
    of one value head's width, out_proj."""
    key_dim, value_dim = lin_k_heads * lin_k_dim, lin_v_heads * lin_v_dim
    conv_dim = 2 * key_dim + value_dim
    return (d_model * (2 * key_dim + 2 * value_dim) + d_model * 2 * lin_v_heads + conv_dim * conv_kernel
            + 2 * lin_v_heads + lin_v_dim + value_dim * d_model)


def mlp(kind: str, bias: bool, width: sympy.Expr = d_ff, d_in: sympy.Expr = d_model) -> sympy.Expr:
    """One feed-forward block from and to ``d_in`` wide tokens: 2 matrices (GELU/ReLU) or 3 (gated: gate,
    up, down)."""
    if kind == "gelu":
        return 2 * d_in * width + ((width + d_in) if bias else 0)
    return 3 * d_in * width + ((2 * width + d_in) if bias else 0)


def latent_projections(bias: bool) -> sympy.Expr:
    """A latent MoE's projections d_model -> moe_latent_size -> d_model around its experts (Nemotron)."""
    return 2 * d_model * moe_latent_size + ((moe_latent_size + d_model) if bias else 0)


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


def router(bias: bool = False) -> sympy.Expr:
    """MoE router: a d_model x n_experts linear (gpt-oss's has a bias)."""
    return d_model * n_experts + (n_experts if bias else 0)


def qk_norms(kind: str, scope: str) -> sympy.Expr:
    """Query and key norms of one attention layer: ``"head"`` shares one head_dim norm across heads
    (Qwen3, Gemma 3), ``"projection"`` normalizes the whole q and k projections (OLMo 2, OLMoE;
    Cohere's and StableLM's per-head weights have the same count)."""
    if scope == "head":
        return 2 * norm(kind, head_dim)
    return (n_heads + n_kv_heads) * head_dim  # weight only, whatever the model's other norms
