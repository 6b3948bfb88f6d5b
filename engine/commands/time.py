"""``llm-sweep time``: the step time of one parallel training layout on a device type, with its breakdown
(serving: ``llm-sweep serve``)."""

from __future__ import annotations

import argparse
import json

from engine.commands.common import EXIT_OK, add_arch_source, add_device_run, arch_of, gib, precision
from engine.commands.parsing import add_old_spelling
from engine.errors import SpecError
from engine.options import MEMORY_OPTIONS
from engine.request.options import add_option_flags

# the memory options time takes (engine.options holds their choices), and where its defaults differ from
# memory's on purpose: ZeRO 1 (Megatron's distributed optimizer) and FlashAttention, as a tuned run has them
_OPTIONS = ("mode", "precision", "recompute", "sequence_parallel", "zero", "attention", "stack", "overlap",
            "grad_reduce_dtype", "fp8_recipe", "elementwise")
DEFAULTS = {"zero": 1}  # attention and stack: the stack's kernel on the device (hardware.stack_and_kernel)
_NOTES = {"zero": "default here 1: Megatron's distributed optimizer (memory's default is 0)",
          "attention": "default here: the stack's kernel on the device (megatron-core: cuDNN on H100, FlashAttention-2 "
                       "on A100)",
          "stack": "default: maxtext on a TPU, megatron-core elsewhere"}


def add_parser(subparsers) -> None:
    """Declare ``time`` and its flags."""
    ti = subparsers.add_parser("time", help="step time of a parallel layout on a device type, with its breakdown",
                               description="Step time of one training layout: roofline compute, collectives, "
                                           "pipeline bubble, optimizer step (serving: llm-sweep serve).")
    add_arch_source(ti, required=True)
    add_device_run(ti, "sequences per optimizer step")
    ti.add_argument("--batch", type=int, default=1, metavar="M", help="sequences per micro-batch (default 1)")
    add_old_spelling(ti, "--micro-batch", "--batch", dest="batch", type=int, metavar="M")
    for flag, what in (("tp", "tensor"), ("pp", "pipeline"), ("cp", "context"), ("ep", "expert"),
                       ("vp", "virtual pipeline")):
        ti.add_argument(f"--{flag}", type=int, default=1, metavar="N", help=f"{what}-parallel degree (default 1)")
    ti.add_argument("--etp", type=int, metavar="N", help="expert tensor-parallel degree (MoE; default: --tp)")
    for end, megatron in (("first", "first"), ("last", "last")):
        ti.add_argument(f"--{end}-stage-layers", type=int, default=0, metavar="N",
                        help=f"layers of the {end} pipeline stage, the rest split evenly over the middle stages "
                             f"(Megatron-LM --decoder-{megatron}-pipeline-num-layers; default: every stage as even as "
                             "possible, the fullest holding ceiling(layers / (pp x vp)) x vp)")
    ti.add_argument("--dp", type=int, metavar="N", help="data-parallel degree (default gpus / (tp x pp x cp))")
    ti.add_argument("--shard-group", type=int, metavar="G",
                    help="hybrid sharding: ZeRO/FSDP within groups of G devices, plain data parallelism across them "
                         "(FSDP HYBRID_SHARD, MaxText ICI-FSDP x DCN-data; default: dp)")
    add_option_flags(ti, MEMORY_OPTIONS, _OPTIONS, notes=_NOTES)
    ti.add_argument("--json", action="store_true")


def chosen_options(args: argparse.Namespace) -> dict:
    """The memory options the flags give, each left out filled with time's default (``DEFAULTS``, else the
    option's own); the precision read in its one vocabulary."""
    from engine.catalog.hardware import stack_and_kernel

    chosen = {name: getattr(args, name) for name in _OPTIONS}
    given_attention = chosen["attention"]
    for name, value in chosen.items():
        if value is None:
            chosen[name] = DEFAULTS.get(name, MEMORY_OPTIONS[name].default)
    chosen["precision"] = precision(args)
    if chosen["mode"] == "training":  # (mode inference is refused by main: serve times serving)
        chosen["stack"], chosen["attention"], chosen["overlap"] = stack_and_kernel(
            args.gpu, args.stack, given_attention, chosen["overlap"])
    return chosen


def main(args: argparse.Namespace) -> int:
    """Print one layout's step time (``engine.catalog.timing.time_estimate``); --mode inference names serve."""
    from engine.catalog.model import memory_options
    from engine.catalog.timing import Layout, time_estimate

    flags = chosen_options(args)
    if flags["mode"] != "training":  # serving: its own command, inputs (input_len, output_len, concurrency), engine
        raise SpecError("--mode", flags["mode"], "serving is timed by llm-sweep serve (time to first token, time per "
                        "output token and throughput at a concurrency: --input-len, --output-len, --concurrency)")
    arch = arch_of(args)
    chosen = {"mode": "training", "precision": flags["precision"], "attention": flags["attention"],
              "memory_model": "korthikanti"}
    chosen.update({name: flags[name] for name in ("recompute", "zero", "sequence_parallel", "stack", "overlap",
                                                  "grad_reduce_dtype", "fp8_recipe", "elementwise")})
    layout = Layout(args.gpus, args.seq_len, args.global_batch, args.batch, args.tp, args.pp, args.dp, args.cp,
                    args.ep, args.vp, args.shard_group, args.etp, args.first_stage_layers, args.last_stage_layers)
    est = time_estimate(arch, args.gpu, layout, memory_options(**chosen))
    if args.json:
        print(json.dumps(est, indent=2))
        return EXIT_OK
    _print(args, arch, est)
    return EXIT_OK


def _print(args: argparse.Namespace, arch, est: dict) -> None:
    """The estimate as text: the headline, the breakdown, the memory verdict."""
    name = args.hf_config or args.arch
    lay = est["layout"]
    where = (f"{lay['gpus']} x {est['gpu']}, tp {lay['tp']} pp {lay['pp']} dp {lay['dp']} cp {lay['cp']}"
             + (f" ep {lay['ep']}" if arch.structure.moe else "") + (f" vp {lay['vp']}" if lay["vp"] > 1 else "")
             + (f", stages of at most {est['stage_layers']} layers" if lay["pp"] > 1 else ""))
    fits = "fits" if est["fits"] else "does NOT fit"
    print(f"{name}: step {est['step_time']:.4g} s, {est['tokens_per_s']:,.0f} tokens/s, MFU {est['mfu']:.1%}, "
          f"HFU {est['hfu']:.1%} ({where}; micro-batch {lay['micro_batch']}, global batch {lay['global_batch']} "
          f"x {lay['seq_len']} tokens)")
    for key, value in est["breakdown"].items():
        print(f"  {key:<10} {value:>12.4g} s  {100 * value / est['step_time']:5.1f}%")
    print(f"memory: peak {gib(est['mem_peak'])} per device of {gib(est['hbm'])}: {fits}")
