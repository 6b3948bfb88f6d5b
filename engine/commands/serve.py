"""``llm-sweep serve``: time to first token, time per output token, throughput, capacity and cost of serving a
model on dp replicas of tp x pp devices at a concurrency (or the largest that fits, or that meets SLO limits)."""

from __future__ import annotations

import argparse
import json

from engine.commands.common import EXIT_OK, add_arch_source, arch_of, precision
from engine.errors import SpecError
from engine.options import MEMORY_OPTIONS
from engine.request.options import add_option_flags

_OPTIONS = ("precision", "attention", "engine", "serving", "weight_dtype", "kv_dtype", "kv_layout")
_NOTES = {"attention": "default: flash (the engines' fused kernels)"}
_LIMITS = (("block_size", int, "KV-cache tokens per page (vLLM --block-size)"),
           ("kv_memory_fraction", float, "the KV pool's memory share (vLLM --gpu-memory-utilization, TensorRT-LLM "
                                         "free_gpu_memory_fraction)"),
           ("max_num_batched_tokens", int, "token budget of one engine step (chunked prefill)"),
           ("max_num_seqs", int, "most requests running at once per replica"))


def _concurrency(text: str) -> int | str:
    if text == "max":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid concurrency {text!r}: a positive integer or 'max'") from None


def add_parser(subparsers) -> None:
    """Declare ``serve`` and its flags."""
    sv = subparsers.add_parser("serve", help="TTFT, TPOT, throughput and cost of serving a model",
                               description="Serving of one layout: time to first token, time per output token, output "
                                           "tokens/s per device and per user, the KV pools' maximum concurrency and "
                                           "$ per million output tokens, under continuous batching.")
    add_arch_source(sv, required=True)
    sv.add_argument("--gpu", required=True, metavar="NAME|FILE.toml", help="a catalog device or a TOML file")
    sv.add_argument("--gpus", type=int, metavar="N", help="devices in all: tp x pp x (dp + prefill replicas), "
                                                          "checked when given")
    for flag, what in (("tp", "tensor"), ("pp", "pipeline"), ("dp", "data (replicas)"), ("ep", "expert")):
        sv.add_argument(f"--{flag}", type=int, default=1, metavar="N", help=f"{what}-parallel degree (default 1)")
    sv.add_argument("--etp", type=int, metavar="N", help="expert tensor-parallel degree (MoE; default: --tp)")
    sv.add_argument("--prefill-replicas", type=int, default=0, metavar="X",
                    help="disaggregated serving (xPyD): X prefill replicas of tp x pp devices hand each request's KV "
                         "cache to the --dp decode replicas (default 0: aggregated)")
    sv.add_argument("--concurrency", type=_concurrency, default="max", metavar="C|max",
                    help="requests in flight (a benchmark's concurrency); max (default): the largest the KV pools "
                         "hold and the engine runs at once, or with --ttft-max/--tpot-max the largest that meets them")
    sv.add_argument("--rate", type=float, metavar="R",
                    help="requests per second arriving (an open loop), instead of --concurrency: the concurrency "
                         "that completes them (Little's law)")
    sv.add_argument("--spec-tokens", type=int, default=0, metavar="G",
                    help="speculative decoding: draft tokens per request and step (an MTP / EAGLE head; default 0)")
    sv.add_argument("--acceptance-rate", type=float, metavar="A",
                    help="probability a draft token is accepted (default 0.85, DeepSeek-V3's MTP)")
    add_serving_flags(sv)


def add_serving_flags(parser) -> None:
    """The flags serve and serve-plan share: workload, limits, price, the engine's limits, the options."""
    parser.add_argument("--input-len", type=int, required=True, metavar="I", help="prompt tokens per request")
    parser.add_argument("--output-len", type=int, required=True, metavar="O", help="generated tokens per request")
    parser.add_argument("--ttft-max", type=float, metavar="S", help="mean time to first token limit, seconds")
    parser.add_argument("--tpot-max", type=float, metavar="S", help="mean time per output token limit, seconds")
    parser.add_argument("--cost-per-hour", type=float, metavar="USD", help="US dollars per device-hour (default: the "
                                                                           "catalog's price for the device, if any)")
    for name, kind, what in _LIMITS:
        parser.add_argument("--" + name.replace("_", "-"), type=kind, metavar="N" if kind is int else "X",
                            help=what + " (default: the engine's, engines.json)")
    add_option_flags(parser, MEMORY_OPTIONS, _OPTIONS, notes=_NOTES)
    parser.add_argument("--json", action="store_true", help="print the result as JSON (keys in README)")


