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
        block: the block style of the PyTorch memory model, ``"gpt"`` or ``"llama"``.
        narayanan: whether Narayanan et al.'s 72/96 B s L h^2 FLOP forms apply (the GPT block).
    """

    model_type: str
    structure: Structure
    hf_defaults: Mapping[str, Any]
    reader: Reader
    source: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    d_ff_default: sympy.Expr | None = None
    block: str = "llama"
    narayanan: bool = False

    def __post_init__(self):
        if self.block not in ("gpt", "llama"):
            raise ValueError(f"{self.model_type}: block must be 'gpt' or 'llama', got {self.block!r}")
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
    s = base.with_options(attn_bias="all" if r.bool("attention_bias") else "none",
                          tied_head=r.bool("tie_word_embeddings"))
    return s, _values(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                      r.int("vocab_size"), r.int("intermediate_size"))


def _gptj(r: ConfigReader, base: Structure):
    d = r.int("n_embd")
    s = base.with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, _values(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"), r.opt_int("n_inner"))


def llama_like(attention_bias: bool = False, mlp_bias: bool = False, experts: bool = False) -> Reader:
    """The reader of a LLaMA-style config. ``attention_bias``: an ``attention_bias`` field puts biases on
    every projection; ``mlp_bias``: an ``mlp_bias`` field puts biases in the MLP; ``experts``: MoE
    (``num_local_experts``, ``num_experts_per_tok``)."""

    def read(r: ConfigReader, base: Structure):
        options: dict[str, Any] = {"tied_head": r.bool("tie_word_embeddings")}
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
                          r.opt_int("head_dim"), **more)

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
        aliases=_GPT_NAMES, d_ff_default=4 * d_model, block="gpt", narayanan=True),
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
        block="gpt"),
    Family(
        "bloom",
        Structure(positions="alibi", attn_bias="all", mlp="gelu", mlp_bias=True, norm="layernorm", embed_norm=True,
                  tied_head=True),
        {"hidden_size": 64, "n_layer": 2, "n_head": 8, "vocab_size": 250880, "tie_word_embeddings": True},
        _bloom,
        "BigScience 2022; transformers BloomModel (ALiBi, word_embeddings_layernorm, fused biased qkv)",
        aliases={"n_embed": "hidden_size"}, d_ff_default=4 * d_model, block="gpt"),
    Family(
        "gpt_neox",
        Structure(attn_bias="all", parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm"),
        {"hidden_size": 6144, "num_hidden_layers": 44, "num_attention_heads": 64, "intermediate_size": 24576,
         "vocab_size": 50432, "attention_bias": True, "tie_word_embeddings": False, "max_position_embeddings": 2048},
        _gpt_neox,
        "Black et al. 2022; transformers GPTNeoXModel (parallel residual, two LayerNorms, untied embed_out)",
        block="gpt"),
    Family(
        "gptj",
        Structure(parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm", norms_per_layer=1, head_bias=True),
        {"n_embd": 4096, "n_layer": 28, "n_head": 16, "n_inner": None, "vocab_size": 50400, "n_positions": 2048,
         "tie_word_embeddings": False},
        _gptj,
        "Wang & Komatsuzaki 2021; transformers GPTJModel (one LayerNorm, bias-free attention, biased lm_head)",
        aliases=_GPT_NAMES, d_ff_default=4 * d_model, block="gpt"),
    Family(
        "llama",
        Structure(),
        {**_LLAMA_SIZES, "num_key_value_heads": None, "head_dim": None, "intermediate_size": 11008,
         "vocab_size": 32000, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
         "max_position_embeddings": 2048},
        llama_like(attention_bias=True, mlp_bias=True),
        "Touvron et al. 2023 §2.2; transformers LlamaModel (RMSNorm, SwiGLU, RoPE, GQA)"),
    Family(
        "mistral",
        Structure(),
        {**_LLAMA_SIZES, "num_key_value_heads": 8, "head_dim": None, "intermediate_size": 14336, "vocab_size": 32000,
         "tie_word_embeddings": False, "max_position_embeddings": 131072},
        llama_like(),
        "Jiang et al. 2023; transformers MistralModel (the LLaMA block with GQA)"),
    Family(
        "mixtral",
        Structure(moe=True),
        {**_LLAMA_SIZES, "num_key_value_heads": 8, "head_dim": None, "intermediate_size": 14336, "vocab_size": 32000,
         "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False,
         "max_position_embeddings": 131072},
        llama_like(experts=True),
        "Jiang et al. 2024; transformers MixtralModel (top-2 of 8 SwiGLU experts, router without bias)",
        aliases={"num_experts": "num_local_experts"}),
    Family(
        "qwen2",
        Structure(attn_bias="qkv"),
        {**_LLAMA_SIZES, "num_key_value_heads": 32, "head_dim": None, "intermediate_size": 22016,
         "vocab_size": 151936, "tie_word_embeddings": False, "max_position_embeddings": 32768},
        llama_like(),
        "Qwen2 report (Yang et al. 2024); transformers Qwen2Model (q/k/v biases, no o bias)"),
    Family(
        "qwen3",
        Structure(qk_norm=True),
        {**_LLAMA_SIZES, "num_key_value_heads": 32, "head_dim": 128, "intermediate_size": 22016,
         "vocab_size": 151936, "attention_bias": False, "tie_word_embeddings": False,
         "max_position_embeddings": 32768},
        llama_like(attention_bias=True),
        "Qwen3 report (2025); transformers Qwen3Model (q_norm, k_norm RMSNorm per head)"),
    Family(
        "gemma",
        Structure(tied_head=True),
        {"hidden_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16,
         "head_dim": 256, "intermediate_size": 24576, "vocab_size": 256000, "attention_bias": False,
         "tie_word_embeddings": True, "max_position_embeddings": 8192},
        llama_like(attention_bias=True),
        "Gemma report (2024); transformers GemmaModel (RMSNorm, GeGLU, head_dim 256, tied)"),
    Family(
        "phi",
        Structure(attn_bias="all", parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm", norms_per_layer=1,
                  head_bias=True),
        {"hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": None,
         "intermediate_size": 8192, "vocab_size": 51200, "qk_layernorm": False, "tie_word_embeddings": False,
         "max_position_embeddings": 2048},
        _phi,
        "Li et al. 2023 (phi-1.5), phi-2; transformers PhiModel (parallel block, one LayerNorm, biased lm_head)",
        block="gpt"),
    Family(
        "phi3",
        Structure(),
        {"hidden_size": 3072, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
         "intermediate_size": 8192, "vocab_size": 32064, "tie_word_embeddings": False,
         "max_position_embeddings": 4096},
        llama_like(),
        "Abdin et al. 2024; transformers Phi3Model (fused qkv and gate_up, RMSNorm)"),
    Family(
        "falcon",
        Structure(positions="rotary", parallel=True, mlp="gelu", norm="layernorm", norms_per_layer=1, tied_head=True),
        {"hidden_size": 4544, "num_hidden_layers": 32, "num_attention_heads": 71, "num_kv_heads": None,
         "multi_query": True, "new_decoder_architecture": False, "parallel_attn": True, "bias": False,
         "ffn_hidden_size": None, "alibi": False, "vocab_size": 65024, "num_ln_in_parallel_attn": None,
         "tie_word_embeddings": True, "max_position_embeddings": 2048},
        _falcon,
        "Almazrouei et al. 2023; transformers FalconModel (parallel attention, MQA/GQA, one or two LNs)",
        d_ff_default=4 * d_model, block="gpt"),
]}
FAMILIES_BY_TYPE = FAMILIES  # the same registry, under the name other modules look it up by
MODEL_TYPES: tuple[str, ...] = tuple(FAMILIES)


# -- the importer ------------------------------------------------------------------------------


def from_hf_config(config: Mapping[str, Any], source: str = "<config>") -> Architecture:
    """An ``Architecture`` from a config.json mapping (complete or minimal form)."""
    if not isinstance(config, Mapping):
        raise SpecError(source, "", "a config.json holds a JSON object")
    model_type = config.get("model_type")
    if model_type is None:
        raise SpecError(source, "model_type", f"missing; supported model types: {', '.join(MODEL_TYPES)}")
    family = FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise SpecError(source, "model_type", f"unsupported model type {model_type!r}; supported: "
                                              f"{', '.join(MODEL_TYPES)}")
    structure, values = family.read(config, source)
    return Architecture(model_type, structure, values, source, source)


def load_hf_config(path: str | Path) -> Architecture:
    """Read a local ``config.json`` (SpecError naming the file and field when it is not usable)."""
    _, data = read_user_file(path, "JSON")
    return from_hf_config(data, str(path))


# transformers' configuration defaults per model type (read-only; from the family records)
HF_DEFAULTS = MappingProxyType({t: f.hf_defaults for t, f in FAMILIES.items()})
