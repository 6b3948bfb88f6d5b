"""Model families: one ``Family`` record per Hugging Face ``model_type``, and the config.json importer.

A record holds everything the engine knows about a model type: the ``Structure`` its default
configuration builds, transformers' configuration defaults and field spellings, the reader that
turns a config into (structure, sizes), its source, its ``d_ff`` default, the block style of the
PyTorch memory model and whether Narayanan's FLOP forms apply. ``FAMILIES`` is the registry;
``from_hf_config`` is one lookup in it. Adding a model type is one record here plus one row in
``tests/data/transformers_param_counts.json`` (README, "Adding a model type").

Configs are local files or mappings (never the network), in their complete form or the minimal one
that omits fields equal to the model type's defaults: omitted fields are filled with the defaults of
transformers' configuration class (``hf_defaults``, read off transformers 5.24), and derived fields
are derived as transformers derives them (``num_key_value_heads`` = ``num_attention_heads`` when
null, ``head_dim`` = ``hidden_size // num_attention_heads`` when null, GPT-2's ``n_inner`` =
4 ``n_embd``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import sympy

from engine.errors import SpecError, read_user_file
from engine.symbolic.formulas.architectures import Structure
from engine.symbolic.symbols import symbol

d_model = symbol("d_model")


class ConfigReader:
    """Typed access to a config's fields (defaults filled, aliases resolved); errors name the field."""

    def __init__(self, source: str, cfg: dict):
        self.source, self.cfg = source, cfg

    def int(self, key: str, default: Any = None) -> int:
        value = self.cfg.get(key, default)
        if value is None:
            raise SpecError(self.source, key, "missing; a positive integer is required")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SpecError(self.source, key, f"must be a positive integer, got {value!r}")
        return value

    def count(self, key: str, default: Any = None) -> int:
        """A non-negative integer (a count that may be zero: dense layers, shared experts, MTP modules)."""
        value = self.cfg.get(key, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(self.source, key, f"must be a non-negative integer, got {value!r}")
        return value

    def opt_int(self, key: str) -> int | None:
        return None if self.cfg.get(key) is None else self.int(key)

    def bool(self, key: str, default: bool | None = None) -> bool:
        value = self.cfg.get(key, default)
        if not isinstance(value, bool):
            raise SpecError(self.source, key, f"must be true or false, got {value!r}")
        return value


Reader = Callable[[ConfigReader, Structure], "tuple[Structure, dict[str, int]]"]


@dataclass(frozen=True)
class Family:
    """Everything about one Hugging Face ``model_type``.

    Attributes:
        model_type: the config's ``model_type`` (also the family's name and formula set name).
        structure: the structure transformers builds for the default configuration.
        hf_defaults: transformers' configuration defaults of the fields that decide parameter counts.
        reader: ``(ConfigReader, structure) -> (structure, sizes)`` for one config.
        source: where the structure comes from (paper; transformers class).
        aliases: other spellings transformers accepts for a field (``{"n_embed": "hidden_size"}``).
        d_ff_default: the MLP width when the config does not give one (``4*d_model``), or None.
        narayanan: whether Narayanan et al.'s 72/96 B s L h^2 FLOP forms apply (the GPT block).
        architecture: the class transformers' AutoModelForCausalLM builds for this type, as a config.json's
            ``architectures`` names it (a ``model_type`` the catalog lacks is read through it: Kimi K2's
            ``kimi_k2`` is ``DeepseekV3ForCausalLM``).
    """

    model_type: str
    structure: Structure
    hf_defaults: Mapping[str, Any]
    reader: Reader
    source: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    d_ff_default: sympy.Expr | None = None
    narayanan: bool = False
    architecture: str = ""

    def __post_init__(self):
        object.__setattr__(self, "hf_defaults", MappingProxyType(dict(self.hf_defaults)))
        object.__setattr__(self, "aliases", MappingProxyType(dict(self.aliases)))

    def read(self, config: Mapping[str, Any], source: str) -> "tuple[Structure, dict[str, int]]":
        """(structure, sizes) of a config of this type: defaults filled, aliases resolved."""
        cfg = dict(self.hf_defaults)
        for key, value in config.items():
            cfg[self.aliases.get(key, key)] = value
        return self.reader(ConfigReader(source, cfg), self.structure)


@dataclass(frozen=True)
class Architecture:
    """An architecture read from a config: its family, structure and sizes (input symbol values)."""

    family: str
    structure: Structure
    values: dict[str, int]
    source: str
    name: str = ""

    @property
    def label(self) -> str:
        """How errors name it: the preset, family or file the user gave."""
        return self.name or self.source


# -- readers -----------------------------------------------------------------------------------


def _values(d_model, n_layers, n_heads, vocab, d_ff=None, n_kv_heads=None, head_dim=None, **more) -> dict[str, int]:
    """The sizes a config states. Derived ones stay out (d_ff = 4 d_model where the family derives
    it, n_kv_heads = n_heads, head_dim = d_model / n_heads), so a sweep over d_model keeps them derived."""
    values = {"d_model": d_model, "n_layers": n_layers, "n_heads": n_heads, "vocab": vocab, "d_ff": d_ff,
              "n_kv_heads": n_kv_heads, "head_dim": head_dim, **more}
    return {k: v for k, v in values.items() if v is not None}


def _gpt2(r: ConfigReader, base: Structure):
    d = r.int("n_embd")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, _values(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"),
                      r.opt_int("n_inner"), n_positions=r.int("n_positions"))


def _opt(r: ConfigReader, base: Structure):
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
    return s, _values(d, r.int("num_hidden_layers"), r.int("num_attention_heads"), r.int("vocab_size"),
                      r.int("ffn_dim"), n_positions=r.int("max_position_embeddings"),
                      d_embed=d_embed if d_embed != d else None)


def _bloom(r: ConfigReader, base: Structure):
    d = r.int("hidden_size")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, _values(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"))


def _gpt_neox(r: ConfigReader, base: Structure):
    s = base.with_options(attn_bias=_attention_bias(r),
                          tied_head=r.bool("tie_word_embeddings"))
    return s, _values(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                      r.int("vocab_size"), r.int("intermediate_size"))


def _gptj(r: ConfigReader, base: Structure):
    d = r.int("n_embd")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, _values(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"), r.opt_int("n_inner"))


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
            kinds = layer_types(r, ("sliding_attention", "full_attention"), L)
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
            window = sliding_everywhere(r) or {}
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
        return s, _values(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                          r.int("vocab_size"), r.int("intermediate_size"), r.opt_int("num_key_value_heads"),
                          r.opt_int("head_dim"), **more, **window)

    return read


def _phi(r: ConfigReader, base: Structure):
    s = base.with_options(qk_norm=r.bool("qk_layernorm"), tied_head=r.bool("tie_word_embeddings"))
    return s, _values(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                      r.int("vocab_size"), r.int("intermediate_size"), r.opt_int("num_key_value_heads"))


def _falcon(r: ConfigReader, base: Structure):
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
    return s, _values(d, r.int("num_hidden_layers"), n_heads, r.int("vocab_size"), r.opt_int("ffn_hidden_size"),
                      n_kv if n_kv != n_heads else None)


# -- layer patterns (transformers' config.layer_types) --------------------------------------------


def layer_types(r: ConfigReader, allowed: tuple[str, ...], n_layers: int, field: str = "layer_types",
                legacy: Mapping[str, str] | None = None) -> list[str] | None:
    """The config's ``layer_types`` list checked as transformers checks it (one entry per layer) and
    against the kinds this model type builds; None when the config has none."""
    value = r.cfg.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(r.source, field, f"must be a list of strings, got {value!r}")
    kinds = [(legacy or {}).get(v, v) for v in value]
    bad = sorted({v for v in kinds if v not in allowed})
    if bad:
        raise SpecError(r.source, field, f"unknown entr{'ies' if len(bad) > 1 else 'y'} {', '.join(map(repr, bad))}; "
                                         f"this model type builds {', '.join(allowed)}")
    if len(kinds) != n_layers:
        raise SpecError(r.source, field, f"has {len(kinds)} entries; num_hidden_layers is {n_layers} (transformers "
                                         "requires one entry per layer)")
    return kinds


def interval_or_counts(kinds: list[str], rest: str, full: str = "full_attention") -> dict[str, int]:
    """The sizes that give a layer list: ``full_attention_interval`` P when layer i is ``full`` exactly where
    (i + 1) % P == 0 and ``rest`` elsewhere (so a sweep over n_layers keeps the pattern), else the count."""
    n = len(kinds)
    for period in range(1, n + 1):
        if kinds == [full if (i + 1) % period == 0 else rest for i in range(n)]:
            return {"full_attention_interval": period}
    if set(kinds) <= {full, rest}:
        return {f"n_{full}_layers": kinds.count(full)}
    raise ValueError(f"layers of kinds {sorted(set(kinds))}")  # callers check the kinds first


def moe_layers(n_layers: int, is_moe: list[bool]) -> tuple[bool, dict[str, int]]:
    """(whether some layers keep a dense MLP, the sizes that give the MoE layer pattern): layers
    i >= first_k_dense_replace with (i + 1 - k) % moe_layer_interval == 0 are MoE, else the count."""
    if all(is_moe):
        return False, {}
    for k in range(n_layers + 1):
        for step in range(1, n_layers + 1):
            if is_moe == [i >= k and (i + 1 - k) % step == 0 for i in range(n_layers)]:
                return True, {**({"first_k_dense_replace": k} if k else {}),
                              **({"moe_layer_interval": step} if step > 1 else {})}
    return True, {"n_moe_layers": sum(is_moe)}


def sliding_everywhere(r: ConfigReader) -> dict[str, int] | None:
    """A non-null ``sliding_window`` on a type without ``layer_types``: transformers' DynamicCache makes
    every layer a sliding-window layer (cache_utils.get_layer_types_and_kwargs)."""
    window = r.cfg.get("sliding_window")
    if window is None:
        return None
    return {"sliding_window": r.int("sliding_window")}


def sliding_layers(r: ConfigReader, s: Structure) -> tuple[Structure, dict[str, int]]:
    """The structure and sizes of ``sliding_everywhere``: every layer sliding when the config has a window."""
    window = sliding_everywhere(r)
    return (s.with_options(mixers="sliding_attention"), window) if window else (s, {})


def _head_dim(r: ConfigReader, d: int, n_heads: int) -> int | None:
    """``head_dim`` as the modeling code reads it (getattr(config, "head_dim", d // H)): stated only when it
    differs from d // n_heads, so a sweep over d_model keeps it derived."""
    hd = r.opt_int("head_dim")
    if hd is None and d % n_heads:
        return d // n_heads  # transformers' floor division (GLM-4-MoE's default 4096 // 96 = 42)
    return hd if hd is not None and hd * n_heads != d else None


def _check_divisible(r: ConfigReader, d: int, n_heads: int) -> None:
    """transformers' validate_architecture (Gemma 2/3, DeepSeek-V2): hidden_size % num_attention_heads == 0."""
    if d % n_heads:
        raise SpecError(r.source, "hidden_size", f"{d} is not a multiple of num_attention_heads {n_heads} "
                                                 "(transformers rejects it)")


def _experts(r: ConfigReader, n_key: str) -> dict[str, int]:
    n, k = r.int(n_key), r.opt_int("num_experts_per_tok")
    if k is not None and k > n:
        raise SpecError(r.source, "num_experts_per_tok", f"{k} exceeds {n_key} {n}")
    return {"n_experts": n, **({"top_k": k} if k is not None else {})}


def _qwen_moe_pattern(r: ConfigReader, n_layers: int) -> tuple[bool, dict[str, int]]:
    """Qwen MoE: layer i is MoE unless in mlp_only_layers, when (i + 1) % decoder_sparse_step == 0."""
    step = r.int("decoder_sparse_step")
    only = r.cfg.get("mlp_only_layers") or []
    if not isinstance(only, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in only):
        raise SpecError(r.source, "mlp_only_layers", f"must be a list of layer indices, got {only!r}")
    return moe_layers(n_layers, [i not in only and (i + 1) % step == 0 for i in range(n_layers)])


def _base_sizes(r: ConfigReader, head_dim: bool = True) -> tuple[int, int, int, dict]:
    d, L, H = r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads")
    kv = r.opt_int("num_key_value_heads")
    sizes = {"d_model": d, "n_layers": L, "n_heads": H, "vocab": r.int("vocab_size"),
             "n_kv_heads": kv if kv is not None and kv != H else None,
             "head_dim": _head_dim(r, d, H) if head_dim else None}
    return d, L, H, sizes


def _gemma2(r: ConfigReader, base: Structure, qk_norm: bool = False):
    d, L, H, sizes = _base_sizes(r)
    _check_divisible(r, d, H)
    sizes["head_dim"] = r.int("head_dim")  # an int field of the config, never derived
    kinds = layer_types(r, ("sliding_attention", "full_attention"), L)
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
                          attn_bias=_attention_bias(r))
    return s, _values(**sizes, d_ff=r.int("intermediate_size"), **more)


def _dense_block(r: ConfigReader, s: Structure, head_dim: bool = True):
    """(structure, sizes) of a dense model with one block kind (OLMo 2, StableLM, StarCoder2, Cohere, Granite):
    the tied head, the sizes, and every layer sliding when the config has a window."""
    _, _, _, sizes = _base_sizes(r, head_dim)
    s, window = sliding_layers(r, s.with_options(tied_head=r.bool("tie_word_embeddings")))
    return s, _values(**sizes, d_ff=r.int("intermediate_size"), **window)


def _attention_bias(r: ConfigReader) -> str:
    return "all" if r.bool("attention_bias") else "none"


def _olmo2(r: ConfigReader, base: Structure):
    return _dense_block(r, base.with_options(attn_bias=_attention_bias(r)))


def _stablelm(r: ConfigReader, base: Structure):
    d, H = r.int("hidden_size"), r.int("num_attention_heads")  # StableLmAttention always uses d // H
    if d % H:
        raise SpecError(r.source, "hidden_size", f"{d} is not divisible by num_attention_heads {H} (StableLmAttention "
                                                 "rejects it)")
    parallel = r.bool("use_parallel_residual")
    return _dense_block(r, base.with_options(attn_bias="qkv" if r.bool("use_qkv_bias") else "none",
                                             qk_norm=r.bool("qk_layernorm"), parallel=parallel,
                                             norms_per_layer=1 if parallel else 2), head_dim=False)


def _starcoder2(r: ConfigReader, base: Structure):
    bias = r.bool("use_bias")
    return _dense_block(r, base.with_options(attn_bias="all" if bias else "none", mlp_bias=bias))


def _cohere(r: ConfigReader, base: Structure):
    return _dense_block(r, base.with_options(attn_bias=_attention_bias(r), qk_norm=r.bool("use_qk_norm")))


def _granite(r: ConfigReader, base: Structure):
    return _dense_block(r, base.with_options(attn_bias=_attention_bias(r), mlp_bias=r.bool("mlp_bias")))


def _olmoe(r: ConfigReader, base: Structure):
    d, L, H, sizes = _base_sizes(r)
    if sizes["head_dim"] is not None:  # OlmoeAttention's q_norm is hidden_size wide, its k_norm (d // H) x n_kv
        raise SpecError(r.source, "head_dim", "a head_dim other than hidden_size // num_attention_heads is not "
                                              "supported for olmoe (its q/k norms keep the d // H widths)")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=_attention_bias(r))
    s, window = sliding_layers(r, s)
    return s, _values(**sizes, d_ff=r.int("intermediate_size"), **_experts(r, "num_experts"),
                      **window)


def _qwen2_moe(r: ConfigReader, base: Structure):
    d, L, H, sizes = _base_sizes(r)
    dense, pattern = _qwen_moe_pattern(r, L)
    more: dict[str, int] = {}
    mixers = "full_attention"
    kinds = layer_types(r, ("sliding_attention", "full_attention"), L)
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
    return s, _values(**sizes, d_ff=r.int("intermediate_size") if dense else None,
                      d_ff_expert=r.int("moe_intermediate_size"), d_ff_shared=r.int("shared_expert_intermediate_size"),
                      **_experts(r, "num_experts"), **pattern, **more)


def _qwen3_moe(r: ConfigReader, base: Structure):
    d, L, H, sizes = _base_sizes(r)
    dense, pattern = _qwen_moe_pattern(r, L)
    sliding = r.bool("use_sliding_window", False) and r.cfg.get("sliding_window") is not None
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=_attention_bias(r),
                          dense_layers=dense, mixers="sliding_attention" if sliding else "full_attention")
    return s, _values(**sizes, d_ff=r.int("intermediate_size") if dense else None,
                      d_ff_expert=r.int("moe_intermediate_size"), **_experts(r, "num_experts"), **pattern,
                      **({"sliding_window": r.int("sliding_window")} if sliding else {}))


