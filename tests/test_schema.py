"""The JSON Schema of spec files (engine/request/schema.py): generated from the registries, shipped in the package."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from engine.options import SPEC_OPTIONS
from engine.request.schema import schema_text, shipped_schema, spec_schema
from engine.request.spec import QUERY_KEYS, SWEEP_KEYS, TABLES
from engine.symbolic.symbols import SYMBOLS

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_schema_is_the_generated_one():
    assert shipped_schema() == schema_text(), "regenerate it: python -m engine.options --schema"


def test_the_package_ships_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "schema/*.json" in pyproject["tool"]["setuptools"]["package-data"]["engine"]


def test_every_key_of_the_format_is_in_it():
    schema = spec_schema()
    tables = schema["properties"]
    assert set(tables) == set(TABLES)
    assert set(tables["sweep"]["properties"]) == set(SWEEP_KEYS)
    assert set(tables["query"]["properties"]) == set(QUERY_KEYS)
    assert set(SPEC_OPTIONS) <= set(tables["options"]["properties"])
    assert set(tables["fixed"]["properties"]) == set(SYMBOLS)
    assert set(SYMBOLS) | set(SPEC_OPTIONS) | {"gpu"} == set(tables["axes"]["properties"])
    precision = tables["options"]["properties"]["precision"]
    assert precision["default"] == "bf16" and {"bf16-mixed", "bfloat16", "32"} <= set(precision["enum"])


jsonschema = pytest.importorskip("jsonschema")


def _validator():
    return jsonschema.Draft202012Validator(json.loads(schema_text()))


SPECS = [p for p in sorted((ROOT / "sweeps").glob("*.toml")) if "sweep" in tomllib.loads(p.read_text())]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_the_shipped_specs_validate(spec):
    data = tomllib.loads(spec.read_text())
    assert [e.message for e in _validator().iter_errors(data)] == []


@pytest.mark.parametrize("change, fragment", [
    ({"options": {"precison": "bf16"}}, "'precison' was unexpected"),
    ({"options": {"precision": "bf61"}}, "'bf61' is not one of"),
    ({"axes": {"recompute": ["ful"]}}, "'ful' is not one of"),
    ({"sweep": {"arch": "gpt2", "numerics": "double"}}, "'double' is not one of"),
    ({"fixed": {"batch": 0}}, "0 is not valid under any of the given schemas"),
])
def test_a_bad_spec_is_flagged(change, fragment):
    data = {"sweep": {"arch": "gpt2"}, "fixed": {"batch": 1}, "axes": {"seq_len": [8]}}
    for table, values in change.items():
        data[table] = {**data.get(table, {}), **values}
    assert any(fragment in e.message for e in _validator().iter_errors(data)), list(_validator().iter_errors(data))
