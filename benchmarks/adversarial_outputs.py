"""Adversarial campaign on outputs (issue 23 items 1-2): two runs on one target, and stops at random times.

    python benchmarks/adversarial_outputs.py --pairs 20 --signals 40 [--seed 0] [--kinds zarr,nc] [--json out.json]

Local files only, bounded: every trial is a few `llm-sweep run` processes (`python -m engine run`) on a ~4.7 M-point
seed cube (~45 MB as zarr, ~24 MB as netCDF, about 1.3 s of writing) in a temporary folder, each process given at
most --timeout seconds.

Pair trials (--pairs N, alternating .zarr and .nc): run A and run B write the same target at once (B starts 0-1.5 s
after A, so their writes overlap), from different specs (A and B differ in their batch axis, so the target tells
whose cube it holds); the target starts absent or holding an older cube (spec OLD). B is one of: left to finish
("both"), stopped by SIGINT/SIGTERM/SIGHUP at a random time ("stop-b"), killed by SIGKILL at a random time
("kill-b"); on zarr also "shares" (A written as two --part shares at once, B a single run beside them).

Signal trials (--signals M): one run A onto a target that is absent or holds OLD, stopped by SIGINT, SIGTERM or
SIGHUP at a random time: uniform over the run ("any"), 0-2 s after its staging store or temporary file appears
("writing": the write, consolidate and publish phases), within the last second of a measured run ("end"), or 0-50
ms after its staging store or temporary file is renamed away ("publish": the publish, the deletion of the replaced
store, the summary). A process that dies of the signal itself (before Python runs: the first ~30 ms) is counted
apart ("died"): nothing can answer it, and it must leave the target as it was.

After each trial:
- the target is absent (only if it was before and nothing finished), or a complete cube equal to the in-memory run
  (``engine.run``) of OLD, A or B -- every variable, every point -- and never an incomplete or foreign one;
- statuses and messages tell the truth: a run that exited 0 is A or B whose cube may be at the target; a run that
  says "no output was written" did not change the target; one that says its target "had already been written in
  full" did; a stopped run's stderr is one line with 128 + the signal number; no traceback anywhere;
- nothing hidden is left beside the target by a run that was not SIGKILLed, and what a SIGKILLed one left is gone
  after the next run that completes (and after one last run per folder at the end).

--engine-path DIR runs the processes on another checkout's engine (e.g. `git archive HEAD~3 engine | tar -x -C DIR`)
to measure the same campaign before a fix.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

SPEC = """
[sweep]
formula_set = "seed"
[options]
tied_head = true
[fixed]
vocab = 50000
[axes]
d_model = {{ start = 64, stop = 8192, step = 64 }}
n_layers = {{ start = 1, stop = 96 }}
batch = {{ start = 1, stop = {batch} }}
seq_len = [256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384]
"""
BATCH = {"OLD": 4, "A": 32, "B": 24}  # the batch axis tells the cubes apart
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
KILLED = -signal.SIGKILL
TEMP = re.compile(r"^\.llm-sweep\.[0-9a-f]{8}\.(\d+)\.")


class Campaign:
    def __init__(self, root: Path, engine_path: str | None, timeout: float, rng: random.Random):
        self.root, self.timeout, self.rng = root, timeout, rng
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if engine_path:
            self.env["PYTHONPATH"] = engine_path + os.pathsep + self.env.get("PYTHONPATH", "")
        self.specs = {}
        for name, batch in BATCH.items():
            path = root / f"{name}.toml"
            path.write_text(SPEC.format(batch=batch))
            self.specs[name] = path
        self.folders = {kind: root / kind for kind in ("zarr", "nc")}
        for folder in self.folders.values():
            folder.mkdir()
        self.reference = {name: _in_memory(path) for name, path in self.specs.items()}
        self.pristine = {}  # OLD as each kind, copied onto the target before a trial that starts with it
        self.seconds = {}
        for kind, folder in self.folders.items():
            out = root / f"pristine.{kind}"
            t0 = time.perf_counter()
            proc = self.start(["run", self.specs["OLD"], "-o", out, "--quiet"], root)
            assert proc.wait(timeout) == 0, proc.stderr.read()
            self.pristine[kind] = out
            t0 = time.perf_counter()
            proc = self.start(["run", self.specs["A"], "-o", root / f"timing.{kind}", "--quiet"], root)
            assert proc.wait(timeout) == 0, proc.stderr.read()
            self.seconds[kind] = time.perf_counter() - t0  # a run of A, start-up to exit
            _remove(root / f"timing.{kind}")
        self.killed: set[int] = set()  # pids SIGKILLed: what they left is allowed until the next completed run
        self.trials: list[dict] = []

    # -- processes ----------------------------------------------------------------------------------------

    def start(self, argv, cwd) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "engine", *map(str, argv)], cwd=cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, procs: dict, signals: dict) -> dict:
        """Wait for ``procs`` (name -> Popen), sending ``signals`` (name -> (seconds after start, signum, trigger)):
        a trigger, when given, is a callable that says when the clock starts (None: at once)."""
        t0 = time.perf_counter()
        armed = {name: None for name in signals}
        sent = {}
        deadline = t0 + self.timeout
        while any(p.poll() is None for p in procs.values()) and time.perf_counter() < deadline:
            now = time.perf_counter()
            for name, (delay, signum, trigger) in signals.items():
                if name in sent or procs[name].poll() is not None:
                    continue
                if armed[name] is None and (trigger is None or trigger()):
                    armed[name] = now
                if armed[name] is not None and now - armed[name] >= delay:
                    procs[name].send_signal(signum)
                    sent[name] = (signum, round(now - t0, 3))
                    if signum == signal.SIGKILL:
                        self.killed.add(procs[name].pid)
            time.sleep(0.002)
        results = {}
        for name, p in procs.items():
            if p.poll() is None:
                p.kill()
                p.wait()
                results[name] = {"rc": "hung", "err": ""}
                continue
            err = p.stderr.read()
            p.stdout.read()
            results[name] = {"rc": p.returncode, "err": err, "pid": p.pid, "signal": sent.get(name)}
        return results

    # -- trials -------------------------------------------------------------------------------------------

    def prepare(self, kind: str, prior: str) -> Path:
        target = self.folders[kind] / f"cube.{kind}"
        _remove(target)
        if prior == "OLD":
            (shutil.copytree if kind == "zarr" else shutil.copy2)(self.pristine[kind], target)
        return target

    def pair(self, i: int, kind: str) -> dict:
        rng = self.rng
        modes = ["both", "stop-b", "kill-b"] + (["shares"] if kind == "zarr" else [])
        mode, prior = modes[i // 2 % len(modes)], rng.choice(["absent", "OLD"])
        target = self.prepare(kind, prior)
        folder = target.parent
        procs = {}
        if mode == "shares":
            procs["A0"] = self.start(["run", self.specs["A"], "-o", target.name, "--part", "0/2", "--quiet"], folder)
            procs["A1"] = self.start(["run", self.specs["A"], "-o", target.name, "--part", "1/2", "--quiet"], folder)
        else:
            procs["A"] = self.start(["run", self.specs["A"], "-o", target.name, "--quiet"], folder)
        time.sleep(rng.uniform(0, 1.5))
        procs["B"] = self.start(["run", self.specs["B"], "-o", target.name, "--quiet"], folder)
        signals = {}
        if mode in ("stop-b", "kill-b"):
            signum = rng.choice(STOPS) if mode == "stop-b" else signal.SIGKILL
            signals["B"] = (rng.uniform(0.2, 1.3 * self.seconds[kind]), signum, None)
        results = self.finish(procs, signals)
        return self.check("pair", kind, mode, prior, target, results, {"A0": "A", "A1": "A", "A": "A", "B": "B"})

    def stop(self, i: int, kind: str) -> dict:
        rng = self.rng
        prior = rng.choice(["absent", "OLD"])
        target = self.prepare(kind, prior)
        folder = target.parent
        when = ["any", "writing", "end", "publish"][i % 4]
        signum = STOPS[i // 8 % 3]
        seconds = self.seconds[kind]
        names = set(os.listdir(folder))

        def staging():  # the run's staging store or temporary file has appeared
            return any(n.startswith(".") and n not in names for n in os.listdir(folder))

        seen = []

        def renamed():  # ... and has gone again: renamed onto the target (or, zarr, the replaced store deleted)
            now = staging()
            if now and not seen:
                seen.append(True)
            return bool(seen) and not now

        delay, trigger = {"any": (rng.uniform(0, seconds), None),
                          "writing": (rng.uniform(0, 2.0), staging),
                          "end": (rng.uniform(max(0.0, seconds - 1.0), seconds + 0.2), None),
                          "publish": (rng.uniform(0, 0.05), renamed)}[when]
        quiet = ["--quiet"] if i % 8 >= 4 else []  # the summary printed after the publish: a longer window there
        proc = self.start(["run", self.specs["A"], "-o", target.name, *quiet], folder)
        results = self.finish({"A": proc}, {"A": (delay, signum, trigger)})
        return self.check("signal", kind, when, prior, target, results, {"A": "A"})

    # -- checks -------------------------------------------------------------------------------------------

    def check(self, trial: str, kind: str, mode: str, prior: str, target: Path, results: dict, spec_of: dict) -> dict:
        problems = []
        content = self.identify(target)
        said = {}
        for name, r in results.items():
            rc, err = r["rc"], r["err"]
            if rc == "hung":
                problems.append(f"{name} did not end within {self.timeout} s")
                continue
            if "Traceback" in err or "Fatal Python error" in err or "terminate called" in err:
                problems.append(f"{name}: a traceback or crash: {err.strip().splitlines()[-1:]}")
            lines = [ln for ln in err.strip().splitlines() if ": removed " not in ln]
            if rc == 0:
                said[name] = "finished"
            elif rc == KILLED:
                said[name] = "killed"
            elif r.get("signal") and rc == -r["signal"][0]:
                said[name] = "died"  # of the signal itself, before the interpreter ran the command
            elif isinstance(rc, int) and rc - 128 in {int(s) for s in STOPS}:
                sent = r.get("signal")
                if sent is None or rc != 128 + sent[0]:
                    problems.append(f"{name}: exit {rc} for signal {sent}")
                if len(lines) != 1:
                    problems.append(f"{name}: stopped with {len(lines)} lines on stderr: {lines[:3]}")
                text = lines[-1] if lines else ""
                said[name] = "kept" if text.endswith("no output was written") else \
                    "published" if "had already been written in full" in text else "unclear"
                if said[name] == "unclear":
                    problems.append(f"{name}: the stop message says neither: {text!r}")
            else:
                problems.append(f"{name}: exit {rc}: {lines[-1:] if lines else ''}")
                said[name] = "failed"
        # the target: the old cube, or a complete cube of a run that may have published it
        publishers = {spec_of[n] for n, s in said.items() if s in ("finished", "published", "killed")}
        if content == "incomplete":
            problems.append("the target is incomplete or unreadable")
        elif content == "absent":
            if prior != "absent" or any(s in ("finished", "published") for s in said.values()):
                problems.append("the target was lost")
        elif content == "OLD":
            if prior != "OLD":
                problems.append("an OLD cube appeared")
            if any(s in ("published",) for s in said.values()) or (
                    trial == "pair" and any(s == "finished" for s in said.values())):
                problems.append("a finished run's cube is not at the target")
        elif content not in publishers:
            problems.append(f"the target holds {content}'s cube, but no run of {content} finished or said so")
        for name, s in said.items():
            if s == "published" and content != spec_of[name] and trial == "signal":
                problems.append(f"{name} said its target was written but the target holds {content}")
            if s == "kept" and content == spec_of[name] and not (trial == "pair" and spec_of[name] == "A"):
                problems.append(f"{name} said no output was written but the target holds its cube")
        if trial == "signal" and said.get("A") == "finished" and content != "A":
            problems.append(f"A exited 0 but the target holds {content}")
        # leftovers: none of a run that was not SIGKILLed; a SIGKILLed run's gone after the next completed run
        left = _hidden(target.parent)
        ours = {r.get("pid") for r in results.values()}
        completed = any(s == "finished" for s in said.values())
        for entry in left:
            m = TEMP.match(entry)
            pid = int(m.group(1)) if m else None
            if pid in self.killed and pid in ours:
                continue  # killed in this trial: the next completed run removes it
            if pid in self.killed and not completed:
                continue
            problems.append(f"left beside the target: {entry}")
        record = {"trial": trial, "kind": kind, "mode": mode, "prior": prior, "content": content,
                  "said": said, "rc": {n: r["rc"] for n, r in results.items()},
                  "signal": {n: r.get("signal") for n, r in results.items() if r.get("signal")},
                  "left": left, "problems": problems}
        self.trials.append(record)
        return record

    def identify(self, target: Path) -> str:
        """absent, OLD, A, B (complete and equal to its in-memory run), or incomplete."""
        if not os.path.lexists(target):
            return "absent"
        import engine

        try:
            with engine.open_cube(target) as ds:
                batch = ds.sizes.get("batch")
                name = next((n for n, b in BATCH.items() if b == batch), None)
                if name is None:
                    return "incomplete"
                want = self.reference[name]
                if set(ds.data_vars) != set(want.data_vars) or dict(ds.sizes) != dict(want.sizes):
                    return "incomplete"
                for v in want.data_vars:
                    got = ds[v].broadcast_like(want[v]).transpose(*want[v].dims).values
                    if not np.array_equal(got.astype(np.float64), want[v].values.astype(np.float64), equal_nan=True):
                        return "incomplete"
                return name
        except Exception:
            return "incomplete"

    def final_sweep(self) -> list[str]:
        """One last completed run per folder: nothing hidden may be left after it."""
        problems = []
        for kind, folder in self.folders.items():
            proc = self.start(["run", self.specs["OLD"], "-o", f"cube.{kind}", "--quiet"], folder)
            if proc.wait(self.timeout) != 0:
                problems.append(f"the final run in {kind} failed: {proc.stderr.read().strip()[-200:]}")
            problems += [f"left after the final run: {kind}/{e}" for e in _hidden(folder)]
        return problems


def _in_memory(spec: Path):
    import engine

    return engine.run(engine.load_spec(spec)).dataset


def _hidden(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=20, help="concurrent-run trials (default 20)")
    p.add_argument("--signals", type=int, default=40, help="random-signal trials (default 40)")
    p.add_argument("--kinds", default="zarr,nc", help="targets to try, of zarr and nc (default both)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=300, help="seconds a trial's processes may take")
    p.add_argument("--engine-path", help="run the processes on the engine package found in this folder")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--json", help="write every trial's record here")
    args = p.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    root = Path(tempfile.mkdtemp(prefix="llm-sweep-adversarial-"))
    t0 = time.perf_counter()
    try:
        c = Campaign(root, args.engine_path, args.timeout, random.Random(args.seed))
        print(f"one run of A: {', '.join(f'{k} {s:.1f} s' for k, s in c.seconds.items())}; folder {root}",
              flush=True)
        for i in range(args.pairs):
            r = c.pair(i, kinds[i % len(kinds)])
            print(f"pair {i + 1:3}/{args.pairs} {r['kind']:4} {r['mode']:7} prior {r['prior']:6} -> {r['content']:10}"
                  f" {r['said']} {'; '.join(r['problems']) or 'ok'}", flush=True)
        for i in range(args.signals):
            r = c.stop(i, kinds[i // 4 % len(kinds)])  # each kind gets every timing
            sig = next(iter(r["signal"].values()), None)
            sent = f"{signal.Signals(sig[0]).name} at {sig[1]:.2f} s" if sig else "no signal (finished first)"
            print(f"signal {i + 1:3}/{args.signals} {r['kind']:4} {r['mode']:7} prior {r['prior']:6} {sent:24} -> "
                  f"{r['content']:10} {r['said']} {'; '.join(r['problems']) or 'ok'}", flush=True)
        final = c.final_sweep()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    bad = [t for t in c.trials if t["problems"]]
    print()
    for trial in ("pair", "signal"):
        rows = [t for t in c.trials if t["trial"] == trial]
        if not rows:
            continue
        outcome = Counter((t["kind"], t["mode"], t["content"], tuple(sorted(t["said"].values()))) for t in rows)
        print(f"{trial} trials: {len(rows)}, with a problem: {sum(1 for t in rows if t['problems'])}")
        for (kind, mode, content, said), n in sorted(outcome.items()):
            print(f"  {n:4} x {kind:4} {mode:7} target -> {content:10} runs: {', '.join(said)}")
    problems = Counter(p.split(":")[0] if ":" in p else p for t in bad for p in t["problems"])
    for p_, n in problems.most_common():
        print(f"  problem x{n}: {p_}")
    print(f"final run per folder: {'; '.join(final) or 'nothing left'}")
    print(f"{len(c.trials)} trials in {time.perf_counter() - t0:.0f} s: {len(bad)} with a problem")
    if args.json:
        Path(args.json).write_text(json.dumps({"trials": c.trials, "final": final, "seconds": c.seconds}, indent=1,
                                              default=str))
    return 1 if bad or final else 0


if __name__ == "__main__":
    sys.exit(main())