def _qwen3_next(r: ConfigReader, base: Structure):
    d, L, H, sizes = _base_sizes(r)
    sizes["head_dim"] = r.int("head_dim")
    dense, pattern = _qwen_moe_pattern(r, L)
    kinds = layer_types(r, ("linear_attention", "full_attention"), L)
    if kinds is None:
        period = r.int("full_attention_interval", 4)
        kinds = ["full_attention" if (i + 1) % period == 0 else "linear_attention" for i in range(L)]
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=_attention_bias(r),
                          dense_layers=dense)
    return s, _values(**sizes, d_ff=r.int("intermediate_size") if dense else None,
                      d_ff_expert=r.int("moe_intermediate_size"), d_ff_shared=r.int("shared_expert_intermediate_size"),
                      **_experts(r, "num_experts"), **pattern, **interval_or_counts(kinds, "linear_attention"),
                      conv_kernel=r.int("linear_conv_kernel_dim"), linear_num_key_heads=r.int("linear_num_key_heads"),
                      linear_num_value_heads=r.int("linear_num_value_heads"),
                      linear_key_head_dim=r.int("linear_key_head_dim"),
                      linear_value_head_dim=r.int("linear_value_head_dim"))


def _gpt_oss(r: ConfigReader, base: Structure):
    d, L, H, sizes = _base_sizes(r)
    sizes["head_dim"] = r.int("head_dim")
    kinds = layer_types(r, ("sliding_attention", "full_attention"), L)
    if kinds is None:
        kinds = ["full_attention" if (i + 1) % 2 == 0 else "sliding_attention" for i in range(L)]
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=_attention_bias(r))
    more = {"sliding_window": r.int("sliding_window")} if "sliding_attention" in kinds else {}
    return s, _values(**sizes, d_ff=r.int("intermediate_size"), **_experts(r, "num_local_experts"),
                      **interval_or_counts(kinds, "sliding_attention"), **more)


