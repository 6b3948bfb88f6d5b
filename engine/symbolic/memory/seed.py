"""The seed article's memory model: its activations L(14E + 4BSS) + 6BSV and its 4BSV + 8BD peak terms.

The expressions are the seed formula set's own (``engine/symbolic/formulas/seed.py``), kept as they are.
"""

from __future__ import annotations

from functools import cache

from engine.symbolic.formulas import seed as _seed_set
from engine.symbolic.formulas.base import FormulaSet
from engine.options.memory import model_refusals
from engine.symbolic.memory.base import additive_moments, no_conditions, Term

name = "seed"
source = "the seed article's memory formulas (engine/symbolic/formulas/seed.py)"
# an additive model: everything is alive at once, nothing refused, no conditions
validity, moments = no_conditions, additive_moments


def refuses(o) -> list[str]:
    """Training options this model cannot express: its rules in ``engine.options.memory.RULES`` (none today)."""
    return model_refusals(name, o)


@cache
def _seed() -> FormulaSet:
    return _seed_set.build()


def activations(structure, o) -> Term:
    fs = _seed()
    q = fs.quantities["mem_activations"]
    return Term(fs.expanded("mem_activations"), q.source, q.note)


def logits(structure, o) -> Term:
    """The seed's 4BSV peak term and its int64 inputs 8BD (D = seq_len)."""
    fs = _seed()
    extra = fs.apply(fs.expanded("mem_peak_extra") + fs.expanded("mem_input"), {"seq_len"})
    return Term(extra, fs.quantities["mem_peak_extra"].source + "; " + fs.quantities["mem_input"].source)
