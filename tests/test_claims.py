"""The claims checker: the article's numbers recomputed, and bad claims files rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.claims import check_claims, load_claims
from engine.errors import SpecError

CLAIMS = Path(__file__).resolve().parents[1] / "sweeps" / "seed-claims.toml"


def _by_prefix(claims, prefix):
    return next(c for c in claims if c.claim.startswith(prefix))


def test_seed_claims_verdicts():
    _, claims = load_claims(CLAIMS)
    assert len(claims) >= 20
    verdict = {c.claim.split(":")[0].split("(")[0].strip(): c for c in claims}
    ffn = _by_prefix(claims, "Feed-forward network")
    assert (int(ffn.claimed), int(ffn.derived), ffn.ok) == (4_719_616, 4_722_432, False)
    layer = _by_prefix(claims, "Per-layer sum")
    assert (int(layer.derived), layer.ok) == (7_084_800, False)
    total = _by_prefix(claims, "Total model parameters")
    assert (int(total.derived), total.ok) == (123_417_600, False)
    assert _by_prefix(claims, "Embedding layer").ok
    assert _by_prefix(claims, "This model would have roughly 123 million").ok
    assert _by_prefix(claims, "Model memory (32-bit) ~ 494 MB").ok
    fp32 = _by_prefix(claims, "Model memory (32-bit) = ")
    assert (int(fp32.derived), fp32.ok) == (493_670_400, False)
    alpha = _by_prefix(claims, "A 10% improvement")
    assert not alpha.ok and float(alpha.derived) == pytest.approx(10 ** (1 / 0.07))
    assert not _by_prefix(claims, "GPT-3, 96 layers").ok
    assert int(_by_prefix(claims, "GPT-3, 96 layers").derived) == 96 * 1_812_049_920
    assert not _by_prefix(claims, "M_act = L(14E").ok  # listed terms sum to 20E
    assert _by_prefix(claims, "M_steady = 16N + 8BD").ok
    assert verdict  # every claim produced a verdict


def test_tolerances():
    base = {"formula_set": "seed", "values": {"d_model": 768, "n_layers": 12, "vocab": 50000}}
    rows = check_claims({**base, "claim": [
        {"claim": "a", "claimed": 123.4e6, "abs_tol": 0.05e6, "expr": "params_total"},
        {"claim": "b", "claimed": 123.5e6, "abs_tol": 0.05e6, "expr": "params_total"},
        {"claim": "c", "claimed": 120e6, "rel_tol": 0.03, "expr": "params_total"},
        {"claim": "d", "claimed": 123417601, "expr": "params_total"},
    ]})
    assert [r.ok for r in rows] == [True, False, True, False]


@pytest.mark.parametrize("data,key,message", [
    ({"formula_set": "nope", "claim": [{}]}, "formula_set", "must be one of seed"),
    ({"formula_set": "seed"}, "claim", "no claims"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1}]}, "claim[0]", "missing 'expr'"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "params_totl"}]},
     "claim[0].expr", "unknown name params_totl"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "__import__('os').getcwd()"}]},
     "claim[0].expr", "unknown name __import__"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "vocab.func"}]},
     "claim[0].expr", "unexpected '.'"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "params_total"}]},
     "claim[0].expr", "needs a value for d_model, n_layers, vocab"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "(("}]}, "claim[0].expr", "cannot parse"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": True, "expr": "1"}]}, "claim[0].claimed", "number"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "1", "abs_tol": -1}]},
     "claim[0].abs_tol", "non-negative"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "1", "values": {"dm": 1}}]},
     "claim[0].values.dm", "unknown input"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "1", "colour": 1}]},
     "claim[0].colour", "valid keys"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "1", "options": {"tied_head": 3}}]},
     "claim[0].options", "true, false"),
])
def test_bad_claims_files(data, key, message):
    with pytest.raises(SpecError) as info:
        check_claims(data, "claims.toml")
    assert info.value.key == key and message in info.value.message
