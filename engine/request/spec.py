"""Sweep specifications: TOML (or a Python dict) -> a validated ``SweepRequest``.

Format (every table but ``[options]`` and ``[fixed]`` is required)::

    [sweep]
    formula_set = "seed"                 # which formulas (see `llm-sweep formulas`), or
    arch = "llama-2-7b"                  # an architecture: preset, family or config.json path;
                                         # its sizes are the defaults of inputs not fixed or swept
    quantities = ["params_total", ...]   # optional: default every quantity of the set
    headline = ["params_total", ...]     # optional: quantities summarised after a run
    numerics = "exact"                   # "exact" (default) or "fast" (was `precision`, still read)
    output = "seed.nc"                   # optional default output path
    compression = 4                      # zlib level 0-9 (0 = none), default 4
    description = "..."                  # optional free text, stored in the netCDF attrs

    [options]                            # structural options of the formula set
    tied_head = true

    [fixed]                              # inputs held at one value
    vocab = 50000

    [axes]                               # swept inputs, one netCDF dimension each, in order
    d_model = [512, 768, 1024]                          # a list
    n_layers = { start = 6, stop = 48, step = 6 }       # inclusive range (step defaults to 1)
    batch = { start = 1, stop = 256, scale = "log2" }   # start, 2 start, 4 start, ... <= stop
    recompute = ["none", "selective", "full"]           # a categorical dim (below)

Each quantity is computed and stored over the axes its formula depends on once the fixed values
are in (its natural dims, ``engine.runtime.dims``): with the axes above ``params_total`` spans
``(d_model, n_layers)``, not ``batch``; a quantity of no axis is a 0-d variable. Sweeping an input
a quantity does not use adds no values to it.

Categorical dims: in ``[axes]``, a key that names a structural option of the spec (any key
``[options]`` takes: with ``arch``, the architecture and memory options such as ``recompute``,
``zero``, ``sequence_parallel``, ``precision``, ``memory_model``; with ``formula_set``, the set's
options) or ``gpu`` takes a non-empty list of that option's values (devices for ``gpu``)::

    recompute = ["none", "selective", "full"]
    zero = [1, 3]
    sequence_parallel = [false, true]
    gpu = ["a100-80gb", "h100-sxm"]

Each is one dim of the cube, in the order written among the numeric axes, its labels as
coordinates: strings stay strings, integers int64, booleans numpy booleans (in the netCDF file
an int8 variable with ``dtype = "bool"``, which ``xr.open_dataset`` decodes back to booleans, so
``ds.sel(sequence_parallel=True)`` works on the cube in memory and on the file). A catalog
``gpu`` label is the device's catalog name (``a100`` -> ``a100-80gb``); a device TOML file keeps
the path as written. Every combination of labels is one ``Variant`` (``SweepRequest.variants``,
keyed by the labels in ``categories`` order): ``[options]`` plus its labels, its formula set, and
its fixed values (``gpu`` fills the device fields ``[fixed]`` and the numeric axes leave, with the
combination's precision). The runtime compiles one kernel per combination and writes each into
its slab of the one cube (``engine.runtime.categories``); every quantity spans every categorical
dim and the numeric axes any combination's formula depends on. Refused, each in one line: a value the
option does not take (``axes.KEY``, naming the value and the valid ones), a label given twice, an
option both in ``[options]`` and ``[axes]``, ``gpu`` both in ``[sweep]`` and ``[axes]``, a
combination whose options conflict or that lacks a requested quantity or an input (the message
names the combination), and a query objective that is a categorical dim.

Every error names the file, the key and what would be valid (``SpecError``), and the closest valid
name for a misspelt one. The JSON Schema of this format (``engine/request/schema.py``, shipped as
``engine/schema/spec.schema.json``) lets editors check a spec as it is written.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from engine.errors import LlmSweepDeprecation, check_keys, read_user_file
from engine.files import inside_folder
from engine.options import NUMERICS, did_you_mean
from engine.progress import note
from engine.request.numerics import EXACT, Numerics
from engine.request.query import make_query
from engine.request.values import (INT64_MAX, RANGE_KEYS, SCALES, Errors, axis_values, check_names, check_symbol,
                                   input_value, kind_of)
from engine.request.variants import (DEVICE_DIM, Variant, categorical_labels, check_available, check_inputs,
                                     combination_text, device_fields, formulas_by_combination, label_array,
                                     option_specs, shared_items)
from engine.symbolic.formulas import FORMULA_SETS, FormulaSet

if TYPE_CHECKING:
    from engine.request.query import Query

__all__ = ["DEVICE_DIM", "INT64_MAX", "RANGE_KEYS", "SCALES", "SweepRequest", "Variant", "combination_text",
           "load_spec", "option_specs", "parse_spec"]

TABLES = ("sweep", "options", "fixed", "axes", "query")
QUERY_KEYS = ("where", "maximize", "minimize", "over")
SWEEP_KEYS = ("formula_set", "arch", "quantities", "headline", "numerics", "output", "compression", "description",
              "precision", "gpu")


@dataclass(frozen=True)
class SweepRequest:
    """A validated, fully resolved sweep: what to compute, over which grid, and where it came from.

    Frozen: derive a changed request with ``dataclasses.replace`` (``replace(req, numerics=FAST)``).

    Attributes:
        formula_set: name of the formula set (an architecture's family, e.g. ``llama``).
        formulas: the formula set itself, always built (options and an architecture's sizes in); of a
            categorical cube, the first combination's.
        options: structural options (validated by the set); of a categorical cube, those every
            combination shares.
        axes: dim -> 1-D coordinate vector, in dim order: a swept input's values (int64 for integer
            symbols), or a categorical dim's labels (strings, int64 or booleans).
        fixed: input -> value held fixed (of a categorical cube, the values every combination shares).
        quantities: quantities to compute, in output order.
        headline: quantities summarised after a run.
        numerics: ``Numerics`` (exact or fast).
        output: default output path, or None.
        compression: zlib level, 0 (off) to 9.
        description: free text.
        source: the spec's file path, or "<spec>".
        text: the spec as written (TOML), stored in the netCDF attrs.
        query: an on-device ``Query``, or None for a full cube.
        arch: the preset, family or config.json the spec named (recorded in the cube), or None.
        categories: the categorical dims (structural options, ``gpu``), in dim order; empty for a plain cube.
        variants: labels (one per categorical dim, in ``categories`` order) -> that combination's
            ``Variant``; every combination of the spec's labels, also those a share
            (``sweep.process_share``) leaves out.
    """

    formula_set: str
    formulas: FormulaSet = field(repr=False)
    options: dict[str, Any]
    axes: dict[str, np.ndarray]
    fixed: dict[str, int | float]
    quantities: list[str]
    headline: list[str]
    numerics: Numerics = EXACT
    output: str | None = None
    compression: int = 4
    description: str = ""
    source: str = "<spec>"
    text: str = ""
    query: "Query | None" = None
    arch: str | None = None
    part: tuple[int, int, int] | None = None  # (index, count, length of the whole first axis) of a share
    record: dict | None = None  # a share's: the whole request's identity (dataset.request_record)
    categories: tuple[str, ...] = ()
    variants: Mapping[tuple, Variant] = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def points(self) -> int:
        return math.prod(self.shape)


def load_spec(path: str | Path) -> SweepRequest:
    """Read and validate a TOML spec file: ``parse_spec`` of its tables, the file named in every error.

    Parameters
    ----------
    path : str or Path
        The spec (TOML).

    Returns
    -------
    SweepRequest
        What ``parse_spec`` makes of the file's tables, with the text kept for the cube's attributes.

    Raises
    ------
    SpecError
        The file cannot be read or is not TOML; else the first thing ``parse_spec`` refuses.
    """
    text, data = read_user_file(path, "TOML")
    return parse_spec(data, source=str(path), text=text)


def parse_spec(data: Mapping[str, Any], source: str = "<spec>", text: str = "") -> SweepRequest:
    """Validate a spec given as a mapping (the parsed TOML); see the module docstring.

    Parameters
    ----------
    data : mapping
        The spec's tables (``sweep``, ``options``, ``fixed``, ``axes``, ``query``).
    source : str
        The spec's path, named in errors.
    text : str
        The spec as written, stored in the cube.

    Returns
    -------
    SweepRequest

    Raises
    ------
    SpecError
        The first thing wrong, with its key, what is valid and, for a misspelt name, the closest valid one.
    """
    err = Errors(source)
    _check_tables(err, data)
    sweep = data["sweep"]
    check_keys(source, "sweep", sweep, SWEEP_KEYS)
    options = dict(data.get("options", {}))
    arch_name, name = _formula_source(err, sweep)
    labels = categorical_labels(err, data["axes"], option_specs(None if arch_name is not None else name), options,
                                sweep)
    combos = [dict(zip(labels, chosen)) for chosen in itertools.product(*labels.values())]
    built, name = formulas_by_combination(err, source, arch_name, name, options, combos, sweep.get(DEVICE_DIM))
    numerics = _numerics(err, sweep)
    compression, output, description = _output(err, sweep)
    quantities, headline = _quantities(err, sweep, built, combos, arch_name)
    fixed, axes = _grid(err, data, labels)
    variants = {}
    for k, (combo, fs) in enumerate(zip(combos, built), 1):
        if len(combos) > 1:
            note(f"checking inputs of combination {k} of {len(combos)}")
        own = {**fixed, **device_fields(err, source, sweep, combo, fs, set(fixed) | set(axes))}
        check_inputs(err, combo, fs, quantities, own, [a for a in axes if a not in labels])
        variants[tuple(combo.values())] = Variant(fs.options, own, fs)
    query = _query(err, data["query"], quantities, list(axes), list(labels)) if "query" in data else None
    common = shared_items([v.options for v in variants.values()], exclude=labels)
    return SweepRequest(
        arch=arch_name, query=query, formula_set=name, options=common if labels else built[0].options, axes=axes,
        fixed=shared_items([v.fixed for v in variants.values()]), quantities=quantities, headline=headline,
        numerics=numerics, output=output, compression=compression, description=description, source=source,
        text=text, formulas=built[0], categories=tuple(labels), variants=variants if labels else {},
    )


def _check_tables(err: Errors, data: Any) -> None:
    """A table of tables, with [sweep] and a non-empty [axes]."""
    if not isinstance(data, Mapping):
        raise err("", f"a spec is a table of tables ({', '.join(TABLES)}), got {type(data).__name__}")
    check_keys(err.source, "", data, TABLES, "table")
    for key in TABLES:
        if key in data and not isinstance(data[key], Mapping):
            raise err(key, f"must be a table, got {kind_of(data[key])}")
    if "sweep" not in data:
        raise err("sweep", "missing; a spec needs a [sweep] table with at least formula_set")
    if "axes" not in data or not data["axes"]:
        raise err("axes", "missing or empty; a sweep needs at least one swept input, e.g. d_model = [512, 768]")


def _formula_source(err: Errors, sweep: Mapping[str, Any]) -> tuple[Any, Any]:
    """(arch, formula_set): exactly one of them given, a formula set by a known name."""
    arch_name, name = sweep.get("arch"), sweep.get("formula_set")
    if arch_name is not None and name is not None:
        raise err("sweep.arch", "give either formula_set or arch, not both")
    if arch_name is None:
        if name is None:
            raise err("sweep.formula_set", f"missing; valid formula sets: {', '.join(FORMULA_SETS)} "
                                           "(or give arch = a preset, family or config.json)")
        if name not in FORMULA_SETS:
            raise err("sweep.formula_set", f"unknown formula set {name!r}{did_you_mean(name, FORMULA_SETS)}; "
                                           f"valid: {', '.join(FORMULA_SETS)}")
    return arch_name, name


def _output(err: Errors, sweep: Mapping[str, Any]) -> tuple[int, str | None, str]:
    """``sweep.compression``, ``sweep.output`` (a relative path inside the current folder) and ``description``."""
    compression = sweep.get("compression", 4)
    if not isinstance(compression, int) or isinstance(compression, bool) or not 0 <= compression <= 9:
        raise err("sweep.compression", f"must be an integer from 0 (off) to 9, got {compression!r}")
    output = sweep.get("output")
    if output is not None and (not isinstance(output, str) or not output):
        raise err("sweep.output", f"must be a non-empty path string, got {output!r}")
    if output is not None and not inside_folder(output):
        raise err("sweep.output", f"{output!r} leaves the current folder; a spec's output is a relative path "
                                  "inside it (a spec from elsewhere must not choose what it overwrites); "
                                  "give -o on the command line to write elsewhere")
    description = sweep.get("description", "")
    if not isinstance(description, str):
        raise err("sweep.description", f"must be a string, got {kind_of(description)}")
    return compression, output, description


def _quantities(err: Errors, sweep: Mapping[str, Any], built: list[FormulaSet], combos: list[dict],
                arch_name: Any) -> tuple[list[str], list[str]]:
    """``sweep.quantities`` (default: every quantity all combinations have; an arch's parameter counts) and
    ``sweep.headline``."""
    categorical = bool(combos[0])
    valid = list(dict.fromkeys(q for fs in built for q in fs.quantities))  # of any combination
    default = [q for q in valid if q.startswith("params_")] if arch_name is not None else valid
    default = [q for q in default if all(q in fs.quantities and q not in fs.absent for fs in built)]
    quantities = check_names(err, "sweep.quantities", sweep.get("quantities", default), valid, "quantities",
                             None if categorical else built[0].absent)
    if categorical:
        for combo, fs in zip(combos, built):
            check_available(err, combo, fs, quantities)
    default_headline = [q for q in ("params_total", "mem_peak") if q in quantities] or quantities[:2]
    headline = check_names(err, "sweep.headline", sweep.get("headline", default_headline), quantities,
                           "requested quantities")
    return quantities, headline


def _grid(err: Errors, data: Mapping[str, Any], labels: Mapping[str, list]) -> tuple[dict, dict[str, np.ndarray]]:
    """``[fixed]`` values and ``[axes]`` coordinates (categorical dims as their labels), each input once."""
    fixed: dict[str, int | float] = {}
    for key, value in data.get("fixed", {}).items():
        check_symbol(err, f"fixed.{key}", key)
        fixed[key] = input_value(err, f"fixed.{key}", key, value)
    axes: dict[str, np.ndarray] = {}
    for key, value in data["axes"].items():
        if key in labels:
            axes[key] = label_array(labels[key])
            continue
        check_symbol(err, f"axes.{key}", key)
        if key in fixed:
            raise err(f"axes.{key}", "is also in [fixed]; an input is either swept or fixed, not both")
        axes[key] = axis_values(err, f"axes.{key}", key, value)
    if len(labels) == len(axes):
        raise err("axes", f"every dim is categorical ({', '.join(labels)}); a cube needs a swept input as well: "
                          "give one in [axes], with a single value if you like (e.g. batch = [1])")
    return fixed, axes


def _numerics(err: Errors, sweep: Mapping[str, Any]) -> Numerics:
    """``sweep.numerics``; the old key ``sweep.precision`` is read with a deprecation warning."""
    if "precision" in sweep:
        if "numerics" in sweep:
            raise err("sweep.precision", "give sweep.numerics only (sweep.precision is its old name)")
        key, value = "sweep.precision", sweep["precision"]
        if value in NUMERICS:
            warnings.warn(f"{err.source}: sweep.precision is now sweep.numerics (exact or fast); the old key is "
                          "read for now", LlmSweepDeprecation, stacklevel=4)
    else:
        key, value = "sweep.numerics", sweep.get("numerics", "exact")
    if value not in NUMERICS:
        raise err(key, f"numerics must be one of {', '.join(NUMERICS)}, got {value!r}{did_you_mean(value, NUMERICS)}")
    return Numerics(value)


def _query(err: Errors, table: Mapping[str, Any], quantities: list[str], axes: list[str],
           categories: list[str] = ()):
    check_keys(err.source, "query", table, QUERY_KEYS)
    where = table.get("where", [])
    if isinstance(where, str):
        where = [where]
    if not isinstance(where, list) or not all(isinstance(w, str) for w in where):
        raise err("query.where", "must be a constraint string or a list of them, e.g. 'mem_peak <= 80GiB'")
    over = table.get("over", [])
    if not isinstance(over, list) or not all(isinstance(o, str) for o in over):
        raise err("query.over", f"must be a list of swept dims, from {', '.join(axes)}")
    for key in ("maximize", "minimize"):
        if key in table and not isinstance(table[key], str):
            raise err(f"query.{key}", f"must be a quantity name, from {', '.join(quantities)}")
        if table.get(key) in categories:
            raise err(f"query.{key}", f"{table[key]} is a categorical dim; the objective is a quantity "
                                      f"({', '.join(quantities)}) or a numeric axis")
    try:
        return make_query(where, table.get("maximize"), table.get("minimize"), over, quantities, axes)
    except ValueError as exc:
        key = "query.where" if "constraint" in str(exc) else "query.over" if "over" in str(exc) or "reduce" in str(
            exc) else "query"
        raise err(key, str(exc)) from None
