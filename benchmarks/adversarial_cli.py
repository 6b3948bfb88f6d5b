"""Adversarial campaigns against the command line (issue 23): fuzzed command lines and random stop signals.

    python benchmarks/adversarial_cli.py fuzz [--cases 10000] [--seed 0] [--json FILE]
    python benchmarks/adversarial_cli.py signals [--trials 200] [--seed 0] [--window 3] [--jobs 2] [--json FILE]

``fuzz`` runs random command lines in this process through ``engine.cli.main`` (stdout and stderr
captured): every command, flags drawn from the parser itself with valid, invalid, non-finite and
huge values, every precision name and alias in every command, nested JSON and TOML files, unknown
and misspelt flags, flags missing their value, stray positionals. A case fails when an exception
escapes ``main`` (a traceback), when the exit status is outside the documented set (0; 1 from
``check`` only; 2; 3 from ``plan`` only), when stderr holds a traceback, or when exit 2 comes with
anything but one ``PROG: error: ...`` line.

``signals`` starts the command line in subprocesses (``python -m engine``, the console script's
``entry``: ``run sweeps/seed.toml -o ...`` most often, and the other commands) and sends SIGINT,
SIGTERM or SIGHUP at a random moment of the first ``--window`` seconds. A trial fails on an exit
other than 0 (1 from check, 3 from plan) or 128 + the signal's number (130, 143, 129), a death by a
signal (SIGABRT, SIGSEGV: a core dump; or an unhandled one), a traceback, stderr of more than one
line, or a lost or incomplete output: ``run`` writes either a complete cube at the target (exit 0,
or a stop that says the target had already been written in full) or nothing (stopped: the target as
it was, absent or an earlier cube byte for byte, and no temporary file left in the folder). A signal
that comes before the first line of llm-sweep's code runs (Python's start-up: site, runpy) gets
Python's own answer, a silent death or a KeyboardInterrupt traceback; those trials are counted apart.

Both print one line per failure class with counts and write a JSON record (``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DOCUMENTED = {0, 2}  # every command; 1 from check, 3 from plan
EXTRA_CODES = {"check": {1}, "plan": {3}}

# -- files the command lines name ------------------------------------------------------------------------------

TINY_SPEC = """[sweep]
formula_set = "seed"
quantities = ["params_total", "mem_peak"]
[fixed]
vocab = 50000
batch = 2
[axes]
d_model = [256, 512]
n_layers = [2, 4]
seq_len = [128, 256]
"""
ARCH_SPEC = """[sweep]
arch = "llama-2-7b"
quantities = ["params_total", "mem_peak"]
[options]
mode = "inference"
[fixed]
batch = 1
[axes]
seq_len = [512, 1024]
n_kv_heads = [1, 8]
"""
GPT2_CONFIG = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257,
               "n_positions": 1024}
LLAMA_CONFIG = {"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 4, "num_attention_heads": 8,
                "num_key_value_heads": 2, "intermediate_size": 1376, "vocab_size": 32000}


def make_files(folder: Path) -> dict[str, list[str]]:
    """Write the specs, configs, claims and device files the fuzzer names; return the pools by kind."""
    f = folder / "in"
    f.mkdir(parents=True, exist_ok=True)

    def w(name: str, text: str) -> str:
        p = f / name
        p.write_text(text)
        return str(p)

    deep = lambda n: "[" * n + "]" * n  # noqa: E731
    specs = [
        w("tiny.toml", TINY_SPEC), w("tiny.toml", TINY_SPEC), w("arch.toml", ARCH_SPEC),
        w("fast.toml", TINY_SPEC.replace('formula_set = "seed"', 'formula_set = "seed"\nnumerics = "fast"')),
        w("oldprec.toml", TINY_SPEC.replace('formula_set = "seed"', 'formula_set = "seed"\nprecision = "fast"')),
        w("bf16amp.toml", TINY_SPEC.replace('formula_set = "seed"', 'formula_set = "seed"\nnumerics = "bf16-amp"')),
        w("optprec.toml", ARCH_SPEC.replace('mode = "inference"', 'mode = "inference"\nprecision = "bf16-amp"')),
        w("neg.toml", TINY_SPEC.replace("[256, 512]", "[-1]")),
        w("nan.toml", TINY_SPEC.replace("vocab = 50000", "vocab = nan")),
        w("inf.toml", TINY_SPEC.replace("vocab = 50000", "vocab = 1e400")),
        w("huge.toml", TINY_SPEC.replace("[256, 512]", "[9223372036854775807]")),
        w("deep.toml", TINY_SPEC + "deep = " + deep(5000) + "\n"),
        w("deep2.toml", TINY_SPEC + "deep = " + deep(70) + "\n"),
        w("badtoml.toml", "[sweep\n"), w("empty.toml", ""),
        w("where.toml", TINY_SPEC + '[query]\nwhere = ["mem_peak <= nan"]\nmaximize = "params_total"\n'),
        w("json.toml", json.dumps(GPT2_CONFIG)),
        str(f / "missing.toml"), str(f), "",
    ]
    (f / "model").mkdir(exist_ok=True)
    (f / "model" / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    (f / "nomodel").mkdir(exist_ok=True)
    configs = [
        w("gpt2.json", json.dumps(GPT2_CONFIG)), w("llama.json", json.dumps(LLAMA_CONFIG)),
        w("deep.json", json.dumps(GPT2_CONFIG)[:-1] + ', "text_config": ' + deep(100_000) + "}"),
        w("deep64.json", json.dumps(GPT2_CONFIG)[:-1] + ', "rope_scaling": ' + deep(63) + "}"),
        w("nested.json", json.dumps({"model_type": "llava", "text_config": {**LLAMA_CONFIG, "text_config": {
            "text_config": {"a": [[[{"b": None}]]]}}}})),
        w("nan.json", json.dumps({**LLAMA_CONFIG, "hidden_size": float("nan")})),
        w("inf.json", json.dumps({**LLAMA_CONFIG, "vocab_size": float("inf")})),
        w("neg.json", json.dumps({**LLAMA_CONFIG, "num_hidden_layers": -3})),
        w("list.json", "[1, 2]"), w("notjson.json", "{model_type: llama"), w("bin.json", "\x00"),
        str(f / "model"), str(f / "nomodel"), str(f / "nope.json"), "gpt2", "",
    ]
    claims = [
        str(REPO / "sweeps" / "seed-claims.toml"),
        w("ok-claims.toml", 'formula_set = "seed"\n[[claim]]\nclaim = "layer"\nclaimed = 7084800\n'
                            'expr = "params_layer"\nvalues = { d_model = 768 }\n'),
        *(w(f"claims-{i}.toml", 'formula_set = "seed"\n[[claim]]\nclaim = "x"\nclaimed = ' + v +
            '\nexpr = "params_layer"\nvalues = { d_model = 768 }\n')
          for i, v in enumerate(["nan", "inf", "-inf", "1e400", "-0.0", '"nan"', '"1e400"', "1.5", "[1]"])),
        w("claims-deep.toml", 'formula_set = "seed"\nvalues = ' + deep(3000) + "\n"),
        w("claims-tol.toml", 'formula_set = "seed"\n[[claim]]\nclaim = "x"\nclaimed = 1\nexpr = "params_layer"\n'
                             'values = { d_model = 768 }\nrel_tol = nan\n'),
        str(f / "missing-claims.toml"),
    ]
    gpus = ["h100", "a100", "h200", "H100", "nope", "", "b200", "mi300x",
            w("gpu.toml", 'name = "mine"\nmemory = "80GB"\nbf16_flops = 989e12\nmemory_bandwidth = 3.35e12\n'
                          'interconnect_bandwidth = 450e9\n'),
            w("gpu-nan.toml", 'name = "mine"\nmemory = "80GB"\nbf16_flops = nan\n'),
            w("gpu-deep.toml", "x = " + deep(2000) + "\n"), str(f / "missing-gpu.toml")]
    # part files for combine: written once by the first run cases that use --part (any path is fine)
    parts = [str(folder / "parts" / "tiny.part000-of-002.nc"), str(folder / "parts" / "tiny.part001-of-002.nc"),
             str(f / "tiny.toml"), str(f / "nope.nc"), str(f)]
    return {"spec": specs, "hf_config": configs, "claims": claims, "gpu": gpus, "parts": parts}


# -- value pools ------------------------------------------------------------------------------------------------

NUMBERS = ["0", "1", "2", "8", "-1", "-0", "1.5", "1e3", "1e400", "-1e400", "nan", "-nan", "inf", "-inf", "NaN",
           "Infinity", "1e-400", "9223372036854775808", "99999999999999999999", "0x10", "1_000", "", " ", "x",
           "2**10", "½", "٣"]
SMALL_INTS = ["1", "2", "4", "8", "16"]
ARCHES = ["gpt2", "llama-2-7b", "seed", "llama", "mixtral-8x7b", "deepseek-v3", "llama-3-8b", "GPT2", "nope", "",
          "gpt2.json", "../gpt2", "llama-3.1-405b", "qwen2-moe"]
NAME_VALUES = ["quant_group=64", "bits_opt=16", "bits_opt=nan", "bits_opt=inf", "bits_opt=1e400", "bits_master=0",
               "bits_master=-1", "d_ff=-d_model", "d_ff=4*d_model", "d_ff=0.5", "tied_head=false", "tied_head=maybe",
               "x=1", "=", "", "vocab=50000", "batch=2", "d_model=2**2**2**40", "alpha=1/0", "n_heads=12.5",
               "d_ff=__import__('os')", "d_model", "d_ff=d_model/n_heads", "kv_window=nan"]
WHERES = ["mem_peak <= 80GiB", "mem_peak <= nan", "params_total > inf", "params_total >= 1e400", "mem_peak < -1GiB",
          "nope <= 1", "mem_peak", "", "mem_peak <= 80 lightyears", "params_total == 0"]
PARTS = ["0/2", "1/2", "2/2", "-1/2", "0/0", "a/b", "0/1e400", "1", "0/1", "nan/2", "0/-2"]
SIZES = ["8GiB", "2KiB", "0", "-1GiB", "nan GiB", "1e400B", "lots", "", "inf"]
WIDTHS = ["345pt", "3.25in", "onecolumn", "twocolumn", "0pt", "-1pt", "nanpt", "1e400pt", "x", ""]


def precision_names() -> list[str]:
    from engine.options import PRECISION_ALIASES, PRECISIONS

    return [*PRECISIONS, *(a for a, _ in PRECISION_ALIASES), "", "BF16", "bf16 ", "fp4", "tf32", "32", "nan",
            "exact", "fast"]


def subcommands():
    from engine.cli import _parser

    p = _parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return p, dict(sub.choices)


PLAUSIBLE = {"spec": 7, "hf_config": 5, "claims": 2, "gpu": 3, "arch": 6, "set": 3, "option": 3, "substitute": 3,
             "where": 1, "part": 2, "max_device_mem": 2, "budget": 1, "line_width": 4}


def value_for(action, command: str, pools: dict, rng: random.Random, outdir: Path, plausible: bool = False) -> str:
    """A value for ``action`` (an argparse action that takes one): mostly plausible, often hostile; with
    ``plausible``, one a user would give (a valid choice, a small count, a working file)."""
    dest = action.dest
    r = rng.random()
    if plausible:
        if action.choices is not None:
            return str(rng.choice(list(action.choices)))
        lists = {"spec": pools["spec"], "hf_config": pools["hf_config"], "claims": pools["claims"],
                 "gpu": pools["gpu"], "arch": ARCHES, "set": NAME_VALUES, "option": NAME_VALUES,
                 "substitute": NAME_VALUES[5:], "where": WHERES, "part": PARTS, "max_device_mem": SIZES,
                 "budget": SIZES, "line_width": WIDTHS}
        if dest in PLAUSIBLE:
            return rng.choice(lists[dest][:PLAUSIBLE[dest]])
        if dest == "precision":
            return rng.choice(pools["precision"][:20])
        if action.type in (int, float) or dest in ("top", "lora_rank"):
            return rng.choice(SMALL_INTS)
    if dest in ("precision", "numerics"):
        return rng.choice(pools["precision"])
    if dest == "spec" or dest == "source":
        return rng.choice(pools["spec"] + ([str(outdir / "tiny.nc")] if dest == "source" else []))
    if dest == "hf_config":
        return rng.choice(pools["hf_config"])
    if dest == "claims":
        return rng.choice(pools["claims"])
    if dest == "gpu":
        return rng.choice(pools["gpu"])
    if dest == "arch":
        return rng.choice(ARCHES)
    if dest in ("set", "option", "substitute", "at"):
        return rng.choice(NAME_VALUES)
    if dest == "where":
        return rng.choice(WHERES)
    if dest == "part":
        return rng.choice(PARTS)
    if dest in ("max_device_mem", "budget"):
        return rng.choice(SIZES)
    if dest == "line_width":
        return rng.choice(WIDTHS)
    if dest == "output":
        return rng.choice([str(outdir / "out.nc"), str(outdir / "out.nc"), str(outdir / "out.zarr"),
                           str(outdir / "fig.png"), str(outdir / "no" / "such" / "x.nc"), "", str(outdir),
                           pools["spec"][0], str(outdir / "out.txt")])
    if dest in ("maximize", "minimize", "collect", "x", "y", "variable", "over"):
        return rng.choice(["params_total", "mem_peak", "d_model", "n_layers", "seq_len", "nope", "", "d_model,nope",
                           "batch"])
    if dest == "lora_targets":
        return rng.choice(["q_proj,v_proj", "all-linear", "", "nope", ",", "q_proj,,"])
    if action.choices is not None and r < 0.85:
        return str(rng.choice(list(action.choices)))
    if dest in ("top",):
        return rng.choice(["1", "3", "0", "-1", "nan", "x", "100"])
    if dest in ("gpus", "global_batch", "micro_batch", "batch", "seq_len", "tp", "pp", "dp", "cp", "ep", "etp", "vp",
                "shard_group", "kv_window", "lora_rank", "num_processes", "process_id", "compression"):
        return rng.choice(SMALL_INTS) if r < 0.6 else rng.choice(NUMBERS)
    return rng.choice(NUMBERS + ["0.5", "0.9", "989e12", "1e21"])


BASES = {  # command lines that answer: a fuzz case mutates one to three flags of one of them
    "run": ["run", "{spec}", "-o", "{out}/out.nc", "--quiet"],
    "run-part": ["run", "{spec}", "-o", "{out}/tiny.nc", "--part", "0/2", "--quiet"],
    "formulas": ["formulas", "--arch", "seed"],
    "formulas-latex": ["formulas", "--arch", "llama-2-7b", "--format", "latex"],
    "params": ["params", "--arch", "gpt2"],
    "memory": ["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8"],
    "memory-inference": ["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--mode", "inference"],
    "flops": ["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8"],
    "time": ["time", "--arch", "gpt2", "--gpu", "h100", "--gpus", "1", "--seq-len", "8", "--global-batch", "1"],
    "plan": ["plan", "--arch", "gpt2", "--gpu", "h100", "--gpus", "2", "--seq-len", "8", "--global-batch", "2",
             "--zero", "1", "--recompute", "none", "--top", "2"],
    "open": ["open", "{spec}"],
    "check": ["check", "{claims}"],
    "combine": ["combine", "{parts0}", "{parts1}", "-o", "{out}/joined.nc"],
    "plot": ["plot", "{spec}", "mem_peak", "--x", "d_model", "-o", "{out}/fig.png"],
}


def misspell(flag: str, rng: random.Random) -> str:
    body = flag.lstrip("-")
    if not body:
        return "--bogus"
    i = rng.randrange(len(body))
    op = rng.random()
    if op < 0.4:
        body = body[:i] + body[i + 1:]
    elif op < 0.7:
        body = body[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz_-") + body[i:]
    else:
        body = body.replace("-", "_")
    return "--" + (body or "x")


def make_case(rng: random.Random, parser_map: dict, pools: dict, outdir: Path) -> list[str]:
    """One command line."""
    r = rng.random()
    if r < 0.02:
        return rng.choice([[], ["--bogus"], ["bogus"], ["-h"], ["--version"], ["--help", "run"], ["memroy"],
                           ["--version", "memory"], ["-"], ["--"]])
    fill = {"spec": rng.choice(pools["spec"][:7]), "out": str(outdir), "claims": rng.choice(pools["claims"][:2]),
            "parts0": pools["parts"][0], "parts1": pools["parts"][1]}
    plausible = r < 0.3  # a working command line with one to three flags changed: to what a user would give
    if r < 0.65:  # ... or to anything
        base = [a.format(**fill) for a in BASES[rng.choice(list(BASES))]]
        command = base[0]
    else:
        command = rng.choice(list(parser_map))
        base = [command]
    sub = parser_map[command]
    actions = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    positionals = [a for a in sub._actions if not a.option_strings]
    args = list(base)
    if len(base) == 1:
        for a in positionals:
            if rng.random() < 0.9:
                n = 2 if a.nargs == "+" else 1
                args += [value_for(a, command, pools, rng, outdir) for _ in range(n)]
        for a in rng.sample(actions, k=min(len(actions), rng.randint(0, 5))):
            args += _flag(a, command, pools, rng, outdir)
        for a in actions:  # the required ones, mostly
            if a.required and rng.random() < 0.85 and a.option_strings[0] not in args:
                args += _flag(a, command, pools, rng, outdir)
    else:
        for _ in range(rng.randint(1, 3)):
            m = rng.random()
            if (m < 0.6 or plausible) and actions:
                a = rng.choice(actions)
                flag = _flag(a, command, pools, rng, outdir, plausible)
                if flag[0] in args and len(flag) == 2 and rng.random() < 0.7:  # replace its value
                    i = args.index(flag[0])
                    if i + 1 < len(args):
                        args[i + 1] = flag[1]
                        continue
                args += flag
            elif m < 0.75:  # an unknown or misspelt flag, with or without a value
                flag = misspell(rng.choice(actions).option_strings[-1], rng) if actions else "--bogus"
                args += [flag] + ([rng.choice(NUMBERS)] if rng.random() < 0.5 else [])
            elif m < 0.85:  # a flag missing its value, at the end
                takes = [a for a in actions if a.nargs != 0]
                if takes:
                    args.append(rng.choice(takes).option_strings[-1])
            elif m < 0.92 and len(args) > 1:  # a word dropped
                del args[rng.randrange(1, len(args))]
            else:  # a stray positional
                args.insert(rng.randrange(1, len(args) + 1), rng.choice(["extra", "1", "-1", "nan", "--"]))
    if rng.random() < 0.01:
        args.append(rng.choice(["-h", "--help"]))
    return args


def _flag(action, command, pools, rng, outdir, plausible: bool = False) -> list[str]:
    flag = rng.choice(action.option_strings)
    if action.nargs == 0:
        return [flag]
    value = value_for(action, command, pools, rng, outdir, plausible)
    if rng.random() < 0.1 and flag.startswith("--"):
        return [f"{flag}={value}"]
    return [flag, value]


class CaseTimeout(BaseException):
    pass


def run_case(argv: list[str], cwd: Path) -> tuple[int | None, str, str, str | None, float]:
    """``main(argv)`` in this process: (exit status, stdout, stderr, escaped exception or None, seconds)."""
    from engine.cli import main

    out, err = io.StringIO(), io.StringIO()
    escaped = None
    code: int | None = None
    old = os.getcwd()
    os.chdir(cwd)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except CaseTimeout:
        escaped = "timeout"
    except BaseException as exc:  # noqa: BLE001 -- a traceback is what this counts
        import traceback

        escaped = f"{type(exc).__name__}: {exc}"[:300] + " @ " + " <- ".join(
            f"{Path(f.filename).name}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__)[::-1][:4])
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue(), escaped, time.perf_counter() - t0


def classify(argv: list[str], code, err: str, escaped) -> str | None:
    """The failure class of one case, or None."""
    if escaped == "timeout":
        return "timeout (> 60 s)"
    if escaped is not None:
        return "traceback: exception escaped main"
    if "Traceback (most recent call last)" in err:
        return "traceback on stderr"
    command = next((a for a in argv if not a.startswith("-")), "")
    if code not in DOCUMENTED | EXTRA_CODES.get(command, set()):
        return f"undocumented exit status {code}"
    if code == 2:
        lines = err.strip("\n").split("\n")
        if len(lines) != 1:
            return "exit 2 with more than one line on stderr"
        if ": error: " not in lines[0] or not lines[0].startswith("llm-sweep"):
            return "exit 2 without a 'llm-sweep ...: error: ' line"
    return None


def fuzz(args) -> dict:
    import warnings

    warnings.simplefilter("ignore")
    os.environ["LLM_SWEEP_CACHE_DIR"] = ""
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="llm-sweep-fuzz-"))
    pools = make_files(root)
    pools["precision"] = precision_names()
    parser, parser_map = subcommands()
    # part files for combine
    (root / "parts").mkdir()
    for i in range(2):
        run_case(["run", str(root / "in" / "tiny.toml"), "-o", str(root / "parts" / "tiny.nc"), "--part", f"{i}/2",
                  "--quiet"], root)

    def alarm(signum, frame):
        raise CaseTimeout()

    signal.signal(signal.SIGALRM, alarm)
    failures: Counter = Counter()
    examples: dict[str, list] = {}
    codes: Counter = Counter()
    commands: Counter = Counter()
    slow = []
    t_start = time.perf_counter()
    for i in range(args.cases):
        case_dir = root / "cases" / str(i % 50)
        case_dir.mkdir(parents=True, exist_ok=True)
        argv = make_case(rng, parser_map, pools, case_dir)
        signal.alarm(60)
        code, out, err, escaped, seconds = run_case(argv, case_dir)
        signal.alarm(0)
        codes[code] += 1
        commands[next((a for a in argv if not a.startswith("-")), "")] += 1
        if seconds > 10:
            slow.append((round(seconds, 1), argv))
        kind = classify(argv, code, err, escaped)
        if kind:
            failures[kind] += 1
            ex = examples.setdefault(kind, [])
            if len(ex) < 8:
                ex.append({"argv": argv, "code": code, "stderr": err[-600:], "exception": escaped})
        if args.verbose and kind:
            print(kind, argv, (escaped or err.strip()[-300:]), file=sys.__stderr__)
        if (i + 1) % 500 == 0:
            print(f"  {i + 1} cases, {sum(failures.values())} failures, {time.perf_counter() - t_start:.0f} s",
                  file=sys.__stderr__, flush=True)
    record = {"cases": args.cases, "seed": args.seed, "seconds": round(time.perf_counter() - t_start, 1),
              "failures": dict(failures), "exit_codes": {str(k): v for k, v in sorted(codes.items(), key=str)},
              "commands": dict(commands), "examples": examples, "slow": slow[:20]}
    print(f"fuzz: {args.cases} cases in {record['seconds']} s; exit codes {record['exit_codes']}")
    for kind, n in failures.most_common():
        print(f"  {n:6d}  {kind}")
        for ex in examples[kind][:3]:
            print(f"          {' '.join(ex['argv'])!r}: {ex['exception'] or ex['stderr'].strip()[-200:]!r}")
    if not failures:
        print("  0 failures")
    return record


# -- signals -----------------------------------------------------------------------------------------------------

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def signal_commands(folder: Path) -> list[tuple[str, list[str]]]:
    spec = str(REPO / "sweeps" / "seed.toml")
    return [
        ("run", ["run", spec, "-o", "{out}"]),
        ("run", ["run", spec, "-o", "{out}", "--quiet"]),
        ("run", ["run", spec, "-o", "{out}"]),
        ("run-zarr", ["run", spec, "-o", "{zarr}", "--quiet"]),
        ("memory", ["memory", "--arch", "llama-2-7b", "--batch", "1", "--seq-len", "4096"]),
        ("plan", ["plan", "--arch", "llama-2-7b", "--gpu", "h100", "--gpus", "8", "--seq-len", "4096",
                  "--global-batch", "64"]),
        ("time", ["time", "--arch", "llama-2-7b", "--gpu", "h100", "--gpus", "8", "--seq-len", "4096",
                  "--global-batch", "64"]),
        ("formulas", ["formulas", "--arch", "llama-2-7b", "--format", "latex"]),
        ("check", ["check", str(REPO / "sweeps" / "seed-claims.toml")]),
        ("open", ["open", str(REPO / "examples" / "design-space.toml")]),
        ("flops", ["flops", "--arch", "llama-2-7b", "--batch", "1", "--seq-len", "4096"]),
        ("params", ["params", "--arch", "llama-2-7b"]),
    ]


def _digest(path: Path) -> str | None:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode())
                h.update(p.read_bytes())
        return h.hexdigest()
    return None


def _complete_cube(path: Path) -> str | None:
    """None if ``path`` is a complete seed cube, else why not."""
    code = ("import sys, xarray as xr\n"
            "ds = xr.open_zarr(sys.argv[1]) if sys.argv[1].endswith('.zarr') else xr.open_dataset(sys.argv[1])\n"
            "assert dict(ds.sizes) == {'d_model': 125, 'n_layers': 48, 'batch': 9, 'seq_len': 32}, dict(ds.sizes)\n"
            "at = dict(d_model=768, n_layers=12, batch=1, seq_len=256)\n"
            "v = ds['params_total'].sel({k: at[k] for k in ds['params_total'].dims}).values.item()\n"
            "assert v == 123417600, v\n"
            "last = ds['mem_peak'].isel({k: -1 for k in ds['mem_peak'].dims}).values.item()\n"
            "assert last > 0, last\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[-1]


def one_trial(i: int, rng: random.Random, folder: Path, window: float, reference: dict) -> dict:
    name, argv = rng.choice(signal_commands(folder))
    sig = rng.choice(SIGNALS)
    delay = rng.uniform(0, window)
    trial = folder / f"t{i}"
    trial.mkdir()
    out, zarr = trial / "seed.nc", trial / "seed.zarr"
    target = zarr if name == "run-zarr" else out
    earlier = name == "run" and rng.random() < 0.5 and reference.get(name) is not None
    if earlier:  # an earlier cube at the target: a stopped run must leave it byte for byte
        src = reference[name]
        if src.is_dir():
            subprocess.run(["cp", "-r", str(src), str(target)], check=True)
        else:
            target.write_bytes(src.read_bytes())
    before = _digest(target)
    argv = [a.format(out=out, zarr=zarr) for a in argv]
    env = {**os.environ, "PYTHONPATH": str(REPO), "LLM_SWEEP_CACHE_DIR": ""}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "engine", *argv], cwd=trial, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        return {"i": i, "command": name, "signal": sig.name, "delay": round(delay, 3), "failure": "hung (> 120 s)"}
    elapsed = time.monotonic() - t0
    err = stderr.decode(errors="replace")
    code = proc.returncode
    failure = None
    engine_frames = f'File "{REPO / "engine"}' in err
    if (code == -sig and not err) or (code in (-signal.SIGINT, 1) and err.rstrip().endswith("KeyboardInterrupt")
                                      and not engine_frames):
        # Python's own handlers answered: the signal came before the first line of llm-sweep's code ran (the
        # interpreter's start-up: site and its .pth files, runpy finding the engine package). Nothing can take
        # a signal earlier; counted apart (a silent death of the old code inside engine.cli counts here too)
        failure = f"start-up: before llm-sweep's first line ({'killed by ' + sig.name if code < 0 else 'traceback'})"
    elif code < 0:
        died = signal.Signals(-code).name
        failure = (f"core dump ({died})" if -code in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE)
                   else f"killed by {died} (no handler yet)")
    elif code not in (0, 128 + sig) and code not in EXTRA_CODES.get(argv[0], ()):  # check: 1, plan: 3
        failure = f"exit {code}"
    elif "Traceback" in err or "terminate called" in err or "Fatal Python error" in err:
        failure = "traceback"
    elif code == 128 + sig and len(err.strip("\n").split("\n")) != 1:
        failure = "stopped with more than one line on stderr"
    elif code == 128 + sig and f"stopped by {sig.name}" not in err:
        failure = "stopped without saying by which signal"
    elif code == 0 and name.startswith("run") and err.strip():
        failure = "exit 0 with stderr"
    if failure is None and name.startswith("run"):
        after = _digest(target)
        leftovers = sorted(p.name for p in trial.iterdir() if p.name not in (out.name, zarr.name))
        if code == 0 or "had already been written in full" in err:  # a stop after the publishing rename
            why = _complete_cube(target)
            if why:
                failure = f"exit {code} with an incomplete cube: {why}"
        elif after != before:
            failure = ("stopped: the earlier cube was changed or lost" if earlier else
                       "stopped: something was written at the target")
        if failure is None and leftovers:
            failure = f"leftovers {leftovers}"
    if failure is None:
        subprocess.run(["rm", "-rf", str(trial)])
    return {"i": i, "command": name, "signal": sig.name, "delay": round(delay, 3), "sent": sent, "code": code,
            "elapsed": round(elapsed, 2), "failure": failure, "stderr": err[-800:] if failure else err.strip()[:200]}


def signals_campaign(args) -> dict:
    import concurrent.futures

    # the children start with the default dispositions: under nohup (SIGHUP ignored) or as a background job
    # (SIGINT ignored) an ignored signal would stay ignored in them, and their trials would test nothing
    for sig in SIGNALS:
        signal.signal(sig, lambda signum, frame: print(f"campaign: {signal.Signals(signum).name} ignored",
                                                       file=sys.__stderr__))
    folder = Path(tempfile.mkdtemp(prefix="llm-sweep-signals-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "LLM_SWEEP_CACHE_DIR": ""}
    reference = {}
    for name, target in (("run", folder / "ref.nc"), ("run-zarr", folder / "ref.zarr")):
        r = subprocess.run([sys.executable, "-m", "engine", "run", str(REPO / "sweeps" / "seed.toml"), "-o",
                            str(target), "--quiet"], capture_output=True, text=True, env=env, cwd=folder)
        reference[name] = target if r.returncode == 0 else None
    rng = random.Random(args.seed)
    plans = [(i, random.Random(rng.random())) for i in range(args.trials)]
    results = []
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_trial, i, r, folder, args.window, reference) for i, r in plans]
        for n, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            res = fut.result()
            results.append(res)
            if res["failure"] or args.verbose:
                print(f"  [{res['i']}] {res['command']} {res['signal']} at {res['delay']} s: "
                      f"{res['failure'] or 'ok'} (exit {res.get('code')}) {res.get('stderr', '')[-300:]!r}",
                      file=sys.__stderr__, flush=True)
            if n % 20 == 0:
                print(f"  {n} trials, {sum(1 for r in results if r['failure'])} failures, "
                      f"{time.perf_counter() - t0:.0f} s", file=sys.__stderr__, flush=True)
    failures = Counter(r["failure"].split(":")[0] for r in results if r["failure"]
                       and not r["failure"].startswith("start-up"))
    startup = [r for r in results if (r["failure"] or "").startswith("start-up")]
    record = {"trials": args.trials, "seed": args.seed, "window_s": args.window, "jobs": args.jobs,
              "seconds": round(time.perf_counter() - t0, 1), "failures": dict(failures),
              "start_up": {"count": len(startup), "delays_s": sorted(r["delay"] for r in startup),
                           "answers": dict(Counter(r["failure"] for r in startup))},
              "outcomes": dict(Counter(f"{r['command']} {r.get('code')}" for r in results)),
              "signalled": sum(1 for r in results if r.get("sent")),
              "results": sorted(results, key=lambda r: r["i"])}
    print(f"signals: {args.trials} trials ({record['signalled']} signalled while running) in {record['seconds']} s, "
          f"{args.jobs} at a time, signals in the first {args.window} s")
    for kind, n in failures.most_common():
        print(f"  {n:6d}  {kind}")
    if not failures:
        print("  0 failures")
    if startup:
        print(f"  and {len(startup)} signals before llm-sweep's first line ran, in the interpreter's start-up "
              f"(at {', '.join(f'{d:.3f}' for d in record['start_up']['delays_s'])} s): Python's own answer")
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sp = ap.add_subparsers(dest="campaign", required=True)
    f = sp.add_parser("fuzz")
    f.add_argument("--cases", type=int, default=10_000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--verbose", action="store_true")
    f.add_argument("--json")
    s = sp.add_parser("signals")
    s.add_argument("--trials", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--window", type=float, default=3.0)
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--verbose", action="store_true")
    s.add_argument("--json")
    args = ap.parse_args()
    record = fuzz(args) if args.campaign == "fuzz" else signals_campaign(args)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1, default=str))


if __name__ == "__main__":
    main()