def _llama4_text(r: ConfigReader, base: Structure):
    d, L, H, sizes = _base_sizes(r)
    sizes["head_dim"] = r.int("head_dim")
    chunk = r.opt_int("attention_chunk_size")
    kinds = layer_types(r, ("chunked_attention", "full_attention"), L)
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
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias=_attention_bias(r),
                          dense_layers=dense, mixers="chunked_attention+full_attention" if chunked else "full_attention")
    more = {**interval_or_counts(kinds, "chunked_attention"), "attention_chunk_size": chunk} if chunked else {}
    return s, _values(**sizes, d_ff=r.int("intermediate_size_mlp") if dense else None,
                      d_ff_expert=r.int("intermediate_size"), **_experts(r, "num_local_experts"), **pattern, **more)


def _deepseek(v3: bool):
    def read(r: ConfigReader, base: Structure):
        d, L, H, sizes = _base_sizes(r, head_dim=False)  # MLA: no head_dim (transformers sets it to qk_rope_head_dim)
        sizes["n_kv_heads"] = None  # num_key_value_heads builds nothing under MLA
        if not v3:
            _check_divisible(r, d, H)
        q_rank = r.opt_int("q_lora_rank")
        dense, moe = _deepseek_moe(r, L, mtp=v3)
        s = base.with_options(tied_head=r.bool("tie_word_embeddings"), q_lora=q_rank is not None,
                              mlp_bias=r.bool("mlp_bias", False) if not v3 else False,
                              attn_bias=_attention_bias(r), dense_layers=dense,
                              shared_experts=r.count("n_shared_experts", 0) > 0, mtp=v3)
        return s, _values(**sizes, **moe, q_lora_rank=q_rank, kv_lora_rank=r.int("kv_lora_rank"),
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
                   **_experts(r, "n_routed_experts"), **pattern, "n_shared_experts": shared if shared > 1 else None,
                   **({"n_mtp_layers": modules} if modules != 1 else {})}


