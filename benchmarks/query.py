"""On-device query vs materializing the cube and reducing it on the host.

    python benchmarks/query.py [--points 2e7] [--repeat 3]

Question: for every (batch, seq_len), the largest params_total with mem_peak <= 40 GiB, and the
d_model and n_layers that reach it (seed formulas). "device" runs engine.run with a query sink (mask and
argmax inside the jitted kernel, chunk by chunk); "host" runs engine.run into memory (the full cube
copied out) and then the same reduction with xarray. Prints both times and the speed-up, checks
the answers agree, and writes query.json beside this script.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import engine
from engine.request.query import make_query


def spec(points: float) -> dict:
    n_layers, batch, seq_len = 96, 16, 32
    d_model = max(2, round(points / (n_layers * batch * seq_len)))
    return {
        "sweep": {"formula_set": "seed", "quantities": ["params_total", "mem_peak"]},
        "fixed": {"vocab": 50257},
        "axes": {"d_model": list(range(64, 64 * (d_model + 1), 64)), "n_layers": list(range(1, n_layers + 1)),
                 "batch": [2**k for k in range(batch)], "seq_len": list(range(256, 256 * (seq_len + 1), 256))},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=float, default=2e7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = ap.parse_args()
    req = engine.parse_spec(spec(args.points))
    q = make_query(["mem_peak <= 40GiB"], "params_total", None, ["d_model", "n_layers"], req.quantities,
                   list(req.axes))
    engine.run(req, engine.sink_for(query=q))  # compile
    device = min(engine.run(req, engine.sink_for(query=q)).eval_seconds for _ in range(args.repeat))
    t_dev_ds = engine.run(req, engine.sink_for(query=q)).dataset

    def host():
        t0 = time.perf_counter()
        ds = engine.run(req).dataset
        fits = ds.mem_peak <= 40 * 2**30
        best = ds.params_total.where(fits).max(["d_model", "n_layers"])
        return time.perf_counter() - t0, best

    host()  # compile
    runs = [host() for _ in range(args.repeat)]
    t_host, best = min(runs, key=lambda r: r[0])
    feasible = t_dev_ds.n_feasible.values > 0
    assert np.array_equal(t_dev_ds.params_total.values[feasible], best.values[feasible].astype(np.int64))
    row = {"points": req.points, "device_s": device, "host_s": t_host, "speedup": t_host / device,
           "device": str(jax.devices()[0]), "n_devices": len(jax.devices())}
    print(f"{req.points:,} points: on-device query {device:.3f} s, materialize + reduce on host {t_host:.3f} s, "
          f"speed-up {row['speedup']:.1f}x ({row['device']})")
    Path(args.json).write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
