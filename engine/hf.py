"""Compatibility: the config.json importer now lives in ``engine.families`` (one ``Family`` record per
model type). This module re-exports its names so ``from engine.hf import ...`` keeps working."""

from __future__ import annotations

from types import MappingProxyType

from engine.families import FAMILIES, MODEL_TYPES, Architecture, from_hf_config, load_hf_config

# transformers' configuration defaults per model type (read-only; from the family records)
HF_DEFAULTS = MappingProxyType({t: f.hf_defaults for t, f in FAMILIES.items()})

__all__ = ["Architecture", "HF_DEFAULTS", "MODEL_TYPES", "from_hf_config", "load_hf_config"]
