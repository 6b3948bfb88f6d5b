"""The option registry, the bottom floor of the package: every option declared once, in plain Python.

An option is a field of an options dataclass, its record in the field's metadata (``registry.option``):
``MemoryOptions`` (``memory.py``) and ``Structure`` (``structure.py``), as Megatron-Core's
``TransformerConfig`` declares its options. Derived from the fields, never typed again: the records
(``MEMORY_OPTIONS``, ``ARCH_OPTIONS``, ``SPEC_OPTIONS``) that spec validation, the command line's flags
(``engine.request.options.add_option_flags``) and the README's option table read, and the JSON Schema of
spec files (``engine.options.schema.spec_schema``). Rules between options are data (``memory.RULES``),
checked by ``registry.broken_rules``. One precision record per precision (``precision.py``). No sympy,
numpy or JAX here: ``llm-sweep --help`` reads it alone. ``python -m engine.options --markdown`` prints the
README's table, ``--schema`` the JSON Schema.
"""

from __future__ import annotations

from types import MappingProxyType

from engine.options.memory import (ATTENTIONS, DTYPE_BITS, FUSED_ATTENTIONS, KV_DTYPES, MEMORY_MODEL_NAMES,
                                   MEMORY_OPTIONS, MODES, OFFLOADS, OPTIMIZERS, OVERLAPS, RECOMPUTE, RULES, STACKS,
                                   WEIGHT_DTYPES, MemoryOptions)
from engine.options.precision import (DEFAULT_PRECISION, PRECISION_ALIASES, PRECISION_NAMES, PRECISIONS, Precision,
                                      canonical_precision, precision)
from engine.options.registry import (Not, OptionSpec, Rule, broken_rules, check_value, did_you_mean, option,
                                     show_value, specs_of)
from engine.options.structure import ARCH_OPTIONS, Structure

NUMERICS = ("exact", "fast")  # how a kernel computes (engine.request.numerics.Numerics): run --numerics
FORMATS = ("text", "latex", "markdown")  # what engine.symbolic.printing writes: formulas --format
# the fits of the Chinchilla loss (engine.symbolic.formulas.scaling.CHINCHILLA_FITS' keys): flops --scaling-law
SCALING_LAWS = ("chinchilla", "chinchilla_tex", "besiroglu")
PLOT_KINDS = ("heatmap", "line", "frontier", "pareto")  # what engine.plot.command draws: plot --kind
# the options a spec's [options] and categorical [axes] take with an arch: the architecture's and the memory model's
SPEC_OPTIONS = MappingProxyType({**ARCH_OPTIONS, **MEMORY_OPTIONS})

__all__ = ["ARCH_OPTIONS", "ATTENTIONS", "DEFAULT_PRECISION", "DTYPE_BITS", "FORMATS", "FUSED_ATTENTIONS", "KV_DTYPES",
           "MEMORY_MODEL_NAMES", "MEMORY_OPTIONS", "MODES", "NUMERICS", "Not", "OFFLOADS", "OPTIMIZERS",
           "OVERLAPS", "OptionSpec", "PLOT_KINDS", "PRECISIONS", "PRECISION_ALIASES", "PRECISION_NAMES", "Precision", "RECOMPUTE",
           "RULES", "Rule", "SCALING_LAWS", "SPEC_OPTIONS", "STACKS", "Structure", "MemoryOptions", "WEIGHT_DTYPES", "broken_rules",
           "canonical_precision", "check_value", "did_you_mean", "option", "precision", "show_value", "specs_of"]
