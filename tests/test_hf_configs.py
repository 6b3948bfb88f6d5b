"""Released config.json files as users find them on the model pages: multimodal wrappers read as their text
model, model types the catalog lacks read through ``architectures``, and one-line errors naming the closest
supported type. Every count equals transformers' (``tests/data/hf_config_counts.json``, written by
``benchmarks/validate_hf_configs.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.catalog.families import ARCHITECTURES, FAMILIES, WRAPPERS, from_hf_config, load_hf_config
from engine.catalog.model import architecture, param_counts
from engine.errors import SpecError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "tests" / "data" / "hf_configs"
SOURCES = json.loads((CONFIGS / "sources.json").read_text())["files"]
FIXTURE = json.loads((REPO / "tests" / "data" / "hf_config_counts.json").read_text())
COUNTS = FIXTURE["counts"]
RELEASED = sorted(n for n in COUNTS if not n.startswith("variant:"))
VARIANTS = sorted(n for n in COUNTS if n.startswith("variant:"))


def test_every_stored_config_has_a_source_and_a_transformers_count():
    stored = {p.name for p in CONFIGS.glob("*.json")} - {"sources.json"}
    assert stored == set(SOURCES) == set(RELEASED)
    assert all(s["source"] for s in SOURCES.values())
    assert {json.loads((CONFIGS / n).read_text())["model_type"] for n in stored} >= {"llama4", "gemma3", "mistral3",
                                                                                    "llava", "kimi_k2"}


@pytest.mark.parametrize("name", RELEASED)
def test_released_configs_equal_transformers(name):
    counts = param_counts(load_hf_config(CONFIGS / name))
    assert (counts["total"], counts["active"]) == (COUNTS[name]["total"], COUNTS[name]["active"])
    assert sum(counts["breakdown"].values()) == counts["total"]


@pytest.mark.parametrize("name", VARIANTS)
def test_each_wrapper_rule_equals_transformers(name):
    counts = param_counts(from_hf_config(COUNTS[name]["config"], name))
    assert (counts["total"], counts["active"]) == (COUNTS[name]["total"], COUNTS[name]["active"])


def test_every_wrapper_has_variants_and_the_classes_are_transformers():
    assert {COUNTS[n]["config"]["model_type"] for n in VARIANTS} == set(WRAPPERS)
    assert FIXTURE["classes"]["causal_lm"] == {t: f.architecture for t, f in FAMILIES.items()}
    assert FIXTURE["classes"]["wrappers"] == {t: w.architecture for t, w in WRAPPERS.items()}
    assert len(ARCHITECTURES) == len(FAMILIES) + len(WRAPPERS)  # no class names two types


def test_llama4_is_read_as_its_text_model_and_matches_the_published_sizes():
    scout = param_counts(load_hf_config(CONFIGS / "llama-4-scout-17b-16e-instruct.json"))
    maverick = param_counts(load_hf_config(CONFIGS / "llama-4-maverick-17b-128e-instruct.json"))
    # the text model equals the llama4_text presets (transformers 5.24 meta-device counts)
    assert scout["total"] == param_counts(architecture("llama-4-scout-17b-16e-instruct"))["total"] == 107_769_861_120
    assert maverick["total"] == param_counts(architecture("llama-4-maverick-17b-128e-instruct"))["total"] \
        == 400_711_848_960
    # "17B active parameters out of ~109B total" / "~400B" (transformers' llama4 model doc; "402B" further down):
    # the published totals include the vision tower and projector, counted apart by transformers
    vision = COUNTS["llama-4-scout-17b-16e-instruct.json"]["vision"]
    assert vision == COUNTS["llama-4-maverick-17b-128e-instruct.json"]["vision"] == 871_932_416
    assert round((scout["total"] + vision) / 1e9) == 109 and round((maverick["total"] + vision) / 1e9) == 402
    assert round(scout["active"] / 1e9) == round(maverick["active"] / 1e9) == 17


def test_kimi_k2_is_read_through_its_architectures():
    arch = load_hf_config(CONFIGS / "kimi-k2-instruct.json")
    assert arch.family == "deepseek_v3"
    assert param_counts(arch) == param_counts(architecture("kimi-k2-instruct"))
    # an unknown type whose architectures name a wrapper is read as that wrapper
    gemma = json.loads((CONFIGS / "gemma-3-4b-it.json").read_text())
    medgemma = from_hf_config({**gemma, "model_type": "medgemma"}, "medgemma.json")
    assert param_counts(medgemma) == param_counts(from_hf_config(gemma))


def test_gemma3_wrapper_is_its_text_config_with_the_wrappers_tied_head():
    gemma = json.loads((CONFIGS / "gemma-3-4b-it.json").read_text())
    text = param_counts(from_hf_config(gemma["text_config"]))  # gemma3_text alone: tied by its own default
    assert param_counts(from_hf_config(gemma))["total"] == text["total"] == 3_880_263_168
    # the published 4.3 B (keras-hub and the model card) adds the SigLIP tower and projector
    assert round((text["total"] + COUNTS["gemma-3-4b-it.json"]["vision"]) / 1e8) == 43


def test_mistral_small_follows_the_config_and_the_checkpoint_is_one_option_away():
    path = CONFIGS / "mistral-small-3.1-24b-instruct-2503.json"
    tied = param_counts(load_hf_config(path))["total"]
    untied = param_counts(architecture(str(path), {"tied_head": False}))["total"]
    assert untied - tied == 131072 * 5120 and untied == 23_572_403_200


@pytest.mark.parametrize("config,key,message", [
    ({"model_type": "qwen3_vl_moe"}, "model_type", "the closest supported type is 'qwen3_moe'"),
    ({"model_type": "kimi_k2"}, "model_type", "unsupported model type 'kimi_k2'"),
    ({"model_type": "kimi_k2", "architectures": ["KimiForCausalLM"]}, "model_type",
     "architectures ['KimiForCausalLM'] names no class the catalog has"),
    ({"model_type": "gemma3", "text_config": [1]}, "text_config", "must be a JSON object"),
    ({"model_type": "gemma3", "tie_word_embeddings": "no"}, "tie_word_embeddings", "true or false"),
    ({"model_type": "llama4", "text_config": {"hidden_size": 0}}, "text_config.hidden_size", "positive integer"),
    ({"model_type": "llava", "text_config": {"model_type": "t5"}}, "text_config.model_type",
     "unsupported model type 't5'"),
    ({"model_type": "llava", "text_config": {"model_type": "gemma3"}}, "text_config.model_type",
     "is a multimodal wrapper"),
    ({"model_type": "llava", "text_config": {"model_type": "llama", "tie_word_embeddings": 1}},
     "text_config.tie_word_embeddings", "true or false"),
])
def test_config_errors_name_the_field(config, key, message):
    with pytest.raises(SpecError) as info:
        from_hf_config(config, "config.json")
    assert info.value.key == key and message in info.value.message, info.value


def test_an_unsupported_type_is_one_line_exit_2(run_cli, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "qwen3_vl_moe", "architectures": ["Qwen3VLMoeForConditionalGeneration"]}))
    r = run_cli("params", "--hf-config", path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "closest supported type is 'qwen3_moe'" in r.stderr, r.stderr
