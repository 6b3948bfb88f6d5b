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

The inference working memory of a prefill is in ``inference.py``.
"""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.base import Validity
from engine.symbolic.symbols import symbol
from engine.symbolic.memory.base import L, Moment, Term, V, a, b, h, pp, s, tp, vp
from engine.symbolic.memory.base import q as _q

name = "pytorch"
SRC = ("llm-sweep's tensor-by-tensor model of Hugging Face training in PyTorch (autograd saved tensors, autocast "
       "dtypes), checked against tests/data/measured_memory_pytorch_h200.json")
source = SRC


def refuses(o) -> list[str]:
    """Training options this model cannot express (it has no tensor parallelism, HF checkpoints whole layers)."""
    problems = []
    if o.sequence_parallel:
        problems.append("sequence_parallel needs memory_model korthikanti (the pytorch model has no tensor "
                        "parallelism)")
    if o.recompute == "selective":
        problems.append("recompute selective needs memory_model korthikanti (Hugging Face models "
                        "checkpoint whole layers: recompute full)")
    return problems


def validity(o) -> list[Validity]:
    return [Validity("the pytorch memory model describes Hugging Face training without tensor or pipeline "
                     "parallelism (tp = pp = vp = 1); use memory_model korthikanti", sympy.Eq(tp * pp * vp, 1))]


def moments(structure, o) -> list[Moment]:
    """P1 the loss backward, P2 the optimizer step, P3 (full recompute) the last layer's recompute."""
    resident = {"weights": _q("mem_weights"), "master": _q("mem_master"), "optimizer": _q("mem_optimizer")}
    out = [
        Moment("backward", {**resident, "activations": _q("mem_activations"), "logits": _q("mem_logits")},
               "memory at the loss backward (saved activations, logits and their gradients)", r"M_{\mathrm{bwd}}",
               SRC),
        Moment("step", {**resident, "gradients": _q("mem_gradients"),
                        "optimizer_step": optimizer_step_extra(structure, o)},
               "memory during the optimizer step (all gradients, returned logits, AdamW temporaries)",
               r"M_{\mathrm{step}}", SRC),
    ]
    if o.recompute == "full":
        out.append(Moment("recompute", {**resident, "activations": _q("mem_activations"),
                                        "recompute": checkpoint_recompute(structure, o)},
                          "memory while the last checkpointed layer is recomputed and differentiated",
                          r"M_{\mathrm{rec}}", SRC))
    return out


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


def activations(structure, o) -> Term:
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
    return Term(acts, SRC, note)


def logits(structure, o) -> Term:
    """Logits at the loss backward: returned logits, saved log-softmax and two fp32 gradients."""
    logits_out = (2 if o.precision != "fp32" else 4) * b * s * V  # the logits the model returns
    logsoftmax = 4 * b * s * V  # fp32 log-softmax output saved by cross entropy
    p1 = logits_out + logsoftmax + 8 * b * s * V  # + gradients of log-probs and logits (fp32)
    return Term(p1, SRC + ": logits returned (4 or 2 BSV), fp32 log-softmax (4BSV) and the loss backward's 8BSV")


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
