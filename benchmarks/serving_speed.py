"""How fast serving answers: one ``llm-sweep serve`` and a 12.6 M-point serving sweep with an SLO query.

    python benchmarks/serving_speed.py [--repeat N] [--json OUT.json]

1. ``llm-sweep serve`` (Llama-3-70B fp8 on 4 x H200 at concurrency 64, and at ``--concurrency max`` with SLO
   limits, which evaluates every concurrency up to the KV pools' maximum), each run ``--repeat`` times as a fresh
   process, the median wall time; next to it, in the same run, the median of a process that only imports sympy
   and numpy (what any answer costs before it computes: the baseline the ratio is taken against).
2. ``llm-sweep run`` of a serving spec: 3 devices x 4 tp x 1,024 concurrencies x 32 input x 32 output lengths
   (12,582,912 points) of TTFT, TPOT and output tokens/s per device and per user, with a ``[query]`` keeping per
   device, tp and lengths the concurrency with the most tokens/s per device under TPOT 50 ms and TTFT 2 s (only the
   query's result is written), wall time including formula building and compilation.
Targets (issue 22): serve under 1 s, a 10^7-point serving sweep under 60 s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "engine"]
SERVE = ["serve", "--arch", "meta-llama-3-70b", "--gpu", "h200", "--tp", "4", "--input-len", "2048",
         "--output-len", "256", "--weight-dtype", "fp8", "--kv-dtype", "fp8"]
SPEC = """[sweep]
arch = "meta-llama-3-70b"
quantities = ["tokens_per_s_per_gpu", "tokens_per_s_per_user", "ttft", "tpot"]
output = "serving_speed.nc"

[options]
mode = "inference"
attention = "flash"
weight_dtype = "fp8"
kv_dtype = "fp8"

[axes]
gpu = ["h100-sxm", "h200", "b200"]
tp = [1, 2, 4, 8]
concurrency = { start = 1, stop = 1024 }
input_len = { start = 256, stop = 8192, step = 256 }
output_len = { start = 64, stop = 2048, step = 64 }

[query]
where = ["tpot <= 0.05", "ttft <= 2"]
maximize = "tokens_per_s_per_gpu"
over = ["concurrency"]
"""


def timed(cmd: list[str], repeat: int) -> tuple[float, list[float]]:
    """Median wall seconds of ``repeat`` fresh processes, and each run's."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="processes per timing (default 5)")
    ap.add_argument("--json")
    args = ap.parse_args()
    out: dict = {}
    base, _ = timed([sys.executable, "-c", "import sympy, numpy"], args.repeat)
    out["import_sympy_numpy_s"] = base
    for label, extra in (("serve_c64_s", ["--concurrency", "64"]),
                         ("serve_slo_s", ["--ttft-max", "1", "--tpot-max", "0.025"])):
        median, runs = timed(CLI + SERVE + extra, args.repeat)
        out[label] = median
        print(f"llm-sweep {' '.join(SERVE + extra)}: median {median:.3f} s of {args.repeat} "
              f"({', '.join(f'{r:.2f}' for r in runs)}); importing sympy and numpy alone {base:.3f} s "
              f"(ratio {median / base:.2f})")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "serving_speed.toml"
        spec.write_text(SPEC)
        points = 3 * 4 * 1024 * 32 * 32
        start = time.perf_counter()
        done = subprocess.run(CLI + ["run", str(spec), "-o", str(Path(tmp) / "serving_speed.nc")], cwd=REPO,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"the sweep failed: {done.stderr.strip()}")
        out.update(sweep_points=points, sweep_s=wall)
        print(f"serving sweep: {points:,} points (3 devices x 4 tp x 1,024 concurrencies x 32 x 32 lengths) with an "
              f"SLO query in {wall:.1f} s ({points / wall / 1e6:.2f} M points/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
