"""What the memory modules share: the input symbols, a moment of a step, and quantity helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import sympy

from engine.symbolic.formulas.base import Quantity, quantity_symbol
from engine.symbolic.symbols import symbol

S = symbol
b, s, L = S("batch"), S("seq_len"), S("n_layers")
h, a, V = S("d_model"), S("n_heads"), S("vocab")
dp, tp, pp, vp = S("dp"), S("tp"), S("pp"), S("vp")
ep, etp = S("ep"), S("etp")
bits_w, bits_g, bits_m, bits_o, bits_kv = S("bits_weight"), S("bits_grad"), S("bits_master"), S("bits_opt"), S("bits_kv")
kv_window = S("kv_window")
quant_group, bits_qm = S("quant_group"), S("bits_quant_meta")
tokens, n_gpus, peak_flops, mfu = S("tokens"), S("n_gpus"), S("peak_flops"), S("mfu")


class Term(NamedTuple):
    """One memory term of a model: bytes per device, where it comes from, its caveats."""

    expr: sympy.Expr
    source: str
    note: str = ""


@dataclass(frozen=True)
class Moment:
    """A moment of a step: named parts (bytes per device) whose sum is the memory alive then.

    Parts are expressions over inputs and quantity symbols (``q("mem_weights")``); the estimate's
    breakdown is the parts of the largest moment, each evaluated on its own.
    """

    name: str
    parts: dict[str, sympy.Expr]
    long_name: str
    latex: str
    source: str

    @property
    def total(self) -> sympy.Expr:
        return sympy.Add(*self.parts.values())


STATES = ("weights", "gradients", "master", "optimizer")
FP8_PARTS = ("fp8_weights", "fp8_scaling")  # precision fp8: model states too (mem_fp8_weights, mem_fp8_scaling)


def q(name: str) -> sympy.Symbol:
    """The symbol of a real-valued quantity (bytes) inside other definitions."""
    return quantity_symbol(name, integer=False)


def qi(name: str) -> sympy.Symbol:
    """The symbol of an integer quantity (parameter counts)."""
    return quantity_symbol(name, integer=True)


def quantity(name, definition, long_name, latex, source, units="bytes", note="") -> Quantity:
    return Quantity(name, sympy.sympify(definition), units, long_name, latex, source, integer=False, note=note)


def additive_step(o=None) -> Moment:
    """The one moment of the additive models: every model state, activations and logits at once."""
    fp8 = FP8_PARTS if o is not None and o.precision == "fp8" else ()
    return Moment("step", {k: q(f"mem_{k}") for k in (*STATES, *fp8, "activations", "logits")},
                  "peak memory per device during a training step", r"M_{\mathrm{peak}}", "sum of the above")


# What an additive model (every part alive at once: seed, korthikanti) says for the protocol's
# other questions; such a module re-exports these as its own ``validity``, ``moments``.
def no_conditions(o) -> list:
    return []


def additive_moments(structure, o) -> list[Moment]:
    return [additive_step(o)]
