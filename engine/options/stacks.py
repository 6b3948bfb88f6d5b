"""Training stacks: what a framework does by default (provisional: the overlapped communication only; the full
records with a source per default land with engine/options/data/stacks.json)."""

from __future__ import annotations

# which parallelisms' communication each stack overlaps with compute by default (provisional)
_OVERLAP = {"megatron-core": "dp", "nemo": "dp,tp", "megatron-bridge": "dp,tp", "megatron-lm-2021": "",
            "deepspeed": "dp", "torchtitan": "dp", "hf-trainer": "dp", "llm-foundry": "dp", "maxtext": "dp,tp",
            "paxml": "dp,tp"}


def stack_overlap(name: str) -> frozenset[str]:
    """The parallelisms whose communication stack ``name`` overlaps with compute."""
    return frozenset(p for p in _OVERLAP[name].split(",") if p)
