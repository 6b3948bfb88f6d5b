"""The ``llm-sweep`` command line: a thin shell over the Python API.

Exit status: 0 success; 1 ``check`` found a wrong claim; 2 bad input (spec, option, path,
precision), reported as one line naming the file, the key and what is valid; 3 ``plan`` found no
layout that fits (one line saying the lowest peak).
"""

from __future__ import annotations

from engine import signals as _signals

if _signals.is_console_script():  # llm-sweep itself: a stop signal from here on is answered in one line, not by
    _signals.hold()                # Python's start-up handlers (a KeyboardInterrupt traceback, a silent SIGTERM)

import argparse  # noqa: E402 -- after the signals are held
import json
import math
import os
import signal
import sys
import time
import warnings
from pathlib import Path

from engine.errors import LlmSweepDeprecation, LlmSweepError, LlmSweepNote, UsageError

EXIT_OK, EXIT_CLAIM_WRONG, EXIT_BAD_INPUT = 0, 1, 2
EXIT_NOTHING_FITS = 3  # plan: no layout fits the device's memory (a result, not bad input)


_MEMORY_FLAGS = ("mode", "precision", "optimizer", "attention", "recompute", "zero", "sequence_parallel",
                 "memory_model", "offload", "finetune", "kv_layout")
_MEMORY_FLAG_NOTES = {"kv_layout": "inference, MLA models only",
                      "optimizer": "training only (default: adamw)"}


_SET_HELP = ("a numeric input symbol, e.g. quant_group=64 or bits_opt=16 (repeatable; VALUE a number or a constant "
             "expression such as 2**10; it overrides the default or the configuration's value)")
# inputs with a flag of their own: --set refuses them and names the flag
_DEDICATED_FLAGS = {"batch": "--batch", "seq_len": "--seq-len", "dp": "--dp", "tp": "--tp", "pp": "--pp",
                    "vp": "--vp", "kv_window": "--kv-window", "tokens": "--tokens", "peak_flops": "--peak-flops",
                    "mfu": "--mfu", "n_gpus": "--gpus", "ep": "--ep", "etp": "--etp"}


_ZERO_OK = ("bits_master",)  # inputs where 0 means "none" (bits per master-weight element: no master copy)


def _set_values(items: list[str], dedicated: bool = True) -> dict:
    """``--set NAME=VALUE`` items as input values, validated like a spec's values (positive; integers for
    integer symbols). With ``dedicated``, inputs that have a flag of their own are refused."""
    from engine.errors import SpecError
    from engine.request.spec import _Errors, _value
    from engine.symbolic.symbols import SYMBOLS

    out: dict = {}
    for item in items:
        key, sep, text = (x.strip() for x in item.partition("="))
        if not sep or not key or not text:
            raise SpecError("--set", item, "expected NAME=VALUE, e.g. quant_group=64")
        if dedicated and key in _DEDICATED_FLAGS:
            raise SpecError("--set", item, f"{key} has its own flag: give {_DEDICATED_FLAGS[key]} instead")
        if key not in SYMBOLS:
            valid = [n for n in SYMBOLS if not (dedicated and n in _DEDICATED_FLAGS)]
            raise SpecError("--set", item, f"unknown input {key!r}; valid inputs: {', '.join(valid)}")
        if key in out:
            raise SpecError("--set", item, f"{key} is set twice")
        if key in _ZERO_OK and text in ("0", "0.0"):  # bits_master = 0: no master copy (the symbol's meaning)
            out[key] = 0
            continue
        try:
            out[key] = _value(_Errors("--set"), item, key, text)
        except SpecError as exc:
            raise SpecError("--set", item, exc.message) from None
    return out


def _check_sets_used(sets: dict, fs, exprs: list, given: set) -> None:
    """SpecError for a ``--set`` input that none of ``exprs`` (expressions over inputs) depends on."""
    from engine.errors import SpecError
    from engine.symbolic.symbols import SYMBOLS

    for name, value in sets.items():
        keep = set(given) | {name}  # the input stays a symbol; every other one gets its value or default
        if not any(SYMBOLS[name].symbol in fs.apply(e, keep).free_symbols for e in exprs):
            raise SpecError("--set", f"{name}={value}", f"the chosen formulas do not use {name}: it would be "
                                                        "ignored")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its errors raised as ``UsageError``: one line naming the command and where its usage is
    (argparse prints the whole usage, then the error, and exits)."""

    def error(self, message: str):
        raise UsageError(self.prog, _did_you_mean_choice(message))


class _Version(argparse._VersionAction):
    """argparse's ``--version``, the version read when asked for (importlib.metadata is slow to load)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from engine import __version__

        self.version = f"llm-sweep {__version__}"
        super().__call__(parser, namespace, values, option_string)


def _did_you_mean_choice(message: str) -> str:
    """argparse's "invalid choice: 'memroy' (choose from 'run', ...)" with the closest choice named."""
    import difflib
    import re

    m = re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", message)
    if m:
        choices = re.findall(r"'([^']*)'", m.group(2)) or m.group(2).split(", ")
        close = difflib.get_close_matches(m.group(1), choices, n=1)
        if close:
            return f"{message}; did you mean {close[0]}?"
    return message


def _unrecognized(parser: argparse.ArgumentParser, args, extra: list[str]) -> UsageError:
    """The words no flag of the command took, told with the command's name (argparse names the top-level usage),
    and the command's closest flag for each unknown flag."""
    import difflib

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices.get(getattr(args, "command", None), parser)
    takes = {f: a.nargs != 0 for a in command._actions for f in a.option_strings if f.startswith("--")}

    def closest(word: str) -> str | None:
        flag = word.split("=", 1)[0]
        close = difflib.get_close_matches(flag, list(takes), n=1) if flag.startswith("-") and flag != "-" else []
        return close[0] if close else None

    groups: list[list[str]] = []  # an unknown flag with the word after it that looks like its value
    for word in extra:
        last = groups[-1] if groups else None
        if (last is not None and len(last) == 1 and last[0].startswith("-") and "=" not in last[0]
                and not word.startswith("-") and takes.get(closest(last[0]), True)):
            last.append(word)
        else:
            groups.append([word])
    words = []
    for group in groups:
        close = closest(group[0])
        words.append(" ".join(group) + (f" (did you mean {close}?)" if close else ""))
    return UsageError(command.prog, f"unrecognized argument{'s' if len(words) > 1 else ''}: {', '.join(words)}")


