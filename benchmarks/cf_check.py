"""CF compliance of every kind of cube the tool writes, checked with the IOOS compliance-checker.

    python benchmarks/cf_check.py [--checker cf:1.11] [--dir DIR] [--keep] [--verbose]

Writes, with ``llm-sweep run`` / ``llm-sweep combine`` into a temporary folder:

    seed         sweeps/seed.toml (int64 quantities, no mask)
    arch         sweeps/llama-gqa.toml with its axes sorted (a ``valid`` mask; invalid points hold the fill)
    memory       sweeps/llama3-context.toml without its query (float64 byte counts, a mask)
    query        sweeps/llama3-context.toml (an on-device query result)
    combined     sweeps/seed.toml run as ``--part 0/2`` and ``--part 1/2``, then ``llm-sweep combine``
    categorical  CATEGORICAL below: string labels (recompute, gpu) and integers out of order (zero) as
                 codes beside their ``<dim>_label`` coordinates (``engine.sinks.categorical``)
    catquery     CATEGORICAL with an on-device query over recompute, tp, pp and dp: ``best_recompute``
                 as codes, with the fill where nothing fits; gpu, zero and batch kept
    catcombined  CATEGORICAL run as ``--part 0/2`` and ``--part 1/2`` (split along recompute), combined
    zarr         CATEGORICAL as a zarr v3 store (``-o cube.zarr``), copied into netCDF for the checker
                 (which reads no zarr v3): variables, attributes and ``coordinates`` as the store holds
                 them, ``flag_values`` given their variable's type (zarr attributes are JSON, untyped).
                 Every array's data type must have a zarr v3 specification (labels: ``string``,
                 variable-length UTF-8, not ``FixedLengthUTF32``)

then runs the compliance-checker's ``cf`` suites on each: ``--checker`` (the newest at or below
it that the installed checker has; default cf:1.11, the Conventions the cubes declare) and the newest
the checker has (cf:1.11 in compliance-checker 6.1). It prints a table of scores and every failed check,
and exits 1 when a check fails, the checker raises on a cube (an exception it prints as a warning
while reporting "All tests passed!"; listed here) or a zarr array's data type has no v3
specification. Under a suite newer than the declared Conventions, its one complaint that the
Conventions attribute names an older version is shown in the table and not counted. Needs
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

CATEGORICAL = """
[sweep]
arch = "gpt2"
quantities = ["step_time", "mem_peak"]

[options]
memory_model = "korthikanti"
precision = "bf16"
attention = "flash"

[fixed]
n_gpus = 8
seq_len = 1024
global_batch = 16

