"""``llm-sweep time``: step time (training) or time to first token and per output token (inference) of one
parallel layout on a device type, with its breakdown."""

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
_TRAINING_ONLY = {name: DEFAULTS.get(name, MEMORY_OPTIONS[name].default)
                  for name in ("recompute", "zero", "sequence_parallel")}  # refused in inference unless default
_NOTES = {"zero": "default here 1: Megatron's distributed optimizer (memory's default is 0)",
          "attention": "default here: the stack's kernel on the device (megatron-core: cuDNN on H100, FlashAttention-2 "
                       "on A100); inference: sdpa",
          "stack": "default: maxtext on a TPU, megatron-core elsewhere"}


def add_parser(subparsers) -> None:
    """Declare ``time`` and its flags."""
    ti = subparsers.add_parser("time", help="step time of a parallel layout on a device type, with its breakdown",
                               description="Step time (training) or time to first token and per output token "
                                           "(inference) of one layout: roofline compute, collectives, pipeline "
                                           "bubble, optimizer step.")
    add_arch_source(ti, required=True)
    add_device_run(ti, "sequences per optimizer step (inference: the batch)")
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
    if chosen["mode"] == "training":
        chosen["stack"], chosen["attention"], chosen["overlap"] = stack_and_kernel(
            args.gpu, args.stack, given_attention, chosen["overlap"])
    else:
        chosen["attention"] = given_attention or "sdpa"
    return chosen


def main(args: argparse.Namespace) -> int:
    """Print one layout's step time or ttft/tpot (``engine.catalog.timing.time_estimate``)."""
    from engine.catalog.model import memory_options
    from engine.catalog.timing import Layout, time_estimate

    arch = arch_of(args)
    flags = chosen_options(args)
    training = flags["mode"] == "training"
    chosen = {"mode": flags["mode"], "precision": flags["precision"], "attention": flags["attention"]}
    if training:
        chosen.update(memory_model="korthikanti", recompute=flags["recompute"], zero=flags["zero"],
                      sequence_parallel=flags["sequence_parallel"], stack=flags["stack"], overlap=flags["overlap"],
                      grad_reduce_dtype=flags["grad_reduce_dtype"], fp8_recipe=flags["fp8_recipe"],
                      elementwise=flags["elementwise"])
        layout = Layout(args.gpus, args.seq_len, args.global_batch, args.batch, args.tp, args.pp, args.dp, args.cp,
                        args.ep, args.vp, args.shard_group, args.etp, args.first_stage_layers, args.last_stage_layers)
    else:
        given = {**flags, "pp": args.pp, "batch": args.batch}
        given.update(first_stage_layers=args.first_stage_layers, last_stage_layers=args.last_stage_layers)
        for name in ("recompute", "zero", "sequence_parallel", "pp", "batch", "first_stage_layers",
                     "last_stage_layers"):  # training's, left at the default
            if given[name] != _TRAINING_ONLY.get(name, 0 if name.endswith("_layers") else 1):
                raise SpecError("--" + name.replace("_", "-"), str(given[name]), "applies to --mode training")
        for name in ("stack", "overlap", "grad_reduce_dtype", "fp8_recipe", "elementwise"):  # a training stack's
            if getattr(args, name) is not None:
                raise SpecError("--" + name.replace("_", "-"), getattr(args, name), "applies to --mode training")
        if args.gpus != args.tp * args.cp or (args.dp or 1) != 1:  # one replica serves the batch: tp x cp devices
            raise SpecError("--gpus", str(args.gpus), f"inference times one replica: --gpus must equal tp x cp = "
                                                      f"{args.tp * args.cp} (and --dp 1)")
        layout = Layout(args.gpus, args.seq_len, args.global_batch, args.global_batch, args.tp, 1, 1, args.cp,
                        args.ep, 1)
    est = time_estimate(arch, args.gpu, layout, memory_options(**chosen))
    if args.json:
        print(json.dumps(est, indent=2))
        return EXIT_OK
    _print(args, arch, est, training)
    return EXIT_OK


def _print(args: argparse.Namespace, arch, est: dict, training: bool) -> None:
    """The estimate as text: the headline, the training breakdown, the memory verdict."""
    name = args.hf_config or args.arch
    lay = est["layout"]
    where = (f"{lay['gpus']} x {est['gpu']}, tp {lay['tp']} pp {lay['pp']} dp {lay['dp']} cp {lay['cp']}"
             + (f" ep {lay['ep']}" if arch.structure.moe else "") + (f" vp {lay['vp']}" if lay["vp"] > 1 else "")
             + (f", stages of at most {est['stage_layers']} layers" if training and lay["pp"] > 1 else ""))
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
    print(f"memory: peak {gib(est['mem_peak'])} per device of {gib(est['hbm'])}: {fits}")
