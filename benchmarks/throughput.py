"""Throughput of the compiled kernel vs numpy and vs the same-run fill bandwidth.

    python benchmarks/throughput.py [--max-points 1e7] [--numerics exact|fast] [--repeat 3]

For grids of 10^4 ... max points (d_model x n_layers x batch x seq_len, seed formulas) it times:
  engine   the jitted, vmapped kernel (XLA executable compiled beforehand), results on the device
  numpy    the same sympy expressions lambdified for numpy, broadcast over the axes, materialized
  fill     a jitted kernel that writes the same number of bytes (the bandwidth ceiling)
and prints points/s, output GB/s and the ratios engine/fill and engine/numpy. The table is also
written as JSON beside this script (throughput.json). Not a test: machines are noisy, so only
same-run ratios are meaningful.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from engine.runtime.compile import compile_kernel
from engine.symbolic.formulas import build_formula_set
from engine.symbolic.symbols import SYMBOLS

QUANTITIES = ["params_total", "mem_steady", "mem_activations", "mem_peak"]
AXES = ["d_model", "n_layers", "batch", "seq_len"]


def grid(points: int) -> dict[str, np.ndarray]:
    """A 4-axis grid of about ``points`` points (d_model gets what is left over)."""
    n_layers, batch, seq_len = 48, 8, 32
    d_model = max(1, round(points / (n_layers * batch * seq_len)))
    return {
        "d_model": np.arange(1, d_model + 1, dtype=np.int64) * 64,
        "n_layers": np.arange(1, n_layers + 1, dtype=np.int64),
        "batch": 2 ** np.arange(batch, dtype=np.int64),
        "seq_len": np.arange(1, seq_len + 1, dtype=np.int64) * 256,
    }


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-points", type=float, default=1e7)
    ap.add_argument("--numerics", choices=("exact", "fast"), default="exact",
                    help="exact (int64/float64) or fast (float32), as `llm-sweep run --numerics`")
    ap.add_argument("--precision", dest="numerics", choices=("exact", "fast"), help=argparse.SUPPRESS)  # old name
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = ap.parse_args()

    fs = build_formula_set("seed")
    given = {**{a: None for a in AXES}, "vocab": 50257}
    exprs = {q: fs.resolve(q, given) for q in QUANTITIES}
    kernel = compile_kernel(exprs, {q: True for q in QUANTITIES}, AXES, args.numerics)
    exact = args.numerics == "exact"
    np_fn = sympy.lambdify([SYMBOLS[a].symbol for a in AXES], list(exprs.values()), modules="numpy")
    itemsize = 8 if exact else 4
    out_dtype = np.int64 if exact else np.float32

    rows = []
    sizes = [10**k for k in range(4, int(math.log10(args.max_points)) + 1)]
    print(f"{'points':>12} {'engine pts/s':>14} {'GB/s':>7} {'numpy pts/s':>13} {'fill GB/s':>10} "
          f"{'eng/fill':>9} {'eng/numpy':>10}")
    for target in sizes:
        coords = grid(target)
        shape = tuple(len(coords[a]) for a in AXES)
        points = math.prod(shape)
        nbytes = points * len(QUANTITIES) * itemsize
        arrays = kernel.coordinate_arrays(coords)
        if not exact:
            arrays = [a.astype(np.int32) for a in arrays]
        with jax.enable_x64(exact):
            executable = kernel.compile_for(shape)
            dev = [jnp.asarray(a) for a in arrays]
            t_engine = best(lambda: jax.block_until_ready(executable(*dev)), args.repeat)

            def fill_fn(a, b, c, d):
                base = a[:, None, None, None] + b[None, :, None, None] + c[None, None, :, None] + d[None, None, None, :]
                return [(base + i).astype(out_dtype) for i in range(len(QUANTITIES))]

            fill = jax.jit(fill_fn)
            jax.block_until_ready(fill(*dev))
            t_fill = best(lambda: jax.block_until_ready(fill(*dev)), args.repeat)

        views = [a.astype(np.int64 if exact else np.float32).reshape([-1 if i == j else 1 for j in range(4)])
                 for i, a in enumerate(arrays)]
        t_numpy = best(lambda: [np.ascontiguousarray(np.broadcast_to(np.asarray(v, out_dtype), shape))
                                for v in np_fn(*views)], args.repeat)
        row = {
            "points": points, "quantities": len(QUANTITIES), "numerics": args.numerics,
            "engine_s": t_engine, "numpy_s": t_numpy, "fill_s": t_fill,
            "engine_points_per_s": points / t_engine, "engine_GBps": nbytes / t_engine / 1e9,
            "numpy_points_per_s": points / t_numpy, "fill_GBps": nbytes / t_fill / 1e9,
            "engine_over_fill": t_fill / t_engine, "engine_over_numpy": t_numpy / t_engine,
        }
        rows.append(row)
        print(f"{points:>12,} {row['engine_points_per_s']:>14,.0f} {row['engine_GBps']:>7.2f} "
              f"{row['numpy_points_per_s']:>13,.0f} {row['fill_GBps']:>10.2f} {row['engine_over_fill']:>9.2f} "
              f"{row['engine_over_numpy']:>10.2f}")
    meta = {"device": str(jax.devices()[0]), "jax": jax.__version__, "machine": platform.machine(),
            "cpus": __import__("os").cpu_count()}
    Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