def checked_options(args: argparse.Namespace):
    """The inference options the flags give, after the numeric flags are checked (SpecError naming the flag)."""
    from engine.catalog.model import memory_options

    for flag in ("ttft_max", "tpot_max", "cost_per_hour", "kv_memory_fraction"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            raise SpecError("--" + flag.replace("_", "-"), str(value), "must be a positive number")
    if args.kv_memory_fraction is not None and args.kv_memory_fraction > 1:
        raise SpecError("--kv-memory-fraction", str(args.kv_memory_fraction), "must be at most 1")
    for name in ("block_size", "max_num_batched_tokens", "max_num_seqs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise SpecError("--" + name.replace("_", "-"), str(getattr(args, name)), "must be a positive integer")
    chosen = {name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None}
    chosen.update(mode="inference", precision=precision(args), attention=args.attention or "flash")
    return memory_options(**chosen)


def limits_of(args: argparse.Namespace) -> dict:
    """The engine limits the flags give (None: the engine's)."""
    return {name: getattr(args, name) for name, _, _ in _LIMITS}


def slo_text(args: argparse.Namespace) -> str:
    """``ttft <= 1 s, tpot <= 0.05 s``: the limits given."""
    return ", ".join(f"{name} <= {value:g} s" for name, value in (("ttft", args.ttft_max), ("tpot", args.tpot_max))
                     if value is not None)


def main(args: argparse.Namespace) -> int:
    """Print one deployment's serving figures (``engine.catalog.serving.serve_estimate``)."""
    from engine.catalog.serving import Deployment, serve_estimate

    arch = arch_of(args)
    gpus = args.tp * args.pp * (args.dp + max(args.prefill_replicas, 0))
    if args.gpus is not None and args.gpus != gpus:
        raise SpecError("--gpus", str(args.gpus), f"must equal tp x pp x (dp + prefill replicas) = {args.tp} x "
                                                  f"{args.pp} x ({args.dp} + {args.prefill_replicas}) = {gpus}")
    options = checked_options(args)
    if args.serving == "aggregated" and args.prefill_replicas:
        raise SpecError("--prefill-replicas", str(args.prefill_replicas),
                        "serves disaggregated; --serving aggregated asks for every replica to prefill and decode")
    if args.rate is not None and not args.rate > 0:
        raise SpecError("--rate", str(args.rate), "must be a positive number of requests per second")
    if args.rate is not None and args.concurrency != "max":
        raise SpecError("--rate", f"{args.rate:g}", "give --rate or --concurrency, not both")
    dep = Deployment(args.tp, args.pp, args.dp, args.ep, args.etp, args.input_len, args.output_len,
                     None if args.concurrency == "max" else args.concurrency, args.ttft_max, args.tpot_max, args.rate,
                     args.spec_tokens, args.acceptance_rate, args.prefill_replicas)
    est = serve_estimate(arch, args.gpu, dep, options, limits_of(args), args.cost_per_hour)
    if args.json:
        print(json.dumps(est, indent=2))
        return EXIT_OK
    _print(args, arch, est)
    return EXIT_OK


def _print(args: argparse.Namespace, arch, est: dict) -> None:
    """The estimate as text: the headline, throughput, capacity, cost."""
    name = args.hf_config or args.arch
    lay = est["layout"]
    split = f" ({lay['prefill_replicas']}P{lay['dp']}D)" if lay["prefill_replicas"] else ""
    where = (f"{est['gpus']} x {est['gpu']}, tp {lay['tp']} pp {lay['pp']} dp {lay['dp']}{split}"
             + (f" ep {lay['ep']}" if arch.structure.moe else "") + f", {est['engine']}")
    print(f"{name}: ttft {est['ttft']:.4g} s, tpot {1e3 * est['tpot']:.4g} ms at concurrency {est['concurrency']} "
          f"({where}; {lay['input_len']} in / {lay['output_len']} out tokens)")
    print(f"  output {est['tokens_per_s']:,.0f} tokens/s, {est['tokens_per_s_per_gpu']:,.1f} per device, "
          f"{est['tokens_per_s_per_user']:,.1f} per user; {est['request_rate']:,.3g} requests/s completed")
    print(f"  KV pool {est['mem_kv_pool'] / 2**30:.2f} GiB per device: at most {est['max_concurrency']:,} requests "
          f"in flight (engine runs {est['limits']['max_num_seqs']:,} per replica at once)")
    if "meets_slo" in est:
        print(f"  SLO ({slo_text(args)}): " + ("met" if est["meets_slo"] else "NOT met"))
    if est["tokens_per_s_per_mw"] is not None:
        print(f"  {est['tokens_per_s_per_mw']:,.0f} output tokens/s per MW of device power ({est['power_kw']:g} kW "
              "each)")
    if est["cost_per_mtok"] is not None:
        print(f"  ${est['cost_per_mtok']:.3f} per million output tokens at ${est['cost_per_hour']:.3f} per "
              f"device-hour (split by device time: ${est['cost_per_mtok_input']:.3f} per million input, "
              f"${est['cost_per_mtok_output']:.3f} per million output)")
    else:
        print("  cost: the catalog has no price for this device; give --cost-per-hour")
