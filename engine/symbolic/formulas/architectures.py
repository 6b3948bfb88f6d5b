"""Real decoder-only architectures: structural options -> a formula set of exact parameter counts.

A ``Structure`` (``engine/options/structure.py``, each option one field) holds the structural choices
(which expressions are built); numeric sizes are
symbols (``d_model``, ``n_layers``, ``n_kv_heads``, ...) given by a preset, a Hugging Face
config or a sweep. The structure of each supported ``model_type``, as its Hugging Face
implementation builds it, is in its record in ``engine/catalog/families.py`` (checked parameter for
parameter against transformers by ``benchmarks/validate_presets.py``).

Quantities (per layer ones end in ``_layer``; totals sum over layers):

    params_embedding   token embedding (+ OPT's in/out projections)
    params_positions   learned position table (0 for rotary, ALiBi, none)
    params_attention   Q, K, V, O projections (+ biases, sinks) or MLA  = attention layers x params_attention_layer
    params_ssm         Mamba-2 and linear-attention mixers              = their layers x params_<kind>_layer
    params_mlp         dense feed-forward blocks                       = n_dense_layers x params_mlp_layer
    params_norms       per-layer norms (+ q/k norms) + final + embedding norm
    params_head        output head (0 when tied), + its bias
    params_router      MoE routers                                      = n_moe_layers x params_router_layer
    params_experts     MoE experts (+ shared experts)                   = n_moe_layers x params_experts_layer
    params_total       the sum of the nine above
    params_active      parameters a token uses (top_k of n_experts routed experts; everything else: routers,
                       shared experts, dense layers, sinks); params_total for dense models
    params_mtp         DeepSeek-V3's multi-token-prediction modules: not built by transformers, not in the total

Layers are of kinds (``Structure.mixers``: full, sliding-window, chunked or linear attention, Mamba-2) and
carry a dense or a MoE MLP; each kind's count is a symbol (``n_sliding_attention_layers``, ``n_moe_layers``,
...) whose default derives it from ``n_layers`` and the pattern's interval (``full_attention_interval``,
``moe_layer_interval``, ``first_k_dense_replace``), as transformers derives ``layer_types``; a config
whose pattern is irregular states the counts. Models with one kind of layer keep the plain
``n_layers x per-layer`` forms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sympy

from engine.options.structure import Structure
from engine.symbolic.symbols import symbol
from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.base import FormulaSet, Quantity, Validity, quantity_symbol

d_model, n_layers, n_heads = symbol("d_model"), symbol("n_layers"), symbol("n_heads")


def layer_count(kind: str) -> sympy.Symbol:
    """The symbol counting layers of ``kind`` (a mixer kind, ``"moe"`` or ``"dense"``)."""
    return symbol(f"n_{kind}_layers")


def mixer_counts(s: Structure) -> dict[str, sympy.Expr]:
    """Layers per mixer kind: n_layers for a uniform model, else each kind's count symbol."""
    if len(s.mixer_kinds) == 1 and not s.separate_mlp:
        return {s.mixers: n_layers}
    return {k: layer_count(k) for k in s.mixer_kinds}


def mlp_counts(s: Structure) -> dict[str, sympy.Expr]:
    """Layers per MLP kind (``dense``, ``moe``): n_layers when every layer has the same one."""
    if s.separate_mlp:
        return {"dense": layer_count("dense"), **({"moe": layer_count("moe")} if s.moe else {})}
    if s.moe and s.dense_layers:
        return {"dense": layer_count("dense"), "moe": layer_count("moe")}
    return {"moe": n_layers} if s.moe else {"dense": n_layers}


