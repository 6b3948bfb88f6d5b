"""The seed formula set reproduces the article's formulas exactly (not its arithmetic slips)."""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import build_formula_set
from engine.symbolic.symbols import symbol

EXAMPLE = {"d_model": 768, "n_heads": 12, "n_layers": 12, "vocab": 50000}


def test_example_components_are_exact():
    fs = build_formula_set("seed")
    value = lambda q, **kw: int(fs.evaluate(q, {**EXAMPLE, **kw}))  # noqa: E731
    assert value("params_embedding") == 38_400_000
    assert value("params_attention") == 2_359_296
    assert value("params_ffn") == 4_722_432  # the article prints 4,719,616 (errata #4)
    assert value("params_layernorm") == 1_536
    assert value("params_layer") == 7_084_800  # article: 7,081,984
    assert value("params_total") == 123_417_600  # article: 123,383,808
    assert value("mem_model") == 493_670_400  # fp32, the default 4 bytes per parameter
    assert value("mem_model", bytes_param=2) == 246_835_200
    assert value("mem_inference") == 2 * 493_670_400
    assert value("mem_training") == 4 * 493_670_400


def test_gpt3_layer_by_the_seed_formula():
    fs = build_formula_set("seed")
    assert int(fs.evaluate("params_layer", {"d_model": 12288})) == 1_812_049_920
    assert int(fs.evaluate("params_layer", {"d_model": 12288, "d_ff": 49152})) == 1_812_049_920


def test_formulas_are_the_articles():
    fs = build_formula_set("seed")
    d, dff, V, L = symbol("d_model"), symbol("d_ff"), symbol("vocab"), symbol("n_layers")
    B, S, D = symbol("batch"), symbol("seq_len"), symbol("d_input")
    N = fs.expanded("params_total")
    assert sympy.expand(fs.expanded("params_ffn") - (2 * d * dff + d + dff)) == 0
    assert sympy.expand(N - (L * (4 * d**2 + 2 * d * dff + d + dff + 4 * d) + V * d)) == 0
    assert sympy.expand(fs.expanded("mem_steady") - (16 * N + 8 * B * D)) == 0
    E = B * S * d
    act = L * (14 * E + 4 * B * S * S) + 6 * B * S * V
    assert sympy.expand(fs.expanded("mem_activations") - act) == 0
    peak = 16 * N + 8 * B * D + act + 4 * B * S * V
    assert sympy.expand(fs.expanded("mem_peak") - peak) == 0


def test_defaults_apply_only_to_inputs_not_given():
    fs = build_formula_set("seed")
    d = symbol("d_model")
    assert sympy.expand(fs.resolve("params_ffn", set()) - (8 * d**2 + 5 * d)) == 0
    assert fs.resolve("params_ffn", {"d_ff"}).has(symbol("d_ff"))
    assert fs.resolve("mem_input", set()) == 8 * symbol("batch") * symbol("seq_len")


def test_untied_head_counts_the_output_matrix():
    tied = build_formula_set("seed")
    untied = build_formula_set("seed", {"tied_head": False})
    assert int(tied.evaluate("params_output", EXAMPLE)) == 0
    assert int(untied.evaluate("params_output", EXAMPLE)) == 38_400_000
    assert int(untied.evaluate("params_total", EXAMPLE)) == 123_417_600 + 38_400_000


def test_every_quantity_has_units_source_and_latex():
    fs = build_formula_set("seed")
    for q in fs.quantities.values():
        assert q.units in ("1", "bytes"), q.name
        assert q.source.startswith("seed article"), q.name
        assert q.latex and q.long_name, q.name


def test_bad_options_name_the_valid_choices():
    import pytest

    with pytest.raises(ValueError, match="valid options: tied_head"):
        build_formula_set("seed", {"tied": True})
    with pytest.raises(ValueError, match="must be one of true, false"):
        build_formula_set("seed", {"tied_head": "yes"})
    with pytest.raises(ValueError, match="valid formula sets: seed"):
        build_formula_set("gpt5")


def test_memoized_expansion_follows_changes_to_the_set():
    from dataclasses import replace

    fs = build_formula_set("seed")
    d = symbol("d_model")
    assert sympy.expand(fs.resolve("params_ffn", set()) - (8 * d**2 + 5 * d)) == 0
    assert fs.resolve("params_ffn", set()) is fs.resolve("params_ffn", set())  # answered from the memo
    # a replaced copy has its own memo: d_ff = 2 d_model there, still 4 d_model in the original
    half = replace(fs, defaults={**fs.defaults, "d_ff": 2 * d})
    assert sympy.expand(half.resolve("params_ffn", set()) - (4 * d**2 + 3 * d)) == 0
    assert sympy.expand(fs.resolve("params_ffn", set()) - (8 * d**2 + 5 * d)) == 0
    assert half != fs and replace(fs) == fs  # the memo is no part of the set's value
    # reassigning a field or editing a dict in place is seen too
    half.defaults = dict(fs.defaults)
    assert sympy.expand(half.resolve("params_ffn", set()) - (8 * d**2 + 5 * d)) == 0
    half.defaults["d_ff"] = 3 * d
    assert sympy.expand(half.resolve("params_ffn", set()) - (6 * d**2 + 4 * d)) == 0
    half.quantities = {**half.quantities, "params_ffn": replace(half.quantities["params_ffn"], definition=d)}
    assert half.expanded("params_ffn") == d and half.evaluate("params_ffn", {"d_model": 5}) == 5
    # given values are part of the key: same names, different values, different answers
    assert fs.evaluate("params_ffn", {"d_model": 768}) == 4_722_432
    assert fs.evaluate("params_ffn", {"d_model": 768, "d_ff": 1}) == 2 * 768 + 768 + 1
    assert fs.evaluate("params_layer", {"d_model": 768.0}) == fs.evaluate("params_layer", {"d_model": 768})
