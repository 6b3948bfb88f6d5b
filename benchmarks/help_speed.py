"""How long ``llm-sweep --help`` and each command's ``--help`` take, in a fresh process each time.

    python benchmarks/help_speed.py [--repeat 10]

Runs the console script (``llm-sweep`` beside this interpreter, else ``python -m engine``) with
``--help`` and with ``COMMAND --help`` for every command, ``--repeat`` times each, and prints the
median wall seconds and whether the run imported sympy, numpy or jax (read from one more run under
``PYTHONPROFILEIMPORTTIME=1``). Issue 20's target: no sympy and at most 0.25 s each. A baseline is
another checkout: ``PYTHONPATH=OTHER python benchmarks/help_speed.py --module`` (``python -m engine``
imports the package from PYTHONPATH; the console script does not).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("sympy", "numpy", "jax")


def _launcher(module: bool) -> list[str]:
    script = Path(sys.executable).with_name("llm-sweep")
    if script.exists() and not module:
        return [str(script)]
    return [sys.executable, "-m", "engine"]


def _commands() -> list[str]:
    """The commands of the checkout being timed, read from its own parser (``engine.commands.COMMANDS`` here;
    an older checkout has no registry)."""
    code = ("import argparse\nfrom engine.cli import _parser\n"
            "sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))\n"
            "print(' '.join(sub.choices))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def _heavy(cmd: list[str]) -> list[str]:
    """The heavy packages a run imports (its import-time profile on stderr)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    err = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")}
    return [h for h in HEAVY if h in names]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10, help="runs per command (default 10)")
    ap.add_argument("--module", action="store_true", help="run python -m engine, not the console script")
    args = ap.parse_args()
    launcher = _launcher(args.module)
    print(f"{' '.join(launcher)}: median wall of {args.repeat} runs")
    for words in ([], *([c] for c in _commands())):
        cmd = [*launcher, *words, "--help"]
        walls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            walls.append(time.perf_counter() - start)
        heavy = _heavy(cmd)
        label = " ".join(["llm-sweep", *words, "--help"])
        print(f"{label:<28} {statistics.median(walls):6.3f} s   imports {', '.join(heavy) or 'none of ' + '/'.join(HEAVY)}",
              flush=True)


if __name__ == "__main__":
    main()
