"""CPU-traced peaks of peft LoRA fine-tuning steps (emulated ``torch.cuda.max_memory_allocated()``).

    /tmp/lora-venv/bin/python benchmarks/measure_lora_cpu.py --out tests/data/cpu_measured_lora.json

Reuses the allocator emulation of ``benchmarks/measure_memory_cpu.py`` (AllocTrace, 512-byte rounding,
CUDA autocast dtype policy). Protocol: the base model is built in bf16 (``from_config(dtype=bfloat16)``,
random init), wrapped by ``peft.get_peft_model(model, LoraConfig(r, lora_alpha=2r, target_modules,
lora_dropout=0))`` (peft's default ``autocast_adapter_dtype=True`` keeps the adapters in fp32),
``model.train()``; bf16-true runs no autocast, bf16-mixed runs ``torch.autocast(bfloat16)`` with the
CUDA dtype policy; gradient checkpointing is ``gradient_checkpointing_enable(use_reentrant=False)``.
AdamW(trainable parameters, lr=1e-4, foreach=False); two steps on the same random ids with
labels=input_ids, ``del out, loss`` after backward, ``opt.step()``, ``zero_grad(set_to_none=True)``;
numbers from the second step, minus the baseline before the model was built, minus AdamW's CPU step
counters. QLoRA is not traced (bitsandbytes has no CPU kernels here).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_memory_cpu import (AllocTrace, RULES, _gpt2, _llama, _training_fields, build_model, train_steps,  # noqa: E402
                                cuda_autocast_policy, mark)


def measure_lora(config: dict, batch: int, seq: int, rank: int, targets=None, precision: str = "bf16-true",
                 checkpointing: bool = False, attn: str = "sdpa", steps: int = 2) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    amp = precision == "bf16-mixed"
    gc.collect()
    t0 = time.time()
    with AllocTrace() as tr:
        mark("base")
        model, cfg = build_model(config, seq, attn, dtype=torch.bfloat16)
        if checkpointing:
            kw = {"use_reentrant": False}
            if amp:
                kw["context_fn"] = lambda: (nullcontext(), cuda_autocast_policy())
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
        model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets,
                                                 lora_dropout=0.0))
        model.train()
        mark("weights")
        trainable = [p for p in model.parameters() if p.requires_grad]
        n_trainable = sum(p.numel() for p in trainable)
        adapter_dtype = str(trainable[0].dtype)
        opt = torch.optim.AdamW(trainable, lr=1e-4, foreach=False)
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, cfg.vocab_size, (batch, seq), generator=g)
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else nullcontext
        with (cuda_autocast_policy() if amp else nullcontext()):
            step_tensors = train_steps(model, opt, ids, steps, ctx)
        ids_n = ids.numel() * ids.element_size()
        del model, opt, ids, trainable
        gc.collect()
        mark("gone")
    s = steps - 1
    rnd = RULES["cuda512"]
    corr = sum(rnd(n) for n in step_tensors)
    res = _training_fields(tr, s, corr, rnd(ids_n), "cuda512")
    res.update({"trainable": int(n_trainable), "adapter_dtype": adapter_dtype, "seconds": round(time.time() - t0, 2)})
    return res


def plan() -> list[dict]:
    g = _gpt2(256, 4, 4, 8192)
    ll = _llama(256, 4, 8, 2, 688, 8192)
    rows = []
    for arch, cfg in (("gpt2", g), ("llama", ll)):
        for rank, targets in ((8, None), (64, "all-linear")):
            for prec in ("bf16-true", "bf16-mixed"):
                for ckpt in (False, True):
                    rows.append({"arch": arch, "config": cfg, "batch": 4, "seq": 256, "rank": rank,
                                 "targets": targets, "precision": prec, "checkpointing": ckpt})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path)
    p.add_argument("--limit", type=int)
    p.add_argument("--arch", help="only this arch (gpt2 or llama)")
    p.add_argument("--short", action="store_true", help="rank 8 default targets and rank 64 all-linear, "
                   "without checkpointing in bf16-mixed")
    args = p.parse_args(argv)
    import peft
    import torch
    import transformers

    records = []
    rows = [r for r in plan() if not args.arch or r["arch"] == args.arch]
    if args.short:
        rows = [r for r in rows if not (r["precision"] == "bf16-mixed" and r["checkpointing"])]
    for row in rows[:args.limit]:
        m = measure_lora(row["config"], row["batch"], row["seq"], row["rank"], row["targets"], row["precision"],
                         row["checkpointing"])
        rec = {**row, "measured": m}
        print(json.dumps({k: v for k, v in rec.items() if k != "config"}), flush=True)
        records.append(rec)
    if args.out:
        meta = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                "how": __doc__.strip()}
        args.out.write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
