"""Precision: one record per training/inference precision, the one vocabulary of every entry point.

A ``Precision`` holds the bits of each tensor class (weights, gradients, fp32 master copy, optimizer
states, activations), the dtype its matmuls run in (the device peak it gets), and the spellings other
tools use for it (torch dtypes, Lightning's ``Trainer(precision=...)`` strings, the old ``bf16-amp``),
accepted on input and normalized to its name. The memory formulas (``engine/symbolic/memory/states.py``),
the ``precision`` option and a device's peak (``engine.catalog.hardware``) read these records.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from engine.options.registry import did_you_mean

SRC_LIGHTNING = "Lightning Trainer(precision=...): 32-true, 16-mixed, bf16-mixed, 16-true, bf16-true, transformer-engine"
SRC_MEGATRON = "Megatron-LM --bf16/--fp16 (Float16OptimizerWithFloat16Params); DeepSpeed bf16/fp16 (fp32 master)"
SRC_TE = "TransformerEngine fp8_autocast under Megatron-LM --fp8-format (engine/symbolic/memory/states.py SRC_FP8)"


@dataclass(frozen=True)
class Precision:
    """One precision: bits per tensor class, the matmul dtype, and the other spellings of it.

    Attributes:
        name: the canonical name (``bf16-mixed``).
        weights, grads, activations: bits per element of the weights, gradients and saved activations.
        master: bits of the fp32 master copy of the weights, 0 when there is none.
        optimizer: bits per optimizer-state element (AdamW's moments; 8-bit optimizers override it).
        matmul: the dtype the matmuls run in, a device peak's key (fp32, bf16, fp16, fp8).
        kind: ``full`` (fp32), ``mixed`` (torch.autocast over fp32 weights), ``true`` (the model cast to
            16 bits, no master) or ``master`` (16-bit weights and gradients, fp32 master and states).
        aliases: other spellings (torch dtypes, Lightning's strings) normalized to ``name``.
        meaning: what a framework runs under this name.
        source: where the bits come from.
    """

    name: str
    weights: int
    grads: int
    master: int
    optimizer: int
    activations: int
    matmul: str
    kind: str
    aliases: tuple[str, ...]
    meaning: str
    source: str

    @property
    def sixteen_bit_weights(self) -> bool:
        """The weights are held in 16 bits (``true`` and ``master`` kinds)."""
        return self.weights == 16


PRECISION_TABLE = (
    Precision("fp32", 32, 32, 0, 32, 32, "fp32", "full", ("32-true", "32", "float32"),
              "fp32 everywhere (Lightning 32-true, torch.float32)", SRC_LIGHTNING),
    Precision("bf16-mixed", 32, 32, 0, 32, 16, "bf16", "mixed", ("bf16-amp",),
              "torch.autocast(bfloat16) over fp32 weights, grads and optimizer states, no master, 16-bit "
              "activations (Lightning bf16-mixed)", SRC_LIGHTNING),
    Precision("fp16-mixed", 32, 32, 0, 32, 16, "fp16", "mixed", ("16-mixed", "16"),
              "torch.autocast(float16) + GradScaler (its scale and counter: negligible) over fp32 weights "
              "(Lightning 16-mixed)", SRC_LIGHTNING),
    Precision("bf16-true", 16, 16, 0, 16, 16, "bf16", "true", ("bfloat16",),
              "model.to(torch.bfloat16) + torch.optim.AdamW: weights, grads and optimizer states 16-bit, no master "
              "(Lightning bf16-true)", SRC_LIGHTNING),
    Precision("fp16-true", 16, 16, 0, 16, 16, "fp16", "true", ("16-true", "float16"),
              "model.to(torch.float16): weights, grads and optimizer states 16-bit, no master (Lightning 16-true)",
              SRC_LIGHTNING),
    Precision("bf16", 16, 16, 32, 32, 16, "bf16", "master", (),
              "16-bit weights and grads, fp32 master and optimizer states (DeepSpeed bf16, Megatron --bf16; "
              "Megatron's fp32 main-grad buffer not counted)", SRC_MEGATRON),
    Precision("fp16", 16, 16, 32, 32, 16, "fp16", "master", (),
              "16-bit weights and grads, fp32 master and optimizer states (DeepSpeed fp16, Megatron --fp16)",
              SRC_MEGATRON),
    Precision("fp8", 16, 16, 32, 32, 16, "fp8", "master", ("transformer-engine", "transformer-engine-float16"),
              "bf16's states plus TE's cached fp8 copy and fp8 transpose of every linear weight and the "
              "delayed-scaling amax histories (Lightning transformer-engine, Megatron --fp8-format); korthikanti "
              "saves the linear layers' inputs in fp8", SRC_TE),
)
PRECISIONS = MappingProxyType({p.name: p for p in PRECISION_TABLE})
PRECISION_NAMES = tuple(PRECISIONS)
# accepted on input and normalized to the canonical name; Lightning's "bf16" is its bf16-mixed, but here bf16 is
# Megatron's and DeepSpeed's (fp32 master), so that one spelling is not an alias
PRECISION_ALIASES = tuple((alias, p.name) for p in PRECISION_TABLE for alias in p.aliases)
# The one default precision, training and inference alike, of every entry point: `memory`, `flops`, `time`,
# `plan`, a spec's [options] and MemoryOptions(). bf16 is mixed-precision training as Megatron (--bf16) and
# DeepSpeed (bf16) run it -- 16-bit weights and gradients, fp32 master weights and optimizer states -- and 16-bit
# weights in inference; README "Memory and compute" documents it.
DEFAULT_PRECISION = "bf16"
MATMUL_DTYPES = ("fp32", "bf16", "fp16", "fp8")  # the dtypes whose matmul peaks a device lists (and tf32)


def canonical_precision(name: str) -> str:
    """The canonical name of a precision or its alias (``bfloat16`` -> ``bf16-true``); any other name unchanged."""
    return dict(PRECISION_ALIASES).get(name, name)


def precision(name: str) -> Precision:
    """The record of a precision, by its name or an alias.

    Parameters
    ----------
    name : str
        ``bf16``, ``bf16-mixed``, ``fp32``, ... or an alias (``bfloat16``, ``32-true``, ``16-mixed``, ...).

    Returns
    -------
    Precision

    Raises
    ------
    ValueError
        An unknown name, with the valid names and the closest one.
    """
    found = PRECISIONS.get(canonical_precision(name))
    if found is None:
        raise ValueError(f"unknown precision {name!r}{did_you_mean(name, [*PRECISIONS, *dict(PRECISION_ALIASES)])}; "
                         f"valid: {', '.join(PRECISIONS)} (aliases: "
                         f"{', '.join(f'{a} = {c}' for a, c in PRECISION_ALIASES)})")
    return found


def precision_meaning() -> str:
    """The ``precision`` option's help: every precision's meaning, in one line."""
    return "; ".join(f"{p.name}: {p.meaning}" for p in PRECISION_TABLE)
