"""Inference: the KV cache and the working memory of a prefill (one forward pass filling the cache).

Sources: kipply, "Transformer Inference Arithmetic" (KV cache); the working memory is llm-sweep's
model of a Hugging Face forward pass under no_grad, calibrated on CPU allocator traces
(tests/data/cpu_measured_memory.json, benchmarks/measure_memory_cpu.py).
"""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.base import Quantity
from engine.symbolic.formulas.architectures import mixer_counts, mlp_counts
from engine.symbolic.memory.base import Moment, V, a, b, bits_kv, h, kv_window, pp, q, quantity, s, tp
from engine.symbolic.symbols import symbol
from engine.symbolic.memory.pytorch import SRC

SRC_KV = "K and V per layer: 2 b s L n_kv d_head bytes (kipply, Transformer Inference Arithmetic)"
SRC_WINDOW = ("transformers 5.24 cache_utils.py: DynamicSlidingWindowLayer.update keeps the last sliding_window - 1 "
              "tokens (\"Only cache the last `self.sliding_window - 1` tokens\"); chunked-attention layers use it with "
              "attention_chunk_size (DYNAMIC_LAYER_TYPE_MAPPING); full layers (DynamicLayer) keep every token")
SRC_MLA_CACHE = ("MLA caches the normalized latent c_KV (kv_lora_rank) and the roped shared key (qk_rope_head_dim) per "
                 "token and layer, expanded to per-head K and V after the cache: DeepSeek-V2 §2.1.2 (Table 1: "
                 "(d_c + d_h^R) l elements per token); transformers 5.24 DeepseekV3Attention (cache.update(k_nope, "
                 "k_pe) before expand_kv); vLLM and SGLang store the same latent. kv_layout expanded: runtimes that "
                 "cache the decompressed per-head K (qk_nope + qk_rope) and V (v_head_dim)")
SRC_STATES = ("fixed-size recurrent states, independent of the length: transformers 5.24 LinearAttentionLayer "
              "(conv_states [b, conv_dim, kernel] in the activation dtype; recurrent_states in float32: Mamba-2 "
              "[b, heads, head_dim, ssm_state_size] (NemotronHMamba2Mixer; mamba_ssm's state passing is fp32 too), "
              "gated DeltaNet [b, value heads, key head dim, value head dim] (Qwen3NextGatedDeltaNet))")


STATE_KINDS = {"mamba", "linear_attention"}  # mixers with a fixed-size recurrent state instead of a KV cache


def attention_token_bytes(structure, o) -> sympy.Expr:
    """Cache bytes per token of ONE attention layer on one device (tensor parallelism splits the heads,
    replicating kv heads when there are fewer than devices; an MLA latent is replicated)."""
    if structure.mla:
        if o.kv_layout == "expanded":
            per_head = C.qk_nope_head_dim + C.qk_rope_head_dim + C.v_head_dim
            return sympy.ceiling(a / tp) * per_head * bits_kv / 8
        return (C.kv_lora_rank + C.qk_rope_head_dim) * bits_kv / 8
    return 2 * sympy.ceiling(C.n_kv_heads / tp) * C.head_dim * bits_kv / 8


def state_bytes(structure, o) -> dict[str, sympy.Expr]:
    """Recurrent-state bytes of ONE sequence in ONE layer of each state-space kind, per device."""
    act = o.activation_bytes  # conv states: the activation dtype; recurrent states: float32
    out = {}
    for kind in structure.mixer_kinds:
        if kind == "mamba":
            heads, groups = sympy.ceiling(C.mamba_n_heads / tp), sympy.ceiling(C.n_groups / tp)
            conv = (heads * C.mamba_head_dim + 2 * groups * C.ssm_state_size) * C.conv_kernel * act
            out[kind] = conv + heads * C.mamba_head_dim * C.ssm_state_size * 4
        elif kind == "linear_attention":
            k_heads, v_heads = sympy.ceiling(C.lin_k_heads / tp), sympy.ceiling(C.lin_v_heads / tp)
            conv = (2 * k_heads * C.lin_k_dim + v_heads * C.lin_v_dim) * C.conv_kernel * act
            out[kind] = conv + v_heads * C.lin_k_dim * C.lin_v_dim * 4
    return out


def kept_tokens(kind: str) -> sympy.Expr:
    """Tokens one layer of ``kind`` keeps after a prefill of seq_len tokens."""
    if kind == "sliding_attention":
        return sympy.Min(s, symbol("sliding_window") - 1)
    if kind == "chunked_attention":
        return sympy.Min(s, symbol("attention_chunk_size") - 1)
    return sympy.Min(s, kv_window)


