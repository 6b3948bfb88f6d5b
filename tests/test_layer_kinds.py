"""Layer kinds past the dense decoder: MLA, hybrids, MoE routing variants, expert parallelism.

Parameter counts of every new model type, variant and preset are checked against transformers in
``test_architectures.py`` (the shared fixture); this file holds the golden numbers, the layer-pattern
readers, the errors, the caches' shape rules and the sweeps over the new symbols.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy

from engine.catalog.families import from_hf_config
from engine.catalog.model import architecture, estimate_formulas, memory_estimate, memory_options, param_counts
from engine.errors import SpecError

REPO = Path(__file__).resolve().parents[1]
FIXTURE = json.loads((REPO / "tests" / "data" / "transformers_param_counts.json").read_text())["counts"]
NEW_TYPES = ("deepseek_v2", "deepseek_v3", "qwen2_moe", "qwen3_moe", "qwen3_next", "gpt_oss", "llama4_text", "gemma2",
             "gemma3_text", "olmo2", "olmoe", "stablelm", "starcoder2", "cohere", "nemotron_h", "granite", "glm4_moe")


def test_every_new_type_has_presets_and_variants_in_the_fixture():
    from engine.catalog.presets import PRESETS

    new = [n for n, p in PRESETS.items() if p.config["model_type"] in NEW_TYPES]
    assert len(new) >= 20
    assert {PRESETS[n].config["model_type"] for n in new} == set(NEW_TYPES)
    for t in NEW_TYPES:
        assert f"default:{t}" in FIXTURE
        assert any(k.startswith(f"variant:{t}-") for k in FIXTURE), t


def test_golden_numbers():
    v3 = param_counts(architecture("deepseek-v3"))
    assert v3["total"] == 671_026_404_352  # "671B total parameters" (DeepSeek-V3 report, abstract)
    assert v3["active"] == 37_552_282_624  # "37B activated for each token"
    # the MTP module transformers does not build: reported apart (11.6 B; the checkpoint's 685 B adds it and
    # its own embedding and head copies)
    assert v3["mtp"] == 11_610_067_968
    assert v3["total"] + v3["mtp"] + 2 * 129280 * 7168 == 684_489_830_400
    assert param_counts(architecture("gpt-oss-120b"))["active"] == 5_711_982_912  # "5.1B active" + embeddings
    assert param_counts(architecture("qwen3-30b-a3b"))["active"] == 3_353_032_704  # "3.3B activated"
    # Llama-3 8B's 128 KiB per token (bf16, 32 layers x 8 kv heads x 128 x 2 x 2 bytes) stays
    arch = architecture("meta-llama-3-8b")
    fs = estimate_formulas(arch.family, arch.structure, memory_options(mode="inference", precision="bf16"))
    assert fs.evaluate("kv_cache_per_token", {**arch.values, "batch": 1, "seq_len": 1}) == 131072


def test_layer_counts_follow_the_config_patterns():
    def values(name):
        return architecture(name).values

    assert values("gemma-2-9b")["full_attention_interval"] == 2
    assert values("gemma-3-12b-it")["full_attention_interval"] == 6
    assert values("qwen3-next-80b-a3b")["full_attention_interval"] == 4
    assert values("llama-4-maverick-17b-128e-instruct")["moe_layer_interval"] == 2
    assert values("deepseek-v3").get("first_k_dense_replace") == 3
    v = values("nemotron-h-56b-base-8k")
    assert v["n_mamba_layers"] + v["n_full_attention_layers"] < v["n_layers"]
    # an irregular list states counts; sweeping n_layers then keeps them and the rest fills
    irregular = {"model_type": "gemma2", "num_hidden_layers": 5, "hidden_size": 64, "num_attention_heads": 4,
                 "head_dim": 16, "intermediate_size": 128, "vocab_size": 100,
                 "layer_types": ["full_attention", "sliding_attention", "sliding_attention", "full_attention",
                                 "full_attention"]}
    a = from_hf_config(irregular)
    assert a.values["n_full_attention_layers"] == 3 and "full_attention_interval" not in a.values


@pytest.mark.parametrize("config,field,message", [
    ({"model_type": "gemma2", "num_hidden_layers": 2, "layer_types": ["full_attention", "mamba"]}, "layer_types",
     "unknown entry 'mamba'"),
    ({"model_type": "gemma2", "num_hidden_layers": 3, "layer_types": ["full_attention"]}, "layer_types",
     "has 1 entries; num_hidden_layers is 3"),
    ({"model_type": "qwen3_next", "num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"]},
     "layer_types", "unknown entry 'sliding_attention'"),
    ({"model_type": "nemotron_h", "hybrid_override_pattern": "M*X-"}, "hybrid_override_pattern",
     "unknown character 'X'"),
    ({"model_type": "nemotron_h", "hybrid_override_pattern": "MM--"}, "hybrid_override_pattern",
     "needs Mamba-2 (M) and attention (*) layers"),
    ({"model_type": "gemma2", "hidden_size": 100, "num_attention_heads": 8}, "hidden_size",
     "not a multiple of num_attention_heads"),
    ({"model_type": "deepseek_v3", "first_k_dense_replace": None}, "first_k_dense_replace", "non-negative integer"),
    ({"model_type": "gpt_oss", "num_experts_per_tok": 200}, "num_experts_per_tok", "exceeds num_local_experts"),
    ({"model_type": "llama4_text", "num_hidden_layers": 4, "no_rope_layers": [1, 0]}, "no_rope_layers",
     "must list 4 entries"),
])
def test_fields_transformers_would_reject(config, field, message):
    with pytest.raises(SpecError) as exc:
        from_hf_config(config, "config.json")
    assert exc.value.key == field and message in exc.value.message


def test_params_prints_the_mtp_module_apart(run_cli):
    r = run_cli("params", "--arch", "deepseek-v3")
    assert "11,610,067,968  multi-token prediction: not built by transformers, not in the total" in r.stdout
    assert json.loads(run_cli("params", "--arch", "deepseek-v3", "--json").stdout)["mtp"] == 11_610_067_968
    assert "mtp" not in json.loads(run_cli("params", "--arch", "mixtral-8x7b", "--json").stdout)


def test_a_bad_layer_types_entry_is_one_line_exit_2(run_cli, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "gemma2", "num_hidden_layers": 2,
                                "layer_types": ["full_attention", "global"]}))
    r = run_cli("params", "--hf-config", str(path))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "layer_types" in r.stderr and "'global'" in r.stderr


def kv_bytes(name, seq_len, batch=1, **options):
    arch = architecture(name)
    out = memory_estimate(arch, memory_options(mode="inference", precision="bf16", **options),
                          {"batch": batch, "seq_len": seq_len})
    return out["breakdown"]


def test_cache_shapes_per_layer_kind():
    # gpt-oss-20b: 12 full + 12 sliding layers (window 128 keeps 127 tokens), 8 kv heads x 64, bf16
    per_layer_token = 2 * 8 * 64 * 2
    assert kv_bytes("gpt-oss-20b", 100)["kv_cache"] == 24 * 100 * per_layer_token
    assert kv_bytes("gpt-oss-20b", 4096)["kv_cache"] == (12 * 4096 + 12 * 127) * per_layer_token
    # DeepSeek-V3: the latent, 512 + 64 per token and layer, for all 61 layers; expanded: 128 heads x (192 + 128)
    assert kv_bytes("deepseek-v3", 1000)["kv_cache"] == 61 * 1000 * 576 * 2
    assert kv_bytes("deepseek-v3", 1000, kv_layout="expanded")["kv_cache"] == 61 * 1000 * 128 * 320 * 2
    # Nemotron-H: attention layers grow, Mamba-2 states do not (conv in bf16, ssm state in fp32)
    short, long = kv_bytes("nemotron-h-56b-base-8k", 10), kv_bytes("nemotron-h-56b-base-8k", 10_000)
    assert long["kv_cache"] == 1000 * short["kv_cache"]
    assert long["state_cache"] == short["state_cache"] > 0
    assert "state_cache" not in kv_bytes("meta-llama-3-8b", 10)


def test_kv_layout_errors(run_cli):
    r = run_cli("memory", "--arch", "meta-llama-3-8b", "--mode", "inference", "--batch", "1", "--seq-len", "8",
                "--kv-layout", "expanded")
    assert r.returncode == 2 and "multi-head latent attention" in r.stderr
    r = run_cli("memory", "--arch", "deepseek-v3", "--batch", "1", "--seq-len", "8", "--kv-layout", "expanded")
    assert r.returncode == 2 and "applies to mode inference" in r.stderr


def test_inference_json_reports_kv_and_state_caches_apart(run_cli):
    r = run_cli("memory", "--arch", "qwen3-next-80b-a3b", "--mode", "inference", "--batch", "2", "--seq-len", "4096",
                "--json")
    out = json.loads(r.stdout)
    assert set(out["breakdown"]) == {"weights", "kv_cache", "state_cache", "working"}
    # 36 gated-DeltaNet layers: conv (2 x 16 x 128 + 32 x 128) x 4 in bf16, recurrent 32 x 128 x 128 in fp32
    per_layer = (2 * 16 * 128 + 32 * 128) * 4 * 2 + 32 * 128 * 128 * 4
    assert out["breakdown"]["state_cache"] == 2 * 36 * per_layer
    assert out["breakdown"]["kv_cache"] == 2 * 12 * 4096 * 2 * 2 * 256 * 2


def test_expert_parallelism_shards_routed_experts_and_their_states():
    arch = architecture("mixtral-8x7b")
    opts = memory_options(memory_model="korthikanti", precision="bf16", zero=1)
    base = {"batch": 1, "seq_len": 1024, "dp": 8, "tp": 2}
    one = memory_estimate(arch, opts, base)["breakdown"]
    ep = memory_estimate(arch, opts, {**base, "ep": 4, "etp": 1})["breakdown"]
    p = param_counts(arch)
    fs = estimate_formulas(arch.family, arch.structure, opts)
    routed = int(fs.evaluate("params_routed_experts", arch.values))
    assert one["weights"] == p["total"] * 2 // 2  # tp 2, bf16
    assert ep["weights"] == (p["total"] - routed) * 2 // 2 + routed * 2 // 4  # routed over ep x etp = 4
    # the distributed optimizer: dense over dp, routed over the expert data-parallel group dp x tp / (ep x etp) = 4
    assert ep["optimizer"] == one["optimizer"]  # 16 devices share each state in both layouts
    with pytest.raises(SpecError, match="ep must divide n_experts"):
        memory_estimate(arch, opts, {**base, "ep": 3})
    with pytest.raises(SpecError, match="ep x etp must divide dp x tp"):
        memory_estimate(arch, opts, {**base, "ep": 8, "etp": 4})


def test_ep_needs_experts(run_cli):
    r = run_cli("memory", "--arch", "llama-2-7b", "--batch", "1", "--seq-len", "8", "--ep", "2")
    assert r.returncode == 2 and "expert parallelism applies to MoE models" in r.stderr


def test_korthikanti_moe_layers_count_dispatched_tokens():
    arch = architecture("deepseek-v3")
    opts = memory_options(memory_model="korthikanti", precision="bf16", attention="flash")
    fs = estimate_formulas(arch.family, arch.structure, opts)
    vals = {**arch.values, "batch": 1, "seq_len": 4096}
    k8 = fs.evaluate_exact("mem_activations", vals)
    k4 = fs.evaluate_exact("mem_activations", {**vals, "top_k": 4})
    # 58 MoE layers: 4 fewer routed experts per token, each 6 bytes per hidden unit and 2 per input element
    assert k8 - k4 == 58 * 4 * 4096 * (6 * 2048 + 2 * 7168)


def test_training_refusals_keep_states_and_flops(run_cli):
    r = run_cli("memory", "--arch", "nemotron-h-56b-base-8k", "--batch", "1", "--seq-len", "8")
    assert r.returncode == 2 and "Mamba-2" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("flops", "--arch", "nemotron-h-56b-base-8k", "--batch", "1", "--seq-len", "8", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["flops_token"] > 0
    r = run_cli("memory", "--arch", "deepseek-v3", "--batch", "1", "--seq-len", "8")
    assert r.returncode == 2 and "use memory_model korthikanti" in r.stderr


def test_sweep_over_the_new_symbols_matches_sympy(tmp_path):
    """n_experts, top_k, kv_lora_rank, sliding_window and the fraction of global layers (1 /
    full_attention_interval) are sweepable; the compiled kernel agrees with exact sympy evaluation."""
    from engine.request.spec import load_spec
    from engine.runtime.sweep import run

    spec = tmp_path / "s.toml"
    spec.write_text("""
