"""The structural options of a memory/compute estimate (``MemoryOptions``), each one field, and their rules.

A field's record (choices, meaning, aliases, source) is its ``option(...)`` metadata; ``MEMORY_OPTIONS`` (the
records the parser, specs and the JSON Schema read) derives from the fields. ``RULES`` are the combinations
refused, as data (``Rule``), checked in one place: ``MemoryOptions.with_options``. A memory model's own limits
are rules tagged with its name (its ``refuses`` reports them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from engine.options.precision import (DEFAULT_PRECISION, PRECISION_ALIASES, PRECISION_NAMES, PRECISIONS,
                                      precision_meaning)
from engine.options.registry import Not, Rule, broken_rules, check_value, option, specs_of
from engine.options.stacks import ATTENTION_LIBRARIES, ELEMENTWISE, FP8_RECIPES, STACK_NAMES, stack_overlap
from engine.options.engines import ENGINE_NAMES
from engine.options.stacks import stack as stack_record  # the field `stack` names a record

# the training memory models, each a module of engine.symbolic.memory of the same name (its registry
# MEMORY_MODELS imports them in this order; the memory_model option lists them sorted)
MEMORY_MODEL_NAMES = (
    "seed",  # the seed article's formulas
    "korthikanti",  # Korthikanti et al. 2022 (tensor, sequence, pipeline parallelism)
    "pytorch",  # llm-sweep's model of Hugging Face training, calibrated on measured peaks
)
OPTIMIZERS = ("adamw", "adam8bit", "paged_adamw", "paged_adamw_8bit", "sgd", "sgd_momentum", "adafactor", "none")
# the attention kernels (engine/options/stacks.py ATTENTION_LIBRARIES, with their meanings): eager softmax(QK^T)
# with the scores in memory, PyTorch SDPA's dispatch, and the fused kernels by library: memory is the same for every
# fused kernel (no s^2 scores); step time prices each at its measured rate
ATTENTIONS = tuple(ATTENTION_LIBRARIES)
FUSED_ATTENTIONS = tuple(a for a in ATTENTIONS if a not in ("eager", "sdpa"))
# the training stacks of the step-time model, one record each in engine/options/data/stacks.json (its defaults:
# attention kernel per device generation, which collectives overlap with compute, ...)
STACKS = STACK_NAMES
# the communications that can hide behind compute (``overlap``), by parallelism
OVERLAPS = ("dp", "dp_reduce", "dp_gather", "tp", "cp", "ep", "pp")
"""The overlap option's words: dp is dp_reduce and dp_gather together (the gradient reduction; the parameter
gathers, ZeRO's after the step and FSDP's prefetched per layer)."""
RECOMPUTE = ("none", "selective", "full")
MODES = ("training", "inference")
OFFLOADS = ("none", "optimizer", "params")  # host (CPU) offload of model states (engine/symbolic/memory/states.py)
# element types of the KV cache and of stored weights, with their bits (the symbols bits_kv and bits_weight)
DTYPE_BITS = MappingProxyType({"fp32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "int4": 4, "nvfp4": 4,
                               "mxfp4": 4})
KV_DTYPES = ("auto", *(d for d in DTYPE_BITS if not d.endswith("fp4")))  # a KV cache is not block-scaled fp4
WEIGHT_DTYPES = ("auto", "fp8", "int8", "int4", "nvfp4", "mxfp4")
GROUP_QUANTIZED = ("int8", "int4", "nvfp4", "mxfp4")  # weight_dtype values stored group-wise with scales
# the block of weights one scale covers and the scale's bits: NVFP4 one FP8 E4M3 scale per 16 (NVIDIA, Blackwell
# NVFP4), MXFP4 one E8M0 scale per 32 (OCP Microscaling Formats v1.0); GPTQ/AWQ an fp16 scale and zero per 128
QUANT_BLOCKS = MappingProxyType({"nvfp4": (16, 8), "mxfp4": (32, 8)})

SRC_ZERO = "Rajbhandari et al. 2020 (ZeRO) §3.1, §5; DeepSpeed zero_optimization.stage"
SRC_OFFLOAD = "DeepSpeed zero_optimization.offload_optimizer (stages 1-3) and offload_param (stage 3 only)"
SRC_PEFT = "peft LoraConfig; Dettmers et al. 2023 (QLoRA)"


@dataclass(frozen=True)
class MemoryOptions:
    """Structural choices of a memory/compute estimate; each field is one option (``MEMORY_OPTIONS``).

    Build one with ``MemoryOptions().with_options(name=value, ...)`` (or ``engine.memory_options``): values are
    checked against each option's choices, aliases normalized, and the rules between options (``RULES``) applied.

    Attributes:
        one per option, declared once below: each field's metadata holds its choices, default, meaning and
        source (``python -m engine.options --markdown`` prints them as a table; ``help`` shows the fields).
    """

    mode: str = option("training", MODES, "training step or inference (prefill + KV cache)")
    memory_model: str = option(
        "pytorch", tuple(sorted(MEMORY_MODEL_NAMES)),
        "activation model: Korthikanti et al., PyTorch/Hugging Face, or the seed article")
    precision: str = option(DEFAULT_PRECISION, PRECISION_NAMES, precision_meaning(), aliases=PRECISION_ALIASES,
                            source="engine/options/precision.py PRECISION_TABLE")
    optimizer: str = option(
        "adamw", OPTIMIZERS, "optimizer whose states are kept; paged_adamw / paged_adamw_8bit are bitsandbytes' "
        "PagedAdamW(8bit): states in CUDA managed memory, reported apart as paged_optimizer")
    attention: str = option(
        "sdpa", ATTENTIONS, "attention kernel: eager softmax(QK^T), PyTorch SDPA's dispatch, FlashAttention-2 "
        "(flash), -1, -3, cuDNN fused attention (Transformer Engine), Pallas splash (TPU); fused kernels keep no "
        "s^2 scores, and step time prices each at its library's measured rate",
        source="PyTorch scaled_dot_product_attention; Dao 2023; Shah et al. 2024; TE DotProductAttention")
    recompute: str = option("none", RECOMPUTE, "activation recomputation", source="Korthikanti et al. 2022 §5")
    dropout: bool = option(False, meaning="dropout is on (its masks are saved)")
    zero: int = option(0, (0, 1, 2, 3), "ZeRO stage: 1 shards optimizer states, 2 also gradients, 3 (= FSDP full "
                                        "shard) also weights, over dp (x cp in training)", source=SRC_ZERO)
    sequence_parallel: bool = option(False, meaning="Megatron sequence parallelism",
                                     source="Korthikanti et al. 2022 §4.2.2")
    quantized: bool = option(False, meaning="group-wise quantized weights: a scale and zero point per quant_group "
                                            "weights")
    stack: str = option(
        "megatron-core", STACKS, "training framework whose defaults step time takes (attention kernel per device, "
        "overlapped communication, gradient reduce dtype, fp8 recipe, pipeline sends, element-wise kernels); each "
        "field it prices can be given on its own",
        source="engine/options/data/stacks.json (a source per default)")
    overlap: str = option(
        "stack", OVERLAPS, "communication hidden behind compute: dp_reduce (gradient reduction), dp_gather "
        "(parameter gathers, FSDP prefetch), dp (both), tp, cp, ep, pp; stack = the stack's defaults",
        words=("stack", "none", "all"),
        source="Megatron-Core DistributedDataParallelConfig overlap_grad_reduce/overlap_param_gather; TE comm-GEMM "
               "overlap; FSDP prefetch")
    grad_reduce_dtype: str = option(
        "stack", ("stack", "fp32", "bf16"), "dtype of the data-parallel gradient reduction (step time): fp32 (Megatron's "
        "fp32 main gradients, FSDP's reduce_dtype fp32) or bf16; stack = the stack's default; fp32 training always "
        "reduces in fp32", source="Megatron-Core DistributedDataParallelConfig grad_reduce_in_fp32; FSDP2 "
        "MixedPrecisionPolicy reduce_dtype")
    fp8_recipe: str = option(
        "stack", ("stack", *FP8_RECIPES), "fp8 scaling (step time): delayed (an amax history), current (per-tensor amax "
        "read before each cast), blockwise or mxfp8 (per-block scales in the cast); stack = the stack's (delayed where "
        "it has none)", source="Transformer Engine recipes DelayedScaling, Float8CurrentScaling, Float8BlockScaling, "
                               "MXFP8BlockScaling; torchao float8 tensorwise")
    elementwise: str = option(
        "stack", ("stack", *ELEMENTWISE), "how norms, rotary embeddings and gated activations run (step time): fused "
        "(Transformer Engine / apex kernels, torch.compile, XLA) or eager (a chain of PyTorch ops each, every op "
        "reading and writing its tensors: torchtitan without compile, transformers' modules); stack = the stack's",
        source="torchtitan models/norms.py RMSNorm and apply_rotary_emb; Megatron-LM --no-rope-fusion, "
               "--no-bias-swiglu-fusion")
    engine: str = option(
        "vllm", ENGINE_NAMES, "serving engine whose defaults the serving model takes (mode inference): KV page size, "
        "the KV pool's share of memory, the step's token budget, the most running requests, whether a step mixes "
        "prefill chunks with decodes",
        source="engine/options/data/engines.json (a source per default)")
    serving: str = option(
        "aggregated", ("aggregated", "disaggregated"), "serving layout (mode inference): every replica prefills and "
        "decodes (continuous batching with chunked prefill), or disaggregated prefill and decode pools (xPyD: "
        "prefill_replicas prefill replicas hand each request's KV cache to dp decode replicas)",
        source="Zhong et al. 2024, DistServe; Patel et al. 2024, Splitwise; engine/symbolic/memory/serving.py")
    causal_flops: str = option("full", ("full", "half"),
                               "attention FLOPs: full QK^T and AV (Narayanan, PaLM) or the causal half (Kaplan)",
                               flag="--causal")
    offload: str = option(
        "none", OFFLOADS, "host (CPU) offload of model states, training: optimizer (ZeRO-Offload, zero 1-3: fp32 "
        "master, optimizer states and the fp32 gradient partition on the host, one layer's gradients in flight on "
        "the device) or params (ZeRO-Infinity offload_param / FSDP CPUOffload, zero 3 only: also the parameter "
        "shards, one layer gathered on the device)", source=SRC_OFFLOAD)
    finetune: str = option(
        "none", ("none", "lora", "qlora"), "parameter-efficient fine-tuning (peft semantics): lora = frozen 16-bit "
        "base + fp32 adapters; qlora = NF4 base with double quantization (bitsandbytes); needs --lora-rank",
        source=SRC_PEFT)
    kv_layout: str = option(
        "latent", ("latent", "expanded"), "how an MLA model's KV cache is stored (inference): the compressed latent, "
        "kv_lora_rank + qk_rope_head_dim per token and layer (transformers 5, vLLM, SGLang), or expanded per-head "
        "K and V (runtimes that cache decompressed keys and values)")
    kv_dtype: str = option(
        "auto", KV_DTYPES, "KV-cache element type (inference), the default of bits_kv (fp32 32, bf16/fp16 16, "
        "fp8/int8 8, int4 4 bits): auto = the weights' 16-bit type", source="vLLM --kv-cache-dtype")
    weight_dtype: str = option(
        "auto", WEIGHT_DTYPES, "stored weight type (inference), the default of bits_weight (fp8/int8 8, "
        "int4/nvfp4/mxfp4 4 bits; nvfp4 with an 8-bit scale per 16 weights, mxfp4 per 32): "
        "auto = the precision's; int8/int4 group-wise with a scale and zero point per quant_group weights (embedding "
        "and head stay 16-bit), fp8 one byte per weight", source="GPTQ, AWQ (group-wise)")

    @property
    def activation_bytes(self) -> int:
        """Bytes of an activation element under ``precision`` (4 in fp32, else 2: 16-bit or autocast)."""
        return PRECISIONS[self.precision].activations // 8

    @property
    def overlapped(self) -> frozenset[str]:
        """The communications (of ``OVERLAPS``, dp spelled out as dp_reduce and dp_gather) that hide behind
        compute: ``overlap``'s list, or with ``stack`` the stack's defaults (``engine.options.stacks``)."""
        if self.overlap == "stack":
            return stack_overlap(self.stack)
        if self.overlap == "none":
            return frozenset()
        named = frozenset(OVERLAPS) if self.overlap == "all" else frozenset(self.overlap.split(","))
        return named - {"dp"} | ({"dp_reduce", "dp_gather"} if "dp" in named else set())

    @property
    def grad_reduce_bits(self) -> int:
        """Bits of a gradient element on the wire of the data-parallel reduction: 32 in fp32 training, else
        ``grad_reduce_dtype``'s (with ``stack``, the stack's default, ``engine.options.stacks``)."""
        if self.precision == "fp32":
            return 32
        dtype = self.grad_reduce_dtype
        if dtype == "stack":
            dtype = stack_record(self.stack).grad_reduce_dtype
        return 32 if dtype == "fp32" else 16

    @property
    def fp8_scaling(self) -> str:
        """The fp8 recipe the step time prices: ``fp8_recipe``, or with ``stack`` the stack's (``delayed``, Transformer
        Engine's default, for a stack that records none)."""
        if self.fp8_recipe != "stack":
            return self.fp8_recipe
        return stack_record(self.stack).fp8_recipe or "delayed"

    @property
    def pipeline_sends(self) -> str:
        """What each tensor-parallel rank of a pipeline stage sends on (the stack's, ``PIPELINE_SENDS``):
        ``"partitioned"`` (1/tp of the activations) or ``"whole"``; sequence parallelism shards them by tp anyway."""
        return stack_record(self.stack).pipeline_sends

    @property
    def eager_elementwise(self) -> bool:
        """Whether the element-wise ops run eagerly: ``elementwise``, or with ``stack`` the stack's."""
        value = self.elementwise if self.elementwise != "stack" else stack_record(self.stack).elementwise
        return value == "eager"

    @property
    def group_quantized(self) -> bool:
        """Linear weights stored group-wise with a scale and zero point (``quantized``, or int weights)."""
        return self.quantized or self.weight_dtype in GROUP_QUANTIZED

    def with_options(self, **options: Any) -> "MemoryOptions":
        """A copy with ``options`` changed, aliases normalized, every rule checked.

        Parameters
        ----------
        **options
            Option names and values (``precision="bf16-mixed"``, ``zero=3``, ...).

        Returns
        -------
        MemoryOptions

        Raises
        ------
        ValueError
            An unknown option or value (naming the valid ones and the closest), or a combination a rule refuses
            (every broken rule's message, joined by "; ").
        """
        for key, value in options.items():
            check_value(MEMORY_OPTIONS, key, value)
        new = replace(self, **{k: MEMORY_OPTIONS[k].canonical(v) for k, v in options.items()})
        problems = broken_rules(RULES, new)
        if problems:
            raise ValueError("; ".join(problems))
        return new