def quantities(structure, o) -> list[Quantity]:
    """``kv_cache_per_token``, ``mem_kv_cache`` (attention layers), ``mem_state_cache`` (state-space layers,
    when the model has them) and ``mem_working``."""
    counts = mixer_counts(structure)
    per_layer = attention_token_bytes(structure, o)
    attention = structure.attention_kinds
    # per device: the layers of a pipeline stage (an even share of each kind), every token of a full layer
    kv_per_token = sum((counts[k] for k in attention), sympy.Integer(0)) / pp * per_layer
    windowed = [k for k in attention if k != "full_attention"]
    src = (SRC_MLA_CACHE if structure.mla else SRC_KV) + ("; " + SRC_WINDOW if windowed else "")
    if attention == ("full_attention",):
        kv = b * kept_tokens("full_attention") * q("kv_cache_per_token")
    else:
        kv = b * sum(counts[k] / pp * kept_tokens(k) * per_layer for k in attention)
    working, wsrc = prefill_working(structure, o)
    out = [
        quantity("kv_cache_per_token", kv_per_token, "KV-cache bytes per token per sequence, per device (attention "
                 "layers keeping every token)", r"m_{\mathrm{KV}}", src),
        quantity("mem_kv_cache", kv, "KV cache per device" + (" (windowed layers keep at most their window - 1 "
                                                             "tokens)" if windowed else ""), r"M_{\mathrm{KV}}", src),
    ]
    states = state_bytes(structure, o)
    if states:
        out.append(quantity("mem_state_cache", b * sum(counts[k] / pp * v for k, v in states.items()),
                            "recurrent (conv and state-space) states per device, independent of the length",
                            r"M_{\mathrm{state}}", SRC_STATES))
    out.append(quantity("mem_working", working, "transient memory of a prefill forward pass", r"M_{\mathrm{work}}",
                        wsrc))
    return out


def moment(structure=None) -> Moment:
    """The prefill's peak: every weight, the full caches and the largest transient."""
    parts = {"weights": q("mem_weights"), "kv_cache": q("mem_kv_cache")}
    if structure is not None and set(structure.mixer_kinds) & STATE_KINDS:
        parts["state_cache"] = q("mem_state_cache")
    parts["working"] = q("mem_working")
    return Moment("prefill", parts, "peak memory of a prefill (one forward pass filling the caches)",
                  r"M_{\mathrm{peak}}", "sum of the above")


def prefill_working(structure, o):
    """Transient memory of one forward pass under no_grad: the largest of three moments.

    Activations are freed layer by layer, so only one layer's temporaries are alive at a time;
    the KV cache (counted apart) is full by the last layer. Moments: the logits (every position,
    in the activation dtype, with the final norm's output), the MLP (residual and the hidden
    temporaries: 5 d_ff for the Python tanh-GELU, 3 d_ff for a gated MLP), and attention (q, k,
    v; eager adds the scores with their scaled and masked copies, and LLaMA's fp32 softmax).
    Calibrated on CPU allocator traces of GPT-2- and LLaMA-style prefills
    (tests/data/cpu_measured_memory.json).
    """
    act = o.activation_bytes  # 16-bit weights, or autocast's 16-bit activations
    q_, kv, f = a * C.head_dim, C.n_kv_heads * C.head_dim, C.d_ff
    if structure.mla:  # decompressed per-head queries, keys and values
        q_, kv = a * (C.qk_nope_head_dim + C.qk_rope_head_dim), a * (C.qk_nope_head_dim + C.qk_rope_head_dim
                                                                      + C.v_head_dim) / 2
    if structure.moe:  # the widest MLP a token passes: an expert (or a dense layer's)
        f = sympy.Max(C.d_ff, C.d_ff_expert) if mlp_counts(structure).get("dense") is not None else C.d_ff_expert
    tokens = b * s
    gated = structure.mlp == "gated"
    logits = act * tokens * (V + h)  # final norm output and logits for every position
    # residual + hidden temporaries: the Python tanh-GELU holds 5 d_ff at once, a gated MLP 3
    mlp = act * tokens * (h + (3 if gated else 5) * f)
    attn = act * tokens * (h + q_ + 2 * kv)
    if o.attention == "eager":
        # scores, scaled and masked copies (2.5 per score on average); LLaMA-style softmax runs in
        # fp32 and is cast back when activations are 16-bit (+4 +2 bytes per score)
        attn += a * s * tokens * (sympy.Rational(5, 2) * act + (6 if gated and act == 2 else 0))
    return sympy.Max(logits, mlp, attn), SRC + ": largest of the logits, MLP and attention moments of a prefill"
