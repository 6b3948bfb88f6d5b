"""End to end: a >= 4 GB cube streamed to netCDF vs the raw sequential write speed of the same disk.

    python benchmarks/end_to_end.py [--gigabytes 4] [--compression 0] [--dir /tmp]

Writes a seed cube of about --gigabytes uncompressed (4 int64 quantities) with
engine.run_to_netcdf, then writes the same number of bytes with plain os.write in 64 MiB
blocks (+ fsync) as the disk's ceiling. Peak host RSS of the streamed run is read from
/proc/self/status (VmHWM) before the raw write. Prints a table and writes end_to_end.json
beside this script; both files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import engine
from engine.runtime.plan import parse_bytes


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gigabytes", type=float, default=4.0)
    ap.add_argument("--compression", type=int, default=0)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--max-device-mem", default=None, help="default: the engine's own budget")
    ap.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = ap.parse_args()
    quantities = ["params_total", "mem_steady", "mem_activations", "mem_peak"]
    points = args.gigabytes * 1e9 / (8 * len(quantities))
    n_layers, batch, seq_len = 128, 16, 64
    d_model = int(np.ceil(points / (n_layers * batch * seq_len)))
    spec = {"sweep": {"formula_set": "seed", "quantities": quantities, "compression": args.compression},
            "fixed": {"vocab": 50257},
            "axes": {"d_model": list(range(64, 64 * (d_model + 1), 64)), "n_layers": list(range(1, n_layers + 1)),
                     "batch": list(range(1, batch + 1)), "seq_len": list(range(128, 128 * (seq_len + 1), 128))}}
    req = engine.parse_spec(spec)
    out = Path(args.dir) / "llm_sweep_e2e.nc"
    rss0 = peak_rss()
    t0 = time.perf_counter()
    res = engine.run_to_netcdf(req, out, budget=parse_bytes(args.max_device_mem) if args.max_device_mem else None)
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    t_engine = time.perf_counter() - t0
    rss = peak_rss()
    nbytes = req.points * 8 * len(quantities)
    size = out.stat().st_size
    out.unlink()

    raw = Path(args.dir) / "llm_sweep_raw.bin"
    block = np.random.default_rng(0).integers(0, 2**62, size=(64 << 20) // 8, dtype=np.int64).tobytes()
    t0 = time.perf_counter()
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    written = 0
    while written < nbytes:
        written += os.write(fd, block[: min(len(block), nbytes - written)])
    os.fsync(fd)
    os.close(fd)
    t_raw = time.perf_counter() - t0
    raw.unlink()
    row = {"points": req.points, "bytes": nbytes, "file_bytes": size, "compression": args.compression,
           "chunks": res.plan.n_chunks, "engine_s": t_engine, "engine_GBps": nbytes / t_engine / 1e9,
           "raw_s": t_raw, "raw_GBps": nbytes / t_raw / 1e9, "engine_over_raw": t_raw / t_engine,
           "peak_rss_bytes": rss, "rss_before_bytes": rss0}
    print(f"{req.points:,} points, {nbytes / 1e9:.2f} GB uncompressed -> {size / 1e9:.2f} GB file in "
          f"{res.plan.n_chunks} chunks")
    print(f"  engine  {t_engine:7.2f} s  {row['engine_GBps']:.2f} GB/s (compile {res.compile_seconds:.2f}, "
          f"evaluate {res.eval_seconds:.2f}, write {res.write_seconds:.2f})")
    print(f"  raw     {t_raw:7.2f} s  {row['raw_GBps']:.2f} GB/s   engine/raw {row['engine_over_raw']:.2f}")
    print(f"  peak host RSS {rss / 2**20:,.0f} MiB (before the run {rss0 / 2**20:,.0f} MiB)")
    Path(args.json).write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