def _parser() -> argparse.ArgumentParser:
    # pure data only (engine.options): building the parser, and so every --help, loads no sympy, numpy or JAX
    from engine.options import FORMATS, MEMORY_OPTIONS, NUMERICS
    from engine.request.options import add_option_flags

    p = _Parser(
        prog="llm-sweep",
        description="Symbolic and vectorized sizing of transformer language models.",
    )
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="evaluate a sweep spec and write a netCDF cube",
                         description="Evaluate the sweep SPEC (TOML) and write the cube to netCDF.")
    run.add_argument("spec", help="sweep specification (TOML), e.g. sweeps/seed.toml")
    run.add_argument("-o", "--output", help="netCDF file to write (default: the spec's output, "
                                            "else SPEC's name with .nc, in the current folder)")
    run.add_argument("--numerics", choices=NUMERICS,
                     help="override the spec's numerics: exact (int64/float64) or fast (float32)")
    run.add_argument("--precision", choices=NUMERICS, help=argparse.SUPPRESS)  # the old name of --numerics
    run.add_argument("--quiet", action="store_true", help="print nothing on success, and no progress bar")
    run.add_argument("--max-device-mem", metavar="SIZE",
                     help="device memory for one chunk's outputs, e.g. 8GiB (default: a quarter of the free "
                          "device memory; on a CPU, of the available host memory)")
    run.add_argument("--compression", type=int, choices=range(10), metavar="0-9",
                     help="zlib level of the netCDF variables (0 = none); overrides the spec")
    run.add_argument("--part", metavar="I/N",
                     help="compute only share I of N (0-based) of the first axis and write OUT.partIII-of-NNN.nc; "
                          "join the parts with `llm-sweep combine`")
    run.add_argument("--distributed", action="store_true",
                     help="multi-host: call jax.distributed.initialize(), which detects SLURM, Open MPI, "
                          "Kubernetes and Cloud TPU jobs, and take the share from the process index and count")
    run.add_argument("--coordinator", metavar="HOST:PORT",
                     help="with --distributed outside a detected cluster: process 0's address (JAX also reads "
                          "JAX_COORDINATOR_ADDRESS)")
    run.add_argument("--num-processes", type=int, metavar="N", help="with --coordinator: how many processes")
    run.add_argument("--process-id", type=int, metavar="I", help="with --coordinator: this process's index, 0..N-1")
    q = run.add_argument_group("on-device query (replaces the spec's [query]; the cube never leaves the device)")
    q.add_argument("--where", action="append", default=[], metavar="CONSTRAINT",
                   help="e.g. 'mem_peak <= 80GiB' (repeatable: all must hold)")
    q.add_argument("--maximize", metavar="QUANTITY", help="report the largest QUANTITY that satisfies --where")
    q.add_argument("--minimize", metavar="QUANTITY", help="report the smallest QUANTITY that satisfies --where")
    q.add_argument("--over", metavar="DIMS", help="comma-separated dims to reduce, e.g. d_model,n_layers")

    f = sub.add_parser("formulas", help="print the formulas of a formula set",
                       description="Print every component formula with its source and a symbol table.")
    fsrc = f.add_mutually_exclusive_group()
    fsrc.add_argument("--arch", metavar="NAME",
                      help="formula set (seed), architecture family (llama, gpt2, ...) or preset (llama-2-7b, ...); "
                           "default: seed")
    fsrc.add_argument("--hf-config", metavar="PATH", help="a local config.json, or a model folder holding one, "
                                                          "instead of --arch")
    f.add_argument("--with-sizes", action="store_true",
                   help="with a preset or config: also print each quantity evaluated at its sizes")
    f.add_argument("--substitute", action="append", default=[], metavar="NAME=EXPR",
                   help="put EXPR in place of input NAME everywhere, e.g. d_ff=4*d_model (repeatable)")
    f.add_argument("--collect", metavar="NAME", help="collect the expanded formulas by input NAME")
    f.add_argument("--format", default="text", choices=FORMATS, help="output format (default: text)")
    f.add_argument("--expand", action="store_true",
                   help="also print each quantity over the inputs alone, defaults such as d_ff = 4 d_model applied")
    f.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="structural option of the set, e.g. tied_head=false (repeatable)")
    f.add_argument("--line-width", metavar="WIDTH",
                   help="LaTeX: the width every line must fit, a TeX length (345pt, 3.25in, 8.5cm) or onecolumn "
                        "(345pt, article) or twocolumn (229.5pt, article's [twocolumn]); default: onecolumn")

    m = sub.add_parser("combine", help="join the part files of a multi-process run",
                       description="Join OUT.partIII-of-NNN.nc files (from --part or --distributed) into one cube.")
    m.add_argument("parts", nargs="+", help="part files, in any order")
    m.add_argument("-o", "--output", required=True, help="the combined netCDF file")
    m.add_argument("--compression", type=int, choices=range(10), metavar="0-9",
                   help="zlib level of the combined file (default: as in the parts)")

    pa = sub.add_parser("params", help="exact parameter count of an architecture, with its breakdown",
                        description="Exact parameter count of a preset, a family (transformers' default sizes) "
                                    "or a local config.json, with the breakdown by component.")
    src = pa.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", metavar="NAME", help="preset (llama-2-7b, ...) or family (llama, ...)")
    src.add_argument("--hf-config", metavar="PATH", help="a local Hugging Face config.json, or a model folder "
                                                         "holding one (never downloaded)")
    pa.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    help="structural option, e.g. tied_head=true (repeatable)")
    pa.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help=_SET_HELP)
    pa.add_argument("--json", action="store_true",
                    help='print {"total", "active", "breakdown": {embedding, positions, attention, mlp, norms, '
                         'head, router, experts}}')
    pa.add_argument("--lora-rank", metavar="R",
                    help="print the trainable parameters of a LoRA adapter of rank R (peft semantics) instead")
    pa.add_argument("--lora-targets", metavar="NAMES",
                    help="modules the adapter wraps: a comma list (q_proj,v_proj, ...) or all-linear "
                         "(default: peft's targets for the model type); needs --lora-rank")

    for cmd, helptext in (("memory", "per-device memory of a training step or a prefill, with its breakdown"),
                          ("flops", "FLOPs per token and per step, training time, compute-optimal sizes")):
        mp = sub.add_parser(cmd, help=helptext, description=helptext)
        _add_arch_source(mp, required=cmd == "memory")
        mp.add_argument("--batch", type=int, metavar="B", help="sequences per step (per device)")
        mp.add_argument("--seq-len", type=int, metavar="S", help="tokens per sequence")
        # the structural memory options, defined once in engine.options
        add_option_flags(mp, MEMORY_OPTIONS, _MEMORY_FLAGS + (("causal_flops",) if cmd == "flops" else ()),
                         notes=_MEMORY_FLAG_NOTES)
        mp.add_argument("--dropout", type=float, default=0.0, metavar="P", help="dropout probability")
        mp.add_argument("--dp", type=int, default=1, help="data-parallel degree")
        mp.add_argument("--tp", type=int, default=1, help="tensor-parallel degree")
        mp.add_argument("--pp", type=int, default=1, help="pipeline-parallel degree")
        mp.add_argument("--vp", type=int, default=1, help="virtual pipeline stages (interleaved 1F1B)")
        mp.add_argument("--ep", type=int, help="expert-parallel degree (MoE; Megatron semantics: routed experts split "
                                               "over ep x etp devices, their states over dp x tp / (ep x etp))")
        mp.add_argument("--etp", type=int, help="expert tensor-parallel degree (MoE; default: --tp)")
        mp.add_argument("--kv-dtype", choices=("fp32", "bf16", "fp16", "fp8", "int8", "int4"),
                        help="KV-cache element type (inference; default: the weights' 16-bit type)")
        mp.add_argument("--weights", choices=("int8", "int4", "fp8"),
                        help="quantized weights (inference): int8/int4 group-wise with a scale and zero point per "
                             "128 weights (embedding and head stay 16-bit); fp8 one byte per weight")
        mp.add_argument("--kv-window", type=int, metavar="W", help="sliding window: keep min(S, W) tokens")
        mp.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="structural architecture option, e.g. tied_head=true")
        mp.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help=_SET_HELP)
        if cmd == "flops":
            mp.add_argument("--tokens", type=float, help="training tokens, for the training time")
            mp.add_argument("--gpus", type=int, help="devices (default dp x tp x pp)")
            mp.add_argument("--peak-flops", type=float, help="peak FLOP/s of one device, e.g. 989e12")
            mp.add_argument("--mfu", type=float, default=0.5, help="model FLOPs utilization (default 0.5)")
            mp.add_argument("--compute", type=float, help="a FLOPs budget: print the compute-optimal N and D")
            mp.add_argument("--scaling-law", choices=("chinchilla", "chinchilla_tex", "besiroglu"),
                            default="besiroglu")
        if cmd == "memory":
            mp.add_argument("--lora-rank", type=int, metavar="R", help="LoRA rank (with --finetune lora|qlora)")
            mp.add_argument("--lora-targets", metavar="NAMES",
                            help="modules the adapters wrap: a comma list or all-linear (default: peft's targets "
                                 "for the model type); with --finetune")
        mp.add_argument("--json", action="store_true")

    ti = sub.add_parser("time", help="step time of a parallel layout on a device type, with its breakdown",
                        description="Step time (training) or time to first token and per output token (inference) "
                                    "of one layout: roofline compute, collectives, pipeline bubble, optimizer step.")
    _add_arch_source(ti, required=True)
    _add_device_run(ti, "sequences per optimizer step (inference: the batch)")
    ti.add_argument("--micro-batch", type=int, default=1, metavar="M", help="sequences per micro-batch (default 1)")
    for flag, what in (("tp", "tensor"), ("pp", "pipeline"), ("cp", "context"), ("ep", "expert"),
                       ("vp", "virtual pipeline")):
        ti.add_argument(f"--{flag}", type=int, default=1, metavar="N", help=f"{what}-parallel degree (default 1)")
    ti.add_argument("--etp", type=int, metavar="N", help="expert tensor-parallel degree (MoE; default: --tp)")
    ti.add_argument("--dp", type=int, metavar="N", help="data-parallel degree (default gpus / (tp x pp x cp))")
    ti.add_argument("--shard-group", type=int, metavar="G",
                    help="hybrid sharding: ZeRO/FSDP within groups of G devices, plain data parallelism across them "
                         "(FSDP HYBRID_SHARD, MaxText ICI-FSDP x DCN-data; default: dp)")
    ti.add_argument("--mode", choices=("training", "inference"), default="training")
    add_option_flags(ti, MEMORY_OPTIONS, ("precision",))  # the one vocabulary and default (engine.options)
    ti.add_argument("--recompute", choices=("none", "selective", "full"), default="none")
    ti.add_argument("--sequence-parallel", action="store_true")
    ti.add_argument("--zero", type=int, choices=(0, 1, 2, 3), default=1, help="ZeRO stage (default 1: Megatron's "
                                                                               "distributed optimizer)")
    ti.add_argument("--attention", choices=("eager", "sdpa", "flash"), default="flash")
    ti.add_argument("--json", action="store_true")

    pl = sub.add_parser("plan", help="the fastest parallel layouts that fit, searched over every combination",
                        description="Search every tp, pp, cp, dp, micro-batch, vp, recompute, ZeRO stage and "
                                    "sequence-parallel choice for a device count; print the fastest that fit.")
    _add_arch_source(pl, required=True)
    _add_device_run(pl, "sequences per optimizer step")
    pl.add_argument("--top", type=int, default=10, metavar="K", help="layouts to print (default 10)")
    add_option_flags(pl, MEMORY_OPTIONS, ("precision",))
    pl.add_argument("--recompute", choices=("none", "selective", "full"), action="append",
                    help="search only these recompute choices (repeatable; default all three)")
    pl.add_argument("--zero", type=int, choices=(0, 1, 2, 3), action="append",
                    help="search only these ZeRO stages (repeatable; default 0-3)")
    pl.add_argument("--json", action="store_true")

    pt = sub.add_parser("plot", help="draw a cube's variable (heatmap, lines, frontier) to PNG, PDF or SVG",
                        description="Draw VARIABLE of a netCDF cube, or of a spec evaluated in memory: a heatmap "
                                    "over --x and --y with the --budget contour, lines against --x, or the frontier "
                                    "of the largest --maximize with VARIABLE <= --budget. Other dims are fixed with "
                                    "--at.")
    pt.add_argument("source", metavar="CUBE.nc|SPEC.toml",
                    help="a netCDF cube (llm-sweep run's output) or a spec (.toml), evaluated in memory")
    pt.add_argument("variable", metavar="VARIABLE", help="the quantity to draw, e.g. mem_peak")
    pt.add_argument("--x", required=True, metavar="DIM", help="the dim along the horizontal axis")
    pt.add_argument("--y", metavar="DIM",
                    help="heatmap: the dim along the vertical axis; line, frontier: one line per coordinate")
    pt.add_argument("--at", action="append", default=[], metavar="DIM=VALUE",
                    help="fix a dim that is not drawn at one of its coordinates (repeatable)")
    pt.add_argument("--budget", metavar="LIMIT",
                    help="e.g. 80GiB (byte variables need a byte unit; others a plain number): the heatmap's "
                         "contour, a line, or the frontier's constraint VARIABLE <= LIMIT")
    pt.add_argument("--kind", choices=("heatmap", "line", "frontier"),
                    help="default: frontier with --maximize, heatmap with --y, else line")
    pt.add_argument("--maximize", metavar="DIM",
                    help="frontier: the dim (or variable) to maximize subject to VARIABLE <= --budget")
    pt.add_argument("-o", "--output", required=True, metavar="FIG", help="the figure to write: .png, .pdf or .svg")

    op = sub.add_parser("open", help="summarise a spec's virtual cube (nothing is evaluated)",
                        description="Open SPEC as a virtual cube -- xr.open_dataset(SPEC, engine=\"llm-sweep\") -- and "
                                    "print its dims, size and variables; reading a slab evaluates only that slab.")
    op.add_argument("spec", metavar="SPEC.toml", help="a sweep spec, e.g. examples/design-space.toml")

    c = sub.add_parser("check", help="recompute the numbers a text claims",
                       description="Recompute every claim of a claims file; exit 1 if any is wrong.")
    c.add_argument("claims", help="claims file (TOML), e.g. sweeps/seed-claims.toml")
    c.add_argument("--json", action="store_true", help="print a JSON list of {claim, claimed, derived, ok}")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0, 1, 2; 128 + signal number when stopped by a signal)."""
    from engine.files import stop_outcome, written
    from engine.signals import stop_on_signals

    written.clear()  # what this command publishes: a stop says whether its target changed
    command = "llm-sweep"
    with stop_on_signals(), warnings.catch_warnings():  # SIGTERM and SIGHUP clean up like Ctrl-C
        notes: list[str] = []
        warnings.showwarning = lambda message, *rest, **kw: notes.append(str(message))
        warnings.simplefilter("always", LlmSweepDeprecation)
        warnings.simplefilter("always", LlmSweepNote)  # a default the user did not choose, named after the answer
        try:
            _signals.check()  # a signal held since the console script's first line (engine.signals.hold)
            parser = _parser()  # (a signal while a module is imported, numpy here, JAX later, is raised after it)
            args, extra = parser.parse_known_args(argv)
            if extra:  # an unknown flag after the command: named with the command, not the top-level usage
                raise _unrecognized(parser, args, extra)
            command = f"llm-sweep {args.command}"
            code = {"run": _run, "formulas": _formulas, "check": _check, "combine": _combine,
                    "params": _params, "memory": _memory, "flops": _flops, "time": _time, "plan": _plan,
                    "plot": _plot, "open": _open}[args.command](args)
            from engine.signals import check

            check()  # a signal whose exception was swallowed on the way still stops the command
            for message in dict.fromkeys(notes):  # old spellings still read: one line each, after success
                print(f"{command}: note: {message}", file=sys.stderr)
            return code
        except LlmSweepError as exc:  # a UsageError names the (sub)command the parser was reading
            print(f"{getattr(exc, 'prog', command)}: error: {_one_line(_in_flag_terms(exc))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            print(f"{command}: stopped by {signal.Signals(signum).name}; {stop_outcome()}", file=sys.stderr)
            return 128 + signum
        except MemoryError:
            print(f"{command}: error: out of host memory; shrink the axes or stream the cube to a file",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        except BrokenPipeError:  # `llm-sweep ... | head`: the reader left; say nothing more
            try:
                sys.stdout = open(os.devnull, "w")
            except OSError:
                pass
            return 128 + signal.SIGPIPE
        except OSError as exc:  # a file the command was given or writes: permissions, a full disk, ...
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            print(f"{command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT


def entry() -> None:
    """The console script: ``main``, with a stop signal at any moment answered in one line.

    The signals are held from the first line of this module (``engine.signals.hold``). After a stop
    signal the process ends with ``os._exit`` once its files are cleaned up, so no runtime thread
    (XLA's, a writer's) can outlive the interpreter's teardown.
    """
    try:
        code = main()
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        from engine.files import stop_outcome  # pure Python; what is on disk, as main's own stop line says

        print(f"llm-sweep: stopped by {signal.Signals(signum).name}; {stop_outcome()}", file=sys.stderr)
        code = 128 + signum
    if code >= 128:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the work is done: a late signal must not
        signal.signal(sig, signal.SIG_IGN)                     # print a traceback from the interpreter's exit
    sys.exit(code)


# library terms (what ``engine.catalog.model`` and ``engine.request.spec`` name) -> the flag a user typed
_FLAGS = {"arch": "--arch", "hf_config": "--hf-config", "structure": "--option"}


def _in_flag_terms(exc: BaseException) -> BaseException:
    """A library ``SpecError`` about an input the user gave as a flag, told in the flag's name."""
    from engine.errors import SpecError

    if isinstance(exc, SpecError) and exc.source in _FLAGS:
        return SpecError(_FLAGS[exc.source], exc.key, exc.message)
    return exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _run(args) -> int:
    from engine.progress import reporting

    with reporting(not args.quiet):  # formulas, kernels, compiling, writing: one status line on a terminal
        return _run_sweep(args)


