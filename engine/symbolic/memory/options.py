"""The structural options of a memory/compute estimate, validated against the chosen memory model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.symbolic.formulas.base import OptionSpec
from engine.symbolic.memory import MEMORY_MODELS

# weights / gradients / master copy / optimizer states / activations (engine/symbolic/memory/states.py)
PRECISIONS = ("fp32", "bf16-mixed", "fp16-mixed", "bf16-true", "fp16-true", "bf16", "fp16", "fp8")
# accepted on input and normalized to the canonical name: the old bf16-amp and Lightning's precision strings
PRECISION_ALIASES = (("bf16-amp", "bf16-mixed"), ("32-true", "fp32"), ("16-mixed", "fp16-mixed"),
                     ("16-true", "fp16-true"), ("transformer-engine", "fp8"), ("transformer-engine-float16", "fp8"))
OPTIMIZERS = ("adamw", "adam8bit", "paged_adamw", "paged_adamw_8bit", "sgd", "sgd_momentum", "adafactor", "none")
ATTENTIONS = ("eager", "sdpa", "flash")
RECOMPUTE = ("none", "selective", "full")
MODES = ("training", "inference")
OFFLOADS = ("none", "optimizer", "params")  # host (CPU) offload of model states (states.py)
# The one default precision, training and inference alike, of every entry point: `memory`, `flops`, `time`,
# `plan`, a spec's [options] and engine.memory_options / MemoryOptions(). bf16 is mixed-precision training as
# Megatron (--bf16) and DeepSpeed (bf16) run it -- 16-bit weights and gradients, fp32 master weights and
# optimizer states -- and 16-bit weights in inference; README "Memory and compute" documents it.
DEFAULT_PRECISION = "bf16"


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


OPTIONS: dict[str, OptionSpec] = {
    "mode": OptionSpec("mode", "training", MODES, "training step or inference (prefill + KV cache)"),
    "memory_model": OptionSpec("memory_model", "pytorch", tuple(sorted(MEMORY_MODELS)),
                               "activation model: Korthikanti et al., PyTorch/Hugging Face, or the seed article"),
    "precision": OptionSpec("precision", DEFAULT_PRECISION, PRECISIONS,
                            "fp32 (Lightning 32-true): fp32 everywhere; bf16-mixed/fp16-mixed (torch.autocast, "
                            "Lightning bf16-mixed/16-mixed): fp32 weights, grads and optimizer states, no master, "
                            "16-bit activations (fp16-mixed's GradScaler state is negligible); bf16-true/fp16-true "
                            "(model.to(torch.bfloat16) + torch.optim.AdamW, Lightning bf16-true/16-true): weights, "
                            "grads and optimizer states 16-bit, no master; bf16/fp16 (DeepSpeed bf16, Megatron "
                            "--bf16): 16-bit weights and grads, fp32 master and optimizer states (Megatron also "
                            "keeps an fp32 main-grad buffer, not counted); fp8 (Lightning transformer-engine, "
                            "Megatron --fp8-format with TransformerEngine): bf16's states plus TE's cached fp8 copy and fp8 transpose of every "
                            "linear weight and the delayed-scaling amax histories; korthikanti saves the linear "
                            "layers' inputs in fp8",
                            aliases=PRECISION_ALIASES),
    "optimizer": OptionSpec("optimizer", "adamw", OPTIMIZERS,
                            "optimizer whose states are kept; paged_adamw / paged_adamw_8bit are bitsandbytes' "
                            "PagedAdamW(8bit): states in CUDA managed memory, reported apart as paged_optimizer"),
    "attention": OptionSpec("attention", "sdpa", ATTENTIONS, "eager softmax(QK^T), PyTorch SDPA, FlashAttention"),
    "recompute": OptionSpec("recompute", "none", RECOMPUTE, "activation recomputation"),
    "dropout": OptionSpec("dropout", False, (True, False), "dropout is on (its masks are saved)"),
    "zero": OptionSpec("zero", 0, (0, 1, 2, 3), "ZeRO stage: 1 shards optimizer states, 2 also gradients, "
                                                "3 (= FSDP full shard) also weights, over dp"),
    "sequence_parallel": OptionSpec("sequence_parallel", False, (True, False), "Megatron sequence parallelism"),
    "quantized": OptionSpec("quantized", False, (True, False),
                            "group-wise quantized weights: a scale and zero point per quant_group weights"),
    "finetune": OptionSpec("finetune", "none", ("none", "lora", "qlora"),
                           "parameter-efficient fine-tuning (peft semantics): lora = frozen 16-bit base + fp32 "
                           "adapters; qlora = NF4 base with double quantization (bitsandbytes); needs --lora-rank"),
    "kv_layout": OptionSpec("kv_layout", "latent", ("latent", "expanded"),
                            "how an MLA model's KV cache is stored (inference): the compressed latent, kv_lora_rank + "
                            "qk_rope_head_dim per token and layer (transformers 5, vLLM, SGLang), or expanded per-head "
                            "K and V (runtimes that cache decompressed keys and values)"),
    "causal_flops": OptionSpec("causal_flops", "full", ("full", "half"),
                               "attention FLOPs: full QK^T and AV (Narayanan, PaLM) or the causal half (Kaplan)",
                               flag="--causal"),
    "offload": OptionSpec("offload", "none", OFFLOADS,
                          "host (CPU) offload of model states, training: optimizer (ZeRO-Offload, zero 1-3: fp32 "
                          "master, optimizer states and the fp32 gradient partition on the host, one layer's "
                          "gradients in flight on the device) or params (ZeRO-Infinity offload_param / FSDP "
                          "CPUOffload, zero 3 only: also the parameter shards, one layer gathered on the device)"),
}
