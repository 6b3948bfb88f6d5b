"""End to end: a >= 4 GB cube streamed to netCDF vs the raw sequential write speed of the same disk.

    python benchmarks/end_to_end.py [--gigabytes 4] [--compression 0] [--dir /tmp] [--format netcdf|zarr|both]
    python benchmarks/end_to_end.py --seed [--repeat 3] [--dir /tmp]

Writes a seed cube of about --gigabytes uncompressed (3 int64 quantities over every axis, and
params_total over its natural dims d_model x n_layers) with engine.run_to_netcdf and into a zarr store
(ZarrSink), each followed by a write of the same number of bytes with plain os.write in 64 MiB blocks (+ fsync) as the disk's ceiling. Peak
host RSS of the streamed run is read from /proc/self/status (VmHWM) before the raw write. Prints a
table and writes end_to_end.json beside this script; both files are deleted afterwards.

``--seed``: the default sweep end to end, ``llm-sweep run sweeps/seed.toml -o DIR/seed.nc`` in a fresh
process (startup and imports included), with natural dims (each quantity over the dims it depends on)
and dense (every quantity over every axis: the cube before natural dims, emulated by compiling every
output over every axis), alternating, ``--repeat`` times each. Prints wall seconds (min and median), the
run's own seconds, the file on disk and uncompressed; writes end_to_end_seed.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
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
    ap.add_argument("--json", default=None, help="default: end_to_end.json (end_to_end_seed.json with --seed)")
    ap.add_argument("--seed", action="store_true", help="time sweeps/seed.toml end to end, natural vs dense dims")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--format", choices=("netcdf", "zarr", "both"), default="both",
                    help="the streamed cube's format (default: both, each against its own raw write)")
    args = ap.parse_args()
    if args.seed:
        return seed(args)
    args.json = args.json or str(Path(__file__).with_suffix(".json"))
    quantities = ["params_total", "mem_steady", "mem_activations", "mem_peak"]
    points = args.gigabytes * 1e9 / (8 * (len(quantities) - 1))  # params_total spans d_model x n_layers only
    n_layers, batch, seq_len = 128, 16, 64
    d_model = int(np.ceil(points / (n_layers * batch * seq_len)))
    spec = {"sweep": {"formula_set": "seed", "quantities": quantities, "compression": args.compression},
            "fixed": {"vocab": 50257},
            "axes": {"d_model": list(range(64, 64 * (d_model + 1), 64)), "n_layers": list(range(1, n_layers + 1)),
                     "batch": list(range(1, batch + 1)), "seq_len": list(range(128, 128 * (seq_len + 1), 128))}}
    req = engine.parse_spec(spec)
    budget = parse_bytes(args.max_device_mem) if args.max_device_mem else None
    rows = {}
    for fmt in (("netcdf", "zarr") if args.format == "both" else (args.format,)):
        rows[fmt] = stream(fmt, req, Path(args.dir), budget)
    Path(args.json).write_text(json.dumps(rows, indent=1))


def stream(fmt: str, req, folder: Path, budget) -> dict:
    """One streamed run into ``fmt`` (synced to disk), then the same bytes written raw: the ratio and peak RSS."""
    import shutil

    from engine.files import disk_bytes
    from engine.runtime.dims import natural_dims
    from engine.sinks.zarr_store import ZarrSink

    out = folder / ("llm_sweep_e2e.zarr" if fmt == "zarr" else "llm_sweep_e2e.nc")
    rss0 = peak_rss()
    t0 = time.perf_counter()
    if fmt == "zarr":
        res = engine.run(req, ZarrSink(out), budget)
    else:
        res = engine.run_to_netcdf(req, out, budget=budget)
    sync(out)
    t_engine = time.perf_counter() - t0
    rss = peak_rss()
    nbytes = sum(math.prod(len(req.axes[d]) for d in dims) * 8 for dims in natural_dims(req).values())
    size = disk_bytes(out)
    shutil.rmtree(out) if out.is_dir() else out.unlink()

    raw = folder / "llm_sweep_raw.bin"
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
    row = {"format": fmt, "points": req.points, "bytes": nbytes, "stored_bytes": size,
           "compression": req.compression, "chunks": res.plan.n_chunks, "engine_s": t_engine,
           "engine_GBps": nbytes / t_engine / 1e9, "raw_s": t_raw, "raw_GBps": nbytes / t_raw / 1e9,
           "engine_over_raw": t_raw / t_engine, "peak_rss_bytes": rss, "rss_before_bytes": rss0}
    print(f"{fmt}: {req.points:,} points, {nbytes / 1e9:.2f} GB uncompressed -> {size / 1e9:.2f} GB stored in "
          f"{res.plan.n_chunks} chunks")
    print(f"  engine  {t_engine:7.2f} s  {row['engine_GBps']:.2f} GB/s (compile {res.compile_seconds:.2f}, "
          f"evaluate {res.eval_seconds:.2f}, write {res.write_seconds:.2f})")
    print(f"  raw     {t_raw:7.2f} s  {row['raw_GBps']:.2f} GB/s   engine/raw {row['engine_over_raw']:.2f}")
    print(f"  peak host RSS {rss / 2**20:,.0f} MiB (before the run {rss0 / 2**20:,.0f} MiB)")
    return row


def sync(path: Path) -> None:
    """fsync a file, or every file of a store."""
    for f in ([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]):
        fd = os.open(f, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


def raw_bytes(path: Path) -> int:
    """Uncompressed bytes of a cube's data variables (each over its own dims)."""
    import netCDF4

    with netCDF4.Dataset(str(path)) as nc:
        return sum(v.size * v.dtype.itemsize for name, v in nc.variables.items() if name not in nc.dimensions)


