"""The ``seed`` formula set: the seed article's formulas, exactly as it writes them.

Source: the seed article, a guide to the parameters and memory requirements of large language models.
Every expression below is the article's own; where the article is wrong or inconsistent the
expression is still reproduced verbatim, and the quantity's ``note`` says what is wrong (the
claims checker, ``sweeps/seed-claims.toml``, reports the article's arithmetic errors).
"""

from __future__ import annotations

from typing import Any

import sympy

from engine.symbolic.symbols import symbol
from engine.options import OptionSpec
from engine.symbolic.formulas.base import FormulaSet, Quantity, quantity_symbol

ARTICLE = "seed article (a guide to LLM parameters and memory requirements)"
SEC_PARAMS = f"{ARTICLE}, 'Calculating the Number of Parameters'"
SEC_MODEL_MEM = f"{ARTICLE}, 'Calculating Model Memory'"
SEC_WORKING = f"{ARTICLE}, 'Estimating Working Memory'"
SEC_STEADY = f"{ARTICLE}, 'Steady-State Memory Usage'"
SEC_PEAK = f"{ARTICLE}, 'Peak Memory Usage'"
SEC_SCALING = f"{ARTICLE}, 'Scaling Laws for LLMs'"

OPTIONS: dict[str, OptionSpec] = {
    "tied_head": OptionSpec(
        "tied_head",
        True,
        (True, False),
        "output head shares the embedding matrix (the article names Parameters_output but leaves "
        "it out of its example: true counts it as 0, false counts vocab x d_model)",
    ),
}

d_model = symbol("d_model")
n_layers = symbol("n_layers")
d_ff = symbol("d_ff")
vocab = symbol("vocab")
batch = symbol("batch")
seq_len = symbol("seq_len")
d_input = symbol("d_input")
bytes_param = symbol("bytes_param")
alpha = symbol("alpha")

DEFAULTS: dict[str, sympy.Expr] = {
    # "Where d_ff is usually 4 * d_model"
    "d_ff": 4 * d_model,
    # D, "the input dimension", of int64 inputs: one token id per position of each sequence.
    "d_input": seq_len,
    # "Each parameter is usually stored as a 32-bit floating-point number"
    "bytes_param": sympy.Integer(4),
    # "a scaling exponent typically around 0.07 for language modeling tasks"
    "alpha": sympy.Rational(7, 100),
}


def _q(name: str) -> sympy.Symbol:
    return quantity_symbol(name)


def _parameters(tied_head: bool) -> list[Quantity]:
    """The article's 'Calculating the Number of Parameters'; ``tied_head``: the output head counts as 0."""
    P_attn, P_ffn, P_ln = _q("params_attention"), _q("params_ffn"), _q("params_layernorm")
    P_emb, P_layer, P_out = _q("params_embedding"), _q("params_layer"), _q("params_output")
    return [
        # -- parameters ----------------------------------------------------------------------
        Quantity("params_embedding", vocab * d_model, "1", "embedding layer parameters",
                 r"P_{\mathrm{embedding}}", SEC_PARAMS + ": vocab_size * d_model"),
        Quantity("params_attention", 4 * d_model**2, "1", "multi-head attention parameters per layer",
                 r"P_{\mathrm{attention}}", SEC_PARAMS + ": 4 * d_model^2 (Q, K, V and output projections)",
                 note="weights only, no biases; assumes d_k = d_v = d_model / n_heads (errata #1)"),
        Quantity("params_ffn", 2 * d_model * d_ff + d_model + d_ff, "1",
                 "feed-forward network parameters per layer", r"P_{\mathrm{ffn}}",
                 SEC_PARAMS + ": 2 * d_model * d_ff + d_model + d_ff, d_ff usually 4 * d_model"),
        Quantity("params_layernorm", 2 * d_model, "1", "parameters of one layer normalization",
                 r"P_{\mathrm{layernorm}}", SEC_PARAMS + ": 2 * d_model (scale and bias)"),
        Quantity("params_layer", P_attn + P_ffn + 2 * P_ln, "1", "parameters of one transformer layer",
                 r"P_{\mathrm{layer}}",
                 SEC_PARAMS + ": Parameters_attention + Parameters_ffn + 2 * Parameters_layernorm"),
        Quantity("params_output",
                 sympy.Integer(0) if tied_head else vocab * d_model, "1",
                 "output head parameters (0 when tied to the embedding)", r"P_{\mathrm{output}}",
                 SEC_PARAMS + ": Parameters_output, named but not given; "
                 + ("tied to the embedding (tied_head = true), counted as 0" if tied_head
                    else "untied (tied_head = false), vocab * d_model")),
        Quantity("params_total", n_layers * P_layer + P_emb + P_out, "1", "total parameters",
                 r"N",
                 SEC_PARAMS + ": N * Parameters_layer + Parameters_embedding + Parameters_output"),
    ]


