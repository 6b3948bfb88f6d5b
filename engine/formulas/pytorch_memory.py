"""The PyTorch memory model: moved to ``engine/memory/pytorch.py`` (prefill working memory to
``engine/memory/inference.py``); kept so imports work."""

from __future__ import annotations

from engine.memory.inference import prefill_working
from engine.memory.pytorch import SRC, block_kind, checkpoint_recompute, largest_matrix, optimizer_step_extra

__all__ = ["SRC", "block_kind", "checkpoint_recompute", "largest_matrix", "optimizer_step_extra", "prefill_working"]
