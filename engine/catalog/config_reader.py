"""Typed access to a config.json's fields, and the layer patterns transformers derives from them.

``ConfigReader`` wraps one config (its model type's defaults filled, field aliases resolved) and
reads each field as the type a reader needs, naming the field in every error. The functions below
turn a config's per-layer lists (``layer_types``, MoE layer indices) into the sizes that give them
(``full_attention_interval``, ``first_k_dense_replace``, ...), so a sweep over ``n_layers`` keeps
the pattern. The readers of the model types (``engine.catalog.readers``) are built from these.
"""

from __future__ import annotations

from typing import Any, Callable

from engine.errors import SpecError
from engine.symbolic.formulas.architectures import Structure


class ConfigReader:
    """Typed access to a config's fields (defaults filled, aliases resolved); errors name the field.

    Parameters
    ----------
    source : str
        How errors name the config (a file path, ``"preset llama-2-7b"``).
    cfg : dict
        The config's fields, its model type's defaults filled in.
    """

    def __init__(self, source: str, cfg: dict):
        self.source, self.cfg = source, cfg

    def int(self, key: str, default: Any = None) -> int:
        """A positive integer field; SpecError naming ``key`` when missing or not one."""
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
        """A positive integer field, or None when the config leaves it null."""
        return None if self.cfg.get(key) is None else self.int(key)

    def bool(self, key: str, default: bool | None = None) -> bool:
        """A true/false field; SpecError naming ``key`` otherwise."""
        value = self.cfg.get(key, default)
        if not isinstance(value, bool):
            raise SpecError(self.source, key, f"must be true or false, got {value!r}")
        return value

    def attention_bias(self) -> str:
        """The ``attn_bias`` option an ``attention_bias`` field gives: ``"all"`` projections or ``"none"``."""
        return "all" if self.bool("attention_bias") else "none"

    def check_known(self, key: str, entries, known, nouns: tuple[str, str], valid: str) -> None:
        """SpecError naming ``key`` and its ``entries`` not in ``known`` (``nouns``: singular, plural), then
        ``valid``, what would be."""
        bad = sorted({v for v in entries if v not in known})
        if bad:
            raise SpecError(self.source, key, f"unknown {nouns[len(bad) > 1]} {', '.join(map(repr, bad))}; {valid}")

    def check_divisible(self, d: int, n_heads: int) -> None:
        """transformers' validate_architecture (Gemma 2/3, DeepSeek-V2): hidden_size % num_attention_heads == 0."""
        if d % n_heads:
            raise SpecError(self.source, "hidden_size", f"{d} is not a multiple of num_attention_heads {n_heads} "
                                                        "(transformers rejects it)")

    def experts(self, n_key: str) -> dict[str, int]:
        """``n_experts`` (the field ``n_key``) and ``top_k`` (``num_experts_per_tok``, when given)."""
        n, k = self.int(n_key), self.opt_int("num_experts_per_tok")
        if k is not None and k > n:
            raise SpecError(self.source, "num_experts_per_tok", f"{k} exceeds {n_key} {n}")
        return {"n_experts": n, **({"top_k": k} if k is not None else {})}

    def base_sizes(self, head_dim: bool = True) -> tuple[int, int, int, dict]:
        """(d_model, n_layers, n_heads, the sizes of a LLaMA-style config's common fields); ``head_dim``: read it."""
        d, L, H = self.int("hidden_size"), self.int("num_hidden_layers"), self.int("num_attention_heads")
        kv = self.opt_int("num_key_value_heads")
        sizes = {"d_model": d, "n_layers": L, "n_heads": H, "vocab": self.int("vocab_size"),
                 "n_kv_heads": kv if kv is not None and kv != H else None,
                 "head_dim": self._head_dim(d, H) if head_dim else None}
        return d, L, H, sizes

    def _head_dim(self, d: int, n_heads: int) -> int | None:
        """``head_dim`` as the modeling code reads it (getattr(config, "head_dim", d // H)): stated only when it
        differs from d // n_heads, so a sweep over d_model keeps it derived."""
        hd = self.opt_int("head_dim")
        if hd is None and d % n_heads:
            return d // n_heads  # transformers' floor division (GLM-4-MoE's default 4096 // 96 = 42)
        return hd if hd is not None and hd * n_heads != d else None

    def layer_types(self, allowed: tuple[str, ...], n_layers: int) -> list[str] | None:
        """The config's ``layer_types`` list checked as transformers checks it (one entry per layer) and
        against the kinds this model type builds; None when the config has none."""
        value = self.cfg.get("layer_types")
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(self.source, "layer_types", f"must be a list of strings, got {value!r}")
        self.check_known("layer_types", value, allowed, ("entry", "entries"),
                         f"this model type builds {', '.join(allowed)}")
        if len(value) != n_layers:
            raise SpecError(self.source, "layer_types", f"has {len(value)} entries; num_hidden_layers is {n_layers} "
                                                        "(transformers requires one entry per layer)")
        return list(value)

    def sliding_window(self) -> dict[str, int] | None:
        """A non-null ``sliding_window`` on a type without ``layer_types``: transformers' DynamicCache makes
        every layer a sliding-window layer (cache_utils.get_layer_types_and_kwargs)."""
        if self.cfg.get("sliding_window") is None:
            return None
        return {"sliding_window": self.int("sliding_window")}


Reader = Callable[[ConfigReader, Structure], "tuple[Structure, dict[str, int]]"]


def stated(d_model, n_layers, n_heads, vocab, d_ff=None, n_kv_heads=None, head_dim=None, **more) -> dict[str, int]:
    """The sizes a config states. Derived ones stay out (d_ff = 4 d_model where the family derives
    it, n_kv_heads = n_heads, head_dim = d_model / n_heads), so a sweep over d_model keeps them derived."""
    values = {"d_model": d_model, "n_layers": n_layers, "n_heads": n_heads, "vocab": vocab, "d_ff": d_ff,
              "n_kv_heads": n_kv_heads, "head_dim": head_dim, **more}
    return {k: v for k, v in values.items() if v is not None}


def interval_or_counts(kinds: list[str], rest: str) -> dict[str, int]:
    """The sizes that give a layer list: ``full_attention_interval`` P when layer i is ``full_attention``
    exactly where (i + 1) % P == 0 and ``rest`` elsewhere (so a sweep over n_layers keeps the pattern),
    else the count."""
    n = len(kinds)
    for period in range(1, n + 1):
        if kinds == ["full_attention" if (i + 1) % period == 0 else rest for i in range(n)]:
            return {"full_attention_interval": period}
    if set(kinds) <= {"full_attention", rest}:
        return {"n_full_attention_layers": kinds.count("full_attention")}
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


def sliding_layers(r: ConfigReader, s: Structure) -> tuple[Structure, dict[str, int]]:
    """The structure and sizes of ``ConfigReader.sliding_window``: every layer sliding when the config has a
    window."""
    window = r.sliding_window()
    return (s.with_options(mixers="sliding_attention"), window) if window else (s, {})
