"""The symbol registry: every input a formula may depend on, spelled once.

Each entry names a sympy symbol (with its assumptions), its LaTeX, its unit and its meaning.
The same name is used in specs (``[axes]`` / ``[fixed]``), on the command line, as a netCDF
dimension or coordinate, and in printed formulas. This module imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy


@dataclass(frozen=True)
class SymbolInfo:
    """One registered input symbol.

    Attributes:
        name: the one spelling used everywhere (code, spec, CLI, netCDF).
        symbol: the sympy symbol, with assumptions (``positive``, ``integer``).
        latex: how it prints in formulas.
        units: CF-style units string (``"1"`` for counts, ``"bytes"``).
        meaning: one line for symbol tables and netCDF ``long_name``.
        integer: True when only positive integers are valid values.
    """

    name: str
    symbol: sympy.Symbol
    latex: str
    units: str
    meaning: str
    integer: bool


def _entry(name: str, latex: str, units: str, meaning: str, integer: bool = True) -> SymbolInfo:
    if integer:
        sym = sympy.Symbol(name, integer=True, positive=True)
    else:
        sym = sympy.Symbol(name, real=True, positive=True)
    return SymbolInfo(name, sym, latex, units, meaning, integer)


_ENTRIES = (
    _entry("d_model", r"d_{\mathrm{model}}", "1", "model (hidden) width: size of the residual stream"),
    _entry("n_layers", r"n_{\mathrm{layers}}", "1", "number of transformer layers"),
    _entry("n_heads", r"n_{\mathrm{heads}}", "1", "number of attention heads (d_k = d_v = d_model / n_heads)"),
    _entry("n_kv_heads", r"n_{\mathrm{kv}}", "1",
           "number of key/value heads (n_heads: MHA; fewer: GQA; 1: MQA)"),
    _entry("head_dim", r"d_{\mathrm{head}}", "1", "width of one attention head (d_model / n_heads unless given)"),
    _entry("d_ff", r"d_{\mathrm{ff}}", "1", "inner width of the feed-forward network"),
    _entry("vocab", r"V", "1", "vocabulary size"),
    _entry("n_positions", r"n_{\mathrm{pos}}", "1", "rows of a learned position-embedding table (context length)"),
    _entry("d_embed", r"d_{\mathrm{embed}}", "1",
           "width of the token embedding when it differs from d_model (projected in and out; OPT-350m)"),
    _entry("n_experts", r"n_{\mathrm{experts}}", "1", "routed experts per MoE layer"),
    _entry("top_k", r"k", "1", "experts each token is routed to"),
    _entry("n_shared_experts", r"n_{\mathrm{shared}}", "1", "shared (always active) experts per MoE layer"),
    _entry("d_ff_shared", r"d_{\mathrm{ff,shared}}", "1", "inner width of a shared expert"),
    _entry("batch", r"B", "1", "batch size (sequences per step)"),
    _entry("seq_len", r"S", "1", "sequence length (tokens per sequence)"),
    _entry(
        "d_input",
        r"D",
        "1",
        "input dimension: int64 values per sample in the input batch "
        "(the seed article's D in 8BD; one token id per position, so D = seq_len unless set)",
    ),
    _entry("bytes_param", r"b_{\mathrm{param}}", "bytes", "bytes per stored parameter (4 for fp32, 2 for fp16/bf16)"),
    _entry("bits_weight", r"b_{w}", "1", "bits per stored weight (32 fp32, 16 bf16/fp16, 8 int8/fp8, 4 int4)"),
    _entry("bits_grad", r"b_{g}", "1", "bits per gradient element"),
    _entry("bits_master", r"b_{m}", "1", "bits per master-weight element (32 with mixed precision, else 0: none)"),
    _entry("bits_opt", r"b_{o}", "1", "bits per optimizer-state element"),
    _entry("bits_kv", r"b_{kv}", "1", "bits per KV-cache element"),
    _entry("quant_group", r"g", "1", "weights per quantization group (one scale and zero point each)"),
    _entry("bits_quant_meta", r"b_{q}", "1", "bits of scale plus zero point per quantization group"),
    _entry("dp", r"d_{p}", "1", "data-parallel degree (ZeRO/FSDP shard count)"),
    _entry("tp", r"t", "1", "tensor-parallel degree"),
    _entry("pp", r"p", "1", "pipeline-parallel degree"),
    _entry("vp", r"v", "1", "virtual pipeline stages per device (interleaved 1F1B; 1: not interleaved)"),
    _entry("kv_window", r"w", "1", "sliding-window length: the KV cache keeps min(seq_len, kv_window) tokens"),
    _entry("tokens", r"D_{\mathrm{tok}}", "1", "training tokens"),
    _entry("n_gpus", r"n_{\mathrm{gpu}}", "1", "devices that share the training run"),
    _entry("peak_flops", r"X", "1", "peak FLOP/s of one device", integer=False),
    _entry("mfu", r"\mathrm{MFU}", "1", "model FLOPs utilization, 0 to 1", integer=False),
    _entry("compute", r"C", "1", "training compute budget in FLOPs", integer=False),
    _entry(
        "alpha",
        r"\alpha",
        "1",
        "scaling exponent in performance proportional to N^alpha",
        integer=False,
    ),
)

SYMBOLS: dict[str, SymbolInfo] = {e.name: e for e in _ENTRIES}


def symbol(name: str) -> sympy.Symbol:
    """The sympy symbol registered under ``name`` (KeyError naming the valid ones otherwise)."""
    try:
        return SYMBOLS[name].symbol
    except KeyError:
        raise KeyError(f"unknown symbol {name!r}; known symbols: {', '.join(SYMBOLS)}") from None


def info_for(sym: sympy.Symbol) -> SymbolInfo:
    """The registry entry of a sympy symbol."""
    return SYMBOLS[sym.name]
