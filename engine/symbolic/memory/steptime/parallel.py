"""Model- and data-parallel communication of a training step: tensor, expert and context parallelism per
micro-batch; the data-parallel gradient reduction and parameter gathers per step."""

from __future__ import annotations

import sympy

from engine.symbolic.formulas.architectures import mlp_counts
from engine.symbolic.memory.base import b, bits_g, dp, ep, h, pp, qi, s, tp
from engine.symbolic.memory.steptime.collectives import all_reduce, all_to_all, bandwidth, half_ring
from engine.symbolic.memory.steptime.common import alpha, cp, stage_layers
from engine.symbolic.symbols import symbol

def model_parallel(structure, o, act: int, t_attn: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """``(t_tp, t_ep, t_cp)``: one micro-batch's exposed tensor-parallel all-reduces, expert all-to-alls and
    context-parallel ring exchanges on one device."""
    layers = stage_layers()
    tokens_mb = b * s / cp  # tokens of one micro-batch on one device (context parallelism splits them)
    # tensor parallelism: 2 all-reduces per layer forward, 2 backward (and 2 more when the forward is recomputed)
    reductions = 6 if o.recompute == "full" else 4
    tp_bytes = act * tokens_mb * h
    t_tp = sympy.Piecewise((0, sympy.Eq(tp, 1)), (layers * reductions * all_reduce(tp, tp_bytes, bandwidth(tp)), True))
    t_ep = sympy.Integer(0)
    if structure.moe:  # each device dispatches its sequence-parallel share of the tokens (Megatron requires
        # sequence parallelism for MoE with tp > 1), top_k copies of each
        moe_layers = mlp_counts(structure)["moe"] / pp
        ep_bytes = act * tokens_mb / tp * symbol("top_k") * h
        t_ep = sympy.Piecewise((0, sympy.Eq(ep, 1)), (moe_layers * 4 * all_to_all(ep, ep_bytes, symbol("etp")), True))
    # ring attention: each device's K and V (its tp share of the kv heads) pass cp - 1 hops per layer forward and
    # twice backward (K, V and their gradients), each hop overlapped with the attention of the block in hand
    kv_bytes = act * 2 * tokens_mb * symbol("n_kv_heads") * symbol("head_dim") / tp
    ring = 3 * (cp - 1) * (kv_bytes / bandwidth(cp, tp) + alpha)
    t_cp = sympy.Piecewise((0, sympy.Eq(cp, 1)), (layers * sympy.Max(0, ring - t_attn / layers), True))
    return t_tp, t_ep, t_cp


def data_parallel(structure, o, act: int) -> sympy.Expr:
    """The step's data-parallel communication (before ``dp_overlap`` hides part of it).

    Gradients are reduced in their reduction dtype (Megatron and DeepSpeed's bf16/fp16 keep fp32 main gradients
    and reduce them in fp32; torch FSDP's mixed precision reduces in bits_grad), parameters gathered in the
    compute dtype: DDP all-reduces the gradients; ZeRO-1/2 reduce-scatter them and all-gather the updated
    parameters; ZeRO-3/FSDP all-gathers the parameters for the forward and again for the backward."""
    def sync(n_params, group, shard):
        """Gradient reduction and parameter gathers of ``n_params`` per device over a data-parallel ``group``
        (of ``cp`` x group devices, ``tp`` apart), sharded within groups of ``shard`` with ZeRO."""
        reduced = n_params * (32 if o.precision in ("bf16", "fp16", "fp8") else bits_g) / 8
        gathered = n_params * act
        if o.zero == 0:
            return all_reduce(group * cp, reduced, bandwidth(group * cp, tp))
        gathers = 2 if o.zero >= 3 else 1
        inside = bandwidth(shard * cp, tp)
        return (half_ring(shard * cp, reduced, inside) + gathers * half_ring(shard * cp, gathered, inside)
                + all_reduce(group / shard, reduced / shard, bandwidth(group / shard, tp * shard * cp)))

    g = symbol("shard_group")
    if structure.moe:  # routed experts over ep x etp, synchronised over the expert data-parallel group
        routed = qi("params_routed_experts")
        edp = dp * tp / (ep * symbol("etp"))
        sync_all = sync((qi("params_total") - routed) / (tp * pp), dp, g) + sympy.Piecewise(
            (0, sympy.Eq(edp, 1)), (sync(routed / (ep * symbol("etp") * pp), edp, edp), True))
    else:
        sync_all = sync(qi("params_total") / (tp * pp), dp, g)
    return sympy.Piecewise((0, sympy.Eq(dp * cp, 1)), (sync_all, True))