def _run_sweep(args) -> int:
    from dataclasses import replace

    from engine.errors import LlmSweepDeprecation
    from engine.request.numerics import Numerics
    from engine.request.spec import load_spec

    from engine.errors import SpecError
    from engine.files import check_cube, check_target, remove_leftovers
    from engine.runtime.plan import parse_bytes
    from engine.progress import clear as clear_status, note
    from engine.runtime.query import make_query

    if args.output == "":
        raise SpecError("-o", "", "the output path is empty; give a file name such as out.nc")
    part = _part_flags(args)
    request = load_spec(args.spec)
    if args.precision:
        warnings.warn("--precision exact|fast is now --numerics (run's --precision is read for now)",
                      LlmSweepDeprecation)
    numerics = args.numerics or args.precision
    if numerics:
        request = replace(request, numerics=Numerics(numerics))
    if args.compression is not None:
        request = replace(request, compression=args.compression)
    budget = None
    if args.max_device_mem is not None:
        try:
            budget = parse_bytes(args.max_device_mem)
        except ValueError as exc:
            raise SpecError("--max-device-mem", args.max_device_mem, str(exc)) from None
    if args.where or args.maximize or args.minimize or args.over:
        over = [d.strip() for d in (args.over or "").split(",") if d.strip()]
        try:
            request = replace(request, query=make_query(args.where, args.maximize, args.minimize, over,
                                                        request.quantities, list(request.axes)))
        except ValueError as exc:
            raise SpecError(args.spec, "--where/--maximize/--minimize/--over", str(exc)) from None
    output = Path(args.output or request.output or Path(args.spec).with_suffix(".nc").name)
    inputs = _spec_inputs(args.spec, request)
    from engine.sinks.zarr_store import ZarrSink, check_store_target, is_store

    zarr_out = is_store(output)
    check_output = check_store_target if zarr_out else check_target
    if part is None and args.distributed:
        if request.query is not None:
            raise SpecError(args.spec, "--distributed", "a query reduces the whole grid; run it on one process")
        check_output(output, inputs)  # before joining the cluster
    if part is not None and request.query is not None:
        raise SpecError(args.spec, "--part", "a query reduces the whole grid; run it on one process")
    from engine.signals import deferred

    note("loading JAX")
    with deferred():  # JAX and xarray load only when a sweep runs; a signal here waits for the import to end
        from engine.runtime import sweep

    if part is None and args.distributed:
        part = _distributed(args)
    whole = request
    if part is not None:
        share = sweep.process_share(request, *part)
        if not zarr_out:  # a zarr store takes every share's region directly: one store, no combine
            output = sweep.part_path(output, *part)
        if share is None:
            if not args.quiet:
                print(f"llm-sweep run: part {part[0]} of {part[1]} has no coordinates of the first axis; nothing to do")
            return EXIT_OK
        request = share
    check_output(output, inputs)
    if args.output is None:  # a name the user did not type replaces nothing but a cube of its kind
        check_cube(output, "zarr" if zarr_out else "netcdf", "sweep.output" if request.output else "default output",
                   f"give -o {output} to replace it anyway, or another path")
    remove_leftovers(output.parent, say=lambda m: print(f"llm-sweep run: {m}", file=sys.stderr))

    _enable_compilation_cache()
    progress = not args.quiet
    if request.query is not None:
        result = sweep.run_query(request, request.query, budget, progress)
        t0 = time.perf_counter()
        from engine.sinks.dataset import write_netcdf
        from engine.sinks.zarr_store import write_store

        note(f"writing {output}")
        (write_store if zarr_out else write_netcdf)(result.dataset, output, request.compression, inputs)
        result.write_seconds, result.path = time.perf_counter() - t0, output
        objective = request.query.objective
        if objective is not None and objective not in request.quantities:
            objective = f"{request.query.sense}_{objective}"
        headline = ([objective] if objective else []) + ["n_feasible"]
    elif zarr_out:
        sink = ZarrSink(output, inputs, whole=whole if part is not None else None, part=part or (0, 1))
        result = sweep.run(request, sink, budget, progress)
        headline = request.headline
        if part is not None:  # one share of the store: its extremes are not the cube's
            if not args.quiet:
                print(f"llm-sweep run: share {part[0]} of {part[1]} written into "
                      + (f"{output}; every share is done: the store is complete" if result.complete else
                         f"{sink.staging}; the store appears at {output} when every share is done"))
            return EXIT_OK
    else:
        result = sweep.run_to_netcdf(request, output, budget, progress, inputs=inputs)
        headline = request.headline
    clear_status()
    if not args.quiet:
        print(result.summary(headline, args.spec))
        if request.query is not None:
            print(f"  query     {request.query.describe()}")
    return EXIT_OK