# every output compiled over every axis: what the sinks wrote before natural dims
DENSE = """
import sys
from dataclasses import replace
import engine.runtime.sweep as sweep
from engine.runtime.dims import natural_dims
from engine.cli import main
real = sweep.slabs
sweep.slabs = lambda request: [replace(s, dims={q: tuple(s.request.axes) for q in natural_dims(s.request)})
                               for s in real(request)]
sys.exit(main(sys.argv[1:]))
"""
NATURAL = "import sys\nfrom engine.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def seed(args) -> None:
    repo = Path(__file__).resolve().parents[1]
    out = Path(args.dir) / "llm_sweep_seed.nc"
    runs: dict[str, list[tuple[float, float]]] = {"dense": [], "natural": []}
    files = {}
    for _ in range(args.repeat):
        for mode, code in (("dense", DENSE), ("natural", NATURAL)):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", code, "run", "sweeps/seed.toml", "-o", str(out)], cwd=repo,
                               capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            own = float(re.search(r"seconds\s+([0-9.]+)", r.stdout).group(1))
            runs[mode].append((wall, own))
            files[mode] = {"file_bytes": out.stat().st_size, "raw_bytes": raw_bytes(out)}
    out.unlink()
    row = {}
    for mode, times in runs.items():
        walls, owns = [w for w, _ in times], [o for _, o in times]
        row[mode] = {"wall_min_s": min(walls), "wall_median_s": statistics.median(walls),
                     "run_median_s": statistics.median(owns), **files[mode]}
        print(f"{mode:8s} wall {min(walls):5.2f} s min, {statistics.median(walls):5.2f} s median; run "
              f"{statistics.median(owns):5.2f} s; file {files[mode]['file_bytes'] / 2**20:6.1f} MiB "
              f"({files[mode]['raw_bytes'] / 2**20:6.1f} MiB uncompressed)")
    d, n = row["dense"], row["natural"]
    print(f"natural dims: {d['raw_bytes'] / n['raw_bytes']:.1f}x smaller uncompressed, "
          f"{d['file_bytes'] / n['file_bytes']:.1f}x on disk, {d['wall_median_s'] / n['wall_median_s']:.1f}x faster "
          f"end to end (median wall), {d['run_median_s'] / n['run_median_s']:.1f}x the run itself")
    Path(args.json or Path(__file__).with_name("end_to_end_seed.json")).write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
