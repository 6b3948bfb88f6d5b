"""CF compliance of every kind of cube the tool writes, checked with the IOOS compliance-checker.

    python benchmarks/cf_check.py [--checker cf:1.10] [--dir DIR] [--keep] [--verbose]

Writes, with ``llm-sweep run`` / ``llm-sweep combine`` into a temporary folder:

    seed      sweeps/seed.toml (int64 quantities, no mask)
    arch      sweeps/llama-gqa.toml with its axes sorted (a ``valid`` mask; invalid points hold the fill)
    memory    sweeps/llama3-context.toml without its query (float64 byte counts, a mask)
    query     sweeps/llama3-context.toml (an on-device query result)
    combined  sweeps/seed.toml run as ``--part 0/2`` and ``--part 1/2``, then ``llm-sweep combine``

then runs the compliance-checker's ``cf`` suite (the newest at or below --checker that the installed
checker has) on each and prints a table of scores and every failed check. Needs
``pip install compliance-checker`` (it brings cf-units and its UDUNITS-2 library); exits 2 with that
advice when it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _sorted_axes(text: str) -> str:
    """The spec text with every list-valued axis (``name = [..]``) sorted ascending."""
    def fix(m):
        values = sorted(int(v) if re.fullmatch(r"-?\d+", v.strip()) else float(v) for v in m.group(2).split(","))
        return f"{m.group(1)}[{', '.join(map(str, values))}]"

    head, sep, axes = text.partition("[axes]")
    axes, nxt, rest = axes.partition("\n[")
    return head + sep + re.sub(r"^(\s*\w+\s*=\s*)\[([^\]]*)\]", fix, axes, flags=re.M) + nxt + rest


def _run(*args) -> None:
    r = subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    if r.returncode != 0:
        raise SystemExit(f"llm-sweep {' '.join(map(str, args))} failed:\n{r.stdout}{r.stderr}")


def write_cubes(folder: Path) -> dict[str, Path]:
    """Write one cube of each kind into ``folder``; {kind: path}."""
    sweeps = REPO / "sweeps"
    cubes = {}
    cubes["seed"] = folder / "seed.nc"
    _run("run", sweeps / "seed.toml", "-o", cubes["seed"], "--quiet")

    arch = folder / "llama-gqa.toml"
    arch.write_text(_sorted_axes((sweeps / "llama-gqa.toml").read_text()))
    cubes["arch"] = folder / "arch.nc"
    _run("run", arch, "-o", cubes["arch"], "--quiet")

    context = (sweeps / "llama3-context.toml").read_text()
    memory = folder / "memory.toml"
    memory.write_text(context.split("[query]")[0])
    cubes["memory"] = folder / "memory.nc"
    _run("run", memory, "-o", cubes["memory"], "--quiet")

    cubes["query"] = folder / "query.nc"
    _run("run", sweeps / "llama3-context.toml", "-o", cubes["query"], "--quiet")

    parts = folder / "parts.nc"
    for i in range(2):
        _run("run", sweeps / "seed.toml", "-o", parts, "--part", f"{i}/2", "--quiet")
    part_files = sorted(folder.glob("parts.part*-of-002.nc"))
    cubes["combined"] = folder / "combined.nc"
    _run("combine", *part_files, "-o", cubes["combined"])
    return cubes


def _checker_name(wanted: str) -> str:
    from compliance_checker.runner import CheckSuite

    CheckSuite.load_all_available_checkers()
    have = [k for k in CheckSuite.checkers if k.startswith("cf:") and k[3:].replace(".", "").isdigit()]
    if wanted in have:
        return wanted
    version = lambda k: tuple(int(x) for x in k[3:].split("."))  # noqa: E731
    below = [k for k in have if version(k) <= version(wanted)]
    if not below:
        raise SystemExit(f"the installed compliance-checker has no cf suite at or below {wanted}: {sorted(have)}")
    return max(below, key=version)


def check(path: Path, checker: str) -> dict:
    """Score and failed checks of one file: {scored, possible, failures: [(priority, name, messages)]}."""
    from compliance_checker.runner import ComplianceChecker

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        ComplianceChecker.run_checker(str(path), [checker], 0, "normal", output_filename=out, output_format="json")
        report = json.loads(Path(out).read_text())[checker]
    finally:
        Path(out).unlink(missing_ok=True)
    failures = []
    for priority in ("high_priorities", "medium_priorities", "low_priorities"):
        for item in report.get(priority, []):
            if item["value"][0] < item["value"][1]:
                failures.append((priority.split("_")[0], item["name"], item.get("msgs", [])))
    return {"scored": report["scored_points"], "possible": report["possible_points"], "failures": failures}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checker", default="cf:1.10", help="cf suite to run (default cf:1.10, the Conventions declared)")
    ap.add_argument("--dir", default=None, help="folder for the cubes (default: a temporary one, deleted)")
    ap.add_argument("--keep", action="store_true", help="keep the cubes (with --dir)")
    ap.add_argument("--verbose", action="store_true", help="print every message of every failed check")
    args = ap.parse_args()
    try:
        import compliance_checker  # noqa: F401
    except ImportError:
        print("cf_check: the IOOS compliance-checker is not installed; install it with\n"
              "    pip install compliance-checker\n"
              "(it needs cf-units and the UDUNITS-2 library: apt-get install libudunits2-dev)", file=sys.stderr)
        return 2
    checker = _checker_name(args.checker)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir) if args.dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cubes = write_cubes(folder)
        results = {kind: check(path, checker) for kind, path in cubes.items()}
        if args.dir and not args.keep:
            for p in folder.glob("*.nc"):
                p.unlink()
    print(f"compliance-checker {checker}")
    print(f"{'cube':<10} {'score':>9}  {'pct':>6}  failed checks")
    for kind, r in results.items():
        pct = 100 * r["scored"] / r["possible"] if r["possible"] else 100.0
        names = ", ".join(f"{name} ({prio})" for prio, name, _ in r["failures"]) or "-"
        print(f"{kind:<10} {r['scored']:>4}/{r['possible']:<4}  {pct:5.1f}%  {names}")
    failed = False
    for kind, r in results.items():
        for prio, name, msgs in r["failures"]:
            failed = True
            shown = msgs if args.verbose else msgs[:3]
            print(f"\n{kind}: {name} ({prio})")
            for m in shown:
                print(f"    {m}")
            if len(msgs) > len(shown):
                print(f"    ... {len(msgs) - len(shown)} more (--verbose)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
