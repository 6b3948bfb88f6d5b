"""The serving model against published, measured serving runs: error per source group, and calibration.

    python benchmarks/validate_serving.py                 # errors with the shipped knobs, per group
    python benchmarks/validate_serving.py --calibrate aic_trtllm   # refit the knobs on these groups

Data (tests/data, each row with its source):
- serving_aiconfigurator.csv: NVIDIA AIConfigurator's measured ('silicon') TTFT and TPOT at a fixed concurrency,
  TensorRT-LLM, vLLM and SGLang on H100, H200, B200 (groups aic_trtllm, aic_vllm, aic_sglang);
- serving_public.json: TensorRT-LLM's performance overview (offline maximum throughput: output tokens/s per
  device), its DeepSeek-R1 and gpt-oss blogs (attention data parallelism with wide EP; concurrency 1), vLLM's FP8
  KV-cache post (median TTFT, TPOT) and its GB200 decode pool, Oracle's MI300X vLLM runs (static batches: output
  tokens/s over a batch's end-to-end latency). Rows the model does not compare (speculative decoding at an unstated
  acceptance, prefill pools measured alone, production traffic without lengths, an EP that does not divide the
  experts, devices or models outside the catalog) are skipped and counted.

The knobs (engine/symbolic/memory/serving.py DEFAULTS): decode_bandwidth_efficiency, layer_latency,
step_latency and moe_layer_latency, fitted with --calibrate on the groups named (coordinate descent over a grid,
the mean over the groups of each group's median |log error| of TPOT, or of throughput where a row has only that),
then the prefill's fixed times per layer and per MoE layer and lockstep_fraction on the same groups' TTFT (a joint
coarse grid, then coordinate descent; ``calibrate``); lockstep_fraction applies to the engines that mix prefill
chunks into decode steps (SGLang's is 1: engines.json mixed_chunk). Every group not named is a prediction.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.options.engines import engine as engine_record  # noqa: E402  (pure Python: loads no sympy)

KNOBS = ("decode_bandwidth_efficiency", "layer_latency", "step_latency", "moe_layer_latency", "prefill_layer_latency",
         "prefill_moe_layer_latency", "lockstep_fraction")
DECODE_KNOBS = 4  # the first four: fitted on the decode (TPOT); the prefill's three on TTFT, after them
FITTED_ON = ("aic_trtllm",)  # the groups the shipped knobs were fitted on (serving.py DEFAULTS says the same)
MODELS = {"meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b", "meta-llama/Llama-3.1-70B": "meta-llama-3-70b",
          "openai/gpt-oss-120b": "gpt-oss-120b", "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b",
          "deepseek-ai/DeepSeek-V3": "deepseek-v3", "deepseek-ai/DeepSeek-R1": "deepseek-r1",
          "Llama-3.3-70B-Instruct": "meta-llama-3-70b", "Llama-3.1-8B-Instruct": "llama-3.1-8b",
          "Llama-3.1-8B": "llama-3.1-8b", "Qwen3-235B-A22B": "qwen3-235b-a22b",
          "Llama-4-Maverick-17B-128E-Instruct": "llama-4-maverick-17b-128e-instruct",
          "Llama-3.1-405B-Instruct": "llama-3.1-405b", "Llama-3.1-405B (FP8)": "llama-3.1-405b",
          "Qwen3-30B-A3B": "qwen3-30b-a3b", "gpt-oss-20b": "gpt-oss-20b", "gpt-oss-120b": "gpt-oss-120b"}
DENSE = {"llama-3.1-8b", "meta-llama-3-70b", "llama-3.1-405b"}
SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200"}
DEVICE_WORDS = (("H100", "h100-sxm"), ("H200", "h200"), ("MI300X", "mi300x"), ("GB200", "gb200"), ("B200", "b200"))
WEIGHTS = {"fp8": "fp8", "bf16": "auto", "nvfp4": "nvfp4", "mxfp4 (native checkpoint)": "mxfp4",
           "mxfp4 (native gpt-oss checkpoint)": "mxfp4"}


def aic_rows() -> tuple[list[dict], int]:
    """The AIConfigurator rows as cases: model, device, engine, layout, workload, measured TTFT and TPOT (s)."""
    out, skipped = [], 0
    with open(ROOT / "tests/data/serving_aiconfigurator.csv") as f:
        for r in csv.DictReader(f):
            conc = re.search(r"silicon_concurrency=(\d+)", r["silicon_data_source"])
            tp, ep, mtp = int(r["tp_size"]), int(r["moe_ep_size"] or 1), int(r["moe_tp_size"] or r["tp_size"])
            dense = MODELS[r["model_path"]] in DENSE
            if dense:  # a dense model's moe_* columns mean nothing
                ep, mtp = 1, tp
            # experts over the replica's devices (ep x etp = tp), or over ep x etp / tp attention data-parallel
            # replicas (vLLM's --data-parallel-size with the experts split across the ranks)
            if not conc or (ep * mtp) % tp or int(r["attention_dp_size"] or 1) not in (1, ep * mtp // tp):
                skipped += 1
                continue
            quant = {"fp8": "fp8", "fp8_block": "fp8", "nvfp4": "nvfp4"}.get(r["gemm_quant_mode"], "auto")
            out.append({"id": r["id"], "group": "aic_" + r["backend"], "arch": MODELS[r["model_path"]],
                        "gpu": SYSTEMS[r["system"]], "engine": r["backend"], "tp": tp, "ep": ep,
                        "etp": None if dense else mtp, "dp": ep * mtp // tp, "weights": quant,
                        "kv": "fp8" if quant != "auto" else "auto",
                        "input_len": int(r["isl"]), "output_len": int(r["osl"]), "concurrency": int(conc.group(1)),
                        "ttft": float(r["silicon_ttft_ms"]) / 1e3, "tpot": float(r["silicon_tpot_ms"]) / 1e3})
    return out, skipped


def _weights(text: str) -> str | None:
    """A record's weight precision as --weight-dtype: the leading format of its text (a mixed checkpoint by its
    experts', the bulk of a MoE model's bytes); None for one the model has no dtype for."""
    text = text.lower()
    if text in WEIGHTS:
        return WEIGHTS[text]
    return next((dtype for word, dtype in (("fp8", "fp8"), ("nvfp4", "nvfp4"), ("mxfp4", "mxfp4"), ("bf16", "auto"))
                 if text.startswith(word)), None)


def _model(name: str) -> str | None:
    """A record's model as a preset: by name, or a DeepSeek-V3/R1 checkpoint (the same architecture)."""
    if name in MODELS:
        return MODELS[name]
    if re.match(r"DeepSeek-(R1|V3)\b(?!\.)", name):
        return "deepseek-r1"
    return None


