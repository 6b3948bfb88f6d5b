"""Collectives as the hardware runs them: hierarchical rings (one per NIC) and overlap as physics (exposed =
max(floor, communication - the compute it hides behind), per collective, by what the stack overlaps)."""

from __future__ import annotations

import pytest
import sympy

from engine.catalog.hardware import device
from engine.catalog.model import architecture, memory_options
from engine.catalog.timing import Layout, time_estimate
from engine.symbolic.memory import steptime
from engine.symbolic.memory.steptime import DEFAULTS
from engine.symbolic.memory.steptime.collectives import bandwidth, exposed, hi, latency, lo
from engine.symbolic.symbols import symbol

H100 = {k: v for k, v in device("h100-sxm").values("bf16").items()}  # DGX H100: 8 per node, 450 / 50 GB/s
LINK, NIC = 0.8 * 450e9, 0.86 * 50e9  # ring bus bandwidths at the shipped (published) efficiencies


def _num(expr, **extra) -> float:
    values = {**H100, **{k: float(v) for k, v in steptime.DEFAULTS.items()}, **extra}
    return float(expr.subs({steptime.symbol(k): v for k, v in values.items() if steptime.symbol(k) in
                            expr.free_symbols}))


def test_the_shipped_device_is_a_dgx_h100():
    assert (H100["devices_per_node"], H100["link_bandwidth"], H100["inter_bandwidth"]) == (8, 450e9, 50e9)


@pytest.mark.parametrize("group, inner, want", [
    (8, 1, LINK),  # inside a node: the scale-up link
    (4, 2, LINK),  # 8 devices spanned: still one node
    (64, 8, NIC),  # one member per node (k = 1): one NIC
    (64, 16, NIC),  # members further apart than a node: one NIC
    (64, 1, min(LINK, 8 * NIC)),  # k = 8 members per node: one ring per NIC, 8 NICs
    (64, 2, min(LINK, 4 * NIC)),  # k = 4
])
def test_ring_bandwidth_is_one_ring_per_nic(group, inner, want):
    assert _num(bandwidth(sympy.Integer(group), sympy.Integer(inner))) == pytest.approx(want, rel=1e-12)


def test_a_dp_group_beside_tp_8_uses_one_nic_and_beside_tp_1_eight():
    """dp 64: beside tp 8 (members 8 apart) one member per node crosses over its one NIC; beside tp 1 the eight
    members of a node cross over eight NICs, min(NVLink, 8 x NIC)."""
    dp, tp = steptime.symbol("dp"), steptime.symbol("tp")
    group = bandwidth(dp, tp)
    assert _num(group, dp=64, tp=8) == pytest.approx(NIC, rel=1e-12)
    assert _num(group, dp=64, tp=1) == pytest.approx(min(LINK, 8 * NIC), rel=1e-12)
    # a ring crossing nodes waits on a network hop every step; inside a node on NVLink's
    assert _num(latency(dp, tp), dp=64, tp=8) == pytest.approx(8e-6)
    assert _num(latency(dp, tp), dp=8, tp=1) == pytest.approx(6e-6)


def test_min_and_max_stay_unevaluated_for_symbols_and_print_as_min_max():
    x, y = sympy.symbols("x y", positive=True)
    e = hi(0, x - y)
    assert isinstance(e, sympy.Max) and e.args == (0, x - y) or set(e.args) == {0, x - y}
    assert sympy.latex(e) == r"\max\left(0, x - y\right)" and str(lo(x, y)) == "Min(x, y)"
    assert e.subs({x: 3, y: 1}) == 2 and lo(2, 3) == 2 and hi(sympy.Rational(1, 2), 0) == sympy.Rational(1, 2)
    f = sympy.lambdify([x, y], [e, lo(x, y)], modules="jax")
    assert [float(v) for v in f(3.0, 1.0)] == [2.0, 1.0]


@pytest.mark.parametrize("comm, hide, floor, want", [(5, 3, 0, 2), (2, 3, 0, 0), (2, 3, 1, 1), (5, 1, 1, 4)])
def test_exposed_is_max_floor_comm_minus_hideable(comm, hide, floor, want):
    """max(floor, comm - hideable), and the hidden rest (comm - that) slows the compute by overlap_contention of
    its time (20/132 by default: the SMs a hidden collective takes)."""
    c = symbol("overlap_contention")
    assert exposed(sympy.Integer(comm), sympy.Integer(hide), sympy.Integer(floor)) == want + c * (comm - want)
    assert DEFAULTS["overlap_contention"] == sympy.Rational(20, 132)


