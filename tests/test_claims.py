"""The claims checker: the article's numbers recomputed, and bad claims files rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.symbolic.claims import check_claims, load_claims
from engine.errors import SpecError

CLAIMS = Path(__file__).resolve().parents[1] / "sweeps" / "seed-claims.toml"


# every claim of the seed article's claims file, by its text, and whether it holds (11 hold, 13 are wrong)
VERDICTS = {
    "Embedding layer: 50,000 * 768 = 38,400,000": True,
    "Multi-head attention: 4 * 768^2 = 2,359,296 (first term of the per-layer sum)": True,
    "Feed-forward network: 2 * 768 * (4 * 768) + 768 + (4 * 768) = 4,719,616": False,
    "Layer normalization: 2 * 768 = 1,536 (the '2 * 1,536' of the per-layer sum)": True,
    "Per-layer sum: 2,359,296 + 4,719,616 + (2 * 1,536) = 7,081,984": False,
    "Total parameters for 12 layers: 12 * 7,081,984 = 84,983,808": False,
    "Total model parameters: 84,983,808 + 38,400,000 = 123,383,808": False,
    "This model would have roughly 123 million parameters": True,
    "Model memory (32-bit) = 123,383,808 * 4 bytes = 493,535,232 bytes": False,
    "Model memory (32-bit) ~ 494 MB": True,
    "Model memory (16-bit) = 123,383,808 * 2 bytes = 246,767,616 bytes": False,
    "Model memory (16-bit) ~ 247 MB": True,
    "Inference working memory ~ 2 * 494 MB = 988 MB": False,
    "Inference working memory ~ 1 GB": True,
    "Training memory ~ 4 * 494 MB = 1,976 MB": False,
    "Training memory ~ 2 GB": True,
    "M_steady = 16N + 8BD: weights 4N + Adam states 8N + gradients 4N + inputs 8BD (at B = 8, S = 1024)": True,
    "M_act = L(14E + 4BSS) + 6BSV: the per-layer term 14E + 4BSS is the sum of the listed layer terms "
    "(at B = 8, S = 1024)": False,
    "A 10% improvement needs a parameter factor of 10^(1/alpha) ~ 3.7, alpha ~ 0.07": False,
    "GPT-3: d_ff = 4 * 12288 = 49152": True,
    "GPT-3 layer: 8 * 12288^2 + 8 * 12288 * 49152 + 2 * 12288 ~ 1.1 billion (the printed expression)": False,
    "GPT-3 layer ~ 1.1 billion parameters (by the article's own per-layer formula)": False,
    "GPT-3, 96 layers: 1.1 billion * 96 = 105.6 billion": False,
    "GPT-3 has 175 billion parameters (vocabulary 50,257 from Brown et al. 2020; no position table)": True,
}


def _by_prefix(claims, prefix):
    return next(c for c in claims if c.claim.startswith(prefix))


def test_seed_claims_verdicts():
    _, claims = load_claims(CLAIMS)
    assert [c.claim for c in claims] == list(VERDICTS)  # every claim, in the file's order, once
    assert {c.claim: c.ok for c in claims} == VERDICTS
    assert sum(VERDICTS.values()) == 11 and len(VERDICTS) - sum(VERDICTS.values()) == 13
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
    ({"formula_set": "sed", "claim": [{}]}, "formula_set", "got 'sed'; did you mean 'seed'?"),
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
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "1", "values": {"d_modle": 1}}]},
     "claim[0].values.d_modle", "did you mean 'd_model'?"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "1", "colour": 1}]},
     "claim[0].colour", "valid keys"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "1", "note": "", "nots": ""}]},
     "claim[0].nots", "abs_tol, rel_tol, note; did you mean 'note'?"),
    ({"formula_set": "seed", "claim": [{"claim": "x", "claimed": 1, "expr": "1", "options": {"tied_head": 3}}]},
     "claim[0].options", "true, false"),
])
def test_bad_claims_files(data, key, message):
    with pytest.raises(SpecError) as info:
        check_claims(data, "claims.toml")
    assert info.value.key == key and message in info.value.message