def _spec_inputs(spec: str, request) -> list[Path]:
    """The files a run reads (the spec, a config.json it names): never to be overwritten by it."""
    inputs = [Path(spec)]
    if request.arch and str(request.arch).endswith(".json"):
        arch = Path(request.arch)
        inputs.append(arch if arch.is_absolute() else Path(spec).parent / arch)
    return inputs


_CLUSTER_HELP = ("JAX detects SLURM (SLURM_JOB_ID, SLURM_NTASKS, SLURM_PROCID, SLURM_STEP_NODELIST), Open MPI "
                 "(OMPI_MCA_orte_hnp_uri, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK), Kubernetes "
                 "(KUBERNETES_SERVICE_HOST) and Cloud TPU jobs; elsewhere give --coordinator HOST:PORT (or set "
                 "JAX_COORDINATOR_ADDRESS) with --num-processes N and --process-id I on every process, or run "
                 "independent processes with --part I/N")


def _part_flags(args) -> tuple[int, int] | None:
    """--part I/N, checked against --distributed and its flags (no cluster is joined here)."""
    from engine.errors import SpecError

    manual = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
              "--process-id": args.process_id}
    given = [flag for flag, value in manual.items() if value is not None]
    if given and not args.distributed:
        raise SpecError(given[0], str(manual[given[0]]), "applies only with --distributed")
    if args.distributed and args.part is not None:
        raise SpecError("--part", args.part, "--distributed takes the share from the cluster; give one or the other")
    if args.coordinator is not None and (args.num_processes is None or args.process_id is None):
        raise SpecError("--coordinator", args.coordinator, "needs --num-processes N and --process-id I as well")
    if args.num_processes is not None and args.num_processes < 1:
        raise SpecError("--num-processes", str(args.num_processes), "must be a positive integer")
    if args.process_id is not None and args.num_processes is not None and not 0 <= args.process_id < args.num_processes:
        raise SpecError("--process-id", str(args.process_id), f"must be from 0 to {args.num_processes - 1}")
    if args.part is None:
        return None
    index, sep, count = args.part.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise SpecError("--part", args.part, "expected I/N with 0 <= I < N, e.g. 0/4")
    return (i, n) if n > 1 else None


