"""One reader per model type: a config.json (defaults filled) -> (structure, sizes).

A reader reads the fields that change the structure (biases, tying, layer kinds) with
``base.with_options(...)``, and the sizes with ``ConfigReader``'s typed getters, which name the
field in every error; each follows the transformers modeling code its ``Family`` record names
(``engine.catalog.families``). A LLaMA-style type reuses ``llama_like``.
"""

from __future__ import annotations

from typing import Any, Callable

from engine.catalog.config_reader import (ConfigReader, Reader, interval_or_counts, moe_layers, sliding_layers,
                                          stated)
from engine.errors import SpecError
from engine.symbolic.formulas.architectures import Structure


def gpt2(r: ConfigReader, base: Structure):
    """GPT2Config: n_embd, n_layer, n_head, n_inner (null: 4 n_embd), n_positions; the tied head."""
    d = r.int("n_embd")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, stated(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"),
                     r.opt_int("n_inner"), n_positions=r.int("n_positions"))


def opt(r: ConfigReader, base: Structure):
    """OPTConfig: ffn_dim, learned positions, word_embed_proj_dim (project_in/out), enable_bias, the final norm."""
    d = r.int("hidden_size")
    if not r.bool("layer_norm_elementwise_affine"):
        raise SpecError(r.source, "layer_norm_elementwise_affine", "false (parameter-free LayerNorms) is not supported")
    d_embed = r.opt_int("word_embed_proj_dim") or d
    bias = r.bool("enable_bias")
    s = base.with_options(
        attn_bias="all" if bias else "none", mlp_bias=bias, tied_head=r.bool("tie_word_embeddings"),
        final_norm=r.bool("do_layer_norm_before") and not r.bool("_remove_final_layer_norm"),
        embed_proj=d_embed != d)
    if d_embed != d and not s.tied_head:
        raise SpecError(r.source, "tie_word_embeddings", "an untied head with word_embed_proj_dim != hidden_size is "
                                                         "not supported")
    return s, stated(d, r.int("num_hidden_layers"), r.int("num_attention_heads"), r.int("vocab_size"),
                     r.int("ffn_dim"), n_positions=r.int("max_position_embeddings"),
                     d_embed=d_embed if d_embed != d else None)