[sweep]
arch = "gemma-3-12b-it"
quantities = ["params_total", "mem_kv_cache"]
[options]
mode = "inference"
[fixed]
batch = 2
seq_len = 8192
[axes]
sliding_window = [512, 1024, 4096]
full_attention_interval = [1, 2, 6]
""")
    req = load_spec(spec)
    ds = run(req).dataset
    arch = architecture("gemma-3-12b-it")
    fs = req.formulas
    for w in (512, 1024, 4096):
        for i in (1, 2, 6):
            vals = {**arch.values, "batch": 2, "seq_len": 8192, "sliding_window": w, "full_attention_interval": i,
                    "bits_kv": 16}
            got = ds["mem_kv_cache"].sel(sliding_window=w, full_attention_interval=i).item()
            assert got == float(fs.evaluate_exact("mem_kv_cache", vals))
    # one global layer in 6: 8 of 48 layers keep 8192 tokens, 40 keep 1023
    kv = ds["mem_kv_cache"].sel(sliding_window=1024, full_attention_interval=6).item()
    assert kv == 2 * (8 * 8192 + 40 * 1023) * 2 * 8 * 256 * 2
    assert np.all(np.diff(ds["mem_kv_cache"].sel(sliding_window=1024).values) < 0)  # fewer global layers, less

    spec.write_text("""
