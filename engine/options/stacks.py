"""Training stacks: what a framework does by default, as data.

A stack (``megatron-core``, ``torchtitan``, ...) fixes the choices a step-time model otherwise has to
be told: which attention kernel library runs on each device generation, which communications are
overlapped with compute, the dtype of the gradient reduction, the pipeline schedule, the fp8 recipe,
whether tensor parallelism shards along the sequence, how pipeline stages send their activations and
whether element-wise ops run fused or eager. The records are data,
``engine/options/data/stacks.json``, each field with the source of its default (repository@commit
and file, or paper); ``stack(name)`` is one lookup in them.

Pure Python and json: importing this module loads neither sympy nor jax.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from engine.errors import did_you_mean, read_package_json

DATA = "data/stacks.json"  # inside the engine.options package

ATTENTION_LIBRARIES: Mapping[str, str] = MappingProxyType({
    "eager": "unfused softmax(QK^T): the score matrix is materialized (a fused softmax kernel may run on it)",
    "sdpa": "PyTorch scaled_dot_product_attention dispatch (FlashAttention-2 for causal bf16 without a mask, "
            "the memory-efficient kernel with a mask)",
    "flash1": "FlashAttention v1 (CUDA or its Triton port)",
    "flash": "FlashAttention-2",
    "flash3": "FlashAttention-3 (Hopper)",
    "cudnn": "cuDNN fused (flash) attention, as Transformer Engine's FusedAttention runs it",
    "splash": "Pallas splash/flash attention on TPU",
})
"""The attention kernel libraries a stack's ``attention`` may name, each with its meaning."""

GENERATIONS = ("sm80", "sm90", "sm100", "tpu")
"""The device generations a stack's ``attention`` is keyed by."""

OVERLAP_NAMES: Mapping[str, str] = MappingProxyType({
    "dp_reduce": "data-parallel gradient reduce-scatter/all-reduce overlapped with the backward pass",
    "dp_gather": "ZeRO/distributed-optimizer parameter all-gather overlapped with the forward pass",
    "fsdp_prefetch": "FSDP all-gather of the next layer's parameters prefetched during the current layer",
    "tp": "tensor-parallel all-gather/reduce-scatter overlapped with the GEMMs (TE userbuffers, async TP)",
    "cp": "context-parallel ring exchange of KV chunks overlapped with attention compute",
    "ep": "expert-parallel all-to-all overlapped with compute",
    "pp": "pipeline point-to-point sends/receives overlapped with compute",
})
"""The communications a stack may overlap with compute, each with its meaning (``overlap``)."""

GRAD_REDUCE_DTYPES = ("fp32", "bf16")
PIPELINE_SCHEDULES = ("1f1b", "interleaved", "gpipe", "none")
FP8_RECIPES = ("delayed", "current", "blockwise", "mxfp8")
PIPELINE_SENDS = ("partitioned", "whole")
"""How a stage sends its activations on without sequence parallelism: each tensor-parallel rank 1/tp of them
(the receiver all-gathers them over the scale-up link), or every rank all of them."""
ELEMENTWISE = ("fused", "eager")
"""How a stack runs its norms, rotary embeddings and gated activations: fused kernels (Transformer Engine, apex,
torch.compile, XLA fusion) or eager PyTorch ops, each a kernel that reads and writes its tensors."""
FIELDS = ("attention", "overlap", "grad_reduce_dtype", "pipeline_schedule", "fp8_recipe", "sequence_parallel",
          "pipeline_sends", "elementwise")
"""The fields of a stack record; each is ``{"value": ..., "source": "..."}`` in the JSON."""