def count_defaults(s: Structure) -> dict[str, sympy.Expr]:
    """How the layer counts derive from n_layers, as transformers derives layer_types.

    Two mixer kinds: full attention in layers i with (i + 1) % full_attention_interval == 0 (Gemma 2/3,
    gpt-oss, Qwen3-Next, Llama 4), floor(n_layers / full_attention_interval) of them, the other kind
    in the rest. MoE with dense layers: layers i >= first_k_dense_replace with
    (i + 1 - first_k_dense_replace) % moe_layer_interval == 0 are MoE (DeepSeek, Qwen MoE's
    decoder_sparse_step, Llama 4's interleave_moe_layer_step). A separate-MLP model (Nemotron-H) states
    its mixer counts; its MLP layers are the rest.
    """
    out: dict[str, sympy.Expr] = {}
    kinds = s.mixer_kinds
    if len(kinds) == 2 and not s.separate_mlp:
        full = sympy.floor(n_layers / symbol("full_attention_interval"))
        out[f"n_{kinds[1]}_layers"] = full
        out[f"n_{kinds[0]}_layers"] = n_layers - layer_count(kinds[1])
    if s.separate_mlp:
        rest = n_layers - sum(layer_count(k) for k in kinds) - (layer_count("moe") if s.moe else 0)
        out["n_dense_layers"] = rest
    elif s.moe and s.dense_layers:
        k = symbol("first_k_dense_replace")
        out["n_moe_layers"] = sympy.floor((n_layers - k) / symbol("moe_layer_interval"))
        out["n_dense_layers"] = n_layers - layer_count("moe")
        out["first_k_dense_replace"] = sympy.Integer(0)
        out["moe_layer_interval"] = sympy.Integer(1)
    return out


@dataclass(frozen=True)
class _Parts:
    """The per-layer expressions of one structure, and the layer counts they are multiplied by."""

    mixers: dict
    mlps: dict
    n_attn: sympy.Expr
    attention_layer: sympy.Expr
    qk: sympy.Expr
    one_norm: sympy.Expr
    expert: sympy.Expr
    ssm_layers: dict
    ssm_kinds: list
    attention_src: str


def _parts(s: Structure) -> _Parts:
    """Each layer's components: attention (or MLA), q/k norms, one norm, a routed expert, the SSM mixers."""
    zero = sympy.Integer(0)
    mixers, mlps = mixer_counts(s), mlp_counts(s)
    if s.mla:
        attention_layer = C.mla(s.q_lora, s.attn_bias != "none", s.norm)
    else:
        attention_layer = C.attention(s.attn_bias, s.attn_output_gate) + (n_heads if s.sinks else 0)
    expert = C.mlp(s.mlp, s.expert_bias, C.d_ff_expert, C.moe_latent_size if s.moe_latent else d_model) \
        if s.moe else zero
    ssm_layers = {"linear_attention": C.gated_deltanet(), "mamba": C.mamba2(s.mamba_bias, s.mamba_conv_bias)}
    return _Parts(
        mixers=mixers, mlps=mlps, n_attn=sum((mixers[k] for k in s.attention_kinds), zero),
        attention_layer=attention_layer, qk=C.qk_norms(s.norm, s.qk_norm_scope) if s.qk_norm else zero,
        one_norm=C.norm(s.norm), expert=expert, ssm_layers=ssm_layers,
        ssm_kinds=[k for k in s.mixer_kinds if k in ssm_layers],
        attention_src=C.SRC_MLA if s.mla else C.SRC_ATTENTION + ("; " + C.SRC_SINKS if s.sinks else ""))


def _experts_layer(s: Structure, p: _Parts) -> sympy.Expr:
    """One MoE layer's experts: the routed ones, the shared ones (and their gate), a latent MoE's projections."""
    if not s.moe:
        return sympy.Integer(0)
    shared = (C.n_shared_experts * C.mlp(s.mlp, s.mlp_bias, C.d_ff_shared) + (d_model if s.shared_expert_gate else 0)
              if s.shared_experts else sympy.Integer(0))
    if s.moe_latent:  # always-active projections into and out of the experts' latent space
        shared += C.latent_projections(s.mlp_bias)
    return C.n_experts * p.expert + shared


