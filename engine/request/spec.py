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

Every error names the file, the key and what would be valid (``SpecError``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import sympy

from engine.errors import LlmSweepDeprecation, SpecError, check_keys, read_user_file
from engine.files import inside_folder
from engine.progress import note
from engine.request.numerics import EXACT, NAMES as NUMERICS_NAMES, Numerics
from engine.symbolic.formulas import FORMULA_SETS, FormulaSet, OptionSpec, build_formula_set, options_for
from engine.symbolic.formulas.base import show_value
from engine.symbolic.symbols import SYMBOLS

if TYPE_CHECKING:
    from engine.request.query import Query

TABLES = ("sweep", "options", "fixed", "axes", "query")
QUERY_KEYS = ("where", "maximize", "minimize", "over")
SWEEP_KEYS = ("formula_set", "arch", "quantities", "headline", "numerics", "output", "compression", "description",
              "precision", "gpu")
RANGE_KEYS = ("start", "stop", "step", "scale")
SCALES = ("linear", "log2")
INT64_MAX = 2**63 - 1
DEVICE_DIM = "gpu"  # the categorical dim that is not an option: a device per label


@dataclass(frozen=True)
class Variant:
    """One combination of a categorical cube's labels, resolved: what changes from combination to combination.

    Attributes:
        options: the structural options of the combination (``[options]`` and its labels, validated).
        fixed: the fixed inputs of the combination (``[fixed]``, and a ``gpu`` label's device fields).
        formulas: the combination's formula set.
    """

    options: dict[str, Any]
    fixed: dict[str, int | float]
    formulas: FormulaSet = field(repr=False)


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
    """Read and validate a TOML spec file."""
    text, data = read_user_file(path, "TOML")
    return parse_spec(data, source=str(path), text=text)


def parse_spec(data: Mapping[str, Any], source: str = "<spec>", text: str = "") -> SweepRequest:
    """Validate a spec given as a mapping (the parsed TOML); see the module docstring."""
    err = _Errors(source)
    if not isinstance(data, Mapping):
        raise err("", f"a spec is a table of tables ({', '.join(TABLES)}), got {type(data).__name__}")
    check_keys(source, "", data, TABLES, "table")
    for key in TABLES:
        if key in data and not isinstance(data[key], Mapping):
            raise err(key, f"must be a table, got {_kind(data[key])}")
    if "sweep" not in data:
        raise err("sweep", "missing; a spec needs a [sweep] table with at least formula_set")
    if "axes" not in data or not data["axes"]:
        raise err("axes", "missing or empty; a sweep needs at least one swept input, e.g. d_model = [512, 768]")

    sweep = data["sweep"]
    check_keys(source, "sweep", sweep, SWEEP_KEYS)

    options = dict(data.get("options", {}))
    arch_name = sweep.get("arch")
    name = sweep.get("formula_set")
    if arch_name is not None and name is not None:
        raise err("sweep.arch", "give either formula_set or arch, not both")
    if arch_name is None:
        if name is None:
            raise err("sweep.formula_set", f"missing; valid formula sets: {', '.join(FORMULA_SETS)} "
                                           "(or give arch = a preset, family or config.json)")
        if name not in FORMULA_SETS:
            raise err("sweep.formula_set", f"unknown formula set {name!r}; valid: {', '.join(FORMULA_SETS)}")
    labels = _categories(err, data["axes"], option_specs(None if arch_name is not None else name), options, sweep)
    combos = [dict(zip(labels, chosen)) for chosen in itertools.product(*labels.values())]
    built, name = _formulas_by_combination(err, source, arch_name, name, options, combos)
    first = built[0]

    numerics = _numerics(err, sweep)

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
        raise err("sweep.description", f"must be a string, got {_kind(description)}")

    valid_q = list(dict.fromkeys(q for fs in built for q in fs.quantities))  # of any combination
    default_q = [q for q in valid_q if q.startswith("params_")] if arch_name is not None else valid_q
    default_q = [q for q in default_q if all(q in fs.quantities and q not in fs.absent for fs in built)]
    quantities = _names(err, "sweep.quantities", sweep.get("quantities", default_q), valid_q, "quantities",
                        None if labels else first.absent)
    if labels:
        for combo, fs in zip(combos, built):
            _check_available(err, combo, fs, quantities)
    default_headline = [q for q in ("params_total", "mem_peak") if q in quantities] or quantities[:2]
    headline = _names(err, "sweep.headline", sweep.get("headline", default_headline), quantities,
                      "requested quantities")

    fixed: dict[str, int | float] = {}
    for key, value in data.get("fixed", {}).items():
        _check_symbol(err, f"fixed.{key}", key)
        fixed[key] = _value(err, f"fixed.{key}", key, value)

    axes: dict[str, np.ndarray] = {}
    for key, value in data["axes"].items():
        if key in labels:
            axes[key] = _label_array(labels[key])
            continue
        _check_symbol(err, f"axes.{key}", key)
        if key in fixed:
            raise err(f"axes.{key}", "is also in [fixed]; an input is either swept or fixed, not both")
        axes[key] = _axis(err, f"axes.{key}", key, value)

    if len(labels) == len(axes):
        raise err("axes", f"every dim is categorical ({', '.join(labels)}); a cube needs a swept input as well: "
                          "give one in [axes], with a single value if you like (e.g. batch = [1])")
    variants = {}
    for k, (combo, fs) in enumerate(zip(combos, built), 1):
        if len(combos) > 1:
            note(f"checking inputs of combination {k} of {len(combos)}")
        own = {**fixed, **_device_fields(err, source, sweep, combo, fs, set(fixed) | set(axes))}
        _check_inputs(err, combo, fs, quantities, own, [a for a in axes if a not in labels])
        variants[tuple(combo.values())] = Variant(fs.options, own, fs)

    query = None
    if "query" in data:
        query = _query(err, data["query"], quantities, list(axes), list(labels))

    common = _shared([v.options for v in variants.values()], exclude=labels)
    return SweepRequest(
        arch=arch_name,
        query=query,
        formula_set=name,
        options=common if labels else first.options,
        axes=axes,
        fixed=_shared([v.fixed for v in variants.values()]),
        quantities=quantities,
        headline=headline,
        numerics=numerics,
        output=output,
        compression=compression,
        description=description,
        source=source,
        text=text,
        formulas=first,
        categories=tuple(labels),
        variants=variants if labels else {},
    )


# -- categorical dims ------------------------------------------------------------------------------


def option_specs(formula_set: str | None) -> dict[str, OptionSpec]:
    """The structural options a spec takes: a formula set's, or (None) an architecture's and the memory options."""
    if formula_set is None:
        from engine.symbolic.formulas.architectures import OPTIONS as ARCH_OPTIONS
        from engine.symbolic.memory import OPTIONS as MEMORY_OPTIONS

        return {**ARCH_OPTIONS, **MEMORY_OPTIONS}
    return dict(options_for(formula_set))


def _categories(err: "_Errors", axes: Mapping[str, Any], specs: Mapping[str, OptionSpec], options: Mapping,
                sweep: Mapping) -> dict[str, list]:
    """The categorical dims of ``[axes]`` (keys naming an option, or ``gpu``) -> their labels, validated."""
    from engine.request.options import canonical_option, check_option

    labels: dict[str, list] = {}
    for key, value in axes.items():
        if key not in specs and key != DEVICE_DIM:
            continue
        where = f"axes.{key}"
        if key in options:
            raise err(where, "is also in [options]; a structural option is either chosen there or swept here, "
                             "not both")
        if key == DEVICE_DIM and DEVICE_DIM in sweep:
            raise err(where, "is also sweep.gpu; give one device there or several here, not both")
        if not isinstance(value, list) or not value:
            what = "devices (a100-80gb, h100-sxm, ... or TOML files)" if key == DEVICE_DIM else \
                f"values of option {key!r}"
            raise err(where, f"a categorical dim takes a non-empty list of {what}, got {_kind(value)}")
        if key == DEVICE_DIM:
            chosen = [_device_label(err, where, v) for v in value]
        else:
            for v in value:
                try:
                    check_option(specs, key, v)
                except ValueError as exc:
                    raise err(where, str(exc)) from None
            chosen = [canonical_option(specs, key, v) for v in value]
        repeated = [v for i, v in enumerate(chosen) if v in chosen[:i]]
        if repeated:
            raise err(where, f"lists {show_value(repeated[0])} more than once; labels of a categorical dim are "
                             "distinct")
        labels[key] = chosen
    return labels


def _device_label(err: "_Errors", where: str, value: Any) -> str:
    """A ``gpu`` label: the catalog name of a device (aliases resolved), or a TOML file's path as written."""
    from engine.catalog.hardware import DEVICES, device

    if not isinstance(value, str) or not value:
        raise err(where, f"must list device names (a100-80gb, h100-sxm, ...) or TOML files, got {_kind(value)} "
                         f"{value!r}")
    if value.lower().endswith(".toml"):
        return value
    try:
        found = device(value)
    except SpecError as exc:
        raise err(where, f"{value!r}: {exc.message}") from None
    return found.name if found.name in DEVICES else value


def _formulas_by_combination(err: "_Errors", source: str, arch_name: Any, name: str | None, options: dict,
                             combos: list[dict]) -> tuple[list[FormulaSet], str]:
    """Each combination's formula set (built once for combinations that differ only in gpu), and the set's name."""
    shared: dict[tuple, tuple[FormulaSet, str]] = {}
    for i, combo in enumerate(combos, 1):
        chosen = tuple((k, v) for k, v in combo.items() if k != DEVICE_DIM)
        if chosen not in shared:
            if len(combos) > 1:
                note(f"building formulas of combination {i} of {len(combos)}")
            shared[chosen] = _combination_formulas(err, source, arch_name, name, options, combo)
    built = [shared[tuple((k, v) for k, v in combo.items() if k != DEVICE_DIM)] for combo in combos]
    return [fs for fs, _ in built], built[0][1]


def _combination_formulas(err: "_Errors", source: str, arch_name: Any, name: str | None, options: dict,
                          combo: dict) -> tuple[FormulaSet, str]:
    """The formula set (and its name) of ``[options]`` with one combination's labels; a conflict names the
    combination."""
    chosen = {**options, **{k: v for k, v in combo.items() if k != DEVICE_DIM}}
    try:
        if arch_name is not None:
            return _arch_formulas(err, source, arch_name, chosen)
        return _set_formulas(err, name, options, chosen), name
    except SpecError as exc:
        if not combo or exc.key != "options":
            raise
        raise err("axes", f"the combination {combination_text(combo)} is refused: {exc.message}") from None


def _set_formulas(err: "_Errors", name: str, options: dict, chosen: dict) -> FormulaSet:
    """A formula set's formulas for ``chosen`` options (each of ``[options]`` checked by its key)."""
    specs = options_for(name)
    for key, value in options.items():
        if key not in specs:
            raise err(f"options.{key}", f"unknown option for {name!r}; valid options: {', '.join(specs) or 'none'}")
        try:
            build_formula_set(name, {key: value})
        except ValueError as exc:
            raise err(f"options.{key}", str(exc)) from None
    try:
        return build_formula_set(name, chosen)
    except ValueError as exc:
        raise err("options", str(exc)) from None


def _device_fields(err: "_Errors", source: str, sweep: Mapping, combo: dict, formulas: FormulaSet,
                   given: set[str]) -> dict[str, int | float]:
    """The fields (peak_flops, hbm_capacity, ...) of a combination's device (its ``gpu`` label, else
    ``sweep.gpu``; none: {}) for the precision of ``formulas``, less the inputs ``given`` elsewhere."""
    from engine.catalog.hardware import device

    gpu = combo.get(DEVICE_DIM, sweep.get(DEVICE_DIM))
    if gpu is None:
        return {}
    key = f"axes.{DEVICE_DIM}" if DEVICE_DIM in combo else f"sweep.{DEVICE_DIM}"
    if not isinstance(gpu, str) or not gpu:
        raise err(key, "must be a device name (a100-80gb, h100-sxm, ...) or a TOML file")
    try:
        dev = device(gpu if Path(gpu).is_absolute() or not gpu.endswith(".toml") else str(Path(source).parent / gpu))
        from engine.symbolic.memory.options import DEFAULT_PRECISION

        fields = dev.values(formulas.options.get("precision", DEFAULT_PRECISION))
    except (SpecError, ValueError) as exc:
        message = getattr(exc, "message", str(exc))
        raise err(key, f"{message} (the combination {combination_text(combo)})" if combo else message) from None
    return {k: v for k, v in fields.items() if k not in given}


def _check_available(err: "_Errors", combo: dict, formulas: FormulaSet, quantities: list[str]) -> None:
    """Refuse a requested quantity that a combination's formula set lacks, naming the combination."""
    for q in quantities:
        if q in formulas.absent or q not in formulas.quantities:
            why = formulas.absent.get(q, "its formula set has no such quantity")
            raise err("sweep.quantities", f"{q} is not available in the combination {combination_text(combo)}: {why}")


def _check_inputs(err: "_Errors", combo: dict, formulas: FormulaSet, quantities: list[str],
                  fixed: Mapping[str, Any], swept: list[str]) -> None:
    """Refuse fixed values that break a validity condition, and inputs nothing gives (naming the combination)."""
    of = f" (the combination {combination_text(combo)})" if combo else ""
    broken = [msg for msg, cond in formulas.conditions({**fixed, **{a: None for a in swept}}) if cond is sympy.false]
    if broken:
        raise err("fixed", f"invalid combination: {'; '.join(broken)}{of}")
    missing = formulas.required_inputs(quantities, set(fixed) | set(swept))
    if missing:
        sym, needs = next(iter(missing.items()))
        more = f" (also missing: {', '.join(list(missing)[1:])})" if len(missing) > 1 else ""
        raise err("fixed", f"{sym} is needed by {', '.join(needs[:3])}{'...' if len(needs) > 3 else ''}; "
                           f"give it in [fixed] or [axes]{more}{of}")


def _label_array(labels: list) -> np.ndarray:
    """A categorical dim's coordinates: str, int64 or bool, as the option's values are."""
    kind = type(labels[0])
    dtype = {bool: np.bool_, int: np.int64, str: np.str_}.get(kind, object)
    return np.array(labels, dtype=dtype)


def _shared(mappings: list[Mapping], exclude=()) -> dict:
    """The items every mapping holds with the same value (in the first's order), less the ``exclude`` keys."""
    first = mappings[0]
    return {k: v for k, v in first.items() if k not in exclude and all(k in m and _same(m[k], v) for m in mappings)}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def combination_text(combo: Mapping[str, Any]) -> str:
    """``recompute = 'full', zero = 3``: one combination of labels, as a spec writes them."""
    return ", ".join(f"{k} = {show_value(v)}" for k, v in combo.items())


def _numerics(err: "_Errors", sweep: Mapping[str, Any]) -> Numerics:
    """``sweep.numerics``; the old key ``sweep.precision`` is read with a deprecation warning."""
    if "precision" in sweep:
        if "numerics" in sweep:
            raise err("sweep.precision", "give sweep.numerics only (sweep.precision is its old name)")
        key, value = "sweep.precision", sweep["precision"]
        if value in NUMERICS_NAMES:
            warnings.warn(f"{err.source}: sweep.precision is now sweep.numerics (exact or fast); the old key is "
                          "read for now", LlmSweepDeprecation, stacklevel=4)
    else:
        key, value = "sweep.numerics", sweep.get("numerics", "exact")
    if value not in NUMERICS_NAMES:
        raise err(key, f"must be one of {', '.join(NUMERICS_NAMES)}, got {value!r}")
    return Numerics(value)


def _query(err: "_Errors", table: Mapping[str, Any], quantities: list[str], axes: list[str],
           categories: list[str] = ()):
    from engine.request.query import make_query

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


def _arch_formulas(err: "_Errors", source: str, arch_name: Any, options: dict) -> tuple[FormulaSet, str]:
    """The formula set of an architecture, its sizes as defaults of the inputs left free."""
    from dataclasses import replace as _replace

    from engine.symbolic.formulas.architectures import OPTIONS as ARCH_OPTIONS
    from engine.symbolic.memory import OPTIONS as MEMORY_OPTIONS
    from engine.catalog.model import architecture, estimate_formulas, memory_options

    for key in options:
        if key not in ARCH_OPTIONS and key not in MEMORY_OPTIONS:
            raise err(f"options.{key}", f"unknown option; valid options: {', '.join([*ARCH_OPTIONS, *MEMORY_OPTIONS])}")
    arch_opts = {k: v for k, v in options.items() if k in ARCH_OPTIONS}
    chosen = {k: v for k, v in options.items() if k in MEMORY_OPTIONS}
    try:
        mem_opts = memory_options(**chosen)
    except SpecError as exc:
        raise err("options", exc.message) from None
    if not isinstance(arch_name, str) or not arch_name:
        raise err("sweep.arch", "must be a preset or family name, or a config.json path")
    path = Path(arch_name)
    if path.suffix == ".json" and not path.is_absolute() and source != "<spec>":
        arch_name = str(Path(source).parent / path)
    try:
        arch = architecture(arch_name, arch_opts or None)
    except SpecError as exc:
        key = "options" if exc.source == "structure" else "sweep.arch"
        raise err(key, exc.message if exc.source in ("arch", "structure") else str(exc)) from None
    try:
        fs = estimate_formulas(arch.family, arch.structure, mem_opts)
    except SpecError as exc:
        raise err("options", exc.message) from None
    defaults = {**fs.defaults, **{k: sympy.Integer(v) for k, v in arch.values.items()}}
    return _replace(fs, defaults=defaults, source=arch.source or fs.source), arch.family


# -- helpers -----------------------------------------------------------------------------------


class _Errors:
    def __init__(self, source: str):
        self.source = source

    def __call__(self, key: str, message: str) -> SpecError:
        return SpecError(self.source, key, message)


def _kind(value: Any) -> str:
    return {bool: "a boolean", str: "a string", int: "an integer", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _check_symbol(err: _Errors, key: str, name: str) -> None:
    if name not in SYMBOLS:
        also = "; [axes] also takes a structural option or gpu as a categorical dim" if key.startswith("axes.") else ""
        raise err(key, f"unknown input {name!r}; valid inputs: {', '.join(SYMBOLS)}{also}")


def _names(err: _Errors, key: str, value: Any, valid: list[str], what: str,
           absent: Mapping[str, str] | None = None) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise err(key, f"must be a non-empty list of names; valid {what}: {', '.join(valid)}")
    for v in value:
        if absent and v in absent:
            raise err(key, f"{v} is not available: {absent[v]}")
        if v not in valid:
            raise err(key, f"unknown name {v!r}; valid {what}: {', '.join(valid)}")
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        raise err(key, f"lists {', '.join(dup)} more than once")
    return list(value)


def _value(err: _Errors, key: str, name: str, value: Any) -> int | float:
    """One value of input ``name``: a positive integer (or positive number for real inputs).

    A string is read as a constant expression by the safe parser (``"2**15"``, ``"80 * 1024"``).
    """
    info = SYMBOLS[name]
    if isinstance(value, str):
        from engine.symbolic.expr import ExpressionError, parse_number

        try:
            number = parse_number(value)
        except ExpressionError as exc:
            raise err(key, f"cannot read {value!r}: {exc}") from None
        if number.is_Integer:
            value = int(number)
        elif info.integer:
            raise err(key, f"{name} must be {info.kind}, got {value!r} = {number}")
        else:
            value = float(number)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise err(key, f"must be {info.kind}, got {_kind(value)} {value!r}")
    if info.integer:
        if isinstance(value, float) or value != int(value):
            raise err(key, f"{name} must be {info.kind}, got {value!r}")
        if value < info.minimum:
            raise err(key, f"{name} must be {info.kind}, got {value}")
        if value > INT64_MAX:
            raise err(key, f"{name} = {value} does not fit in int64 (at most {INT64_MAX})")
        return int(value)
    if not math.isfinite(value) or value <= 0:
        raise err(key, f"{name} must be a positive finite number, got {value!r}")
    return value


MAX_AXIS_LENGTH = 10**9


def _axis(err: _Errors, key: str, name: str, value: Any) -> np.ndarray:
    """An axis's coordinates: validated in O(n) with numpy, strictly increasing, checked against memory."""
    info = SYMBOLS[name]
    if isinstance(value, list):
        if not value:
            raise err(key, "is empty; an axis needs at least one value")
        _check_length(err, key, len(value))
        values = _list_values(err, key, name, value)
    elif isinstance(value, Mapping):
        values = _range(err, key, name, value)
    else:
        raise err(key, "must be a list of values or a range table {start, stop, step} / "
                       f"{{start, stop, scale = \"log2\"}}, got {_kind(value)}")
    if values.size == 0:
        raise err(key, "is empty; an axis needs at least one value")
    steps = np.diff(values)
    if np.any(steps <= 0):
        fixed = np.unique(values)
        shown = ", ".join(_show_number(v) for v in fixed[:12]) + (f", ... ({fixed.size:,} values)"
                                                                   if fixed.size > 12 else "")
        if fixed.size < values.size:
            ordered = np.sort(values)
            repeated = np.unique(ordered[1:][np.diff(ordered) == 0])
            what = f"repeats {', '.join(_show_number(v) for v in repeated[:5])}{', ...' if repeated.size > 5 else ''}"
        else:
            what = "is not in increasing order"
        raise err(key, f"{what}; coordinates must be distinct and strictly increasing: [{shown}]")
    return values.astype(np.int64 if info.integer else np.float64, copy=False)


def _show_number(v) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 2**63 else repr(float(v))


def _check_length(err: _Errors, key: str, count: int) -> None:
    """Refuse an axis whose coordinates alone would not fit comfortably in host memory."""
    from engine.runtime.plan import available_host_memory

    if count > MAX_AXIS_LENGTH:
        raise err(key, f"has {count:,} values; an axis holds at most {MAX_AXIS_LENGTH:,}")
    need, available = 8 * count, available_host_memory()
    if need > available // 8:
        raise err(key, f"has {count:,} values ({need / 2**30:.1f} GiB of coordinates) and {available / 2**30:.1f} "
                       "GiB of host memory are available; an axis may take an eighth of it")


def _list_values(err: _Errors, key: str, name: str, value: list) -> np.ndarray:
    """A TOML list as a 1-D array, every element checked at numpy speed (bad elements named)."""
    info = SYMBOLS[name]
    want = info.kind
    bad = next((i for i, v in enumerate(value) if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    if bad is not None:
        v = value[bad]
        raise err(key, f"must be {want}, got {_kind(v)} {v!r}{_at(bad, value)}")
    if info.integer:
        floats = next((i for i, v in enumerate(value) if isinstance(v, float)), None)
        if floats is not None:
            raise err(key, f"{name} must be {want}, got {value[floats]!r}{_at(floats, value)}")
        try:
            values = np.array(value, dtype=np.int64)
        except OverflowError:
            big = next(i for i, v in enumerate(value) if v > INT64_MAX)
            raise err(key, f"{name} = {value[big]} does not fit in int64 (at most {INT64_MAX}){_at(big, value)}") \
                from None
        low = np.flatnonzero(values < info.minimum)
    else:
        values = np.array(value, dtype=np.float64)
        low = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if low.size:
        i = int(low[0])
        raise err(key, f"{name} must be {want}, got {value[i]!r}{_at(i, value)}")
    return values


def _at(index: int, values: list) -> str:
    """Where a bad element sits, for lists long enough that it is not obvious."""
    return f" (element {index} of {len(values):,})" if len(values) > 10 else ""


def _range(err: _Errors, key: str, name: str, table: Mapping[str, Any]) -> np.ndarray:
    check_keys(err.source, key, table, RANGE_KEYS, "range key", "keys")
    for k in ("start", "stop"):
        if k not in table:
            raise err(key, f"a range needs start and stop; missing {k}")
    start = _value(err, f"{key}.start", name, table["start"])
    stop = _value(err, f"{key}.stop", name, table["stop"])
    if stop < start:
        raise err(key, f"stop ({stop}) is below start ({start}); the axis would be empty")
    scale = table.get("scale", "linear")
    if scale not in SCALES:
        raise err(f"{key}.scale", f"must be one of {', '.join(SCALES)}, got {scale!r}")
    integer = SYMBOLS[name].integer
    if scale == "log2":
        if "step" in table:
            raise err(f"{key}.step", "a log2 range doubles from start to stop; it takes no step")
        values, v = [], start
        while v <= stop:
            values.append(v)
            v = v * 2
        return np.array(values, dtype=np.int64 if integer else np.float64)
    step = _value(err, f"{key}.step", name, table.get("step", 1))
    count = (stop - start) // step + 1 if integer else int(math.floor((stop - start) / step + 1e-9)) + 1
    _check_length(err, key, count)
    if integer:
        return start + step * np.arange(count, dtype=np.int64)
    return start + step * np.arange(count, dtype=np.float64)
