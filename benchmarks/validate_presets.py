"""Count every preset's parameters with the real implementation (transformers, meta device).

    python benchmarks/validate_presets.py [--out tests/data/transformers_param_counts.json] [--only NAME ...]

Needs torch and transformers (`pip install torch==2.13.0 transformers`; nothing is downloaded:
each model is built from its config dict, which the engine's preset holds, on the meta device,
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

    from engine.hf import MODEL_TYPES
    from engine.presets import PRESETS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "transformers_param_counts.json"))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    configs = {f"default:{t}": {"model_type": t} for t in MODEL_TYPES}
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