def _memory() -> list[Quantity]:
    """The article's model memory, working memory and steady-state training memory."""
    N, M_model = _q("params_total"), _q("mem_model")
    M_w, M_opt, M_g, M_in = _q("mem_weights"), _q("mem_optimizer"), _q("mem_gradients"), _q("mem_input")
    return [
        # -- model and working memory ------------------------------------------------------------
        Quantity("mem_model", bytes_param * N, "bytes", "model memory: parameters x bytes per parameter",
                 r"M_{\mathrm{model}}", SEC_MODEL_MEM + ": Number of parameters * Bytes per parameter"),
        Quantity("mem_inference", 2 * M_model, "bytes", "inference working memory (about 2x model memory)",
                 r"M_{\mathrm{inference}}", SEC_WORKING + ": Working Memory ~ 2 * Model Memory",
                 note="not sourced; EleutherAI's Transformer Math 101 gives ~1.2x (errata #5)"),
        Quantity("mem_training", 4 * M_model, "bytes", "training memory (about 4x model memory)",
                 r"M_{\mathrm{training}}", SEC_WORKING + ": Training Memory ~ 4 * Model Memory",
                 note="holds only for pure-fp32 Adam without activations (errata #6)"),
        # -- steady state ------------------------------------------------------------------------
        Quantity("mem_weights", 4 * N, "bytes", "fp32 model weights", r"M_{\mathrm{weights}}",
                 SEC_STEADY + ": FP32 copies of the model parameters, 4N bytes"),
        Quantity("mem_optimizer", 8 * N, "bytes", "Adam optimizer states (2 fp32 states per parameter)",
                 r"M_{\mathrm{optimizer}}", SEC_STEADY + ": Adam, 8N bytes (2 states per parameter)"),
        Quantity("mem_gradients", 4 * N, "bytes", "fp32 gradients", r"M_{\mathrm{gradients}}",
                 SEC_STEADY + ": FP32 copies of the gradients, 4N bytes"),
        Quantity("mem_input", 8 * batch * d_input, "bytes", "int64 input batch", r"M_{\mathrm{input}}",
                 SEC_STEADY + ": int64 inputs, 8BD bytes (B batch size, D input dimension)",
                 note="D is undefined in the article; here D = d_input, by default seq_len (errata #7)"),
        Quantity("mem_steady", M_w + M_opt + M_g + M_in, "bytes", "steady-state training memory",
                 r"M_{\mathrm{steady}}", SEC_STEADY + ": M_steady = 16N + 8BD bytes"),
    ]


