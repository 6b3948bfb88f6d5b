"""A spec's structural options and categorical dims, resolved: one formula set and fixed values per combination.

``categorical_labels`` reads the ``[axes]`` keys that name a structural option (or ``gpu``) and checks their
labels against the option registry (``engine.options``); every combination of labels is one ``Variant``:
its options, its formula set (``formulas_by_combination``, built once per distinct set of options) and its
fixed values (a ``gpu`` label's device fields, ``device_fields``). See ``engine.request.spec`` for the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import sympy

from engine.catalog.hardware import DEVICES, device, generation_name
from engine.catalog.model import architecture, estimate_formulas, memory_options
from engine.errors import SpecError
from engine.options import ARCH_OPTIONS, DEFAULT_PRECISION, MEMORY_OPTIONS, SPEC_OPTIONS, OptionSpec, check_value, \
    did_you_mean, show_value
from engine.options.stacks import device_overlap
from engine.progress import note
from engine.request.values import Errors, kind_of
from engine.symbolic.formulas import FormulaSet, build_formula_set, options_for

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


def option_specs(formula_set: str | None) -> dict[str, OptionSpec]:
    """The structural options a spec takes: a formula set's, or (None) an architecture's and the memory options."""
    return dict(SPEC_OPTIONS) if formula_set is None else dict(options_for(formula_set))


def categorical_labels(err: Errors, axes: Mapping[str, Any], specs: Mapping[str, OptionSpec], options: Mapping,
                       sweep: Mapping) -> dict[str, list]:
    """The categorical dims of ``[axes]`` (keys naming an option, or ``gpu``) -> their labels, validated."""
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
            raise err(where, f"a categorical dim takes a non-empty list of {what}, got {kind_of(value)}")
        if key == DEVICE_DIM:
            chosen = [_device_label(err, where, v) for v in value]
        else:
            for v in value:
                try:
                    check_value(specs, key, v)
                except ValueError as exc:
                    raise err(where, str(exc)) from None
            chosen = [specs[key].canonical(v) for v in value]
        repeated = [v for i, v in enumerate(chosen) if v in chosen[:i]]
        if repeated:
            raise err(where, f"lists {show_value(repeated[0])} more than once; labels of a categorical dim are "
                             "distinct")
        labels[key] = chosen
    return labels


def _device_label(err: Errors, where: str, value: Any) -> str:
    """A ``gpu`` label: the catalog name of a device (aliases resolved), or a TOML file's path as written."""
    if not isinstance(value, str) or not value:
        raise err(where, f"must list device names (a100-80gb, h100-sxm, ...) or TOML files, got {kind_of(value)} "
                         f"{value!r}")
    if value.lower().endswith(".toml"):
        return value
    try:
        found = device(value)
    except SpecError as exc:
        raise err(where, f"{value!r}: {exc.message}") from None
    return found.name if found.name in DEVICES else value


def formulas_by_combination(err: Errors, source: str, arch_name: Any, name: str | None, options: dict,
                            combos: list[dict], gpu: Any = None) -> tuple[list[FormulaSet], str]:
    """Each combination's formula set (built once for combinations whose options agree: those that differ only in
    gpu, unless the stack's overlap differs between the devices' kinds), and the set's name. ``gpu``: sweep.gpu."""
    shared: dict[tuple, tuple[FormulaSet, str]] = {}
    keys = []
    for i, combo in enumerate(combos, 1):
        overlap = _device_overlap(source, options, combo, gpu) if arch_name is not None else None
        key = (tuple((k, v) for k, v in combo.items() if k != DEVICE_DIM), overlap)
        keys.append(key)
        if key not in shared:
            if len(combos) > 1:
                note(f"building formulas of combination {i} of {len(combos)}")
            chosen = options if overlap is None else {**options, "overlap": overlap}
            shared[key] = _combination_formulas(err, source, arch_name, name, chosen, combo)
    built = [shared[key] for key in keys]
    return [fs for fs, _ in built], built[0][1]


def _device_overlap(source: str, options: Mapping, combo: Mapping, gpu: Any) -> str | None:
    """The overlap a combination takes on its device when it leaves ``overlap`` to the stack and the stack
    overlaps other communication on that device's kind than on a GPU (MaxText's TPU flags: ``time`` and ``plan``
    resolve it the same way, ``hardware.stack_and_kernel``); None otherwise (the options as given)."""
    chosen = {**options, **{k: v for k, v in combo.items() if k != DEVICE_DIM}}
    gpu = combo.get(DEVICE_DIM, gpu)
    if chosen.get("overlap", "stack") != "stack" or not isinstance(gpu, str) or not gpu:
        return None
    try:  # a device file's generation is its silicon's (hardware.generation_name, as time and plan read it)
        generation = generation_name(_device_path(source, gpu))
        overlap = device_overlap(chosen.get("stack", MEMORY_OPTIONS["stack"].default), generation)
    except (SpecError, ValueError):  # an unknown device or stack: device_fields and the options' checks word it
        return None
    return None if overlap == "stack" else overlap


