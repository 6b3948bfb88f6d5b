"""The options' pure data: names, choices, defaults and meanings, in plain Python (no sympy, numpy or JAX).

The bottom floor of the options layer (issue 20): the command line builds its parser from these
records alone, so ``llm-sweep --help`` never loads sympy, and the sympy side reads the same records
(``engine.symbolic.memory`` re-exports ``OPTIONS``, ``PRECISIONS``, ...; ``engine.symbolic.formulas``
re-exports ``OptionSpec`` and ``show_value``). Each list is declared here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def show_value(value: Any, quote: bool = True) -> str:
    """A value as a spec writes it: TOML booleans true/false, strings quoted (unless ``quote`` is
    false), numbers and expressions as they print. The one formatter of option and fixed values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if quote else value
    return str(value)


@dataclass(frozen=True)
class OptionSpec:
    """A structural option of a formula set: it chooses which expressions are built."""

    name: str
    default: Any
    choices: tuple
    meaning: str
    flag: str | None = None  # command-line spelling when not --name-with-dashes (``options.flag_of``)
    aliases: tuple = ()  # (alias, canonical choice) pairs accepted everywhere and normalized on input


NUMERICS = ("exact", "fast")  # how a kernel computes (engine.request.numerics.Numerics): run --numerics
FORMATS = ("text", "latex", "markdown")  # what engine.symbolic.printing writes: formulas --format

# the training memory models, each a module of engine.symbolic.memory of the same name (its registry
# MEMORY_MODELS imports them in this order; the memory_model option lists them sorted)
MEMORY_MODEL_NAMES = (
    "seed",  # the seed article's formulas
    "korthikanti",  # Korthikanti et al. 2022 (tensor, sequence, pipeline parallelism)
    "pytorch",  # llm-sweep's model of Hugging Face training, calibrated on measured peaks
)

# weights / gradients / master copy / optimizer states / activations (engine/symbolic/memory/states.py)
PRECISIONS = ("fp32", "bf16-mixed", "fp16-mixed", "bf16-true", "fp16-true", "bf16", "fp16", "fp8")
# accepted on input and normalized to the canonical name: the old bf16-amp and Lightning's precision strings
PRECISION_ALIASES = (("bf16-amp", "bf16-mixed"), ("32-true", "fp32"), ("16-mixed", "fp16-mixed"),
                     ("16-true", "fp16-true"), ("transformer-engine", "fp8"), ("transformer-engine-float16", "fp8"))
OPTIMIZERS = ("adamw", "adam8bit", "paged_adamw", "paged_adamw_8bit", "sgd", "sgd_momentum", "adafactor", "none")
ATTENTIONS = ("eager", "sdpa", "flash")
RECOMPUTE = ("none", "selective", "full")
MODES = ("training", "inference")
OFFLOADS = ("none", "optimizer", "params")  # host (CPU) offload of model states (engine/symbolic/memory/states.py)
# The one default precision, training and inference alike, of every entry point: `memory`, `flops`, `time`,
# `plan`, a spec's [options] and engine.memory_options / MemoryOptions(). bf16 is mixed-precision training as
# Megatron (--bf16) and DeepSpeed (bf16) run it -- 16-bit weights and gradients, fp32 master weights and
# optimizer states -- and 16-bit weights in inference; README "Memory and compute" documents it.
DEFAULT_PRECISION = "bf16"


# the structural options of a memory/compute estimate (engine.symbolic.memory.MemoryOptions checks them)
MEMORY_OPTIONS: dict[str, OptionSpec] = {
    "mode": OptionSpec("mode", "training", MODES, "training step or inference (prefill + KV cache)"),
    "memory_model": OptionSpec("memory_model", "pytorch", tuple(sorted(MEMORY_MODEL_NAMES)),
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