def bloom(r: ConfigReader, base: Structure):
    """BloomConfig: hidden_size (n_embed), n_layer, n_head; the MLP is 4 hidden_size wide."""
    d = r.int("hidden_size")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, stated(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"))


def gpt_neox(r: ConfigReader, base: Structure):
    """GPTNeoXConfig: attention_bias, intermediate_size; parallel residual with two LayerNorms."""
    s = base.with_options(attn_bias=r.attention_bias(),
                          tied_head=r.bool("tie_word_embeddings"))
    return s, stated(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                     r.int("vocab_size"), r.int("intermediate_size"))


def gptj(r: ConfigReader, base: Structure):
    """GPTJConfig: n_embd, n_layer, n_head, n_inner (null: 4 n_embd)."""
    d = r.int("n_embd")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, stated(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"), r.opt_int("n_inner"))


def llama_like(attention_bias: bool = False, mlp_bias: bool = False, experts: bool = False,
               qwen_window: bool = False) -> Reader:
    """The reader of a LLaMA-style config. ``attention_bias``: an ``attention_bias`` field puts biases on
    every projection; ``mlp_bias``: an ``mlp_bias`` field puts biases in the MLP; ``experts``: MoE
    (``num_local_experts``, ``num_experts_per_tok``). A non-null ``sliding_window`` makes every layer a
    sliding-window layer (transformers' DynamicCache without layer_types); with ``qwen_window`` (Qwen2,
    Qwen3) only when ``use_sliding_window``, and then in the layers from ``max_window_layers`` on."""

    def read(r: ConfigReader, base: Structure):
        options: dict[str, Any] = {"tied_head": r.bool("tie_word_embeddings")}
        window: dict[str, int] = {}
        if qwen_window:
            L = r.int("num_hidden_layers")
            kinds = r.layer_types(("sliding_attention", "full_attention"), L)
            if kinds is None and r.bool("use_sliding_window", False) and r.cfg.get("sliding_window") is not None:
                top = r.int("max_window_layers")
                kinds = ["sliding_attention" if i >= top else "full_attention" for i in range(L)]
            if kinds and "sliding_attention" in kinds:
                window = {"sliding_window": r.int("sliding_window")}
                if set(kinds) == {"sliding_attention"}:
                    options["mixers"] = "sliding_attention"
                else:
                    options["mixers"] = "sliding_attention+full_attention"
                    window["n_full_attention_layers"] = kinds.count("full_attention")
        else:
            window = r.sliding_window() or {}
            if window:
                options["mixers"] = "sliding_attention"
        if attention_bias and r.bool("attention_bias", False):
            options["attn_bias"] = "all"
        if mlp_bias:
            options["mlp_bias"] = r.bool("mlp_bias", False)
        s = base.with_options(**options)
        more = {}
        if experts:
            more = {"n_experts": r.int("num_local_experts"), "top_k": r.int("num_experts_per_tok")}
            if more["top_k"] > more["n_experts"]:
                raise SpecError(r.source, "num_experts_per_tok", f"{more['top_k']} exceeds num_local_experts "
                                                                 f"{more['n_experts']}")
        return s, stated(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                         r.int("vocab_size"), r.int("intermediate_size"), r.opt_int("num_key_value_heads"),
                         r.opt_int("head_dim"), **more, **window)

    return read


def phi(r: ConfigReader, base: Structure):
    """PhiConfig: qk_layernorm, num_key_value_heads; one LayerNorm, a parallel block."""
    s = base.with_options(qk_norm=r.bool("qk_layernorm"), tied_head=r.bool("tie_word_embeddings"))
    return s, stated(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                     r.int("vocab_size"), r.int("intermediate_size"), r.opt_int("num_key_value_heads"))


def falcon(r: ConfigReader, base: Structure):
    """FalconConfig: new_decoder_architecture (num_kv_heads, num_ln_in_parallel_attn) or multi_query and
    parallel_attn; bias; alibi."""
    d, n_heads = r.int("hidden_size"), r.int("num_attention_heads")
    new = r.bool("new_decoder_architecture")
    if new:
        n_kv = r.opt_int("num_kv_heads") or n_heads
        norms = r.opt_int("num_ln_in_parallel_attn") or 2
    else:
        n_kv = 1 if r.bool("multi_query") else n_heads
        norms = 1 if r.bool("parallel_attn") else 2
    bias = r.bool("bias")
    s = base.with_options(
        positions="alibi" if r.bool("alibi") else "rotary", attn_bias="all" if bias else "none", mlp_bias=bias,
        norms_per_layer=norms, parallel=new or r.bool("parallel_attn"), tied_head=r.bool("tie_word_embeddings"))
    return s, stated(d, r.int("num_hidden_layers"), n_heads, r.int("vocab_size"), r.opt_int("ffn_hidden_size"),
                     n_kv if n_kv != n_heads else None)


def _qwen_moe_pattern(r: ConfigReader, n_layers: int) -> tuple[bool, dict[str, int]]:
    """Qwen MoE: layer i is MoE unless in mlp_only_layers, when (i + 1) % decoder_sparse_step == 0."""
    step = r.int("decoder_sparse_step")
    only = r.cfg.get("mlp_only_layers") or []
    if not isinstance(only, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in only):
        raise SpecError(r.source, "mlp_only_layers", f"must be a list of layer indices, got {only!r}")
    return moe_layers(n_layers, [i not in only and (i + 1) % step == 0 for i in range(n_layers)])


def gemma2(r: ConfigReader, base: Structure, qk_norm: bool = False):
    """Gemma2Config (and Gemma 3's with ``qk_norm``): head_dim always stated, layer_types or the sliding/full
    alternation (Gemma 3: sliding_window_pattern), the window."""
    d, L, H, sizes = r.base_sizes()
    r.check_divisible(d, H)
    sizes["head_dim"] = r.int("head_dim")  # an int field of the config, never derived
    kinds = r.layer_types(("sliding_attention", "full_attention"), L)
    if kinds is None:
        period = r.int("sliding_window_pattern", 2) if qk_norm else 2
        kinds = ["full_attention" if (i + 1) % period == 0 else "sliding_attention" for i in range(L)]
    more = interval_or_counts(kinds, "sliding_attention")
    if "sliding_attention" in kinds:
        window = r.int("sliding_window")
        if qk_norm and r.bool("use_bidirectional_attention", False):
            window = window // 2 + 1  # Gemma3TextConfig.__post_init__ halves it
        more["sliding_window"] = window
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"),
                          attn_bias=r.attention_bias())
    return s, stated(**sizes, d_ff=r.int("intermediate_size"), **more)


def gemma3_text(r: ConfigReader, base: Structure):
    """Gemma3TextConfig: ``gemma2``'s reading with q/k norms and sliding_window_pattern."""
    return gemma2(r, base, qk_norm=True)


def _dense_block(r: ConfigReader, s: Structure, head_dim: bool = True):
    """(structure, sizes) of a dense model with one block kind (OLMo 2, StableLM, StarCoder2, Cohere, Granite):
    the tied head, the sizes, and every layer sliding when the config has a window."""
    _, _, _, sizes = r.base_sizes(head_dim)
    s, window = sliding_layers(r, s.with_options(tied_head=r.bool("tie_word_embeddings")))
    return s, stated(**sizes, d_ff=r.int("intermediate_size"), **window)


def olmo2(r: ConfigReader, base: Structure):
    """Olmo2Config: the dense block with q/k norms over the projections."""
    return _dense_block(r, base.with_options(attn_bias=r.attention_bias()))


def stablelm(r: ConfigReader, base: Structure):
    """StableLmConfig: use_qkv_bias, qk_layernorm, use_parallel_residual (then one norm per layer)."""
    d, H = r.int("hidden_size"), r.int("num_attention_heads")  # StableLmAttention always uses d // H
    if d % H:
        raise SpecError(r.source, "hidden_size", f"{d} is not divisible by num_attention_heads {H} (StableLmAttention "
                                                 "rejects it)")
    parallel = r.bool("use_parallel_residual")
    return _dense_block(r, base.with_options(attn_bias="qkv" if r.bool("use_qkv_bias") else "none",
                                             qk_norm=r.bool("qk_layernorm"), parallel=parallel,
                                             norms_per_layer=1 if parallel else 2), head_dim=False)


def starcoder2(r: ConfigReader, base: Structure):
    """Starcoder2Config: use_bias on every projection and the MLP."""
    bias = r.bool("use_bias")
    return _dense_block(r, base.with_options(attn_bias="all" if bias else "none", mlp_bias=bias))


def cohere(r: ConfigReader, base: Structure):
    """CohereConfig: attention_bias, use_qk_norm; a parallel block after one bias-free LayerNorm."""
    return _dense_block(r, base.with_options(attn_bias=r.attention_bias(), qk_norm=r.bool("use_qk_norm")))


def granite(r: ConfigReader, base: Structure):
    """GraniteConfig: the LLaMA block with attention_bias and mlp_bias (its multipliers are scalars)."""
    return _dense_block(r, base.with_options(attn_bias=r.attention_bias(), mlp_bias=r.bool("mlp_bias")))


def olmoe(r: ConfigReader, base: Structure):
    """OlmoeConfig: num_experts, num_experts_per_tok; head_dim must be hidden_size // heads."""
    d, L, H, sizes = r.base_sizes()
    if sizes["head_dim"] is not None:  # OlmoeAttention's q_norm is hidden_size wide, its k_norm (d // H) x n_kv
        raise SpecError(r.source, "head_dim", "a head_dim other than hidden_size // num_attention_heads is not "
                                              "supported for olmoe (its q/k norms keep the d // H widths)")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=r.attention_bias())
    s, window = sliding_layers(r, s)
    return s, stated(**sizes, d_ff=r.int("intermediate_size"), **r.experts("num_experts"),
                     **window)


