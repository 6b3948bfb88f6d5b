"""A local Hugging Face ``config.json`` -> architecture structure and sizes (never the network).

Both the complete form and the minimal form (which omits fields equal to the model type's
defaults) are read: omitted fields are filled with the defaults of transformers' configuration
class for that model type (``HF_DEFAULTS``, read off transformers 5.24), and derived fields are
derived as transformers derives them (``num_key_value_heads`` = ``num_attention_heads`` when
null, ``head_dim`` = ``hidden_size // num_attention_heads`` when null, GPT-2's ``n_inner`` =
4 ``n_embd``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import SpecError, read_user_file
from .formulas.architectures import FAMILIES, Structure

# transformers 5.24 configuration defaults (constructor signatures) of the fields that decide
# parameter counts.
HF_DEFAULTS: dict[str, dict[str, Any]] = {
    "gpt2": {"n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None, "vocab_size": 50257, "n_positions": 1024,
             "tie_word_embeddings": True},
    "opt": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "ffn_dim": 3072,
            "vocab_size": 50272, "max_position_embeddings": 2048, "word_embed_proj_dim": None,
            "do_layer_norm_before": True, "_remove_final_layer_norm": False, "enable_bias": True,
            "layer_norm_elementwise_affine": True, "tie_word_embeddings": True},
    "bloom": {"hidden_size": 64, "n_layer": 2, "n_head": 8, "vocab_size": 250880, "tie_word_embeddings": True},
    "gpt_neox": {"hidden_size": 6144, "num_hidden_layers": 44, "num_attention_heads": 64, "intermediate_size": 24576,
                 "vocab_size": 50432, "attention_bias": True, "tie_word_embeddings": False,
                 "max_position_embeddings": 2048},
    "gptj": {"n_embd": 4096, "n_layer": 28, "n_head": 16, "n_inner": None, "vocab_size": 50400, "n_positions": 2048,
             "tie_word_embeddings": False},
    "llama": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
              "head_dim": None, "intermediate_size": 11008, "vocab_size": 32000, "attention_bias": False,
              "mlp_bias": False, "tie_word_embeddings": False, "max_position_embeddings": 2048},
    "mistral": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                "head_dim": None, "intermediate_size": 14336, "vocab_size": 32000, "tie_word_embeddings": False,
                "max_position_embeddings": 131072},
    "mixtral": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                "head_dim": None, "intermediate_size": 14336, "vocab_size": 32000, "num_local_experts": 8,
                "num_experts_per_tok": 2, "tie_word_embeddings": False, "max_position_embeddings": 131072},
    "qwen2": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
              "head_dim": None, "intermediate_size": 22016, "vocab_size": 151936, "tie_word_embeddings": False,
              "max_position_embeddings": 32768},
    "qwen3": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
              "head_dim": 128, "intermediate_size": 22016, "vocab_size": 151936, "attention_bias": False,
              "tie_word_embeddings": False, "max_position_embeddings": 32768},
    "gemma": {"hidden_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16,
              "head_dim": 256, "intermediate_size": 24576, "vocab_size": 256000, "attention_bias": False,
              "tie_word_embeddings": True, "max_position_embeddings": 8192},
    "phi": {"hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": None,
            "intermediate_size": 8192, "vocab_size": 51200, "qk_layernorm": False, "tie_word_embeddings": False,
            "max_position_embeddings": 2048},
    "phi3": {"hidden_size": 3072, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
             "intermediate_size": 8192, "vocab_size": 32064, "tie_word_embeddings": False,
             "max_position_embeddings": 4096},
    "falcon": {"hidden_size": 4544, "num_hidden_layers": 32, "num_attention_heads": 71, "num_kv_heads": None,
               "multi_query": True, "new_decoder_architecture": False, "parallel_attn": True, "bias": False,
               "ffn_hidden_size": None, "alibi": False, "vocab_size": 65024, "num_ln_in_parallel_attn": None,
               "tie_word_embeddings": True, "max_position_embeddings": 2048},
}
MODEL_TYPES = tuple(HF_DEFAULTS)
# other spellings transformers accepts for the same field
_ALIASES = {"bloom": {"n_embed": "hidden_size"}, "mixtral": {"num_experts": "num_local_experts"},
            "gpt2": {"hidden_size": "n_embd", "num_hidden_layers": "n_layer", "num_attention_heads": "n_head",
                     "max_position_embeddings": "n_positions"},
            "gptj": {"hidden_size": "n_embd", "num_hidden_layers": "n_layer", "num_attention_heads": "n_head",
                     "max_position_embeddings": "n_positions"}}


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


def load_hf_config(path: str | Path) -> Architecture:
    """Read a local ``config.json`` (SpecError naming the file and field when it is not usable)."""
    _, data = read_user_file(path, "JSON")
    return from_hf_config(data, str(path))


def from_hf_config(config: Mapping[str, Any], source: str = "<config>") -> Architecture:
    """An ``Architecture`` from a config.json mapping (complete or minimal form)."""
    if not isinstance(config, Mapping):
        raise SpecError(source, "", "a config.json holds a JSON object")
    model_type = config.get("model_type")
    if model_type is None:
        raise SpecError(source, "model_type", f"missing; supported model types: {', '.join(MODEL_TYPES)}")
    if not isinstance(model_type, str) or model_type not in HF_DEFAULTS:
        raise SpecError(source, "model_type", f"unsupported model type {model_type!r}; supported: "
                                              f"{', '.join(MODEL_TYPES)}")
    cfg = dict(HF_DEFAULTS[model_type])
    for key, value in config.items():
        cfg[_ALIASES.get(model_type, {}).get(key, key)] = value
    reader = _Reader(source, cfg)
    structure, values = _READERS[model_type](reader)
    return Architecture(model_type, structure, values, source, source)


class _Reader:
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


def _values(d_model, n_layers, n_heads, vocab, d_ff=None, n_kv_heads=None, head_dim=None, **more) -> dict[str, int]:
    """The sizes a config states. Derived ones stay out (d_ff = 4 d_model where the family derives
    it, n_kv_heads = n_heads, head_dim = d_model / n_heads), so a sweep over d_model keeps them derived."""
    values = {"d_model": d_model, "n_layers": n_layers, "n_heads": n_heads, "vocab": vocab, "d_ff": d_ff,
              "n_kv_heads": n_kv_heads, "head_dim": head_dim, **more}
    return {k: v for k, v in values.items() if v is not None}


def _gpt2(r: _Reader):
    d = r.int("n_embd")
    s = FAMILIES["gpt2"].with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, _values(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"),
                      r.opt_int("n_inner"), n_positions=r.int("n_positions"))


def _opt(r: _Reader):
    d = r.int("hidden_size")
    if not r.bool("layer_norm_elementwise_affine"):
        raise SpecError(r.source, "layer_norm_elementwise_affine", "false (parameter-free LayerNorms) is not supported")
    d_embed = r.opt_int("word_embed_proj_dim") or d
    bias = r.bool("enable_bias")
    s = FAMILIES["opt"].with_options(
        attn_bias="all" if bias else "none", mlp_bias=bias, tied_head=r.bool("tie_word_embeddings"),
        final_norm=r.bool("do_layer_norm_before") and not r.bool("_remove_final_layer_norm"),
        embed_proj=d_embed != d)
    if d_embed != d and not s.tied_head:
        raise SpecError(r.source, "tie_word_embeddings", "an untied head with word_embed_proj_dim != hidden_size is "
                                                         "not supported")
    return s, _values(d, r.int("num_hidden_layers"), r.int("num_attention_heads"), r.int("vocab_size"),
                      r.int("ffn_dim"), n_positions=r.int("max_position_embeddings"),
                      d_embed=d_embed if d_embed != d else None)


def _bloom(r: _Reader):
    d = r.int("hidden_size")
    s = FAMILIES["bloom"].with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, _values(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"))


def _gpt_neox(r: _Reader):
    s = FAMILIES["gpt_neox"].with_options(attn_bias="all" if r.bool("attention_bias") else "none",
                                          tied_head=r.bool("tie_word_embeddings"))
    return s, _values(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                      r.int("vocab_size"), r.int("intermediate_size"))


def _gptj(r: _Reader):
    d = r.int("n_embd")
    s = FAMILIES["gptj"].with_options(tied_head=r.bool("tie_word_embeddings"))
    return s, _values(d, r.int("n_layer"), r.int("n_head"), r.int("vocab_size"), r.opt_int("n_inner"))


def _llama_like(family: str):
    def read(r: _Reader):
        options: dict[str, Any] = {"tied_head": r.bool("tie_word_embeddings")}
        if family in ("llama", "qwen3", "gemma"):
            if r.bool("attention_bias", False):
                options["attn_bias"] = "all" if family != "qwen2" else "qkv"
        if family == "llama":
            options["mlp_bias"] = r.bool("mlp_bias", False)
        s = FAMILIES[family].with_options(**options)
        more = {}
        if family == "mixtral":
            more = {"n_experts": r.int("num_local_experts"), "top_k": r.int("num_experts_per_tok")}
            if more["top_k"] > more["n_experts"]:
                raise SpecError(r.source, "num_experts_per_tok", f"{more['top_k']} exceeds num_local_experts "
                                                                 f"{more['n_experts']}")
        return s, _values(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                          r.int("vocab_size"), r.int("intermediate_size"), r.opt_int("num_key_value_heads"),
                          r.opt_int("head_dim"), **more)

    return read


def _phi(r: _Reader):
    s = FAMILIES["phi"].with_options(qk_norm=r.bool("qk_layernorm"), tied_head=r.bool("tie_word_embeddings"))
    return s, _values(r.int("hidden_size"), r.int("num_hidden_layers"), r.int("num_attention_heads"),
                      r.int("vocab_size"), r.int("intermediate_size"), r.opt_int("num_key_value_heads"))


def _falcon(r: _Reader):
    d, n_heads = r.int("hidden_size"), r.int("num_attention_heads")
    new = r.bool("new_decoder_architecture")
    if new:
        n_kv = r.opt_int("num_kv_heads") or n_heads
        norms = r.opt_int("num_ln_in_parallel_attn") or 2
    else:
        n_kv = 1 if r.bool("multi_query") else n_heads
        norms = 1 if r.bool("parallel_attn") else 2
    bias = r.bool("bias")
    s = FAMILIES["falcon"].with_options(
        positions="alibi" if r.bool("alibi") else "rotary", attn_bias="all" if bias else "none", mlp_bias=bias,
        norms_per_layer=norms, parallel=new or r.bool("parallel_attn"), tied_head=r.bool("tie_word_embeddings"))
    return s, _values(d, r.int("num_hidden_layers"), n_heads, r.int("vocab_size"), r.opt_int("ffn_hidden_size"),
                      n_kv if n_kv != n_heads else None)


_READERS = {
    "gpt2": _gpt2, "opt": _opt, "bloom": _bloom, "gpt_neox": _gpt_neox, "gptj": _gptj,
    "llama": _llama_like("llama"), "mistral": _llama_like("mistral"), "mixtral": _llama_like("mixtral"),
    "qwen2": _llama_like("qwen2"), "qwen3": _llama_like("qwen3"), "gemma": _llama_like("gemma"),
    "phi": _phi, "phi3": _llama_like("phi3"), "falcon": _falcon,
}
