"""``llm-sweep memory``: per-device memory of a training step or a prefill, with its breakdown."""

from __future__ import annotations

import argparse
import json

from engine.commands.common import EXIT_OK, check_sets_used, gib
from engine.commands.estimate import add_estimate_flags, estimate_inputs
from engine.errors import SpecError

_HELP = "per-device memory of a training step or a prefill, with its breakdown"


def add_parser(subparsers) -> None:
    """Declare ``memory`` and its flags."""
    mp = subparsers.add_parser("memory", help=_HELP, description=_HELP)
    add_estimate_flags(mp, "memory")
    mp.add_argument("--lora-rank", type=int, metavar="R", help="LoRA rank (with --finetune lora|qlora)")
    mp.add_argument("--lora-targets", metavar="NAMES",
                    help="modules the adapters wrap: a comma list or all-linear (default: peft's targets "
                         "for the model type); with --finetune")
    mp.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    """Print the point's memory estimate (``engine.catalog.model.memory_estimate``)."""
    from engine.catalog.model import estimate_formulas, memory_estimate
    from engine.symbolic.memory import moments

    if args.batch is None or args.seq_len is None:
        raise SpecError("memory", "--batch/--seq-len", "both are required")
    arch, options, values = estimate_inputs(args)
    if args.set_values:
        fs = estimate_formulas(arch.family, arch.structure, options)
        check_sets_used(args.set_values, fs, [fs.inline(m.total) for m in moments(arch.structure, options)],
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
    _print(args, options, est)
    return EXIT_OK


def _print(args: argparse.Namespace, options, est: dict) -> None:
    """The estimate as text: the peak, its breakdown, paged optimizer states and host (offload) bytes."""
    name = args.hf_config or args.arch
    print(f"{name}: {args.mode} peak {gib(est['peak'])} per device ({est['peak']:,} bytes; "
          f"{options.memory_model} model, {options.precision}, at the {est['moment']}"
          + (f", {est['attention_kernel']} attention" if "attention_kernel" in est else "") + ")")
    for key, value in est["breakdown"].items():
        print(f"  {key:<15} {gib(value):>12}  {value:>18,}")
    if "paged_optimizer" in est:  # bitsandbytes paged states: CUDA managed memory, not in the peak above
        print(f"paged optimizer states {gib(est['paged_optimizer'])} per device ({est['paged_optimizer']:,} bytes, "
              "CUDA managed memory: paged to the host when the device runs short)")
    if "host_peak" in est:  # offload: host bytes per device, not part of the device peak above
        print(f"host (offload {options.offload}) {gib(est['host_peak'])} per device ({est['host_peak']:,} bytes)")
        for key, value in est["host"].items():
            print(f"  {key:<15} {gib(value):>12}  {value:>18,}")
