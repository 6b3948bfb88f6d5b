"""Count the text model of every stored config.json with the real implementation (transformers, meta device).

    python benchmarks/validate_hf_configs.py [--out tests/data/hf_config_counts.json]

Needs torch and transformers (`pip install torch==2.13.0 transformers`; nothing is downloaded: each model is
built from its config on the meta device). It counts

* every released config in ``tests/data/hf_configs/`` (multimodal wrappers such as ``llama4`` and ``gemma3``,
  and ``kimi_k2``, which transformers does not know: it is built as the ``deepseek_v3`` its ``architectures``
  names, as the engine reads it), and
* ``VARIANTS``: small configs that exercise each wrapper's rules (where ``tie_word_embeddings`` is read, a
  missing ``text_config``, Qwen2-VL's flat form, the text model types AutoConfig resolves).

A wrapper is built whole (``<Wrapper>ForConditionalGeneration``, e.g. Llama4ForConditionalGeneration with its
vision tower) and its parameters are split by name: the language model's (``model.language_model.*``,
``language_model.*``) and ``lm_head`` are the text model, the rest (vision tower, projector) is reported apart
as ``vision``. The text parameters are classified as ``benchmarks/validate_presets.py`` classifies a causal
LM's (same breakdown, same active-parameter rule). The file also records the class
``AutoModelForCausalLM`` builds for every catalog type and the class ``architectures`` names for every wrapper,
which the engine's records must equal.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

CONFIGS = REPO / "tests" / "data" / "hf_configs"

_LM = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
       "intermediate_size": 128, "vocab_size": 100}
_L4 = {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
       "intermediate_size": 32, "intermediate_size_mlp": 128, "num_local_experts": 4, "vocab_size": 100}
_G3 = {"hidden_size": 64, "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
       "intermediate_size": 128, "vocab_size": 100}
VARIANTS = {
    "variant:llama4-interleave-2-top-tie-ignored": {"model_type": "llama4", "tie_word_embeddings": True,
                                                    "text_config": {**_L4, "interleave_moe_layer_step": 2}},
    "variant:llama4-text-tied": {"model_type": "llama4", "text_config": {**_L4, "tie_word_embeddings": True}},
    "variant:gemma3-default-tied": {"model_type": "gemma3", "text_config": _G3},
    "variant:gemma3-top-untied": {"model_type": "gemma3", "tie_word_embeddings": False, "text_config": _G3},
    "variant:gemma3-text-untied-ignored": {"model_type": "gemma3", "text_config": {**_G3,
                                                                                    "tie_word_embeddings": False}},
    "variant:mistral3-default-tied": {"model_type": "mistral3", "text_config": {"model_type": "mistral", **_LM}},
    "variant:mistral3-top-untied": {"model_type": "mistral3", "tie_word_embeddings": False,
                                    "text_config": {"model_type": "mistral", **_LM}},
    "variant:mistral3-no-text-model-type": {"model_type": "mistral3", "text_config": {**_LM, "head_dim": 32}},
    "variant:mistral3-no-text-config": {"model_type": "mistral3"},
    "variant:llava-default": {"model_type": "llava", "text_config": {"model_type": "llama", **_LM}},
    "variant:llava-text-tied": {"model_type": "llava", "text_config": {"model_type": "llama", **_LM,
                                                                       "tie_word_embeddings": True}},
    "variant:llava-qwen2-text": {"model_type": "llava", "text_config": {"model_type": "qwen2", **_LM}},
    "variant:llava-no-text-config": {"model_type": "llava"},
    "variant:llava_next-mistral-text": {"model_type": "llava_next", "text_config": {"model_type": "mistral", **_LM,
                                                                                    "num_key_value_heads": 1}},
    "variant:qwen2_vl-flat-mha": {"model_type": "qwen2_vl", **_LM, "num_key_value_heads": 4},
    "variant:qwen2_vl-flat-tied": {"model_type": "qwen2_vl", **_LM, "tie_word_embeddings": True},
    "variant:qwen2_vl-nested-text-tied-head-dim-ignored": {"model_type": "qwen2_vl", "text_config": {
        **_LM, "head_dim": 32, "tie_word_embeddings": True}},
    "variant:qwen2_vl-no-text-config": {"model_type": "qwen2_vl"},
    "variant:qwen2_5_vl-flat-sliding": {"model_type": "qwen2_5_vl", **_LM, "use_sliding_window": True,
                                        "sliding_window": 16, "max_window_layers": 1},
}
# the language model's parameter names inside each wrapper -> the causal LM's names validate_presets classifies
_TEXT = [(re.compile(r"^model\.language_model\."), "model."), (re.compile(r"^language_model\.model\."), "model."),
         (re.compile(r"^language_model\.lm_head\."), "lm_head."), (re.compile(r"^lm_head\."), "lm_head.")]


def text_name(name: str) -> str | None:
    """The causal-LM name of a wrapper's language-model parameter, or None for the vision tower and projector."""
    for pattern, prefix in _TEXT:
        if pattern.match(name):
            return pattern.sub(prefix, name)
    return None


