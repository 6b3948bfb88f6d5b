"""Scaling laws with labelled parameter sets (pure sympy).

    Hoffmann et al. 2022 (Chinchilla), Eq. (2):  L(N, D) = E + A / N^alpha + B / D^beta
    compute-optimal under C = 6 N D, Eq. (4):  N_opt = G (C/6)^a,  D_opt = G^-1 (C/6)^b,
        G = (alpha A / (beta B))^(1/(alpha + beta)),  a = beta / (alpha + beta),  b = alpha / (alpha + beta)

D = 20 N is the empirical rule of Hoffmann et al.'s Approaches 1 and 2 (Table 3); the published
Approach-3 constants do NOT imply it (at C = 5.76e23 they give N ~ 32B and D/N ~ 93); Besiroglu et
al.'s refit (2024) does (D/N ~ 17-22 over 1e21-1e25 FLOPs).

Each law holds over the runs it was fitted on (``FittedRange``): Hoffmann et al. trained over 400 models
of 70M to over 16B parameters on 5B to 500B tokens (abstract, §3); Besiroglu et al. refit Approach 3 on
the points they read from Hoffmann et al.'s Figure 4, a subset of those runs. ``extrapolation`` says how far outside a point is
(``llm-sweep flops --compute 1`` asks for 0.05 parameters: 9 orders of magnitude below the fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

R = sympy.Rational


@dataclass(frozen=True)
class FittedRange:
    """The parameters and tokens of the training runs a law was fitted on, and where the paper says so."""

    params: tuple[float, float]
    tokens: tuple[float, float]
    source: str


HOFFMANN_RANGE = FittedRange((70e6, 16e9), (5e9, 500e9),
                             "Hoffmann et al. 2022 (abstract, §3): over 400 models of 70M to over 16B parameters "
                             "trained on 5B to 500B tokens")
BESIROGLU_RANGE = FittedRange(HOFFMANN_RANGE.params, HOFFMANN_RANGE.tokens,
                              "Besiroglu et al. 2024 §2: the points read from Hoffmann et al.'s Figure 4, a subset "
                              "of their runs of 70M to 16B parameters on 5B to 500B tokens")


@dataclass(frozen=True)
class ChinchillaFit:
    name: str
    E: sympy.Rational
    A: sympy.Rational
    B: sympy.Rational
    alpha: sympy.Rational
    beta: sympy.Rational
    source: str
    fitted: FittedRange = HOFFMANN_RANGE


CHINCHILLA_FITS = {
    "chinchilla": ChinchillaFit("chinchilla", R("1.69"), R("406.4"), R("410.7"), R("0.34"), R("0.28"),
                                "Hoffmann et al. 2022 §3.3 Approach 3, Eq. (2), as published (rounded)"),
    "chinchilla_tex": ChinchillaFit("chinchilla_tex", R("1.6934"), R("406.4"), R("410.7"), R("0.3392"), R("0.2849"),
                                    "Hoffmann et al. 2022, the unrounded exponents of the TeX source"),
    "besiroglu": ChinchillaFit("besiroglu", R("1.8172"), R("482.01"), R("2085.43"), R("0.3478"), R("0.3658"),
                               "Besiroglu et al. 2024 (Epoch AI, arXiv:2404.10102) refit of Approach 3",
                               BESIROGLU_RANGE),
}


def extrapolation(fitted: FittedRange, params: float, tokens: float | None = None) -> list[str]:
    """One note per value outside the range a law was fitted on (empty: inside), with how far and the source."""
    notes = []
    for what, value, (low, high) in (("params", params, fitted.params), ("tokens", tokens, fitted.tokens)):
        if value is None or low <= value <= high:
            continue
        side, bound = ("below", low) if value < low else ("above", high)
        orders = abs(math.log10(value / bound)) if value > 0 else math.inf
        notes.append(f"{what} {_count(value)} is {orders:.1f} orders of magnitude {side} the {_count(low)} to "
                     f"{_count(high)} the law was fitted on: an extrapolation ({fitted.source})")
    return notes


def _count(x: float) -> str:
    """70M, 16B, 1.33T, 0.0477: a count as papers write it."""
    for suffix, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def chinchilla_loss(fit: ChinchillaFit, N, D) -> sympy.Expr:
    """L(N, D) = E + A / N^alpha + B / D^beta (nats per token)."""
    return fit.E + fit.A / N**fit.alpha + fit.B / D**fit.beta


def chinchilla_optimum(fit: ChinchillaFit, C) -> tuple[sympy.Expr, sympy.Expr]:
    """Compute-optimal (N, D) for a budget of C FLOPs under C = 6 N D (Eq. 4)."""
    G = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1 / (fit.alpha + fit.beta))
    a = fit.beta / (fit.alpha + fit.beta)
    b = fit.alpha / (fit.alpha + fit.beta)
    N, D = G * (C / 6) ** a, (C / 6) ** b / G
    if not sympy.sympify(C).free_symbols:  # a number: evaluate (nested radicals stay slow symbolically)
        return sympy.N(N, 30), sympy.N(D, 30)
    return N, D

