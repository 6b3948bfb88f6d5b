"""The training memory models: the ``MemoryModel`` protocol and the ``MEMORY_MODELS`` registry.

A new model is a module of this package and its name in ``engine.options.MEMORY_MODEL_NAMES`` (pure data, so
the command line lists the choices without importing sympy; ``OPTIONS`` lists them sorted). The registry sits in
a module of its own, imported by the package's ``__init__``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Protocol

from engine.options import MEMORY_MODEL_NAMES
from engine.symbolic.formulas.base import Validity
from engine.symbolic.memory.base import Moment, Term

_PACKAGE = __name__.rpartition(".")[0]


class MemoryModel(Protocol):
    """A training memory model (a module satisfies it: ``engine/symbolic/memory/pytorch.py``)."""

    name: str
    source: str

    def refuses(self, options) -> list[str]:
        """Why the model cannot express these training options (empty: it can): the rules tagged with its name in
        ``engine.options.memory.RULES``, which ``MemoryOptions.with_options`` checks."""

    def validity(self, options) -> list[Validity]:
        """Conditions on the numeric inputs (e.g. tp = 1) the model needs."""

    def activations(self, structure, options) -> Term:
        """Saved activations per device at the start of the backward pass (bytes)."""

    def logits(self, structure, options) -> Term:
        """Logits, loss and their gradients at the start of the backward pass (bytes)."""

    def moments(self, structure, options) -> list[Moment]:
        """The moments of a step; the peak is the largest, its parts the breakdown."""


MEMORY_MODELS: dict[str, MemoryModel] = {name: import_module(f"{_PACKAGE}.{name}") for name in MEMORY_MODEL_NAMES}