MEMORY_OPTIONS = MappingProxyType(specs_of(MemoryOptions))

_NO_ACTIVATIONS = "(a prefill holds every layer's full weights and saves no activations)"
TRAINING_ONLY = ("memory_model", "recompute", "dropout", "zero", "sequence_parallel", "offload", "stack", "overlap",
                 "grad_reduce_dtype", "fp8_recipe", "elementwise")

RULES: tuple[Rule, ...] = (
    Rule({"mode": "training", "memory_model": "pytorch"}, refuses={"precision": "fp8"}, model="pytorch",
         message="precision fp8 needs memory_model korthikanti or seed (Hugging Face models run torch.nn.Linear, "
                 "not TransformerEngine's fp8 layers)", source="transformers modeling code: torch.nn.Linear"),
    Rule({"mode": "training", "memory_model": "pytorch"}, refuses={"sequence_parallel": True}, model="pytorch",
         message="sequence_parallel needs memory_model korthikanti (the pytorch model has no tensor parallelism)",
         source="engine/symbolic/memory/pytorch.py"),
    Rule({"mode": "training", "memory_model": "pytorch"}, refuses={"recompute": "selective"}, model="pytorch",
         message="recompute selective needs memory_model korthikanti (Hugging Face models checkpoint whole "
                 "layers: recompute full)", source="transformers gradient_checkpointing_enable"),
    Rule({"mode": "training", "offload": "params"}, requires={"zero": 3},
         message="offload params needs zero 3 (ZeRO-Infinity offload_param / FSDP CPUOffload offload the parameter "
                 "shards of ZeRO-3 / full sharding), got zero {zero}", source=SRC_OFFLOAD),
    Rule({"mode": "training", "offload": "optimizer"}, refuses={"zero": 0},
         message="offload optimizer needs zero 1, 2 or 3 (ZeRO-Offload offloads each rank's partition of the "
                 "optimizer states), got zero 0", source=SRC_OFFLOAD),
    Rule({"precision": "fp8"}, requires={"mode": "training"},
         message="precision fp8 (TransformerEngine, Megatron) is modelled for training, not mode inference",
         source="engine/symbolic/memory/states.py SRC_FP8"),
    # precision fp8 with zero 3 is modelled (states.py SRC_FP8_FSDP: fp8 copies of the gathered layer only)
    Rule({"fp8_recipe": Not("stack")}, requires={"precision": "fp8"},
         message="fp8_recipe {fp8_recipe} applies to precision fp8, got {precision}",
         source="Transformer Engine fp8 recipes"),
    Rule({"finetune": Not("none")}, refuses={"mode": "inference"},
         message="finetune {finetune} applies to training, not to mode inference", source=SRC_PEFT),
    Rule({"finetune": "qlora"}, refuses={"precision": "fp32"},
         message="finetune qlora needs a 16-bit compute precision (bf16-true, bf16-mixed, ...), not fp32",
         source=SRC_PEFT),
    Rule({"finetune": Not("none"), "mode": "training"},
         requires={"memory_model": "pytorch", "zero": 0, "offload": "none"},
         message="finetune needs memory_model pytorch without zero or offload",
         source="engine/symbolic/memory/finetune.py"),
    Rule({"mode": "training"}, requires={"engine": "vllm"},
         message="engine {engine} applies to mode inference (a serving engine's defaults)",
         source="engine/options/engines.py"),
    Rule({"mode": "training"}, requires={"serving": "aggregated"},
         message="serving {serving} applies to mode inference (the serving model's layout)",
         source="engine/symbolic/memory/serving.py"),
    Rule({"mode": "training"}, requires={"kv_layout": "latent"},
         message="kv_layout {kv_layout} applies to mode inference (the KV cache of an MLA model)",
         source="engine/symbolic/memory/inference.py"),
    *(Rule({"mode": "inference"}, requires={key: MEMORY_OPTIONS[key].default},
           message=f"{key} applies to training, not to mode inference {_NO_ACTIVATIONS}",
           source="engine/symbolic/memory/inference.py") for key in TRAINING_ONLY),
    *(Rule({"mode": "training"}, requires={key: "auto"},
           message=f"{key} {{{key}}} applies to mode inference (training keeps full-precision weights and no KV "
                   "cache)", source="engine/symbolic/memory/states.py") for key in ("kv_dtype", "weight_dtype")),
)


def model_refusals(model: str, options: MemoryOptions) -> list[str]:
    """Why memory model ``model`` cannot express ``options`` (its rules in ``RULES``; empty: it can)."""
    return broken_rules((r for r in RULES if r.model == model), options)
