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
    bf16-mixed / fp16-mixed (the old bf16-amp)
              torch.autocast(bfloat16 or float16) on CUDA: matmuls save 16-bit copies of their
              inputs (and a 16-bit cache of every weight lives through the backward), softmax,
              pow and layer_norm run in fp32; elementwise ops follow type promotion;
    bf16-true / fp16-true, bf16 / fp16
              16-bit weights: every saved activation is 16-bit (fp32 only where the code
              upcasts: log-sum-exp, the loss, RMSNorm's input, LLaMA eager's softmax); checked
              against CPU allocator traces (tests/data/cpu_measured_memory_extra.json).
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

from engine.options.memory import model_refusals
from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.base import Validity
from engine.symbolic.symbols import symbol
from engine.symbolic.memory.base import L, Moment, Term, V, a, b, h, pp, s, tp, vp
from engine.symbolic.memory.base import q as _q
from engine.symbolic.memory.states import MIXED_PRECISIONS, SIXTEEN_BIT, TRUE_PRECISIONS

name = "pytorch"
SRC = ("llm-sweep's tensor-by-tensor model of Hugging Face training in PyTorch (autograd saved tensors, autocast "
       "dtypes), checked against tests/data/measured_memory_pytorch_h200.json")
source = SRC


def refuses(o) -> list[str]:
    """Training options this model cannot express (no tensor parallelism, HF checkpoints whole layers, no TE fp8):
    its rules in ``engine.options.memory.RULES``, which ``MemoryOptions.with_options`` checks."""
    return model_refusals(name, o)


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


def _weights16(o) -> bool:
    """16-bit weights (bf16/fp16 with or without an fp32 master copy): activations are 16-bit throughout."""
    return o.precision in SIXTEEN_BIT


def block_kind(structure) -> str:
    return "gpt" if structure.mlp == "gelu" else "llama"


def _layer_bytes_per_token(structure, o) -> sympy.Expr:
    """Saved bytes per token of one layer (without the attention-score term)."""
    d, f = h, (C.d_ff_expert if structure.moe else C.d_ff)
    q, kv = a * C.head_dim, C.n_kv_heads * C.head_dim
    amp = o.precision in MIXED_PRECISIONS
    lo = 2 if amp or _weights16(o) else 4  # bytes of a matmul input saved: 16-bit under autocast or 16-bit weights
    full = 2 if _weights16(o) else 4  # residual stream / fp32-list ops
    act = 2 if _weights16(o) else 4
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
    # the norm's fp32 upcast of its input (saved by pow and mul), the normalized tensor, its output
    norm = (4 * d + full * d + lo * d)
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


# PyTorch's SDPA kernel selection on CUDA (attention = sdpa). Sources: pytorch
# aten/src/ATen/native/transformers/cuda/sdp_utils.cpp (select_sdp_backend, priority_order,
# check_prefer_cudnn_attention, can_use_flash_attention, can_use_mem_efficient_attention,
# can_use_cudnn_attention, check_head_dim_size_flash, check_head_dim_size_mem_efficient with
# minimum_gemm_alignment, check_cudnn_tensor_shapes, check_cudnn_dropout, check_dtypes_low_precision),
# aten/src/ATen/native/transformers/sdp_utils_cpp.h (check_batch_size_and_num_heads_dense<supports_gqa>,
# check_for_attn_mask) and transformers src/transformers/integrations/sdpa_attention.py
# (sdpa_attention_forward, use_gqa_in_sdpa, repeat_kv, is_causal).
KERNELS = ("eager", "math", "flash", "efficient", "cudnn")
CUDNN_FIRST = True  # check_prefer_cudnn_attention: cuDNN > 9.15 on sm90/sm100 (CUDA 13 wheels) tries cuDNN first
MEM_EFFICIENT_GQA = False  # mem-efficient rejects enable_gqa with fewer k/v heads (torch <= 2.11, as measured)


