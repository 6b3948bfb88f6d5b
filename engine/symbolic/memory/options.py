"""The structural options of a memory/compute estimate, validated against the chosen memory model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.symbolic.formulas.base import OptionSpec
from engine.symbolic.memory import MEMORY_MODELS

PRECISIONS = ("fp32", "bf16-amp", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adam8bit", "sgd", "sgd_momentum", "adafactor", "none")
ATTENTIONS = ("eager", "sdpa", "flash")
RECOMPUTE = ("none", "selective", "full")
MODES = ("training", "inference")


@dataclass(frozen=True)
class MemoryOptions:
    """Structural choices of a memory/compute estimate (see ``OPTIONS``)."""

    mode: str = "training"
    memory_model: str = "pytorch"
    precision: str = "fp32"
    optimizer: str = "adamw"
    attention: str = "sdpa"
    recompute: str = "none"
    dropout: bool = False
    zero: int = 0
    sequence_parallel: bool = False
    quantized: bool = False
    causal_flops: str = "full"

    def with_options(self, **options: Any) -> "MemoryOptions":
        from engine.request.options import check_option

        for key, value in options.items():
            check_option(OPTIONS, key, value)
        new = replace(self, **options)
        problems = []
        if new.mode == "training":  # what the chosen model cannot express
            problems += MEMORY_MODELS[new.memory_model].refuses(new)
        if new.mode == "inference":
            for key, default in (("memory_model", "pytorch"), ("recompute", "none"), ("dropout", False),
                                 ("zero", 0), ("sequence_parallel", False)):
                if getattr(new, key) != default:
                    problems.append(f"{key} applies to training, not to mode inference (a prefill holds every "
                                    "layer's full weights and saves no activations)")
        if problems:
            raise ValueError("; ".join(problems))
        return new


OPTIONS: dict[str, OptionSpec] = {
    "mode": OptionSpec("mode", "training", MODES, "training step or inference (prefill + KV cache)"),
    "memory_model": OptionSpec("memory_model", "pytorch", tuple(sorted(MEMORY_MODELS)),
                               "activation model: Korthikanti et al., PyTorch/Hugging Face, or the seed article"),
    "precision": OptionSpec("precision", "fp32", PRECISIONS,
                            "fp32; bf16-amp (autocast, fp32 weights); bf16/fp16 (16-bit weights, fp32 master)"),
    "optimizer": OptionSpec("optimizer", "adamw", OPTIMIZERS, "optimizer whose states are kept"),
    "attention": OptionSpec("attention", "sdpa", ATTENTIONS, "eager softmax(QK^T), PyTorch SDPA, FlashAttention"),
    "recompute": OptionSpec("recompute", "none", RECOMPUTE, "activation recomputation"),
    "dropout": OptionSpec("dropout", False, (True, False), "dropout is on (its masks are saved)"),
    "zero": OptionSpec("zero", 0, (0, 1, 2, 3), "ZeRO stage: 1 shards optimizer states, 2 also gradients, "
                                                "3 (= FSDP full shard) also weights, over dp"),
    "sequence_parallel": OptionSpec("sequence_parallel", False, (True, False), "Megatron sequence parallelism"),
    "quantized": OptionSpec("quantized", False, (True, False),
                            "group-wise quantized weights: a scale and zero point per quant_group weights"),
    "causal_flops": OptionSpec("causal_flops", "full", ("full", "half"),
                               "attention FLOPs: full QK^T and AV (Narayanan, PaLM) or the causal half (Kaplan)",
                               flag="--causal"),
}
