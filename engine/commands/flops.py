"""``llm-sweep flops``: FLOPs per token and per step, training time, compute-optimal sizes."""

from __future__ import annotations

import argparse
import json
import math

from engine.commands.common import EXIT_OK, check_sets_used
from engine.commands.estimate import add_estimate_flags, estimate_inputs
from engine.errors import SpecError
from engine.options import SCALING_LAWS

_HELP = "FLOPs per token and per step, training time, compute-optimal sizes"
_QUANTITIES = ("flops_forward_token", "flops_token", "hardware_flops_token", "flops_step", "flops_palm_token",
               "flops_narayanan_step", "flops_narayanan_recompute_step")
_UNITS = {"flops_forward_token": " FLOP per token", "flops_token": " FLOP per token",
          "hardware_flops_token": " FLOP per token", "flops_palm_token": " FLOP per token",
          "flops_step": " FLOP per step", "flops_narayanan_step": " FLOP per step",
          "flops_narayanan_recompute_step": " FLOP per step", "train_seconds": " s",
          "params": " parameters", "tokens": " tokens", "tokens_per_param": " tokens per parameter",
          "loss": " nats per token"}


def add_parser(subparsers) -> None:
    """Declare ``flops`` and its flags."""
    mp = subparsers.add_parser("flops", help=_HELP, description=_HELP)
    add_estimate_flags(mp, "flops")
    mp.add_argument("--tokens", type=float, help="training tokens, for the training time")
    mp.add_argument("--gpus", type=int, help="devices (default dp x tp x pp)")
    mp.add_argument("--peak-flops", type=float, help="peak FLOP/s of one device, e.g. 989e12")
    mp.add_argument("--mfu", type=float, default=0.5, help="model FLOPs utilization (default 0.5)")
    mp.add_argument("--compute", type=float, help="a FLOPs budget: print the compute-optimal N and D")
    mp.add_argument("--scaling-law", choices=SCALING_LAWS, default="besiroglu")
    mp.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    """Print the point's FLOPs (``engine.catalog.model.flops_estimate``) and/or the compute-optimal sizes."""
    from engine.catalog.model import estimate_formulas, flops_estimate

    out: dict = {}
    if args.arch or args.hf_config:
        if args.batch is None or args.seq_len is None:
            raise SpecError("flops", "--batch/--seq-len", "both are required with --arch or --hf-config")
        arch, options, values = estimate_inputs(args)
        if args.set_values:
            fs = estimate_formulas(arch.family, arch.structure, options)
            names = [*_QUANTITIES, *(["train_seconds"] if "tokens" in values and "peak_flops" in values else [])]
            check_sets_used(args.set_values, fs, [fs.expanded(n) for n in names if n in fs.quantities],
                            {*arch.values, *values})
        out.update(flops_estimate(arch, options, values))
    elif args.set:
        raise SpecError("--set", args.set[0], "inputs apply to --arch/--hf-config estimates; with --compute alone "
                                              "it would be ignored")
    if args.compute is not None:
        out["compute_optimal"] = _compute_optimal(args)
    if not out:
        raise SpecError("flops", "", "give --arch/--hf-config with --batch and --seq-len, and/or --compute")
    if args.json:
        print(json.dumps(out, indent=2))
        return EXIT_OK
    for key, value in out.items():
        if isinstance(value, dict):
            print(f"{key}: " + ", ".join(f"{k} = {v:.4g}{_UNITS.get(k, '')}" if isinstance(v, float)
                                          else f"{k} = {v}" for k, v in value.items()
                                          if k not in ("fitted_range", "extrapolation")))
            for note in value.get("extrapolation", []):
                print(f"  note: {note}")
        else:
            extra = f"  ({_duration(value)})" if key == "train_seconds" else ""
            print(f"{key:<32} {value:.6g}{_UNITS.get(key, '')}{extra}")
    return EXIT_OK


def _compute_optimal(args: argparse.Namespace) -> dict:
    """--compute C: the scaling law's compute-optimal parameters and tokens, its loss, and how far outside the
    fitted runs the answer lies."""
    import sympy

    from engine.symbolic.formulas.scaling import CHINCHILLA_FITS, chinchilla_loss, chinchilla_optimum, extrapolation

    if not (math.isfinite(args.compute) and args.compute > 0):
        raise SpecError("--compute", str(args.compute), "a FLOPs budget must be positive and finite, e.g. 1e23")
    fit = CHINCHILLA_FITS[args.scaling_law]
    n_opt, d_opt = chinchilla_optimum(fit, sympy.Float(args.compute, 30))
    return {"law": fit.name, "source": fit.source, "params": float(n_opt), "tokens": float(d_opt),
            "tokens_per_param": float(d_opt / n_opt), "loss": float(chinchilla_loss(fit, n_opt, d_opt)),
            # the runs the law was fitted on, and how far outside them this answer is
            "fitted_range": {"params": list(fit.fitted.params), "tokens": list(fit.fitted.tokens),
                             "source": fit.fitted.source},
            "extrapolation": extrapolation(fit.fitted, float(n_opt), float(d_opt))}


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} seconds"
