"""``llm-sweep formulas``: print every component formula of a formula set with its source and a symbol table."""

from __future__ import annotations

import argparse
import itertools
import random
import sys

from engine.commands.common import EXIT_OK, add_arch_source, add_structure_flags, arch_of, structure_options
from engine.errors import SpecError
from engine.options import FORMATS, MEMORY_OPTIONS


def add_parser(subparsers) -> None:
    """Declare ``formulas`` and its flags."""
    f = subparsers.add_parser("formulas", help="print the formulas of a formula set",
                              description="Print every component formula with its source and a symbol table.")
    add_arch_source(f, required=False,
                    arch_help="formula set (seed), architecture family (llama, gpt2, ...) or preset (llama-2-7b, "
                              "...); default: seed",
                    config_help="a local config.json, or a model folder holding one, instead of --arch")
    f.add_argument("--with-sizes", action="store_true",
                   help="with a preset or config: also print each quantity evaluated at its sizes")
    f.add_argument("--substitute", action="append", default=[], metavar="NAME=EXPR",
                   help="put EXPR in place of input NAME everywhere, e.g. d_ff=4*d_model (repeatable)")
    f.add_argument("--collect", metavar="NAME", help="collect the expanded formulas by input NAME")
    f.add_argument("--format", default="text", choices=FORMATS, help="output format (default: text)")
    f.add_argument("--expand", action="store_true",
                   help="also print each quantity over the inputs alone, defaults such as d_ff = 4 d_model applied")
    add_structure_flags(f, "structural option of the set, e.g. tied_head=false (repeatable)", sets=False)
    f.add_argument("--line-width", metavar="WIDTH",
                   help="LaTeX: the width every line must fit, a TeX length (345pt, 3.25in, 8.5cm) or onecolumn "
                        "(345pt, article) or twocolumn (229.5pt, article's [twocolumn]); default: onecolumn")


def main(args: argparse.Namespace) -> int:
    """Print the formulas the flags choose, in --format."""
    from engine.symbolic.printing import format_formulas
    from engine.symbolic.symbols import SYMBOLS

    line_width = _line_width(args)
    options = structure_options(args.option, numeric_flag="--substitute")
    substitute = _substitutions(args.substitute)
    if args.collect is not None and args.collect not in SYMBOLS:
        raise SpecError("--collect", args.collect, f"not an input; valid: {', '.join(SYMBOLS)}")
    formulas, values = _formula_set(args, options)
    sys.stdout.write(format_formulas(formulas, args.format, expand=args.expand, substitute=substitute,
                                     collect=args.collect, values=values, with_sizes=args.with_sizes,
                                     line_width=line_width))
    return EXIT_OK


def _line_width(args: argparse.Namespace):
    """--line-width as points, None when not given; it applies to LaTeX only."""
    from engine.symbolic.printing import parse_line_width

    if args.line_width is None:
        return None
    if args.format != "latex":
        raise SpecError("--line-width", args.line_width, f"applies to --format latex, not {args.format}")
    try:
        return parse_line_width(args.line_width)
    except ValueError as exc:
        raise SpecError("--line-width", args.line_width, str(exc)) from None


def _substitutions(items: list[str]) -> dict:
    """--substitute NAME=EXPR items as {input: expression}, each checked to stay a valid value of its input."""
    from engine.symbolic.expr import ExpressionError, parse_expression
    from engine.symbolic.symbols import SYMBOLS

    substitute = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or key not in SYMBOLS:
            raise SpecError("--substitute", item, f"expected NAME=EXPR with NAME one of {', '.join(SYMBOLS)}")
        try:  # never sympify (eval): only arithmetic over the registry's input symbols
            substitute[key] = parse_expression(text, {n: i.symbol for n, i in SYMBOLS.items()})
        except ExpressionError as exc:
            raise SpecError("--substitute", item, str(exc)) from None
        _check_substitution(item, key, substitute[key])
    return substitute


def _formula_set(args: argparse.Namespace, options: dict):
    """(formula set, the sizes of a preset or config or None): a named set (seed), or an architecture's, its
    memory options (--option precision=fp8, ...) choosing the memory, compute and step-time formulas."""
    from engine.symbolic.formulas import FORMULA_SETS, build_formula_set

    name = args.arch or "seed"
    if args.hf_config or name not in FORMULA_SETS:
        from engine.catalog.model import estimate_formulas, formulas_of, memory_options

        memory = {k: v for k, v in options.items() if k in MEMORY_OPTIONS}
        arch = arch_of(args, {k: v for k, v in options.items() if k not in memory} or None)
        if not memory:
            return formulas_of(arch), arch.values
        return estimate_formulas(arch.family, arch.structure, memory_options(**memory)), arch.values
    if args.with_sizes:
        raise SpecError("--with-sizes", "", f"{name!r} is a formula set with no sizes; give a preset "
                                            "(--arch llama-2-7b) or --hf-config")
    try:
        return build_formula_set(name, options), None
    except ValueError as exc:
        raise SpecError("--option", ",".join(args.option), str(exc)) from None


def _check_substitution(item: str, key: str, expr) -> None:
    """SpecError unless ``expr`` is a value input ``key`` can take at every valid input point: positive (at
    least 0 for counts that may be 0) for all positive inputs, and a whole number when it is a constant for an
    integer input. sympy's assumptions decide most; else a grid of input values looks for a counterexample
    (d_ff = d_model - n_heads at d_model = 1, n_heads = 2) and one found is named."""
    import sympy

    from engine.symbolic.symbols import SYMBOLS

    info = SYMBOLS[key]
    zero_ok = info.integer and info.minimum == 0
    bad = "< 0" if zero_ok else "<= 0"
    if expr.is_number:
        if not expr.is_real or (expr.is_negative if zero_ok else not expr.is_positive) or \
                (info.integer and not expr.is_integer):
            raise SpecError("--substitute", item, f"{key} must be {info.kind}, got {expr}")
        return
    if (expr.is_nonnegative if zero_ok else expr.is_positive) is True:
        return
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    grid = [tuple(float(v) for v in (*range(SYMBOLS[s.name].minimum, 9), 16, 64, 1000, 10**6))
            if SYMBOLS[s.name].integer else (1e-3, 0.5, 1.0, 2.0, 3.0, 1e9) for s in free]
    if len(free) <= 4:  # every combination (at most 13^4)
        points = itertools.product(*grid)
    else:  # a seeded sample
        rng = random.Random(0)
        points = ([rng.choice(g) for g in grid] for _ in range(20000))
    f = sympy.lambdify(free, expr, modules="math")
    witness = None
    for point in points:  # floats: an integer power of a big value overflows at once instead of running on
        try:
            value = f(*point)
        except (ArithmeticError, ValueError, TypeError):  # outside its domain there (log of 0, ...): not a witness
            continue
        if isinstance(value, complex) or value < 0 or (value == 0 and not zero_ok):
            witness = ", ".join(f"{s} = {v:g}" for s, v in zip(free, point)) + f" gives {value:g}"
            break
    if witness is None and (expr.is_nonnegative if zero_ok else expr.is_positive) is None:
        return  # undecided by sympy and positive wherever tried: accepted
    raise SpecError("--substitute", item, f"{key} must be {info.kind}, but {expr} can be {bad} for positive "
                                          "inputs" + (f" ({witness})" if witness else "")
                    + "; give an expression that stays positive, e.g. d_ff=4*d_model")
