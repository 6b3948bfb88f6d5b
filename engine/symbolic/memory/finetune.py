"""LoRA and QLoRA fine-tuning memory (peft semantics) on top of the ``pytorch`` memory model.

Model states (per device, no parallelism):
    weights     frozen base: 16-bit (``lora``; fp32 only with --precision fp32), or for ``qlora`` every
                linear weight of the attention and MLP in NF4 with double quantization as bitsandbytes
                stores it (``bitsandbytes/functional.py``: ``quantize_4bit`` packs two 4-bit codes per byte
                and one fp32 absmax per ``blocksize`` = 64 weights; with ``compress_statistics=True``
                (``bnb_4bit_use_double_quant``) ``quantize_blockwise`` turns the absmax into 8-bit codes with
                one fp32 absmax per 256 blocks, kept in the nested ``QuantState.state2``):
                0.5 + 1/64 + 4/(64 x 256) bytes per quantized weight (``NF4_DQ_BYTES``). Embedding, norms,
                positions and the head stay 16-bit (transformers ``integrations/bitsandbytes.py``
                ``_replace_with_bnb_linear`` skips ``modules_to_not_convert``, which ``get_keys_to_not_convert``
                fills with the output embedding ``lm_head``; norms and embeddings are not ``nn.Linear``).
                Biases of quantized linears stay 16-bit (counted as quantized here: a few kB).
                + the adapters in fp32: peft's ``get_peft_model(..., autocast_adapter_dtype=True)`` (the
                default) upcasts fp16/bf16 adapter weights to fp32 (``peft/tuners/tuners_utils.py``
                ``_cast_adapter_dtype``); trainable count from ``formulas/lora.py``.
    gradients   adapters only, fp32 (frozen weights get none).
    optimizer   AdamW (and 8-bit/SGD variants as ``states.py``) on the adapters only, fp32 states.
Activations (saved for backward), per token per layer, from the ``pytorch`` model's tensor list with what a
frozen base no longer saves: a matmul with a frozen weight saves only the weight (grad_input = grad_out W),
not its input (needed for grad_weight only: autograd's ``should_compute_output`` guards each saved input), and
a norm's ``weight * x_hat`` no longer saves x_hat. What stays: norm inputs, the tensors the attention kernel
saves, the GELU / SiLU-gate chain, the scores. Each LoRA-wrapped linear adds the input its ``lora_A`` saves:
peft casts x to the adapter dtype (``_cast_input_dtype``: an fp32 copy, 4 B per input element, per wrapped
module) and, under autocast, the matmul saves its bf16 cast (2 B); plus ``lora_B``'s r-wide input.
``lora_dropout`` > 0 is not modelled (peft's default is 0: ``nn.Identity``).
Gradient checkpointing keeps each layer's 16-bit input; the recompute moment adds one layer's saved tensors.
Logits and the loss as in full training (the head is frozen: no head gradient).
QLoRA adds bitsandbytes' transient 16-bit dequantized copy of the largest linear weight (``MatMul4Bit``
dequantizes in forward and backward). Paged optimizers keep their states in CUDA managed memory, reported apart (states.PAGED). peft's
``prepare_model_for_kbit_training`` (which upcasts the non-quantized parameters to fp32) is not assumed.
Validated (LoRA) against CPU-traced peft runs: tests/data/cpu_measured_lora.json (tests/test_finetune.py).
"""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import components as C
from engine.symbolic.formulas import lora as LORA
from engine.symbolic.memory import pytorch
from engine.symbolic.memory.base import Moment, V, b, h, qi, s
from engine.symbolic.memory.base import L
from engine.symbolic.memory.states import EIGHT_BIT, MIXED_PRECISIONS, OPTIMIZER_STATES, PAGED

NF4_DQ_BYTES = sympy.Rational(1, 2) + sympy.Rational(1, 64) + sympy.Rational(4, 64 * 256)
SRC = ("llm-sweep LoRA/QLoRA model (peft 0.21.2 semantics: frozen base, fp32 adapters; bitsandbytes NF4 + "
       "double quant storage), on the pytorch tensor-by-tensor model")
rank = LORA.lora_rank


def _wrapped(family, structure, targets):
    names = set(LORA.resolve_targets(family, structure, targets))
    return [m for m in LORA.modules(family, structure) if m.target in names]


