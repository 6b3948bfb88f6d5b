"""A model of what Hugging Face models hold in memory when trained or run with PyTorch.

Training peak (bytes, per device) = model states at the start of the step
    + max(P1, P2, P3), the largest of three moments of the step:
    P1  loss backward: every saved activation, plus the gradient of the log-softmax output and
        of the logits (2 x 4 B S V);
    P2  optimizer step: all gradients, the logits the caller still holds, and AdamW's two
        per-parameter temporaries (sqrt and division) for the largest parameter
        (AdamW(foreach=False), the measurement protocol of tests/data/measured_memory_pytorch_h200.json);
    P3  (gradient checkpointing) the last layer's recomputed activations during its backward.

Saved activations are counted tensor by tensor, as each op of the implementation saves them for
its backward (torch autograd), with their dtypes under the precision:
    fp32      every tensor fp32;
    bf16-amp  torch.autocast(bfloat16) on CUDA: matmuls save bf16 copies of their inputs (and
              a bf16 cache of every weight lives through the backward), softmax, pow and
              layer_norm run in fp32; elementwise ops follow type promotion.
Block kinds (per layer, per token):
    GPT-2 style (LayerNorm, Conv1D/Linear with biases, tanh-GELU written in Python: gpt2, gptj, phi)
    LLaMA style (RMSNorm written in Python, RoPE, repeat_kv for GQA, SiLU-gated MLP: llama,
                 mistral, mixtral, qwen2, qwen3, phi3, gemma)
    other families use the closest of the two (documented approximation).
Attention: eager saves the softmax output (B a S^2, fp32); SDPA saves its output and a
log-sum-exp per row instead (no S^2 term). Dropout with p > 0 adds its masks (1 byte each) and
the dropped copy of the attention probabilities.

Calibration: the per-tensor accounting reproduces the 11 GPT-2 measurements of
tests/data/measured_memory_pytorch_h200.json (tests/test_memory.py reports the errors) and CPU
allocator traces of other shapes (benchmarks/measure_memory_cpu.py).
"""

from __future__ import annotations

import sympy

from ..symbols import symbol
from . import components as C

b, s, L, h, a, V = (symbol(n) for n in ("batch", "seq_len", "n_layers", "d_model", "n_heads", "vocab"))
SRC = ("llm-sweep's tensor-by-tensor model of Hugging Face training in PyTorch (autograd saved tensors, autocast "
       "dtypes), checked against tests/data/measured_memory_pytorch_h200.json")

GPT_STYLE = {"gpt2", "gpt3", "gptj", "phi", "opt", "bloom", "gpt_neox", "falcon"}


def block_kind(structure) -> str:
    return "gpt" if structure.mlp == "gelu" else "llama"


def _layer_bytes_per_token(structure, o) -> sympy.Expr:
    """Saved bytes per token of one layer (without the attention-score term)."""
    d, f = h, C.d_ff
    q, kv = a * C.head_dim, C.n_kv_heads * C.head_dim
    amp = o.precision == "bf16-amp"
    lo = 2 if amp else 4  # bytes of a matmul input saved under autocast (bf16) or fp32
    full = 2 if o.precision in ("bf16", "fp16") else 4  # residual stream / fp32-list ops
    act = 2 if o.precision in ("bf16", "fp16") else 4
    if block_kind(structure) == "gpt":
        # ln_1 input (residual), ln_1 output as c_attn input, qkv, merged heads, ln_2 input and output
        norms = structure.norms_per_layer
        per = full * d + lo * d  # ln_1 input, c_attn input
        per += lo * (q + 2 * kv)  # qkv (q, k, v views keep it alive)
        per += lo * q  # merged attention output = c_proj input
        if norms == 2:
            per += full * d + lo * d  # ln_2 input, c_fc input
        # MLP: c_fc output feeds the tanh-GELU written in Python (x, tanh, 0.5 x, 1 + tanh) + c_proj input
        if amp:
            per += 4 * f + 4 * f + 2 * f + 4 * f + 2 * f  # pow and tanh run in fp32 under autocast
        else:
            per += act * 5 * f
        return per
    # LLaMA style: RMSNorm (x, normalized, output), RoPE'd q and k, repeated k and v, merged output, gated MLP
    norm = (full * d + full * d + lo * d)
    per = structure.norms_per_layer * norm
    # RoPE'd q as the score matmul saves it: fp32 q_embed itself, or under autocast the bf16 casts of
    # q_embed and k (the fp32 q_embed is not kept)
    per += 2 * lo * q if amp else act * q
    rep = sympy.Piecewise((q, sympy.Ne(C.n_kv_heads, a)), (kv, True))
    per += (lo if amp else act) * rep * 2  # k and v as the attention matmuls see them
    per += lo * q  # merged output = o_proj input
    experts = C.top_k if structure.moe else 1  # each token runs through top_k experts
    per += (2 if amp else act) * 4 * f * experts  # gate (silu input), silu output, up, product (down input)
    if structure.moe:
        per += 4 * C.n_experts * 2  # router logits and their softmax (fp32)
    return per


