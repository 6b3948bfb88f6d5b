"""End to end: a >= 4 GB cube streamed to netCDF vs the raw sequential write speed of the same disk.

    python benchmarks/end_to_end.py [--gigabytes 4] [--compression 0] [--dir /tmp] [--format netcdf|zarr|both]
                                    [--repeat 3]
    python benchmarks/end_to_end.py --seed [--repeat 3] [--dir /tmp]

Writes a seed cube of about --gigabytes uncompressed (3 int64 quantities over every axis, and
params_total over its natural dims d_model x n_layers) with engine.run and into a zarr store
(ZarrSink), ``--repeat`` rounds of one run per format, between writes of the same number of bytes with
plain os.write in 64 MiB blocks (+ fsync) as the disk's ceiling; one raw write before them warms the disk
and is not counted. Each run is compared with the mean of the raw writes either side of it; the median
ratio is reported. Peak host RSS of the streamed runs is read from /proc/self/status (VmHWM). Prints a
table and writes end_to_end.json beside this script; the cubes and raw files are deleted.

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
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import engine
from engine.runtime.plan import parse_bytes


def peak_rss() -> int:
    """This process's peak resident set (VmHWM) since it started or since ``reset_peak_rss``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss() -> None:
    """Start VmHWM over from the current RSS (Linux: ``5`` into /proc/self/clear_refs), so each run's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gigabytes", type=float, default=4.0)
    ap.add_argument("--compression", type=int, default=0)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--max-device-mem", default=None, help="default: the engine's own budget")
    ap.add_argument("--json", default=None, help="default: end_to_end.json (end_to_end_seed.json with --seed)")
    ap.add_argument("--seed", action="store_true", help="time sweeps/seed.toml end to end, natural vs dense dims")
    ap.add_argument("--repeat", type=int, default=3, help="runs per format (and per mode with --seed)")
    ap.add_argument("--format", choices=("netcdf", "zarr", "both"), default="both",
                    help="the streamed cube's format (default: both, taking turns between the raw writes)")
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
    formats = ("netcdf", "zarr") if args.format == "both" else (args.format,)
    rows = stream(formats, req, Path(args.dir), budget, args.repeat)
    Path(args.json).write_text(json.dumps(rows, indent=1))


def stream(formats, req, folder: Path, budget, repeat: int = 3) -> dict:
    """``repeat`` rounds of one streamed run into each of ``formats`` (each synced to disk), raw writes of the
    same bytes between them; one row per format.

    The disk of a VM is noisy (the raw write alone varies 0.4-2 GB/s between runs here) and a write is slowed
    by what came before it (right after a 4 GB file is deleted a write can take twice as long), so: one raw
    write first warms the disk and is not counted, then raw writes and streamed runs alternate (R E R E R ...,
    the formats taking turns) and each run is compared with the mean of the raw writes on either side of it.
    Reports the median and the best ratio, and the peak RSS of the streamed runs (VmHWM, which includes what
    the process held before)."""
    from engine.runtime.dims import natural_dims

    nbytes = sum(math.prod(len(req.axes[d]) for d in dims) * 8 for dims in natural_dims(req).values())
    raw_write(folder, nbytes)  # warm-up, not counted
    os.sync()
    before = raw_write(folder, nbytes)
    pairs = {fmt: [] for fmt in formats}
    rss = {fmt: 0 for fmt in formats}
    last = {}
    for _ in range(repeat):
        for fmt in formats:
            os.sync()  # every timed step starts with nothing dirty: the last one's writeback is not billed to it
            reset_peak_rss()
            t_engine, size, res = engine_write(fmt, req, folder, budget)
            rss[fmt] = max(rss[fmt], peak_rss())
            last[fmt] = (size, res)
            os.sync()
            after = raw_write(folder, nbytes)
            pairs[fmt].append((t_engine, (before + after) / 2))
            before = after
    rows = {}
    for fmt in formats:
        size, res = last[fmt]
        ratios = sorted(t_raw / t_engine for t_engine, t_raw in pairs[fmt])
        t_engine = statistics.median(t for t, _ in pairs[fmt])
        t_raw = statistics.median(t for _, t in pairs[fmt])
        row = rows[fmt] = {
            "format": fmt, "points": req.points, "bytes": nbytes, "stored_bytes": size,
            "compression": req.compression, "chunks": res.plan.n_chunks, "repeat": repeat,
            "engine_s": [t for t, _ in pairs[fmt]], "raw_s": [t for _, t in pairs[fmt]],
            "engine_GBps": nbytes / t_engine / 1e9, "raw_GBps": nbytes / t_raw / 1e9,
            "engine_over_raw": statistics.median(ratios), "engine_over_raw_best": ratios[-1],
            "peak_rss_bytes": rss[fmt]}
        print(f"{fmt}: {req.points:,} points, {nbytes / 1e9:.2f} GB uncompressed -> {size / 1e9:.2f} GB stored in "
              f"{res.plan.n_chunks} chunks; {repeat} runs, each between two raw writes")
        print(f"  engine  {t_engine:7.2f} s median  {row['engine_GBps']:.2f} GB/s (last run: compile "
              f"{res.compile_seconds:.2f}, evaluate {res.eval_seconds:.2f}, write {res.write_seconds:.2f})")
        print(f"  raw     {t_raw:7.2f} s median  {row['raw_GBps']:.2f} GB/s (the mean of the writes either side)")
        print(f"  engine/raw per run {', '.join(f'{r:.2f}' for r in ratios)}: median {row['engine_over_raw']:.2f}")
        print(f"  peak host RSS {rss[fmt] / 2**20:,.0f} MiB")
    return rows


def engine_write(fmt: str, req, folder: Path, budget):
    """One streamed run into ``fmt``, synced: (seconds, bytes on disk, the run's result); the cube is deleted."""
    import shutil

    from engine.files import disk_bytes
    from engine.sinks.zarr_store import ZarrSink

    out = folder / ("llm_sweep_e2e.zarr" if fmt == "zarr" else "llm_sweep_e2e.nc")
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    if fmt == "zarr":
        res = engine.run(req, ZarrSink(out), budget)
    else:
        res = engine.run(req, out, budget)
    t_sync = time.perf_counter()
    sync(out)
    seconds = time.perf_counter() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(f"    {fmt} run {t_sync - t0:.2f} s + sync {seconds - (t_sync - t0):.2f} s (evaluate {res.eval_seconds:.2f}, "
          f"write {res.write_seconds:.2f}), {faults * resource.getpagesize() / 1e9:.2f} GB of page faults",
          flush=True)
    size = disk_bytes(out)
    shutil.rmtree(out) if out.is_dir() else out.unlink()
    return seconds, size, res


def raw_write(folder: Path, nbytes: int) -> float:
    """Seconds to write ``nbytes`` with os.write in 64 MiB blocks and fsync them: the disk's ceiling."""
    raw = folder / "llm_sweep_raw.bin"
    block = memoryview(np.random.default_rng(0).integers(0, 2**62, size=(64 << 20) // 8, dtype=np.int64)).cast("B")
    t0 = time.perf_counter()
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    written = 0
    while written < nbytes:
        written += os.write(fd, block[: min(len(block), nbytes - written)])
    os.fsync(fd)
    os.close(fd)
    seconds = time.perf_counter() - t0
    raw.unlink()
    return seconds


def sync(path: Path) -> None:
    """Flush a file, or a store's files, to the disk: fsync of a file; for a store (a folder of many files) one
    os.sync (fsync of each of its hundreds of files would time the journal's commits, not the write)."""
    if path.is_file():
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    else:
        os.sync()


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