def _distributed(args) -> tuple[int, int] | None:
    """Join the cluster (jax.distributed.initialize): this process's (index, count), or None alone."""
    import jax

    from engine.errors import SpecError

    kwargs = {}
    if args.coordinator is not None:
        kwargs = dict(coordinator_address=args.coordinator, num_processes=args.num_processes,
                      process_id=args.process_id)
    try:
        jax.distributed.initialize(**kwargs)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise SpecError("--distributed", "", f"cannot join a cluster ({_one_line(exc)}). {_CLUSTER_HELP}") from None
    count = jax.process_count()
    return (jax.process_index(), count) if count > 1 else None


def _combine(args) -> int:
    from engine.signals import deferred

    with deferred():  # netCDF4 and xarray: a signal during their import waits for it to end
        from engine.sinks.dataset import combine
    from engine.errors import SpecError
    from engine.files import check_target, remove_leftovers

    if args.output == "":
        raise SpecError("-o", "", "the output path is empty; give a file name such as out.nc")
    missing = [p for p in args.parts if not Path(p).is_file()]
    if missing:
        raise SpecError(missing[0], "", "no such part file")
    target = check_target(args.output, args.parts)
    remove_leftovers(target.parent, say=lambda m: print(f"llm-sweep combine: {m}", file=sys.stderr))
    try:
        path = combine(args.parts, args.output, args.compression)
    except ValueError as exc:
        raise SpecError(args.output, "combine", str(exc)) from None
    print(f"llm-sweep combine: {len(args.parts)} parts -> {path} ({path.stat().st_size:,} bytes)")
    return EXIT_OK