[axes]
recompute = ["none", "selective", "full"]
tp = [1, 2, 4]
zero = [3, 1, 2]
pp = [1, 2]
dp = [1, 2, 4, 8]
gpu = ["a100", "h100"]
batch = [1, 2]
"""
CATEGORICAL_QUERY = ("--where", "mem_peak <= 2GiB", "--where", "step_time <= 0.012", "--minimize", "step_time",
                     "--over", "recompute,tp,pp,dp")

# zarr v3 data types with a specification: the core ones, and variable-length UTF-8 strings (zarr-extensions)
ZARR_V3_TYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
                 "float32", "float64", "complex64", "complex128", "string"}
SPECS = ("llama-gqa.toml", "memory.toml", "categorical.toml")  # the specs write_cubes writes into the folder
OLDER_CONVENTIONS = re.compile(r'Conventions global attribute does not contain "CF-[\d.]+"')


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
    """Write one cube of each kind into ``folder``; {kind: path} (the zarr cube: a store)."""
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

    cubes["combined"] = _combined(folder, sweeps / "seed.toml", "parts", "combined")

    spec = folder / "categorical.toml"
    spec.write_text(CATEGORICAL)
    cubes["categorical"] = folder / "categorical.nc"
    _run("run", spec, "-o", cubes["categorical"], "--quiet")
    cubes["catquery"] = folder / "catquery.nc"
    _run("run", spec, "-o", cubes["catquery"], *CATEGORICAL_QUERY, "--quiet")
    cubes["catcombined"] = _combined(folder, spec, "catparts", "catcombined")
    cubes["zarr"] = folder / "categorical.zarr"
    _run("run", spec, "-o", cubes["zarr"], "--quiet")
    return cubes


def _combined(folder: Path, spec: Path, parts: str, name: str) -> Path:
    """``spec`` run as two parts, then joined by ``llm-sweep combine``: the combined file."""
    for i in range(2):
        _run("run", spec, "-o", folder / f"{parts}.nc", "--part", f"{i}/2", "--quiet")
    out = folder / f"{name}.nc"
    _run("combine", *sorted(folder.glob(f"{parts}.part*-of-002.nc")), "-o", out)
    return out


def unspecified_zarr_types(store: Path) -> list[str]:
    """``array: data type`` of each array of a zarr v3 store whose data type has no v3 specification."""
    meta = json.loads((store / "zarr.json").read_text())
    arrays = meta.get("consolidated_metadata", {}).get("metadata") or {
        str(p.parent.relative_to(store)): json.loads(p.read_text()) for p in store.glob("*/zarr.json")}
    found = []
    for name, array in sorted(arrays.items()):
        if array.get("node_type") != "array":
            continue
        data_type = array["data_type"]
        kind = data_type if isinstance(data_type, str) else data_type.get("name")
        if kind not in ZARR_V3_TYPES:
            found.append(f"{name}: {kind}")
    return found


def zarr_as_netcdf(store: Path, path: Path) -> Path:
    """The store's variables and attributes, undecoded, written to netCDF; ``flag_values`` in their variable's
    type (JSON attributes come back as int64)."""
    import numpy as np
    import xarray as xr

    with xr.open_dataset(store, engine="zarr", decode_cf=False) as ds:
        for var in ds.variables.values():
            if "flag_values" in var.attrs:
                var.attrs["flag_values"] = np.asarray(var.attrs["flag_values"], dtype=var.dtype)
        ds.to_netcdf(path, engine="netcdf4", format="NETCDF4")
    return path


def _checker_name(wanted: str) -> str:
    have = _cf_suites()
    if wanted in have:
        return wanted
    below = [k for k in have if _version(k) <= _version(wanted)]
    if not below:
        raise SystemExit(f"the installed compliance-checker has no cf suite at or below {wanted}: {sorted(have)}")
    return max(below, key=_version)


def _cf_suites() -> list[str]:
    from compliance_checker.runner import CheckSuite

    CheckSuite.load_all_available_checkers()
    return [k for k in CheckSuite.checkers if k.startswith("cf:") and k[3:].replace(".", "").isdigit()]


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name[3:].split("."))


def check(path: Path, checker: str, declared: str) -> dict:
    """Score, failed checks and exceptions of one file: {scored, possible, failures: [(priority, name, messages)],
    expected: [...] (a suite newer than the ``declared`` Conventions saying so), errors: [check: exception]}."""
    from compliance_checker.runner import CheckSuite

    suite = CheckSuite()
    ds = suite.load_dataset(str(path))
    try:
        groups, errors = suite.run_all(ds, [checker], [], [])[checker]
    finally:
        ds.close()
    report = suite.dict_output(checker, groups, str(path), 2)  # 2: the checker's "normal" criteria
    failures, expected = [], []
    for priority in ("high_priorities", "medium_priorities", "low_priorities"):
        for item in report.get(priority, []):
            if item["value"][0] >= item["value"][1]:
                continue
            failure = (priority.split("_")[0], item["name"], item.get("msgs", []))
            newer = _version(checker) > _version(declared)
            if newer and item["value"][1] - item["value"][0] == 1 and any(map(OLDER_CONVENTIONS.search, failure[2])):
                expected.append(failure)
            else:
                failures.append(failure)
    return {"scored": report["scored_points"], "possible": report["possible_points"], "failures": failures,
            "expected": expected, "errors": [f"{name}: {exc[0]}" for name, exc in errors.items()]}


def report(checker: str, results: dict[str, dict], verbose: bool) -> bool:
    """Print one suite's table and details; True when every cube passed."""
    print(f"\ncompliance-checker {checker}")
    print(f"{'cube':<12} {'score':>9}  {'pct':>6}  failed checks")
    for kind, r in results.items():
        pct = 100 * r["scored"] / r["possible"] if r["possible"] else 100.0
        names = [f"{name} ({prio})" for prio, name, _ in r["failures"]] + \
            [f"checker raised in {e.split(':')[0]}" for e in r["errors"]] + \
            [f"{name} ({prio}: declared an older CF; not counted)" for prio, name, _ in r["expected"]]
        print(f"{kind:<12} {r['scored']:>4}/{r['possible']:<4}  {pct:5.1f}%  {', '.join(names) or '-'}")
    passed = True
    for kind, r in results.items():
        for prio, name, msgs in r["failures"] + r["expected"]:
            passed &= (prio, name, msgs) in r["expected"]
            shown = msgs if verbose else msgs[:3]
            print(f"\n{kind}: {name} ({prio})")
            for m in shown:
                print(f"    {m}")
            if len(msgs) > len(shown):
                print(f"    ... {len(msgs) - len(shown)} more (--verbose)")
        for error in r["errors"]:
            passed = False
            print(f"\n{kind}: the checker raised in {error}")
    return passed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checker", default="cf:1.11", help="cf suite to run (default cf:1.11, the Conventions declared); "
                                                         "the newest cf suite of the checker runs as well")
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
    declared = _checker_name(args.checker)
    suites = list(dict.fromkeys([declared, max(_cf_suites(), key=_version)]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir) if args.dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cubes = write_cubes(folder)
        bad_types = unspecified_zarr_types(cubes["zarr"])
        cubes["zarr"] = zarr_as_netcdf(cubes["zarr"], folder / "zarr-copy.nc")
        results = {s: {kind: check(path, s, declared) for kind, path in cubes.items()} for s in suites}
        if args.dir and not args.keep:
            import shutil

            for p in [*folder.glob("*.nc"), *(folder / name for name in SPECS)]:
                p.unlink(missing_ok=True)
            shutil.rmtree(folder / "categorical.zarr", ignore_errors=True)
    passed = all([report(s, results[s], args.verbose) for s in suites])
    print("\nzarr store: " + ("; ".join(bad_types) + " (no zarr v3 specification)" if bad_types else
                            "every array's data type has a zarr v3 specification"))
    return 0 if passed and not bad_types else 1


if __name__ == "__main__":
    sys.exit(main())
