"""How fast ``plan`` searches a layout space: GPT-3 175B on 1,024 A100-80GB, sequence 2048, global batch 1536.

    python benchmarks/plan_speed.py [--top K] [--json OUT.json]

The space (``engine.catalog.plan.default_space``): tp in powers of two to 64, every divisor of the 96
layers as pp, every dp that leaves (gpus / (tp x pp x cp)), cp in 1, 2, 4, 8, every divisor of the global
batch as micro-batch, vp 1-12, x recompute (3) x ZeRO stage (4) x sequence parallelism (2) -- every
combination, Calculon's dimensions, as one request through the engine (a top-k query). Reported: the grid
size, the layouts that pass the rules, those that fit, the wall time and the search's (the rest is the exact
values) including formula building and JIT compilation, the same again with the kernels built
(configurations per second of the search next to Calculon's ~40 per second per core; Isaev et al. 2023,
SC'23: 11.7 M configurations in ~80 core-hours), and the seconds the ``--top`` rows took to evaluate exactly
and fold (``--top 96000``: every layout that fits).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=5, help="rows to report (default 5)")
    ap.add_argument("--json")
    args = ap.parse_args()
    import jax

    from engine.catalog.model import architecture
    from engine.catalog.plan import describe_folded, plan

    arch = architecture("gpt3-175b")
    start = time.perf_counter()
    out = plan(arch, "a100-80gb", gpus=1024, seq_len=2048, global_batch=1536, top=args.top)
    first = time.perf_counter() - start
    start = time.perf_counter()  # the search again (kernels and executables are cached by now)
    full = plan(arch, "a100-80gb", gpus=1024, seq_len=2048, global_batch=1536, top=args.top)
    wall = time.perf_counter() - start
    assert [x["layout"] for x in full["layouts"]] == [x["layout"] for x in out["layouts"]]
    cores = os.cpu_count() or 1
    report = {"device": str(jax.devices()[0]), "cores": cores, "grid": out["searched"],
              "valid_layouts": out["valid"], "fit": out["fit"], "wall_seconds_with_compile": first,
              "search_seconds_with_compile": out["seconds"], "search_seconds": full["seconds"],
              "top": args.top, "rows": len(out["layouts"]), "exact_seconds": out["exact_seconds"],
              "full_grid_evaluated": full["evaluated"], "wall_seconds": wall,
              "configs_per_s": full["evaluated"] / full["seconds"],
              "configs_per_s_per_core": full["evaluated"] / full["seconds"] / cores, "calculon_per_s_per_core": 40,
              "best": [{k: l[k] for k in ("step_time", "mfu", "mem_peak", "layout", "recompute", "zero",
                                          "sequence_parallel", "folded")} for l in out["layouts"][:5]]}
    print(f"grid {report['grid']:,} configurations ({report['valid_layouts']:,} pass the layout rules, "
          f"{report['fit']:,} fit): {first:.1f} s, the search {out['seconds']:.1f} s of it including formula building "
          f"and JIT; again with the kernels built {wall:.1f} s, the search {full['seconds']:.1f} s of it on {cores} "
          f"cores ({report['device']}): "
          f"{report['configs_per_s']:,.0f} configurations/s, {report['configs_per_s_per_core']:,.0f} per core "
          f"(Calculon: ~40 per core); {report['rows']:,} rows (--top {args.top}) evaluated exactly and folded in "
          f"{report['exact_seconds']:.1f} s")
    for layout in report["best"]:
        lay = layout["layout"]
        print(f"  {layout['step_time']:8.3f} s  MFU {layout['mfu']:.1%}  tp {lay['tp']} pp {lay['pp']} dp {lay['dp']} "
              f"cp {lay['cp']} vp {lay['vp']} mb {lay['micro_batch']}  recompute {layout['recompute']}  zero "
              f"{layout['zero']}  sp {layout['sequence_parallel']}  {layout['mem_peak'] / 2**30:.1f} GiB"
              + (f"  ({describe_folded(layout)})" if layout["folded"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
