"""``llm-sweep open``: summarise a spec's virtual cube (nothing is evaluated)."""

from __future__ import annotations

import argparse

from engine.commands.common import EXIT_OK


def add_parser(subparsers) -> None:
    """Declare ``open`` and its argument."""
    op = subparsers.add_parser("open", help="summarise a spec's virtual cube (nothing is evaluated)",
                               description="Open SPEC as a virtual cube -- xr.open_dataset(SPEC, engine=\"llm-sweep\") "
                                           "-- and print its dims, size and variables; reading a slab evaluates only "
                                           "that slab.")
    op.add_argument("spec", metavar="SPEC.toml", help="a sweep spec, e.g. examples/design-space.toml")


def main(args: argparse.Namespace) -> int:
    """Print the lazy dataset of the spec (``engine.backend.outline``)."""
    from engine.backend import outline

    print(outline(args.spec))
    return EXIT_OK
