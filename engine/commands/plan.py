"""``llm-sweep plan``: the fastest parallel layouts that fit, searched over every combination."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from engine.commands.common import (EXIT_NOTHING_FITS, EXIT_OK, add_arch_source, add_device_run, arch_of,
                                    enable_compilation_cache, gib, precision)
from engine.errors import SpecError
from engine.options import MEMORY_OPTIONS
from engine.progress import reporting
from engine.request.options import add_option_flags, flag_of

_DESCRIPTION = ("Search every tp, pp, cp, dp, micro-batch, vp, recompute, ZeRO stage and sequence-parallel choice "
                "for a device count; print the fastest that fit. The stack (--stack) sets the attention kernel and the "
                "communication that overlaps compute, as that framework does by default.")
_SEARCHED = ("recompute", "zero")  # memory options whose choices plan searches (all of them unless narrowed)
_NOTES = {"attention": "default: the stack's kernel on the device (megatron-core: cuDNN on H100, FlashAttention-2 on "
                       "A100)",
          "stack": "default: maxtext on a TPU, megatron-core elsewhere"}


def add_parser(subparsers) -> None:
    """Declare ``plan`` and its flags."""
    pl = subparsers.add_parser("plan", help="the fastest parallel layouts that fit, searched over every combination",
                               description=_DESCRIPTION)
    add_arch_source(pl, required=True)
    add_device_run(pl, "sequences per optimizer step")
    pl.add_argument("--top", type=int, default=10, metavar="K", help="layouts to print (default 10)")
    add_option_flags(pl, MEMORY_OPTIONS, ("precision", "attention", "stack", "overlap", "grad_reduce_dtype",
                                          "fp8_recipe", "elementwise"),
                     notes=_NOTES)
    for name in _SEARCHED:
        spec = MEMORY_OPTIONS[name]
        choices = ", ".join(map(str, spec.choices))
        pl.add_argument(flag_of(spec), dest=name, type=type(spec.default), choices=spec.choices, action="append",
                        help=f"{spec.meaning}: search only these (repeatable; default all of {choices})")
    pl.add_argument("--json", action="store_true")
    pl.add_argument("--quiet", action="store_true",
                    help="no status line on stderr (formulas, compiling kernel k of K, searching chunk i of N with an "
                         "ETA; shown only when stderr is a terminal); the layouts are printed all the same")


def main(args: argparse.Namespace) -> int:
    """Print the fastest layouts that fit (``engine.catalog.plan.plan``); exit 3 when none fits."""
    from engine.catalog.plan import default_space, plan

    arch = arch_of(args)
    if args.global_batch is None or args.global_batch <= 0:
        raise SpecError("--global-batch", str(args.global_batch), "must be a positive integer")
    if args.fp8_recipe not in (None, "stack") and precision(args) != "fp8":
        raise SpecError("--fp8-recipe", args.fp8_recipe, f"applies to --precision fp8, got {precision(args)}")
    space = default_space(arch, args.gpus, args.global_batch)
    space = replace(space, **{name: tuple(dict.fromkeys(getattr(args, name) or getattr(space, name)))
                              for name in _SEARCHED})
    enable_compilation_cache()  # 24 kernels of a plan compile once per machine, not once per call
    with reporting(not (args.json or args.quiet)):  # formulas, kernels, search chunks with an ETA, exact values
        # of the best rows: one status line on a terminal
        out = plan(arch, args.gpu, args.gpus, args.seq_len, args.global_batch, top=args.top,
                   precision=precision(args), space=space, attention=args.attention, stack=args.stack,
                   overlap=args.overlap or "stack", grad_reduce_dtype=args.grad_reduce_dtype or "stack",
                   fp8_recipe=args.fp8_recipe or "stack", elementwise=args.elementwise or "stack")
    if args.json:
        print(json.dumps(out, indent=2))
    if not out["layouts"]:
        _nothing_fits(args, out)
        return EXIT_NOTHING_FITS
    if not args.json:
        _print(args, arch, out)
    return EXIT_OK


def _nothing_fits(args: argparse.Namespace, out: dict) -> None:
    """One line on stderr: how many layouts pass the rules, and the lowest peak of a valid one."""
    name = args.hf_config or args.arch
    low = out["lowest_peak"]
    why = (f"the lowest peak of a valid layout is {gib(low['mem_peak'])} (tp {low['layout']['tp']} pp "
           f"{low['layout']['pp']} dp {low['layout']['dp']} cp {low['layout']['cp']} micro-batch "
           f"{low['layout']['micro_batch']} recompute {low['recompute']} zero {low['zero']})"
           if low else "no layout passes the layout rules")
    print(f"llm-sweep plan: nothing fits: {name} on {args.gpus} x {args.gpu}, global batch {args.global_batch} x "
          f"{args.seq_len}: {out['valid']:,} of {out['searched']:,} configurations pass the layout rules, none "
          f"within {gib(out['hbm'])}; {why}", file=sys.stderr)


def _print(args: argparse.Namespace, arch, out: dict) -> None:
    """The search's counts, then one line per layout, fastest first."""
    from engine.catalog.plan import describe_folded, knob_text

    name = args.hf_config or args.arch
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
              f"{knob_text(est, 'sequence_parallel'):<3}  {gib(est['mem_peak'])}" + (f"  ({folded})" if folded else ""))
        if est is out["layouts"][0]:  # why the winner wins: where its step goes
            print("    " + breakdown_text(est))


def breakdown_text(est: dict) -> str:
    """``step: compute 81.4%, tp 9.7%, bubble 7.1%, ...``: each part's share of the step, the parts that take
    time, largest first."""
    parts = sorted(((v, k) for k, v in est["breakdown"].items() if v > 0), reverse=True)
    return "step: " + ", ".join(f"{k} {v / est['step_time']:.1%}" for v, k in parts)
