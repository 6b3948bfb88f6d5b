"""The structural options of a memory/compute estimate, validated against the chosen memory model.

Their records (names, choices, defaults, meanings) are pure data in ``engine.options``; this module
checks a combination against the memory model it chooses."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.options import (ATTENTIONS, DEFAULT_PRECISION, MEMORY_OPTIONS, MODES, OFFLOADS, OPTIMIZERS,  # noqa: F401
                            PRECISION_ALIASES, PRECISIONS, RECOMPUTE)  # (read from here too, as before)
from engine.symbolic.memory.models import MEMORY_MODELS

@dataclass(frozen=True)
class MemoryOptions:
    """Structural choices of a memory/compute estimate (see ``OPTIONS``)."""

    mode: str = "training"
    memory_model: str = "pytorch"
    precision: str = DEFAULT_PRECISION
    optimizer: str = "adamw"
    attention: str = "sdpa"
    recompute: str = "none"
    dropout: bool = False
    zero: int = 0
    sequence_parallel: bool = False
    quantized: bool = False
    causal_flops: str = "full"
    offload: str = "none"
    finetune: str = "none"
    kv_layout: str = "latent"

    def with_options(self, **options: Any) -> "MemoryOptions":
        from engine.request.options import canonical_option, check_option

        for key, value in options.items():
            check_option(OPTIONS, key, value)
        options = {k: canonical_option(OPTIONS, k, v) for k, v in options.items()}
        new = replace(self, **options)
        problems = []
        if new.mode == "training":  # what the chosen model cannot express
            problems += MEMORY_MODELS[new.memory_model].refuses(new)
            # DeepSpeed: offload_optimizer is valid for ZeRO stages 1-3, offload_param only with stage 3
            if new.offload == "params" and new.zero != 3:
                problems.append(f"offload params needs zero 3 (ZeRO-Infinity offload_param / FSDP CPUOffload "
                                f"offload the parameter shards of ZeRO-3 / full sharding), got zero {new.zero}")
            elif new.offload == "optimizer" and new.zero == 0:
                problems.append("offload optimizer needs zero 1, 2 or 3 (ZeRO-Offload offloads each rank's "
                                "partition of the optimizer states), got zero 0")
        if new.precision == "fp8":  # TransformerEngine fp8 recipes under Megatron (states.py SRC_FP8)
            if new.mode != "training":
                problems.append("precision fp8 (TransformerEngine, Megatron) is modelled for training, not mode "
                                "inference")
            elif new.zero >= 3:
                problems.append("precision fp8 models Megatron's distributed optimizer (zero 1) or zero 2, not "
                                "zero 3 (TE's cached fp8 weight copies under full sharding are not modelled)")
        if new.finetune != "none":  # LoRA / QLoRA (engine/symbolic/memory/finetune.py)
            if new.mode == "inference":
                problems.append(f"finetune {new.finetune} applies to training, not to mode inference")
            if new.finetune == "qlora" and new.precision == "fp32":
                problems.append("finetune qlora needs a 16-bit compute precision (bf16-true, bf16-mixed, ...), "
                                "not fp32")
            if new.mode == "training" and (new.memory_model != "pytorch" or new.zero or new.offload != "none"):
                problems.append("finetune needs memory_model pytorch without zero or offload")
        if new.mode == "training" and new.kv_layout != "latent":
            problems.append(f"kv_layout {new.kv_layout} applies to mode inference (the KV cache of an MLA model)")
        if new.mode == "inference":
            for key, default in (("memory_model", "pytorch"), ("recompute", "none"), ("dropout", False),
                                 ("zero", 0), ("sequence_parallel", False), ("offload", "none")):
                if getattr(new, key) != default:
                    problems.append(f"{key} applies to training, not to mode inference (a prefill holds every "
                                    "layer's full weights and saves no activations)")
        if problems:
            raise ValueError("; ".join(problems))
        return new


OPTIONS = MEMORY_OPTIONS  # the records, pure data, live in engine.options (the parser reads them without sympy)
