"""Collectives in the alpha-beta form: ring all-reduce, reduce-scatter / all-gather, all-to-all, and the link a
group of devices uses."""

from __future__ import annotations

import sympy

from engine.symbolic.memory.steptime.common import alpha, eta_net, link_bw, net_bw, per_node

def bandwidth(group: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """The bandwidth a group of ``group`` devices uses, ``inner`` devices apart: the scale-up link while
    group x inner devices fit in a node, the network otherwise."""
    return eta_net * sympy.Piecewise((link_bw, sympy.Le(group * inner, per_node)), (net_bw, True))


def all_reduce(p: sympy.Expr, nbytes: sympy.Expr, bw: sympy.Expr) -> sympy.Expr:
    return 2 * (p - 1) / p * nbytes / bw + 2 * (p - 1) * alpha


def half_ring(p: sympy.Expr, nbytes: sympy.Expr, bw: sympy.Expr) -> sympy.Expr:
    """Reduce-scatter, all-gather or all-to-all: (p - 1)/p of the bytes, p - 1 steps."""
    return (p - 1) / p * nbytes / bw + (p - 1) * alpha


def all_to_all(p: sympy.Expr, nbytes: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """An all-to-all of ``nbytes`` per device over ``p`` devices ``inner`` apart: the share bound for peers in
    the same node over the scale-up link, the rest over the network at once (the slower of the two), p - 1
    latencies. Not a ring: a peer off the node receives its bytes directly."""
    local = sympy.Min(p, sympy.Max(1, per_node / inner))  # group members in one node
    near = (local - 1) / p * nbytes / (eta_net * link_bw)
    far = (p - local) / p * nbytes / (eta_net * net_bw)
    return sympy.Max(near, far) + (p - 1) * alpha

