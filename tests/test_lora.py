"""LoRA adapter counts (peft semantics) against peft itself: tests/data/peft_trainable_counts.json
(made by benchmarks/validate_lora.py with transformers + peft on the meta device)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy

from engine.catalog.model import architecture, lora_counts, param_counts
from engine.cli import main
from engine.errors import SpecError
from engine.symbolic.formulas import lora

FIXTURE = json.loads((Path(__file__).parent / "data" / "peft_trainable_counts.json").read_text())
ROWS = FIXTURE["rows"]


def test_fixture_is_broad():
    ok = [r for r in ROWS.values() if "trainable" in r]
    assert len(ok) >= 10
    assert {r["config"]["model_type"] for r in ok} >= {"gpt2", "llama", "mistral", "mixtral", "qwen2", "phi3",
                                                        "falcon", "gemma"}
    assert {r["rank"] for r in ok} >= {8, 64}
    assert any(r["targets"] is None for r in ok) and any(r["targets"] == "all-linear" for r in ok)
    assert FIXTURE["meta"]["peft"]


@pytest.mark.parametrize("name", sorted(n for n, r in ROWS.items() if "trainable" in r))
def test_engine_equals_peft(name):
    row = ROWS[name]
    counts = lora_counts(architecture(row["arch"]), row["rank"], row["targets"])
    assert counts["trainable"] == row["trainable"]
    assert counts["total_with_adapters"] == row["all"]
    assert sum(counts["per_target"].values()) == counts["trainable"]


@pytest.mark.parametrize("name", sorted(n for n, r in ROWS.items() if "error" in r))
def test_peft_refusals(name):
    """Where peft refuses, the engine refuses too, except Mixtral's defaults (a peft 0.21.2 quirk on
    transformers 5.x): the engine uses peft's table, q_proj and v_proj, whose explicit count peft gives."""
    row = ROWS[name]
    arch = architecture(row["arch"])
    if row["arch"].startswith("mixtral") and row["targets"] is None:
        explicit = ROWS[f"{row['arch']}|r={row['rank']}|q_proj,v_proj"]["trainable"]
        assert lora_counts(arch, row["rank"], None)["trainable"] == explicit
        return
    with pytest.raises(SpecError):
        lora_counts(arch, row["rank"], row["targets"])


def test_symbolic_formula():
    out = lora.lora_trainable("llama", architecture("llama").structure, "all-linear")
    assert out["targets"][0] == "q_proj" and len(out["targets"]) == 7
    assert out["total"].free_symbols >= {lora.lora_rank, lora.n_layers}
    # gpt2's c_proj matches both the attention and the MLP projection (peft's suffix matching)
    gpt2 = lora.lora_trainable("gpt2", architecture("gpt2").structure, ["c_proj"], 1)
    assert sympy.expand(gpt2["per_layer"] - (2 * lora.d_model + lora.d_ff + lora.d_model)) == 0


def test_every_family_has_a_table_or_refuses_lora():
    from engine.catalog.families import FAMILIES
    from engine.errors import SpecError

    assert set(lora.LORA_MODULES) <= set(FAMILIES)
    assert set(lora.DEFAULT_TARGETS) == set(lora.LORA_MODULES) - {"phi3"}
    assert len(lora.LORA_MODULES) >= 14  # the model types before the 2025 architectures
    for model_type in set(FAMILIES) - set(lora.LORA_MODULES):  # per-layer-kind LoRA tables: not built yet
        with pytest.raises(SpecError, match=f"no LoRA module table for model type '{model_type}'"):
            lora_counts(architecture(model_type), 8)


def test_known_value_and_totals():
    arch = architecture("llama-2-7b")
    c = lora_counts(arch, 8)
    assert c["trainable"] == 4_194_304 and c["targets"] == ["q_proj", "v_proj"]  # the well-known peft print
    assert c["total_with_adapters"] == param_counts(arch)["total"] + c["trainable"]
    assert c["trainable_per_layer"] * 32 == c["trainable"]
    assert lora_counts(arch, 16)["trainable"] == 2 * c["trainable"]


def test_cli_text_and_json(capsys):
    assert main(["params", "--arch", "llama-2-7b", "--lora-rank", "8"]) == 0
    out = capsys.readouterr().out
    assert "4,194,304 trainable parameters" in out and "q_proj" in out
    assert main(["params", "--arch", "gpt2", "--lora-rank", "64", "--lora-targets", "all-linear", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trainable"] == ROWS["gpt2|r=64|all-linear"]["trainable"]
    assert data["targets"] == ["c_attn", "c_proj", "c_fc"]
    assert set(data) >= {"trainable", "total_with_adapters", "per_target"}
    assert main(["params", "--arch", "mistral-7b", "--lora-rank", "8", "--lora-targets", "k_proj, down_proj",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trainable"] == ROWS["mistral-7b|r=8|k_proj,down_proj"]["trainable"]


@pytest.mark.parametrize("argv, words", [
    (["--arch", "gpt2", "--lora-targets", "c_attn"], "needs --lora-rank"),
    (["--arch", "gpt2", "--lora-rank", "0"], "positive integer"),
    (["--arch", "gpt2", "--lora-rank", "-3"], "positive integer"),
    (["--arch", "gpt2", "--lora-rank", "eight"], "positive integer"),
    (["--arch", "gpt2", "--lora-rank", "8", "--lora-targets", "q_proj"], "valid: c_attn, c_proj, c_fc or all-linear"),
    (["--arch", "llama-2-7b", "--lora-rank", "8", "--lora-targets", "q_proj,,v_proj"], "empty"),
    (["--arch", "mixtral-8x7b", "--lora-rank", "8", "--lora-targets", "w1"], "needs w3"),
    (["--arch", "phi-3-mini-4k-instruct", "--lora-rank", "8"], "no default LoRA targets"),
])
def test_cli_bad_input(capsys, argv, words):
    assert main(["params", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