_KV_BITS = {"fp32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "int4": 4}


def _estimate_inputs(args):
    """(architecture, MemoryOptions, values) from the memory/flops flags."""
    from engine.errors import SpecError
    from engine.catalog.model import memory_options
    from engine.request.options import given_options

    arch = _arch_of(args, _options(args.option) or None)
    chosen = given_options(args, _MEMORY_FLAGS + ("causal_flops",))
    args.mode = mode = chosen.get("mode", "training")
    if args.mode == "training":
        for flag in ("kv_dtype", "kv_window", "weights"):
            if getattr(args, flag, None):
                raise SpecError(f"--{flag.replace('_', '-')}", str(getattr(args, flag)),
                                "applies to --mode inference (training keeps full-precision weights and no KV cache)")
    if args.command == "flops":  # FLOPs do not depend on the activation model; it only adds its own checks
        chosen["memory_model"] = "pytorch" if mode == "inference" else "korthikanti"
    if mode == "inference" and "optimizer" in chosen:
        raise SpecError("--optimizer", chosen["optimizer"], "applies to --mode training (inference keeps no optimizer "
                                                            "state)")
    if args.vp > 1 and args.pp == 1:
        raise SpecError("--vp", str(args.vp), "virtual pipeline stages interleave a pipeline: give --pp > 1 as well")
    if args.command == "flops" and (args.tokens is None) != (args.peak_flops is None):
        given, missing = ("--tokens", "--peak-flops") if args.tokens is not None else ("--peak-flops", "--tokens")
        raise SpecError(given, str(getattr(args, given[2:].replace("-", "_"))),
                        f"the training time needs {missing} as well (and --mfu, default 0.5)")
    if not 0 <= args.dropout < 1:
        raise SpecError("--dropout", str(args.dropout), "a probability from 0 to below 1")
    opts = {**chosen, "dropout": args.dropout > 0, "quantized": args.weights in ("int8", "int4")}
    options = memory_options(**opts)
    values = {}
    for flag in ("ep", "etp"):
        if getattr(args, flag, None) is not None and not arch.structure.moe:
            raise SpecError(f"--{flag}", str(getattr(args, flag)), f"expert parallelism applies to MoE models; "
                                                                   f"{arch.label} has no experts")
    for flag, name in (("batch", "batch"), ("seq_len", "seq_len"), ("dp", "dp"), ("tp", "tp"), ("pp", "pp"),
                       ("vp", "vp"), ("kv_window", "kv_window"), ("gpus", "n_gpus"), ("ep", "ep"), ("etp", "etp")):
        value = getattr(args, flag, None)
        if value is not None:
            if value <= 0:
                raise SpecError(f"--{flag.replace('_', '-')}", str(value), "must be a positive integer")
            values[name] = value
    if args.kv_dtype:
        values["bits_kv"] = _KV_BITS[args.kv_dtype]
    if args.weights:
        values["bits_weight"] = _KV_BITS[args.weights]
    sets = _set_values(args.set)
    for name, flag in (("bits_kv", "--kv-dtype"), ("bits_weight", "--weights")):
        if name in sets and name in values:
            raise SpecError("--set", f"{name}={sets[name]}", f"{flag} sets {name} already; give one of them")
    values.update(sets)
    args.set_values = sets
    for flag, name in (("tokens", "tokens"), ("peak_flops", "peak_flops"), ("mfu", "mfu")):
        value = getattr(args, flag, None)
        if value is not None:
            where = f"--{flag.replace('_', '-')}"
            if not math.isfinite(value):
                raise SpecError(where, str(value), "must be a finite number")
            if value <= 0 or (name == "mfu" and value > 1):
                raise SpecError(where, str(value), "must be from 0 to 1" if name == "mfu" else "must be positive")
            if name == "tokens" and value < 1:
                raise SpecError(where, str(value), "must be at least 1 token")
            values[name] = int(value) if name == "tokens" else value
    return arch, options, values


def _memory(args) -> int:
    from engine.errors import SpecError
    from engine.catalog.model import memory_estimate

    if args.batch is None or args.seq_len is None:
        raise SpecError("memory", "--batch/--seq-len", "both are required")
    arch, options, values = _estimate_inputs(args)
    if args.set_values:
        from engine.catalog.model import estimate_formulas
        from engine.symbolic.memory import moments

        fs = estimate_formulas(arch.family, arch.structure, options)
        _check_sets_used(args.set_values, fs, [fs.inline(m.total) for m in moments(arch.structure, options)],
                         {*arch.values, *values})
    if options.finetune == "none" and (args.lora_rank is not None or args.lora_targets is not None):
        flag = "--lora-rank" if args.lora_rank is not None else "--lora-targets"
        raise SpecError(flag, str(args.lora_rank if args.lora_rank is not None else args.lora_targets),
                        "needs --finetune lora or qlora")
    if options.finetune != "none":
        est = memory_estimate(arch, options, values, lora_rank=args.lora_rank, lora_targets=args.lora_targets)
    else:
        est = memory_estimate(arch, options, values)
    if args.json:
        print(json.dumps(est, indent=2))
        return EXIT_OK
    name = args.hf_config or args.arch
    print(f"{name}: {args.mode} peak {_gib(est['peak'])} per device ({est['peak']:,} bytes; "
          f"{options.memory_model} model, {options.precision}, at the {est['moment']}"
          + (f", {est['attention_kernel']} attention" if "attention_kernel" in est else "") + ")")
    for key, value in est["breakdown"].items():
        print(f"  {key:<15} {_gib(value):>12}  {value:>18,}")
    if "paged_optimizer" in est:  # bitsandbytes paged states: CUDA managed memory, not in the peak above
        print(f"paged optimizer states {_gib(est['paged_optimizer'])} per device ({est['paged_optimizer']:,} bytes, "
              "CUDA managed memory: paged to the host when the device runs short)")
    if "host_peak" in est:  # offload: host bytes per device, not part of the device peak above
        print(f"host (offload {options.offload}) {_gib(est['host_peak'])} per device ({est['host_peak']:,} bytes)")
        for key, value in est["host"].items():
            print(f"  {key:<15} {_gib(value):>12}  {value:>18,}")
    return EXIT_OK


def _gib(n: float) -> str:
    return f"{n / 2**30:,.2f} GiB"


def _precision(args) -> str:
    """``--precision`` of time and plan in the memory options' one vocabulary: an alias (bf16-amp, 32-true, ...)
    read as its canonical name, the one default when not given; anything else refused in the flag's name."""
    from engine.errors import SpecError
    from engine.request.options import canonical_option, check_option
    from engine.symbolic.memory import OPTIONS

    if args.precision is None:
        return OPTIONS["precision"].default
    try:
        check_option(OPTIONS, "precision", args.precision)
    except ValueError as exc:
        raise SpecError("--precision", args.precision, str(exc)) from None
    return canonical_option(OPTIONS, "precision", args.precision)


def _time(args) -> int:
    """``llm-sweep time``: one layout's step time (training) or ttft / tpot (inference)."""
    from engine.catalog.model import memory_options
    from engine.errors import SpecError
    from engine.catalog.timing import Layout, time_estimate

    arch = _arch_of(args)
    training = args.mode == "training"
    chosen = {"mode": args.mode, "precision": _precision(args), "attention": args.attention}
    if training:
        chosen.update(memory_model="korthikanti", recompute=args.recompute, zero=args.zero,
                      sequence_parallel=args.sequence_parallel)
    else:
        for flag, default in (("recompute", "none"), ("zero", 1), ("sequence_parallel", False), ("pp", 1),
                              ("micro_batch", 1)):
            if getattr(args, flag) != default:
                raise SpecError("--" + flag.replace("_", "-"), str(getattr(args, flag)),
                                "applies to --mode training")
        chosen["attention"] = "sdpa" if args.attention == "flash" else args.attention
    options = memory_options(**chosen)
    layout = Layout(args.gpus, args.seq_len, args.global_batch, args.micro_batch if training else args.global_batch,
                    args.tp, args.pp, args.dp, args.cp, args.ep, args.vp, args.shard_group, args.etp)
    if not training:  # one replica serves the batch: every device in tp x cp
        if args.gpus != args.tp * args.cp or (args.dp or 1) != 1:
            raise SpecError("--gpus", str(args.gpus), f"inference times one replica: --gpus must equal tp x cp = "
                                                      f"{args.tp * args.cp} (and --dp 1)")
        layout = Layout(args.gpus, args.seq_len, args.global_batch, args.global_batch, args.tp, 1, 1, args.cp,
                        args.ep, 1)
    est = time_estimate(arch, args.gpu, layout, options)
    if args.json:
        print(json.dumps(est, indent=2))
        return EXIT_OK
    name = args.hf_config or args.arch
    lay = est["layout"]
    where = (f"{lay['gpus']} x {est['gpu']}, tp {lay['tp']} pp {lay['pp']} dp {lay['dp']} cp {lay['cp']}"
             + (f" ep {lay['ep']}" if arch.structure.moe else "") + (f" vp {lay['vp']}" if lay["vp"] > 1 else ""))
    fits = "fits" if est["fits"] else "does NOT fit"
    if training:
        print(f"{name}: step {est['step_time']:.4g} s, {est['tokens_per_s']:,.0f} tokens/s, MFU {est['mfu']:.1%}, "
              f"HFU {est['hfu']:.1%} ({where}; micro-batch {lay['micro_batch']}, global batch {lay['global_batch']} "
              f"x {lay['seq_len']} tokens)")
        for key, value in est["breakdown"].items():
            print(f"  {key:<10} {value:>12.4g} s  {100 * value / est['step_time']:5.1f}%")
    else:
        print(f"{name}: ttft {est['ttft']:.4g} s, tpot {1e3 * est['tpot']:.4g} ms, {est['tokens_per_s']:,.0f} "
              f"tokens/s ({where}; batch {lay['global_batch']} x {lay['seq_len']} tokens)")
    print(f"memory: peak {_gib(est['mem_peak'])} per device of {_gib(est['hbm'])}: {fits}")
    return EXIT_OK


def _open(args) -> int:
    """``llm-sweep open``: the lazy dataset of a spec, summarised (``engine.backend.summary``)."""
    from engine.backend import summary

    print(summary(args.spec))
    return EXIT_OK


def _plot(args) -> int:
    """``llm-sweep plot``: one figure of a cube or of a spec run in memory (``engine.plot.command``)."""
    from engine.plot.command import plot_command

    if args.source.endswith(".toml"):
        _enable_compilation_cache()
    print(plot_command(args))
    return EXIT_OK


def _plan(args) -> int:
    """``llm-sweep plan``: the fastest layouts that fit in device memory."""
    from engine.errors import SpecError
    from engine.catalog.plan import plan

    arch = _arch_of(args)
    from dataclasses import replace

    from engine.catalog.plan import default_space

    if args.global_batch is None or args.global_batch <= 0:
        raise SpecError("--global-batch", str(args.global_batch), "must be a positive integer")
    space = default_space(arch, args.gpus, args.global_batch)
    space = replace(space, recompute=tuple(dict.fromkeys(args.recompute or space.recompute)),
                    zero=tuple(dict.fromkeys(args.zero if args.zero is not None else space.zero)))
    from engine.catalog.plan import describe_folded, knob_text
    from engine.progress import reporting

    with reporting(not args.json):  # kernels, exact values of the best rows: one status line on a terminal
        out = plan(arch, args.gpu, args.gpus, args.seq_len, args.global_batch, top=args.top,
                   precision=_precision(args), space=space)
    if args.json:
        print(json.dumps(out, indent=2))
    name = args.hf_config or args.arch
    if not out["layouts"]:
        low = out["lowest_peak"]
        why = (f"the lowest peak of a valid layout is {_gib(low['mem_peak'])} (tp {low['layout']['tp']} pp "
               f"{low['layout']['pp']} dp {low['layout']['dp']} cp {low['layout']['cp']} micro-batch "
               f"{low['layout']['micro_batch']} recompute {low['recompute']} zero {low['zero']})"
               if low else "no layout passes the layout rules")
        print(f"llm-sweep plan: nothing fits: {name} on {args.gpus} x {args.gpu}, global batch {args.global_batch} x "
              f"{args.seq_len}: {out['valid']:,} of {out['searched']:,} configurations pass the layout rules, none "
              f"within {_gib(out['hbm'])}; {why}", file=sys.stderr)
        return EXIT_NOTHING_FITS
    if args.json:
        return EXIT_OK
    print(f"{name} on {args.gpus} x {args.gpu}, global batch {args.global_batch} x {args.seq_len}: "
          f"{out['searched']:,} configurations, {out['valid']:,} pass the layout rules, {out['fit']:,} fit; "
          f"{out['seconds']:.1f} s")
    for est in out["layouts"]:
        lay = est["layout"]
        folded = describe_folded(est)
        print(f"  {est['step_time']:9.4g} s  MFU {est['mfu']:5.1%}  tp {lay['tp']:<2} pp {lay['pp']:<3} dp {lay['dp']:<5} "
              f"cp {lay['cp']} " + (f"ep {knob_text(est, 'ep'):<3} " if arch.structure.moe else "")
              + f"vp {knob_text(est, 'vp'):<2} micro-batch {lay['micro_batch']:<4} recompute "
              f"{knob_text(est, 'recompute'):<9} zero {knob_text(est, 'zero'):<3} sp "
              f"{knob_text(est, 'sequence_parallel'):<3}  {_gib(est['mem_peak'])}" + (f"  ({folded})" if folded else ""))
    return EXIT_OK


def _flops(args) -> int:
    from engine.errors import SpecError
    from engine.catalog.model import flops_estimate

    out: dict = {}
    if args.arch or args.hf_config:
        if args.batch is None or args.seq_len is None:
            raise SpecError("flops", "--batch/--seq-len", "both are required with --arch or --hf-config")
        arch, options, values = _estimate_inputs(args)
        if args.set_values:
            from engine.catalog.model import estimate_formulas

            fs = estimate_formulas(arch.family, arch.structure, options)
            names = ["flops_forward_token", "flops_token", "hardware_flops_token", "flops_step", "flops_palm_token",
                     "flops_narayanan_step", "flops_narayanan_recompute_step"]
            names += ["train_seconds"] if "tokens" in values and "peak_flops" in values else []
            _check_sets_used(args.set_values, fs, [fs.expanded(n) for n in names if n in fs.quantities],
                             {*arch.values, *values})
        out.update(flops_estimate(arch, options, values))
    elif args.set:
        raise SpecError("--set", args.set[0], "inputs apply to --arch/--hf-config estimates; with --compute alone "
                                              "it would be ignored")
    if args.compute is not None:
        import sympy

        if not (math.isfinite(args.compute) and args.compute > 0):
            raise SpecError("--compute", str(args.compute), "a FLOPs budget must be positive and finite, e.g. 1e23")
        from engine.symbolic.formulas.scaling import CHINCHILLA_FITS, chinchilla_loss, chinchilla_optimum, extrapolation

        fit = CHINCHILLA_FITS[args.scaling_law]
        n_opt, d_opt = chinchilla_optimum(fit, sympy.Float(args.compute, 30))
        out["compute_optimal"] = {"law": fit.name, "source": fit.source, "params": float(n_opt),
                                  "tokens": float(d_opt), "tokens_per_param": float(d_opt / n_opt),
                                  "loss": float(chinchilla_loss(fit, n_opt, d_opt)),
                                  # the runs the law was fitted on, and how far outside them this answer is
                                  "fitted_range": {"params": list(fit.fitted.params),
                                                   "tokens": list(fit.fitted.tokens), "source": fit.fitted.source},
                                  "extrapolation": extrapolation(fit.fitted, float(n_opt), float(d_opt))}
    if not out:
        raise SpecError("flops", "", "give --arch/--hf-config with --batch and --seq-len, and/or --compute")
    if args.json:
        print(json.dumps(out, indent=2))
        return EXIT_OK
    for key, value in out.items():
        if isinstance(value, dict):
            print(f"{key}: " + ", ".join(f"{k} = {v:.4g}{_FLOPS_UNITS.get(k, '')}" if isinstance(v, float)
                                          else f"{k} = {v}" for k, v in value.items()
                                          if k not in ("fitted_range", "extrapolation")))
            for note in value.get("extrapolation", []):
                print(f"  note: {note}")
        else:
            unit = _FLOPS_UNITS.get(key, "")
            extra = f"  ({_duration(value)})" if key == "train_seconds" else ""
            print(f"{key:<32} {value:.6g}{unit}{extra}")
    return EXIT_OK


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} seconds"


