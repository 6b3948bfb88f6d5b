"""Count every preset's parameters with the real implementation (transformers, meta device).

    python benchmarks/validate_presets.py [--out tests/data/transformers_param_counts.json] [--only NAME ...]

Needs torch and transformers (`pip install torch==2.13.0 transformers`; nothing is downloaded:
each model is built from its config dict (engine/catalog/data/presets.json for presets) on the meta device,
so no weights are allocated). For every preset, and for the default configuration of every
supported model_type, it records the number of distinct parameters (tied tensors once) and, for
MoE models, the parameters one token uses (expert tensors scaled by top_k / n_experts). The tests
compare the engine's exact counts with this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


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
}


def count(config: dict) -> dict:
    import torch
    import transformers

    fields = {k: v for k, v in config.items() if k != "model_type"}
    cfg = transformers.AutoConfig.for_model(config["model_type"], **fields)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    seen, total, experts = set(), 0, 0
    for name, p in model.named_parameters(remove_duplicate=True):
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if ".experts." in name or name.endswith(".experts") or ".experts." in name + ".":
            experts += p.numel()
    n_experts = getattr(cfg, "num_local_experts", None)
    top_k = getattr(cfg, "num_experts_per_tok", None)
    active = total - experts + experts * top_k // n_experts if n_experts else None
    return {"total": total, "active": active, "expert_params": experts or None}


def main() -> None:
    import torch
    import transformers

    from engine.catalog.families import MODEL_TYPES
    from engine.catalog.presets import PRESETS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "transformers_param_counts.json"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    configs = {f"default:{t}": {"model_type": t} for t in MODEL_TYPES}
    configs.update(VARIANTS)
    configs.update({name: dict(p.config) for name, p in PRESETS.items()})
    if args.only:
        configs = {k: v for k, v in configs.items() if k in args.only}
    out = {"meta": {"transformers": transformers.__version__, "torch": torch.__version__,
                    "how": "AutoModelForCausalLM.from_config on the meta device; distinct parameters"},
           "counts": {}}
    for name, config in configs.items():
        out["counts"][name] = {**count(config), "config": config}
        print(f"{name:<28} {out['counts'][name]['total']:>18,}")
    Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