def _largest_layer(s: Structure, p: _Parts) -> tuple[sympy.Expr, str]:
    """``params_layer``: the layer's components summed, or (mixed layers) the largest layer's."""
    q = quantity_symbol
    if s.uniform:
        layer_parts = ["attention", "norms"] + (["router", "experts"] if s.moe else ["mlp"])
        return sum(q(f"params_{c}_layer") for c in layer_parts), "sum of the layer's components"
    # the largest layer: its largest mixer and its largest MLP (or, separate, the largest block)
    mixer_sizes = [q("params_attention_layer")] if s.attention_kinds else []
    mixer_sizes += [q(f"params_{k}_layer") for k in p.ssm_kinds]
    mlp_sizes = ([q("params_mlp_layer")] if "dense" in p.mlps else []) + (
        [q("params_router_layer") + q("params_experts_layer")] if s.moe else [])
    if s.separate_mlp:
        layer = sympy.Max(*mixer_sizes, *mlp_sizes) + s.norms_per_layer * p.one_norm
    else:
        layer = sympy.Max(*mixer_sizes) + sympy.Max(*mlp_sizes) + q("params_norms_layer")
    return layer, "the largest layer: its largest mixer and MLP kinds with its norms"


def _layer_quantities(s: Structure, p: _Parts, Q) -> list[Quantity]:
    """The per-layer quantities: attention, SSM mixers, dense MLP, norms, router, experts, the (largest) layer."""
    zero = sympy.Integer(0)
    quantities = [Q("params_attention_layer", p.attention_layer, "attention parameters per attention layer",
                    r"P_{\mathrm{attn}}^{\mathrm{layer}}", p.attention_src)]
    for kind in p.ssm_kinds:
        src, what = (C.SRC_LINEAR, "linear-attention") if kind == "linear_attention" else (C.SRC_MAMBA, "Mamba-2")
        tex = r"\mathrm{lin}" if kind == "linear_attention" else r"\mathrm{mamba}"
        quantities.append(Q(f"params_{kind}_layer", p.ssm_layers[kind], f"{what} mixer parameters per layer",
                            rf"P_{{{tex}}}^{{\mathrm{{layer}}}}", src))
    layer, layer_src = _largest_layer(s, p)
    return quantities + [
        Q("params_mlp_layer", C.mlp(s.mlp, s.mlp_bias) if "dense" in p.mlps else zero,
          "dense MLP parameters per layer", r"P_{\mathrm{mlp}}^{\mathrm{layer}}", C.SRC_MLP),
        Q("params_norms_layer", s.norms_per_layer * p.one_norm + p.qk, "normalization parameters per layer",
          r"P_{\mathrm{norms}}^{\mathrm{layer}}", C.SRC_NORM),
        Q("params_router_layer", C.router(s.router_bias) if s.moe else zero, "MoE router parameters per layer",
          r"P_{\mathrm{router}}^{\mathrm{layer}}", C.SRC_MOE),
        Q("params_experts_layer", _experts_layer(s, p), "MoE expert parameters per layer",
          r"P_{\mathrm{experts}}^{\mathrm{layer}}", C.SRC_MOE),
        Q("params_layer", layer, "parameters of one layer" if s.uniform else "parameters of the largest layer",
          r"P_{\mathrm{layer}}", layer_src),
    ]


def _total_parts(s: Structure, p: _Parts) -> list[str]:
    """The components params_total sums: structurally zero ones stay quantities (the breakdown lists them) but are
    left out of the sum, so printed totals show only what the architecture has."""
    mlp_parts = (["router", "experts"] if s.moe else []) + (["mlp"] if "dense" in p.mlps else [])
    return ["embedding"] + (["positions"] if s.positions == "learned" else []) + ["attention"] + (
        ["ssm"] if p.ssm_kinds else []) + ["norms"] + [c for c in ("router", "experts", "mlp") if c in mlp_parts] + (
        ["head"] if (not s.tied_head or s.head_bias) else [])