def _activations() -> list[Quantity]:
    """The article's 'Peak Memory Usage' (activations per layer, logits, the peak) and its scaling law."""
    N, E = _q("params_total"), _q("hidden_elements")
    M_steady, M_act, M_extra = _q("mem_steady"), _q("mem_activations"), _q("mem_peak_extra")
    return [
        # -- activations and peak ------------------------------------------------------------------
        Quantity("hidden_elements", batch * seq_len * d_model, "1",
                 "elements of one hidden-state tensor, E = B S H", r"E",
                 SEC_PEAK + ": E = BSH (B batch size, S sequence length, H hidden size)"),
        Quantity("mem_act_layernorm", 4 * E, "bytes", "activations of one layer normalization",
                 r"M_{\mathrm{act,layernorm}}", SEC_PEAK + ": Layer Normalization, 4E bytes per layer norm"),
        Quantity("mem_act_qkv", 2 * E, "bytes", "QKV computation activations", r"M_{\mathrm{act,qkv}}",
                 SEC_PEAK + ": Attention Block, QKV computation, 2E bytes"),
        Quantity("mem_act_attention_matrix", 4 * batch * seq_len**2, "bytes", "attention matrix activations",
                 r"M_{\mathrm{act,attention\ matrix}}", SEC_PEAK + ": Attention Block, attention matrix, 4BSS bytes",
                 note="lacks the head factor n_heads (errata #8)"),
        Quantity("mem_act_attention_output", 2 * E, "bytes", "attention output activations",
                 r"M_{\mathrm{act,attention\ output}}", SEC_PEAK + ": Attention Block, attention output, 2E bytes"),
        Quantity("mem_act_ffn_in", 2 * E, "bytes", "first linear layer activations", r"M_{\mathrm{act,ffn\ in}}",
                 SEC_PEAK + ": Feed-Forward Block, first linear layer, 2E bytes"),
        Quantity("mem_act_gelu", 8 * E, "bytes", "GELU activations", r"M_{\mathrm{act,gelu}}",
                 SEC_PEAK + ": Feed-Forward Block, GELU activation, 8E bytes"),
        Quantity("mem_act_ffn_out", 2 * E, "bytes", "second linear layer activations",
                 r"M_{\mathrm{act,ffn\ out}}", SEC_PEAK + ": Feed-Forward Block, second linear layer, 2E bytes",
                 note="the second linear layer's input is 4H wide: 8E, not 2E (errata #8)"),
        Quantity("mem_act_logits", 6 * batch * seq_len * vocab, "bytes", "cross-entropy loss logits",
                 r"M_{\mathrm{act,logits}}", SEC_PEAK + ": Cross-Entropy Loss, logits, 6BSV bytes"),
        Quantity("mem_activations", n_layers * (14 * E + 4 * batch * seq_len**2) + 6 * batch * seq_len * vocab,
                 "bytes", "activation memory", r"M_{\mathrm{act}}",
                 SEC_PEAK + ": M_act = L * (14E + 4BSS) + 6BSV bytes",
                 note="verbatim; the per-layer terms the article lists sum to 20E, not 14E (errata #8)"),
        Quantity("mem_peak_extra", 4 * batch * seq_len * vocab, "bytes",
                 "extra allocation at the start of the backward pass", r"M_{\mathrm{peak\ extra}}",
                 SEC_PEAK + ": the additional 4BSV term"),
        Quantity("mem_peak", M_steady + M_act + M_extra, "bytes", "peak training memory",
                 r"M_{\mathrm{peak}}", SEC_PEAK + ": M_peak = M_steady + M_act + 4BSV bytes"),
        # -- scaling -------------------------------------------------------------------------------
        Quantity("perf_relative", N**alpha, "1", "relative performance, proportional to N^alpha",
                 r"\mathrm{perf}", SEC_SCALING + ": Performance proportional to N^alpha, alpha ~ 0.07",
                 integer=False,
                 note="a proportionality only; Kaplan's law is L(N) = (N_c/N)^0.076 (errata #10)"),
    ]


def build(options: dict[str, Any] | None = None) -> FormulaSet:
    """The seed article's formula set, with its structural options.

    Parameters
    ----------
    options : dict, optional
        Structural options (``OPTIONS``: ``tied_head``); the defaults fill the rest.

    Returns
    -------
    FormulaSet
        The article's quantities in its order, its defaults (``d_ff = 4 d_model``, ...) and sources.
    """
    opts = {k: spec.default for k, spec in OPTIONS.items()}
    opts.update(options or {})
    qs = [*_parameters(opts["tied_head"]), *_memory(), *_activations()]
    return FormulaSet(
        name="seed",
        title="the seed article's formulas, verbatim",
        source=ARTICLE,
        options=opts,
        quantities={q.name: q for q in qs},
        defaults=dict(DEFAULTS),
    )
