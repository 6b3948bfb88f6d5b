"""``llm-sweep run``: evaluate a sweep spec and write its cube (netCDF, a zarr store) or a query's answer."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from engine.commands.common import EXIT_OK, enable_compilation_cache
from engine.commands.parsing import add_old_spelling
from engine.commands.shares import add_share_flags, join_cluster, share_flags
from engine.errors import SpecError
from engine.options import NUMERICS
from engine.progress import clear as clear_status, note, reporting
from engine.signals import deferred


def add_parser(subparsers) -> None:
    """Declare ``run`` and its flags."""
    run = subparsers.add_parser("run", help="evaluate a sweep spec and write a netCDF cube",
                                description="Evaluate the sweep SPEC (TOML) and write the cube to netCDF.")
    run.add_argument("spec", help="sweep specification (TOML), e.g. sweeps/seed.toml")
    run.add_argument("-o", "--output", help="netCDF file to write (default: the spec's output, "
                                            "else SPEC's name with .nc, in the current folder)")
    run.add_argument("--numerics", choices=NUMERICS,
                     help="override the spec's numerics: exact (int64/float64) or fast (float32)")
    add_old_spelling(run, "--precision", "--numerics", dest="numerics", values="|".join(NUMERICS), choices=NUMERICS)
    run.add_argument("--quiet", action="store_true", help="print nothing on success, and no progress bar")
    run.add_argument("--max-device-mem", metavar="SIZE",
                     help="device memory for one chunk's outputs, e.g. 8GiB (default: a quarter of the free "
                          "device memory; on a CPU, of the available host memory)")
    run.add_argument("--compression", type=int, choices=range(10), metavar="0-9",
                     help="zlib level of the netCDF variables (0 = none); overrides the spec")
    add_share_flags(run)
    q = run.add_argument_group("on-device query (replaces the spec's [query]; the cube never leaves the device)")
    q.add_argument("--where", action="append", default=[], metavar="CONSTRAINT",
                   help="e.g. 'mem_peak <= 80GiB' (repeatable: all must hold)")
    q.add_argument("--maximize", metavar="QUANTITY", help="report the largest QUANTITY that satisfies --where")
    q.add_argument("--minimize", metavar="QUANTITY", help="report the smallest QUANTITY that satisfies --where")
    q.add_argument("--over", metavar="DIMS", help="comma-separated dims to reduce, e.g. d_model,n_layers")


def main(args: argparse.Namespace) -> int:
    """Run the spec the flags name; 0 on success, SpecError on bad input."""
    with reporting(not args.quiet):  # formulas, kernels, compiling, writing: one status line on a terminal
        return _run(args)


def _request(args: argparse.Namespace):
    """The spec's request with the flags' overrides: numerics, compression."""
    from engine.request.numerics import Numerics
    from engine.request.spec import load_spec

    request = load_spec(args.spec)
    if args.numerics:
        request = replace(request, numerics=Numerics(args.numerics))
    if args.compression is not None:
        request = replace(request, compression=args.compression)
    return request


def _with_query(args: argparse.Namespace, request):
    """``request`` with the on-device query of --where/--maximize/--minimize/--over, if any is given."""
    from engine.request.query import make_query

    if not (args.where or args.maximize or args.minimize or args.over):
        return request
    over = [d.strip() for d in (args.over or "").split(",") if d.strip()]
    try:
        return replace(request, query=make_query(args.where, args.maximize, args.minimize, over,
                                                 request.quantities, list(request.axes)))
    except ValueError as exc:
        raise SpecError(args.spec, "--where/--maximize/--minimize/--over", str(exc)) from None


def _budget(args: argparse.Namespace) -> int | None:
    """--max-device-mem in bytes, or None."""
    from engine.runtime.plan import parse_bytes

    if args.max_device_mem is None:
        return None
    try:
        return parse_bytes(args.max_device_mem)
    except ValueError as exc:
        raise SpecError("--max-device-mem", args.max_device_mem, str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    from engine.files import check_cube, remove_leftovers  # (ctypes, socket, ...: not for --help)

    if args.output == "":
        raise SpecError("-o", "", "the output path is empty; give a file name such as out.nc")
    part = share_flags(args)
    request = _request(args)
    budget = _budget(args)
    request = _with_query(args, request)
    output = Path(args.output or request.output or Path(args.spec).with_suffix(".nc").name)
    if request.query is not None and (part is not None or args.distributed):
        flag = "--part" if part is not None else "--distributed"
        raise SpecError(args.spec, flag, "a query reduces the whole grid; run it on one process")
    if part is None and args.distributed:
        _sink_for(args, request, output).check()  # before joining the cluster
    note("loading JAX")
    with deferred():  # JAX and xarray load only when a sweep runs; a signal here waits for the import to end
        from engine.runtime import sweep

    if part is None and args.distributed:
        part = join_cluster(args)
    whole = request
    if part is not None:
        share = sweep.process_share(request, *part)
        if share is None:
            if not args.quiet:
                print(f"llm-sweep run: part {part[0]} of {part[1]} has no coordinates of the first axis; nothing to do")
            return EXIT_OK
        request = share
    sink = _sink_for(args, request, output, whole, part)
    sink.check()
    if args.output is None:  # a name the user did not type replaces nothing but a cube of its kind
        check_cube(sink.target, sink.kind, "sweep.output" if request.output else "default output",
                   f"give -o {sink.target} to replace it anyway, or another path")
    remove_leftovers(sink.target.parent, say=lambda m: print(f"llm-sweep run: {m}", file=sys.stderr))
    enable_compilation_cache()
    result = sweep.run(request, sink, budget, not args.quiet)
    clear_status()
    if not args.quiet:
        print(result.report(args.spec))
    return EXIT_OK


def _sink_for(args: argparse.Namespace, request, output: Path, whole=None, part: tuple[int, int] | None = None):
    """The sink ``output`` selects (``engine.sinks.sink_for``): the cube, or with a query its answer, written
    there; of one process's share (``part``), its part file or its region of the one store."""
    from engine.sinks import sink_for

    shares = {"whole": whole, "part": part} if part is not None else {}
    return sink_for(output, query=request.query, inputs=_spec_inputs(args.spec, request), **shares)


def _spec_inputs(spec: str, request) -> list[Path]:
    """The files a run reads (the spec, a config.json it names): never to be overwritten by it."""
    inputs = [Path(spec)]
    if request.arch and str(request.arch).endswith(".json"):
        arch = Path(request.arch)
        inputs.append(arch if arch.is_absolute() else Path(spec).parent / arch)
    return inputs