def qwen2_moe(r: ConfigReader, base: Structure):
    """Qwen2MoeConfig: decoder_sparse_step, mlp_only_layers, a gated shared expert, qkv_bias, the sliding window
    of use_sliding_window."""
    d, L, H, sizes = r.base_sizes()
    dense, pattern = _qwen_moe_pattern(r, L)
    more: dict[str, int] = {}
    mixers = "full_attention"
    kinds = r.layer_types(("sliding_attention", "full_attention"), L)
    if kinds is None and r.bool("use_sliding_window", False):
        top = r.int("max_window_layers")
        kinds = ["sliding_attention" if (i + 1) % 2 and i < top else "full_attention" for i in range(L)]
    if kinds and "sliding_attention" in kinds:
        mixers = "sliding_attention" if set(kinds) == {"sliding_attention"} else "sliding_attention+full_attention"
        more = {"sliding_window": r.int("sliding_window")}
        if mixers != "sliding_attention":
            more.update(interval_or_counts(kinds, "sliding_attention"))
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias="qkv" if r.bool("qkv_bias") else "none",
                          dense_layers=dense, mixers=mixers)
    return s, stated(**sizes, d_ff=r.int("intermediate_size") if dense else None,
                     d_ff_expert=r.int("moe_intermediate_size"), d_ff_shared=r.int("shared_expert_intermediate_size"),
                     **r.experts("num_experts"), **pattern, **more)


