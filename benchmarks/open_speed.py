"""How long a categorical spec takes to open as a virtual cube, in a fresh process each time.

    python benchmarks/open_speed.py [--repeat 3]

Writes a 24-combination step-time spec (Llama-3.1-8B, korthikanti memory, recompute x zero x gpu as
categorical dims over seq_len, tp, pp) into a temporary folder and times ``engine.open_cube`` on it in
fresh interpreters: the imports, loading the spec (formulas of every combination), the dims of each variable
and its attributes. Prints the median CPU and wall seconds of the open alone and of the imports. A baseline
is another checkout: ``PYTHONPATH=OTHER python benchmarks/open_speed.py`` times that one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SPEC = """
[sweep]
arch = "llama-3.1-8b"
quantities = ["step_time", "mem_peak", "params_total"]

[options]
memory_model = "korthikanti"
precision = "bf16"
attention = "flash"

[fixed]
n_gpus = 64
global_batch = 512
batch = 1

[axes]
seq_len = [2048, 4096, 8192]
tp = [1, 2, 4, 8]
pp = [1, 2, 4]
recompute = ["none", "selective", "full"]
zero = [0, 1, 2, 3]
gpu = ["h100-sxm", "a100-80gb"]
"""

CHILD = """
import json, sys, time
c0, w0 = time.process_time(), time.perf_counter()
import engine
c1, w1 = time.process_time(), time.perf_counter()
ds = engine.open_cube(sys.argv[1])
c2, w2 = time.process_time(), time.perf_counter()
print(json.dumps({"import_cpu": c1 - c0, "open_cpu": c2 - c1, "open_wall": w2 - w1, "variables": len(ds.data_vars)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes to time (median)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "categorical.toml"
        spec.write_text(SPEC)
        runs = []
        for _ in range(args.repeat):
            r = subprocess.run([sys.executable, "-c", CHILD, str(spec)], capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                return 1
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    median = {k: statistics.median(r[k] for r in runs) for k in ("import_cpu", "open_cpu", "open_wall")}
    print(f"24-combination categorical spec, {runs[0]['variables']} variables, median of {len(runs)} fresh processes:")
    print(f"  open   {median['open_cpu']:.2f} s CPU, {median['open_wall']:.2f} s wall")
    print(f"  import {median['import_cpu']:.2f} s CPU (engine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
