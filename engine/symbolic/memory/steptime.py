"""Step time: a roofline per micro-batch, collectives in the alpha-beta form, the pipeline schedule.

Training (one optimizer step of ``global_batch`` sequences of ``seq_len`` tokens; ``batch`` is the
micro-batch; dp x tp x pp x cp devices):

    t_step = (m + (pp - 1) / vp) t_micro + t_p2p + (1 - dp_overlap) t_dp + t_optimizer

with m = global_batch / (dp batch) micro-batches per pipeline, and per micro-batch and device

    t_micro = max(F / (peak_flops matmul_efficiency), bytes / hbm_bandwidth) + t_tp + t_ep + t_cp

F the hardware FLOPs of its share of the layers (recompute included). Collectives on p devices move
``bytes`` in the ring forms (Thakur et al. 2005; NCCL's bus bandwidth, nccl-tests PERFORMANCE.md):
all-reduce 2 (p - 1)/p bytes / bw + 2 (p - 1) alpha, reduce-scatter and all-gather (p - 1)/p bytes /
bw + (p - 1) alpha, all-to-all (p - 1)/p bytes / bw + (p - 1) alpha; bw = comm_efficiency x the link
a group uses: the scale-up link while the group fits in a node, the network otherwise.

Inference: ``ttft`` is a prefill's roofline (its FLOPs or its bytes, whichever takes longer) plus its
tensor-parallel all-reduces; ``tpot`` one decode step: every weight and the KV cache read once
(Pope et al. 2022 §2; kipply, Transformer Inference Arithmetic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import sympy

from engine.symbolic.formulas.architectures import mlp_counts
from engine.symbolic.formulas.base import Quantity, Validity
from engine.symbolic.memory.base import L, b, bits_g, dp, ep, h, pp, q, qi, quantity, s, tp, vp
from engine.symbolic.symbols import symbol

peak, attn_peak, hbm_bw = symbol("peak_flops"), symbol("attention_peak_flops"), symbol("hbm_bandwidth")
link_bw, net_bw, per_node = symbol("link_bandwidth"), symbol("inter_bandwidth"), symbol("devices_per_node")
global_batch, cp = symbol("global_batch"), symbol("cp")
eta_mm, eta_net, overlap, alpha = (symbol("matmul_efficiency"), symbol("comm_efficiency"), symbol("dp_overlap"),
                                   symbol("collective_latency"))
eta_attn = symbol("attention_efficiency")
ceiling, attn_ceiling = symbol("matmul_ceiling"), symbol("attention_ceiling")

SRC_RING = ("ring collectives: Thakur, Rabenseifner & Gropp 2005 (all-reduce 2(p-1)/p n / B + 2(p-1) alpha); NCCL "
            "bus bandwidth (nccl-tests doc/PERFORMANCE.md); Megatron-LM (Shoeybi et al. 2019 §3: 2 all-reduces per "
            "layer forward, 2 backward; Korthikanti et al. 2022 §4.2.2: reduce-scatter + all-gather with sequence "
            "parallelism, the same bytes)")
SRC_PIPE = ("Narayanan et al. 2021 §2.2 (1F1B bubble (p - 1)/m of the ideal time; interleaved (p - 1)/(v m)); "
            "point-to-point sends of one micro-batch's activations between stages")
SRC_ROOF = "roofline (Williams, Waterman & Patterson 2009): the longer of FLOPs / peak and bytes / bandwidth"
SRC_DP = ("data parallelism: a ring all-reduce of the gradients (PyTorch DDP, Megatron); ZeRO-1/2 reduce-scatter the "
          "gradients and all-gather the parameters (the same bytes); ZeRO-3/FSDP also all-gathers the parameters for "
          "the backward (1.5x; Rajbhandari et al. 2020 §7); hybrid sharding (FSDP HYBRID_SHARD; MaxText ICI-FSDP x "
          "DCN-data; Zhao et al. 2023, PyTorch FSDP §3.2.2) shards within groups of shard_group devices and "
          "all-reduces each shard across the dp / shard_group groups; dp_overlap of it hidden behind the backward "
          "(Li et al. 2020, PyTorch DDP §3.2.3 bucketing)")
SRC_EP = ("expert parallelism: two all-to-alls (dispatch, combine) per MoE layer forward and two backward, each of "
          "the micro-batch's top_k token copies (Lepikhin et al. 2021, GShard §2.2; Megatron-Core token dispatcher)")
SRC_CP = ("context parallelism: ring attention passes each device's K and V around the cp ring, cp - 1 hops forward "
          "and backward (Liu et al. 2023, Ring Attention; Megatron-Core context parallelism)")
SRC_DECODE = ("decode roofline: every weight and the whole KV cache are read once per generated token (Pope et al. "
              "2022 §2; kipply, Transformer Inference Arithmetic); prefill: compute-bound")

# Calibrated on the 136 usable measured runs of the shared file (Korthikanti et al. 2022, Narayanan et al. 2021,
# MT-NLG, MosaicML llm-foundry): `python benchmarks/validate_steptime.py --per-record --calibrate
# korthikanti2022,narayanan2021_t2,mtnlg2022,mpt_llmfoundry` (grid search, median |log error| over the records;
# comm_efficiency at most 0.9, the NCCL bus bandwidth of a link). The other sources are predictions.
DEFAULTS = {
    "matmul_efficiency": sympy.Rational(7, 10),  # of the measured matmul ceiling (matmul_ceiling x peak_flops)
    "attention_efficiency": sympy.Rational(7, 20),  # of attention_ceiling x attention_peak_flops (the 16-bit
    # ceiling and peak, also under fp8), on the FLOPs the kernels execute
    "comm_efficiency": sympy.Rational(9, 10),
    "dp_overlap": sympy.Rational(1, 5),
    "collective_latency": sympy.Rational(1, 100000),  # 10 microseconds per ring step
    "cp": sympy.Integer(1),
}


def _bw(group: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """The bandwidth a group of ``group`` devices uses, ``inner`` devices apart: the scale-up link while
    group x inner devices fit in a node, the network otherwise."""
    return eta_net * sympy.Piecewise((link_bw, sympy.Le(group * inner, per_node)), (net_bw, True))


def all_reduce(p: sympy.Expr, nbytes: sympy.Expr, bw: sympy.Expr) -> sympy.Expr:
    return 2 * (p - 1) / p * nbytes / bw + 2 * (p - 1) * alpha


def half_ring(p: sympy.Expr, nbytes: sympy.Expr, bw: sympy.Expr) -> sympy.Expr:
    """Reduce-scatter, all-gather or all-to-all: (p - 1)/p of the bytes, p - 1 steps."""
    return (p - 1) / p * nbytes / bw + (p - 1) * alpha


def all_to_all(p: sympy.Expr, nbytes: sympy.Expr, inner: sympy.Expr = 1) -> sympy.Expr:
    """An all-to-all of ``nbytes`` per device over ``p`` devices ``inner`` apart: the share bound for peers in
    the same node over the scale-up link, the rest over the network at once (the slower of the two), p - 1
    latencies. Not a ring: a peer off the node receives its bytes directly."""
    local = sympy.Min(p, sympy.Max(1, per_node / inner))  # group members in one node
    near = (local - 1) / p * nbytes / (eta_net * link_bw)
    far = (p - local) / p * nbytes / (eta_net * net_bw)
    return sympy.Max(near, far) + (p - 1) * alpha


def _micro(structure, o, act: int, m: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """``(micro, t_attn)``: one micro-batch's roofline on one device (its compute or its memory traffic, plus the
    memory-bound element-wise kernels and loss), and the attention kernels' share of its compute."""
    layers = L / pp
    # compute: hardware FLOPs (model FLOPs + recomputation) of this device's share of a micro-batch; the
    # attention kernels (forward, backward x 2, and the recomputed forward) at their own efficiency
    share = b * s / (tp * pp * cp)
    attn_passes = 3 + (1 if o.recompute != "none" else 0)
    attn = q("flops_attention_token") * attn_passes * share
    # what the attention kernels execute: a fused causal kernel (FlashAttention, SDPA's flash and efficient
    # kernels) skips the masked half of the scores; eager attention multiplies them all and masks afterwards
    counted = sympy.Rational(1, 2) if o.causal_flops == "half" else 1
    executed = (sympy.Rational(1, 2) if o.attention != "eager" else 1) / counted
    t_attn = attn * executed / (attn_peak * attn_ceiling * eta_attn)
    compute = (q("hardware_flops_token") * share - attn) / (peak * ceiling * eta_mm) + t_attn
    # memory traffic: the weights read forward, backward (dgrad) and written (wgrad), the saved activations
    # written and read once; the matmuls' roofline
    traffic = 3 * q("mem_weights") + 2 * q("mem_activations") / (m * cp)  # a cp shard holds 1/cp of the sequence
    # element-wise kernels (norms, residual adds, the MLP activation, their backward) are memory-bound and run
    # between the matmuls: forward ~ 10 d_model + 2 d_ff elements read or written per token and layer, backward
    # twice that (recomputation adds a forward)
    passes = 3 + (1 if o.recompute == "full" else 0)
    # the MLP's activation runs over d_ff units per token, or over top_k experts' in a MoE layer
    width = symbol("top_k") * symbol("d_ff_expert") if structure.moe else symbol("d_ff")
    elementwise = passes * (10 * h + 2 * width) * act * layers * b * s / cp / tp
    # the loss over the vocabulary (on the last pipeline stage, vocab-parallel over tp): the logits upcast to fp32,
    # softmax and its gradient, about eight fp32 passes over b s V / tp elements (Megatron's VocabParallel-
    # CrossEntropy, PyTorch's log_softmax + nll_loss): memory-bound, and the bottleneck stage's
    loss = 8 * 4 * b * s / cp * symbol("vocab") / tp
    return sympy.Max(compute, traffic / hbm_bw) + (elementwise + loss) / hbm_bw, t_attn


