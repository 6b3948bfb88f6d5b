"""Model: an architecture (preset, family, config.json or its content) + options -> its formula set and counts.

    >>> import engine
    >>> engine.param_counts(engine.architecture("llama-2-7b"))["total"]        # doctest: +SKIP
    6738415616

``architecture`` is the one way to get a model: the config.json readers of ``engine.catalog.families``
stay behind it.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import sympy

from engine.errors import SpecError
from engine.options import MemoryOptions
from engine.symbolic.formulas import architectures, lora
from engine.symbolic.memory import extend, finetune, moments, pytorch
from engine.symbolic.memory.states import HOST_PARTS, PAGED
from engine.catalog.families import FAMILIES, Architecture, from_hf_config, load_hf_config
from engine.symbolic.formulas.architectures import BREAKDOWN, Structure
from engine.symbolic.formulas.base import FormulaSet
from engine.catalog.presets import PRESETS
from engine.symbolic.symbols import SYMBOLS


def _arch_names() -> list[str]:
    """Every name ``architecture`` accepts: presets, then families."""
    return sorted(PRESETS) + sorted(FAMILIES)


def architecture(model: str | os.PathLike | Mapping[str, Any], options: dict[str, Any] | None = None) -> Architecture:
    """The architecture of a preset, a family, a config.json (or a model folder holding one) or its content.

    Parameters
    ----------
    model : str, path-like or mapping
        A preset (``"llama-2-7b"``), a family (``"llama"``: transformers' default sizes), the path of a
        config.json or of a model folder holding one (a Hugging Face snapshot), or a config.json's content
        (a mapping with ``model_type``; a multimodal wrapper of a supported text model is read as its text
        model).
    options : dict, optional
        Structural choices that change the formulas (e.g. ``{"tied_head": True}``).

    Returns
    -------
    Architecture
        Its family, structure, values (sizes) and source; ``engine.param_counts`` and the estimates take it.

    Raises
    ------
    engine.SpecError
        For an unknown name (naming the closest and every valid one), an unreadable or unsupported
        config.json (naming the file and field), or an unknown option.
    """
    if isinstance(model, Mapping):
        return _with_options(from_hf_config(model), options)
    name = os.fspath(model)
    if name in PRESETS:
        arch = from_hf_config(PRESETS[name].config, f"preset {name}")
        arch = Architecture(arch.family, arch.structure, arch.values, PRESETS[name].source, name)
    elif name in FAMILIES:
        arch = from_hf_config({"model_type": name}, f"family {name}")
        arch = Architecture(name, arch.structure, arch.values, FAMILIES[name].source, name)
    elif name.endswith(".json") or Path(name).is_file() or (Path(name) / "config.json").is_file():
        arch = load_hf_config(name)
    else:
        close = difflib.get_close_matches(name, _arch_names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SpecError("arch", name, f"unknown architecture; {hint}valid: {', '.join(_arch_names())}, or a "
                                      "config.json path")
    return _with_options(arch, options)


def config_architecture(path: str, options: dict[str, Any] | None = None) -> Architecture:
    """The architecture of a local config.json or of a model folder holding one -- never a preset or family
    of the same name (``--hf-config gpt2`` with no such file is refused, not answered for the preset)."""
    if not Path(path).exists():
        raise SpecError("hf_config", str(path), "no such file or folder; give a config.json or a model folder "
                                                "holding one (a preset or family name goes with --arch)")
    if Path(path).is_dir() and not (Path(path) / "config.json").is_file():
        raise SpecError("hf_config", str(path), "a folder without config.json; give a config.json or the model "
                                                "folder that holds it")
    return _with_options(load_hf_config(path), options)


def _with_options(arch: Architecture, options: dict[str, Any] | None) -> Architecture:
    if options:
        try:
            arch = Architecture(arch.family, arch.structure.with_options(**options), arch.values, arch.source,
                                arch.name)
        except ValueError as exc:
            raise SpecError("structure", ", ".join(options), str(exc)) from None
    return arch


@lru_cache(maxsize=256)
def formula_set(family: str, structure: Structure) -> FormulaSet:
    """The (cached) formula set of a family with a structure."""
    record = FAMILIES[family]
    return architectures.build(family, structure, record.source, d_ff_default=record.d_ff_default)


def formulas_of(arch: Architecture) -> FormulaSet:
    return formula_set(arch.family, arch.structure)


def param_counts(arch: Architecture) -> dict[str, Any]:
    """The exact parameter counts of an architecture.

    Parameters
    ----------
    arch : Architecture
        From ``engine.architecture``.

    Returns
    -------
    dict
        ``{"total", "active", "breakdown": {embedding, positions, attention, mlp, norms, head, router,
        experts}}`` (ints); ``active`` is None for dense models; ``"mtp"`` where the model has
        multi-token-prediction layers (not in the total).

    Raises
    ------
    engine.SpecError
        When the sizes break a validity condition or leave an input without a value.
    """
    fs = formulas_of(arch)
    broken = fs.violations(arch.values)
    if broken:
        raise SpecError(arch.label, "", "; ".join(broken))
    missing = fs.required_inputs(["params_total"], set(arch.values))
    if missing:
        raise SpecError(arch.label, "", f"needs {', '.join(missing)}, which the configuration does not give "
                                        "(e.g. moe = true without expert counts)")
    value = lambda q: int(fs.evaluate(q, arch.values))  # noqa: E731
    breakdown = {k: value(f"params_{k}") for k in BREAKDOWN}
    total = value("params_total")
    # active parameters need top_k (DeepSeek-V2's default config leaves num_experts_per_tok unset: None)
    routed = arch.structure.moe and not fs.required_inputs(["params_active"], set(arch.values))
    out = {"total": total, "active": value("params_active") if routed else None, "breakdown": breakdown}
    if "params_mtp" in fs.quantities:  # built by no transformers model: reported apart, not in the total
        out["mtp"] = value("params_mtp")
    return out


def lora_counts(arch: Architecture, rank: int, targets: Any = None) -> dict[str, Any]:
    """Trainable parameters of a LoRA adapter with peft semantics (``engine.symbolic.formulas.lora``).

    ``targets``: None (peft's defaults for the model type), ``"all-linear"``, or names (a list or a
    comma list). Returns ``{"rank", "targets", "trainable", "trainable_per_layer", "total_with_adapters",
    "per_target": {name: count}}``; ``total_with_adapters`` is the base model plus the adapters (peft's
    ``get_nb_trainable_parameters()[1]``). SpecError for a bad rank or an unknown target.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
        raise SpecError("lora_rank", str(rank), "must be a positive integer")
    try:
        exprs = lora.lora_trainable(arch.family, arch.structure, targets, rank)
    except ValueError as exc:
        raise SpecError(arch.label, "lora_targets", str(exc)) from None
    base = param_counts(arch)
    fs = formulas_of(arch)
    value = lambda e: int(fs.apply(sympy.sympify(e), arch.values))  # noqa: E731
    per_target = {k: value(v) for k, v in exprs["per_target"].items()}
    trainable = value(exprs["total"])
    return {"rank": rank, "targets": list(exprs["targets"]), "trainable": trainable,
            "trainable_per_layer": value(exprs["per_layer"]), "total_with_adapters": base["total"] + trainable,
            "per_target": per_target, "source": lora.PEFT_SOURCE}


def memory_options(**options: Any):
    """The options of a memory estimate, checked.

    Parameters
    ----------
    **options
        Memory options by name (``optimizer="adamw"``, ``recompute="full"``, ``zero=3``, ...; ``engine.MemoryOptions``
        lists them); the others keep their defaults.

    Returns
    -------
    MemoryOptions

    Raises
    ------
    engine.SpecError
        For an unknown option or value, naming the valid choices.
    """
    try:
        return MemoryOptions().with_options(**options)
    except ValueError as exc:
        raise SpecError("options", "", str(exc)) from None


@lru_cache(maxsize=256)
def estimate_formulas(family: str, structure: Structure, options) -> FormulaSet:
    """Architecture quantities plus memory and compute quantities for ``options`` (cached)."""
    try:
        return extend(formula_set(family, structure), structure, options)
    except ValueError as exc:
        raise SpecError(family, "options", str(exc)) from None


def _finetune_moments(arch: Architecture, options, r: Any, targets: Any) -> tuple:
    """The moments of a LoRA/QLoRA step (SpecError without a positive lora_rank or for unknown targets)."""
    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise SpecError("lora_rank", str(r), f"finetune {options.finetune} needs a positive LoRA rank (--lora-rank R)")
    try:
        ms = finetune.moments(arch.family, arch.structure, options, targets)
    except ValueError as exc:
        raise SpecError(arch.label, "lora_targets", str(exc)) from None
    sub = {finetune.rank: r}
    return tuple(replace(m, parts={k: sympy.sympify(v).subs(sub) for k, v in m.parts.items()}) for m in ms)


def memory_estimate(arch: Architecture, options, values: dict[str, Any], lora_rank: Any = None,
                    lora_targets: Any = None) -> dict[str, Any]:
    """Device memory of one training or inference step, in bytes per device.

    The peak is the largest moment of the step (or the prefill); the breakdown is that moment's parts,
    each from its own formula, in whole bytes that sum to the peak (the rounding goes to the largest part).

    Parameters
    ----------
    arch : Architecture
        From ``engine.architecture``.
    options : MemoryOptions
        From ``engine.memory_options``.
    values : dict
        ``batch``, ``seq_len`` and any other input (``dp``, ``tp``, ``bits_kv``, ...).
    lora_rank, lora_targets : optional
        The adapter of a LoRA/QLoRA ``finetune``: its rank, and None (peft's defaults), ``"all-linear"`` or names.

    Returns
    -------
    dict
        ``{"peak": int, "breakdown": {...}, "moment": str}``; with ``offload`` also ``"host_peak"`` and
        ``"host": {weights, gradients, master, optimizer}`` (host bytes per device; the device's peak holds only
        what stays on it); for the pytorch model in training ``"attention_kernel"``; with a paged optimizer
        ``"paged_optimizer"`` (its states, in CUDA managed memory outside the device peak).

    Raises
    ------
    engine.SpecError
        When an input is missing or breaks a validity condition, or the options do not apply to the model.
    """
    fs = estimate_formulas(arch.family, arch.structure, options)
    if "mem_peak" in fs.absent:
        raise SpecError(arch.label, "options", fs.absent["mem_peak"])
    given = {**arch.values, **values}
    steps = moments(arch.structure, options)
    if getattr(options, "finetune", "none") != "none":  # LoRA / QLoRA: engine/symbolic/memory/finetune.py
        steps = _finetune_moments(arch, options, lora_rank, lora_targets)
    _check(arch, fs, given, [m.total for m in steps])  # not mem_peak: inlining its Max compares the moments
    parts = {m.name: {k: fs.apply(fs.inline(v), given) for k, v in m.parts.items()} for m in steps}
    totals = {name: sum(p.values()) for name, p in parts.items()}
    moment = max(totals, key=lambda k: totals[k])  # the first of equal moments
    total = int(sympy.ceiling(totals[moment]))
    breakdown = {k: int(sympy.floor(v)) for k, v in parts[moment].items()}
    largest = max(breakdown, key=lambda k: breakdown[k])
    breakdown[largest] += total - sum(breakdown.values())
    out = {"peak": total, "moment": moment, "breakdown": breakdown}
    _add_outside(out, arch, fs, options, given, lora_rank, lora_targets)
    return out


def _add_outside(out: dict, arch: Architecture, fs: FormulaSet, options, given: dict, lora_rank: Any,
                 lora_targets: Any) -> None:
    """What a memory estimate reports beside the device's peak: host bytes of an offload, a paged optimizer's
    states, the attention kernel the pytorch model assumes."""
    if getattr(options, "offload", "none") != "none":  # host bytes per device, apart from the device's peak
        host = {k: fs.evaluate_exact(f"mem_host_{k}", given) for k in HOST_PARTS}
        out["host_peak"] = int(sympy.ceiling(sum(host.values())))
        out["host"] = {k: int(sympy.floor(v)) for k, v in host.items()}
        largest = max(out["host"], key=lambda k: out["host"][k])
        out["host"][largest] += out["host_peak"] - sum(out["host"].values())
    if options.optimizer in PAGED and options.mode == "training":  # states in CUDA managed memory, apart
        if getattr(options, "finetune", "none") != "none":
            p = finetune.parts(arch.family, arch.structure, options, lora_targets)["paged_optimizer"]
            paged = fs.apply(fs.inline(sympy.sympify(p).subs({finetune.rank: lora_rank})), given)
        else:
            paged = fs.evaluate_exact("mem_paged_optimizer", given)
        out["paged_optimizer"] = int(sympy.ceiling(paged))
    if options.memory_model == "pytorch" and options.mode == "training":  # the kernel its attention term assumes
        out["attention_kernel"] = pytorch.attention_kernel(arch.structure, options,
                                                           lambda cond: fs.apply(fs.inline(cond), given))


def _check(arch: Architecture, fs: FormulaSet, given: dict, needed: list) -> None:
    """SpecError when ``given`` breaks a validity condition or leaves an input of ``needed`` (quantity
    names or expressions over quantities) without a value or a default."""
    broken = fs.violations(given)
    if broken:
        raise SpecError(arch.label, "", "; ".join(broken))
    free = set()
    for x in needed:
        expr = fs.apply(fs.expanded(x) if isinstance(x, str) else fs.inline(x), set(given))
        free |= {s.name for s in expr.free_symbols} - set(given)
    missing = [n for n in SYMBOLS if n in free]
    if missing:
        hint = " (e.g. --batch, --seq-len)" if set(missing) & {"batch", "seq_len"} else \
            " (the configuration does not give them)"
        raise SpecError(arch.label, "", f"needs {', '.join(missing)}{hint}")


def flops_estimate(arch: Architecture, options, values: dict[str, Any]) -> dict[str, Any]:
    """FLOPs per token and per step (model and hardware), and training time when tokens are given.

    Parameters
    ----------
    arch : Architecture
        From ``engine.architecture``.
    options : MemoryOptions
        From ``engine.memory_options`` (recompute decides the hardware FLOPs).
    values : dict
        ``batch``, ``seq_len`` and any other input; with ``tokens`` and ``peak_flops`` the training time too.

    Returns
    -------
    dict
        ``flops_forward_token``, ``flops_token``, ``hardware_flops_token``, ``flops_step``, ``flops_palm_token``
        (floats); Narayanan et al.'s step counts for the dense models they cover; ``train_seconds`` with tokens.

    Raises
    ------
    engine.SpecError
        When an input is missing or breaks a validity condition.
    """
    fs = estimate_formulas(arch.family, arch.structure, options)
    given = {**arch.values, **values}
    _check(arch, fs, given, ["flops_step"])
    ev = lambda q: fs.evaluate_exact(q, given)  # noqa: E731
    out = {k: float(ev(k)) for k in ("flops_forward_token", "flops_token", "hardware_flops_token", "flops_step",
                                     "flops_palm_token")}
    if not arch.structure.moe and FAMILIES[arch.family].narayanan:
        out["flops_narayanan_step"] = float(ev("flops_narayanan_step"))
        out["flops_narayanan_recompute_step"] = float(ev("flops_narayanan_recompute_step"))
    if "tokens" in values and "peak_flops" in values:
        out["train_seconds"] = float(ev("train_seconds"))
    return out

