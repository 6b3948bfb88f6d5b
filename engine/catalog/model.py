"""Model: an architecture (preset, family or config.json) + options -> its formula set and counts.

    >>> from engine.catalog.model import architecture, param_counts
    >>> param_counts(architecture("llama-2-7b"))["total"]        # doctest: +SKIP
    6738415616
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import sympy
from pathlib import Path
from typing import Any

from engine.errors import SpecError
from engine.symbolic.formulas import architectures
from engine.catalog.families import FAMILIES, Architecture, from_hf_config, load_hf_config
from engine.symbolic.formulas.architectures import BREAKDOWN, Structure
from engine.symbolic.formulas.base import FormulaSet
from engine.catalog.presets import PRESETS
from engine.symbolic.symbols import SYMBOLS


def arch_names() -> list[str]:
    """Every name ``architecture`` accepts: presets, then families."""
    return sorted(PRESETS) + sorted(FAMILIES)


def architecture(name: str, options: dict[str, Any] | None = None) -> Architecture:
    """A preset (``llama-2-7b``), a family (``llama``: transformers' default sizes) or a config path.

    ``options`` change structural choices (e.g. ``{"tied_head": True}``).
    """
    if name in PRESETS:
        arch = from_hf_config(PRESETS[name].config, f"preset {name}")
        arch = Architecture(arch.family, arch.structure, arch.values, PRESETS[name].source, name)
    elif name in FAMILIES:
        arch = from_hf_config({"model_type": name}, f"family {name}")
        arch = Architecture(name, arch.structure, arch.values, FAMILIES[name].source, name)
    elif name.endswith(".json") or Path(name).is_file():
        arch = load_hf_config(name)
    else:
        raise SpecError("arch", name, f"unknown architecture; valid: {', '.join(arch_names())}, or a config.json path")
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
    """Exact ``{"total", "active", "breakdown": {embedding, positions, attention, mlp, norms, head, router,
    experts}}`` of an architecture; ``active`` is None for dense models."""
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
    from engine.symbolic.formulas import lora

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
    """``MemoryOptions`` from keyword options (SpecError naming the valid choices otherwise)."""
    from engine.symbolic.memory import MemoryOptions

    try:
        return MemoryOptions().with_options(**options)
    except ValueError as exc:
        raise SpecError("options", "", str(exc)) from None


@lru_cache(maxsize=256)
def estimate_formulas(family: str, structure: Structure, options) -> FormulaSet:
    """Architecture quantities plus memory and compute quantities for ``options`` (cached)."""
    from engine.symbolic.memory import extend

    try:
        return extend(formula_set(family, structure), structure, options)
    except ValueError as exc:
        raise SpecError(family, "options", str(exc)) from None


def _finetune_moments(arch: Architecture, options, r: Any, targets: Any) -> tuple:
    """The moments of a LoRA/QLoRA step (SpecError without a positive lora_rank or for unknown targets)."""
    from engine.symbolic.memory import finetune

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
    """``{"peak": int, "breakdown": {...}, "moment": str}`` in bytes per device; with ``offload`` also
    ``"host_peak"`` and ``"host": {weights, gradients, master, optimizer}`` (host bytes per device, summing to
    host_peak; the device's ``peak`` and breakdown hold only what stays on the device); for the pytorch
    model in training ``"attention_kernel"`` (eager, math, flash, efficient or cudnn: ``pytorch.attention_kernel``);
    with a paged optimizer ``"paged_optimizer"``: its states, in CUDA managed memory outside the device peak.

    ``values`` gives batch, seq_len and any other input (dp, tp, bits_kv, ...). The peak is the
    largest moment of the step (or the prefill); the breakdown is that moment's parts, each from
    its own formula, in whole bytes that sum to the peak (the rounding goes to the largest part).
    """
    from engine.symbolic.memory import moments

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
    if getattr(options, "offload", "none") != "none":  # host bytes per device, apart from the device's peak
        from engine.symbolic.memory.states import HOST_PARTS

        host = {k: fs.evaluate_exact(f"mem_host_{k}", given) for k in HOST_PARTS}
        out["host_peak"] = int(sympy.ceiling(sum(host.values())))
        out["host"] = {k: int(sympy.floor(v)) for k, v in host.items()}
        largest = max(out["host"], key=lambda k: out["host"][k])
        out["host"][largest] += out["host_peak"] - sum(out["host"].values())
    from engine.symbolic.memory.states import PAGED

    if options.optimizer in PAGED and options.mode == "training":  # states in CUDA managed memory, apart
        if getattr(options, "finetune", "none") != "none":
            from engine.symbolic.memory import finetune

            p = finetune.parts(arch.family, arch.structure, options, lora_targets)["paged_optimizer"]
            paged = fs.apply(fs.inline(sympy.sympify(p).subs({finetune.rank: lora_rank})), given)
        else:
            paged = fs.evaluate_exact("mem_paged_optimizer", given)
        out["paged_optimizer"] = int(sympy.ceiling(paged))
    if options.memory_model == "pytorch" and options.mode == "training":  # the kernel its attention term assumes
        from engine.symbolic.memory import pytorch

        out["attention_kernel"] = pytorch.attention_kernel(arch.structure, options,
                                                           lambda cond: fs.apply(fs.inline(cond), given))
    return out


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
    """FLOPs per token and per step (model and hardware), and training time when tokens are given."""
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