def _est(overlap, zero=1, layout=None, arch="llama-2-7b", **opts):
    o = memory_options(memory_model="korthikanti", precision="bf16", zero=zero, attention="flash",
                       overlap=overlap, **opts)
    return time_estimate(architecture(arch), "h100-sxm", layout or Layout(16, 4096, 16, 1), o)


def test_dp_overlap_exposes_only_the_last_bucket():
    """llama-2-7b on 2 DGX H100 nodes, ZeRO-1, dp 16, one micro-batch: without overlap the gradient reduce-scatter
    and the parameter gather are exposed whole; with "dp" the backward (forward) hides them and only the last
    bucket's share is exposed (Megatron-Core bucket: max(40M, 1M x dp) parameters of the device's)."""
    none, dp = _est("none"), _est("dp")
    n = 6_738_415_616  # llama-2-7b's parameters, all on each device (tp = pp = 1)
    ring = lambda nbytes: 15 / 16 * nbytes / min(LINK, 8 * NIC) + 15 * 8e-6  # noqa: E731  over 16, 2 nodes
    assert none["breakdown"]["dp"] == pytest.approx(ring(4 * n) + ring(2 * n), rel=1e-9)
    c = 20 / 132  # the hidden part's cost: the SMs its kernels take from the compute
    last = 40e6 / n * none["breakdown"]["dp"]
    assert dp["breakdown"]["dp"] == pytest.approx(last + c * (none["breakdown"]["dp"] - last), rel=1e-9)
    assert dp["step_time"] < none["step_time"]
    for est in (none, dp):
        assert sum(est["breakdown"].values()) == pytest.approx(est["step_time"], rel=1e-12)


def test_zero3_gathers_every_micro_batch():
    """ZeRO-3 / FSDP reshards after the forward: its gathers and reduce-scatter run every micro-batch, so twice the
    micro-batches is twice the traffic; ZeRO-1 reduces once per step."""
    for zero, ratio in ((3, 2), (1, 1)):
        one, two = (_est("none", zero=zero, layout=Layout(16, 4096, g, 1)) for g in (16, 32))
        assert two["breakdown"]["dp"] == pytest.approx(ratio * one["breakdown"]["dp"], rel=1e-9)
    hidden = _est("dp", zero=3)
    # hidden behind each micro-batch's compute: what shows is one layer's share and the SMs the rest takes (20/132)
    assert 20 / 132 < hidden["breakdown"]["dp"] / _est("none", zero=3)["breakdown"]["dp"] < 20 / 132 + 0.05


def test_tp_overlap_hides_the_all_reduces_behind_the_gemms():
    lay = Layout(8, 4096, 8, 1, tp=8)
    none, tp = _est("none", layout=lay, sequence_parallel=True), _est("tp", layout=lay, sequence_parallel=True)
    # 7B's GEMMs outlast its all-reduces: only the SMs the hidden all-reduces take (20/132 of their time) remain
    assert none["breakdown"]["tp"] > 0 and tp["breakdown"]["tp"] == pytest.approx(20 / 132 * none["breakdown"]["tp"],
                                                                                   rel=1e-9)
    assert tp["step_time"] < none["step_time"]


def test_pp_overlap_hides_the_sends():
    lay = Layout(16, 4096, 64, 1, tp=8, pp=2)
    none, pp = _est("none", layout=lay), _est("pp", layout=lay)
    assert none["breakdown"]["p2p"] > 0 and pp["breakdown"]["p2p"] == pytest.approx(20 / 132 * none["breakdown"]["p2p"],
                                                                                     rel=1e-9)


def test_overlapped_step_time_kernel_matches_sympy(step_time_kernel_matches_sympy):
    """Every overlap term and the per-NIC rings compile (jnp.maximum / minimum) to what sympy computes exactly,
    across the node boundary (dp 16 beside tp 1..8 on 8-device nodes)."""
    step_time_kernel_matches_sympy("gpt3-1.3b", {"overlap": "all", "zero": 3},
                                   {"seq_len": 2048, "global_batch": 64, "batch": 1, "dp": 16}, (1, 2, 8), (1, 2))


def test_cp_exchange_hides_behind_attention_only_when_overlapped():
    """Transformer Engine's p2p ring ("cp" overlapped) hides each K/V hop behind the block's attention; PyTorch's
    context_parallel all-gathers K and V first: the same bytes, exposed."""
    lay = Layout(8, 32768, 8, 1, cp=8)
    ring, gather = _est("cp", layout=lay), _est("none", layout=lay)
    assert 0 < ring["breakdown"]["cp"] < gather["breakdown"]["cp"]
    assert ring["breakdown"]["cp"] == pytest.approx(20 / 132 * gather["breakdown"]["cp"], rel=1e-9)  # all hidden