def _glm4_moe(r: ConfigReader, base: Structure):
    d, L, H, sizes = _base_sizes(r)
    dense, moe = _deepseek_moe(r, L, mtp=True)
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"), attn_bias="qkv" if r.bool("attention_bias") else "none",
                          qk_norm=r.bool("use_qk_norm"), dense_layers=dense,
                          shared_experts=r.count("n_shared_experts", 0) > 0)
    return s, _values(**sizes, **moe)


NEMOTRON_H_PATTERN = {"M": "mamba", "*": "full_attention", "-": "mlp", "E": "moe"}
NEMOTRON_H_TYPES = {"linear_attention": "mamba", "mamba": "mamba", "full_attention": "full_attention",
                    "attention": "full_attention", "mlp": "mlp", "moe": "moe"}


def _nemotron_h(r: ConfigReader, base: Structure):
    d, H = r.int("hidden_size"), r.int("num_attention_heads")
    listed = r.cfg.get("layers_block_type", r.cfg.get("layer_types"))
    pattern = r.cfg.get("hybrid_override_pattern")
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise SpecError(r.source, "layers_block_type", f"must be a list of strings, got {listed!r}")
        bad = sorted({v for v in listed if v not in NEMOTRON_H_TYPES})
        if bad:
            raise SpecError(r.source, "layers_block_type", f"unknown entr{'ies' if len(bad) > 1 else 'y'} "
                            f"{', '.join(map(repr, bad))}; valid: linear_attention (Mamba-2), full_attention, mlp, moe")
        kinds = [NEMOTRON_H_TYPES[v] for v in listed]
    elif pattern is not None:
        if not isinstance(pattern, str):
            raise SpecError(r.source, "hybrid_override_pattern", f"must be a string, got {pattern!r}")
        bad = sorted({c for c in pattern if c not in NEMOTRON_H_PATTERN})
        if bad:
            raise SpecError(r.source, "hybrid_override_pattern", f"unknown character{'s' if len(bad) > 1 else ''} "
                            f"{', '.join(map(repr, bad))}; valid: M (Mamba-2), * (attention), - (MLP), E (MoE)")
        kinds = [NEMOTRON_H_PATTERN[c] for c in pattern]
    else:
        kinds = ["mamba", "moe", "full_attention", "mlp"]  # NemotronHConfig's default layers_block_type
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
                    d_ff_shared=r.int("moe_shared_expert_intermediate_size"), **_experts(r, "n_routed_experts"),
                    **({"moe_latent_size": latent} if latent is not None else {}))
    hd = r.int("head_dim")
    return s, _values(d, len(kinds), H, r.int("vocab_size"), r.int("intermediate_size"),
                      r.int("num_key_value_heads") if r.int("num_key_value_heads") != H else None,
                      hd if hd * H != d else None, mamba_n_heads=r.int("mamba_num_heads"),
                      mamba_head_dim=r.int("mamba_head_dim"), ssm_state_size=r.int("ssm_state_size"),
                      n_groups=r.int("n_groups"), conv_kernel=r.int("conv_kernel"), **more)


# -- the registry ------------------------------------------------------------------------------

_GPT_NAMES = {"hidden_size": "n_embd", "num_hidden_layers": "n_layer", "num_attention_heads": "n_head",
              "max_position_embeddings": "n_positions"}
_LLAMA_SIZES = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32}