_FLOPS_UNITS = {"flops_forward_token": " FLOP per token", "flops_token": " FLOP per token",
                "hardware_flops_token": " FLOP per token", "flops_palm_token": " FLOP per token",
                "flops_step": " FLOP per step", "flops_narayanan_step": " FLOP per step",
                "flops_narayanan_recompute_step": " FLOP per step", "train_seconds": " s",
                "params": " parameters", "tokens": " tokens", "tokens_per_param": " tokens per parameter",
                "loss": " nats per token"}


def _enable_compilation_cache() -> None:
    """Persist XLA executables between runs (the CLI owns its process; the library never does this).

    Set LLM_SWEEP_CACHE_DIR to move the cache, or to an empty string to turn it off; a cache
    directory configured for JAX already is left as it is.
    """
    import jax

    folder = os.environ.get("LLM_SWEEP_CACHE_DIR", str(Path.home() / ".cache" / "llm-sweep" / "xla"))
    if not folder or jax.config.jax_compilation_cache_dir:
        return
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _formulas(args) -> int:
    from engine.errors import SpecError
    from engine.symbolic.expr import ExpressionError, parse_expression
    from engine.symbolic.formulas import FORMULA_SETS, build_formula_set
    from engine.symbolic.printing import format_formulas, parse_line_width
    from engine.symbolic.symbols import SYMBOLS

    line_width = None
    if args.line_width is not None:
        if args.format != "latex":
            raise SpecError("--line-width", args.line_width, f"applies to --format latex, not {args.format}")
        try:
            line_width = parse_line_width(args.line_width)
        except ValueError as exc:
            raise SpecError("--line-width", args.line_width, str(exc)) from None
    options = _options(args.option, numeric_flag="--substitute")
    substitute = {}
    for item in args.substitute:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or key not in SYMBOLS:
            raise SpecError("--substitute", item, f"expected NAME=EXPR with NAME one of {', '.join(SYMBOLS)}")
        try:  # never sympify (eval): only arithmetic over the registry's input symbols
            substitute[key] = parse_expression(text, {n: i.symbol for n, i in SYMBOLS.items()})
        except ExpressionError as exc:
            raise SpecError("--substitute", item, str(exc)) from None
        _check_substitution(item, key, substitute[key])
    if args.collect is not None and args.collect not in SYMBOLS:
        raise SpecError("--collect", args.collect, f"not an input; valid: {', '.join(SYMBOLS)}")
    values = None
    name = args.arch or "seed"
    if args.hf_config or name not in FORMULA_SETS:
        from engine.catalog.model import architecture, formulas_of

        from engine.symbolic.memory import OPTIONS as MEMORY_OPTIONS

        memory = {k: v for k, v in options.items() if k in MEMORY_OPTIONS}  # memory, compute and step time too
        arch = _arch_of(args, {k: v for k, v in options.items() if k not in memory} or None) if args.hf_config \
            else architecture(name, {k: v for k, v in options.items() if k not in memory} or None)
        formulas, values = formulas_of(arch), arch.values
        if memory:
            from engine.catalog.model import estimate_formulas, memory_options

            formulas = estimate_formulas(arch.family, arch.structure, memory_options(**memory))
    else:
        if args.with_sizes:
            raise SpecError("--with-sizes", "", f"{name!r} is a formula set with no sizes; give a preset "
                                                "(--arch llama-2-7b) or --hf-config")
        try:
            formulas = build_formula_set(name, options)
        except ValueError as exc:
            raise SpecError("--option", ",".join(args.option), str(exc)) from None
    sys.stdout.write(format_formulas(formulas, args.format, expand=args.expand, substitute=substitute,
                                     collect=args.collect, values=values, with_sizes=args.with_sizes,
                                     line_width=line_width))
    return EXIT_OK


