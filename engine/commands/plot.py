"""``llm-sweep plot``: draw a cube's variable (heatmap, lines, frontier) to PNG, PDF or SVG."""

from __future__ import annotations

import argparse

from engine.commands.common import EXIT_OK, enable_compilation_cache
from engine.options import PLOT_KINDS



def add_parser(subparsers) -> None:
    """Declare ``plot`` and its flags."""
    pt = subparsers.add_parser("plot", help="draw a cube's variable (heatmap, lines, frontier) to PNG, PDF or SVG",
                               description="Draw VARIABLE of a netCDF cube, or of a spec evaluated in memory: a "
                                           "heatmap over --x and --y with the --budget contour, lines against --x, "
                                           "or the frontier of the largest --maximize with VARIABLE <= --budget. "
                                           "Other dims are fixed with --at.")
    pt.add_argument("source", metavar="CUBE.nc|SPEC.toml",
                    help="a netCDF cube (llm-sweep run's output) or a spec (.toml), evaluated in memory")
    pt.add_argument("variable", metavar="VARIABLE", help="the quantity to draw, e.g. mem_peak")
    pt.add_argument("--x", required=True, metavar="DIM",
                    help="the dim along the horizontal axis (--kind pareto: a variable, e.g. tokens_per_s_per_user)")
    pt.add_argument("--y", metavar="DIM",
                    help="heatmap: the dim along the vertical axis; line, frontier: one line per coordinate")
    pt.add_argument("--at", action="append", default=[], metavar="DIM=VALUE",
                    help="fix a dim that is not drawn at one of its coordinates (repeatable)")
    pt.add_argument("--budget", metavar="LIMIT",
                    help="e.g. 80GiB (byte variables need a byte unit; others a plain number): the heatmap's "
                         "contour, a line, or the frontier's constraint VARIABLE <= LIMIT")
    pt.add_argument("--kind", choices=PLOT_KINDS, help="default: frontier with --maximize, heatmap with --y, else line; "
                                                       "pareto: the front of VARIABLE against the variable --x, both "
                                                       "maximized (serving: tokens/s per device against per user)")
    pt.add_argument("--maximize", metavar="DIM",
                    help="frontier: the dim (or variable) to maximize subject to VARIABLE <= --budget")
    pt.add_argument("-o", "--output", required=True, metavar="FIG", help="the figure to write: .png, .pdf or .svg")


def main(args: argparse.Namespace) -> int:
    """Draw and write the figure (``engine.plot.command.plot_command``); print where it went."""
    from engine.plot.command import plot_command

    if args.source.endswith(".toml"):
        enable_compilation_cache()
    print(plot_command(args))
    return EXIT_OK
