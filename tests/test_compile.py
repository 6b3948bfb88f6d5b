"""The compiled kernel equals exact sympy evaluation, bit for bit, and never rounds silently."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.runtime.compile import compile_kernel
from engine.errors import PrecisionError
from engine.symbolic.formulas import build_formula_set
from engine.symbolic.symbols import symbol

AXES = ["d_model", "n_layers", "batch", "seq_len"]
FS = build_formula_set("seed")
QUANTITIES = list(FS.quantities)


def _kernel(fixed: dict, axes=AXES, precision="exact", quantities=QUANTITIES, fs=FS):
    given_ = {**{a: None for a in axes}, **fixed}
    exprs = {q: fs.resolve(q, given_) for q in quantities}
    integer = {q: fs.quantities[q].integer for q in quantities}
    return compile_kernel(exprs, integer, axes, precision)


EXACT_KERNEL = _kernel({"vocab": 50257})


PAD = 4  # every example is evaluated on a PAD**4 grid: one XLA executable serves them all


def _axis(max_value):
    return st.lists(st.integers(1, max_value), min_size=1, max_size=PAD, unique=True)


def _padded(values):
    """``values`` repeated at the end up to PAD coordinates (the padding is never compared)."""
    return np.array(values + [values[-1]] * (PAD - len(values)), dtype=np.int64)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    d_model=_axis(1 << 20),
    n_layers=_axis(1 << 10),
    batch=_axis(1 << 12),
    seq_len=_axis(1 << 17),
    data=st.data(),
)
def test_kernel_matches_sympy_exactly(d_model, n_layers, batch, seq_len, data):
    coords = {"d_model": d_model, "n_layers": n_layers, "batch": batch, "seq_len": seq_len}
    out = EXACT_KERNEL(**{k: _padded(v) for k, v in coords.items()})
    for q in QUANTITIES:
        assert out[q].shape == (PAD,) * len(AXES), q
    for _ in range(3):  # real points only: indices below each axis's drawn length
        idx = tuple(data.draw(st.integers(0, len(coords[a]) - 1)) for a in AXES)
        point = {a: coords[a][i] for a, i in zip(AXES, idx)}
        for q in QUANTITIES:
            exact = FS.evaluate(q, {**point, "vocab": 50257})
            got = out[q][idx]
            if FS.quantities[q].integer:
                assert out[q].dtype == np.int64
                assert int(got) == int(exact), (q, point)
            else:
                assert float(got) == pytest.approx(float(exact), rel=1e-12), (q, point)


def test_values_past_2_53_stay_exact():
    # params_total for d_model ~2^20, 1022 layers is about 1.3e16 > 2^53: float64 rounds most of them.
    def exact(d):
        return int(FS.evaluate("params_total", {"d_model": d, "n_layers": 1022, "vocab": 50257}))

    d = next(d for d in range(2**20, 2**20 + 64) if int(np.float64(exact(d))) != exact(d))
    out = EXACT_KERNEL(d_model=np.array([d]), n_layers=np.array([1022]), batch=np.array([3]), seq_len=np.array([7]))
    assert exact(d) > 2**53
    assert int(out["params_total"][0, 0, 0, 0]) == exact(d)


def test_overflow_past_int64_raises():
    with pytest.raises(PrecisionError, match="params_total"):
        EXACT_KERNEL(d_model=np.array([2**30]), n_layers=np.array([2**20]), batch=np.array([1]),
                     seq_len=np.array([1]))


def test_overflow_of_a_non_monotone_quantity_is_caught_on_the_device():
    d = symbol("d_model")
    k = compile_kernel({"cubic": d**3 - d, "small": d**2 - d}, {"cubic": True, "small": True}, ["d_model"])
    assert [o.monotone for o in k.outputs] == [False, False]  # checked by the float64 shadow
    assert int(k(d_model=np.array([2**20]))["cubic"][0]) == 2**60 - 2**20
    with pytest.raises(PrecisionError, match="cubic"):
        k(d_model=np.array([3, 2**21 + 1]))


def test_exact_mode_leaves_the_global_jax_config_alone():
    before = jax.config.jax_enable_x64
    EXACT_KERNEL(d_model=np.array([768]), n_layers=np.array([12]), batch=np.array([1]), seq_len=np.array([8]))
    assert jax.config.jax_enable_x64 == before
    assert jax.numpy.arange(3).dtype == (np.int64 if before else np.int32)


def test_fast_mode_is_float32_within_its_bound():
    fast = _kernel({"vocab": 50257}, precision="fast")
    coords = {"d_model": np.arange(256, 8193, 256), "n_layers": np.arange(1, 97, 5),
              "batch": np.array([1, 8, 64]), "seq_len": np.array([512, 2048, 32768])}
    got, want = fast(**coords), EXACT_KERNEL(**coords)
    for q in QUANTITIES:
        assert got[q].dtype == np.float32
        err = np.abs(got[q].astype(np.float64) - want[q].astype(np.float64))
        assert np.all(err <= 1e-6 * np.abs(want[q].astype(np.float64))), q  # README: fast mode relative error below 1e-6 for these sums


def test_output_shape_follows_axis_order_and_broadcasts_constants():
    k = _kernel({"vocab": 50000, "batch": 2, "seq_len": 16}, axes=["n_layers", "d_model"])
    out = k(n_layers=np.array([1, 2, 3]), d_model=np.array([64, 128]))
    assert out["params_total"].shape == (3, 2)
    assert out["mem_act_logits"].shape == (3, 2)  # depends on neither axis: broadcast
    assert np.all(out["mem_act_logits"] == 6 * 2 * 16 * 50000)
    assert out["params_total"][2, 1] == 3 * (12 * 128**2 + 9 * 128) + 128 * 50000


def test_integer_division_stays_exact():
    d, h = symbol("d_model"), symbol("n_heads")
    # a triangular number and an exact ratio: rational coefficients, integer results
    exprs = {"tri": d * (d + 1) / 2, "head_dim": d / h}
    k = compile_kernel(exprs, {"tri": True, "head_dim": True}, ["d_model", "n_heads"])
    out = k(d_model=np.array([2**31 + 1, 768]), n_heads=np.array([1, 12]))
    assert int(out["tri"][0, 0]) == (2**31 + 1) * (2**31 + 2) // 2
    assert int(out["head_dim"][1, 1]) == 64


def test_unsubstituted_symbols_are_refused():
    with pytest.raises(ValueError, match="neither swept nor fixed"):
        compile_kernel({"p": FS.resolve("params_total", {"d_model", "n_layers", "vocab"})},
                       {"p": True}, ["d_model", "n_layers"])


def test_bad_coordinates_are_refused():
    with pytest.raises(ValueError, match="must be integers"):
        EXACT_KERNEL(d_model=np.array([768.0]), n_layers=np.array([12]), batch=np.array([1]), seq_len=np.array([8]))
    with pytest.raises(ValueError, match="missing"):
        EXACT_KERNEL(d_model=np.array([768]))
