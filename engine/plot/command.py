"""``llm-sweep plot``: one figure of a cube (a netCDF file, or a spec evaluated in memory) to PNG, PDF or SVG.

    llm-sweep plot CUBE.nc|SPEC.toml VARIABLE --x DIM [--y DIM] [--at DIM=VALUE ...] [--budget 80GiB]
                   [--kind heatmap|line|frontier] [--maximize DIM] -o fig.png|.pdf|.svg

Kinds (default: ``frontier`` with --maximize, else ``heatmap`` with --y, else ``line``):

    heatmap    VARIABLE over --x and --y; --budget draws the contour VARIABLE = budget
    line       VARIABLE against --x, one line per coordinate of --y if given; --budget a dashed line
    frontier   the largest --maximize (a dim or a variable) with VARIABLE <= --budget, against --x
               (one line per --y); ``engine.plot.fronts.frontier`` with over = [--x, --y]

Every other dim of VARIABLE must be fixed with ``--at DIM=VALUE`` (a coordinate of the dim) or have
one coordinate. A SPEC (``*.toml``) is evaluated in memory first, its ``--at`` dims cut to the one
value and its quantities to the ones drawn, its ``[query]`` ignored. Everything is checked before a
spec runs; bad input is a ``SpecError`` (one line, exit 2). The figure is drawn on matplotlib's Agg
canvas and written atomically (``engine.files.AtomicFile``): nothing is left at the target on failure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.backend import open_cube
from engine.errors import LlmSweepError, SpecError
from engine.files import AtomicFile, check_target
from engine.plot.draw import agg_axes, frontier_lines, heatmap, line, pareto
from engine.plot.select import coordinate_list
from engine.plot.units import parse_budget
from engine.request.spec import load_spec
from engine.runtime.dims import natural_dims
from engine.signals import deferred

FORMATS = ("png", "pdf", "svg")


@dataclass(frozen=True)
class Names:
    """What a cube offers, known before a spec runs: its dims' coordinates and its variables' units and dims."""

    source: str
    coords: dict[str, np.ndarray]
    units: dict[str, str]
    dims_of: dict[str, tuple[str, ...]]


def plot_command(args) -> str:
    """Draw and write the figure ``args`` ask for; the line to print. SpecError/ResourceError on bad input."""
    output, fmt = _output(args.output)
    kind = _kind(args)
    check_target(output, [args.source])
    ax = _canvas()  # first: without matplotlib nothing else is worth doing
    ds, at, limit = _load(args, kind)
    try:
        _draw(ds, args, kind, at, limit, ax)
    except SpecError:
        raise
    except ValueError as exc:  # what the checks did not foresee
        raise SpecError(args.source, args.variable, " ".join(str(exc).split())) from None
    finally:
        ds.close()
    with AtomicFile(output, [args.source]) as out:  # a failed write leaves nothing at the target
        ax.figure.savefig(out.path, format=fmt)
        out.commit()
    return f"llm-sweep plot: wrote {output} ({_what(args, kind)}; {output.stat().st_size:,} bytes)"


def _load(args, kind: str):
    """(the cube, ``at`` as coordinate values, the budget): a spec is checked, then run; a file opened, then checked."""
    if args.source.endswith(".toml"):
        request = load_spec(args.source)
        at, limit = _check(args, kind, _spec_names(request))
        return _run_spec(request, args, at), at, limit
    ds = _open_cube(args.source)
    try:
        at, limit = _check(args, kind, _cube_names(args.source, ds))
    except BaseException:
        ds.close()
        raise
    return ds, at, limit


def _output(path: str) -> tuple[Path, str]:
    """The figure's path and format, from its suffix."""
    if path == "":
        raise SpecError("-o", "", "the output path is empty; give a file name such as fig.png")
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise SpecError("-o", path, f"unknown figure format {Path(path).suffix or '(no suffix)'!r}; give a file "
                                    f"ending in {', '.join('.' + f for f in FORMATS)}")
    return Path(path), fmt


