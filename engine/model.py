"""Model: an architecture (preset, family or config.json) + options -> its formula set and counts.

    >>> from engine.model import architecture, param_counts
    >>> param_counts(architecture("llama-2-7b"))["total"]        # doctest: +SKIP
    6738415616
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import SpecError
from .formulas import architectures
from .formulas.architectures import BREAKDOWN, FAMILIES, Structure
from .formulas.base import FormulaSet
from .hf import HF_DEFAULTS, Architecture, from_hf_config, load_hf_config
from .presets import PRESETS


def arch_names() -> list[str]:
    """Every name ``architecture`` accepts: presets, then families."""
    return sorted(PRESETS) + sorted(FAMILIES)


def architecture(name: str, options: dict[str, Any] | None = None) -> Architecture:
    """A preset (``llama-2-7b``), a family (``llama``: transformers' default sizes) or a config path.

    ``options`` change structural choices (e.g. ``{"tied_head": True}``).
    """
    if name in PRESETS:
        arch = from_hf_config(PRESETS[name].config, f"preset {name}")
        arch = Architecture(arch.family, arch.structure, arch.values, PRESETS[name].source)
    elif name in FAMILIES:
        model_type = "gpt2" if name == "gpt3" else name
        arch = from_hf_config({"model_type": model_type}, f"family {name}")
        if name == "gpt3":
            arch.values["n_positions"] = 2048
        arch = Architecture(name, arch.structure, arch.values, architectures.FAMILY_SOURCES[name])
    elif name.endswith(".json") or Path(name).is_file():
        arch = load_hf_config(name)
    else:
        raise SpecError("--arch", name, f"unknown architecture; valid: {', '.join(arch_names())}, or a config.json path")
    if options:
        try:
            arch = Architecture(arch.family, arch.structure.with_options(**options), arch.values, arch.source)
        except ValueError as exc:
            raise SpecError("--option", ", ".join(options), str(exc)) from None
    return arch


@lru_cache(maxsize=256)
def formula_set(family: str, structure: Structure) -> FormulaSet:
    """The (cached) formula set of a family with a structure."""
    return architectures.build(family, structure)


def formulas_of(arch: Architecture) -> FormulaSet:
    return formula_set(arch.family, arch.structure)


def param_counts(arch: Architecture) -> dict[str, Any]:
    """Exact ``{"total", "active", "breakdown": {embedding, positions, attention, mlp, norms, head, router,
    experts}}`` of an architecture; ``active`` is None for dense models."""
    fs = formulas_of(arch)
    broken = fs.violations(arch.values)
    if broken:
        raise SpecError(arch.source, "", "; ".join(broken))
    value = lambda q: int(fs.evaluate(q, arch.values))  # noqa: E731
    breakdown = {k: value(f"params_{k}") for k in BREAKDOWN}
    total = value("params_total")
    return {"total": total, "active": value("params_active") if arch.structure.moe else None,
            "breakdown": breakdown}


def family_defaults() -> dict[str, dict]:
    return HF_DEFAULTS
