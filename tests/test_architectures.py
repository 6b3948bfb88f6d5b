"""Real architectures, exact to the parameter against transformers (fixture), and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy

from engine.errors import SpecError
from engine.catalog.families import FAMILIES, from_hf_config, load_hf_config
from engine.symbolic.formulas.architectures import BREAKDOWN
from engine.catalog.model import architecture, formulas_of, param_counts
from engine.catalog.presets import PRESETS
from engine.request.spec import parse_spec
from engine.runtime.sweep import run

REPO = Path(__file__).resolve().parents[1]
FIXTURE = json.loads((REPO / "tests" / "data" / "transformers_param_counts.json").read_text())["counts"]


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_exact_against_transformers(name):
    real = FIXTURE[name]
    counts = param_counts(from_hf_config(real["config"], name))
    assert counts["total"] == real["total"]
    assert counts["active"] == real["active"]
    assert sum(counts["breakdown"].values()) == counts["total"]
    assert set(counts["breakdown"]) == set(BREAKDOWN)


def test_every_preset_and_family_is_in_the_fixture():
    assert len(PRESETS) >= 30
    assert set(PRESETS) <= set(FIXTURE), "run benchmarks/validate_presets.py after adding presets"
    assert {f"default:{t}" for t in FAMILIES} <= set(FIXTURE)
    for name, preset in PRESETS.items():
        assert preset.source, name
        assert FIXTURE[name]["config"] == preset.config, f"{name}: fixture is stale"


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.published_params])
def test_published_exact_counts(name):
    assert param_counts(architecture(name))["total"] == PRESETS[name].published_params


def test_golden_numbers_from_the_literature():
    total = lambda name, **opts: param_counts(architecture(name, opts or None))["total"]  # noqa: E731
    assert total("gpt2") == 124_439_808
    assert total("gpt2", attn_bias="none", mlp_bias=False, norm="layernorm_nobias") == 124_337_664  # nanoGPT bias=False
    assert total("gpt2", tied_head=False) == 163_037_184
    assert total("gpt3-175b") == 174_604_259_328
    assert total("llama-2-7b") == 6_738_415_616
    assert total("meta-llama-3-8b") == 8_030_261_248
    assert total("llama-2-70b") == 68_976_648_192
    mixtral = param_counts(architecture("mixtral-8x7b"))
    assert (mixtral["total"], mixtral["active"]) == (46_702_792_704, 12_879_925_248)
    fs = formulas_of(architecture("gpt2"))
    d = sympy.Symbol("d_model", integer=True, positive=True)
    assert sympy.expand(fs.resolve("params_layer", set())) == 12 * d**2 + 13 * d


def test_required_presets_are_present():
    for name in ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-125m", "gpt3-175b", "opt-125m", "bloom",
                 "pythia-70m", "gpt-neox-20b", "gpt-j-6b", "llama-7b", "llama-2-7b", "meta-llama-3-8b", "llama-3.1-8b",
                 "llama-3.2-1b", "tinyllama-1.1b", "mistral-7b", "mixtral-8x7b", "mixtral-8x22b", "qwen2-7b",
                 "qwen2.5-7b", "qwen3-8b", "gemma-2b", "gemma-7b", "phi-1_5", "phi-2", "phi-3-mini-4k-instruct",
                 "falcon-7b", "falcon-40b"]:
        assert name in PRESETS, name


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_minimal_and_complete_forms_agree(model_type):
    complete = {"model_type": model_type, **FAMILIES[model_type].hf_defaults}
    assert param_counts(from_hf_config(complete))["total"] == param_counts(from_hf_config({"model_type": model_type}))[
        "total"] == FIXTURE[f"default:{model_type}"]["total"]


def test_minimal_form_of_a_real_config():
    # Llama-2-7B written with only the fields that differ from LlamaConfig's defaults
    minimal = {"model_type": "llama", "max_position_embeddings": 4096}
    assert param_counts(from_hf_config(minimal))["total"] == 6_738_415_616
    # Mistral-7B: every field but model_type equals MistralConfig's defaults
    assert param_counts(from_hf_config({"model_type": "mistral"}))["total"] == 7_241_732_096


def test_config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**PRESETS["qwen2-0.5b"].config, "architectures": ["Qwen2ForCausalLM"]}))
    assert param_counts(load_hf_config(path))["total"] == 494_032_768


@pytest.mark.parametrize("config,key,message", [
    ({"model_type": "t5"}, "model_type", "unsupported model type 't5'"),
    ({"hidden_size": 8}, "model_type", "missing; supported model types: gpt2"),
    ({"model_type": "llama", "hidden_size": "big"}, "hidden_size", "positive integer"),
    ({"model_type": "llama", "num_hidden_layers": 0}, "num_hidden_layers", "positive integer"),
    ({"model_type": "llama", "tie_word_embeddings": "yes"}, "tie_word_embeddings", "true or false"),
    ({"model_type": "mixtral", "num_experts_per_tok": 9}, "num_experts_per_tok", "exceeds num_local_experts"),
    ({"model_type": "opt", "layer_norm_elementwise_affine": False}, "layer_norm_elementwise_affine", "not supported"),
])
def test_bad_configs(config, key, message):
    with pytest.raises(SpecError) as info:
        from_hf_config(config, "config.json")
    assert info.value.key == key and message in info.value.message


def test_bad_config_files(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_hf_config(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_hf_config(tmp_path / "bad.json")


@pytest.mark.parametrize("config,message", [
    ({"model_type": "llama", "num_attention_heads": 32, "num_key_value_heads": 5}, "n_kv_heads must divide n_heads"),
    ({"model_type": "llama", "hidden_size": 4000, "num_attention_heads": 48}, "n_heads must divide d_model"),
])
def test_invalid_combinations_are_rejected(config, message):
    with pytest.raises(SpecError, match=message):
        param_counts(from_hf_config(config))


def test_a_given_head_dim_lifts_the_divisibility_rule():
    cfg = {"model_type": "llama", "hidden_size": 4000, "num_attention_heads": 48, "head_dim": 64}
    assert param_counts(from_hf_config(cfg))["total"] > 0


def test_params_cli(run_cli, tmp_path):
    r = run_cli("params", "--arch", "mixtral-8x7b", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["total"] == 46_702_792_704 and out["active"] == 12_879_925_248
    assert list(out["breakdown"]) == list(BREAKDOWN)
    r = run_cli("params", "--arch", "llama-2-7b")
    assert r.returncode == 0 and "6,738,415,616 parameters" in r.stdout and "attention" in r.stdout
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "gpt2"}))
    r = run_cli("params", "--hf-config", path, "--json")
    assert json.loads(r.stdout)["total"] == 124_439_808 and json.loads(r.stdout)["active"] is None
    r = run_cli("params", "--arch", "gpt2", "--option", "tied_head=false", "--json")
    assert json.loads(r.stdout)["total"] == 163_037_184


@pytest.mark.parametrize("args,message", [
    (["--arch", "gpt5"], "unknown architecture"),
    (["--arch", "gpt2", "--option", "tied=false"], "valid options"),
    (["--hf-config", "/nonexistent/config.json"], "no such file"),
])
def test_params_cli_errors(run_cli, args, message):
    r = run_cli("params", *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_formulas_for_architectures(run_cli):
    r = run_cli("formulas", "--arch", "gpt2", "--expand")
    assert "= 12*d_model**2 + 13*d_model" in r.stdout
    r = run_cli("formulas", "--arch", "llama-2-7b", "--format", "latex", "--substitute", "d_ff=8*d_model/3",
                "--collect", "d_model")
    assert r.returncode == 0 and r"\begin{align}" in r.stdout and "Touvron" in r.stdout
    assert "values: d_model = 4096" in r.stdout
    r = run_cli("formulas", "--arch", "mixtral", "--format", "markdown")
    assert "params_active" in r.stdout and "Mixtral" in r.stdout
    r = run_cli("formulas", "--arch", "llama", "--substitute", "width=3")
    assert r.returncode == 2 and "--substitute" in r.stderr


def test_arch_sweep_matches_sympy_and_masks_invalid_points():
    spec = {"sweep": {"arch": "llama-2-7b"},
            "axes": {"d_model": [2048, 4000, 4096], "n_layers": [16, 32], "n_kv_heads": [1, 3, 8, 32]}}
    req = parse_spec(spec)
    ds = run(req).dataset
    fs = req.formulas
    for d in (2048, 4096, 4000):
        for kv in (1, 3, 8, 32):
            point = ds.sel(d_model=d, n_layers=32, n_kv_heads=kv)
            ok = d % 32 == 0 and 32 % kv == 0
            assert point["valid"].item() == ok
            if ok:
                values = {"d_model": d, "n_layers": 32, "n_kv_heads": kv}
                for q in req.quantities:
                    assert point[q].item() == int(fs.evaluate(q, values)), (q, values)
            else:  # invalid points hold the fill value: NaN in memory (and once read back)
                assert np.isnan(point["params_total"].item())
    assert ds["params_total"].sel(d_model=4096, n_layers=32, n_kv_heads=32).item() == 6_738_415_616
    assert "n_kv_heads must divide n_heads" in ds["valid"].attrs["conditions"]


@pytest.mark.parametrize("spec,key,message", [
    ({"sweep": {"arch": "llama-2-7b"}, "fixed": {"n_kv_heads": 5}, "axes": {"d_model": [4096]}}, "fixed",
     "n_kv_heads must divide n_heads"),
    ({"sweep": {"arch": "mixtral"}, "fixed": {"top_k": 9}, "axes": {"d_model": [4096]}}, "fixed",
     "top_k must not exceed n_experts"),
    ({"sweep": {"arch": "gpt5"}, "axes": {"d_model": [4096]}}, "sweep.arch", "unknown architecture"),
    ({"sweep": {"arch": "llama", "formula_set": "seed"}, "axes": {"d_model": [4096]}}, "sweep.arch", "not both"),
    ({"sweep": {"arch": "llama"}, "options": {"tied": True}, "axes": {"d_model": [4096]}}, "options.tied",
     "valid options"),
    ({"sweep": {"arch": "llama"}, "options": {"precision": "fp64"}, "axes": {"d_model": [4096]}}, "options",
     "must be one of 'fp32'"),
])
def test_arch_spec_errors(spec, key, message):
    with pytest.raises(SpecError) as info:
        parse_spec(spec, source="arch.toml")
    assert info.value.key == key and message in info.value.message


def test_shipped_arch_sweep_and_query(tmp_path):
    from engine.request.query import make_query
    from engine.request.spec import load_spec
    from engine.sinks import sink_for

    req = load_spec(REPO / "sweeps" / "llama-gqa.toml")
    q = make_query(["params_total <= 7e9"], "params_total", None, ["d_model", "n_layers"], req.quantities,
                   list(req.axes))
    ds = run(req, sink_for(query=q)).dataset
    full = run(req).dataset
    want = full.params_total.where((full.valid == 1) & (full.params_total <= 7e9)).max(["d_model", "n_layers"])
    np.testing.assert_array_equal(ds.params_total.values, want.values)  # NaN where nothing is feasible
    assert ds.n_feasible.sel(n_kv_heads=3).item() == 0  # 3 does not divide 32 heads: never valid


def test_shared_experts_count_in_total_and_active():
    from engine.symbolic.formulas.architectures import build

    plain = build("mixtral", FAMILIES["mixtral"].structure)
    shared = build("mixtral", FAMILIES["mixtral"].structure.with_options(shared_experts=True))
    values = {"d_model": 1024, "n_layers": 4, "n_heads": 16, "vocab": 1000, "d_ff": 512, "n_experts": 8,
              "top_k": 2, "n_shared_experts": 2, "d_ff_shared": 1408}
    extra = 4 * 2 * 3 * 1024 * 1408
    for q in ("params_total", "params_active", "params_experts"):
        assert int(shared.evaluate(q, values)) - int(plain.evaluate(q, values)) == extra, q
    # active: attention + norms + router + top_k experts + shared, per layer
    expert = 3 * 1024 * 512
    assert int(plain.evaluate("params_total", values)) - int(plain.evaluate("params_active", values)) == \
        4 * (8 - 2) * expert


def test_one_record_per_model_type():
    from engine.catalog.families import Family
    from engine.symbolic.formulas import architectures

    assert "gpt3" not in FAMILIES
    for model_type, family in FAMILIES.items():
        assert isinstance(family, Family) and family.model_type == model_type and family.source
        assert family.narayanan == (model_type == "gpt2"), model_type
        assert param_counts(from_hf_config({"model_type": model_type}))["total"] == \
            FIXTURE[f"default:{model_type}"]["total"]
    source = Path(architectures.__file__).read_text()
    assert not [t for t in FAMILIES if f'"{t}"' in source], "family knowledge belongs in engine/catalog/data/families.json"


def test_d_ff_default_comes_from_the_record():
    d = sympy.Symbol("d_model", integer=True, positive=True)
    for name in ("gpt2", "gptj", "bloom", "falcon"):
        assert formulas_of(architecture(name)).defaults["d_ff"] == 4 * d, name
    for name in ("opt", "gpt_neox", "llama", "mixtral", "phi"):
        assert "d_ff" not in formulas_of(architecture(name)).defaults, name


def test_a_new_family_is_one_record(monkeypatch):
    from engine.catalog.families import Family
    from engine.catalog.readers import llama_like
    from engine.symbolic.formulas.architectures import Structure
    from engine.catalog.model import formula_set

    d = sympy.Symbol("d_model", integer=True, positive=True)
    toy = Family("toy", Structure(mlp="gelu", norm="layernorm"), {
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256,
        "vocab_size": 100, "tie_word_embeddings": False}, llama_like(), "a toy", d_ff_default=4 * d)
    monkeypatch.setitem(FAMILIES, "toy", toy)
    try:
        arch = from_hf_config({"model_type": "toy", "hidden_size": 32}, "toy.json")
        assert arch.family == "toy" and arch.values["d_model"] == 32
        layer = 4 * 32 * 32 + 2 * 32 * 256 + 2 * 2 * 32  # q, k, v, o; two MLP matrices; two LayerNorms
        assert param_counts(arch)["total"] == 2 * 100 * 32 + 2 * layer + 2 * 32
        assert formulas_of(arch).source == "a toy"
    finally:
        formula_set.cache_clear()


def test_gpt3_is_gpt2_with_2048_positions(run_cli):
    from engine.catalog.model import flops_estimate, memory_options

    arch = architecture("gpt3")
    assert arch.family == "gpt2" and arch.values["n_positions"] == 2048 and "Brown" in arch.source
    assert param_counts(arch) == param_counts(architecture("gpt3-125m"))
    assert {architecture(n).family for n in PRESETS if n.startswith("gpt3")} == {"gpt2"}
    values = {"batch": 1, "seq_len": 2048}
    assert "flops_narayanan_step" in flops_estimate(arch, memory_options(), values)
    assert "flops_narayanan_step" not in flops_estimate(architecture("llama-2-7b"), memory_options(), values)
    r = run_cli("params", "--arch", "gpt3")
    assert r.returncode == 0 and r.stdout.startswith("gpt3 (gpt2): 125,226,240 parameters"), r.stderr


def test_presets_are_data_with_shared_texts_written_once():
    from engine.catalog.presets import DATA, load_presets

    data = json.loads((REPO / "engine" / "catalog" / DATA).read_text(encoding="utf-8"))
    assert load_presets(data) == dict(PRESETS)
    inline = [v for entry in data["presets"].values() for v in entry.values() if isinstance(v, str)]
    shared = set(data["shared"].values())
    assert len(inline) == len(set(inline)) and not shared & set(inline)
    refs = {v["shared"] for entry in data["presets"].values() for v in entry.values()
            if isinstance(v, dict) and "shared" in v}
    assert refs == set(data["shared"]), "every shared text is used"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "[tool.setuptools.package-data]" in pyproject and '"data/*.json"' in pyproject


@pytest.mark.parametrize("data,key,message", [
    ({"preset": {}}, "presets", '"presets" object is required'),
    ({"presets": {}, "extra": 1}, "extra", "unknown top-level keys"),
    ({"presets": {"x": {"config": {"model_type": "gpt2"}}}}, "presets.x.source", "missing"),
    ({"presets": {"x": {"config": {"model_type": "gpt2"}, "source": {"shared": "nope"}}}}, "presets.x.source",
     "unknown shared text 'nope'"),
    ({"shared": {"gpt2": "GPT-2"}, "presets": {"x": {"config": {"model_type": "gpt2"}, "source": {"shared": "gtp2"}}}},
     "presets.x.source", "unknown shared text 'gtp2'; defined: gpt2; did you mean 'gpt2'?"),
    ({"presets": {"x": {"config": {"n_embd": 8}, "source": "s"}}}, "presets.x.config", "model_type"),
    ({"presets": {"x": {"config": {"model_type": "gpt2"}, "source": "s", "publshed_params": 1}}}, "presets.x",
     "unknown fields publshed_params; valid: config, published_params, source, published_source, notes; did you "
     "mean 'published_params'?"),
    ({"presets": {"x": {"config": {"model_type": "gpt2"}, "source": "s", "published_params": True}}},
     "presets.x.published_params", "positive integer"),
    ({"presets": {"x": {"config": {"model_type": "gpt2"}, "source": 3}}}, "presets.x.source", "a text or"),
])
def test_bad_preset_data(data, key, message):
    from engine.catalog.presets import load_presets

    with pytest.raises(SpecError) as info:
        load_presets(data, "presets.json")
    assert info.value.key == key and message in info.value.message, info.value


_GPT2_RECORD = {"structure": {"tied_head": True}, "hf_defaults": {"n_embd": 8}, "reader": "gpt2", "source": "s",
                "architecture": "GPT2LMHeadModel"}


@pytest.mark.parametrize("data,key,message", [
    ({"family": {}}, "families", '"families" object is required'),
    ({"families": {}, "extra": 1}, "extra", "unknown top-level key"),
    ({"families": {"x": []}}, "families.x", "must be an object"),
    ({"families": {"x": {**_GPT2_RECORD, "sorce": "s"}}}, "families.x.sorce", "did you mean 'source'?"),
    ({"families": {"x": {k: v for k, v in _GPT2_RECORD.items() if k != "reader"}}}, "families.x.reader", "missing"),
    ({"families": {"x": {**_GPT2_RECORD, "reader": "gtp2"}}}, "families.x.reader",
     "unknown reader 'gtp2'; valid: gpt2, opt"),
    ({"families": {"x": {**_GPT2_RECORD, "reader_options": {"experts": True}}}}, "families.x.reader_options",
     "reader 'gpt2' takes no options; only llama_like, deepseek do"),
    ({"families": {"x": {**_GPT2_RECORD, "reader": "llama_like", "reader_options": {"moe": True}}}},
     "families.x.reader_options", "unexpected keyword argument 'moe'"),
    ({"families": {"x": {**_GPT2_RECORD, "structure": {"norm": "batchnorm"}}}}, "families.x.structure",
     "layernorm"),
    ({"families": {"x": {**_GPT2_RECORD, "d_ff_default": "4*d_modl"}}}, "families.x.d_ff_default",
     "must be an expression over d_model"),
    ({"families": {"x": {**_GPT2_RECORD, "source": ""}}}, "families.x.source", "non-empty text"),
    ({"families": {"x": {**_GPT2_RECORD, "narayanan": 1}}}, "families.x.narayanan", "true or false"),
])
def test_bad_family_data(data, key, message):
    from engine.catalog.families import load_families

    with pytest.raises(SpecError) as info:
        load_families(data, "families.json")
    assert info.value.key == key and message in info.value.message, info.value


def test_a_family_record_is_data():
    from engine.catalog import readers
    from engine.catalog.families import load_families

    record = {**_GPT2_RECORD, "reader": "llama_like", "reader_options": {"experts": True}, "d_ff_default": "4*d_model"}
    toy = load_families({"families": {"toy": record}})["toy"]
    assert toy.structure.tied_head and dict(toy.hf_defaults) == {"n_embd": 8} and toy.source == "s"
    assert toy.d_ff_default == 4 * sympy.Symbol("d_model", integer=True, positive=True) and not toy.narayanan
    assert FAMILIES["gpt2"].reader is readers.READERS["gpt2"] and FAMILIES["gpt2"].narayanan