def _kind(args) -> str:
    """The figure kind, checked against the flags it needs."""
    kind = args.kind or ("frontier" if args.maximize else "heatmap" if args.y else "line")
    if kind == "heatmap" and not args.y:
        raise SpecError("--kind", "heatmap", "needs --y DIM: the dim along the vertical axis")
    if kind == "frontier" and (not args.maximize or args.budget is None):
        # a serving comparison's "frontier" is throughput against interactivity, both variables: --kind pareto
        tip = (f"; to draw {args.variable} against the variable {args.x} over every point (a throughput-"
               "interactivity frontier), give --kind pareto") if args.x and not args.maximize else ""
        raise SpecError("--kind", "frontier", "needs --maximize DIM and --budget LIMIT: the largest DIM with "
                                              f"{args.variable} <= LIMIT" + tip)
    if kind != "frontier" and args.maximize:
        raise SpecError("--maximize", args.maximize, f"applies to --kind frontier, not {kind}")
    if kind == "pareto" and (args.y or args.budget is not None):
        raise SpecError("--y" if args.y else "--budget", args.y or args.budget, "applies to heatmap, line and "
                        "frontier; --kind pareto draws VARIABLE against the variable --x over every point")
    return kind


def _open_cube(source: str):
    """A netCDF cube with its labels (``engine.open_cube``: categorical codes decoded)."""
    if not Path(source).is_file():
        raise SpecError(source, "", "no such file (give a netCDF cube or a TOML spec)")
    try:
        return open_cube(source)
    except (OSError, ValueError, RuntimeError) as exc:
        raise SpecError(source, "", f"cannot read it as a netCDF cube: {' '.join(str(exc).split())}") from None


def _cube_names(source: str, ds) -> Names:
    return Names(source, {str(d): ds[d].values for d in ds.dims},
                 {str(v): ds[v].attrs.get("units", "1") for v in ds.data_vars},
                 {str(v): tuple(map(str, ds[v].dims)) for v in ds.data_vars})


def _spec_names(request) -> Names:
    """A spec's cube before it runs: each quantity on its natural dims (``engine.runtime.dims``)."""
    units = {q: request.formulas.quantities[q].units for q in request.quantities}
    return Names(request.source, dict(request.axes), units, natural_dims(request))


def _check(args, kind: str, names: Names) -> tuple[dict, float | int | None]:
    """Every name and value the flags give, against the cube: (``at`` as coordinate values, the budget)."""
    dims = ", ".join(names.coords)
    if args.variable not in names.units:
        raise SpecError(names.source, args.variable, f"unknown variable; valid: {', '.join(names.units)}")
    if kind == "pareto" and args.x not in names.units:
        raise SpecError("--x", args.x, f"--kind pareto draws two variables: --x must be one of "
                                       f"{', '.join(names.units)}")
    for flag, dim in (("--x", None if kind == "pareto" else args.x), ("--y", args.y)):
        if dim is not None and dim not in names.coords:
            raise SpecError(flag, dim, f"unknown dim; dims of {names.source}: {dims}")
    if args.x == args.y:
        raise SpecError("--y", args.y, "is --x as well; give two different dims")
    keep = [d for d in (args.x, args.y) if d]
    if args.maximize is not None:
        if args.maximize not in names.coords and args.maximize not in names.units:
            raise SpecError("--maximize", args.maximize, f"not a dim or a variable; dims: {dims}; variables: "
                                                         f"{', '.join(names.units)}")
        if args.maximize in keep:
            raise SpecError("--maximize", args.maximize, "is drawn along an axis; maximize another dim")
    at = {}
    for item in args.at:
        dim, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not dim or not text:
            raise SpecError("--at", item, "expected DIM=VALUE, e.g. batch=8")
        if dim not in names.coords:
            raise SpecError("--at", item, f"unknown dim {dim!r}; dims of {names.source}: {dims}")
        if dim in keep or dim in at or dim == args.maximize:
            why = "drawn along an axis" if dim in keep else "fixed twice" if dim in at else "the one --maximize varies"
            raise SpecError("--at", item, f"{dim} is {why}")
        value = coordinate_value(text, names.coords[dim])
        if value is None:
            raise SpecError("--at", item, f"{text} is not a coordinate of {dim}; valid: "
                                          f"{coordinate_list(names.coords[dim])}")
        at[dim] = value
    limit = None
    if args.budget is not None:
        try:
            limit = parse_budget(args.budget, args.variable, names.units[args.variable])
        except ValueError as exc:
            raise SpecError("--budget", args.budget, str(exc)) from None
    if kind != "pareto":  # a Pareto front ranges over every point the --at values leave
        _check_leftover(args, names, keep, at)
    return at, limit


