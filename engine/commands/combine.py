"""``llm-sweep combine``: join the part files of a multi-process run into one cube."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.commands.common import EXIT_OK
from engine.errors import SpecError
from engine.signals import deferred


def add_parser(subparsers) -> None:
    """Declare ``combine`` and its flags."""
    m = subparsers.add_parser("combine", help="join the part files of a multi-process run",
                              description="Join OUT.partIII-of-NNN.nc files (from --part or --distributed) into "
                                          "one cube.")
    m.add_argument("parts", nargs="+", help="part files, in any order")
    m.add_argument("-o", "--output", required=True, help="the combined netCDF file")
    m.add_argument("--compression", type=int, choices=range(10), metavar="0-9",
                   help="zlib level of the combined file (default: as in the parts)")


def main(args: argparse.Namespace) -> int:
    """Join ``args.parts`` into ``args.output``; 0, or SpecError naming the part or the output."""
    with deferred():  # netCDF4 and xarray: a signal during their import waits for it to end
        from engine.sinks.dataset import combine
    from engine.files import check_target, remove_leftovers  # (ctypes, socket, ...: not for --help)

    if args.output == "":
        raise SpecError("-o", "", "the output path is empty; give a file name such as out.nc")
    missing = [p for p in args.parts if not Path(p).is_file()]
    if missing:
        raise SpecError(missing[0], "", "no such part file")
    target = check_target(args.output, args.parts)
    remove_leftovers(target.parent, say=lambda m: print(f"llm-sweep combine: {m}", file=sys.stderr))
    try:
        path = combine(args.parts, args.output, args.compression)
    except ValueError as exc:
        raise SpecError(args.output, "combine", str(exc)) from None
    print(f"llm-sweep combine: {len(args.parts)} parts -> {path} ({path.stat().st_size:,} bytes)")
    return EXIT_OK