[sweep]
arch = "deepseek-v3"
quantities = ["params_total", "params_active", "kv_cache_per_token"]
[options]
mode = "inference"
[axes]
n_experts = [64, 256]
top_k = [2, 8]
kv_lora_rank = [256, 512]
""")
    req = load_spec(spec)
    ds = run(req).dataset
    arch = architecture("deepseek-v3")
    for n in (64, 256):
        for k in (2, 8):
            for r in (256, 512):
                vals = {**arch.values, "n_experts": n, "top_k": k, "kv_lora_rank": r, "bits_kv": 16}
                point = ds.sel(n_experts=n, top_k=k, kv_lora_rank=r)
                assert point["params_active"].item() == int(req.formulas.evaluate_exact("params_active", vals))
                assert point["kv_cache_per_token"].item() == 61 * (r + 64) * 2
    assert ds.sel(n_experts=256, top_k=8, kv_lora_rank=512)["params_total"].item() == 671_026_404_352


def test_layer_count_inputs_may_be_zero_but_not_negative(tmp_path):
    from engine.request.spec import load_spec

    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\narch = "deepseek-v3"\nquantities = ["params_total"]\n'
                    '[axes]\nfirst_k_dense_replace = [0, 3]\n')
    req = load_spec(spec)
    assert req.axes["first_k_dense_replace"].tolist() == [0, 3]
    spec.write_text('[sweep]\narch = "deepseek-v3"\nquantities = ["params_total"]\n'
                    '[axes]\nfirst_k_dense_replace = [-1, 3]\n')
    with pytest.raises(SpecError, match="non-negative integer"):
        load_spec(spec)


def test_formulas_latex_for_deepseek_v3(run_cli):
    r = run_cli("formulas", "--arch", "deepseek-v3", "--format", "latex")
    assert r.returncode == 0
    tex = r.stdout
    for needed in (r"d_{c}", r"d_{h}^{R}", r"n_{\mathrm{moe}}", r"P_{\mathrm{MTP}}", "DeepSeek-V2 (DeepSeek-AI 2024)"):
        assert needed in tex, needed


def test_symbolic_mla_matches_its_definition():
    """MLA parameters for DeepSeek-V3's sizes, written out by hand from DeepSeek-V2 §2.1."""
    arch = architecture("deepseek-v3")
    from engine.catalog.model import formulas_of

    got = formulas_of(arch).evaluate("params_attention_layer", arch.values)
    d, H, qr, kr, nope, rope, v = 7168, 128, 1536, 512, 128, 64, 128
    want = d * qr + qr + qr * H * (nope + rope) + d * (kr + rope) + kr + kr * H * (nope + v) + H * v * d
    assert got == want == sympy.Integer(187_107_328)