def count_wrapped(config: dict) -> dict:
    import torch
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    from validate_presets import BREAKDOWN, _n_experts, classify

    fields = {k: v for k, v in config.items() if k != "model_type"}
    cfg = transformers.AutoConfig.for_model(config["model_type"], **fields)
    cls_name = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES[config["model_type"]]
    with torch.device("meta"):
        model = getattr(transformers, cls_name)(cfg)
    text_cfg = cfg.get_text_config(decoder=True)
    n_experts, top_k = _n_experts(text_cfg), getattr(text_cfg, "num_experts_per_tok", None)
    seen, total, vision, experts, experts_active = set(), 0, 0, 0, 0
    breakdown = dict.fromkeys(BREAKDOWN, 0)
    for name, p in model.named_parameters(remove_duplicate=True):
        if id(p) in seen:
            continue
        seen.add(id(p))
        local = text_name(name)
        if local is None:
            vision += p.numel()
            continue
        cat, _ = classify(local)
        total += p.numel()
        breakdown[cat] += p.numel()
        if cat == "experts":
            assert n_experts and p.shape[0] == n_experts, (name, tuple(p.shape), n_experts)
            experts += p.numel()
            experts_active += p.numel() // n_experts * top_k
    head = model.get_output_embeddings().weight
    return {"total": total, "active": total - experts + experts_active if experts else None, "breakdown": breakdown,
            "vision": vision, "class": cls_name, "text_class": type(text_cfg).__name__,
            "tied": head is model.get_input_embeddings().weight}


def count_config(config: dict) -> dict:
    """A wrapper's text model, or a causal LM (a model_type transformers lacks is built as its architectures
    class's type, as the engine reads it)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    from validate_presets import count

    if config["model_type"] in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return count_wrapped(config)
    built = dict(config)
    if config["model_type"] not in CONFIG_MAPPING_NAMES:
        from engine.catalog.families import ARCHITECTURES

        built["model_type"] = next(ARCHITECTURES[a] for a in config["architectures"] if a in ARCHITECTURES)
    built.pop("architectures", None)
    return {**count(built), "built_as": built["model_type"]}


def classes() -> dict:
    """The class transformers builds for each catalog type and wrapper (the engine's records must equal them)."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)

    from engine.catalog.families import FAMILIES, WRAPPERS

    return {"causal_lm": {t: MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[t] for t in FAMILIES},
            "wrappers": {t: MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES[t] for t in WRAPPERS}}


def main() -> None:
    import torch
    import transformers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "hf_config_counts.json"))
    args = ap.parse_args()
    configs = {p.name: json.loads(p.read_text()) for p in sorted(CONFIGS.glob("*.json")) if p.name != "sources.json"}
    configs.update(VARIANTS)
    out = {"meta": {"transformers": transformers.__version__, "torch": torch.__version__,
                    "how": "the text model of <Wrapper>ForConditionalGeneration (or the causal LM) built from the "
                           "config on the meta device; distinct parameters; vision tower and projector apart"},
           "classes": classes(), "counts": {}}
    for name, config in configs.items():
        c = count_config(config)
        out["counts"][name] = {**c, **({"config": config} if name.startswith("variant:") else {})}
        active = "" if c["active"] is None else f"{c['active']:>18,}"
        print(f"{name:<48} {c['total']:>18,} {active}   vision {c.get('vision', 0):,}", flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(out['counts'])} entries to {args.out}")


if __name__ == "__main__":
    main()
