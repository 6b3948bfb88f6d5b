"""LoRA adapters: the exact trainable parameter count of a peft ``LoraConfig`` on a real architecture.

Source: peft 0.21.2 (the counts are checked against peft's ``get_nb_trainable_parameters()[0]`` by
``benchmarks/validate_lora.py``, fixture ``tests/data/peft_trainable_counts.json``), with the module
layout of transformers 5.24:

* ``peft/tuners/lora/layer.py`` (``LoraLayer.update_layer``): a targeted layer with ``in_features``
  inputs and ``out_features`` outputs gets ``lora_A`` (in x r) and ``lora_B`` (r x out), no bias
  (``LoraConfig.bias = "none"``, ``lora_bias = False``): r (in + out) trainable parameters. A GPT-2
  ``Conv1D`` is the same with ``fan_in_fan_out`` (its weight is stored transposed).
* ``peft/tuners/tuners_utils.py`` (``check_target_module_exists``): a name in ``target_modules``
  selects every module whose qualified name equals it or ends with ``"." + name`` (so GPT-2's
  ``c_proj`` selects both the attention and the MLP ``c_proj``); ``_maybe_include_all_linear_layers``:
  ``"all-linear"`` selects every ``nn.Linear`` / ``Conv1D`` except the output embeddings (``lm_head``).
* ``peft/utils/constants.py`` (``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING``): the targets
  when none are given (``llama``: q_proj, v_proj; ``gpt2``: c_attn); peft 0.21.2 has none for
  ``phi3``, so targets must be given there. peft's trainable count is the adapters only: the base
  model is frozen.

Fused projections are one module: GPT-2 ``c_attn`` (d -> 3d), BLOOM/GPT-NeoX ``query_key_value``
(d -> 3d), Falcon ``query_key_value`` (d -> (n_heads + 2 n_kv_heads) head_dim), Phi-3 ``qkv_proj`` and
``gate_up_proj`` (d -> 2 d_ff).

Mixtral (MoE): in transformers 5.x the experts are fused 3-D parameters of a ``MixtralExperts``
module (``gate_up_proj`` E x 2d_ff x d, ``down_proj`` E x d x d_ff) and the router a
``MixtralTopKRouter``, none of them an ``nn.Linear``. peft 0.21.2 keeps the transformers 4.x names
(``utils/transformers_weight_conversion.py``, ``_convert_peft_config_moe``): ``gate`` (router),
``w1``, ``w3`` (gate and up, which must be targeted together since they are fused) and ``w2`` (down)
become ``target_parameters`` (``gate.weight``, ``gate_up_proj`` with rank 2r, ``down_proj``), and
``all-linear`` includes all four. A targeted parameter gets a ``ParamWrapper`` (``tuners/lora/layer.py``):
``lora_A`` in x (r E), ``lora_B`` (r E) x out, E experts (1 for the router): ``w1`` + ``w3`` add
2r E (d + 2 d_ff), ``w2`` r E (d_ff + d), ``gate`` r (d + E) per layer. With no targets, peft 0.21.2
on transformers 5.x raises for Mixtral (the conversion empties ``target_modules`` before the defaults
are filled); the engine uses the defaults of peft's table (q_proj, v_proj), which is what peft
wraps for that explicit list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import sympy

from engine.symbolic.formulas.architectures import Structure
from engine.symbolic.symbols import symbol

PEFT_SOURCE = ("peft 0.21.2: tuners/lora/layer.py (lora_A in x r, lora_B r x out, no bias), "
               "tuners/tuners_utils.py (suffix matching of target_modules, all-linear without lm_head), "
               "utils/constants.py (default target modules per model type); module layout of transformers 5.24")
ALL_LINEAR = "all-linear"

lora_rank = sympy.Symbol("lora_rank", integer=True, positive=True)
d_model, n_layers, n_heads = symbol("d_model"), symbol("n_layers"), symbol("n_heads")
n_kv_heads, head_dim, d_ff, d_embed = symbol("n_kv_heads"), symbol("head_dim"), symbol("d_ff"), symbol("d_embed")
n_experts = symbol("n_experts")
q_dim, kv_dim = n_heads * head_dim, n_kv_heads * head_dim


@dataclass(frozen=True)
class LoraModule:
    """One linear module peft can wrap: the name ``target_modules`` matches, where it sits, its sizes.

    ``per_layer``: one in every layer (else once in the model); ``when``: a Structure option that
    must be true for the module to exist (OPT's ``project_in``/``project_out``: ``embed_proj``);
    ``rank_mult``: the adapter's rank is rank x this (a 3-D expert parameter: n_experts); ``needs``: a
    target that must be given with this one (Mixtral's fused ``w1``/``w3``).
    """

    target: str
    path: str
    d_in: sympy.Expr
    d_out: sympy.Expr
    per_layer: bool = True
    when: str = ""
    rank_mult: sympy.Expr = sympy.Integer(1)
    needs: str = ""


def _m(target, path, d_in, d_out, rank_mult=1, **kw) -> LoraModule:
    return LoraModule(target, path, sympy.sympify(d_in), sympy.sympify(d_out), rank_mult=sympy.sympify(rank_mult),
                      **kw)


_LLAMA = (_m("q_proj", "self_attn.q_proj", d_model, q_dim), _m("k_proj", "self_attn.k_proj", d_model, kv_dim),
          _m("v_proj", "self_attn.v_proj", d_model, kv_dim), _m("o_proj", "self_attn.o_proj", q_dim, d_model),
          _m("gate_proj", "mlp.gate_proj", d_model, d_ff), _m("up_proj", "mlp.up_proj", d_model, d_ff),
          _m("down_proj", "mlp.down_proj", d_ff, d_model))
_FUSED_QKV_MLP = (_m("query_key_value", "self_attention.query_key_value", d_model, q_dim + 2 * kv_dim),
                  _m("dense", "self_attention.dense", q_dim, d_model),
                  _m("dense_h_to_4h", "mlp.dense_h_to_4h", d_model, d_ff),
                  _m("dense_4h_to_h", "mlp.dense_4h_to_h", d_ff, d_model))

# The linear modules of each model_type, as transformers 5.24 builds them (nn.Linear or Conv1D).
LORA_MODULES: dict[str, tuple[LoraModule, ...]] = {
    "gpt2": (_m("c_attn", "attn.c_attn", d_model, 3 * d_model), _m("c_proj", "attn.c_proj", d_model, d_model),
             _m("c_fc", "mlp.c_fc", d_model, d_ff), _m("c_proj", "mlp.c_proj", d_ff, d_model)),
    "opt": (_m("q_proj", "self_attn.q_proj", d_model, d_model), _m("k_proj", "self_attn.k_proj", d_model, d_model),
            _m("v_proj", "self_attn.v_proj", d_model, d_model),
            _m("out_proj", "self_attn.out_proj", d_model, d_model),
            _m("fc1", "fc1", d_model, d_ff), _m("fc2", "fc2", d_ff, d_model),
            _m("project_in", "decoder.project_in", d_embed, d_model, per_layer=False, when="embed_proj"),
            _m("project_out", "decoder.project_out", d_model, d_embed, per_layer=False, when="embed_proj")),
    "bloom": _FUSED_QKV_MLP,
    "gpt_neox": (_m("query_key_value", "attention.query_key_value", d_model, q_dim + 2 * kv_dim),
                 _m("dense", "attention.dense", q_dim, d_model),
                 _m("dense_h_to_4h", "mlp.dense_h_to_4h", d_model, d_ff),
                 _m("dense_4h_to_h", "mlp.dense_4h_to_h", d_ff, d_model)),
    "gptj": (_m("q_proj", "attn.q_proj", d_model, q_dim), _m("k_proj", "attn.k_proj", d_model, kv_dim),
             _m("v_proj", "attn.v_proj", d_model, kv_dim), _m("out_proj", "attn.out_proj", q_dim, d_model),
             _m("fc_in", "mlp.fc_in", d_model, d_ff), _m("fc_out", "mlp.fc_out", d_ff, d_model)),
    "llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "qwen3": _LLAMA, "gemma": _LLAMA,
    # Mixtral: experts are 3-D parameters and the router is not nn.Linear; peft maps the 4.x names
    # (module docstring). w1 and w3 are the two halves of gate_up_proj (rank 2r over d -> 2 d_ff).
    "mixtral": _LLAMA[:4] + (
        _m("gate", "mlp.gate", d_model, n_experts),
        _m("w1", "experts.gate_up_proj (gate half)", d_model, 2 * d_ff, rank_mult=n_experts, needs="w3"),
        _m("w3", "experts.gate_up_proj (up half)", d_model, 2 * d_ff, rank_mult=n_experts, needs="w1"),
        _m("w2", "experts.down_proj", d_ff, d_model, rank_mult=n_experts)),
    "phi": (_m("q_proj", "self_attn.q_proj", d_model, q_dim), _m("k_proj", "self_attn.k_proj", d_model, kv_dim),
            _m("v_proj", "self_attn.v_proj", d_model, kv_dim), _m("dense", "self_attn.dense", q_dim, d_model),
            _m("fc1", "mlp.fc1", d_model, d_ff), _m("fc2", "mlp.fc2", d_ff, d_model)),
    "phi3": (_m("qkv_proj", "self_attn.qkv_proj", d_model, q_dim + 2 * kv_dim),
             _m("o_proj", "self_attn.o_proj", q_dim, d_model),
             _m("gate_up_proj", "mlp.gate_up_proj", d_model, 2 * d_ff), _m("down_proj", "mlp.down_proj", d_ff, d_model)),
    "falcon": _FUSED_QKV_MLP,
}

# peft 0.21.2 TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING (phi3: none)
DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt2": ("c_attn",), "opt": ("q_proj", "v_proj"), "bloom": ("query_key_value",),
    "gpt_neox": ("query_key_value",), "gptj": ("q_proj", "v_proj"), "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"), "mixtral": ("q_proj", "v_proj"), "qwen2": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"), "gemma": ("q_proj", "v_proj"), "phi": ("q_proj", "v_proj", "fc1", "fc2"),
    "falcon": ("query_key_value",),
}


def modules(model_type: str, structure: Structure) -> tuple[LoraModule, ...]:
    """The linear modules of a model type with this structure (ValueError for an unknown type)."""
    if model_type not in LORA_MODULES:
        raise ValueError(f"no LoRA module table for model type {model_type!r}; known: {', '.join(LORA_MODULES)}")
    return tuple(m for m in LORA_MODULES[model_type] if not m.when or getattr(structure, m.when))


def target_names(model_type: str, structure: Structure) -> tuple[str, ...]:
    """The names ``target_modules`` may use for this model type, in module order."""
    return tuple(dict.fromkeys(m.target for m in modules(model_type, structure)))


def resolve_targets(model_type: str, structure: Structure, targets: str | Iterable[str] | None) -> tuple[str, ...]:
    """The target names peft uses: the defaults (None), every linear (``"all-linear"``) or the names given.

    ValueError naming the valid names when one is unknown, or when the type has no default targets.
    """
    valid = target_names(model_type, structure)
    if targets is None:
        if model_type not in DEFAULT_TARGETS:
            raise ValueError(f"peft has no default LoRA targets for {model_type}; give targets: "
                             f"{', '.join(valid)} or {ALL_LINEAR}")
        return DEFAULT_TARGETS[model_type]
    if isinstance(targets, str):
        if targets.strip().lower() == ALL_LINEAR:
            return valid
        targets = targets.split(",")
    names = tuple(dict.fromkeys(t.strip() for t in targets))
    if not names or "" in names:
        raise ValueError(f"empty LoRA target name; valid for {model_type}: {', '.join(valid)} or {ALL_LINEAR}")
    unknown = [t for t in names if t not in valid]
    if unknown:
        raise ValueError(f"unknown LoRA target{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
                         f"{model_type}; valid: {', '.join(valid)} or {ALL_LINEAR}")
    for m in modules(model_type, structure):
        if m.needs and m.target in names and m.needs not in names:
            raise ValueError(f"LoRA target {m.target} of {model_type} needs {m.needs} too (peft: they are fused "
                             f"into one parameter); valid: {', '.join(valid)} or {ALL_LINEAR}")
    return names


def lora_trainable(model_type: str, structure: Structure, targets: str | Iterable[str] | None = None,
                   rank: sympy.Expr | int = lora_rank) -> dict:
    """Trainable LoRA parameters as sympy expressions over the architecture's inputs and ``rank``.

    Returns ``{"targets": names, "per_layer": expr, "total": expr, "per_target": {name: total expr}}``:
    each wrapped module adds rank x (in + out); per-layer modules count n_layers times.
    """
    names = resolve_targets(model_type, structure, targets)
    rank = sympy.sympify(rank)
    per_target: dict[str, sympy.Expr] = {}
    per_layer = sympy.Integer(0)
    for name in names:
        expr = sympy.Integer(0)
        for m in modules(model_type, structure):
            if m.target == name:
                one = rank * m.rank_mult * (m.d_in + m.d_out)
                expr += n_layers * one if m.per_layer else one
                per_layer += one if m.per_layer else 0
        per_target[name] = expr
    return {"targets": names, "per_layer": per_layer, "total": sum(per_target.values(), sympy.Integer(0)),
            "per_target": per_target}
