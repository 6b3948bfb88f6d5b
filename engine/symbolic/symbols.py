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
        units: UDUNITS-2 units (netCDF ``units``): ``"1"`` for counts, FLOPs and ratios, ``"bytes"``, ``"bit"``,
            ``"s"``, ``"1/s"`` (FLOP/s, tokens/s), ``"bytes/s"``; tests/test_units.py parses every one.
        meaning: one line for symbol tables and netCDF ``long_name``.
        integer: True when only integers are valid values.
        minimum: the smallest valid integer value: 1 for sizes, 0 for counts that may be absent
            (layers of a kind, shared experts, dense layers before the first MoE layer).
    """

    name: str
    symbol: sympy.Symbol
    latex: str
    units: str
    meaning: str
    integer: bool
    minimum: int = 1

    @property
    def kind(self) -> str:
        """What a valid value is, in words: "a positive integer", "a non-negative integer", "a positive number"."""
        if not self.integer:
            return "a positive number"
        return "a non-negative integer" if self.minimum == 0 else "a positive integer"


def _entry(name: str, latex: str, units: str, meaning: str, integer: bool = True, minimum: int = 1) -> SymbolInfo:
    if integer and minimum == 0:
        sym = sympy.Symbol(name, integer=True, nonnegative=True)
    elif integer:
        sym = sympy.Symbol(name, integer=True, positive=True)
    else:
        sym = sympy.Symbol(name, real=True, positive=True)
    return SymbolInfo(name, sym, latex, units, meaning, integer, minimum if integer else 1)


def _count(name: str, latex: str, meaning: str) -> SymbolInfo:
    """A count that may be zero (layers of one kind, shared experts)."""
    return _entry(name, latex, "1", meaning, minimum=0)


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
    _count("n_shared_experts", r"n_{\mathrm{shared}}", "shared (always active) experts per MoE layer"),
    _entry("d_ff_shared", r"d_{\mathrm{ff,shared}}", "1", "inner width of a shared expert"),
    _entry("d_ff_expert", r"d_{\mathrm{ff,expert}}", "1",
           "inner width of one routed expert (moe_intermediate_size; d_ff unless given)"),
    # layers by kind (transformers' config.layer_types spellings); they sum to n_layers
    _count("n_full_attention_layers", r"n_{\mathrm{full}}", "layers with full (global) attention"),
    _count("n_sliding_attention_layers", r"n_{\mathrm{sliding}}",
           "layers with sliding-window (local) attention over the last sliding_window tokens"),
    _count("n_chunked_attention_layers", r"n_{\mathrm{chunked}}",
           "layers with chunked (local) attention within blocks of attention_chunk_size tokens (Llama 4)"),
    _count("n_linear_attention_layers", r"n_{\mathrm{linear}}",
           "layers with linear attention (gated DeltaNet: a fixed-size recurrent state, Qwen3-Next)"),
    _count("n_mamba_layers", r"n_{\mathrm{mamba}}", "layers with a Mamba-2 state-space mixer (Nemotron-H)"),
    _count("n_moe_layers", r"n_{\mathrm{moe}}", "layers whose MLP is a mixture of experts"),
    _count("n_dense_layers", r"n_{\mathrm{dense}}", "layers with a dense MLP (in MoE and hybrid models)"),
    _entry("full_attention_interval", r"i_{\mathrm{full}}", "1",
           "one layer in every full_attention_interval has full attention, the others local or linear "
           "(1 / the fraction of global layers; Qwen3-Next's name)"),
    _entry("moe_layer_interval", r"i_{\mathrm{moe}}", "1",
           "one layer in every moe_layer_interval (after the first first_k_dense_replace) has a MoE MLP "
           "(decoder_sparse_step, interleave_moe_layer_step, moe_layer_freq)"),
    _count("first_k_dense_replace", r"k_{\mathrm{dense}}", "leading layers that keep a dense MLP (DeepSeek)"),
    _entry("sliding_window", r"W", "1", "tokens a sliding-window attention layer attends to (config.sliding_window)"),
    _entry("attention_chunk_size", r"C_{\mathrm{chunk}}", "1",
           "tokens per block of a chunked attention layer (Llama 4's attention_chunk_size)"),
    # multi-head latent attention (DeepSeek-V2 §2.1)
    _entry("q_lora_rank", r"d_{c}'", "1", "rank of the low-rank query projection (MLA)"),
    _entry("kv_lora_rank", r"d_{c}", "1", "rank of the compressed key-value latent (MLA)"),
    _entry("qk_nope_head_dim", r"d_{h}^{\mathrm{nope}}", "1", "per-head query/key width without rotary positions (MLA)"),
    _entry("qk_rope_head_dim", r"d_{h}^{R}", "1", "per-head query/key width carrying rotary positions (MLA)"),
    _entry("v_head_dim", r"d_{h}^{v}", "1", "per-head value width (MLA)"),
    # Mamba-2 (Dao & Gu 2024) and gated DeltaNet (Yang et al. 2025) mixers
    _entry("mamba_n_heads", r"n_{\mathrm{ssm}}", "1", "Mamba-2 heads per layer (mamba_num_heads)"),
    _entry("mamba_head_dim", r"d_{\mathrm{ssm}}", "1", "width of one Mamba-2 head (mamba_head_dim)"),
    _entry("ssm_state_size", r"N", "1", "Mamba-2 state size per head channel (ssm_state_size, d_state)"),
    _entry("n_groups", r"G", "1", "Mamba-2 groups sharing B and C (n_groups)"),
    _entry("conv_kernel", r"K", "1", "causal convolution width of a Mamba-2 or linear-attention layer"),
    _entry("linear_num_key_heads", r"n_{k}^{\mathrm{lin}}", "1", "query/key heads of a linear-attention layer"),
    _entry("linear_num_value_heads", r"n_{v}^{\mathrm{lin}}", "1", "value heads of a linear-attention layer"),
    _entry("linear_key_head_dim", r"d_{k}^{\mathrm{lin}}", "1", "query/key head width of a linear-attention layer"),
    _entry("linear_value_head_dim", r"d_{v}^{\mathrm{lin}}", "1", "value head width of a linear-attention layer"),
    _entry("moe_latent_size", r"d_{\mathrm{latent}}", "1",
           "width the routed experts of a latent MoE work in (projected from and back to d_model; Nemotron)"),
    _count("n_mtp_layers", r"n_{\mathrm{MTP}}",
           "multi-token-prediction modules (DeepSeek-V3 num_nextn_predict_layers; not built by transformers)"),
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
    _entry("bits_weight", r"b_{w}", "bit", "bits per stored weight (32 fp32, 16 bf16/fp16, 8 int8/fp8, 4 int4)"),
    _entry("bits_grad", r"b_{g}", "bit", "bits per gradient element"),
    _entry("bits_master", r"b_{m}", "bit", "bits per master-weight element (32 with mixed precision, else 0: none)"),
    _entry("bits_opt", r"b_{o}", "bit", "bits per optimizer-state element"),
    _entry("bits_kv", r"b_{kv}", "bit", "bits per KV-cache element"),
    _entry("quant_group", r"g", "1", "weights per quantization group (one scale and zero point each)"),
    _entry("bits_quant_meta", r"b_{q}", "bit", "bits of scale plus zero point per quantization group"),
    _entry("dp", r"d_{p}", "1", "data-parallel degree (ZeRO/FSDP shard count)"),
    _entry("tp", r"t", "1", "tensor-parallel degree"),
    _entry("ep", r"e", "1", "expert-parallel degree: routed experts split over ep devices (Megatron --expert-model-parallel-size)"),
    _entry("etp", r"t_{e}", "1",
           "expert tensor-parallel degree: each routed expert split over etp devices (Megatron "
           "--expert-tensor-parallel-size)"),
    _entry("pp", r"p", "1", "pipeline-parallel degree"),
    _entry("vp", r"v", "1", "virtual pipeline stages per device (interleaved 1F1B; 1: not interleaved)"),
    _entry("kv_window", r"w", "1", "sliding-window length: the KV cache keeps min(seq_len, kv_window) tokens"),
    _entry("tokens", r"D_{\mathrm{tok}}", "1", "training tokens"),
    _entry("n_gpus", r"n_{\mathrm{gpu}}", "1", "devices that share the training run"),
    _entry("peak_flops", r"X", "1/s", "peak FLOP/s of one device (units 1/s: UDUNITS has no FLOP)", integer=False),
    # a device and its links (engine/catalog/data/hardware.json; --gpu), and the step-time model's knobs
    _entry("matmul_ceiling", r"\mu_{\mathrm{MAMF}}", "1",
           "maximum achievable matmul FLOP/s over the peak, measured with large matmuls (MAMF; 1 where none is "
           "published)", integer=False),
    _entry("attention_peak_flops", r"X_{\mathrm{attn}}", "1/s",
           "peak FLOP/s of the attention kernels (16-bit under fp8 training: only linear layers run in fp8)",
           integer=False),
    _entry("hbm_bandwidth", r"B_{\mathrm{HBM}}", "bytes/s", "device memory bandwidth", integer=False),
    _entry("hbm_capacity", r"M_{\mathrm{HBM}}", "bytes", "device memory capacity", integer=False),
    _entry("link_bandwidth", r"B_{\mathrm{link}}", "bytes/s",
           "scale-up link bandwidth per device and direction (NVLink, Infinity Fabric, ICI)", integer=False),
    _entry("inter_bandwidth", r"B_{\mathrm{net}}", "bytes/s",
           "scale-out network bandwidth per device and direction (InfiniBand, RoCE, DCN)", integer=False),
    _entry("devices_per_node", r"n_{\mathrm{node}}", "1", "devices that share the scale-up link"),
    _entry("global_batch", r"B_{\mathrm{global}}", "1", "sequences per optimizer step, all data-parallel ranks"),
    _entry("cp", r"c", "1", "context-parallel degree: the sequence split over cp devices (ring attention)"),
    _entry("shard_group", r"g_{\mathrm{shard}}", "1",
           "devices a ZeRO/FSDP shard group spans (dp unless hybrid sharding: FSDP HYBRID_SHARD, MaxText ICI-FSDP x "
           "DCN-data; plain data parallelism across the dp / shard_group groups)"),
    _entry("matmul_efficiency", r"\eta_{\mathrm{mm}}", "1",
           "fraction of the peak FLOP/s that the step's matrix multiplications reach", integer=False),
    _entry("attention_efficiency", r"\eta_{\mathrm{attn}}", "1",
           "fraction of the peak FLOP/s that the attention kernels (scores and values) reach", integer=False),
    _entry("comm_efficiency", r"\eta_{\mathrm{net}}", "1",
           "fraction of a link's bandwidth a collective reaches (NCCL bus bandwidth / link bandwidth)", integer=False),
    _entry("dp_overlap", r"o_{\mathrm{dp}}", "1",
           "fraction of the data-parallel gradient communication hidden behind the backward pass", integer=False),
    _entry("collective_latency", r"\alpha", "s", "latency of one step of a ring collective", integer=False),
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