def _activations_per_token(family, structure, o, mods):
    """Saved bytes per token of one layer with a frozen base and LoRA on ``mods``."""
    amp = o.precision in MIXED_PRECISIONS
    act = o.activation_bytes
    cast = 2 if amp else 4  # what lora_A saves per input element: autocast's bf16 cast, or peft's fp32 copy
    f = C.d_ff_expert if structure.moe else C.d_ff
    q, kv = a_ * C.head_dim, C.n_kv_heads * C.head_dim
    per = sum((cast * m.rank_mult * (m.d_in + rank) for m in mods if m.per_layer), sympy.Integer(0))
    if pytorch.block_kind(structure) == "gpt":
        per += structure.norms_per_layer * act * h  # layer-norm inputs
        per += act * (q + 2 * kv)  # q, k, v kept by the attention
        per += (4 * f + 4 * f + 2 * f + 4 * f) if amp else act * 4 * f  # tanh-GELU chain (no c_proj input)
    else:
        per += structure.norms_per_layer * 4 * h  # RMSNorm's fp32 input (pow and the x * rsqrt product)
        if o.attention == "eager":
            rep = sympy.Piecewise((q, sympy.Ne(C.n_kv_heads, a_)), (kv, True))
            per += act * (q + 2 * rep)  # RoPE'd q, repeated k and v as the matmuls see them
        else:  # SDPA / flash: q, k, v unrepeated (enable_gqa), its output and an fp32 log-sum-exp per head
            per += act * (2 * q + 2 * kv) + 4 * a_
            per -= pytorch._scores_bytes_per_token(o)  # (replaces the shared fused-kernel term, traced)
        experts = C.top_k if structure.moe else 1
        per += act * 3 * f * experts  # gate (silu input), silu output, up (the product: down's input, not saved)
        if structure.moe:
            per += 4 * C.n_experts * 2
    return per + pytorch._scores_bytes_per_token(o)


a_ = pytorch.a


def parts(family, structure, o, targets=None) -> dict[str, sympy.Expr]:
    """Named byte expressions (inputs: arch sizes, batch, seq_len, lora_rank) shared by the moments."""
    mods = _wrapped(family, structure, targets)
    trainable = LORA.lora_trainable(family, structure, targets, rank)["total"]
    base16 = 4 if o.precision == "fp32" else 2
    total = qi("params_total")
    if o.finetune == "qlora":
        kept = qi("params_embedding") + qi("params_positions") + qi("params_norms") + qi("params_head")
        kept += qi("params_router") + qi("params_experts")  # 3-D expert parameters and routers are not nn.Linear
        weights = (total - kept) * NF4_DQ_BYTES + kept * 2
    else:
        weights = total * base16
    weights += 4 * trainable
    states = OPTIMIZER_STATES[o.optimizer]
    opt_bits = 8 if o.optimizer in EIGHT_BIT else 32
    optimizer = trainable * states * opt_bits / 8
    paged = sympy.Integer(0)
    if o.optimizer in PAGED:  # states in CUDA managed memory: apart from the device peak (states.PAGED)
        paged, optimizer = optimizer, sympy.Integer(0)
    tokens = b * s
    if o.recompute == "full":
        acts = L * 2 * h * tokens
    else:
        acts = L * _activations_per_token(family, structure, o, mods) * tokens
    acts += 4 * h * tokens  # the final norm's input (lm_head is frozen: its input is not saved)
    if o.precision in MIXED_PRECISIONS:  # autocast's bf16 cache of the fp32 adapter weights
        acts += 2 * trainable
    largest_adapter = sympy.Max(*(m.rank_mult * sympy.Max(m.d_in, m.d_out) for m in mods)) * rank
    temps = 2 * 4 * largest_adapter if o.optimizer in ("adamw", "adam8bit") else 0
    logits_out = o.activation_bytes * tokens * V
    out = {"weights": weights, "gradients": 4 * trainable, "optimizer": optimizer, "activations": acts,
           "logits": pytorch.logits(structure, o).expr, "optimizer_step": logits_out + temps,
           "recompute": _activations_per_token(family, structure, o, mods) * tokens, "paged_optimizer": paged}
    if o.finetune == "qlora":  # bitsandbytes' transient dequantized 16-bit copy of the largest linear weight
        lin = [m.d_in * m.d_out for m in LORA.modules(family, structure) if m.per_layer and m.rank_mult == 1]
        out["dequantized"] = 2 * sympy.Max(*lin)
    return out


def moments(family, structure, o, targets=None) -> list[Moment]:
    p = parts(family, structure, o, targets)
    resident = {k: p[k] for k in ("weights", "optimizer")}
    deq = {"dequantized": p["dequantized"]} if "dequantized" in p else {}
    out = [Moment("backward", {**resident, "activations": p["activations"], "logits": p["logits"], **deq},
                  "memory at the loss backward (LoRA: frozen base)", r"M_{\mathrm{bwd}}", SRC),
           Moment("step", {**resident, "gradients": p["gradients"], "optimizer_step": p["optimizer_step"]},
                  "memory during the optimizer step (adapter gradients and AdamW temporaries)", r"M_{\mathrm{step}}",
                  SRC)]
    if o.recompute == "full":
        out.append(Moment("recompute", {**resident, "activations": p["activations"], "recompute": p["recompute"],
                                        **deq},
                          "memory while the last checkpointed layer is recomputed", r"M_{\mathrm{rec}}", SRC))
    return out
