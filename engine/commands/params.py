"""``llm-sweep params``: exact parameter count of an architecture with its breakdown, or of a LoRA adapter."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from engine.commands.common import (EXIT_OK, add_arch_source, add_structure_flags, arch_of, check_sets_used,
                                    set_values, structure_options)
from engine.errors import SpecError


def add_parser(subparsers) -> None:
    """Declare ``params`` and its flags."""
    pa = subparsers.add_parser("params", help="exact parameter count of an architecture, with its breakdown",
                               description="Exact parameter count of a preset, a family (transformers' default "
                                           "sizes) or a local config.json, with the breakdown by component.")
    add_arch_source(pa, required=True, arch_help="preset (llama-2-7b, ...) or family (llama, ...)",
                    config_help="a local Hugging Face config.json, or a model folder holding one (never downloaded)")
    add_structure_flags(pa, "structural option, e.g. tied_head=true (repeatable)")
    pa.add_argument("--json", action="store_true",
                    help='print {"total", "active", "breakdown": {embedding, positions, attention, mlp, norms, '
                         'head, router, experts}}')
    pa.add_argument("--lora-rank", metavar="R",
                    help="print the trainable parameters of a LoRA adapter of rank R (peft semantics) instead")
    pa.add_argument("--lora-targets", metavar="NAMES",
                    help="modules the adapter wraps: a comma list (q_proj,v_proj, ...) or all-linear "
                         "(default: peft's targets for the model type); needs --lora-rank")


def main(args: argparse.Namespace) -> int:
    """Print the parameter counts (``engine.catalog.model.param_counts``) or the adapter's (``lora_counts``)."""
    from engine.catalog.model import formulas_of, param_counts
    from engine.symbolic.formulas.architectures import BREAKDOWN

    if args.lora_targets is not None and args.lora_rank is None:
        raise SpecError("--lora-targets", args.lora_targets, "needs --lora-rank R (a positive integer)")
    arch = arch_of(args, structure_options(args.option) or None)
    sets = set_values(args.set, dedicated=False)
    if sets:  # the sizes (and any other input) the configuration gives, overridden
        fs = formulas_of(arch)
        check_sets_used(sets, fs, [fs.expanded(n) for n in ("params_total", "params_active")], set(arch.values))
        arch = replace(arch, values={**arch.values, **sets})
    if args.lora_rank is not None:
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


def _lora(args: argparse.Namespace, arch) -> int:
    """``params --lora-rank R [--lora-targets ...]``: the adapter's trainable parameters (peft semantics)."""
    from engine.catalog.model import lora_counts

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
