"""One options layer: each structural option is defined once and every interface reads it.

An ``OptionSpec`` (name, default, choices, meaning, and the command-line spelling) lives with the
formulas it chooses (architecture options in ``formulas.architectures``, memory options, pure
data, in ``engine.options``, seed options in ``formulas.seed``). From it:

* ``check_option`` validates a value (specs, the Python API and the CLI all call it, so a bad
  value reads the same everywhere);
* ``add_option_flags`` writes the argparse flags (choices, help with the default);
* ``given_options`` reads back only what the user gave on the command line, so a default the
  user did not choose is never mistaken for a choice (``--optimizer`` in inference is refused,
  the default optimizer is not).
"""

from __future__ import annotations

import argparse
from typing import Any, Iterable, Mapping

from engine.options import OptionSpec, show_value  # pure data: the parser's flags come without sympy


def check_option(specs: Mapping[str, OptionSpec], key: str, value: Any, where: str = "") -> None:
    """ValueError naming the valid options or choices when ``key = value`` is not one of ``specs``."""
    if key not in specs:
        raise ValueError(f"unknown option {key!r}{where}; valid options: {', '.join(specs) or 'none'}")
    spec = specs[key]
    value = dict(spec.aliases).get(value, value) if isinstance(value, str) else value
    if type(value) is not type(spec.default) or (spec.choices and value not in spec.choices):
        choices = ", ".join(show_value(c) for c in spec.choices) if spec.choices else \
            f"a {type(spec.default).__name__}"
        if spec.aliases:
            choices += " (aliases: " + ", ".join(f"{show_value(a)} = {show_value(c)}" for a, c in spec.aliases) + ")"
        raise ValueError(f"option {key!r} must be one of {choices}, got {show_value(value)}")


def canonical_option(specs: Mapping[str, OptionSpec], key: str, value: Any) -> Any:
    """The choice an alias stands for (``bf16-amp`` -> ``bf16-mixed``); any other value unchanged."""
    spec = specs.get(key)
    return dict(spec.aliases).get(value, value) if spec and isinstance(value, str) else value


def flag_of(spec: OptionSpec) -> str:
    """The command-line spelling of an option: its own ``flag``, else ``--name-with-dashes``."""
    return spec.flag or "--" + spec.name.replace("_", "-")


def add_option_flags(parser: argparse.ArgumentParser, specs: Mapping[str, OptionSpec], names: Iterable[str],
                     notes: Mapping[str, str] | None = None) -> None:
    """Add one flag per option in ``names`` (booleans as switches); every flag defaults to None."""
    for name in names:
        spec = specs[name]
        text = spec.meaning + (f"; {notes[name]}" if notes and name in notes else
                               f" (default: {show_value(spec.default, quote=False)})")
        if isinstance(spec.default, bool):
            parser.add_argument(flag_of(spec), dest=name, action="store_const", const=True, default=None,
                                help=text)
        elif spec.aliases:  # aliases are accepted too; a wrong value is refused in one line by check_option
            text += "; also accepted: " + ", ".join(f"{a} (= {c})" for a, c in spec.aliases)
            parser.add_argument(flag_of(spec), dest=name, type=type(spec.default), default=None, help=text,
                                metavar="{" + ",".join(str(c) for c in spec.choices) + "}")
        else:
            parser.add_argument(flag_of(spec), dest=name, choices=spec.choices, type=type(spec.default),
                                default=None, help=text)


def given_options(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The options among ``names`` that the command line set (flags left out stay out)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