@dataclass(frozen=True)
class Stack:
    """One training stack's defaults.

    Parameters
    ----------
    name : str
        The stack's name (the CLI value, ``"megatron-core"``).
    description : str
        What the stack is, in a sentence.
    attention : Mapping
        The attention library (a key of ``ATTENTION_LIBRARIES``) per generation in ``GENERATIONS``;
        None where the stack does not run on that generation.
    overlap : frozenset of str
        The communications overlapped with compute by default on GPUs (names in ``OVERLAP_NAMES``); each
        applies only when its parallelism is in use.
    tpu_overlap : frozenset of str
        The same on TPUs (``overlap`` unless the record gives ``{"gpu": [...], "tpu": [...]}``: XLA's TPU
        flags are not its GPU flags).
    grad_reduce_dtype : str
        ``"fp32"`` or ``"bf16"``: the dtype of the data-parallel gradient reduction.
    pipeline_schedule : str
        ``"1f1b"``, ``"interleaved"``, ``"gpipe"`` or ``"none"``: the schedule with pipeline parallelism on.
    fp8_recipe : str or None
        ``"delayed"``, ``"current"``, ``"blockwise"``, ``"mxfp8"``, or None when the stack has no default fp8 path.
    sequence_parallel : bool
        Whether tensor parallelism also shards norms and dropout along the sequence by default.
    pipeline_sends : str
        ``"partitioned"`` or ``"whole"`` (``PIPELINE_SENDS``): what each tensor-parallel rank of a pipeline stage
        sends the next when the activations are not sequence-parallel shards already.
    elementwise : str
        ``"fused"`` or ``"eager"`` (``ELEMENTWISE``): how its norms, rotary embeddings and gated activations run.
    version : str
        The repositories and commits (or paper) the defaults were read from.
    sources : Mapping
        Field name -> where its default comes from (``"assumed: ..."`` where it was not checked).
    """

    name: str
    description: str
    attention: Mapping[str, str | None]
    overlap: frozenset
    tpu_overlap: frozenset
    grad_reduce_dtype: str
    pipeline_schedule: str
    fp8_recipe: str | None
    sequence_parallel: bool
    pipeline_sends: str
    elementwise: str
    version: str
    sources: Mapping[str, str]

    def __hash__(self) -> int:
        return hash(self.name)

    def attention_for(self, device_name: str) -> str:
        """The attention library this stack runs on a device of the hardware catalog.

        The generation is read from the device name: ``a100*``/``a800*`` -> sm80; ``h100*``, ``h200*``,
        ``h800*``, ``h20*`` -> sm90; ``b200*``, ``gb200*``, ``b300*``, ``gb300*`` -> sm100; ``tpu*``
        (and the bare ``v4``/``v5e``/``v5p`` aliases) -> tpu. A V100 (sm70) has neither FlashAttention
        nor cuDNN fused attention: it gets ``"sdpa"`` when the stack's sm80 choice is SDPA (which then
        dispatches to the memory-efficient kernel) and ``"eager"`` otherwise. Any other device (MI250X,
        MI300X, L40S, RTX 4090, a custom device) gets the stack's sm80 choice: the FlashAttention-2
        class of kernel that ROCm and Ada builds of these stacks run.

        Parameters
        ----------
        device_name : str
            The device's catalog name or alias (``"h100-sxm"``, ``"tpu-v5p"``, ``"mi300x"``).

        Returns
        -------
        str
            A key of ``ATTENTION_LIBRARIES``.

        Raises
        ------
        ValueError
            The stack does not run on that device's generation (a GPU-only stack on a TPU).
        """
        generation = device_generation(device_name)
        if generation == "sm70":
            return "sdpa" if self.attention["sm80"] == "sdpa" else "eager"
        library = self.attention[generation or "sm80"]
        if library is None:
            raise ValueError(f"stack {self.name!r} does not run on {device_name!r} ({generation}); "
                             f"it runs on {', '.join(g for g in GENERATIONS if self.attention[g])}")
        return library


def device_generation(device_name: str) -> str | None:
    """The generation of a device name: ``"sm70"``, ``"sm80"``, ``"sm90"``, ``"sm100"``, ``"tpu"``, or None.

    Parameters
    ----------
    device_name : str
        A hardware catalog name or alias (case-insensitive).

    Returns
    -------
    str or None
        None for a device of no listed generation (AMD, Ada, a custom device).
    """
    name = str(device_name).strip().lower()
    prefixes = (("sm70", ("v100",)), ("sm80", ("a100", "a800")), ("sm90", ("h100", "h200", "h800", "h20")),
                ("sm100", ("b200", "gb200", "b300", "gb300")), ("tpu", ("tpu", "v4", "v5e", "v5p", "v5lite", "v6e")))
    for generation, starts in prefixes:
        if name.startswith(starts):
            return generation
    return None