DECODE_ONLY = ("decode_only_saturated", "disagg_decode_pool")
STATIC = ("static_batch", "static_batch_latency")  # a batch of requests started together, run to the end


def public_rows() -> tuple[list[dict], int]:
    """The serving_public.json rows the model can express: a catalog device, a model with a preset, a weight
    dtype it has, no speculative decoding; tensor parallelism, or attention data parallelism with the experts
    across the ranks (ep = dp: TensorRT-LLM's enable_attention_dp, its tp counting the ranks); fixed concurrency,
    offline maximum throughput, or a decode pool measured alone (its output tokens/s per device). A run at
    concurrency 1 that reports only tokens/s per user gives TPOT as its inverse."""
    data = json.loads((ROOT / "tests/data/serving_public.json").read_text())
    out, skipped = [], 0
    for r in data["records"]:
        w, m, p = r["workload"], r["measured"], r["parallel"]
        weights = _weights(str(r["precision"].get("weights") or ""))
        gpu = next((g for word, g in DEVICE_WORDS if word in r["hardware"]["device"]), None)
        arch = _model(r["model"]["name"])
        ok_mode = w["mode"] in ("offline_max_throughput", "fixed_concurrency", *STATIC, *DECODE_ONLY)
        tp, dp, ep = p.get("tp") or 1, p.get("dp") or 1, p.get("ep") or 1
        attention_dp = dp > 1 and ep == dp
        if (gpu is None or arch is None or not ok_mode or weights is None or (dp > 1 and not attention_dp)
                or "MTP" in (r.get("notes") or "") or not w.get("input_len") or not w.get("output_len")):
            skipped += 1
            continue
        kv = str(r["precision"].get("kv_cache") or "").lower()
        replica_tp = max(1, tp // dp) if attention_dp else tp
        tpot = m.get("tpot_s_mean") or m.get("tpot_s_median")
        if tpot is None and w["concurrency"] == 1 and m.get("tokens_per_s_per_user"):
            tpot = 1 / m["tokens_per_s_per_user"]
        case = {"id": r["id"], "group": r["source_group"], "arch": arch, "gpu": gpu,
                "engine": r["engine"]["name"] if r["engine"]["name"] in ("trtllm", "sglang") else "vllm",
                "tp": replica_tp, "ep": ep, "etp": replica_tp if attention_dp else None, "dp": dp,
                "weights": weights, "kv": "fp8" if kv.startswith("fp8") else "auto", "input_len": w["input_len"],
                "output_len": w["output_len"], "concurrency": w["concurrency"],
                "decode_only": w["mode"] in DECODE_ONLY, "static": w["mode"] in STATIC,
                "ttft": m.get("ttft_s_mean") or m.get("ttft_s_median"), "tpot": tpot,
                "median_ttft": not m.get("ttft_s_mean") and bool(m.get("ttft_s_median")),
                "per_gpu": m.get("output_tokens_per_s_per_gpu")
                or (m["output_tokens_per_s"] / r["hardware"]["n_devices"] if m.get("output_tokens_per_s") else None)}
        out.append(case)
    return out, skipped


_FNS: dict = {}


def _key(case: dict) -> tuple:
    return (case["arch"], case["gpu"], case["engine"], case["tp"], case["ep"], case["etp"], case["dp"],
            case["weights"], case["kv"])


VARYING = ("input_len", "output_len", "concurrency", "seq_len", *KNOBS)
OUTPUTS = ("ttft", "tpot", "tokens_per_s_per_gpu", "max_concurrency")


def predictor(case: dict):
    """``(evaluator, max_num_seqs)``: the serving quantities of one case's model, device, engine and layout as numpy
    functions of the lengths, the concurrency and the knobs (``engine.catalog.serving.Evaluator``, built once per
    kind)."""
    from engine.catalog.model import architecture, estimate_formulas, memory_options
    from engine.catalog.serving import Deployment, Evaluator, serve_values

    key = _key(case)
    if key not in _FNS:
        arch = architecture(case["arch"])
        options = memory_options(mode="inference", attention="flash", engine=case["engine"],
                                 weight_dtype=case["weights"], kv_dtype=case["kv"])
        dep = Deployment(tp=case["tp"], dp=case["dp"], ep=case["ep"], etp=case["etp"])
        _, values = serve_values(arch, case["gpu"], dep, options)
        fs = estimate_formulas(arch.family, arch.structure, options)
        _FNS[key] = (Evaluator(fs, {**arch.values, **values}, VARYING), values["max_num_seqs"] * case["dp"])
    return _FNS[key]


def errors(cases: list[dict], knobs: tuple) -> list[dict]:
    """Per case: predicted and measured TTFT, TPOT and output tokens/s per device, and their relative errors;
    the cases of one kind evaluated at once (numpy arrays)."""
    kinds: dict = defaultdict(list)
    for case in cases:
        kinds[_key(case)].append(case)
    out = []
    for group in kinds.values():
        ev, seqs = predictor(group[0])
        i = np.array([c["input_len"] for c in group], dtype=float)
        o = np.array([c["output_len"] for c in group], dtype=float)
        env = {"input_len": i, "output_len": o, "seq_len": i + o, "concurrency": np.ones_like(i),
               **{k: np.full_like(i, v) for k, v in zip(KNOBS, knobs)}}
        if not engine_record(group[0]["engine"]).mixed_chunk:  # prefills apart: every request in the burst (the
            env["lockstep_fraction"] = np.ones_like(i)  # engine's default, not the knob fitted on a mixing engine)

        most = np.floor(ev("max_concurrency", env))
        given = np.array([c["concurrency"] or 0 for c in group], dtype=float)
        # offline runs: what runs at once (the model's KV pools, max_num_seqs); a fixed concurrency as measured
        # (beyond the pools the model queues the rest, as the engines do)
        conc = np.maximum(1.0, np.where(given > 0, given, np.minimum(most, seqs)))
        env["concurrency"] = conc
        preds = [ev(name, env) for name in OUTPUTS[:3]]
        # a median TTFT is a typical request's: the burst that a lockstep_fraction of them wait through (its share
        # well under half) moves the mean, not the median
        median = np.array([c.get("median_ttft", False) for c in group])
        if median.any():
            typical = ev("ttft", {**env, "lockstep_fraction": np.zeros_like(i)})
            preds[0] = np.where(median, typical, preds[0])
        # a decode pool measured alone: its running requests' tokens per decode step, per device
        alone = ev("running_requests", env) * ev("accepted_tokens", env) / (ev("time_decode", env) * group[0]["tp"])
        # a static batch of c requests: their prompts (one prefill, the rest at the marginal rate), then o - 1 decode
        # steps of the whole batch; its output tokens over that, per device
        batch = (ev("time_prefill", env) + (conc - 1) * i * ev("time_prefill_token", env)
                 + (o - 1) * ev("time_decode", env))
        static = conc * o / (batch * group[0]["tp"])
        for n, case in enumerate(group):
            if most[n] < 1:  # the model leaves no KV pool: a capacity miss, counted apart (refused_rows)
                continue
            row = {"id": case["id"], "group": case["group"], "concurrency": int(conc[n])}
            for name, pred in zip(("ttft", "tpot", "per_gpu"), preds):
                meas = case.get(name)
                if case.get("decode_only") and name == "per_gpu":
                    pred = alone
                elif case.get("static") and name == "per_gpu":
                    pred = static
                row[name] = (float(pred[n]), meas, float(pred[n]) / meas - 1 if meas else None)
            out.append(row)
    return out


def group_table(rows: list[dict]) -> dict:
    """Per group and metric: n, median |error|, worst, signed median."""
    table: dict = defaultdict(dict)
    for metric in ("ttft", "tpot", "per_gpu"):
        by: dict = defaultdict(list)
        for r in rows:
            e = r[metric][2]
            if e is not None:
                by[r["group"]].append(e)
                by["all"].append(e)
        for g, es in by.items():
            es = np.array(es)
            table[g][metric] = (len(es), float(np.median(np.abs(es))), float(np.max(np.abs(es))),
                                float(np.median(es)))
    return table


def loss(cases: list[dict], knobs: tuple, groups: set, metrics: tuple = ("tpot", "per_gpu")) -> float:
    """The mean over the fitted groups of each group's median |log(pred / measured)| of ``metrics``: the decode
    (TPOT, or the output tokens/s per device where a row has only that) for the decode step's knobs, TTFT for
    lockstep_fraction."""
    by: dict = defaultdict(list)
    for r in errors([c for c in cases if c["group"] in groups], knobs):
        for metric in metrics:
            if r[metric][2] is not None:
                by[r["group"]].append(abs(np.log(r[metric][0] / r[metric][1])))
    return float(np.mean([np.median(v) for v in by.values()]))


# decode_bandwidth_efficiency at most 0.90: what a memory copy reaches of a datasheet's HBM bandwidth (H100 SXM
# about 3.0-3.1 of 3.35 TB/s device-to-device); the fit is not allowed a decode faster than streaming the bytes
GRID = (np.arange(0.50, 0.901, 0.05), np.arange(0, 101e-6, 5e-6), np.arange(0, 10.1e-3, 0.5e-3),
        np.arange(0, 401e-6, 10e-6), np.arange(0, 3.01e-3, 0.1e-3), np.arange(0, 5.01e-3, 0.25e-3),
        np.arange(0, 1.001, 0.05))


def descend(fit: list[dict], groups: set, knobs: list, which: range) -> list:
    """Coordinate descent of the knobs ``which`` over GRID, until none moves (each on its own metric: the decode
    knobs on the decode, the prefill's on TTFT)."""
    for _ in range(6):
        moved = False
        for n in which:
            metrics = ("tpot", "per_gpu") if n < DECODE_KNOBS else ("ttft",)
            best = min(GRID[n], key=lambda v: loss(fit, tuple(knobs[:n] + [float(v)] + knobs[n + 1:]), groups,
                                                   metrics))
            moved |= abs(float(best) - knobs[n]) > 1e-12
            knobs[n] = float(best)
        if not moved:
            break
    return knobs


def calibrate(cases: list[dict], groups: set, start: tuple) -> tuple:
    """The knobs that fit ``groups`` best, from ``start``: the decode's by coordinate descent on the decode; then
    the prefill's three on TTFT by a joint search over a coarse grid (they trade off against each other: the fixed
    time per layer and per MoE layer, and the burst share; coordinate descent alone stops in a worse corner), and
    coordinate descent on the fine GRID from the best of it; the decode's again (TPOT depends on the prefill's
    time through the closed loop)."""
    fit = [c for c in cases if c["group"] in groups]
    knobs = descend(fit, groups, list(start), range(DECODE_KNOBS))
    coarse = [(a, b, f) for a in np.arange(0, 3.01e-3, 0.2e-3) for b in np.arange(0, 5.01e-3, 0.5e-3)
              for f in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)]
    best = min(coarse, key=lambda c: loss(fit, tuple(knobs[:DECODE_KNOBS]) + tuple(map(float, c)), groups, ("ttft",)))
    knobs[DECODE_KNOBS:] = map(float, best)
    knobs = descend(fit, groups, knobs, range(DECODE_KNOBS, len(KNOBS)))
    return tuple(descend(fit, groups, knobs, range(len(KNOBS))))