CACHE = json.loads((REPO / "tests" / "data" / "transformers_cache_bytes.json").read_text())


def test_the_cache_fixture_covers_every_new_type_short_and_long():
    cases = CACHE["cases"]
    assert not CACHE["meta"].get("failures")
    for t in (*NEW_TYPES, "llama", "mistral"):
        mine = [c for c in cases.values() if c["model_type"] == t]
        lengths = {c["seq_len"] for c in mine}
        assert len(lengths) >= 2, t  # a short and a long prefill (longer than every window of the config)
    from engine.catalog.presets import PRESETS

    new = {n for n, p in PRESETS.items() if p.config["model_type"] in NEW_TYPES}
    covered = {k.removeprefix("preset:").removesuffix("-long") for k in cases if k.startswith("preset:")}
    assert new <= covered, sorted(new - covered)


@pytest.mark.parametrize("name", sorted(CACHE["cases"]))
def test_cache_bytes_equal_what_transformers_allocates(name):
    """KV and recurrent-state bytes after one forward of seq_len tokens, exactly as transformers 5.24's
    DynamicCache holds them (benchmarks/measure_cache.py: widths that do not shape the cache shrunk)."""
    case = CACHE["cases"][name]
    arch = from_hf_config(case["config"], name)
    precision = {"float32": "fp32", "bfloat16": "bf16"}[case["dtype"]]
    fs = estimate_formulas(arch.family, arch.structure, memory_options(mode="inference", precision=precision))
    values = {**arch.values, "batch": case["batch"], "seq_len": case["seq_len"]}
    got = fs.evaluate_exact("mem_kv_cache", values)
    if "mem_state_cache" in fs.quantities:
        got += fs.evaluate_exact("mem_state_cache", values)
    assert got == case["total_bytes"]
