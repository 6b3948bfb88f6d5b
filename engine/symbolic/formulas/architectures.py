"""Real decoder-only architectures: structural options -> a formula set of exact parameter counts.

A ``Structure`` holds the structural choices (which expressions are built); numeric sizes are
symbols (``d_model``, ``n_layers``, ``n_kv_heads``, ...) given by a preset, a Hugging Face
config or a sweep. The structure of each supported ``model_type``, as its Hugging Face
implementation builds it, is in its record in ``engine/catalog/families.py`` (checked parameter for
parameter against transformers by ``benchmarks/validate_presets.py``).

Quantities (per layer ones end in ``_layer``; totals sum over layers):

    params_embedding   token embedding (+ OPT's in/out projections)
    params_positions   learned position table (0 for rotary, ALiBi, none)
    params_attention   Q, K, V, O projections (+ biases)               = n_layers x params_attention_layer
    params_mlp         dense feed-forward blocks                       = n_layers x params_mlp_layer
    params_norms       per-layer norms (+ q/k norms) + final + embedding norm
    params_head        output head (0 when tied), + its bias
    params_router      MoE routers                                      = n_layers x params_router_layer
    params_experts     MoE experts (+ shared experts)                   = n_layers x params_experts_layer
    params_total       the sum of the eight above
    params_active      parameters a token uses (top_k of n_experts); params_total for dense models
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import sympy

from engine.symbolic.symbols import symbol
from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.base import FormulaSet, OptionSpec, Quantity, Validity, quantity_symbol


@dataclass(frozen=True)
class Structure:
    """Structural choices of a decoder-only transformer (see ``OPTIONS`` for each meaning)."""

    positions: str = "rotary"
    position_offset: int = 0
    attn_bias: str = "none"
    qk_norm: bool = False
    parallel: bool = False
    mlp: str = "gated"
    mlp_bias: bool = False
    norm: str = "rmsnorm"
    norms_per_layer: int = 2
    final_norm: bool = True
    embed_norm: bool = False
    tied_head: bool = False
    head_bias: bool = False
    embed_proj: bool = False
    moe: bool = False
    shared_experts: bool = False

    def with_options(self, **options: Any) -> "Structure":
        """A copy with ``options`` changed (ValueError naming the valid choices otherwise)."""
        from engine.request.options import check_option

        for key, value in options.items():
            check_option(OPTIONS, key, value)
        return replace(self, **options)


OPTIONS: dict[str, OptionSpec] = {
    "positions": OptionSpec("positions", "rotary", C.POSITIONS, "position encoding: a learned table or none"),
    "position_offset": OptionSpec("position_offset", 0, (0, 1, 2), "extra rows of a learned table (OPT: 2)"),
    "attn_bias": OptionSpec("attn_bias", "none", C.ATTN_BIAS, "attention biases: none, on q/k/v (Qwen2), or all"),
    "qk_norm": OptionSpec("qk_norm", False, (True, False), "normalize queries and keys per head (Qwen3, Phi)"),
    "parallel": OptionSpec("parallel", False, (True, False),
                           "attention and MLP read the same input (GPT-J, NeoX, Falcon, Phi); with "
                           "norms_per_layer = 1 they share one norm"),
    "mlp": OptionSpec("mlp", "gated", C.MLPS, "2-matrix (GELU/ReLU) or gated 3-matrix (SwiGLU/GeGLU) MLP"),
    "mlp_bias": OptionSpec("mlp_bias", False, (True, False), "biases in the MLP"),
    "norm": OptionSpec("norm", "rmsnorm", C.NORMS, "normalization: LayerNorm (gain+bias), bias-free LN, RMSNorm"),
    "norms_per_layer": OptionSpec("norms_per_layer", 2, (1, 2), "norms per layer"),
    "final_norm": OptionSpec("final_norm", True, (True, False), "a norm after the last layer"),
    "embed_norm": OptionSpec("embed_norm", False, (True, False), "a norm right after the embedding (BLOOM)"),
    "tied_head": OptionSpec("tied_head", False, (True, False), "output head shares the embedding matrix"),
    "head_bias": OptionSpec("head_bias", False, (True, False), "output head has a bias (GPT-J, Phi)"),
    "embed_proj": OptionSpec("embed_proj", False, (True, False), "project d_embed <-> d_model (OPT-350m)"),
    "moe": OptionSpec("moe", False, (True, False), "every layer's MLP is a mixture of experts"),
    "shared_experts": OptionSpec("shared_experts", False, (True, False), "MoE layers add always-active experts"),
}

d_model, n_layers, n_heads = symbol("d_model"), symbol("n_layers"), symbol("n_heads")


def build(name: str, structure: Structure, source: str = "", d_ff_default: sympy.Expr | None = None) -> FormulaSet:
    """The formula set of one architecture: per-layer components, totals, active parameters.

    ``source`` is cited by every quantity; ``d_ff_default`` is the MLP width when the sizes do not
    give one (e.g. ``4*d_model``; the family record's), or None when they must give it.
    """
    s = structure
    q = quantity_symbol
    attention_layer = C.attention(s.attn_bias)
    mlp_layer = sympy.Integer(0) if s.moe else C.mlp(s.mlp, s.mlp_bias)
    norms_layer = s.norms_per_layer * C.norm(s.norm) + (2 * C.norm(s.norm, C.head_dim) if s.qk_norm else 0)
    router_layer = C.router() if s.moe else sympy.Integer(0)
    expert = C.mlp(s.mlp, s.mlp_bias)
    shared = C.n_shared_experts * C.mlp(s.mlp, s.mlp_bias, C.d_ff_shared) if (s.moe and s.shared_experts) else 0
    experts_layer = (C.n_experts * expert + shared) if s.moe else sympy.Integer(0)
    extra_norms = (C.norm(s.norm) if s.final_norm else 0) + (C.norm(s.norm) if s.embed_norm else 0)
    # components that are structurally zero stay as quantities (the breakdown lists them) but are
    # left out of the sums, so printed totals show only what the architecture has
    layer_parts = ["attention", "norms"] + (["router", "experts"] if s.moe else ["mlp"])
    total_parts = ["embedding"] + (["positions"] if s.positions == "learned" else []) + [
        "attention", "norms"] + (["router", "experts"] if s.moe else ["mlp"]) + (
        ["head"] if (not s.tied_head or s.head_bias) else [])

    def Q(qname, definition, long_name, latex, component_source):
        return Quantity(qname, sympy.sympify(definition), "1", long_name, latex,
                        f"{component_source}; {source}" if source else component_source)

    quantities = [
        Q("params_attention_layer", attention_layer, "attention parameters per layer",
          r"P_{\mathrm{attn}}^{\mathrm{layer}}", C.SRC_ATTENTION),
        Q("params_mlp_layer", mlp_layer, "dense MLP parameters per layer", r"P_{\mathrm{mlp}}^{\mathrm{layer}}",
          C.SRC_MLP),
        Q("params_norms_layer", norms_layer, "normalization parameters per layer",
          r"P_{\mathrm{norms}}^{\mathrm{layer}}", C.SRC_NORM),
        Q("params_router_layer", router_layer, "MoE router parameters per layer",
          r"P_{\mathrm{router}}^{\mathrm{layer}}", C.SRC_MOE),
        Q("params_experts_layer", experts_layer, "MoE expert parameters per layer",
          r"P_{\mathrm{experts}}^{\mathrm{layer}}", C.SRC_MOE),
        Q("params_layer", sum(q(f"params_{c}_layer") for c in layer_parts), "parameters of one layer",
          r"P_{\mathrm{layer}}", "sum of the layer's components"),
        Q("params_embedding", C.embedding(s.embed_proj), "token embedding parameters", r"P_{\mathrm{embedding}}",
          C.SRC_EMBED),
        Q("params_positions", C.positions(s.positions, s.position_offset), "position embedding parameters",
          r"P_{\mathrm{positions}}", C.SRC_POS),
        Q("params_attention", n_layers * q("params_attention_layer"), "attention parameters, all layers",
          r"P_{\mathrm{attention}}", C.SRC_ATTENTION),
        Q("params_mlp", n_layers * q("params_mlp_layer"), "dense MLP parameters, all layers", r"P_{\mathrm{mlp}}",
          C.SRC_MLP),
        Q("params_norms", n_layers * q("params_norms_layer") + extra_norms,
          "normalization parameters: per layer, final and embedding norms", r"P_{\mathrm{norms}}", C.SRC_NORM),
        Q("params_head", C.head(s.tied_head, s.head_bias), "output head parameters (0 when tied)",
          r"P_{\mathrm{head}}", "output projection vocab x d_model; tied heads reuse the embedding"),
        Q("params_router", n_layers * q("params_router_layer"), "MoE router parameters, all layers",
          r"P_{\mathrm{router}}", C.SRC_MOE),
        Q("params_experts", n_layers * q("params_experts_layer"), "MoE expert parameters, all layers",
          r"P_{\mathrm{experts}}", C.SRC_MOE),
        Q("params_total", sum(q(f"params_{c}") for c in total_parts), "total parameters", r"N",
          "sum of all components"),
        Q("params_active",
          q("params_total") - (n_layers * (C.n_experts - C.top_k) * expert if s.moe else 0),
          "parameters used per token (top_k of n_experts experts)", r"N_{\mathrm{active}}", C.SRC_MOE),
    ]
    defaults = {
        "n_kv_heads": n_heads,
        "head_dim": d_model / n_heads,
        "d_embed": d_model,
        "d_ff_shared": C.d_ff,
        "n_shared_experts": sympy.Integer(1),
    }
    if d_ff_default is not None:
        defaults["d_ff"] = d_ff_default  # n_inner / ffn_hidden_size default of the family's implementation
    validity = [
        Validity("n_heads must divide d_model (head_dim = d_model / n_heads)", sympy.Eq(sympy.Mod(d_model, n_heads), 0),
                 unless_given="head_dim"),
        Validity("n_kv_heads must divide n_heads", sympy.Eq(sympy.Mod(n_heads, C.n_kv_heads), 0)),
    ]
    if s.moe:
        validity.append(Validity("top_k must not exceed n_experts", sympy.Le(C.top_k, C.n_experts)))
    return FormulaSet(
        name=name,
        title=f"{name} architecture, exact parameter counts",
        source=source,
        options=asdict(s),
        quantities={x.name: x for x in quantities},
        defaults=defaults,
        validity=validity,
    )


BREAKDOWN = ("embedding", "positions", "attention", "mlp", "norms", "head", "router", "experts")