def _scores_bytes_per_token(o) -> sympy.Expr:
    """Attention-score bytes per token per layer (eager) or the log-sum-exp (SDPA/flash)."""
    if o.attention == "eager":
        per = (6 if o.precision == "bf16-amp" else 4) * a * s  # fp32 softmax output (+ its bf16 cast)
        if o.dropout:
            per += (1 + 4) * a * s  # dropout mask and the dropped probabilities
        return per
    return 4 * a + 8 * h  # fp32 log-sum-exp per head; SDPA keeps its output and contiguous inputs


def training_activations(structure, o):
    tokens = b * s
    if o.recompute == "full":  # gradient checkpointing: each layer keeps its input
        per_layer = (2 if o.precision in ("bf16", "fp16") else 4) * h
    else:
        per_layer = _layer_bytes_per_token(structure, o) + _scores_bytes_per_token(o)
        if o.dropout:
            per_layer += 2 * h  # residual dropout masks (1 byte each, two per layer)
    ends = 8 * h  # final norm input and lm_head input
    acts = L * per_layer * tokens + ends * tokens
    if o.precision == "bf16-amp":  # autocast's bf16 cache of every matmul weight, alive through the backward
        acts += 2 * (symbol("n_layers") * (C.attention("none") + C.mlp(structure.mlp, False)) + V * h)
    note = ("per-tensor accounting of Hugging Face blocks; GPT-2 and LLaMA styles exact in structure, other families "
            "mapped to the closer one")
    return acts, SRC, note


def training_extra(structure, o):
    """Logits at the loss backward: returned logits, saved log-softmax and two fp32 gradients."""
    logits_out = (2 if o.precision != "fp32" else 4) * b * s * V  # the logits the model returns
    logsoftmax = 4 * b * s * V  # fp32 log-softmax output saved by cross entropy
    p1 = logits_out + logsoftmax + 8 * b * s * V  # + gradients of log-probs and logits (fp32)
    return p1, SRC + ": logits returned (4 or 2 BSV), fp32 log-softmax (4BSV) and the loss backward's 8BSV"


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
    act = 2 if o.precision in ("bf16", "fp16", "bf16-amp") else 4
    q, kv, f = a * C.head_dim, C.n_kv_heads * C.head_dim, C.d_ff
    tokens = b * s
    gated = structure.mlp == "gated"
    logits = act * tokens * (V + h)  # final norm output and logits for every position
    # residual + hidden temporaries: the Python tanh-GELU holds 5 d_ff at once, a gated MLP 3
    mlp = act * tokens * (h + (3 if gated else 5) * f)
    attn = act * tokens * (h + q + 2 * kv)
    if o.attention == "eager":
        # scores, scaled and masked copies (2.5 per score on average); LLaMA-style softmax runs in
        # fp32 and is cast back when activations are 16-bit (+4 +2 bytes per score)
        attn += a * s * tokens * (sympy.Rational(5, 2) * act + (6 if gated and act == 2 else 0))
    return sympy.Max(logits, mlp, attn), SRC + ": largest of the logits, MLP and attention moments of a prefill"


def largest_matrix(structure) -> sympy.Expr:
    """Elements of the largest parameter tensor (embedding, head, fused qkv or an MLP matrix)."""
    q, kv = a * C.head_dim, C.n_kv_heads * C.head_dim
    fused_qkv = h * (q + 2 * kv) if block_kind(structure) == "gpt" else h * q
    return sympy.Max(V * C.d_embed, V * h, h * C.d_ff, fused_qkv)


def optimizer_step_extra(structure, o):
    """During the step: the logits the caller still holds, AdamW(foreach=False)'s two fp32
    temporaries (sqrt, then the division) of the largest parameter."""
    logits_out = (2 if o.precision != "fp32" else 4) * b * s * V
    temps = 2 * 4 * largest_matrix(structure) if o.optimizer in ("adamw", "adam8bit") else 0
    return logits_out + temps


def checkpoint_recompute(structure, o):
    """Gradient checkpointing: one layer's recomputed activations and the head's gradient."""
    per_layer = _layer_bytes_per_token(structure, o) + _scores_bytes_per_token(o)
    return per_layer * b * s + 4 * V * h