FAMILIES: dict[str, Family] = {f.model_type: f for f in [
    Family(
        "gpt2",
        Structure(positions="learned", attn_bias="all", mlp="gelu", mlp_bias=True, norm="layernorm", tied_head=True),
        {"n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None, "vocab_size": 50257, "n_positions": 1024,
         "tie_word_embeddings": True},
        _gpt2,
        "Radford et al. 2019; transformers GPT2Model (Conv1D c_attn/c_proj/c_fc with biases, ln_1, ln_2, ln_f)",
        aliases=_GPT_NAMES, d_ff_default=4 * d_model, narayanan=True, architecture="GPT2LMHeadModel"),
    Family(
        "opt",
        Structure(positions="learned", position_offset=2, attn_bias="all", mlp="gelu", mlp_bias=True,
                  norm="layernorm", tied_head=True),
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "ffn_dim": 3072,
         "vocab_size": 50272, "max_position_embeddings": 2048, "word_embed_proj_dim": None,
         "do_layer_norm_before": True, "_remove_final_layer_norm": False, "enable_bias": True,
         "layer_norm_elementwise_affine": True, "tie_word_embeddings": True},
        _opt,
        "Zhang et al. 2022; transformers OPTModel (learned positions with offset 2, biased projections)",
        architecture="OPTForCausalLM"),
    Family(
        "bloom",
        Structure(positions="alibi", attn_bias="all", mlp="gelu", mlp_bias=True, norm="layernorm", embed_norm=True,
                  tied_head=True),
        {"hidden_size": 64, "n_layer": 2, "n_head": 8, "vocab_size": 250880, "tie_word_embeddings": True},
        _bloom,
        "BigScience 2022; transformers BloomModel (ALiBi, word_embeddings_layernorm, fused biased qkv)",
        aliases={"n_embed": "hidden_size"}, d_ff_default=4 * d_model, architecture="BloomForCausalLM"),
    Family(
        "gpt_neox",
        Structure(attn_bias="all", parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm"),
        {"hidden_size": 6144, "num_hidden_layers": 44, "num_attention_heads": 64, "intermediate_size": 24576,
         "vocab_size": 50432, "attention_bias": True, "tie_word_embeddings": False, "max_position_embeddings": 2048},
        _gpt_neox,
        "Black et al. 2022; transformers GPTNeoXModel (parallel residual, two LayerNorms, untied embed_out)",
        architecture="GPTNeoXForCausalLM"),
    Family(
        "gptj",
        Structure(parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm", norms_per_layer=1, head_bias=True),
        {"n_embd": 4096, "n_layer": 28, "n_head": 16, "n_inner": None, "vocab_size": 50400, "n_positions": 2048,
         "tie_word_embeddings": False},
        _gptj,
        "Wang & Komatsuzaki 2021; transformers GPTJModel (one LayerNorm, bias-free attention, biased lm_head)",
        aliases=_GPT_NAMES, d_ff_default=4 * d_model, architecture="GPTJForCausalLM"),
    Family(
        "llama",
        Structure(),
        {**_LLAMA_SIZES, "num_key_value_heads": None, "head_dim": None, "intermediate_size": 11008,
         "vocab_size": 32000, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
         "max_position_embeddings": 2048},
        llama_like(attention_bias=True, mlp_bias=True),
        "Touvron et al. 2023 §2.2; transformers LlamaModel (RMSNorm, SwiGLU, RoPE, GQA)",
        architecture="LlamaForCausalLM"),
    Family(
        "mistral",
        Structure(),
        {**_LLAMA_SIZES, "num_key_value_heads": 8, "head_dim": None, "intermediate_size": 14336, "vocab_size": 32000,
         "tie_word_embeddings": False, "max_position_embeddings": 131072, "sliding_window": 4096},
        llama_like(),
        "Jiang et al. 2023; transformers MistralModel (the LLaMA block with GQA)", architecture="MistralForCausalLM"),
    Family(
        "mixtral",
        Structure(moe=True),
        {**_LLAMA_SIZES, "num_key_value_heads": 8, "head_dim": None, "intermediate_size": 14336, "vocab_size": 32000,
         "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False,
         "max_position_embeddings": 131072},
        llama_like(experts=True),
        "Jiang et al. 2024; transformers MixtralModel (top-2 of 8 SwiGLU experts, router without bias)",
        aliases={"num_experts": "num_local_experts"}, architecture="MixtralForCausalLM"),
    Family(
        "qwen2",
        Structure(attn_bias="qkv"),
        {**_LLAMA_SIZES, "num_key_value_heads": 32, "head_dim": None, "intermediate_size": 22016,
         "vocab_size": 151936, "tie_word_embeddings": False, "max_position_embeddings": 32768},
        llama_like(qwen_window=True),
        "Qwen2 report (Yang et al. 2024); transformers Qwen2Model (q/k/v biases, no o bias)",
        architecture="Qwen2ForCausalLM"),
    Family(
        "qwen3",
        Structure(qk_norm=True),
        {**_LLAMA_SIZES, "num_key_value_heads": 32, "head_dim": 128, "intermediate_size": 22016,
         "vocab_size": 151936, "attention_bias": False, "tie_word_embeddings": False,
         "max_position_embeddings": 32768},
        llama_like(attention_bias=True, qwen_window=True),
        "Qwen3 report (2025); transformers Qwen3Model (q_norm, k_norm RMSNorm per head)",
        architecture="Qwen3ForCausalLM"),
    Family(
        "gemma",
        Structure(tied_head=True),
        {"hidden_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16,
         "head_dim": 256, "intermediate_size": 24576, "vocab_size": 256000, "attention_bias": False,
         "tie_word_embeddings": True, "max_position_embeddings": 8192},
        llama_like(attention_bias=True),
        "Gemma report (2024); transformers GemmaModel (RMSNorm, GeGLU, head_dim 256, tied)",
        architecture="GemmaForCausalLM"),
    Family(
        "phi",
        Structure(attn_bias="all", parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm", norms_per_layer=1,
                  head_bias=True),
        {"hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": None,
         "intermediate_size": 8192, "vocab_size": 51200, "qk_layernorm": False, "tie_word_embeddings": False,
         "max_position_embeddings": 2048},
        _phi,
        "Li et al. 2023 (phi-1.5), phi-2; transformers PhiModel (parallel block, one LayerNorm, biased lm_head)",
        architecture="PhiForCausalLM"),
    Family(
        "phi3",
        Structure(),
        {"hidden_size": 3072, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
         "intermediate_size": 8192, "vocab_size": 32064, "tie_word_embeddings": False,
         "max_position_embeddings": 4096},
        llama_like(),
        "Abdin et al. 2024; transformers Phi3Model (fused qkv and gate_up, RMSNorm)", architecture="Phi3ForCausalLM"),
    Family(
        "falcon",
        Structure(positions="rotary", parallel=True, mlp="gelu", norm="layernorm", norms_per_layer=1, tied_head=True),
        {"hidden_size": 4544, "num_hidden_layers": 32, "num_attention_heads": 71, "num_kv_heads": None,
         "multi_query": True, "new_decoder_architecture": False, "parallel_attn": True, "bias": False,
         "ffn_hidden_size": None, "alibi": False, "vocab_size": 65024, "num_ln_in_parallel_attn": None,
         "tie_word_embeddings": True, "max_position_embeddings": 2048},
        _falcon,
        "Almazrouei et al. 2023; transformers FalconModel (parallel attention, MQA/GQA, one or two LNs)",
        d_ff_default=4 * d_model, architecture="FalconForCausalLM"),
    Family(
        "deepseek_v2",
        Structure(mla=True, moe=True, shared_experts=True),
        {"vocab_size": 102400, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": None, "tie_word_embeddings": False, "attention_bias": False,
         "mlp_bias": False, "first_k_dense_replace": 0, "kv_lora_rank": 512, "q_lora_rank": 1536,
         "n_routed_experts": 64, "n_shared_experts": 2, "moe_intermediate_size": 1407, "qk_nope_head_dim": 128,
         "qk_rope_head_dim": 64, "v_head_dim": 128, "num_experts_per_tok": None, "max_position_embeddings": 2048},
        _deepseek(v3=False),
        "DeepSeek-V2 report (DeepSeek-AI 2024) §2.1 MLA, §2.2 DeepSeekMoE; transformers DeepseekV2Model "
        "(first_k_dense_replace dense layers, shared experts, router without bias)",
        aliases={"num_experts": "n_routed_experts"}, architecture="DeepseekV2ForCausalLM"),
    Family(
        "deepseek_v3",
        Structure(mla=True, moe=True, shared_experts=True, dense_layers=True, mtp=True),
        {"vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
         "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128, "n_shared_experts": 1,
         "n_routed_experts": 256, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
         "v_head_dim": 128, "qk_nope_head_dim": 128, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
         "tie_word_embeddings": False, "attention_bias": False, "num_nextn_predict_layers": 1,
         "max_position_embeddings": 4096},
        _deepseek(v3=True),
        "DeepSeek-V3 report (DeepSeek-AI 2024) §2.1 (MLA, DeepSeekMoE with auxiliary-loss-free balancing: "
        "e_score_correction_bias is a buffer), §2.2 MTP; transformers DeepseekV3Model",
        aliases={"num_local_experts": "n_routed_experts", "num_mtp_layers": "num_nextn_predict_layers"},
        architecture="DeepseekV3ForCausalLM"),
    Family(
        "qwen2_moe",
        Structure(attn_bias="qkv", moe=True, shared_experts=True, shared_expert_gate=True),
        {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24,
         "num_attention_heads": 16, "num_key_value_heads": 16, "tie_word_embeddings": False,
         "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28, "decoder_sparse_step": 1,
         "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts_per_tok": 4,
         "num_experts": 60, "mlp_only_layers": [], "qkv_bias": True, "layer_types": None,
         "max_position_embeddings": 32768},
        _qwen2_moe,
        "Qwen1.5-MoE / Qwen2 report (Yang et al. 2024) §2.2.2; transformers Qwen2MoeModel (q/k/v biases, a shared "
        "expert with a sigmoid gate, decoder_sparse_step, mlp_only_layers)", architecture="Qwen2MoeForCausalLM"),
    Family(
        "qwen3_moe",
        Structure(qk_norm=True, moe=True),
        {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 24,
         "num_attention_heads": 32, "num_key_value_heads": 4, "tie_word_embeddings": False, "attention_bias": False,
         "use_sliding_window": False, "sliding_window": 4096, "decoder_sparse_step": 1, "moe_intermediate_size": 768,
         "num_experts_per_tok": 8, "num_experts": 128, "mlp_only_layers": [], "max_position_embeddings": 32768},
        _qwen3_moe,
        "Qwen3 report (2025) §2; transformers Qwen3MoeModel (q/k norms per head, 128 experts, no shared expert)",
        aliases={"num_local_experts": "num_experts"}, architecture="Qwen3MoeForCausalLM"),
    Family(
        "qwen3_next",
        Structure(qk_norm=True, attn_output_gate=True, moe=True, shared_experts=True, shared_expert_gate=True,
                  mixers="linear_attention+full_attention"),
        {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 48,
         "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256, "tie_word_embeddings": False,
         "attention_bias": False, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
         "linear_value_head_dim": 128, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
         "decoder_sparse_step": 1, "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512,
         "num_experts_per_tok": 10, "num_experts": 512, "mlp_only_layers": [], "layer_types": None,
         "max_position_embeddings": 32768},
        _qwen3_next,
        "Qwen3-Next (Qwen team 2025); transformers Qwen3NextModel (gated DeltaNet in 3 of every 4 layers, gated "
        "attention with a doubled q_proj, 512 experts with a gated shared expert)",
        architecture="Qwen3NextForCausalLM"),
    Family(
        "gpt_oss",
        Structure(attn_bias="all", sinks=True, moe=True, expert_bias=True, router_bias=True,
                  mixers="sliding_attention+full_attention"),
        {"num_hidden_layers": 36, "num_local_experts": 128, "vocab_size": 201088, "hidden_size": 2880,
         "intermediate_size": 2880, "head_dim": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
         "sliding_window": 128, "tie_word_embeddings": False, "attention_bias": True, "num_experts_per_tok": 4,
         "layer_types": None, "max_position_embeddings": 131072},
        _gpt_oss,
        "gpt-oss model card (OpenAI 2025) §2; transformers GptOssModel (alternating banded-window and full "
        "attention, attention sinks, router and experts with biases)",
        aliases={"num_experts": "num_local_experts"}, architecture="GptOssForCausalLM"),
    Family(
        "llama4_text",
        Structure(moe=True, shared_experts=True, mixers="chunked_attention+full_attention"),
        {"vocab_size": 202048, "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
         "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
         "tie_word_embeddings": False, "num_experts_per_tok": 1, "num_local_experts": 16, "moe_layers": None,
         "interleave_moe_layer_step": 1, "no_rope_layers": None, "no_rope_layer_interval": 4,
         "attention_chunk_size": 8192, "layer_types": None, "attention_bias": False,
         "max_position_embeddings": 131072},
        _llama4_text,
        "Llama 4 (Meta 2025); transformers Llama4TextModel (chunked attention with RoPE, every 4th layer global "
        "without positions, MoE with a shared expert, parameter-free L2 q/k norms)", architecture="Llama4ForCausalLM"),
    Family(
        "gemma2",
        Structure(norms_per_layer=4, tied_head=True, mixers="sliding_attention+full_attention"),
        {"vocab_size": 256000, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
         "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "tie_word_embeddings": True,
         "attention_bias": False, "sliding_window": 4096, "layer_types": None, "max_position_embeddings": 8192},
        _gemma2,
        "Gemma 2 report (Gemma Team 2024) §2 (local sliding-window and global attention alternating, pre- and "
        "post-norms); transformers Gemma2Model", architecture="Gemma2ForCausalLM"),
    Family(
        "gemma3_text",
        Structure(norms_per_layer=4, tied_head=True, qk_norm=True, mixers="sliding_attention+full_attention"),
        {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
         "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "tie_word_embeddings": True,
         "attention_bias": False, "sliding_window": 4096, "layer_types": None, "sliding_window_pattern": 6,
         "use_bidirectional_attention": False, "max_position_embeddings": 131072},
        lambda r, base: _gemma2(r, base, qk_norm=True),
        "Gemma 3 report (Gemma Team 2025) §2 (5 local layers per global layer, q/k norms); transformers "
        "Gemma3TextModel", architecture="Gemma3ForCausalLM"),
    Family(
        "olmo2",
        Structure(qk_norm=True, qk_norm_scope="projection"),
        {"vocab_size": 50304, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": None, "tie_word_embeddings": False,
         "attention_bias": False, "max_position_embeddings": 2048},
        _olmo2,
        "OLMo 2 (OLMo et al. 2024) §3 (post-norms, q/k RMSNorms over the projections); transformers Olmo2Model",
        architecture="Olmo2ForCausalLM"),
    Family(
        "olmoe",
        Structure(qk_norm=True, qk_norm_scope="projection", moe=True),
        {"vocab_size": 50304, "hidden_size": 2048, "intermediate_size": 2048, "num_hidden_layers": 16,
         "num_attention_heads": 16, "num_key_value_heads": None, "tie_word_embeddings": False,
         "attention_bias": False, "num_experts_per_tok": 8, "num_experts": 64, "max_position_embeddings": 4096},
        _olmoe,
        "OLMoE (Muennighoff et al. 2024) §2; transformers OlmoeModel (64 experts, top 8, q/k norms)",
        aliases={"num_local_experts": "num_experts"}, architecture="OlmoeForCausalLM"),
    Family(
        "stablelm",
        Structure(norm="layernorm", qk_norm_scope="projection"),
        {"vocab_size": 50304, "intermediate_size": 6912, "hidden_size": 2560, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "tie_word_embeddings": False, "use_qkv_bias": False,
         "qk_layernorm": False, "use_parallel_residual": False, "max_position_embeddings": 4096},
        _stablelm,
        "StableLM 2 (Bellagente et al. 2024); transformers StableLmModel (LayerNorms with biases, optional q/k/v "
        "biases, per-head q/k LayerNorms, optional parallel residual)", architecture="StableLmForCausalLM"),
    Family(
        "starcoder2",
        Structure(attn_bias="all", mlp="gelu", mlp_bias=True, norm="layernorm", tied_head=True),
        {"vocab_size": 49152, "hidden_size": 3072, "intermediate_size": 12288, "num_hidden_layers": 30,
         "num_attention_heads": 24, "num_key_value_heads": 2, "use_bias": True, "tie_word_embeddings": True,
         "sliding_window": None, "max_position_embeddings": 4096},
        _starcoder2,
        "StarCoder 2 (Lozhkov et al. 2024) §6; transformers Starcoder2Model (GQA, biased projections, 2-matrix GELU "
        "MLP, LayerNorms)", architecture="Starcoder2ForCausalLM"),
    Family(
        "cohere",
        Structure(parallel=True, norm="layernorm_nobias", norms_per_layer=1, tied_head=True,
                  qk_norm_scope="projection"),
        {"vocab_size": 256000, "hidden_size": 8192, "intermediate_size": 22528, "num_hidden_layers": 40,
         "num_attention_heads": 64, "num_key_value_heads": None, "tie_word_embeddings": True, "attention_bias": False,
         "use_qk_norm": False, "max_position_embeddings": 8192},
        _cohere,
        "Command R (Cohere 2024); transformers CohereModel (parallel attention and MLP after one bias-free LayerNorm, "
        "tied embeddings, optional per-head q/k norms)", architecture="CohereForCausalLM"),
    Family(
        "nemotron_h",
        Structure(mixers="mamba+full_attention", separate_mlp=True, mlp="gelu", norms_per_layer=1),
        {"vocab_size": 131072, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
         "head_dim": 128, "intermediate_size": 21504, "mlp_bias": False, "ssm_state_size": 128,
         "mamba_num_heads": 128, "mamba_head_dim": 64, "n_groups": 8, "conv_kernel": 4, "use_conv_bias": True,
         "use_bias": False, "n_routed_experts": 8, "moe_intermediate_size": 7688,
         "moe_shared_expert_intermediate_size": 7688, "moe_latent_size": None, "num_experts_per_tok": 2,
         "tie_word_embeddings": False, "max_position_embeddings": 4096},
        _nemotron_h,
        "Nemotron-H (NVIDIA 2025) §2 (Mamba-2 layers with a few self-attention layers and separate squared-ReLU MLP "
        "layers); transformers NemotronHModel (one RMSNorm per block; lm_head never tied)",
        aliases={"num_local_experts": "n_routed_experts", "mamba_n_groups": "n_groups", "mamba_d_conv": "conv_kernel",
                 "mamba_conv_bias": "use_conv_bias"}, architecture="NemotronHForCausalLM"),
    Family(
        "granite",
        Structure(),
        {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": None, "tie_word_embeddings": False,
         "attention_bias": False, "mlp_bias": False, "max_position_embeddings": 2048},
        _granite,
        "Granite 3.0 (IBM 2024); transformers GraniteModel (the LLaMA block; its multipliers are scalars, not "
        "parameters)", architecture="GraniteForCausalLM"),
    Family(
        "glm4_moe",
        Structure(attn_bias="none", moe=True, shared_experts=True, dense_layers=True, mtp=True),
        {"vocab_size": 151552, "hidden_size": 4096, "intermediate_size": 10944, "num_hidden_layers": 46,
         "num_attention_heads": 96, "num_key_value_heads": 8, "tie_word_embeddings": False, "attention_bias": False,
         "moe_intermediate_size": 1408, "num_experts_per_tok": 8, "n_shared_experts": 1, "n_routed_experts": 128,
         "first_k_dense_replace": 1, "use_qk_norm": False, "num_nextn_predict_layers": 1,
         "max_position_embeddings": 131072},
        _glm4_moe,
        "GLM-4.5 report (Zhipu AI 2025) §2; transformers Glm4MoeModel (q/k/v biases without an o bias, "
        "first_k_dense_replace dense layers, a shared expert, MTP layer not built)",
        aliases={"num_local_experts": "n_routed_experts", "num_mtp_layers": "num_nextn_predict_layers"},
        architecture="Glm4MoeForCausalLM"),
]}
MODEL_TYPES: tuple[str, ...] = tuple(FAMILIES)


# -- composite configs: a multimodal wrapper around a text model of a supported type ----------------


@dataclass(frozen=True)
class Wrapper:
    """A multimodal ``model_type`` whose language model is one of the catalog's types: its config is read as
    that text model (the vision tower and projector are not counted; ``params`` sizes the text model).

    Attributes:
        model_type: the wrapper's ``model_type`` (``llama4``, ``gemma3``, ...).
        text_type: the text model type transformers builds when ``text_config`` names none.
        architecture: the class ``architectures`` names (``Llama4ForConditionalGeneration``).
        source: the transformers configuration and model classes the reading follows.
        fixed: transformers builds its own text class whatever ``text_config.model_type`` says (Llama4Config,
            Gemma3Config, Qwen2VLConfig); False: AutoConfig resolves ``text_config.model_type`` (Mistral3, LLaVA).
        tie: whose ``tie_word_embeddings`` ties the head: ``"text"`` (the language model is a ForCausalLM of its
            own: Llama 4), ``"top"`` (the wrapper's lm_head follows the wrapper's field: Gemma 3, Mistral 3) or
            ``"either"`` (the wrapper's field, set to true when the text config's is: LLaVA, Qwen2-VL).
        tie_default: the wrapper's own ``tie_word_embeddings`` default.
        text_defaults: defaults of the wrapper's own text class that differ from ``text_type``'s record.
        default_text: the text config transformers builds when the config has no ``text_config``.
        flat: without ``text_config`` the text fields sit at the top level (Qwen2-VL's first releases).
        ignored: text fields the wrapper's text class does not read (Qwen2-VL's attention: hidden_size // heads).
    """

    model_type: str
    text_type: str
    architecture: str
    source: str
    fixed: bool = True
    tie: str = "text"
    tie_default: bool = False
    text_defaults: Mapping[str, Any] = field(default_factory=dict)
    default_text: Mapping[str, Any] = field(default_factory=dict)
    flat: bool = False
    ignored: tuple[str, ...] = ()

    def __post_init__(self):
        if self.tie not in ("text", "top", "either"):
            raise ValueError(f"{self.model_type}: tie must be 'text', 'top' or 'either', got {self.tie!r}")
        object.__setattr__(self, "text_defaults", MappingProxyType(dict(self.text_defaults)))
        object.__setattr__(self, "default_text", MappingProxyType(dict(self.default_text)))

    def text_config(self, config: Mapping[str, Any], source: str) -> dict[str, Any]:
        """The text model's config as transformers builds it: its model type, its defaults, the tied head."""
        text = config.get("text_config")
        if text is None:
            text = _top_level_text(config) if self.flat else dict(self.default_text)
        if not isinstance(text, Mapping):
            raise SpecError(source, "text_config", f"must be a JSON object, got {text!r}")
        text = {**self.text_defaults, **{k: v for k, v in text.items() if k not in self.ignored}}
        if self.fixed or text.get("model_type") is None:
            text["model_type"] = self.text_type
        if self.tie != "text":
            top = config.get("tie_word_embeddings", self.tie_default)
            if not isinstance(top, bool):
                raise SpecError(source, "tie_word_embeddings", f"must be true or false, got {top!r}")
            if self.tie == "either" and not top:  # the text config's value (checked by its reader), else its default
                top = text.get("tie_word_embeddings", _text_default(text, "tie_word_embeddings") or False)
            text["tie_word_embeddings"] = top
        return text


_WRAPPER_FIELDS = ("model_type", "architectures", "text_config", "vision_config", "tie_word_embeddings")


def _top_level_text(config: Mapping[str, Any]) -> dict[str, Any]:
    """Qwen2VLConfig without ``text_config``: the top-level fields are the text config's (its own are not)."""
    return {k: v for k, v in config.items() if k not in _WRAPPER_FIELDS}


def _text_default(text: Mapping[str, Any], key: str) -> Any:
    """A field's default for the text config's model type (None when the type is not in the catalog)."""
    family = FAMILIES.get(text.get("model_type"))
    return family.hf_defaults.get(key) if family else None


_QWEN2_VL_TEXT = {"vocab_size": 152064, "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
                  "num_attention_heads": 64, "num_key_value_heads": 8, "max_position_embeddings": 32768,
                  "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 80,
                  "tie_word_embeddings": False}

WRAPPERS: dict[str, Wrapper] = {w.model_type: w for w in [
    Wrapper("llama4", "llama4_text", "Llama4ForConditionalGeneration",
            "transformers Llama4Config (text_config is a Llama4TextConfig) and Llama4ForConditionalGeneration (its "
            "language_model is a Llama4ForCausalLM: the text config's tie_word_embeddings ties its head)"),
    Wrapper("gemma3", "gemma3_text", "Gemma3ForConditionalGeneration",
            "transformers Gemma3Config (text_config is a Gemma3TextConfig) and Gemma3ForConditionalGeneration (its "
            "lm_head is tied by Gemma3Config.tie_word_embeddings, default true)", tie="top", tie_default=True),
    Wrapper("mistral3", "mistral", "Mistral3ForConditionalGeneration",
            "transformers Mistral3Config (text_config by AutoConfig, default mistral; no text_config: Mistral Small "
            "3.1's sizes) and Mistral3ForConditionalGeneration (lm_head tied by Mistral3Config.tie_word_embeddings, "
            "default true)", fixed=False, tie="top", tie_default=True,
            default_text={"model_type": "mistral", "head_dim": 128, "hidden_size": 5120, "intermediate_size": 32768,
                          "max_position_embeddings": 131072, "num_attention_heads": 32, "num_hidden_layers": 40,
                          "num_key_value_heads": 8, "sliding_window": None, "vocab_size": 131072}),
    Wrapper("llava", "llama", "LlavaForConditionalGeneration",
            "transformers LlavaConfig (text_config by AutoConfig, default llama) and LlavaForConditionalGeneration "
            "(lm_head tied by LlavaConfig.tie_word_embeddings, set when the text config's is)", fixed=False,
            tie="either"),
    Wrapper("llava_next", "llama", "LlavaNextForConditionalGeneration",
            "transformers LlavaNextConfig (text_config by AutoConfig, default llama) and "
            "LlavaNextForConditionalGeneration (lm_head tied by LlavaNextConfig.tie_word_embeddings, set when the "
            "text config's is)", fixed=False, tie="either"),
    Wrapper("qwen2_vl", "qwen2", "Qwen2VLForConditionalGeneration",
            "transformers Qwen2VLConfig (text_config is a Qwen2VLTextConfig: the Qwen2 block with its own defaults, "
            "head_dim = hidden_size // num_attention_heads; without text_config the top-level fields) and "
            "Qwen2VLForConditionalGeneration (lm_head tied by Qwen2VLConfig.tie_word_embeddings, set when the text "
            "config's is)", tie="either", text_defaults=_QWEN2_VL_TEXT, flat=True, ignored=("head_dim",)),
    Wrapper("qwen2_5_vl", "qwen2", "Qwen2_5_VLForConditionalGeneration",
            "transformers Qwen2_5_VLConfig (text_config is a Qwen2_5_VLTextConfig: the Qwen2 block with Qwen2-VL's "
            "defaults; without text_config the top-level fields) and Qwen2_5_VLForConditionalGeneration (lm_head "
            "tied by Qwen2_5_VLConfig.tie_word_embeddings, set when the text config's is)", tie="either",
            text_defaults=_QWEN2_VL_TEXT, flat=True, ignored=("head_dim",)),
]}
# config.json's ``architectures`` -> the model_type it stands for (a model_type the catalog lacks is read through it)
ARCHITECTURES: dict[str, str] = {**{f.architecture: t for t, f in FAMILIES.items()},
                                 **{w.architecture: t for t, w in WRAPPERS.items()}}


# -- the importer ------------------------------------------------------------------------------


def from_hf_config(config: Mapping[str, Any], source: str = "<config>") -> Architecture:
    """An ``Architecture`` from a config.json mapping (complete or minimal form; a multimodal wrapper of a
    supported text model is read as its text model; a ``model_type`` the catalog lacks is read through an
    ``architectures`` class the catalog has)."""
    if not isinstance(config, Mapping):
        raise SpecError(source, "", "a config.json holds a JSON object")
    model_type = _model_type(config, source)
    if model_type in WRAPPERS:
        return _from_text_config(WRAPPERS[model_type], config, source)
    structure, values = FAMILIES[model_type].read(config, source)
    return Architecture(model_type, structure, values, source, source)


def _from_text_config(wrapper: Wrapper, config: Mapping[str, Any], source: str) -> Architecture:
    """The architecture of a wrapper's text model; errors name the field under ``text_config``."""
    text = wrapper.text_config(config, source)
    try:
        model_type = _model_type(text, source)
        if model_type in WRAPPERS:
            raise SpecError(source, "model_type", f"{model_type!r} is a multimodal wrapper, not a text model")
        structure, values = FAMILIES[model_type].read(text, source)
    except SpecError as exc:
        raise SpecError(exc.source, f"text_config.{exc.key}" if exc.key else "text_config", exc.message) from None
    return Architecture(model_type, structure, values, source, source)


def _model_type(config: Mapping[str, Any], source: str) -> str:
    """The catalog's model type of a config: its ``model_type``, else the first ``architectures`` class the
    catalog has (Kimi K2: ``kimi_k2`` with ``DeepseekV3ForCausalLM``); SpecError naming the closest type."""
    model_type = config.get("model_type")
    if model_type is None:
        raise SpecError(source, "model_type", f"missing; supported model types: {', '.join(SUPPORTED)}")
    if isinstance(model_type, str) and (model_type in FAMILIES or model_type in WRAPPERS):
        return model_type
    classes = config.get("architectures")
    for name in classes if isinstance(classes, list) else []:
        if isinstance(name, str) and name in ARCHITECTURES:
            return ARCHITECTURES[name]
    raise SpecError(source, "model_type", _unsupported(model_type, classes))


def _unsupported(model_type: Any, classes: Any) -> str:
    """One line: the type, the closest supported type (difflib), and every supported type."""
    import difflib

    close = difflib.get_close_matches(str(model_type), SUPPORTED, n=1, cutoff=0.6)
    named = f" (architectures {classes!r} names no class the catalog has)" if classes else ""
    hint = f"; the closest supported type is {close[0]!r}" if close else ""
    return f"unsupported model type {model_type!r}{named}{hint}; supported: {', '.join(SUPPORTED)}"


SUPPORTED: tuple[str, ...] = (*FAMILIES, *WRAPPERS)


def load_hf_config(path: str | Path) -> Architecture:
    """Read a local ``config.json``, or the ``config.json`` of a model folder (a Hugging Face snapshot);
    SpecError naming the file and field when it is not usable."""
    folder = Path(path)
    if folder.is_dir():
        path = folder / "config.json"
        if not path.is_file():
            raise SpecError(str(folder), "", "a folder without config.json; give a config.json or the model folder "
                                             "that holds it")
    _, data = read_user_file(path, "JSON")
    return from_hf_config(data, str(path))


# transformers' configuration defaults per model type (read-only; from the family records)
HF_DEFAULTS = MappingProxyType({t: f.hf_defaults for t, f in FAMILIES.items()})
