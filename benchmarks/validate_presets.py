"""Count every preset's parameters with the real implementation (transformers, meta device).

    python benchmarks/validate_presets.py [--out tests/data/transformers_param_counts.json] [--only NAME ...]

Needs torch and transformers (`pip install torch==2.13.0 transformers`; nothing is downloaded:
each model is built from its config dict (engine/catalog/data/presets.json for presets) on the meta device,
so no weights are allocated). It counts every preset, the default configuration of every model_type
(the types of ``FAMILIES`` plus ``NEW_TYPES``, the types being added) and ``VARIANTS``. The tests compare the
engine's exact counts with this file.

Per entry (``counts[name]``):

    total        distinct parameters (tied tensors once).
    active       parameters one token uses, for models that instantiate routed experts (None otherwise):
                 every parameter except routed experts, plus top_k / n_experts of each routed-expert
                 tensor. Routers (and their biases), shared experts, shared-expert gates, dense-MLP
                 layers inside MoE models (deepseek/glm4_moe first_k_dense_replace, qwen*_moe
                 mlp_only_layers / decoder_sparse_step, llama4 interleave_moe_layer_step, nemotron_h
                 '-' layers), MoE latent projections and attention sinks count in full. Routed-expert
                 tensors (3-D, leading dimension n_experts: fused gate_up_proj, down_proj, gpt_oss's
                 gate_up_proj_bias / down_proj_bias) count numel // n_experts * top_k; the leading
                 dimension is asserted to be n_experts, so the arithmetic is exact integers.
                 None also when the config leaves top_k unset (deepseek_v2's default
                 num_experts_per_tok is null: the model builds, but routing is undefined).
    expert_params  the routed-expert parameters (all experts), or None.
    n_experts, top_k  the routed-expert count and experts per token (MoE only).
    breakdown    parameters by name category (all keys always present; sums to total):
                 embedding   token embedding (+ OPT's project_in / project_out)
                 positions   learned position table (GPT-2 wpe, OPT embed_positions)
                 attention   q/k/v/o (fused or not) + biases, MLA projections and their norms
                             (q_a_layernorm, kv_a_layernorm), q_norm / k_norm / q_layernorm /
                             k_layernorm, attention sinks
                 ssm         Mamba-2 mixer (nemotron_h) and Qwen3-Next linear-attention tensors
                 mlp         dense MLPs (incl. the dense layers of MoE models; MoE latent projections)
                 router      router / gate weights and biases (e_score_correction_bias when a parameter)
                 shared_experts  shared experts and shared_expert_gate
                 experts     routed experts
                 norms       per-layer norms, the final norm, BLOOM's embedding norm
                 head        lm_head (+ bias) when not tied
                 A parameter name no rule matches raises: nothing is silently misfiled.
    layers       {"total": layers built, "moe": layers with routed experts, "dense_mlp": layers with
                 a dense MLP, "types": {kind: count} from config.layer_types (nemotron_h's
                 layers_block_type, which hybrid_override_pattern sets), "pattern": {char: count} of
                 hybrid_override_pattern when the config gives one}.
    mtp_not_instantiated  num_nextn_predict_layers, for configs that have it (deepseek_v3, glm4_moe,
                 nemotron_h): transformers builds no multi-token-prediction layers, so they are in
                 neither total nor active.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Model types being added to engine.catalog.families; counted whether or not FAMILIES has them yet.
NEW_TYPES = ("deepseek_v2", "deepseek_v3", "qwen2_moe", "qwen3_moe", "qwen3_next", "gpt_oss", "llama4_text",
             "gemma2", "gemma3_text", "olmo2", "olmoe", "stablelm", "starcoder2", "cohere", "nemotron_h",
             "granite", "glm4_moe")

BREAKDOWN = ("embedding", "positions", "attention", "ssm", "mlp", "router", "shared_experts", "experts", "norms",
             "head")

# Small shared pieces of the new types' variants.
_DSV3 = {"model_type": "deepseek_v3", "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 4,
         "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 512, "moe_intermediate_size": 96,
         "n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "kv_lora_rank": 64,
         "q_lora_rank": 96, "qk_rope_head_dim": 16, "qk_nope_head_dim": 32, "v_head_dim": 48,
         "first_k_dense_replace": 1, "n_shared_experts": 1}
_DSV2 = {**_DSV3, "model_type": "deepseek_v2", "n_group": None, "topk_group": None, "n_routed_experts": 16,
         "num_experts_per_tok": 6, "q_lora_rank": None, "n_shared_experts": 2}
_QWEN_MOE = {"vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 6, "num_attention_heads": 8,
             "num_key_value_heads": 2, "intermediate_size": 640, "moe_intermediate_size": 96, "num_experts": 12,
             "num_experts_per_tok": 3}
_QWEN_NEXT = {"model_type": "qwen3_next", "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 8,
              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64, "intermediate_size": 512,
              "moe_intermediate_size": 64, "shared_expert_intermediate_size": 128, "num_experts": 16,
              "num_experts_per_tok": 4, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
              "linear_key_head_dim": 32, "linear_value_head_dim": 48}
_LLAMA4 = {"model_type": "llama4_text", "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 4,
           "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 192,
           "intermediate_size_mlp": 512, "num_local_experts": 4, "num_experts_per_tok": 1}
_GEMMA = {"vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 6, "num_attention_heads": 4,
          "num_key_value_heads": 2, "head_dim": 80, "intermediate_size": 768}
_SMALL = {"vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 3, "num_attention_heads": 8,
          "num_key_value_heads": 8, "intermediate_size": 704}
_NEMOTRON_H = {"model_type": "nemotron_h", "vocab_size": 1000, "hidden_size": 256, "num_attention_heads": 8,
               "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 640, "ssm_state_size": 32,
               "mamba_num_heads": 8, "mamba_head_dim": 64, "n_groups": 2, "conv_kernel": 4}
_GLM4_MOE = {"model_type": "glm4_moe", "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 5,
             "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 48, "intermediate_size": 704,
             "moe_intermediate_size": 96, "n_routed_experts": 8, "num_experts_per_tok": 2, "n_shared_experts": 1}
# Configurations that exercise each structural option the presets may not: small sizes, real code paths.
VARIANTS = {
    "variant:opt-projected-no-final-ln": {"model_type": "opt", "hidden_size": 1024, "num_hidden_layers": 4,
                                          "num_attention_heads": 16, "ffn_dim": 4096, "word_embed_proj_dim": 512,
                                          "do_layer_norm_before": False, "vocab_size": 50272},
    "variant:opt-no-bias-untied": {"model_type": "opt", "hidden_size": 256, "num_hidden_layers": 2,
                                   "num_attention_heads": 4, "ffn_dim": 1024, "enable_bias": False,
                                   "tie_word_embeddings": False},
    "variant:gpt2-untied": {"model_type": "gpt2", "n_embd": 256, "n_layer": 3, "n_head": 4, "n_inner": 1000,
                            "tie_word_embeddings": False},
    "variant:neox-no-attn-bias-tied": {"model_type": "gpt_neox", "hidden_size": 512, "num_hidden_layers": 2,
                                       "num_attention_heads": 8, "intermediate_size": 2048, "attention_bias": False,
                                       "tie_word_embeddings": True},
    "variant:llama-biases-gqa-headdim": {"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 3,
                                         "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 96,
                                         "intermediate_size": 1376, "attention_bias": True, "mlp_bias": True,
                                         "tie_word_embeddings": True},
    "variant:qwen3-attention-bias": {"model_type": "qwen3", "hidden_size": 512, "num_hidden_layers": 2,
                                     "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 64,
                                     "intermediate_size": 1536, "attention_bias": True, "tie_word_embeddings": True},
    "variant:qwen2-tied": {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 2,
                           "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864,
                           "tie_word_embeddings": True},
    "variant:gemma-mqa": {"model_type": "gemma", "hidden_size": 2048, "num_hidden_layers": 2,
                          "num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256,
                          "intermediate_size": 16384},
    "variant:phi-qk-layernorm-gqa": {"model_type": "phi", "hidden_size": 512, "num_hidden_layers": 2,
                                     "num_attention_heads": 8, "num_key_value_heads": 4, "intermediate_size": 2048,
                                     "qk_layernorm": True},
    "variant:falcon-new-architecture": {"model_type": "falcon", "hidden_size": 512, "num_hidden_layers": 2,
                                        "num_attention_heads": 8, "num_kv_heads": 2,
                                        "new_decoder_architecture": True},
    "variant:falcon-one-ln-new-architecture": {"model_type": "falcon", "hidden_size": 512, "num_hidden_layers": 2,
                                               "num_attention_heads": 8, "num_kv_heads": 2,
                                               "new_decoder_architecture": True, "num_ln_in_parallel_attn": 1},
    "variant:falcon-sequential-bias-alibi": {"model_type": "falcon", "hidden_size": 512, "num_hidden_layers": 2,
                                             "num_attention_heads": 8, "multi_query": False, "parallel_attn": False,
                                             "bias": True, "alibi": True, "tie_word_embeddings": False},
    "variant:mixtral-top1-of-4": {"model_type": "mixtral", "hidden_size": 512, "num_hidden_layers": 2,
                                  "num_attention_heads": 8, "num_key_value_heads": 2, "intermediate_size": 1024,
                                  "num_local_experts": 4, "num_experts_per_tok": 1, "tie_word_embeddings": True},
    "variant:bloom-untied": {"model_type": "bloom", "hidden_size": 256, "n_layer": 2, "n_head": 4,
                             "vocab_size": 1000, "tie_word_embeddings": False},
    "variant:gptj-tied": {"model_type": "gptj", "n_embd": 256, "n_layer": 2, "n_head": 4, "rotary_dim": 16,
                          "vocab_size": 1000, "tie_word_embeddings": True},
    # --- the new model types: each structural option at small sizes ---
    "variant:deepseek_v3-q-lora-dense-1-shared-1": dict(_DSV3),
    "variant:deepseek_v3-no-q-lora": {**_DSV3, "q_lora_rank": None},
    "variant:deepseek_v3-dense-2-shared-2": {**_DSV3, "first_k_dense_replace": 2, "n_shared_experts": 2},
    "variant:deepseek_v3-all-moe-no-shared": {**_DSV3, "first_k_dense_replace": 0, "n_shared_experts": 0},
    "variant:deepseek_v3-tied-no-mtp": {**_DSV3, "tie_word_embeddings": True, "num_nextn_predict_layers": 0},
    "variant:deepseek_v2-lite-no-q-lora": dict(_DSV2),
    "variant:deepseek_v2-q-lora-all-moe-shared-1": {**_DSV2, "q_lora_rank": 96, "first_k_dense_replace": 0,
                                                    "n_shared_experts": 1, "num_experts_per_tok": 2},
    "variant:deepseek_v2-group-limited-dense-2": {**_DSV2, "topk_method": "group_limited_greedy", "n_group": 4,
                                                  "topk_group": 2, "first_k_dense_replace": 2},
    "variant:qwen2_moe-sparse-step-2": {"model_type": "qwen2_moe", **_QWEN_MOE, "decoder_sparse_step": 2,
                                        "shared_expert_intermediate_size": 384},
    "variant:qwen2_moe-mlp-only-layers-tied": {"model_type": "qwen2_moe", **_QWEN_MOE, "mlp_only_layers": [0, 3],
                                               "shared_expert_intermediate_size": 160, "tie_word_embeddings": True},
    "variant:qwen2_moe-no-qkv-bias-step-3": {"model_type": "qwen2_moe", **_QWEN_MOE, "qkv_bias": False,
                                             "decoder_sparse_step": 3, "mlp_only_layers": [2]},
    "variant:qwen3_moe-mlp-only-layers": {"model_type": "qwen3_moe", **_QWEN_MOE, "head_dim": 48,
                                          "mlp_only_layers": [1, 4]},
    "variant:qwen3_moe-sparse-step-2-tied-bias": {"model_type": "qwen3_moe", **_QWEN_MOE, "decoder_sparse_step": 2,
                                                  "attention_bias": True, "tie_word_embeddings": True},
    "variant:qwen3_next-interval-2": {**_QWEN_NEXT, "full_attention_interval": 2},
    "variant:qwen3_next-interval-4-mlp-only": {**_QWEN_NEXT, "full_attention_interval": 4, "mlp_only_layers": [5]},
    "variant:gpt_oss-small": {"model_type": "gpt_oss", "vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 4,
                              "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 40,
                              "intermediate_size": 192, "num_local_experts": 8, "num_experts_per_tok": 2},
    "variant:gpt_oss-no-attn-bias-tied": {"model_type": "gpt_oss", "vocab_size": 1000, "hidden_size": 256,
                                          "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4,
                                          "head_dim": 64, "intermediate_size": 320, "num_local_experts": 6,
                                          "num_experts_per_tok": 3, "attention_bias": False,
                                          "tie_word_embeddings": True},
    "variant:llama4_text-interleave-2-qk-norm": {**_LLAMA4, "interleave_moe_layer_step": 2, "use_qk_norm": True},
    "variant:llama4_text-interleave-1-no-qk-norm-bias": {**_LLAMA4, "interleave_moe_layer_step": 1,
                                                         "use_qk_norm": False, "attention_bias": True,
                                                         "tie_word_embeddings": True},
    "variant:gemma2-untied-layer-types": {"model_type": "gemma2", **_GEMMA, "tie_word_embeddings": False,
                                          "layer_types": ["sliding_attention", "sliding_attention", "full_attention",
                                                          "sliding_attention", "full_attention", "full_attention"]},
    "variant:gemma2-tied-bias": {"model_type": "gemma2", **_GEMMA, "tie_word_embeddings": True,
                                 "attention_bias": True},
    "variant:gemma3_text-tied-layer-types": {"model_type": "gemma3_text", **_GEMMA, "tie_word_embeddings": True,
                                             "layer_types": ["sliding_attention"] * 5 + ["full_attention"]},
    "variant:gemma3_text-untied": {"model_type": "gemma3_text", **_GEMMA, "tie_word_embeddings": False},
    "variant:olmo2-gqa-untied": {"model_type": "olmo2", **_SMALL, "num_key_value_heads": 2},
    "variant:olmo2-tied-bias": {"model_type": "olmo2", **_SMALL, "attention_bias": True, "tie_word_embeddings": True},
    "variant:olmoe-top2-of-8": {"model_type": "olmoe", **_SMALL, "num_key_value_heads": 4, "num_experts": 8,
                                "num_experts_per_tok": 2, "intermediate_size": 96},
    "variant:stablelm-qk-ln-qkv-bias-parallel": {"model_type": "stablelm", **_SMALL, "qk_layernorm": True,
                                                 "use_qkv_bias": True, "use_parallel_residual": True},
    "variant:stablelm-gqa-tied": {"model_type": "stablelm", **_SMALL, "num_key_value_heads": 2,
                                  "tie_word_embeddings": True},
    "variant:starcoder2-no-bias": {"model_type": "starcoder2", **_SMALL, "num_key_value_heads": 2, "use_bias": False},
    "variant:starcoder2-untied-mha": {"model_type": "starcoder2", **_SMALL, "num_key_value_heads": 8,
                                      "tie_word_embeddings": False},
    "variant:cohere-qk-norm-gqa": {"model_type": "cohere", **_SMALL, "num_key_value_heads": 2, "use_qk_norm": True},
    "variant:cohere-untied-bias": {"model_type": "cohere", **_SMALL, "attention_bias": True,
                                   "tie_word_embeddings": False},
    "variant:nemotron_h-pattern-M-star-dash": {**_NEMOTRON_H, "hybrid_override_pattern": "M-M*-M-"},
    "variant:nemotron_h-pattern-MEM*E": {**_NEMOTRON_H, "hybrid_override_pattern": "MEM*E-", "n_routed_experts": 8,
                                         "num_experts_per_tok": 2, "moe_intermediate_size": 96,
                                         "moe_shared_expert_intermediate_size": 160},
    "variant:nemotron_h-latent-moe-bias-tied": {**_NEMOTRON_H, "hybrid_override_pattern": "ME*E",
                                                "n_routed_experts": 6, "num_experts_per_tok": 3,
                                                "moe_intermediate_size": 64, "moe_shared_expert_intermediate_size": 96,
                                                "moe_latent_size": 128, "mlp_bias": True, "attention_bias": True,
                                                "use_conv_bias": False, "mamba_proj_bias": True,
                                                "tie_word_embeddings": True},
    "variant:granite-gqa-biases": {"model_type": "granite", **_SMALL, "num_key_value_heads": 2,
                                   "attention_bias": True, "mlp_bias": True},
    "variant:granite-tied": {"model_type": "granite", **_SMALL, "tie_word_embeddings": True},
    "variant:glm4_moe-dense-2-qk-norm": {**_GLM4_MOE, "first_k_dense_replace": 2, "use_qk_norm": True},
    "variant:glm4_moe-dense-0-bias-shared-2": {**_GLM4_MOE, "first_k_dense_replace": 0, "attention_bias": True,
                                               "n_shared_experts": 2},
}

# Parameter names outside the decoder layers (exact matches).
_TOP_LEVEL = {
    "embedding": ("model.embed_tokens.weight", "model.embeddings.weight", "transformer.wte.weight",
                  "transformer.word_embeddings.weight", "gpt_neox.embed_in.weight",
                  "model.decoder.embed_tokens.weight", "model.decoder.project_in.weight",
                  "model.decoder.project_out.weight"),
    "positions": ("transformer.wpe.weight", "model.decoder.embed_positions.weight"),
    "norms": ("model.norm.weight", "model.norm.bias", "model.norm_f.weight", "model.norm_f.bias",
              "transformer.ln_f.weight", "transformer.ln_f.bias", "gpt_neox.final_layer_norm.weight",
              "gpt_neox.final_layer_norm.bias", "model.decoder.final_layer_norm.weight",
              "model.decoder.final_layer_norm.bias", "model.final_layernorm.weight", "model.final_layernorm.bias",
              "transformer.word_embeddings_layernorm.weight", "transformer.word_embeddings_layernorm.bias"),
    "head": ("lm_head.weight", "lm_head.bias", "embed_out.weight"),
}
_TOP = {name: cat for cat, names in _TOP_LEVEL.items() for name in names}
_LAYER = re.compile(r"^(?:model\.decoder\.|model\.|transformer\.|gpt_neox\.)(?:layers|h)\.(\d+)\.(.+)$")
_W = r"\.(?:weight|bias)$"
# Names inside a decoder layer, first match wins. FFN containers: mlp (most), feed_forward (llama4), mixer (nemotron_h).
_RULES = [(re.compile(p), cat) for p, cat in [
    (r"^(?:self_attn|self_attention|attn|attention)\.", "attention"),  # q/k/v/o, MLA, q/k norms, sinks
    (r"^linear_attn\.", "ssm"),  # Qwen3-Next gated DeltaNet
    (r"^(?:mlp|feed_forward|mixer)\.experts\.[A-Za-z_]+$", "experts"),  # stacked routed experts
    (r"^(?:mlp|feed_forward|mixer)\.(?:shared_experts?|shared_expert_gate)\.", "shared_experts"),
    (r"^(?:mlp|mixer)\.gate\.(?:weight|bias|e_score_correction_bias)$", "router"),
    (r"^(?:mlp|feed_forward)\.router" + _W, "router"),
    (r"^mixer\.(?:in_proj|conv1d|out_proj|norm)" + _W, "ssm"),  # nemotron_h Mamba-2
    (r"^mixer\.(?:dt_bias|A_log|D)$", "ssm"),
    (r"^mixer\.(?:q_proj|k_proj|v_proj|o_proj)" + _W, "attention"),  # nemotron_h '*'
    (r"^mixer\.(?:up_proj|down_proj)" + _W, "mlp"),  # nemotron_h '-'
    (r"^mixer\.(?:fc1|fc2)_latent_proj" + _W, "mlp"),  # nemotron_h MoE latent projections (every token)
    (r"^mlp\.(?:gate_proj|up_proj|down_proj|gate_up_proj|c_fc|c_proj|fc1|fc2|fc_in|fc_out|dense_h_to_4h|"
     r"dense_4h_to_h)" + _W, "mlp"),
    (r"^feed_forward\.(?:gate_proj|up_proj|down_proj)" + _W, "mlp"),  # llama4 dense layers
    (r"^(?:fc1|fc2)" + _W, "mlp"),  # OPT
    (r"^(?:input_layernorm|post_attention_layernorm|pre_feedforward_layernorm|post_feedforward_layernorm|ln_1|"
     r"ln_2|ln_attn|ln_mlp|self_attn_layer_norm|final_layer_norm|norm)" + _W, "norms"),
]]


def classify(name: str) -> tuple[str, int | None]:
    """(category, layer index or None) of one parameter name; raises on a name no rule knows."""
    if name in _TOP:
        return _TOP[name], None
    m = _LAYER.match(name)
    if m:
        for rule, cat in _RULES:
            if rule.search(m.group(2)):
                return cat, int(m.group(1))
    raise ValueError(f"unclassified parameter {name!r}: add a rule to benchmarks/validate_presets.py")


def _n_experts(cfg) -> int | None:
    values = {getattr(cfg, f) for f in ("num_local_experts", "num_experts", "n_routed_experts")
              if getattr(cfg, f, None) is not None}
    assert len(values) <= 1, f"conflicting expert counts {values}"
    return values.pop() if values else None


def count(config: dict) -> dict:
    import torch
    import transformers

    fields = {k: v for k, v in config.items() if k != "model_type"}
    cfg = transformers.AutoConfig.for_model(config["model_type"], **fields)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    n_experts, top_k = _n_experts(cfg), getattr(cfg, "num_experts_per_tok", None)
    seen, total, experts, experts_active = set(), 0, 0, 0
    breakdown = dict.fromkeys(BREAKDOWN, 0)
    per_layer: dict[int, set[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=True):
        if id(p) in seen:
            continue
        seen.add(id(p))
        cat, layer = classify(name)
        n = p.numel()
        total += n
        breakdown[cat] += n
        if layer is not None:
            per_layer.setdefault(layer, set()).add(cat)
        if cat == "experts":
            assert n_experts and p.shape[0] == n_experts, f"{name}: shape {tuple(p.shape)}, n_experts {n_experts}"
            experts += n
            if top_k is not None:
                assert 0 < top_k <= n_experts, (top_k, n_experts)
                experts_active += n // n_experts * top_k  # exact: numel is a multiple of the leading dimension
    assert sum(breakdown.values()) == total
    assert len(per_layer) == cfg.num_hidden_layers, (len(per_layer), cfg.num_hidden_layers)  # no MTP layers built
    for layer, cats in per_layer.items():  # routers and shared experts only beside routed experts
        assert "experts" in cats or not cats & {"router", "shared_experts"}, (layer, cats)
    layers = {"total": len(per_layer), "moe": sum("experts" in c for c in per_layer.values()),
              "dense_mlp": sum("mlp" in c and "experts" not in c for c in per_layer.values())}
    layer_types = getattr(cfg, "layer_types", None)
    if layer_types:
        assert len(layer_types) == len(per_layer)
        layers["types"] = dict(Counter(layer_types))
    if config.get("hybrid_override_pattern"):
        layers["pattern"] = dict(Counter(config["hybrid_override_pattern"]))
    out = {"total": total,
           "active": total - experts + experts_active if experts and top_k is not None else None,
           "expert_params": experts or None, "breakdown": breakdown, "layers": layers}
    if experts:
        out.update(n_experts=n_experts, top_k=top_k)
    if hasattr(cfg, "num_nextn_predict_layers"):
        out["mtp_not_instantiated"] = cfg.num_nextn_predict_layers
    return out


def main() -> None:
    import torch
    import transformers

    from engine.catalog.families import FAMILIES
    from engine.catalog.presets import PRESETS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "transformers_param_counts.json"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    types = tuple(dict.fromkeys((*FAMILIES, *NEW_TYPES)))
    configs = {f"default:{t}": {"model_type": t} for t in types}
    configs.update(VARIANTS)
    configs.update({name: dict(p.config) for name, p in PRESETS.items()})
    if args.only:
        configs = {k: v for k, v in configs.items() if k in args.only}
    out = {"meta": {"transformers": transformers.__version__, "torch": torch.__version__,
                    "how": "AutoModelForCausalLM.from_config on the meta device; distinct parameters"},
           "counts": {}}
    for name, config in configs.items():
        out["counts"][name] = {**count(config), "config": config}
        c = out["counts"][name]
        active = "" if c["active"] is None else f"{c['active']:>18,}"
        print(f"{name:<50} {c['total']:>18,} {active}", flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(out['counts'])} entries to {args.out}")


if __name__ == "__main__":
    main()
