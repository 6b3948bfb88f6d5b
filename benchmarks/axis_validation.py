"""How long a spec with a long axis takes to validate, next to reading its TOML (the floor).

Issue 8: axis checks were quadratic (a 100,000-value list took 76 s). Now they are O(n) with
numpy: this prints, per axis length, the seconds tomllib takes to read the file, the seconds
``load_spec`` takes in all, and their ratio (validation overhead over reading), for lists and for
range tables (whose TOML is one line, so only the validation counts).

    python benchmarks/axis_validation.py [--max 1e7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.request.spec import load_spec  # noqa: E402

HEAD = '[sweep]\nformula_set = "seed"\nquantities = ["params_total"]\n[fixed]\nvocab = 50000\n[axes]\nn_layers = [12]\n'


def measure(text: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.toml"
        path.write_text(text)
        t0 = time.perf_counter()
        tomllib.loads(path.read_text())
        read = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_spec(path)
        total = time.perf_counter() - t0
    return read, total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max", type=float, default=1e7, help="largest axis length (default 1e7)")
    args = p.parse_args()
    print(f"{'axis':<8} {'values':>12} {'read TOML s':>12} {'load_spec s':>12} {'overhead':>9}")
    n = 10**5
    while n <= args.max:
        if n <= 10**6:  # a 10^7-value list is a 90 MB TOML file: tomllib alone takes minutes
            text = HEAD + "d_model = [" + ", ".join(map(str, range(1, n + 1))) + "]\n"
            read, total = measure(text)
            print(f"{'list':<8} {n:>12,} {read:>12.3f} {total:>12.3f} {(total - read) / read:>8.2f}x")
        read, total = measure(HEAD + f"d_model = {{ start = 1, stop = {n} }}\n")
        print(f"{'range':<8} {n:>12,} {read:>12.4f} {total:>12.3f} {'':>9}")
        n *= 10


if __name__ == "__main__":
    main()