def kernel_rules(structure, o) -> list[tuple[str, sympy.Basic]]:
    """The attention kernel as ordered ``(kernel, condition)`` pairs: the first condition that holds wins.

    ``eager`` and ``flash`` (the flash-attn library) are what they say. For ``sdpa`` this predicts
    ``torch.nn.functional.scaled_dot_product_attention``'s choice (``select_sdp_backend``), assuming an
    sm80+/sm90 CUDA device (A100/H100/H200) with PyTorch 2.5+ and a Hugging Face model trained without
    padding: transformers then passes no mask and ``is_causal=True``, and for grouped k/v (LLaMA-style
    modules have ``num_key_value_groups``) ``enable_gqa=True`` instead of calling ``repeat_kv``
    (``use_gqa_in_sdpa``: torch >= 2.5 and no mask). Under autocast the inputs are bf16 (SDPA is on
    autocast's lower-precision list), so every precision but fp32 gives 16-bit q/k/v. Rules:

    * cuDNN (tried first when ``CUDNN_FIRST``: ``check_prefer_cudnn_attention``, sm90 with cuDNN > 9.15):
      fp16/bf16 only, head_dim <= 128 and a multiple of 8 (``check_cudnn_tensor_shapes``), GQA accepted,
      dropout only with p a multiple of 1/16 (``check_cudnn_dropout``; the dropout option stands for
      Hugging Face's p = 0.1, which cuDNN refuses);
    * flash: fp16/bf16 only (``check_dtypes_flash_attention``), head_dim <= 256 (``check_head_dim_size_flash``;
      no multiple-of-8 rule, the kernel pads), no attention mask, dropout and GQA accepted;
    * mem-efficient: fp32/fp16/bf16 on sm80+, head_dim a multiple of ``minimum_gemm_alignment`` (4 for fp32,
      8 for 16-bit), no head_dim limit, dropout accepted; grouped k/v only where ``MEM_EFFICIENT_GQA``
      (``check_batch_size_and_num_heads_dense<false>``: with enable_gqa and fewer k/v heads it refuses;
      PyTorch main accepts them, the measured torch 2.11 H200 run did not);
    * math: the fallback. It materializes the S x S scores (``_scaled_dot_product_attention_math``).

    So fp32 picks mem-efficient for MHA and math for GQA; 16-bit picks cuDNN/flash for head_dim <= 256.
    head_dim and the head counts are symbols: the conditions are sympy relations, so the memory terms are
    a ``Piecewise`` over them and sweeps over head_dim keep working (``attention_kernel`` evaluates them).
    """
    if o.attention != "sdpa":
        return [(o.attention, sympy.true)]
    d = C.head_dim
    grouped = sympy.Ne(C.n_kv_heads, a)
    plain = sympy.true if MEM_EFFICIENT_GQA else sympy.Not(grouped)
    if o.precision == "fp32":
        return [("efficient", sympy.And(sympy.Eq(sympy.Mod(d, 4), 0), plain)), ("math", sympy.true)]
    rules = []
    if CUDNN_FIRST and not o.dropout:
        rules.append(("cudnn", sympy.And(sympy.Le(d, 128), sympy.Eq(sympy.Mod(d, 8), 0))))
    rules += [("flash", sympy.Le(d, 256)), ("efficient", sympy.And(sympy.Eq(sympy.Mod(d, 8), 0), plain)),
              ("math", sympy.true)]
    return rules


def attention_kernel(structure, o, values=None) -> str:
    """The kernel the attention runs (one of ``KERNELS``) for ``values`` of head_dim, n_heads, n_kv_heads.

    ``values``: a mapping from input names (or symbols) to numbers, or a function that turns a sympy
    condition into its value (``FormulaSet.apply`` with the architecture's defaults). Raises ValueError
    when the values leave the choice open.
    """
    for kernel, cond in kernel_rules(structure, o):
        if callable(values):
            cond = values(cond)
        elif values:
            cond = cond.subs({(symbol(k) if isinstance(k, str) else k): v for k, v in values.items()})
        if cond == sympy.true:
            return kernel
        if cond != sympy.false:
            raise ValueError(f"attention kernel needs values for {sorted(str(x) for x in cond.free_symbols)}")
    raise AssertionError("math is the fallback")  # pragma: no cover


def _eager_scores_bytes_per_token(o, structure=None) -> sympy.Expr:
    """What eager attention (and SDPA's math kernel) saves per token per layer: the softmax output.

    fp32: the fp32 softmax output. Autocast: the fp32 softmax output and its 16-bit cast. 16-bit weights
    (``structure`` given): LLaMA-style eager upcasts (``softmax(dtype=float32).to(query.dtype)``: fp32 output
    and 16-bit cast), GPT-2 style runs the softmax in 16 bit (one 16-bit tensor)."""
    if o.precision in MIXED_PRECISIONS:
        per = 6 * a * s  # fp32 softmax output + its bf16 cast
    elif structure is not None and _weights16(o):
        per = (2 if block_kind(structure) == "gpt" else 6) * a * s
    else:
        per = 4 * a * s
    if o.dropout:
        per += (1 + 4) * a * s  # dropout mask and the dropped probabilities
    return per