def shipped() -> tuple:
    from engine.symbolic.memory.serving import DEFAULTS

    return tuple(float(DEFAULTS[k]) for k in KNOBS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calibrate", help="source groups to fit the knobs on, comma-separated")
    p.add_argument("--json", help="write per-row predictions and errors here")
    p.add_argument("--quiet", action="store_true", help="the per-group table only")
    args = p.parse_args()
    aic, skipped_aic = aic_rows()
    pub, skipped_pub = public_rows()
    cases = aic + pub
    print(f"{len(cases)} rows ({len(aic)} AIConfigurator, {len(pub)} published); skipped {skipped_aic + skipped_pub} "
          "the model does not compare (speculative decoding, prefill pools alone, production traffic, redundant "
          "experts, devices or models outside the catalog)")
    knobs, fitted = shipped(), set(FITTED_ON)
    if args.calibrate:
        fitted = set(args.calibrate.split(","))
        knobs = calibrate(cases, fitted, knobs)
    print("knobs: " + ", ".join(f"{k} {v:.4g}" for k, v in zip(KNOBS, knobs))
          + f" ({'fitted now' if args.calibrate else 'shipped'}, on {', '.join(sorted(fitted))})")
    rows = errors(cases, knobs)
    refused = sorted({c["id"] for c in cases} - {r["id"] for r in rows})
    print(f"{len(refused)} rows the model says do not fit (weights leave no KV pool on the engine's memory share): "
          + ", ".join(refused[:6]) + (" ..." if len(refused) > 6 else ""))
    if not args.quiet:
        for r in rows:
            parts = [f"{m} {r[m][0]:.4g}/{r[m][1]:.4g} {100 * r[m][2]:+.1f}%" for m in ("ttft", "tpot", "per_gpu")
                     if r[m][2] is not None]
            print(f"  {r['id'][:60]:<60} c {r['concurrency']:>5}  " + "  ".join(parts))
    table = group_table(rows)
    held = group_table([{**r, "group": "held out"} for r in rows if r["group"] not in fitted])["held out"]
    for g, by_metric in [*sorted(table.items(), key=lambda x: (x[0] == "all", x[0])), ("held out", held)]:
        mark = " (fit)" if g in fitted else ""
        for metric, (n, med, worst, signed) in by_metric.items():
            print(f"  {g:<22} {metric:<8} n = {n:4d}  median |error| {100 * med:5.1f} %  worst {100 * worst:6.1f} %  "
                  f"signed median {100 * signed:+6.1f} %{mark}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