def qwen3_moe(r: ConfigReader, base: Structure):
    """Qwen3MoeConfig: the MoE layer pattern, q/k norms, no shared expert."""
    d, L, H, sizes = r.base_sizes()
    dense, pattern = _qwen_moe_pattern(r, L)
    sliding = r.bool("use_sliding_window", False) and r.cfg.get("sliding_window") is not None
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=r.attention_bias(),
                          dense_layers=dense, mixers="sliding_attention" if sliding else "full_attention")
    return s, stated(**sizes, d_ff=r.int("intermediate_size") if dense else None,
                     d_ff_expert=r.int("moe_intermediate_size"), **r.experts("num_experts"), **pattern,
                     **({"sliding_window": r.int("sliding_window")} if sliding else {}))


def qwen3_next(r: ConfigReader, base: Structure):
    """Qwen3NextConfig: gated DeltaNet layers (linear_*) and full attention every full_attention_interval, MoE
    with a gated shared expert."""
    d, L, H, sizes = r.base_sizes()
    sizes["head_dim"] = r.int("head_dim")
    dense, pattern = _qwen_moe_pattern(r, L)
    kinds = r.layer_types(("linear_attention", "full_attention"), L)
    if kinds is None:
        period = r.int("full_attention_interval", 4)
        kinds = ["full_attention" if (i + 1) % period == 0 else "linear_attention" for i in range(L)]
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=r.attention_bias(),
                          dense_layers=dense)
    return s, stated(**sizes, d_ff=r.int("intermediate_size") if dense else None,
                     d_ff_expert=r.int("moe_intermediate_size"), d_ff_shared=r.int("shared_expert_intermediate_size"),
                     **r.experts("num_experts"), **pattern, **interval_or_counts(kinds, "linear_attention"),
                     conv_kernel=r.int("linear_conv_kernel_dim"), linear_num_key_heads=r.int("linear_num_key_heads"),
                     linear_num_value_heads=r.int("linear_num_value_heads"),
                     linear_key_head_dim=r.int("linear_key_head_dim"),
                     linear_value_head_dim=r.int("linear_value_head_dim"))


def gpt_oss(r: ConfigReader, base: Structure):
    """GptOssConfig: alternating sliding and full attention, experts with biases, attention sinks."""
    d, L, H, sizes = r.base_sizes()
    sizes["head_dim"] = r.int("head_dim")
    kinds = r.layer_types(("sliding_attention", "full_attention"), L)
    if kinds is None:
        kinds = ["full_attention" if (i + 1) % 2 == 0 else "sliding_attention" for i in range(L)]
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=r.attention_bias())
    more = {"sliding_window": r.int("sliding_window")} if "sliding_attention" in kinds else {}
    return s, stated(**sizes, d_ff=r.int("intermediate_size"), **r.experts("num_local_experts"),
                     **interval_or_counts(kinds, "sliding_attention"), **more)


def llama4_text(r: ConfigReader, base: Structure):
    """Llama4TextConfig: chunked attention where RoPE is used (no_rope_layers), MoE layers
    (interleave_moe_layer_step, moe_layers) with a shared expert."""
    d, L, H, sizes = r.base_sizes()
    sizes["head_dim"] = r.int("head_dim")
    chunk = r.opt_int("attention_chunk_size")
    kinds = r.layer_types(("chunked_attention", "full_attention"), L)
    if kinds is None:
        uses_rope = r.cfg.get("no_rope_layers") or [
            int((i + 1) % r.int("no_rope_layer_interval") != 0) for i in range(L)]
        if not isinstance(uses_rope, list) or len(uses_rope) != L:
            raise SpecError(r.source, "no_rope_layers", f"must list {L} entries (one per layer), got {uses_rope!r}")
        kinds = ["chunked_attention" if rope and chunk is not None else "full_attention" for rope in uses_rope]
    step = r.int("interleave_moe_layer_step")
    listed = r.cfg.get("moe_layers")
    if listed is None:
        listed = list(range(step - 1, L, step))
    if not isinstance(listed, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in listed):
        raise SpecError(r.source, "moe_layers", f"must be a list of layer indices, got {listed!r}")
    dense, pattern = moe_layers(L, [i in listed for i in range(L)])
    chunked = "chunked_attention" in kinds
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=r.attention_bias(),
                          dense_layers=dense, mixers="chunked_attention+full_attention" if chunked else "full_attention")
    more = {**interval_or_counts(kinds, "chunked_attention"), "attention_chunk_size": chunk} if chunked else {}
    return s, stated(**sizes, d_ff=r.int("intermediate_size_mlp") if dense else None,
                     d_ff_expert=r.int("intermediate_size"), **r.experts("num_local_experts"), **pattern, **more)


