"""The point that ``memory`` and ``flops`` estimate: an architecture, its memory options and the input values,
read from the flags the two commands share."""

from __future__ import annotations

import argparse
import math

from engine.commands.common import (add_arch_source, add_structure_flags, arch_of, option_choice, set_values,
                                    structure_options)
from engine.commands.parsing import add_old_spelling
from engine.errors import SpecError
from engine.options import MEMORY_OPTIONS
from engine.request.options import add_option_flags, flag_of, given_options

# the structural memory options, defined once in engine.options, that memory and flops take as flags
MEMORY_FLAGS = ("mode", "precision", "optimizer", "attention", "recompute", "zero", "sequence_parallel",
                "memory_model", "offload", "finetune", "kv_layout")
# inference number formats: the defaults of bits_kv and bits_weight (flag -> the input symbol it sets)
DTYPE_FLAGS = {"kv_dtype": "bits_kv", "weight_dtype": "bits_weight"}
_NOTES = {"kv_layout": "inference, MLA models only", "optimizer": "training only (default: adamw)"}
# flag -> input symbol of the integer sizes and degrees
_INTEGER_FLAGS = {"batch": "batch", "seq_len": "seq_len", "dp": "dp", "tp": "tp", "pp": "pp", "vp": "vp",
                  "kv_window": "kv_window", "gpus": "n_gpus", "ep": "ep", "etp": "etp"}


def add_estimate_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of a memory or flops point: architecture, sizes, memory options, parallel degrees, inference
    number formats, --option and --set."""
    add_arch_source(parser, required=command == "memory")
    parser.add_argument("--batch", type=int, metavar="B", help="sequences per step (per device)")
    parser.add_argument("--seq-len", type=int, metavar="S", help="tokens per sequence")
    add_option_flags(parser, MEMORY_OPTIONS, MEMORY_FLAGS + (("causal_flops",) if command == "flops" else ()),
                     notes=_NOTES)
    parser.add_argument("--dropout", type=float, default=0.0, metavar="P", help="dropout probability")
    parser.add_argument("--dp", type=int, default=1, help="data-parallel degree")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel degree")
    parser.add_argument("--pp", type=int, default=1, help="pipeline-parallel degree")
    parser.add_argument("--vp", type=int, default=1, help="virtual pipeline stages (interleaved 1F1B)")
    parser.add_argument("--ep", type=int, help="expert-parallel degree (MoE; Megatron semantics: routed experts split "
                                               "over ep x etp devices, their states over dp x tp / (ep x etp))")
    parser.add_argument("--etp", type=int, help="expert tensor-parallel degree (MoE; default: --tp)")
    add_option_flags(parser, MEMORY_OPTIONS, tuple(DTYPE_FLAGS))
    weights = MEMORY_OPTIONS["weight_dtype"]
    add_old_spelling(parser, "--weights", "--weight-dtype", dest="weight_dtype", values="|".join(weights.choices[1:]),
                     choices=weights.choices)
    parser.add_argument("--kv-window", type=int, metavar="W", help="sliding window: keep min(S, W) tokens")
    add_structure_flags(parser, "structural architecture option, e.g. tied_head=true")


def estimate_inputs(args: argparse.Namespace):
    """(architecture, MemoryOptions, values) from the memory/flops flags; sets ``args.mode`` and
    ``args.set_values`` (the --set inputs) for the command's own checks."""
    from engine.catalog.model import memory_options

    arch = arch_of(args, structure_options(args.option) or None)
    chosen = given_options(args, MEMORY_FLAGS + ("causal_flops", *DTYPE_FLAGS))
    chosen.update({name: option_choice(name, value) for name, value in chosen.items()
                   if MEMORY_OPTIONS[name].aliases})  # flags that take aliases (precision): checked in their name
    args.mode = mode = chosen.get("mode", "training")
    _check_flags(args, chosen)
    if args.command == "flops":  # FLOPs do not depend on the activation model; it only adds its own checks
        chosen["memory_model"] = "pytorch" if mode == "inference" else "korthikanti"
    options = memory_options(**chosen, dropout=args.dropout > 0)
    for flag in ("ep", "etp"):
        if getattr(args, flag, None) is not None and not arch.structure.moe:
            raise SpecError(f"--{flag}", str(getattr(args, flag)), f"expert parallelism applies to MoE models; "
                                                                   f"{arch.label} has no experts")
    values = {}
    for flag, name in _INTEGER_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            if value <= 0:
                raise SpecError(f"--{flag.replace('_', '-')}", str(value), "must be a positive integer")
            values[name] = value
    sets = set_values(args.set)
    for option, name in DTYPE_FLAGS.items():
        if name in sets and option in chosen:
            flag = flag_of(MEMORY_OPTIONS[option])
            raise SpecError("--set", f"{name}={sets[name]}", f"{flag} sets {name} already; give one of them")
    values.update(sets)
    args.set_values = sets
    values.update(_training_time_values(args))
    return arch, options, values


def _check_flags(args: argparse.Namespace, chosen: dict) -> None:
    """Refuse flags that would be ignored: inference flags in training, the optimizer in inference, vp without
    pp, half of the training-time pair; and a dropout that is not a probability."""
    if args.mode == "training":
        if args.kv_window:  # kv_dtype and weight_dtype: their rules (engine.options.memory.RULES)
            raise SpecError("--kv-window", str(args.kv_window),
                            "applies to --mode inference (training keeps full-precision weights and no KV cache)")
    if args.mode == "inference" and "optimizer" in chosen:
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


def _training_time_values(args: argparse.Namespace) -> dict:
    """flops' --tokens, --peak-flops and --mfu as input values, each checked."""
    values = {}
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
    return values
