"""The structural options of a decoder-only architecture (``Structure``), each one field.

A ``Structure`` holds the structural choices (which expressions ``engine.symbolic.formulas.architectures``
builds); numeric sizes are symbols given by a preset, a Hugging Face config or a sweep. ``ARCH_OPTIONS``, the
records specs, flags and the JSON Schema read, derive from the fields. Pure Python: no sympy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from engine.options.registry import check_value, option, specs_of

NORMS = ("layernorm", "layernorm_nobias", "rmsnorm")
ATTN_BIAS = ("none", "qkv", "all")
MLPS = ("gelu", "gated")
POSITIONS = ("learned", "rotary", "alibi", "none")
ATTENTION_KINDS = ("full_attention", "sliding_attention", "chunked_attention")
MIXER_PATTERNS = ("full_attention", "sliding_attention", "sliding_attention+full_attention",
                  "chunked_attention+full_attention", "linear_attention+full_attention", "mamba+full_attention")


@dataclass(frozen=True)
class Structure:
    """Structural choices of a decoder-only transformer; each field is one option (``ARCH_OPTIONS``)."""

    positions: str = option("rotary", POSITIONS, "position encoding: a learned table or none")
    position_offset: int = option(0, (0, 1, 2), "extra rows of a learned table (OPT: 2)")
    attn_bias: str = option("none", ATTN_BIAS, "attention biases: none, on q/k/v (Qwen2), or all")
    qk_norm: bool = option(False, meaning="normalize queries and keys per head (Qwen3, Phi)")
    parallel: bool = option(False, meaning="attention and MLP read the same input (GPT-J, NeoX, Falcon, Phi); with "
        "norms_per_layer = 1 they share one norm")
    mlp: str = option("gated", MLPS, "2-matrix (GELU/ReLU) or gated 3-matrix (SwiGLU/GeGLU) MLP")
    mlp_bias: bool = option(False, meaning="biases in the MLP")
    norm: str = option("rmsnorm", NORMS, "normalization: LayerNorm (gain+bias), bias-free LN, RMSNorm")
    norms_per_layer: int = option(2, (1, 2, 4), "norms per layer (Gemma 2/3: 4, pre and post each block)")
    final_norm: bool = option(True, meaning="a norm after the last layer")
    embed_norm: bool = option(False, meaning="a norm right after the embedding (BLOOM)")
    tied_head: bool = option(False, meaning="output head shares the embedding matrix")
    head_bias: bool = option(False, meaning="output head has a bias (GPT-J, Phi)")
    embed_proj: bool = option(False, meaning="project d_embed <-> d_model (OPT-350m)")
    moe: bool = option(False, meaning="MLPs are mixtures of experts (every layer's unless dense_layers)")
    shared_experts: bool = option(False, meaning="MoE layers add always-active experts")
    mla: bool = option(False, meaning="multi-head latent attention (DeepSeek-V2/V3) instead of Q, K, V, O projections")
    q_lora: bool = option(True, meaning="MLA: low-rank queries through q_lora_rank (else one q_proj)")
    qk_norm_scope: str = option("head", ("head", "projection"), "q/k norms: one head_dim norm shared by the heads "
        "(Qwen3, Gemma 3) or over the whole projection (OLMo 2, OLMoE; Cohere, StableLM per head)")
    sinks: bool = option(False, meaning="a learned attention-sink logit per head (gpt-oss)")
    attn_output_gate: bool = option(False, meaning="q_proj also yields a sigmoid gate of the attention output "
        "(Qwen3-Next)")
    mixers: str = option("full_attention", MIXER_PATTERNS, "the kinds of token-mixing layer: full attention "
        "everywhere, or full attention in one layer of every full_attention_interval and sliding-window, chunked or "
        "linear attention in the others, or Mamba-2 layers with a few attention layers")
    separate_mlp: bool = option(False, meaning="MLPs are layers of their own, apart from the mixer layers "
        "(Nemotron-H)")
    dense_layers: bool = option(False, meaning="MoE models: some layers keep a dense MLP (first_k_dense_replace, "
        "moe_layer_interval)")
    router_bias: bool = option(False, meaning="the MoE router has a bias (gpt-oss)")
    expert_bias: bool = option(False, meaning="routed experts have biases (gpt-oss)")
    moe_latent: bool = option(False, meaning="routed experts work in a moe_latent_size space, projected from and back "
        "to d_model (Nemotron latent MoE)")
    shared_expert_gate: bool = option(False, meaning="a d_model -> 1 sigmoid gate scales the shared expert (Qwen MoE)")
    mamba_bias: bool = option(False, meaning="Mamba-2 in_proj and out_proj have biases")
    mamba_conv_bias: bool = option(True, meaning="the Mamba-2 conv1d has a bias")
    mtp: bool = option(False, meaning="multi-token-prediction modules (DeepSeek-V3), reported apart as params_mtp")

    @property
    def mixer_kinds(self) -> tuple[str, ...]:
        """The kinds of token-mixing layer, the one that takes the remaining layers first."""
        return tuple(self.mixers.split("+"))

    @property
    def attention_kinds(self) -> tuple[str, ...]:
        """The mixer kinds that are attention (full, sliding-window, chunked)."""
        return tuple(k for k in self.mixer_kinds if k in ATTENTION_KINDS)

    @property
    def uniform(self) -> bool:
        """Every layer alike (one mixer kind, each layer's MLP of one kind): the plain n_layers x forms."""
        return len(self.mixer_kinds) == 1 and not self.separate_mlp and not self.dense_layers

    def with_options(self, **options: Any) -> "Structure":
        """A copy with ``options`` changed.

        Parameters
        ----------
        **options
            Option names and values (``tied_head=True``, ``mlp="gelu"``, ...).

        Returns
        -------
        Structure

        Raises
        ------
        ValueError
            An unknown option or value, naming the valid ones and the closest.
        """
        for key, value in options.items():
            check_value(ARCH_OPTIONS, key, value)
        return replace(self, **options)


ARCH_OPTIONS = MappingProxyType(specs_of(Structure))
