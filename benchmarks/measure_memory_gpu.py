"""Measure training and prefill peaks on a GPU with torch.cuda.max_memory_allocated().

    python benchmarks/measure_memory_gpu.py [--out benchmarks/gpu_measured.json] [--limit N] [--big]

The protocol of tests/data/measured_memory_pytorch_h200.json: a model built with transformers on
the GPU (random init, nothing downloaded), AdamW(foreach=False) or SGD, two training steps on random
token ids with labels=input_ids, numbers from the second step; a prefill is model(input_ids,
use_cache=True) under no_grad in the model's dtype. The shapes are those of
benchmarks/measure_memory_cpu.py's extra_plan (the CPU emulation measures the same list), and with
--big the same families at real sizes (GPT-2 124M at batch x seq up to 8 x 1024, a LLaMA-style 1B
with GQA). The JSON has the same fields as the CPU file, so tests/test_memory.py can read either.
Run on a machine with a CUDA device (see benchmarks/gpu.sh); needs torch and transformers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure_memory_cpu import _gpt2, _llama, build_model, extra_plan  # noqa: E402


def _train(item: dict) -> dict:
    import torch

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model, cfg = build_model(item["config"], item["seq"], item["attn"], dropout=item["dropout"])
    model.to("cuda").train()
    if item["checkpointing"]:
        model.gradient_checkpointing_enable()
    weights = torch.cuda.memory_allocated() - base
    params = sum(p.numel() for p in model.parameters())
    opt = (torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False) if item["optimizer"] == "adamw"
           else torch.optim.SGD(model.parameters(), lr=1e-4))
    ids = torch.randint(0, cfg.vocab_size, (item["batch"], item["seq"]), device="cuda")
    out = {}
    for step in range(2):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        before = torch.cuda.memory_allocated()
        ctx = (torch.autocast("cuda", dtype=torch.bfloat16) if item["precision"] == "bf16-amp"
               else torch.autocast("cuda", enabled=False))
        with ctx:
            res = model(input_ids=ids, labels=ids)
        after_fwd = torch.cuda.memory_allocated()
        res.loss.backward()
        after_bwd = torch.cuda.memory_allocated()
        del res
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step == 1:
            out = {"params": params, "mem_weights": weights, "mem_after_forward_minus_before": after_fwd - before,
                   "mem_after_backward": after_bwd - base, "peak_total": torch.cuda.max_memory_allocated() - base,
                   "peak_over_step_start": torch.cuda.max_memory_allocated() - start,
                   "mem_steady_weights_plus_optimizer": torch.cuda.memory_allocated() - base - ids.numel() * 8,
                   "mem_input_ids": ids.numel() * 8}
    del model, opt, ids
    return out


def _prefill(item: dict) -> dict:
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[item["dtype"]]
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    model, cfg = build_model(item["config"], item["seq"], item["attn"], dtype=dtype)
    model.to("cuda").eval()
    weights = torch.cuda.memory_allocated() - base
    ids = torch.randint(0, cfg.vocab_size, (item["batch"], item["seq"]), device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with torch.no_grad():
        res = model(ids, use_cache=True)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    kv = 0
    cache = res.past_key_values
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            kv += t.numel() * t.element_size() if t is not None else 0
    out = {"mem_weights": weights, "peak_total": peak - base, "peak_over_weights": peak - before,
           "kv_cache_bytes": kv, "logits_bytes": res.logits.numel() * res.logits.element_size()}
    del model, res, ids
    return out


def big_plan() -> list[dict]:
    plan = []
    g, ll = _gpt2(768, 12, 12, 50257), _llama(2048, 16, 32, 8, 8192, 128256)
    for b, s in ((1, 1024), (4, 1024), (8, 1024)):
        for attn in ("eager", "sdpa"):
            for prec in ("fp32", "bf16-amp"):
                plan.append(dict(kind="train", config=g, batch=b, seq=s, precision=prec, attn=attn,
                                 checkpointing=False, dropout=0.0, optimizer="adamw"))
    for b, s in ((1, 2048), (2, 2048)):
        for attn in ("eager", "sdpa"):
            plan.append(dict(kind="train", config=ll, batch=b, seq=s, precision="bf16-amp", attn=attn,
                             checkpointing=False, dropout=0.0, optimizer="adamw"))
        plan.append(dict(kind="train", config=ll, batch=b, seq=s, precision="bf16-amp", attn="sdpa",
                         checkpointing=True, dropout=0.0, optimizer="adamw"))
    for b, s in ((1, 4096), (8, 2048), (32, 1024)):
        plan.append(dict(kind="prefill", config=ll, batch=b, seq=s, dtype="bf16", attn="sdpa"))
    return plan


def main() -> None:
    import torch
    import transformers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("gpu_measured.json"))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--big", action="store_true", help="also real-size models (needs ~40 GB of GPU memory)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: run benchmarks/measure_memory_cpu.py for the CPU emulation")
    plan = [p for p in extra_plan() if p.get("autocast_policy", "cuda") in (None, "cuda")]
    if args.big:
        plan += big_plan()
    plan = plan[: args.limit] if args.limit else plan
    records = []
    for i, item in enumerate(plan):
        t0 = time.time()
        try:
            fields = _train(item) if item["kind"] == "train" else _prefill(item)
            records.append({**{k: v for k, v in item.items() if k != "autocast_policy"}, **fields, "ok": True})
        except torch.cuda.OutOfMemoryError as exc:
            records.append({**item, "ok": False, "error": str(exc)[:200]})
        print(f"[{i + 1}/{len(plan)}] {item['kind']} {item['config']['model_type']} b{item['batch']} s{item['seq']} "
              f"{records[-1].get('peak_total', 'failed')} ({time.time() - t0:.1f} s)", flush=True)
    meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "transformers": transformers.__version__,
            "how": __doc__}
    args.out.write_text(json.dumps({"meta": meta, "records": records}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
