"""Model- and data-parallel communication of a training step: tensor, expert and context parallelism per
micro-batch; the data-parallel gradient reduction and parameter gathers; each the part that compute does not
hide (``exposed``), by what the stack overlaps (``o.overlapped``)."""

from __future__ import annotations

import sympy

from engine.symbolic.formulas.architectures import mlp_counts
from engine.symbolic.memory.base import L, b, dp, ep, h, qi, s, tp
from engine.symbolic.memory.steptime.collectives import (all_to_all, exposed, hi, latency, lo, per_byte,
                                                         ring_all_reduce, ring_half)
from engine.symbolic.memory.steptime.common import cp, stage_layers
from engine.symbolic.symbols import symbol


def backward_share(o) -> sympy.Expr:
    """The backward's share of a micro-batch's compute: 2/3 (two matmuls per forward one), 3/4 when the forward is
    recomputed inside the backward."""
    return sympy.Rational(3, 4) if o.recompute == "full" else sympy.Rational(2, 3)


def model_parallel(structure, o, act: int, t_attn: sympy.Expr,
                   gemm: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """``(t_tp, t_ep, t_cp)``: one micro-batch's exposed tensor-parallel all-reduces, expert all-to-alls and
    context-parallel ring exchanges on one device. With "tp" overlapped (Transformer Engine's comm-GEMM overlap)
    the tensor-parallel collectives hide behind the micro-batch's GEMMs (``gemm``: its compute outside attention); with
    "ep" the all-to-alls behind what of the GEMMs the tensor-parallel ones leave."""
    layers = stage_layers()
    tokens_mb = b * s / cp  # tokens of one micro-batch on one device (context parallelism splits them)
    # tensor parallelism: 2 all-reduces per layer forward, 2 backward (and 2 more when the forward is recomputed)
    reductions = 6 if o.recompute == "full" else 4
    tp_bytes = act * tokens_mb * h
    tp_comm = layers * reductions * ring_all_reduce(tp, tp_bytes)
    tp_hidden = "tp" in o.overlapped
    t_tp = sympy.Piecewise((0, sympy.Eq(tp, 1)), (exposed(tp_comm, gemm) if tp_hidden else tp_comm, True))
    t_ep = sympy.Integer(0)
    if structure.moe:  # each device dispatches its sequence-parallel share of the tokens (Megatron requires
        # sequence parallelism for MoE with tp > 1), top_k copies of each
        moe_layers = mlp_counts(structure)["moe"] * layers / L  # the bottleneck stage's
        ep_bytes = act * tokens_mb / tp * symbol("top_k") * h
        ep_comm = moe_layers * 4 * all_to_all(ep, ep_bytes, symbol("etp"))
        if "ep" in o.overlapped:
            left = hi(0, gemm - sympy.Piecewise((0, sympy.Eq(tp, 1)), (tp_comm, True))) if tp_hidden else gemm
            ep_comm = exposed(ep_comm, left)
        t_ep = sympy.Piecewise((0, sympy.Eq(ep, 1)), (ep_comm, True))
    # ring attention: each device's K and V (its tp share of the kv heads) pass cp - 1 hops per layer forward and
    # twice backward (K, V and their gradients); with "cp" overlapped (Transformer Engine's p2p ring) each hop hides
    # behind the attention of the block in hand; otherwise the exchange is exposed (PyTorch's context_parallel
    # rotates K and V with an all-gather before the attention, its default rotate method: the same bytes)
    kv_bytes = act * 2 * tokens_mb * symbol("n_kv_heads") * symbol("head_dim") / tp
    ring = 3 * (cp - 1) * (kv_bytes * per_byte(cp, tp) + latency(cp, tp))
    cp_comm = exposed(ring, t_attn / layers) if "cp" in o.overlapped else ring
    t_cp = sympy.Piecewise((0, sympy.Eq(cp, 1)), (layers * cp_comm, True))
    return t_tp, t_ep, t_cp


def data_parallel(structure, o, act: int, micro: sympy.Expr, m: sympy.Expr) -> sympy.Expr:
    """The step's exposed data-parallel communication; ``micro`` the compute of one micro-batch on the device.

    Gradients are reduced in their reduction dtype (``o.grad_reduce_bits``: the stack's default, e.g. Megatron-Core's
    fp32 main gradients, NeMo's recipes' bf16, FSDP2's reduce_dtype fp32; or the option), parameters gathered in the
    compute dtype: DDP all-reduces the gradients once per step; ZeRO-1/2 reduce-scatter them and all-gather the
    updated parameters once per step; ZeRO-3/FSDP (resharding after the forward, its default) all-gathers the
    parameters for the forward and again for the backward and reduce-scatters the gradients, every micro-batch
    (hybrid sharding all-reduces the accumulated shard across groups once per step).

    With "dp_reduce" overlapped the gradient reduction hides behind the last micro-batch's backward, with
    "dp_gather" the ZeRO-1/2 gather behind the first forward, the last bucket exposed (max(dp_bucket_params, 10^6
    dp) parameters of the device's, Megatron-Core); ZeRO-3's per-micro-batch traffic hides behind the micro-batch's
    compute (prefetched a layer ahead), one layer's share exposed: all of it with both overlapped, its
    reduce-scatters behind the backward with "dp_reduce" alone, its gathers with "dp_gather" alone. What is not
    overlapped is exposed whole."""
    reduce_hidden, gather_hidden = "dp_reduce" in o.overlapped, "dp_gather" in o.overlapped
    backward = backward_share(o) * micro

    def sync(n_params, group, shard):
        """(reduction inside the shard group, all-reduce across shard groups, one parameter gather) of
        ``n_params`` per device over a data-parallel ``group`` (of ``cp`` x group devices, ``tp`` apart),
        sharded within groups of ``shard`` with ZeRO."""
        reduced = n_params * o.grad_reduce_bits / 8
        gathered = n_params * act
        if o.zero == 0:
            return ring_all_reduce(group * cp, reduced, tp), sympy.Integer(0), sympy.Integer(0)
        return (ring_half(shard * cp, reduced, tp), ring_all_reduce(group / shard, reduced / shard, tp * shard * cp),
                ring_half(shard * cp, gathered, tp))

    g = symbol("shard_group")
    stage = stage_layers() / L  # the bottleneck stage's share of the layers (1 / pp when even)
    dense = qi("params_total") * stage / tp
    if structure.moe:  # routed experts over ep x etp, synchronised over the expert data-parallel group
        routed = qi("params_routed_experts")
        edp = dp * tp / (ep * symbol("etp"))
        dense = (qi("params_total") - routed) * stage / tp
        parts = zip(sync(dense, dp, g), sync(routed * stage / (ep * symbol("etp")), edp, edp))
        inner, across, gather = (d + sympy.Piecewise((0, sympy.Eq(edp * cp, 1)), (e, True)) for d, e in parts)
    else:
        inner, across, gather = sync(dense, dp, g)

    bucket = lo(1, hi(symbol("dp_bucket_params"), 10**6 * dp * cp) / dense)  # the last bucket's share
    if o.zero >= 3:  # every micro-batch: the gradient reduce-scatter and two parameter gathers; the all-reduce
        # across shard groups (hybrid sharding) once per step, of the accumulated shard (FSDP2
        # set_requires_all_reduce(False) while accumulating; XLA moves the all-reduce out of the accumulation loop)
        per_layer = 1 / stage_layers()  # what no compute hides: the first layer's gather, the last's reduction
        if reduce_hidden and gather_hidden:  # prefetched a layer ahead through forward and backward
            per_micro = exposed(inner + 2 * gather, micro, (inner + 2 * gather) * per_layer)
        elif reduce_hidden:  # the reduce-scatters behind the backward only, the gathers exposed
            per_micro = exposed(inner, backward, inner * per_layer) + 2 * gather
        elif gather_hidden:
            per_micro = inner + exposed(2 * gather, micro, 2 * gather * per_layer)
        else:
            per_micro = inner + 2 * gather
        t_dp = m * per_micro + (exposed(across, backward, bucket * across) if reduce_hidden else across)
    else:
        reduction = inner + across
        t_dp = exposed(reduction, backward, bucket * reduction) if reduce_hidden else reduction
        if o.zero > 0:
            t_dp += exposed(gather, micro - backward, bucket * gather) if gather_hidden else gather
    return sympy.Piecewise((0, sympy.Eq(dp * cp, 1)), (t_dp, True))