def _check_substitution(item: str, key: str, expr) -> None:
    """SpecError unless ``expr`` is a value input ``key`` can take at every valid input point: positive (at
    least 0 for counts that may be 0) for all positive inputs, and a whole number when it is a constant for an
    integer input. sympy's assumptions decide most; else a grid of input values looks for a counterexample
    (d_ff = d_model - n_heads at d_model = 1, n_heads = 2) and one found is named."""
    import itertools

    import sympy

    from engine.errors import SpecError
    from engine.symbolic.symbols import SYMBOLS

    info = SYMBOLS[key]
    zero_ok = info.integer and info.minimum == 0
    bad = "< 0" if zero_ok else "<= 0"
    if expr.is_number:
        if not expr.is_real or (expr.is_negative if zero_ok else not expr.is_positive) or \
                (info.integer and not expr.is_integer):
            raise SpecError("--substitute", item, f"{key} must be {info.kind}, got {expr}")
        return
    if (expr.is_nonnegative if zero_ok else expr.is_positive) is True:
        return
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    grid = [tuple(float(v) for v in (*range(SYMBOLS[s.name].minimum, 9), 16, 64, 1000, 10**6))
            if SYMBOLS[s.name].integer else (1e-3, 0.5, 1.0, 2.0, 3.0, 1e9) for s in free]
    if len(free) <= 4:  # every combination (at most 13^4)
        points = itertools.product(*grid)
    else:  # a seeded sample
        import random

        rng = random.Random(0)
        points = ([rng.choice(g) for g in grid] for _ in range(20000))
    f = sympy.lambdify(free, expr, modules="math")
    witness = None
    for point in points:  # floats: an integer power of a big value overflows at once instead of running on
        try:
            value = f(*point)
        except (ArithmeticError, ValueError, TypeError):  # outside its domain there (log of 0, ...): not a witness
            continue
        if isinstance(value, complex) or value < 0 or (value == 0 and not zero_ok):
            witness = ", ".join(f"{s} = {v:g}" for s, v in zip(free, point)) + f" gives {value:g}"
            break
    if witness is None and (expr.is_nonnegative if zero_ok else expr.is_positive) is None:
        return  # undecided by sympy and positive wherever tried: accepted
    raise SpecError("--substitute", item, f"{key} must be {info.kind}, but {expr} can be {bad} for positive "
                                          "inputs" + (f" ({witness})" if witness else "")
                    + "; give an expression that stays positive, e.g. d_ff=4*d_model")


def _add_arch_source(parser: argparse.ArgumentParser, required: bool) -> None:
    """--arch NAME | --hf-config PATH, one of them (memory, flops, time, plan)."""
    src = parser.add_mutually_exclusive_group(required=required)
    src.add_argument("--arch", metavar="NAME", help="preset or family")
    src.add_argument("--hf-config", metavar="PATH", help="a local Hugging Face config.json, or a model folder "
                                                         "holding one")


def _add_device_run(parser: argparse.ArgumentParser, batch_help: str) -> None:
    """The device type, its count and the step's sequences (time, plan)."""
    parser.add_argument("--gpu", required=True, metavar="NAME|FILE.toml", help="a catalog device or a TOML file")
    parser.add_argument("--gpus", type=int, required=True, metavar="N", help="devices")
    parser.add_argument("--seq-len", type=int, required=True, metavar="S", help="tokens per sequence")
    parser.add_argument("--global-batch", type=int, required=True, metavar="B", help=batch_help)


def _arch_of(args, options: dict | None = None):
    """The architecture --arch names, or the config.json (or model folder holding one) --hf-config names:
    never a preset of the same name."""
    from engine.catalog.model import architecture, config_architecture

    if args.hf_config is not None:
        return config_architecture(args.hf_config, options)
    return architecture(args.arch, options)


def _options(items: list[str], numeric_flag: str = "--set") -> dict:
    from engine.errors import SpecError
    from engine.symbolic.symbols import SYMBOLS

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SpecError("--option", item, "expected NAME=VALUE, e.g. tied_head=false")
        if key.strip() in SYMBOLS:  # a numeric input, not a structural option
            raise SpecError("--option", item, f"unknown option {key.strip()!r}: --option takes structural options; "
                                              f"{key.strip()} is a numeric input, give it with {numeric_flag} "
                                              f"{key.strip()}=VALUE")
        options[key.strip()] = _option_value(value.strip())
    return options


def _params(args) -> int:
    from dataclasses import replace

    from engine.symbolic.formulas.architectures import BREAKDOWN
    from engine.catalog.model import param_counts

    if getattr(args, "lora_targets", None) is not None and getattr(args, "lora_rank", None) is None:
        from engine.errors import SpecError

        raise SpecError("--lora-targets", args.lora_targets, "needs --lora-rank R (a positive integer)")
    arch = _arch_of(args, _options(args.option) or None)
    sets = _set_values(args.set, dedicated=False)
    if sets:  # the sizes (and any other input) the configuration gives, overridden
        from engine.catalog.model import formulas_of

        fs = formulas_of(arch)
        _check_sets_used(sets, fs, [fs.expanded(n) for n in ("params_total", "params_active")], set(arch.values))
        arch = replace(arch, values={**arch.values, **sets})
    if getattr(args, "lora_rank", None) is not None:
        return _lora(args, arch)
    counts = param_counts(arch)
    if args.json:
        print(json.dumps(counts, indent=2))
        return EXIT_OK
    name = args.hf_config or args.arch
    total = counts["total"]
    print(f"{name} ({arch.family}): {total:,} parameters"
          + (f", {counts['active']:,} active per token" if counts["active"] is not None else ""))
    for key in BREAKDOWN:
        value = counts["breakdown"][key]
        print(f"  {key:<10} {value:>18,}  {100 * value / total:5.1f}%")
    print(f"  {'total':<10} {total:>18,}")
    if "mtp" in counts:
        print(f"  {'mtp':<10} {counts['mtp']:>18,}  multi-token prediction: not built by transformers, not in the total")
    sizes = ", ".join(f"{k} = {v}" for k, v in arch.values.items())
    print(f"sizes: {sizes}")
    print(f"source: {arch.source}")
    return EXIT_OK


def _lora(args, arch) -> int:
    """``params --lora-rank R [--lora-targets ...]``: the adapter's trainable parameters (peft semantics)."""
    from engine.catalog.model import lora_counts
    from engine.errors import SpecError

    try:
        rank = int(args.lora_rank)
    except ValueError:
        rank = 0
    if rank <= 0:
        raise SpecError("--lora-rank", args.lora_rank, "must be a positive integer, e.g. 8")
    counts = lora_counts(arch, rank, args.lora_targets)
    if args.json:
        print(json.dumps(counts, indent=2))
        return EXIT_OK
    name = args.hf_config or args.arch
    print(f"{name} ({arch.family}) LoRA rank {rank} on {', '.join(counts['targets'])}: "
          f"{counts['trainable']:,} trainable parameters")
    for key, value in counts["per_target"].items():
        print(f"  {key:<16} {value:>16,}")
    print(f"  {'per layer':<16} {counts['trainable_per_layer']:>16,}")
    print(f"  {'with the model':<16} {counts['total_with_adapters']:>16,}  "
          f"({100 * counts['trainable'] / counts['total_with_adapters']:.4f}% trainable)")
    print(f"source: {counts['source']}")
    return EXIT_OK


def _option_value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text


def _check(args) -> int:
    from engine.symbolic.claims import format_value, load_claims

    source, claims = load_claims(args.claims)
    if args.json:
        print(json.dumps([c.as_json() for c in claims], indent=2))
    else:
        wrong = [c for c in claims if not c.ok]
        print(f"Claims of {source}: {len(claims) - len(wrong)} hold, {len(wrong)} wrong")
        rows = [("verdict", "claimed", "derived", "claim")]
        rows += [("ok" if c.ok else "WRONG", format_value(c.claimed), format_value(c.derived), c.claim) for c in claims]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
        if wrong:
            print("\nWhat is wrong:")
            for c in wrong:
                print(f"- {c.claim}\n    claimed {format_value(c.claimed)}, derived {format_value(c.derived)}"
                      + (f"; {c.note}" if c.note else ""))
    return EXIT_OK if all(c.ok for c in claims) else EXIT_CLAIM_WRONG


if __name__ == "__main__":
    sys.exit(main())
