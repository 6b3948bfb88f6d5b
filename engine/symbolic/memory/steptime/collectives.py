"""Collectives in the alpha-beta form: ring all-reduce, reduce-scatter / all-gather, all-to-all; the link a group
of devices uses (hierarchical rings, one per NIC); and ``hi`` / ``lo``, a max and a min that sympy does not
canonicalize (the step time's overlap and ring terms build and compile as fast as sums)."""

from __future__ import annotations

import sympy
from sympy.functions.elementary.miscellaneous import Max as _Max, Min as _Min

from engine.symbolic.memory.steptime.common import alpha, eta_net, link_bw, net_bw, per_node
from engine.symbolic.symbols import symbol

eta_link = eta_net  # comm_efficiency: a ring's bus bandwidth over the scale-up link, as a fraction of the link
eta_nic = symbol("network_efficiency")  # the same over the network (a NIC)
alpha_net = symbol("network_latency")  # one ring step that crosses the network (collective_latency: inside a node)
contention = symbol("overlap_contention")  # the share of the compute a hidden collective slows


class _Lazy:
    """Mixin of ``hi`` / ``lo``: evaluated only when every argument is a number (then the sympy Max / Min of
    them); otherwise kept as written, without sympy's pairwise comparisons of symbolic arguments (what made the
    step time slow to build: tens of ms per Max rebuilt). Printers, ``_cheap`` and the exact evaluators see a
    sympy Max / Min (subclasses: LaTeX \\max, JAX maximum, Python max)."""

    _exact: type

    def __new__(cls, *args, **assumptions):
        args = [sympy.sympify(a) for a in args]
        if all(a.is_number for a in args):
            return cls._exact(*args)
        if len(args) == 1:
            return args[0]
        return super().__new__(cls, *args, evaluate=False)


class hi(_Lazy, _Max):  # noqa: N801  (a function, as sympy's max)
    """max(a, b, ...) kept unevaluated for symbolic arguments."""

    _exact = _Max


class lo(_Lazy, _Min):  # noqa: N801
    """min(a, b, ...) kept unevaluated for symbolic arguments."""

    _exact = _Min


# their classes print as sympy's Max and Min (str, LaTeX, code): the printers dispatch on the class name first
hi.__name__, lo.__name__ = "Max", "Min"


def _fits(group: sympy.Expr, inner: sympy.Expr) -> sympy.Basic:
    return sympy.Le(group * inner, per_node)


def per_byte(group: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """Seconds per byte of a ring of ``group`` devices ``inner`` apart: the scale-up link (at comm_efficiency)
    while group x inner devices fit in a node; otherwise NCCL runs one ring per NIC (channel), so the k =
    devices_per_node / inner members of a node cross the network over k NICs at once, at min(link, k NICs) (each
    at its own efficiency). Written as max(1 / link, inner / (devices_per_node NIC)), so that no min stands under a
    fraction bar (the printed formula can break between its terms), and without min(p, ...): past a node,
    devices_per_node / inner < p."""
    return sympy.Piecewise((1 / (eta_link * link_bw), _fits(group, inner)),
                           (1 / (eta_nic * net_bw), sympy.Ge(inner, per_node)),
                           (hi(1 / (eta_link * link_bw), inner / (eta_nic * net_bw * per_node)), True))


def bandwidth(group: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """The ring bandwidth of ``group`` devices ``inner`` apart: 1 / ``per_byte``, what the rings are priced at."""
    return 1 / per_byte(group, inner)


def latency(group: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """One ring step's latency: collective_latency inside a node, network_latency once the ring crosses nodes
    (every step of a ring that spans nodes waits on a network hop)."""
    return sympy.Piecewise((alpha, _fits(group, inner)), (alpha_net, True))


def all_reduce(p: sympy.Expr, nbytes: sympy.Expr, bw: sympy.Expr, lat: sympy.Expr = alpha) -> sympy.Expr:
    return 2 * (p - 1) / p * nbytes / bw + 2 * (p - 1) * lat


def half_ring(p: sympy.Expr, nbytes: sympy.Expr, bw: sympy.Expr, lat: sympy.Expr = alpha) -> sympy.Expr:
    """Reduce-scatter, all-gather or all-to-all: (p - 1)/p of the bytes, p - 1 steps."""
    return (p - 1) / p * nbytes / bw + (p - 1) * lat


def ring_all_reduce(p: sympy.Expr, nbytes: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """An all-reduce of ``nbytes`` over ``p`` devices ``inner`` apart, on the link they use (``per_byte``)."""
    return all_reduce(p, nbytes, bandwidth(p, inner), latency(p, inner))


def ring_half(p: sympy.Expr, nbytes: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """A reduce-scatter or all-gather of ``nbytes`` over ``p`` devices ``inner`` apart (``per_byte``)."""
    return half_ring(p, nbytes, bandwidth(p, inner), latency(p, inner))


def exposed(comm: sympy.Expr, hideable: sympy.Expr, floor: sympy.Expr = 0) -> sympy.Expr:
    """The part of ``comm`` that compute does not hide: max(floor, comm - hideable), ``floor`` what no compute
    can hide (the last bucket, the first layer's gather), plus overlap_contention of the hidden rest."""
    bare = hi(floor, comm - hideable)
    # the hidden part is not free: its kernels occupy SMs the compute would have used, so the compute it hides
    # behind runs slower by that share while they run (overlap_contention x the hidden time)
    return bare + contention * (comm - bare)


def all_to_all(p: sympy.Expr, nbytes: sympy.Expr, inner: sympy.Expr = 1, steps: sympy.Expr | None = None) -> sympy.Expr:
    """An all-to-all of ``nbytes`` per device over ``p`` devices ``inner`` apart: the share bound for peers in
    the same node over the scale-up link, the rest over the network at once (the slower of the two), ``steps``
    latencies (p - 1: one peer after another; 1: every peer at once, as DeepEP's low-latency kernels send). Not a
    ring: a peer off the node receives its bytes directly."""
    local = lo(p, hi(1, per_node / inner))  # group members in one node
    near = (local - 1) / p * nbytes / (eta_link * link_bw)
    far = (p - local) / p * nbytes / (eta_nic * net_bw)
    return hi(near, far) + (p - 1 if steps is None else steps) * latency(p, inner)