def _model_quantities(s: Structure, p: _Parts, Q) -> list[Quantity]:
    """The whole-model quantities: embedding, positions, every component over its layers, head, total, active."""
    q, zero = quantity_symbol, sympy.Integer(0)
    extra_norms = (p.one_norm if s.final_norm else 0) + (p.one_norm if s.embed_norm else 0)
    if s.uniform:
        norms_total = n_layers * q("params_norms_layer") + extra_norms
    else:
        norms_total = n_layers * s.norms_per_layer * p.one_norm + p.n_attn * p.qk + extra_norms
    n_moe = p.mlps.get("moe", n_layers)
    return [
        Q("params_embedding", C.embedding(s.embed_proj), "token embedding parameters", r"P_{\mathrm{embedding}}",
          C.SRC_EMBED),
        Q("params_positions", C.positions(s.positions, s.position_offset), "position embedding parameters",
          r"P_{\mathrm{positions}}", C.SRC_POS),
        Q("params_attention", p.n_attn * q("params_attention_layer"), "attention parameters, all layers",
          r"P_{\mathrm{attention}}", p.attention_src),
        Q("params_ssm", sum((p.mixers[k] * q(f"params_{k}_layer") for k in p.ssm_kinds), zero),
          "state-space and linear-attention mixer parameters, all layers", r"P_{\mathrm{ssm}}",
          "; ".join(C.SRC_LINEAR if k == "linear_attention" else C.SRC_MAMBA for k in p.ssm_kinds) or C.SRC_MAMBA),
        Q("params_mlp", p.mlps.get("dense", n_layers) * q("params_mlp_layer"), "dense MLP parameters, all layers",
          r"P_{\mathrm{mlp}}", C.SRC_MLP),
        Q("params_norms", norms_total, "normalization parameters: per layer, final and embedding norms",
          r"P_{\mathrm{norms}}", C.SRC_NORM),
        Q("params_head", C.head(s.tied_head, s.head_bias), "output head parameters (0 when tied)",
          r"P_{\mathrm{head}}", "output projection vocab x d_model; tied heads reuse the embedding"),
        Q("params_router", n_moe * q("params_router_layer"), "MoE router parameters, all layers",
          r"P_{\mathrm{router}}", C.SRC_MOE),
        Q("params_experts", n_moe * q("params_experts_layer"), "MoE expert parameters, all layers",
          r"P_{\mathrm{experts}}", C.SRC_MOE),
        Q("params_total", sum(q(f"params_{c}") for c in _total_parts(s, p)), "total parameters", r"N",
          "sum of all components"),
        Q("params_active",
          q("params_total") - (n_moe * (C.n_experts - C.top_k) * p.expert if s.moe else 0),
          "parameters used per token (top_k of n_experts routed experts; routers, shared experts, dense layers "
          "and sinks always)", r"N_{\mathrm{active}}", C.SRC_MOE),
    ]


def _extra_quantities(s: Structure, p: _Parts, Q) -> list[Quantity]:
    """Reported apart: the routed experts (split by expert parallelism) and DeepSeek-V3's MTP modules."""
    q, out = quantity_symbol, []
    if s.moe:
        out.append(Q("params_routed_experts", p.mlps.get("moe", n_layers) * C.n_experts * p.expert,
                     "routed expert parameters, all layers (split by expert parallelism)",
                     r"P_{\mathrm{routed}}", C.SRC_MOE))
    if s.mtp:
        mtp_module = (2 * d_model * d_model + 3 * p.one_norm + q("params_attention_layer") + q("params_norms_layer")
                      + (q("params_router_layer") + q("params_experts_layer") if s.moe else q("params_mlp_layer")))
        out.append(Q("params_mtp", symbol("n_mtp_layers") * mtp_module,
                     "multi-token-prediction modules (not built by transformers; not in params_total)",
                     r"P_{\mathrm{MTP}}",
                     "DeepSeek-V3 report §2.2 (each MTP module: the shared embedding and output head, an "
                     "RMSNorm of the hidden state and of the embedding, a 2d x d projection, one Transformer "
                     "block and the shared head's RMSNorm); DeepSeek-V3 checkpoint layer 61"))
    return out


