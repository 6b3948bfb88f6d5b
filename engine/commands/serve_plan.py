"""``llm-sweep serve-plan``: the cheapest serving layouts (device, tp, experts' split, concurrency per replica and
replicas for a number of users) that meet time-to-first-token and time-per-output-token limits."""

from __future__ import annotations

import argparse
import json
import sys

from engine.commands.common import EXIT_NOTHING_FITS, EXIT_OK, add_arch_source, arch_of
from engine.commands.serve import add_serving_flags, checked_options, limits_of, slo_text
from engine.errors import SpecError


def add_parser(subparsers) -> None:
    """Declare ``serve-plan`` and its flags."""
    sp = subparsers.add_parser("serve-plan", help="the cheapest serving layouts that meet TTFT/TPOT limits",
                               description="For each device (those with a price, or --gpu), tp 1, 2, 4, 8 (a MoE "
                                           "model's experts split with the replica's devices) and layout "
                                           "(aggregated, disaggregated xPyD; --serving keeps one kind; a MoE model "
                                           "also a node of attention data-parallel ranks), the largest concurrency "
                                           "per replica or unit that meets --ttft-max / --tpot-max, ranked by $ per "
                                           "million output tokens.")
    add_arch_source(sp, required=True)
    sp.add_argument("--gpu", action="append", metavar="NAME|FILE.toml",
                    help="a device to consider (repeatable; default: every catalog device with a price)")
    sp.add_argument("--users", type=int, metavar="C",
                    help="requests to serve at once: the replicas each layout needs, and their devices")
    sp.add_argument("--top", type=int, default=5, metavar="K", help="layouts to print (default 5)")
    add_serving_flags(sp)


def main(args: argparse.Namespace) -> int:
    """Print the cheapest layouts (``engine.catalog.serving.serve_plan``)."""
    from engine.catalog.hardware import device, device_names
    from engine.catalog.serving import serve_plan

    arch = arch_of(args)
    options = checked_options(args).with_options(serving="aggregated")  # each layout sets its own (--serving: which)
    for flag in ("users", "top"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SpecError("--" + flag, str(value), "must be a positive integer")
    gpus = args.gpu or [g for g in device_names() if device(g).price() is not None]
    result = serve_plan(arch, gpus, args.input_len, args.output_len, options, args.ttft_max, args.tpot_max,
                        args.users, limits_of(args), args.cost_per_hour, args.top, serving=args.serving)
    if args.json:
        print(json.dumps(result, indent=2))
    if not result["plans"]:  # a result, not bad input: exit 3, as plan's "nothing fits"
        why = "; ".join(f"{n} {reason}" for reason, n in result["refused"].items())
        print(f"llm-sweep serve-plan: no layout of {', '.join(result['gpus'])} meets {slo_text(args)} "
              f"({result['tried']} tried: {why})", file=sys.stderr)
        return EXIT_NOTHING_FITS
    if args.json:
        return EXIT_OK
    name = args.hf_config or args.arch
    print(f"{name}: the cheapest of {result['tried']} layouts meeting {slo_text(args)} ({args.input_len} in / "
          f"{args.output_len} out tokens, {options.engine})")
    for est in result["plans"]:
        lay = est["layout"]
        experts = f" ep {lay['ep']} etp {lay['etp']}" if arch.structure.moe else ""
        unit = (f" {lay['prefill_replicas']}P{lay['dp']}D" if lay["prefill_replicas"]
                else f" dp {lay['dp']}" if lay["dp"] > 1 else "")
        users = (f", {est['replicas']} {'units' if unit else 'replicas'} = {est['gpus']} devices for {args.users} "
                 "users") if args.users else ""
        print(f"  ${est['cost_per_mtok']:.3f}/Mtok  {est['gpu']} tp {lay['tp']}{experts}{unit}: concurrency "
              f"{est['concurrency']} per {'unit' if unit else 'replica'}, ttft {est['ttft']:.3g} s, "
              f"tpot {1e3 * est['tpot']:.3g} ms, "
              f"{est['tokens_per_s_per_gpu']:,.0f} tokens/s per device{users}")
    if result["refused"]:
        print("  not meeting the limits or not fitting: " + "; ".join(f"{n} {why}" for why, n in
                                                                       result["refused"].items()))
    return EXIT_OK
