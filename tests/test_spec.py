"""Spec parsing: valid axes forms, and one clear error (file, key, what is valid) per bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import SpecError
from engine.request.spec import load_spec, parse_spec

BASE = {
    "sweep": {"formula_set": "seed"},
    "fixed": {"vocab": 50000},
    "axes": {"d_model": [768], "n_layers": [12], "batch": [1], "seq_len": [1024]},
}


def _spec(**changes):
    spec = {k: dict(v) for k, v in BASE.items()}
    for dotted, value in changes.items():
        table, _, key = dotted.partition("__")
        if value is None:
            spec[table].pop(key, None)
        else:
            spec[table][key] = value
    return spec


def test_axis_forms():
    req = parse_spec(_spec(axes__d_model={"start": 256, "stop": 1024, "step": 256},
                           axes__batch={"start": 1, "stop": 100, "scale": "log2"},
                           axes__n_layers=[12, 24]))
    assert req.axes["d_model"].tolist() == [256, 512, 768, 1024]
    assert req.axes["batch"].tolist() == [1, 2, 4, 8, 16, 32, 64]
    assert req.axes["d_model"].dtype == np.int64
    assert req.shape == (4, 2, 7, 1) and req.points == 56
    assert list(req.axes) == ["d_model", "n_layers", "batch", "seq_len"]
    assert req.quantities[0] == "params_embedding" and req.headline == ["params_total", "mem_peak"]


def test_shipped_specs_are_valid():
    req = load_spec(Path(__file__).resolve().parents[1] / "sweeps" / "seed.toml")
    assert req.points >= 10**6
    assert 768 in req.axes["d_model"] and 12 in req.axes["n_layers"]


BAD = [
    ({"extra": {}}, "extra", "valid tables: sweep, options, fixed, axes"),
    (_spec(sweep__formula_set=None), "sweep.formula_set", "valid formula sets: seed"),
    (_spec(sweep__formula_set="gpt9"), "sweep.formula_set", "unknown formula set 'gpt9'"),
    (_spec(sweep__colour="red"), "sweep.colour", "valid keys"),
    (_spec(sweep__precision="double"), "sweep.precision", "exact, fast"),
    (_spec(sweep__compression=12), "sweep.compression", "0 (off) to 9"),
    (_spec(sweep__quantities=["params_total", "flops"]), "sweep.quantities", "unknown name 'flops'"),
    (_spec(sweep__quantities=[]), "sweep.quantities", "non-empty list"),
    (_spec(sweep__headline=["mem_peak"], sweep__quantities=["params_total"]), "sweep.headline", "mem_peak"),
    (_spec(axes__width=[1]), "axes.width", "valid inputs: d_model"),
    (_spec(fixed__heads=12), "fixed.heads", "unknown input 'heads'"),
    (_spec(axes__d_model=[]), "axes.d_model", "is empty"),
    (_spec(axes__d_model=[768, -5]), "axes.d_model", "positive integer, got -5"),
    (_spec(axes__d_model=[0]), "axes.d_model", "positive integer, got 0"),
    (_spec(axes__d_model=[768.5]), "axes.d_model", "positive integer, got 768.5"),
    (_spec(axes__d_model=[768.0]), "axes.d_model", "positive integer"),
    (_spec(axes__d_model=["768"]), "axes.d_model", "got a string"),
    (_spec(axes__d_model=[True]), "axes.d_model", "got a boolean"),
    (_spec(axes__d_model=[768, 768]), "axes.d_model", "coordinates must be distinct"),
    (_spec(axes__d_model=768), "axes.d_model", "must be a list of values or a range table"),
    (_spec(axes__d_model={"start": 1024, "stop": 256}), "axes.d_model", "below start"),
    (_spec(axes__d_model={"start": 256}), "axes.d_model", "missing stop"),
    (_spec(axes__d_model={"start": 1, "stop": 8, "scale": "log10"}), "axes.d_model.scale", "linear, log2"),
    (_spec(axes__d_model={"start": 1, "stop": 8, "step": 2, "scale": "log2"}), "axes.d_model.step", "no step"),
    (_spec(axes__d_model={"start": 1, "stop": 8, "by": 2}), "axes.d_model.by", "valid keys: start, stop"),
    (_spec(axes__d_model={"start": 1, "stop": 8, "step": 0}), "axes.d_model.step", "positive integer"),
    (_spec(fixed__vocab=None), "fixed", "vocab is needed by"),
    (_spec(fixed__vocab=-1), "fixed.vocab", "positive integer"),
    (_spec(fixed__vocab=2**64), "fixed.vocab", "does not fit in int64"),
    (_spec(fixed__d_model=768), "axes.d_model", "either swept or fixed"),
    (_spec(fixed__alpha=-0.07), "fixed.alpha", "positive finite number"),
    ({"sweep": {"formula_set": "seed"}, "fixed": {"vocab": 1}}, "axes", "at least one swept input"),
    ({"sweep": {"formula_set": "seed"}, "fixed": {"vocab": 1}, "axes": {}}, "axes", "missing or empty"),
    ({"axes": {"d_model": [1]}}, "sweep", "needs a [sweep] table"),
    ({"sweep": [], "axes": {"d_model": [1]}}, "sweep", "must be a table"),
    ({**_spec(), "options": {"tied": True}}, "options.tied", "valid options: tied_head"),
    ({**_spec(), "options": {"tied_head": "no"}}, "options.tied_head", "true, false"),
]


@pytest.mark.parametrize("spec,key,message", BAD, ids=[f"{k}:{m[:24]}" for _, k, m in BAD])
def test_bad_spec_names_key_and_valid_values(spec, key, message):
    with pytest.raises(SpecError) as info:
        parse_spec(spec, source="bad.toml")
    assert info.value.source == "bad.toml"
    assert info.value.key == key
    assert message in info.value.message
    assert str(info.value).startswith(f"bad.toml: {key}: ")


def test_unreadable_toml_names_the_file_and_line(write_spec):
    path = write_spec("[sweep]\nformula_set = seed\n")
    with pytest.raises(SpecError, match=r"spec\.toml: not valid TOML: .*line 2"):
        load_spec(path)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.toml")


def test_binary_file(write_spec, tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="cannot read the file"):
        load_spec(path)


def test_required_inputs_fast_path_agrees_with_resolving():
    """required_inputs answers from symbol names when nothing is missing, and resolves expressions otherwise:
    both paths name the same missing inputs as resolving every quantity."""
    from engine.catalog.model import architecture, estimate_formulas, memory_options

    arch = architecture("llama-2-7b")
    fs = estimate_formulas(arch.family, arch.structure, memory_options(memory_model="korthikanti"))
    names = ["mem_peak", "step_time", "params_total"]
    for given in (set(arch.values) | {"batch", "seq_len", "global_batch", "peak_flops", "attention_peak_flops",
                                       "matmul_ceiling", "hbm_bandwidth", "link_bandwidth", "inter_bandwidth",
                                       "devices_per_node"},
                  set(arch.values) | {"batch"}, {"d_model"}):
        slow: dict = {}
        for q in names:
            for s in fs.resolve(q, given).free_symbols:
                if s.name not in given:
                    slow.setdefault(s.name, []).append(q)
        assert fs.required_inputs(names, given) == {k: slow[k] for k in fs.required_inputs(names, given)}
        assert set(fs.required_inputs(names, given)) == set(slow)