def _defaults(s: Structure, d_ff_default: sympy.Expr | None) -> dict[str, sympy.Expr]:
    """Defaults of the sizes a config may leave out (n_kv_heads = n_heads, head_dim = d_model / n_heads, ...)."""
    defaults = {
        "n_kv_heads": n_heads,
        "head_dim": d_model / n_heads,
        "d_embed": d_model,
        "d_ff_shared": C.d_ff_expert if s.moe else C.d_ff,
        "d_ff_expert": C.d_ff,
        "n_shared_experts": sympy.Integer(1),
        **count_defaults(s),
    }
    if s.mtp:
        defaults["n_mtp_layers"] = sympy.Integer(1)
    if d_ff_default is not None:
        defaults["d_ff"] = d_ff_default  # n_inner / ffn_hidden_size default of the family's implementation
    return defaults


def _validity(s: Structure, p: _Parts) -> list[Validity]:
    """Conditions on the sizes: heads dividing the width, top_k <= n_experts, layer counts adding up."""
    validity = []
    if not s.mla:
        validity += [
            Validity("n_heads must divide d_model (head_dim = d_model / n_heads)",
                     sympy.Eq(sympy.Mod(d_model, n_heads), 0), unless_given="head_dim"),
            Validity("n_kv_heads must divide n_heads", sympy.Eq(sympy.Mod(n_heads, C.n_kv_heads), 0)),
        ]
    if s.moe:
        validity.append(Validity("top_k must not exceed n_experts", sympy.Le(C.top_k, C.n_experts)))
    counted = [*(p.mixers.values() if not s.uniform else ()),
               *(p.mlps.values() if s.separate_mlp or s.dense_layers else ())]
    for c in counted:
        if isinstance(c, sympy.Symbol) and c != n_layers:
            validity.append(Validity(f"{c.name} must be from 0 to n_layers", sympy.Le(c, n_layers)))
    if not s.uniform:
        total_layers = sum(p.mixers.values()) + (sum(p.mlps.values()) if s.separate_mlp else 0)
        validity.append(Validity("the layers of each kind must add up to n_layers",
                                 sympy.Eq(total_layers, n_layers)))
        if s.dense_layers and not s.separate_mlp:
            validity.append(Validity("n_moe_layers + n_dense_layers must equal n_layers",
                                     sympy.Eq(sum(p.mlps.values()), n_layers)))
    return validity


def build(name: str, structure: Structure, source: str = "", d_ff_default: sympy.Expr | None = None) -> FormulaSet:
    """The formula set of one architecture: per-layer components, totals, active parameters.

    ``source`` is cited by every quantity; ``d_ff_default`` is the MLP width when the sizes do not
    give one (e.g. ``4*d_model``; the family record's), or None when they must give it.
    """
    s, p = structure, _parts(structure)

    def Q(qname, definition, long_name, latex, component_source):
        return Quantity(qname, sympy.sympify(definition), "1", long_name, latex,
                        f"{component_source}; {source}" if source else component_source)

    quantities = _layer_quantities(s, p, Q) + _model_quantities(s, p, Q) + _extra_quantities(s, p, Q)
    return FormulaSet(
        name=name,
        title=f"{name} architecture, exact parameter counts",
        source=source,
        options=asdict(s),
        quantities={x.name: x for x in quantities},
        defaults=_defaults(s, d_ff_default),
        validity=_validity(s, p),
    )


BREAKDOWN = ("embedding", "positions", "attention", "ssm", "mlp", "norms", "head", "router", "experts")


