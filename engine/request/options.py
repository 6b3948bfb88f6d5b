"""One options layer: each structural option is defined once and every interface reads it.

Every option is a field of an options dataclass in ``engine.options`` (``MemoryOptions``,
``Structure``; the seed formula set's in ``formulas.seed``), and its ``OptionSpec`` record derives
from the field. From the records:

* ``engine.options.check_value`` (not here: the registry's own) validates a value (specs, the Python API and the
  CLI all call it, so a bad value reads the same everywhere, with a "did you mean");
* ``add_option_flags`` writes the argparse flags (choices, help with the default);
* ``given_options`` reads back only what the user gave on the command line, so a default the
  user did not choose is never mistaken for a choice (``--optimizer`` in inference is refused,
  the default optimizer is not).
"""

from __future__ import annotations

import argparse
from typing import Any, Iterable, Mapping

from engine.options import OptionSpec, show_value


def canonical_option(specs: Mapping[str, OptionSpec], key: str, value: Any) -> Any:
    """The choice an alias stands for (``bf16-amp`` -> ``bf16-mixed``); any other value unchanged."""
    spec = specs.get(key)
    return spec.canonical(value) if spec else value


def flag_of(spec: OptionSpec) -> str:
    """The command-line spelling of an option: its own ``flag``, else ``--name-with-dashes``."""
    return spec.command_flag


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
        elif spec.listed:  # a comma list, checked in one line by engine.options.check_value
            parser.add_argument(flag_of(spec), dest=name, type=str, default=None, help=text + "; " +
                                spec.values_text(), metavar="LIST")
        elif spec.aliases:  # aliases are accepted too; a wrong value is refused in one line by engine.options.check_value
            text += "; also accepted: " + ", ".join(f"{a} (= {c})" for a, c in spec.aliases)
            parser.add_argument(flag_of(spec), dest=name, type=type(spec.default), default=None, help=text,
                                metavar="{" + ",".join(str(c) for c in spec.choices) + "}")
        else:
            parser.add_argument(flag_of(spec), dest=name, choices=spec.choices, type=type(spec.default),
                                default=None, help=text)


def given_options(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The options among ``names`` that the command line set (flags left out stay out)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
