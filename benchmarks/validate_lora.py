"""Count LoRA trainable parameters with the real implementation (transformers + peft, meta device).

    python benchmarks/validate_lora.py [--out tests/data/peft_trainable_counts.json] [--only NAME ...]

Needs torch, transformers and peft in a separate environment (never the package's):
`python3 -m venv /tmp/lora-venv && /tmp/lora-venv/bin/pip install torch==2.13.0 transformers peft`,
then `/tmp/lora-venv/bin/python benchmarks/validate_lora.py`. Nothing is downloaded: each model is
built from its preset's config fields (engine/catalog/data/presets.json, read as JSON, so the engine is
not imported) on the meta device, wrapped with ``peft.get_peft_model(model, LoraConfig(r=..., target_modules=...))``
and peft's ``get_nb_trainable_parameters()`` is recorded (trainable, all). ``tests/test_lora.py``
compares ``engine.catalog.model.lora_counts`` with every row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "engine" / "catalog" / "data" / "presets.json"

QKVO_MLP = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# (preset, rank, targets): targets None = peft's default for the model type, "all-linear", or a list
CASES = [
    ("gpt2", 8, None), ("gpt2", 64, "all-linear"), ("gpt2", 8, ["c_proj"]), ("gpt2", 16, ["c_attn", "c_fc"]),
    ("llama-2-7b", 8, None), ("llama-2-7b", 64, "all-linear"), ("llama-2-7b", 8, QKVO_MLP),
    ("llama-3.2-1b", 16, "all-linear"),
    ("mistral-7b", 64, None), ("mistral-7b", 8, "all-linear"), ("mistral-7b", 8, ["k_proj", "down_proj"]),
    ("mixtral-8x7b", 8, None), ("mixtral-8x7b", 64, "all-linear"), ("mixtral-8x7b", 8, ["q_proj", "k_proj", "v_proj", "o_proj"]),
    ("mixtral-8x7b", 8, ["q_proj", "v_proj"]), ("mixtral-8x7b", 8, ["w1", "w3", "w2"]),
    ("mixtral-8x7b", 16, ["gate", "q_proj"]), ("mixtral-8x7b", 8, ["w1"]), ("mixtral-8x22b", 8, "all-linear"),
    ("qwen2-7b", 8, "all-linear"), ("qwen2-0.5b", 64, None), ("qwen3-0.6b", 8, "all-linear"),
    ("phi-3-mini-4k-instruct", 8, "all-linear"), ("phi-3-mini-4k-instruct", 64, ["qkv_proj", "o_proj"]),
    ("phi-3-mini-4k-instruct", 8, None),
    ("falcon-7b", 8, None), ("falcon-7b", 64, "all-linear"), ("falcon-40b", 8, "all-linear"),
    ("gemma-2b", 8, None), ("gemma-7b", 64, "all-linear"),
    ("opt-125m", 64, None), ("opt-350m", 8, "all-linear"),
    ("bloom-560m", 8, None), ("bloom-560m", 64, "all-linear"),
    ("pythia-70m", 8, "all-linear"), ("gpt-j-6b", 8, None), ("gpt-j-6b", 8, "all-linear"),
    ("phi-2", 8, None), ("phi-2", 64, "all-linear"),
]


def row_name(preset: str, rank: int, targets) -> str:
    t = "default" if targets is None else targets if isinstance(targets, str) else ",".join(targets)
    return f"{preset}|r={rank}|{t}"


def count(config: dict, rank: int, targets) -> dict:
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    fields = {k: v for k, v in config.items() if k != "model_type"}
    cfg = transformers.AutoConfig.for_model(config["model_type"], **fields)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
        try:
            peft_model = get_peft_model(model, LoraConfig(r=rank, target_modules=targets, task_type="CAUSAL_LM"))
        except ValueError as exc:  # e.g. no default target modules for the model type
            return {"error": str(exc).splitlines()[0]}
    trainable, total = peft_model.get_nb_trainable_parameters()
    wrapped = sorted({name.rsplit(".", 1)[-1] for name in peft_model.targeted_module_names})
    return {"trainable": trainable, "all": total, "wrapped": wrapped,
            "n_wrapped": len(peft_model.targeted_module_names)}


def main() -> None:
    import peft
    import torch
    import transformers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "peft_trainable_counts.json"))
    ap.add_argument("--only", nargs="*", help="preset names")
    args = ap.parse_args()
    presets = json.loads(PRESETS.read_text(encoding="utf-8"))["presets"]
    out = {"meta": {"peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
                    "how": "AutoModelForCausalLM.from_config on the meta device, peft.get_peft_model with "
                           "LoraConfig(r, target_modules, task_type=CAUSAL_LM), get_nb_trainable_parameters()"},
           "rows": {}}
    for preset, rank, targets in CASES:
        if args.only and preset not in args.only:
            continue
        config = presets[preset]["config"]
        result = count(config, rank, targets)
        name = row_name(preset, rank, targets)
        out["rows"][name] = {"arch": preset, "rank": rank, "targets": targets, **result, "config": config}
        print(f"{name:<60} {result.get('trainable', result.get('error')):>14}")
    Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