def parse_overlap(text: str) -> frozenset:
    """The overlap set a flag's text names: ``"dp_reduce,tp"``, ``"none"`` (empty) or ``"all"``.

    Parameters
    ----------
    text : str
        Comma-separated names of ``OVERLAP_NAMES`` (spaces ignored), or ``"none"``/``""``, or ``"all"``.

    Returns
    -------
    frozenset of str

    Raises
    ------
    ValueError
        A name that is not in ``OVERLAP_NAMES``, with the valid names.
    """
    names = [part.strip().lower() for part in str(text).split(",") if part.strip()]
    if names in ([], ["none"]):
        return frozenset()
    if names == ["all"]:
        return frozenset(OVERLAP_NAMES)
    for name in names:
        if name not in OVERLAP_NAMES:
            raise ValueError(f"unknown overlap {name!r}; valid: {', '.join(OVERLAP_NAMES)}, or none, all"
                             f"{did_you_mean(name, OVERLAP_NAMES)}")
    return frozenset(names)


def format_overlap(overlap: frozenset) -> str:
    """The text ``parse_overlap`` reads back to ``overlap`` (names in ``OVERLAP_NAMES`` order, or ``"none"``)."""
    return ",".join(name for name in OVERLAP_NAMES if name in overlap) or "none"