def deepseek(v3: bool) -> Reader:
    """The reader of DeepseekV2Config (``v3`` False: hidden_size must divide by the heads, an mlp_bias) or
    DeepseekV3Config (``v3``: the MTP modules): MLA ranks and head dims, DeepSeekMoE's dense first layers."""
    def read(r: ConfigReader, base: Structure):
        d, L, H, sizes = r.base_sizes(head_dim=False)  # MLA: no head_dim (transformers sets it to qk_rope_head_dim)
        sizes["n_kv_heads"] = None  # num_key_value_heads builds nothing under MLA
        if not v3:
            r.check_divisible(d, H)
        q_rank = r.opt_int("q_lora_rank")
        dense, moe = _deepseek_moe(r, L, mtp=v3)
        s = base.with_options(tied_head=r.bool("tie_word_embeddings"), q_lora=q_rank is not None,
                              mlp_bias=r.bool("mlp_bias", False) if not v3 else False,
                              attn_bias=r.attention_bias(), dense_layers=dense,
                              shared_experts=r.count("n_shared_experts", 0) > 0, mtp=v3)
        return s, stated(**sizes, **moe, q_lora_rank=q_rank, kv_lora_rank=r.int("kv_lora_rank"),
                         qk_nope_head_dim=r.int("qk_nope_head_dim"), qk_rope_head_dim=r.int("qk_rope_head_dim"),
                         v_head_dim=r.int("v_head_dim"))

    return read


def _deepseek_moe(r: ConfigReader, n_layers: int, mtp: bool) -> tuple[bool, dict[str, int]]:
    """DeepSeekMoE as DeepSeek-V2/V3 and GLM-4-MoE configure it: (whether dense first layers exist, the sizes):
    dense MLPs in the first first_k_dense_replace layers, routed experts of moe_intermediate_size, shared
    experts, and (mtp) the multi-token-prediction modules transformers does not build."""
    k = r.count("first_k_dense_replace")  # transformers fails to build the model without it
    dense, pattern = moe_layers(n_layers, [i >= k for i in range(n_layers)])
    shared = r.count("n_shared_experts", 0)
    modules = r.count("num_nextn_predict_layers", 0) if mtp else 1
    return dense, {"d_ff": r.int("intermediate_size") if dense else None, "d_ff_expert": r.int("moe_intermediate_size"),
                   **r.experts("n_routed_experts"), **pattern, "n_shared_experts": shared if shared > 1 else None,
                   **({"n_mtp_layers": modules} if modules != 1 else {})}


def glm4_moe(r: ConfigReader, base: Structure):
    """Glm4MoeConfig: DeepSeekMoE's layers with q/k/v biases, optional q/k norms, the MTP layers."""
    d, L, H, sizes = r.base_sizes()
    dense, moe = _deepseek_moe(r, L, mtp=True)
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias="qkv" if r.bool("attention_bias") else "none",
                          qk_norm=r.bool("use_qk_norm"), dense_layers=dense,
                          shared_experts=r.count("n_shared_experts", 0) > 0)
    return s, stated(**sizes, **moe)


NEMOTRON_H_PATTERN = {"M": "mamba", "*": "full_attention", "-": "mlp", "E": "moe"}
NEMOTRON_H_TYPES = {"linear_attention": "mamba", "mamba": "mamba", "full_attention": "full_attention",
                    "attention": "full_attention", "mlp": "mlp", "moe": "moe"}


