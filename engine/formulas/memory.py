"""Memory and compute formulas: moved to ``engine/memory/`` (one module per memory model); kept so imports work."""

from __future__ import annotations

from engine.memory import MEMORY_MODELS, OPTIONS, PRECISIONS, MemoryOptions, extend
from engine.memory.options import ATTENTIONS, MODES, OPTIMIZERS, RECOMPUTE
from engine.memory.states import OPTIMIZER_STATES, PRECISION_BITS

__all__ = ["ATTENTIONS", "MEMORY_MODELS", "MODES", "OPTIMIZERS", "OPTIMIZER_STATES", "OPTIONS", "PRECISIONS",
           "PRECISION_BITS", "RECOMPUTE", "MemoryOptions", "extend"]
