"""The JSON Schema of spec files, generated from the option registry and the symbol registry.

``spec_schema()`` writes what ``parse_spec`` accepts as a JSON Schema (draft 2020-12): the tables and
their keys, every structural option with its values, default and meaning, every input symbol of
``[fixed]`` and ``[axes]``. The package ships it as ``engine/schema/spec.schema.json`` (a test keeps
the file equal to the generated one; ``python -m engine.options --schema`` regenerates it). Editors
validate and complete TOML against it (taplo, VS Code's Even Better TOML) when a spec's first line
names it::

    #:schema ./engine/schema/spec.schema.json

(a path relative to the spec, or a URL). ``parse_spec`` stays the judge: it also checks what a
schema cannot say (an option's rules, a formula set's own options, inputs nothing gives).
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any, Mapping

from engine.options import NUMERICS, SPEC_OPTIONS, OptionSpec
from engine.request.spec import DEVICE_DIM
from engine.request.values import SCALES
from engine.symbolic.formulas import FORMULA_SETS, options_for
from engine.symbolic.symbols import SYMBOLS

SCHEMA_FILE = "spec.schema.json"  # in the engine.schema folder of the package


def _option(spec: OptionSpec) -> dict[str, Any]:
    """One option's values: an enum of its choices and aliases, its default and meaning."""
    if spec.listed:  # a comma list of choices, or one of its words
        part = "(" + "|".join(spec.choices) + ")"
        return {"type": "string", "pattern": f"^({'|'.join(spec.words)}|{part}( *, *{part})*)$",
                "default": spec.default, "description": spec.meaning}
    values = [*spec.choices, *(a for a, _ in spec.aliases)]
    return {"enum": values, "default": spec.default, "description": spec.meaning}


def _options() -> dict[str, OptionSpec]:
    """Every option a spec's [options] takes: an architecture's and the memory options, then the formula sets'."""
    out = dict(SPEC_OPTIONS)
    for name in FORMULA_SETS:
        for key, spec in options_for(name).items():
            out.setdefault(key, spec)
    return out


def _kind(info) -> str:
    """The $defs name of an input's kind: ``integer1`` (from 1), ``integer0`` (from 0) or ``real``."""
    return f"integer{info.minimum}" if info.integer else "real"


def _defs() -> dict[str, Any]:
    """The value and axis forms of each kind of input, referenced by every symbol."""
    out = {}
    for kind in sorted({_kind(info) for info in SYMBOLS.values()}):
        number = {"type": "number", "exclusiveMinimum": 0} if kind == "real" else \
            {"type": "integer", "minimum": int(kind[-1])}
        value = {"anyOf": [number, {"type": "string", "description": "a constant expression, e.g. \"2**15\""}]}
        ref = {"$ref": f"#/$defs/{kind}"}
        out[kind] = value
        out[f"{kind}_axis"] = {"anyOf": [
            {"type": "array", "minItems": 1, "items": {"type": number["type"]}},
            {"type": "object", "required": ["start", "stop"], "additionalProperties": False,
             "properties": {"start": ref, "stop": ref, "step": ref, "scale": {"enum": list(SCALES)}}}]}
    return out


def _sweep() -> dict[str, Any]:
    names = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"}}
    props = {
        "formula_set": {"enum": list(FORMULA_SETS), "description": "a formula set (or give arch)"},
        "arch": {"type": "string", "description": "a preset, a family or a config.json path"},
        "quantities": names, "headline": names,
        "numerics": {"enum": list(NUMERICS), "default": "exact",
                     "description": "exact (int64/float64) or fast (float32)"},
        "output": {"type": "string", "minLength": 1}, "compression": {"type": "integer", "minimum": 0, "maximum": 9},
        "description": {"type": "string"},
        "precision": {"enum": list(NUMERICS), "deprecated": True, "description": "the old name of numerics"},
        DEVICE_DIM: {"type": "string", "description": "a device (a100-80gb, h100-sxm, ...) or a TOML file"},
    }
    return {"type": "object", "additionalProperties": False, "properties": props,
            "oneOf": [{"required": ["formula_set"]}, {"required": ["arch"]}]}


def _query() -> dict[str, Any]:
    text = {"type": "string"}
    props = {"where": {"anyOf": [text, {"type": "array", "items": text}]}, "maximize": text, "minimize": text,
             "over": {"type": "array", "items": text}}
    return {"type": "object", "additionalProperties": False, "properties": props}


def _categorical(options: Mapping[str, OptionSpec]) -> dict[str, Any]:
    """[axes] keys naming an option (or gpu): a non-empty list of its values."""
    out = {k: {"type": "array", "minItems": 1, "uniqueItems": True, "items": _option(s), "description": s.meaning}
           for k, s in options.items() if k not in SYMBOLS}
    out[DEVICE_DIM] = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"},
                       "description": "devices (a100-80gb, h100-sxm, ...) or TOML files, one label each"}
    return out


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec file, from the registries.

    Returns
    -------
    dict
        The schema, ready for ``json.dumps``: the tables ``sweep``, ``options``, ``fixed``, ``axes`` and
        ``query``, every key they take, every option's values and every input's kind.
    """
    options = _options()
    fixed = {name: {"$ref": f"#/$defs/{_kind(info)}", "description": f"{info.meaning} [{info.units}]"}
             for name, info in SYMBOLS.items()}
    axes = {**{name: {"$ref": f"#/$defs/{_kind(info)}_axis", "description": f"{info.meaning} [{info.units}]"}
               for name, info in SYMBOLS.items()}, **_categorical(options)}
    tables = {
        "sweep": _sweep(),
        "options": {"type": "object", "additionalProperties": False,
                    "properties": {k: _option(s) for k, s in options.items()}},
        "fixed": {"type": "object", "additionalProperties": False, "properties": fixed},
        "axes": {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": axes},
        "query": _query(),
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "llm-sweep sweep specification",
            "description": "A sweep spec (TOML): what to compute, over which grid. See engine/request/spec.py.",
            "type": "object", "additionalProperties": False, "required": ["sweep", "axes"], "properties": tables,
            "$defs": _defs()}


def schema_text() -> str:
    """The schema as the shipped file holds it: indented JSON with a final newline."""
    return json.dumps(spec_schema(), indent=2) + "\n"


def shipped_schema() -> str:
    """The text of the schema file shipped in the package (``engine/schema/spec.schema.json``)."""
    return files("engine").joinpath("schema", SCHEMA_FILE).read_text()