def _nemotron_h_kinds(r: ConfigReader) -> list[str]:
    """The layer kinds of a Nemotron-H config: its ``layers_block_type`` (or ``layer_types``) list, else its
    ``hybrid_override_pattern``, else NemotronHConfig's default."""
    listed = r.cfg.get("layers_block_type", r.cfg.get("layer_types"))
    pattern = r.cfg.get("hybrid_override_pattern")
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise SpecError(r.source, "layers_block_type", f"must be a list of strings, got {listed!r}")
        r.check_known("layers_block_type", listed, NEMOTRON_H_TYPES, ("entry", "entries"),
                      "valid: linear_attention (Mamba-2), full_attention, mlp, moe")
        return [NEMOTRON_H_TYPES[v] for v in listed]
    if pattern is not None:
        if not isinstance(pattern, str):
            raise SpecError(r.source, "hybrid_override_pattern", f"must be a string, got {pattern!r}")
        r.check_known("hybrid_override_pattern", pattern, NEMOTRON_H_PATTERN, ("character", "characters"),
                      "valid: M (Mamba-2), * (attention), - (MLP), E (MoE)")
        return [NEMOTRON_H_PATTERN[c] for c in pattern]
    return ["mamba", "moe", "full_attention", "mlp"]  # NemotronHConfig's default layers_block_type


def nemotron_h(r: ConfigReader, base: Structure):
    """NemotronHConfig: the layer kinds (layers_block_type or hybrid_override_pattern), Mamba-2 sizes, MoE layers
    with a shared expert and an optional latent projection."""
    d, H = r.int("hidden_size"), r.int("num_attention_heads")
    kinds = _nemotron_h_kinds(r)
    if not kinds:
        raise SpecError(r.source, "hybrid_override_pattern", "is empty; a model needs at least one layer")
    moe = "moe" in kinds
    latent = r.opt_int("moe_latent_size") if moe else None
    n_mamba, n_attn = kinds.count("mamba"), kinds.count("full_attention")
    if not n_mamba or not n_attn:
        raise SpecError(r.source, "hybrid_override_pattern", "needs Mamba-2 (M) and attention (*) layers; "
                                                             f"got {', '.join(sorted(set(kinds)))}")
    mlp_bias = r.bool("mlp_bias")
    s = base.with_options(moe=moe, shared_experts=moe, mlp_bias=mlp_bias, moe_latent=latent is not None,
                          mamba_bias=r.bool("use_bias"), mamba_conv_bias=r.bool("use_conv_bias"))
    more = {"n_mamba_layers": n_mamba, "n_full_attention_layers": n_attn}
    if moe:
        more.update(n_moe_layers=kinds.count("moe"), d_ff_expert=r.int("moe_intermediate_size"),
                    d_ff_shared=r.int("moe_shared_expert_intermediate_size"), **r.experts("n_routed_experts"),
                    **({"moe_latent_size": latent} if latent is not None else {}))
    hd = r.int("head_dim")
    return s, stated(d, len(kinds), H, r.int("vocab_size"), r.int("intermediate_size"),
                     r.int("num_key_value_heads") if r.int("num_key_value_heads") != H else None,
                     hd if hd * H != d else None, mamba_n_heads=r.int("mamba_num_heads"),
                     mamba_head_dim=r.int("mamba_head_dim"), ssm_state_size=r.int("ssm_state_size"),
                     n_groups=r.int("n_groups"), conv_kernel=r.int("conv_kernel"), **more)


#: ``families.json``'s ``reader`` -> the reader (a function of a ``ConfigReader`` and the default structure)
READERS: dict[str, Reader] = {
    "gpt2": gpt2, "opt": opt, "bloom": bloom, "gpt_neox": gpt_neox, "gptj": gptj, "phi": phi, "falcon": falcon,
    "gemma2": gemma2, "gemma3_text": gemma3_text, "olmo2": olmo2, "stablelm": stablelm, "starcoder2": starcoder2,
    "cohere": cohere, "granite": granite, "olmoe": olmoe, "qwen2_moe": qwen2_moe, "qwen3_moe": qwen3_moe,
    "qwen3_next": qwen3_next, "gpt_oss": gpt_oss, "llama4_text": llama4_text, "glm4_moe": glm4_moe,
    "nemotron_h": nemotron_h,
}
#: ``families.json``'s ``reader`` -> a function of its ``reader_options`` that returns the reader
READER_FACTORIES: dict[str, Callable[..., Reader]] = {"llama_like": llama_like, "deepseek": deepseek}