def _combination_formulas(err: Errors, source: str, arch_name: Any, name: str | None, options: dict,
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


def _set_formulas(err: Errors, name: str, options: dict, chosen: dict) -> FormulaSet:
    """A formula set's formulas for ``chosen`` options (each of ``[options]`` checked by its key)."""
    specs = options_for(name)
    for key, value in options.items():
        if key not in specs:
            raise err(f"options.{key}", f"unknown option for {name!r}{did_you_mean(key, specs)}; valid options: "
                                        f"{', '.join(specs) or 'none'}")
        try:
            build_formula_set(name, {key: value})
        except ValueError as exc:
            raise err(f"options.{key}", str(exc)) from None
    try:
        return build_formula_set(name, chosen)
    except ValueError as exc:
        raise err("options", str(exc)) from None


def _device_path(source: str, gpu: str) -> str:
    """A gpu label as the catalog reads it: a name, or a device file's path (relative to the spec's folder)."""
    return gpu if Path(gpu).is_absolute() or not gpu.endswith(".toml") else str(Path(source).parent / gpu)


def device_fields(err: Errors, source: str, sweep: Mapping, combo: dict, formulas: FormulaSet,
                  given: set[str]) -> dict[str, int | float]:
    """The fields (peak_flops, hbm_capacity, ...) of a combination's device (its ``gpu`` label, else
    ``sweep.gpu``; none: {}) for the precision of ``formulas``, less the inputs ``given`` elsewhere."""
    gpu = combo.get(DEVICE_DIM, sweep.get(DEVICE_DIM))
    if gpu is None:
        return {}
    key = f"axes.{DEVICE_DIM}" if DEVICE_DIM in combo else f"sweep.{DEVICE_DIM}"
    if not isinstance(gpu, str) or not gpu:
        raise err(key, "must be a device name (a100-80gb, h100-sxm, ...) or a TOML file")
    try:
        dev = device(_device_path(source, gpu))
        precision = formulas.options.get("precision", DEFAULT_PRECISION)
        attention = formulas.options.get("attention", MEMORY_OPTIONS["attention"].default)
        if formulas.options.get("mode") == "inference":  # the serving rates, engine limits, price, power: serve's
            fields = dev.serving_values(precision, attention,
                                        formulas.options.get("weight_dtype", MEMORY_OPTIONS["weight_dtype"].default),
                                        formulas.options.get("engine", MEMORY_OPTIONS["engine"].default))
        else:
            fields = dev.values(precision, attention)
    except (SpecError, ValueError) as exc:
        message = getattr(exc, "message", str(exc))
        raise err(key, f"{message} (the combination {combination_text(combo)})" if combo else message) from None
    return {k: v for k, v in fields.items() if k not in given}


def check_available(err: Errors, combo: dict, formulas: FormulaSet, quantities: list[str]) -> None:
    """Refuse a requested quantity that a combination's formula set lacks, naming the combination."""
    for q in quantities:
        if q in formulas.absent or q not in formulas.quantities:
            why = formulas.absent.get(q, "its formula set has no such quantity")
            raise err("sweep.quantities", f"{q} is not available in the combination {combination_text(combo)}: {why}")


def check_inputs(err: Errors, combo: dict, formulas: FormulaSet, quantities: list[str],
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


def label_array(labels: list) -> np.ndarray:
    """A categorical dim's coordinates: str, int64 or bool, as the option's values are."""
    kind = type(labels[0])
    dtype = {bool: np.bool_, int: np.int64, str: np.str_}.get(kind, object)
    return np.array(labels, dtype=dtype)


def shared_items(mappings: list[Mapping], exclude=()) -> dict:
    """The items every mapping holds with the same value (in the first's order), less the ``exclude`` keys."""
    first = mappings[0]
    return {k: v for k, v in first.items() if k not in exclude and all(k in m and _same(m[k], v) for m in mappings)}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def combination_text(combo: Mapping[str, Any]) -> str:
    """``recompute = 'full', zero = 3``: one combination of labels, as a spec writes them."""
    return ", ".join(f"{k} = {show_value(v)}" for k, v in combo.items())


def _arch_formulas(err: Errors, source: str, arch_name: Any, options: dict) -> tuple[FormulaSet, str]:
    """The formula set of an architecture, its sizes as defaults of the inputs left free."""
    for key in options:
        if key not in SPEC_OPTIONS:
            raise err(f"options.{key}", f"unknown option{did_you_mean(key, SPEC_OPTIONS)}; valid options: "
                                        f"{', '.join(SPEC_OPTIONS)}")
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
    return replace(fs, defaults=defaults, source=arch.source or fs.source), arch.family
