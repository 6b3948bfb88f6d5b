"""Inference: the KV cache and the working memory of a prefill (one forward pass filling the cache).

Sources: kipply, "Transformer Inference Arithmetic" (KV cache); the working memory is llm-sweep's
model of a Hugging Face forward pass under no_grad, calibrated on CPU allocator traces
(tests/data/cpu_measured_memory.json, benchmarks/measure_memory_cpu.py).
"""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.base import Quantity
from engine.symbolic.memory.base import L, Moment, V, a, b, bits_kv, h, kv_window, pp, q, quantity, s, tp
from engine.symbolic.memory.pytorch import SRC

SRC_KV = "K and V per layer: 2 b s L n_kv d_head bytes (kipply, Transformer Inference Arithmetic)"


def quantities(structure, o) -> list[Quantity]:
    """``kv_cache_per_token``, ``mem_kv_cache`` and ``mem_working``."""
    window = sympy.Min(s, kv_window)
    # per device: L / pp layers; tensor parallelism splits the kv heads, replicating them when
    # there are fewer kv heads than devices (MQA/GQA)
    kv_per_token = 2 * (L / pp) * sympy.ceiling(C.n_kv_heads / tp) * C.head_dim * bits_kv / 8
    working, wsrc = prefill_working(structure, o)
    return [
        quantity("kv_cache_per_token", kv_per_token, "KV-cache bytes per token per sequence, per device",
                 r"m_{\mathrm{KV}}", SRC_KV),
        quantity("mem_kv_cache", b * window * q("kv_cache_per_token"), "KV cache per device", r"M_{\mathrm{KV}}",
                 SRC_KV),
        quantity("mem_working", working, "transient memory of a prefill forward pass", r"M_{\mathrm{work}}", wsrc),
    ]


def moment() -> Moment:
    """The prefill's peak: every weight, the full cache and the largest transient."""
    return Moment("prefill", {"weights": q("mem_weights"), "kv_cache": q("mem_kv_cache"), "working": q("mem_working")},
                  "peak memory of a prefill (one forward pass filling the cache)", r"M_{\mathrm{peak}}",
                  "sum of the above")


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
    act = 4 if o.precision == "fp32" else 2  # 16-bit weights, or autocast's 16-bit activations
    q_, kv, f = a * C.head_dim, C.n_kv_heads * C.head_dim, C.d_ff
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