def _scores_bytes_per_token(o, structure=None) -> sympy.Expr:
    """Attention-score bytes per token per layer: eager's (and SDPA math's) S x S softmax output, or the
    fused kernels' log-sum-exp (flash, mem-efficient, cuDNN), chosen by ``kernel_rules``."""
    fused = 4 * a + 8 * h  # fp32 log-sum-exp per head; SDPA keeps its output and contiguous inputs
    if o.attention == "eager":
        return _eager_scores_bytes_per_token(o, structure)
    if o.attention != "sdpa":
        return fused
    # math: the fp32 case is validated (fp32 + GQA); a 16-bit math kernel (head_dim > 256) keeps the old 4 B
    cases = [(_eager_scores_bytes_per_token(o) if k == "math" else fused, c) for k, c in kernel_rules(None, o)]
    return cases[0][0] if cases[0][1] == sympy.true else sympy.Piecewise(*cases)


def activations(structure, o) -> Term:
    tokens = b * s
    if o.recompute == "full":  # gradient checkpointing: each layer keeps its input
        per_layer = (2 if _weights16(o) else 4) * h
    else:
        per_layer = _layer_bytes_per_token(structure, o) + _scores_bytes_per_token(o, structure)
        if o.dropout:
            per_layer += 2 * h  # residual dropout masks (1 byte each, two per layer)
    ends = 8 * h  # final norm input and lm_head input
    acts = L * per_layer * tokens + ends * tokens
    if o.precision in MIXED_PRECISIONS:  # autocast's bf16 cache of every matmul weight, alive through the backward
        acts += 2 * (symbol("n_layers") * (C.attention("none") + C.mlp(structure.mlp, False)) + V * h)
    note = ("per-tensor accounting of Hugging Face blocks; GPT-2 and LLaMA styles exact in structure, other families "
            "mapped to the closer one")
    return Term(acts, SRC, note)


def logits(structure, o) -> Term:
    """Logits at the loss backward: returned logits, saved log-softmax and two fp32 gradients."""
    logits_out = o.activation_bytes * b * s * V  # the logits the model returns
    logsoftmax = 4 * b * s * V  # fp32 log-softmax output saved by cross entropy
    p1 = logits_out + logsoftmax + 8 * b * s * V  # + gradients of log-probs and logits (fp32)
    return Term(p1, SRC + ": logits returned (4 or 2 BSV), fp32 log-softmax (4BSV) and the loss backward's 8BSV")


def largest_matrix(structure) -> sympy.Expr:
    """Elements of the largest parameter tensor (embedding, head, fused qkv or an MLP matrix)."""
    q, kv = a * C.head_dim, C.n_kv_heads * C.head_dim
    fused_qkv = h * (q + 2 * kv) if block_kind(structure) == "gpt" else h * q
    if structure.moe:  # transformers 5 stacks the experts: gate_up_proj is n_experts x 2 d_ff x d_model
        return sympy.Max(V * C.d_embed, V * h, fused_qkv,
                         C.n_experts * (2 if structure.mlp == "gated" else 1) * h * C.d_ff_expert)
    return sympy.Max(V * C.d_embed, V * h, h * C.d_ff, fused_qkv)


def optimizer_step_extra(structure, o):
    """During the step: the logits the caller still holds, AdamW(foreach=False)'s two fp32
    temporaries (sqrt, then the division) of the largest parameter."""
    logits_out = o.activation_bytes * b * s * V
    temp = 2 if o.precision in TRUE_PRECISIONS else 4  # the temporaries take the parameter's dtype
    temps = 2 * temp * largest_matrix(structure) if o.optimizer in ("adamw", "adam8bit") else 0
    if o.offload != "none":  # the step runs on the host (DeepSpeedCPUAdam updates in place): no device temporaries
        temps = 0
    return logits_out + temps


def checkpoint_recompute(structure, o):
    """Gradient checkpointing: one layer's recomputed activations and the head's gradient."""
    per_layer = _layer_bytes_per_token(structure, o) + _scores_bytes_per_token(o, structure)
    return per_layer * b * s + 4 * V * h