def _check_leftover(args, names: Names, keep: list[str], at: dict) -> None:
    """SpecError naming the dims the figure neither draws nor fixes (with more than one coordinate)."""
    spanned = set(names.dims_of[args.variable])
    reduced: set[str] = set()
    if args.maximize is not None:  # a frontier: invalid points never fit, so the valid mask's dims count too
        spanned |= set(names.dims_of.get("valid", ()))
    if args.maximize in names.coords:
        reduced = {args.maximize}
    elif args.maximize is not None:  # a variable: maximized across its dims that are not drawn
        reduced = set(names.dims_of[args.maximize]) - set(keep) - set(at)
        spanned |= set(names.dims_of[args.maximize])
    rest = [d for d in names.coords if d in spanned and d not in keep and d not in at and d not in reduced
            and len(names.coords[d]) > 1]
    if rest:
        example = " ".join(f"--at {d}={np.asarray(names.coords[d])[0]}" for d in rest)
        raise SpecError("--at", "", f"{args.variable} also varies along {', '.join(rest)}: fix each with "
                                    f"--at DIM=VALUE, e.g. {example}")


def coordinate_value(text: str, coordinate: np.ndarray):
    """``text`` as one of ``coordinate``'s values (its type: int, float, bool or label), or None if it is not one."""
    coordinate = np.asarray(coordinate)
    value: object = text
    try:
        if coordinate.dtype.kind in "iuf":
            number = float(text)
            value = int(number) if coordinate.dtype.kind in "iu" and number.is_integer() else number
        elif coordinate.dtype.kind == "b":
            value = {"true": True, "false": False, "1": True, "0": False}[text.lower()]
    except (ValueError, KeyError, OverflowError):
        return None
    matches = [v for v in coordinate.tolist() if v == value]
    return matches[0] if matches else None


def _canvas():
    """The Axes to draw on (an Agg figure); a one-line error when matplotlib is missing."""
    try:
        return agg_axes()
    except ImportError as exc:
        raise LlmSweepError(str(exc)) from None


def _run_spec(request, args, at: dict):
    """The spec's cube in memory: the ``at`` axes cut to their value, only the quantities drawn, no query."""
    axes = dict(request.axes)
    for dim, value in at.items():
        axes[dim] = axes[dim][axes[dim] == value]
    wanted = {args.variable, args.maximize, args.x}
    quantities = [q for q in request.quantities if q in wanted]
    request = replace(request, axes=axes, quantities=quantities, headline=[args.variable], query=None)
    with deferred():  # JAX loads here: a signal during its import waits for it to end
        from engine.runtime.sweep import run
    return run(request).dataset


def _draw(ds, args, kind: str, at: dict, limit, ax) -> None:
    if kind == "heatmap":
        heatmap(ds, args.variable, args.x, args.y, limit, at, ax)
    elif kind == "line":
        line(ds, args.variable, args.x, args.y, limit, at, ax)
    elif kind == "pareto":  # both maximized: the serving frontier (tokens/s per device against per user)
        pareto(ds.sel(at) if at else ds, args.x, args.variable, maximize=(args.x, args.variable), ax=ax)
    else:
        where = f"{args.variable} <= {args.budget}"  # the budget as written: the figure's title says it
        frontier_lines(ds, where, args.x, maximize=args.maximize, hue=args.y, at=at, ax=ax)


def _what(args, kind: str) -> str:
    over = args.x + (f" x {args.y}" if args.y and kind == "heatmap" else "")
    per = f", one line per {args.y}" if args.y and kind != "heatmap" else ""
    if kind == "frontier":
        return f"frontier: largest {args.maximize} with {args.variable} <= {args.budget}, over {over}{per}"
    if kind == "pareto":
        return f"Pareto front of {args.variable} against {args.x}, both maximized"
    budget = f", budget {args.budget}" if args.budget is not None else ""
    return f"{kind} of {args.variable} over {over}{per}{budget}"