def _model_parallel(structure, o, act: int, t_attn: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """``(t_tp, t_ep, t_cp)``: one micro-batch's exposed tensor-parallel all-reduces, expert all-to-alls and
    context-parallel ring exchanges on one device."""
    layers = L / pp
    tokens_mb = b * s / cp  # tokens of one micro-batch on one device (context parallelism splits them)
    # tensor parallelism: 2 all-reduces per layer forward, 2 backward (and 2 more when the forward is recomputed)
    reductions = 6 if o.recompute == "full" else 4
    tp_bytes = act * tokens_mb * h
    t_tp = sympy.Piecewise((0, sympy.Eq(tp, 1)), (layers * reductions * all_reduce(tp, tp_bytes, _bw(tp)), True))
    t_ep = sympy.Integer(0)
    if structure.moe:  # each device dispatches its sequence-parallel share of the tokens (Megatron requires
        # sequence parallelism for MoE with tp > 1), top_k copies of each
        moe_layers = mlp_counts(structure)["moe"] / pp
        ep_bytes = act * tokens_mb / tp * symbol("top_k") * h
        t_ep = sympy.Piecewise((0, sympy.Eq(ep, 1)), (moe_layers * 4 * all_to_all(ep, ep_bytes, symbol("etp")), True))
    # ring attention: each device's K and V (its tp share of the kv heads) pass cp - 1 hops per layer forward and
    # twice backward (K, V and their gradients), each hop overlapped with the attention of the block in hand
    kv_bytes = act * 2 * tokens_mb * symbol("n_kv_heads") * symbol("head_dim") / tp
    ring = 3 * (cp - 1) * (kv_bytes / _bw(cp, tp) + alpha)
    t_cp = sympy.Piecewise((0, sympy.Eq(cp, 1)), (layers * sympy.Max(0, ring - t_attn / layers), True))
    return t_tp, t_ep, t_cp


def _data_parallel(structure, o, act: int) -> sympy.Expr:
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
            return all_reduce(group * cp, reduced, _bw(group * cp, tp))
        gathers = 2 if o.zero >= 3 else 1
        inside = _bw(shard * cp, tp)
        return (half_ring(shard * cp, reduced, inside) + gathers * half_ring(shard * cp, gathered, inside)
                + all_reduce(group / shard, reduced / shard, _bw(group / shard, tp * shard * cp)))

    g = symbol("shard_group")
    if structure.moe:  # routed experts over ep x etp, synchronised over the expert data-parallel group
        routed = qi("params_routed_experts")
        edp = dp * tp / (ep * symbol("etp"))
        sync_all = sync((qi("params_total") - routed) / (tp * pp), dp, g) + sympy.Piecewise(
            (0, sympy.Eq(edp, 1)), (sync(routed / (ep * symbol("etp") * pp), edp, edp), True))
    else:
        sync_all = sync(qi("params_total") / (tp * pp), dp, g)
    return sympy.Piecewise((0, sympy.Eq(dp * cp, 1)), (sync_all, True))


def training(structure, o) -> list[Quantity]:
    act = 4 if o.precision == "fp32" else 2  # bytes of an activation element on the wire
    m = global_batch / (dp * b)  # micro-batches per pipeline and step (gradient accumulation)
    micro, t_attn = _micro(structure, o, act, m)
    t_tp, t_ep, t_cp = _model_parallel(structure, o, act, t_attn)
    t_micro = micro + t_tp + t_ep + t_cp
    # pipeline: the bubble and one micro-batch's activations sent forward and its gradient back per stage boundary
    p2p_bytes = act * b * s / cp * h / (tp if o.sequence_parallel else 1)
    t_p2p = sympy.Piecewise((0, sympy.Eq(pp, 1)), (2 * (m + pp - 1) * (p2p_bytes / _bw(2, tp * dp) + alpha), True))
    t_pipe = (m + (pp - 1) / vp) * t_micro + t_p2p
    t_dp = _data_parallel(structure, o, act)
    # the optimizer step: model states read and written once (memory-bound)
    t_opt = 2 * q("mem_model_states") / hbm_bw
    step = t_pipe + (1 - overlap) * t_dp + t_opt
    n_dev = dp * tp * pp * cp
    tokens_step = global_batch * s
    return [
        quantity("time_compute", m * micro, "roofline time of the step's micro-batches per device (FLOPs or bytes)",
                 r"T_{\mathrm{compute}}", SRC_ROOF, units="s"),
        quantity("time_tp", m * t_tp, "exposed tensor-parallel communication per step", r"T_{\mathrm{TP}}", SRC_RING,
                 units="s"),
        quantity("time_ep", m * t_ep, "expert-parallel all-to-alls per step", r"T_{\mathrm{EP}}", SRC_EP, units="s"),
        quantity("time_cp", m * t_cp, "context-parallel ring exchanges per step", r"T_{\mathrm{CP}}", SRC_CP,
                 units="s"),
        quantity("time_bubble", (pp - 1) / vp * t_micro, "pipeline bubble per step", r"T_{\mathrm{bubble}}",
                 SRC_PIPE, units="s"),
        quantity("time_p2p", t_p2p, "pipeline point-to-point sends per step", r"T_{\mathrm{p2p}}", SRC_PIPE,
                 units="s"),
        quantity("time_dp", (1 - overlap) * t_dp, "exposed data-parallel gradient communication per step",
                 r"T_{\mathrm{DP}}", SRC_DP, units="s"),
        quantity("time_optimizer", t_opt, "optimizer step (model states read and written once)",
                 r"T_{\mathrm{opt}}", SRC_ROOF, units="s"),
        quantity("step_time", step, "time of one training step", r"T_{\mathrm{step}}",
                 "sum of the above: " + SRC_PIPE, units="s"),
        quantity("tokens_per_s", tokens_step / q("step_time"), "training tokens per second, all devices",
                 r"\mathrm{tok/s}", "global_batch x seq_len / step_time", units="1/s"),
        quantity("step_mfu", q("flops_token") * tokens_step / (n_dev * peak * q("step_time")),
                 "model FLOPs utilization of the step", r"\mathrm{MFU}",
                 "Chowdhery et al. 2022 App. B: model FLOPs per second / peak", units="1"),
        quantity("step_hfu", q("hardware_flops_token") * tokens_step / (n_dev * peak * q("step_time")),
                 "hardware FLOPs utilization (recomputation counted)", r"\mathrm{HFU}",
                 "Chowdhery et al. 2022 App. B; Korthikanti et al. 2022 §6", units="1"),
    ]


def inference(structure, o) -> list[Quantity]:
    act = 2 if o.precision != "fp32" else 4
    flops = q("flops_forward_token") * b * s / (tp * pp)
    prefill = sympy.Max(flops / (peak * eta_mm), (q("mem_weights") + q("mem_kv_cache")) / hbm_bw)
    t_tp = sympy.Piecewise((0, sympy.Eq(tp, 1)), (L / pp * 2 * all_reduce(tp, act * b * s * h, _bw(tp)), True))
    decode_tp = sympy.Piecewise((0, sympy.Eq(tp, 1)), (L / pp * 2 * all_reduce(tp, act * b * h, _bw(tp)), True))
    decode = (q("mem_weights") + q("mem_kv_cache")) / hbm_bw + decode_tp
    return [
        quantity("ttft", prefill + t_tp, "time to first token: the prefill's roofline and its all-reduces",
                 r"T_{\mathrm{TTFT}}", SRC_ROOF + "; " + SRC_RING, units="s"),
        quantity("tpot", decode, "time per output token: weights and KV cache read once per decode step",
                 r"T_{\mathrm{TPOT}}", SRC_DECODE, units="s"),
        quantity("tokens_per_s", b / q("tpot"), "decode tokens per second (batch / tpot)", r"\mathrm{tok/s}",
                 SRC_DECODE, units="1/s"),
    ]


@dataclass(frozen=True)
class LayoutRule:
    """One rule a training layout obeys: once, for every caller.

    Attributes:
        name: a short identifier.
        condition: a sympy boolean over input symbols (tp, pp, dp, cp, batch, vp, ep, etp, n_gpus, ...).
        flag: the flag a point error blames (``llm-sweep time``).
        message: what must hold, in words: the sweep's validity message.
        explain: the point error of a layout that breaks it, from the layout's values by symbol name (what
            was wrong and what would be valid); None where the formula set's check reports it (it needs a
            size of the architecture).
        only_if_given: the rule holds once this input is fixed or swept: ``global_batch`` for a training
            step, ``n_gpus`` for a search over the layouts of a device count.
    """

    name: str
    condition: sympy.Basic
    flag: str
    message: str
    explain: Callable[[Mapping[str, int]], str] | None = None
    only_if_given: str = "global_batch"

    def holds(self, values: Mapping[str, int]) -> bool:
        """Whether the layout of ``values`` (every symbol of the condition given) obeys the rule."""
        return bool(self.condition.subs({symbol(k): v for k, v in values.items()}))

    def applies(self, values: Mapping[str, int]) -> bool:
        """Whether ``values`` give every input of the condition (a point check can decide it)."""
        return all(x.name in values for x in self.condition.free_symbols)


def _valid_gpus(v: Mapping[str, int]) -> str:
    model = v["tp"] * v["pp"] * v["cp"]
    valid = [g for g in range(model, 4 * model + 1, model)]
    return f"is not a multiple of tp x pp x cp = {model}; valid: {', '.join(map(str, valid))}, ..."


def divisors_text(n: int) -> str:
    """``1, 2, 3, 4, 6, 12``: the divisors of ``n`` as a list of valid values (the first 12, then ``...``)."""
    divisors = [g for g in range(1, n + 1) if n % g == 0]
    return f"{', '.join(map(str, divisors[:12]))}{', ...' if len(divisors) > 12 else ''}"


_g, _sg, _etp, _kv = symbol("n_gpus"), symbol("shard_group"), symbol("etp"), symbol("n_kv_heads")
_sp_rule = LayoutRule(
    "sequence_parallel_tp", sympy.Gt(tp, 1), "--sequence-parallel",
    "sequence parallelism splits the tensor-parallel regions: it needs tp > 1 (Megatron turns it off at tp 1, "
    "the same layout without it)", only_if_given="n_gpus")

# The layout rules, in the order a point is checked (``timing.Layout.resolved`` reports the first it breaks). The
# same records are a sweep's validity (``validity``): ``llm-sweep plan`` and sweeps/plan-gpt3-175b.toml mask the
# layouts that break them. Rules of the architecture's sizes (tp | n_heads, pp | n_layers, ep | n_experts) are
# the memory formulas' (``engine.symbolic.memory``).
LAYOUT_RULES = (
    LayoutRule("devices", sympy.Eq(sympy.Mod(_g, tp * pp * cp), 0), "--gpus", "tp x pp x cp must divide n_gpus",
               _valid_gpus),
    LayoutRule("data_parallel", sympy.Eq(dp * tp * pp * cp, _g), "--dp", "dp x tp x pp x cp must equal n_gpus",
               lambda v: f"tp x pp x cp x dp = {v['dp'] * v['tp'] * v['pp'] * v['cp']} devices, but --gpus is "
                         f"{v['n_gpus']}; --dp {v['n_gpus'] // (v['tp'] * v['pp'] * v['cp'])} uses them all"),
    LayoutRule("micro_batches", sympy.Eq(sympy.Mod(global_batch, dp * b), 0), "--global-batch",
               "global_batch must be whole micro-batches (batch) on every data-parallel rank",
               lambda v: f"must be a multiple of dp x micro-batch = {v['dp']} x {v['batch']} = {v['dp'] * v['batch']} "
                         "(whole micro-batches on every data-parallel rank)"),
    LayoutRule("interleaving", sympy.Or(sympy.Eq(vp, 1), sympy.Gt(pp, 1)), "--vp",
               "virtual pipeline stages (vp > 1) interleave a pipeline: they need pp > 1",
               lambda v: "virtual pipeline stages interleave a pipeline: give --pp > 1"),
    LayoutRule("stage_layers", sympy.Eq(sympy.Mod(L, pp * vp), 0), "--vp",
               "vp must divide the layers of a pipeline stage (n_layers / pp)"),
    LayoutRule("context", sympy.Eq(sympy.Mod(s, cp), 0), "--cp", "cp must divide seq_len"),
    LayoutRule("shard_group", sympy.Eq(sympy.Mod(dp, _sg), 0), "--shard-group", "shard_group must divide dp",
               lambda v: f"must divide dp = {v['dp']}; valid: {divisors_text(v['dp'])}"),
    LayoutRule("expert_stage", sympy.Eq(sympy.Mod(dp * tp * cp, ep * _etp), 0), "--ep",
               "ep x etp must divide dp x tp x cp (the devices of a pipeline stage)",
               lambda v: f"ep x etp = {v['ep'] * v['etp']} must divide dp x tp x cp = {v['dp'] * v['tp'] * v['cp']} "
                         "(the devices of a pipeline stage)"),
    LayoutRule("kv_heads", sympy.Eq(sympy.Mod(_kv, tp), 0), "--tp",
               "tp must divide n_kv_heads (Megatron splits the key/value heads over tp)", only_if_given="n_gpus"),
)


def layout_rules(o) -> tuple[LayoutRule, ...]:
    """The layout rules of a training step with options ``o`` (sequence parallelism adds its own)."""
    if o.mode != "training":
        return ()
    return LAYOUT_RULES + ((_sp_rule,) if o.sequence_parallel else ())


def validity(o) -> list[Validity]:
    """A training step's layout rules (``LAYOUT_RULES``) as validity conditions, each once what it needs is
    given (so a sweep over tp, pp, dp, batch with n_gpus and global_batch fixed masks the layouts that do not
    use every device or split the batch)."""
    return [Validity(r.message, r.condition, only_if_given=r.only_if_given) for r in layout_rules(o)]


def quantities(structure, o) -> list[Quantity]:
    return training(structure, o) if o.mode == "training" else inference(structure, o)


def defaults() -> dict[str, sympy.Expr]:
    return dict(DEFAULTS)
