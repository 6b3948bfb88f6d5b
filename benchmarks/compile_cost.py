"""First-call latency: symbolic derivation + lambdify + XLA compile, cold, from the disk cache, in-process.

    python benchmarks/compile_cost.py

Each "fresh process" row runs a new Python that times engine.runtime.sweep.kernel_for (sympy resolve +
lambdify) and the XLA compile of the seed sweep's chunk, with JAX's persistent compilation cache
in a new temporary folder: the first process finds it empty (cold), the second finds the first
one's executables there (disk cache; what `llm-sweep run` uses between runs). The in-process row
asks for the same kernel again in one process (the kernel cache). Writes compile_cost.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import jax
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
import engine
from engine.runtime.sweep import kernel_for, plan_for
t_import = time.perf_counter() - t0
req = engine.load_spec(sys.argv[2])
t0 = time.perf_counter(); k = kernel_for(req); t_symbolic = time.perf_counter() - t0
plan = plan_for(req, k)
t0 = time.perf_counter(); k.compile_for(plan.chunk_shape); t_xla = time.perf_counter() - t0
t0 = time.perf_counter(); k2 = kernel_for(req); k2.compile_for(plan.chunk_shape); t_again = time.perf_counter() - t0
print(json.dumps({"import_s": t_import, "symbolic_s": t_symbolic, "xla_s": t_xla, "in_process_again_s": t_again}))
"""


def main() -> None:
    spec = REPO / "sweeps" / "seed.toml"
    rows = {}
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "disk cache"):
            r = subprocess.run([sys.executable, "-c", PROBE, cache, str(spec)], capture_output=True, text=True,
                               cwd=REPO, check=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
            rows[label] = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"{'first call':<12} {'import':>8} {'sympy+lambdify':>15} {'XLA compile':>12} {'same kernel again':>18}")
    for label, row in rows.items():
        print(f"{label:<12} {row['import_s']:>7.2f}s {row['symbolic_s']:>14.3f}s {row['xla_s']:>11.3f}s "
              f"{row['in_process_again_s']:>17.5f}s")
    Path(__file__).with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
