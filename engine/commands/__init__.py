"""The subcommands of ``llm-sweep``: one module each, named once in ``COMMANDS``.

A command module declares its flags in ``add_parser(subparsers)`` from pure data (``engine.options``,
read through ``engine.request.options.add_option_flags``), so building the parser -- every ``--help``
-- loads no sympy, numpy or JAX; and ``main(args) -> int`` builds the request or point from the flags,
hands it to the engine (imported inside ``main``, the one place a heavy import is allowed) and returns
the exit status. ``engine.cli`` builds the parser from this tuple and dispatches to ``main``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# the order of `llm-sweep --help` and of "choose from ..." (a new command: one module, one name here)
COMMANDS = ("run", "formulas", "combine", "params", "memory", "flops", "time", "serve", "serve-plan", "plan", "plot",
            "open", "check")


def command(name: str) -> ModuleType:
    """The module of command ``name`` (one of ``COMMANDS``): its ``add_parser`` and ``main``."""
    if name not in COMMANDS:
        raise KeyError(f"unknown command {name!r}; valid: {', '.join(COMMANDS)}")
    return importlib.import_module(f"engine.commands.{name.replace('-', '_')}")