def _check(name: str, record: Mapping[str, Any]) -> None:
    """Refuse a record whose fields are missing, unsourced or outside their vocabularies (a packaging fault)."""
    where = f"{DATA}: stack {name!r}"
    for key in ("description", "version"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ValueError(f"{where}: no {key}")
    for key in FIELDS:
        entry = record.get(key)
        if not isinstance(entry, Mapping) or "value" not in entry or not entry.get("source"):
            raise ValueError(f"{where}: field {key!r} needs a value and a non-empty source")
    attention = record["attention"]["value"]
    if set(attention) != set(GENERATIONS) or any(v is not None and v not in ATTENTION_LIBRARIES
                                                 for v in attention.values()):
        raise ValueError(f"{where}: attention must map {', '.join(GENERATIONS)} to one of "
                         f"{', '.join(ATTENTION_LIBRARIES)} or null, not {attention}")
    overlap = record["overlap"]["value"]
    if isinstance(overlap, Mapping) and set(overlap) != {"gpu", "tpu"}:
        raise ValueError(f"{where}: overlap must be a list, or map gpu and tpu to lists, not {dict(overlap)}")
    unknown = set().union(*overlap.values()) if isinstance(overlap, Mapping) else set(overlap)
    unknown -= set(OVERLAP_NAMES)
    if unknown:
        raise ValueError(f"{where}: unknown overlap {sorted(unknown)}; valid: {', '.join(OVERLAP_NAMES)}")
    for key, valid in (("grad_reduce_dtype", GRAD_REDUCE_DTYPES), ("pipeline_schedule", PIPELINE_SCHEDULES),
                       ("fp8_recipe", FP8_RECIPES + (None,)), ("sequence_parallel", (True, False)),
                       ("pipeline_sends", PIPELINE_SENDS), ("elementwise", ELEMENTWISE)):
        if record[key]["value"] not in valid:
            raise ValueError(f"{where}: {key} {record[key]['value']!r} is not one of {valid}")


def _on(value, kind: str) -> list:
    """A record's overlap list on ``"gpu"`` or ``"tpu"`` (a plain list holds for both)."""
    return value[kind] if isinstance(value, Mapping) else value


def load_stacks(data: Mapping[str, Any]) -> dict[str, Stack]:
    """The stacks of a parsed ``stacks.json``, checked.

    Parameters
    ----------
    data : Mapping
        ``{"about": ..., "stacks": {name: record}}``.

    Returns
    -------
    dict
        Name -> ``Stack``, in file order.
    """
    stacks = {}
    for name, record in data["stacks"].items():
        _check(name, record)
        stacks[name] = Stack(
            name=name, description=record["description"], version=record["version"],
            attention=MappingProxyType(dict(record["attention"]["value"])),
            overlap=frozenset(_on(record["overlap"]["value"], "gpu")),
            tpu_overlap=frozenset(_on(record["overlap"]["value"], "tpu")),
            grad_reduce_dtype=record["grad_reduce_dtype"]["value"],
            pipeline_schedule=record["pipeline_schedule"]["value"],
            fp8_recipe=record["fp8_recipe"]["value"],
            sequence_parallel=record["sequence_parallel"]["value"],
            pipeline_sends=record["pipeline_sends"]["value"],
            elementwise=record["elementwise"]["value"],
            sources=MappingProxyType({key: record[key]["source"] for key in FIELDS}))
    return stacks


STACKS: Mapping[str, Stack] = MappingProxyType(load_stacks(read_package_json(__package__, DATA, "the stacks")))
"""Name -> ``Stack``, read from ``engine/options/data/stacks.json``."""

STACK_NAMES: tuple[str, ...] = tuple(STACKS)
"""The valid stack names (the CLI values), in file order."""


def stack(name: str) -> Stack:
    """The stack called ``name``.

    Parameters
    ----------
    name : str
        One of ``STACK_NAMES`` (case and surrounding spaces ignored).

    Returns
    -------
    Stack

    Raises
    ------
    ValueError
        An unknown name: ``"unknown stack 'x'; valid: a, b, ...; did you mean 'y'?"``.
    """
    key = str(name).strip().lower()
    if key not in STACKS:
        raise ValueError(f"unknown stack {name!r}; valid: {', '.join(STACK_NAMES)}{did_you_mean(key, STACK_NAMES)}")
    return STACKS[key]


# the overlap option's words (engine.options.memory.OVERLAPS, dp spelled out) and the stack communications each
# stands for: a ZeRO parameter all-gather and FSDP's per-layer prefetch are both the step's parameter gathers
_BY_OPTION_WORD = {"dp_reduce": ("dp_reduce",), "dp_gather": ("dp_gather", "fsdp_prefetch"), "tp": ("tp",),
                   "cp": ("cp",), "ep": ("ep",), "pp": ("pp",)}


def stack_overlap(name: str, device: str | None = None) -> frozenset[str]:
    """The communications (``dp_reduce``, ``dp_gather``, ``tp``, ``cp``, ``ep``, ``pp``) stack ``name`` overlaps
    with compute by default: ``dp_gather`` when it overlaps its parameter gathers or FSDP's prefetch (the
    ``overlap`` option's vocabulary; ``Stack.overlap`` has the finer one).

    Parameters
    ----------
    name : str
        One of ``STACK_NAMES``.
    device : str, optional
        A device name: a TPU's (``device_generation``) takes the stack's ``tpu_overlap``; None or any other,
        its GPU ``overlap``.

    Returns
    -------
    frozenset of str
    """
    record = stack(name)
    overlap = record.tpu_overlap if device is not None and device_generation(device) == "tpu" else record.overlap
    return frozenset(p for p, parts in _BY_OPTION_WORD.items() if overlap & set(parts))


def device_overlap(name: str, device: str) -> str:
    """The ``overlap`` option's value for stack ``name`` on ``device``: ``"stack"`` where the stack overlaps there
    what it overlaps on a GPU, else its list for the device's kind spelled out (``"dp_reduce,dp_gather,tp"``;
    MaxText's TPU flags). What ``time``, ``plan`` and spec sweeps take when the overlap is left to the stack."""
    on_device = stack_overlap(name, device)
    if on_device == stack_overlap(name):
        return "stack"
    return ",".join(p for p in _BY_OPTION_WORD if p in on_device) or "none"


def stack_attention(name: str, device: str) -> str:
    """The attention kernel stack ``name`` runs on ``device`` (a catalog name or a device file: its generation's
    choice, ``Stack.attention_for``); what ``time`` and ``plan`` take when no ``--attention`` is given.

    Parameters
    ----------
    name : str
        One of ``STACK_NAMES``.
    device : str
        A hardware catalog name or alias, or a device TOML file.

    Returns
    -------
    str
        An attention option value (``ATTENTION_LIBRARIES``).
    """
    return stack(name).attention_for(device)


def default_stack(device: str) -> str:
    """The stack ``time`` and ``plan`` assume on ``device`` when none is given: ``maxtext`` on a TPU (the
    GPU stacks do not run there), ``megatron-core`` elsewhere."""
    return "maxtext" if device_generation(device) == "tpu" else "megatron-core"
