"""Serving: time to first token, time per output token, throughput, capacity and cost of a deployment.

A deployment is dp replicas of tp x pp devices, each running an engine (vLLM, SGLang, TensorRT-LLM:
``engine.options.engines``) with continuous batching; ``concurrency`` requests are in flight (a benchmark's
closed loop: a finished request is replaced at once), each of ``input_len`` prompt tokens and ``output_len``
generated ones. Per replica, B = min(concurrency / dp, max_num_seqs) requests run at once:

    decode step   d = pp (max(FLOPs / rate, bytes / (hbm_bandwidth eta_bw)) + (L / pp)(t_layer + t_AR)) + t_sched
                  bytes: the stage's weights (a MoE layer's experts that the step's tokens touch) and the KV
                  cache of B / pp requests at their mean context input_len + output_len / 2
    prefill       p = max(FLOPs_prefill / rate, weights / bandwidth) + the same floor + its all-reduces + the
                  eager dispatch of a prefill pass, L t_pl + L_moe t_pm (prefills run outside CUDA graphs)
    ttft          p + d + W + f_ls W_ls (it shares its step with the running decodes and queues behind the
                  prefills ahead of it: M/D/1, W = rho S / (2 (1 - rho)), S = input_len c, rho the prefills' share
                  of the time, as DistServe models its prefill instance; a share f_ls of the requests arrives with
                  all B at once, as a closed-loop benchmark starts, and waits W_ls = (B - 1) / 2 prefills; f_ls = 1
                  for an engine that runs prefills apart, mixed_chunk false: such a burst stays in lockstep)
    tpot          tau: the decode step stretched by the prefill chunks mixed into the steps (chunked prefill):
                  tau = d / (1 - lambda input_len c) with lambda = B / (ttft + (output_len - 1) tau) requests per
                  second (Little's law) and c the prefill's seconds per token; the positive root of the quadratic
    throughput    dp output_len lambda, per device / (tp pp dp), per user 1 / tpot

Requests beyond max_num_seqs, or beyond what the KV pool holds, wait for a running one to finish: ttft grows by
(concurrency / dp - B) / lambda.
``max_concurrency`` is what the KV pool holds, as vLLM logs it: the pool's tokens / (input_len + output_len)
rounded up to whole pages, x dp. Sources: SRC_SERVING; the knobs (decode_bandwidth_efficiency, layer_latency,
step_latency, moe_layer_latency on TPOT; prefill_layer_latency, prefill_moe_layer_latency, lockstep_fraction on
TTFT) are fitted on NVIDIA AIConfigurator's TensorRT-LLM rows, as ``benchmarks/validate_serving.py`` states.
"""

from __future__ import annotations

import sympy

from engine.options.engines import engine as engine_record
from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.architectures import mixer_counts, mlp_counts
from engine.symbolic.formulas.base import Quantity
from engine.symbolic.memory.base import L, V, a, dp, ep, etp, h, pp, q, qi, quantity, tp
from engine.symbolic.memory.compute import attention_token_flops
from engine.symbolic.memory.inference import attention_token_bytes, kept_tokens, state_bytes
from engine.symbolic.memory.states import stages
from engine.symbolic.memory.steptime.collectives import all_reduce, all_to_all, eta_link, eta_nic, hi, lo
from engine.symbolic.memory.steptime.common import alpha, net_bw, per_node
from engine.symbolic.memory.steptime.common import ceiling, eta_mm, hbm_bw, link_bw, peak
from engine.symbolic.symbols import symbol

I, O, C_ = symbol("input_len"), symbol("output_len"), symbol("concurrency")
block, util = symbol("block_size"), symbol("kv_memory_fraction")
budget, max_seqs = symbol("max_num_batched_tokens"), symbol("max_num_seqs")
eta_bw, t_layer, t_sched = symbol("decode_bandwidth_efficiency"), symbol("layer_latency"), symbol("step_latency")
alpha_ar, price, hbm = symbol("allreduce_latency"), symbol("cost_per_hour"), symbol("hbm_capacity")
t_moe, m_half = symbol("moe_layer_latency"), symbol("expert_half_tokens")
spec, alpha_spec = symbol("spec_tokens"), symbol("acceptance_rate")
r_attn, n_half = symbol("attention_curve_peak_flops"), symbol("attention_half_tokens")
f_lock = symbol("lockstep_fraction")
t_pl, t_pm = symbol("prefill_layer_latency"), symbol("prefill_moe_layer_latency")
n_pre = symbol("prefill_replicas")
power = symbol("power_kw")

SRC_SERVING = ("continuous batching (Yu et al. 2022, Orca: iteration-level scheduling) with chunked prefill (Agrawal "
               "et al. 2024, Sarathi-Serve: prefill chunks ride in the decode steps); the decode step a roofline over "
               "the weights and the paged KV cache read once (Pope et al. 2022 §2; Kwon et al. 2023, PagedAttention) "
               "plus a per-layer and per-step floor; the closed loop by Little's law (requests in flight = rate x "
               "time in the system)")
SRC_CAPACITY = ("vLLM Worker.determine_available_memory and its log 'Maximum concurrency for N tokens per request': "
                "KV blocks x block_size / tokens per request; TensorRT-LLM KvCacheConfig.free_gpu_memory_fraction "
                "of the memory left after weights and activations")
SRC_MOE_DECODE = ("experts a decode step touches: each of E experts is missed by a token with probability 1 - k/E, "
                  "so E (1 - (1 - k/E)^T) of them are read for T tokens (uniform routing)")
SRC_MOE_LAYER = ("a MoE layer's fixed time per step: its router, top-k, token permutation and the grouped GEMMs' "
                 "launch over every local expert; the grouped GEMMs at M tokens per expert reach M / (M + "
                 "expert_half_tokens) of the dense rate (DeepGEMM's published grouped GEMMs, as in training)")
SRC_QUEUE = ("a prefill waits behind the prefills ahead of it: M/D/1, W = rho S / (2 (1 - rho)) (Zhong et al. 2024, "
             "DistServe §3.1, its prefill instance's queue)")
SRC_LOCKSTEP = ("closed-loop benchmarks (aiperf, vLLM's benchmark_serving --max-concurrency) start every client's "
                "request at once, and requests of equal lengths then finish, and return, together: a request of such a "
                "burst waits for the prefills queued ahead of it, (B - 1) / 2 of them on average, in steps of "
                "max_num_batched_tokens prompt tokens that also carry the running decodes (an engine that mixes "
                "prefill chunks into decode steps: a lockstep_fraction of the requests, fitted); an engine that runs "
                "prefills apart and first (SGLang: enable_mixed_chunk off) decodes none of a burst until all of it is "
                "prefilled, so the burst decodes, finishes and returns together every cycle: all requests, in steps "
                "of prompts alone")
SRC_DISPATCH = ("a prefill pass's fixed time per layer: engines capture decode steps in CUDA graphs but run prefills "
                "eagerly, each kernel launched from Python (NVIDIA AIConfigurator's vLLM backend adds 0.8 ms a layer "
                "to a prefill for it, calibrated on its silicon table: _prefill_dispatch_overhead_ms)")
SRC_A2A = ("wide expert parallelism (experts over more devices than a replica's tp: attention data parallelism, as "
           "DeepSeek serves V3, arXiv:2412.19437 §3.4): each MoE layer dispatches every token's top_k copies to their "
           "experts' devices and combines them back, two all-to-alls of tokens x top_k x d_model activations; "
           "DeepEP's low-latency kernels send to every peer at once (one latency), at the NIC's rate (its published "
           "table: 128 tokens x top-8 x 7168 at EP 128 dispatched (fp8) in 192 us and combined (bf16) in 369 us, "
           "about 39 GB/s of a CX7's 50)")
SRC_DISAGG = ("disaggregated prefill and decode (Zhong et al. 2024, DistServe; Patel et al. 2024, Splitwise): a "
              "prefill pool of prefill_replicas replicas runs the prompts, an M/D/1 queue in front of it (DistServe "
              "§3.1), and hands each request's KV cache to one of dp decode replicas, whose steps carry no prefill "
              "chunks; the transfer over the scale-up link inside a node, else over the NICs (NIXL, Mooncake); a "
              "closed loop runs at the slower of the pools' rates, the rest waiting (Little's law)")
SRC_SPEC = ("speculative decoding: g draft tokens verified in one step yield (1 - a^(g+1)) / (1 - a) tokens "
            "(Leviathan et al. 2023, eq. 1); drafts from a one-layer head (DeepSeek-V3 MTP, EAGLE)")
SRC_AR = ("tensor parallelism: two all-reduces per layer (Shoeybi et al. 2019 §3); a decode step's are small, so "
          "their latency counts (vLLM and TensorRT-LLM run a one-shot custom all-reduce inside a node)")
SRC_COST = ("device-hours x cost_per_hour over the tokens they produce, per million; split between input and output "
            "by the device time each takes (the prefills' share of a step, or the prefill pool's devices)")

# The knobs' values: the decode's four (decode_bandwidth_efficiency, layer_latency, step_latency,
# moe_layer_latency) on TPOT, then the prefill's three (prefill_layer_latency, prefill_moe_layer_latency,
# lockstep_fraction) on TTFT, of the aic_trtllm rows of tests/data/serving_aiconfigurator.csv only
# (benchmarks/validate_serving.py --calibrate aic_trtllm); allreduce_latency is published (SRC_AR's one-shot
# all-reduce, engine/options/data/engines.json notes)
DEFAULTS = {
    "decode_bandwidth_efficiency": sympy.Rational(85, 100),
    "layer_latency": sympy.Rational(35, 1000000),
    "step_latency": sympy.Rational(1, 1000),
    "moe_layer_latency": sympy.Rational(40, 1000000),
    # speculative decoding: none by default; an accepted draft's rate where one is given: DeepSeek-V3's MTP
    # (arXiv:2412.19437 §5.4.3: the second token accepted 85-90 % of the time)
    "spec_tokens": sympy.Integer(0),
    "acceptance_rate": sympy.Rational(85, 100),
    "allreduce_latency": sympy.Rational(10, 1000000),
    "lockstep_fraction": sympy.Rational(15, 100),
    "prefill_layer_latency": sympy.Rational(4, 10000),
    "prefill_moe_layer_latency": sympy.Rational(15, 10000),
    "dp": sympy.Integer(1),
}


NAMES = ("time_decode", "time_prefill", "time_prefill_token", "running_requests", "decoding_requests",
         "accepted_tokens", "time_kv_transfer", "time_first_step", "tpot", "time_queue", "time_lockstep", "ttft",
         "tokens_per_s",
         "tokens_per_s_per_gpu", "tokens_per_s_per_user", "tokens_per_s_per_mw", "mem_kv_pool", "mem_kv_request",
         "max_concurrency", "cost_per_mtok", "cost_per_mtok_input", "cost_per_mtok_output")
"""The serving quantities (``quantities``): printed as their definitions, which name their parts, not expanded
(DISAGGREGATED_ONLY's in serving disaggregated only)."""


def defaults(o) -> dict[str, sympy.Expr]:
    """The serving symbols' defaults: the knobs and the engine's limits (its values on a large device)."""
    rec = engine_record(o.engine)
    share = sympy.nsimplify(rec.memory_fraction) if rec.memory_reserve is None else _reserved_share(rec)
    # seq_len, the memory model's context: a request's longest, input_len + output_len
    # an engine that runs prefills apart keeps a burst in lockstep (SRC_LOCKSTEP): every request arrives in it
    lockstep = DEFAULTS["lockstep_fraction"] if rec.mixed_chunk else sympy.Integer(1)
    return {**DEFAULTS, "lockstep_fraction": lockstep, "seq_len": I + O, "block_size": sympy.Integer(rec.block_size),
            "kv_memory_fraction": share,
            "max_num_batched_tokens": sympy.Integer(rec.max_num_batched_tokens),
            "max_num_seqs": sympy.Integer(rec.max_num_seqs)}


def _reserved_share(rec) -> sympy.Expr:
    """SGLang's memory share as a formula of the device's memory (hbm_capacity, as its driver reports it) and the
    replica's tp x pp: (capacity - reserve) / capacity rounded to three digits, the reserve by capacity tier
    (``Engine.reserve_of``, engines.json memory_reserve and its source)."""
    r = rec.memory_reserve
    mib = hbm / 2**20
    parallel = sympy.nsimplify(r["per_parallel_gib"]) * 1024 * tp * pp
    branches = []
    for top, chunk, graph in r["tiers_gib"]:
        reserved = (r["base_mib"] + sympy.nsimplify(r["per_prefill_token_mib"]) * chunk + parallel
                    + r["per_graph_seq_mib"] * graph)
        if top is None or top > r["floor_above_gib"]:  # the floor on devices over floor_above_gib
            reserved = sympy.Piecewise((hi(reserved, r["floor_gib"] * 1024), mib > r["floor_above_gib"] * 1024),
                                       (reserved, True))
        branches.append((reserved, True if top is None else mib < top * 1024))
    reserved = sympy.Piecewise(*branches)
    return sympy.floor((mib - reserved) / mib * 1000 + sympy.Rational(1, 2)) / 1000


def kv_bytes(structure, o, context: sympy.Expr) -> sympy.Expr:
    """Cache bytes of one request at ``context`` tokens on one device: its attention layers' K and V (a windowed
    layer's window at most) and its recurrent states (inference.py's per-token and per-layer terms)."""
    counts = mixer_counts(structure)
    per_layer = attention_token_bytes(structure, o)
    kv = sum((counts[k] / pp * kept_tokens(k).subs(symbol("seq_len"), context) * per_layer
              for k in structure.attention_kinds), sympy.Integer(0))
    return kv + sum((counts[k] / pp * v for k, v in state_bytes(structure, o).items()), sympy.Integer(0))


def _touched_weights(structure, batch: sympy.Expr) -> sympy.Expr:
    """Weight bytes one decode step of a replica reads per device: every weight, but of a MoE layer's routed
    experts only those the step's tokens touch (SRC_MOE_DECODE), the tokens of the ep x etp / tp replicas whose
    experts share the devices (wide expert parallelism across attention data-parallel ranks)."""
    if not structure.moe:
        return q("mem_weights")
    routed = qi("params_routed_experts") / (ep * etp * stages()) * symbol("bits_weight") / 8  # bytes per device
    tokens = batch / pp * hi(1, ep * etp / tp)
    touched = touched_experts(C.n_experts, C.top_k, tokens) / C.n_experts
    return q("mem_weights") - routed * (1 - touched)


def touched_experts(experts: sympy.Expr, top_k: sympy.Expr, tokens: sympy.Expr) -> sympy.Expr:
    """Experts that ``tokens`` tokens touch, each routed to ``top_k`` distinct experts of ``experts`` uniformly:
    E (1 - (1 - k/E)^T) (SRC_MOE_DECODE; top_k <= experts, the max keeps the power real)."""
    return experts * (1 - hi(0, 1 - top_k / experts) ** tokens)


def _running() -> sympy.Expr:
    """Requests running at once on a replica: its share of the concurrency, at most max_num_seqs and at most what
    its KV pool holds (max_concurrency / dp); the rest wait in the engine's queue."""
    return lo(C_ / dp, max_seqs, hi(1, q("max_concurrency") / dp))


def _rate() -> sympy.Expr:
    """The GEMMs' FLOP/s on one device: peak_flops x matmul_ceiling x matmul_efficiency (as in training)."""
    return peak * ceiling * eta_mm


def _floor(structure) -> sympy.Expr:
    """The fixed time of one pass over a stage's layers: t_layer each, two small all-reduces under tp, and each
    MoE layer's own fixed time (SRC_MOE_LAYER)."""
    ar = sympy.Piecewise((0, sympy.Eq(tp, 1)), (2 * alpha_ar, True))
    moe = mlp_counts(structure)["moe"] * t_moe if structure.moe else 0
    return (L * (t_layer + ar) + moe) / pp


def _prefill_dispatch(structure) -> sympy.Expr:
    """The fixed time of a prefill pass over all layers: each layer's kernels dispatched from the CPU (prefills run
    outside CUDA graphs: their shapes vary), and each MoE layer's routing, permutation and grouped-GEMM dispatch
    (SRC_DISPATCH)."""
    moe = mlp_counts(structure)["moe"] * t_pm if structure.moe else 0
    return L * t_pl + moe


def _expert_all_to_all(structure, o, tokens: sympy.Expr) -> sympy.Expr:
    """Time of a pass's dispatch and combine (SRC_A2A) for ``tokens`` tokens per device, when a MoE model's experts
    span ep x etp devices beyond a replica's tp; 0 when they stay inside the replica (the tp all-reduces carry
    them)."""
    if not structure.moe:
        return sympy.Integer(0)
    group = ep * etp
    nbytes = tokens * C.top_k * h * o.activation_bytes
    per_layer = 2 * all_to_all(group, nbytes, 1, 1)
    return sympy.Piecewise((0, group <= tp), (mlp_counts(structure)["moe"] * per_layer, True))


def _expert_penalty(structure) -> sympy.Expr:
    """FLOPs a prefill's routed experts add on one device: each local expert costs expert_half_tokens more tokens'
    worth (grouped GEMMs at M / (M + m_half) of the dense rate), as in training."""
    if not structure.moe:
        return sympy.Integer(0)
    d_in = C.moe_latent_size if structure.moe_latent else h
    expert = C.mlp(structure.mlp, structure.expert_bias, C.d_ff_expert, d_in)
    local = C.n_experts / (ep * etp)
    return m_half * local * 2 * expert * mlp_counts(structure)["moe"] / pp


def accepted_tokens() -> sympy.Expr:
    """Tokens a decode step yields per request with speculative decoding: (1 - a^(g+1)) / (1 - a) for g draft
    tokens each accepted with probability a (Leviathan et al. 2023, eq. 1); 1 without drafts (g = 0)."""
    return (1 - alpha_spec ** (spec + 1)) / (1 - alpha_spec)


def _decode_step(structure, o, batch: sympy.Expr | None = None) -> sympy.Expr:
    """One decode step of a replica of ``batch`` requests (running_requests): pp stage passes of B / pp requests,
    each verifying its g draft tokens with the next one (g + 1 tokens of compute, the weights and KV cache read
    once), plus the drafts (an MTP / EAGLE head: one layer's share of the step per draft token)."""
    act = o.activation_bytes
    batch = q("running_requests") if batch is None else batch
    group = batch / pp * (spec + 1)
    context = I + O / 2  # a request's mean context over its decode
    matmul = q("flops_forward_token") - q("flops_attention_token")  # at seq_len: the matmuls and logits
    # (a decode step's expert GEMMs, a few tokens each, are bound by reading the touched experts: the bytes term)
    # the GEMMs at the GEMM rate (fp8 / fp4 where the weights are); attention (scores against the cached K and V)
    # at the fused attention kernel's rate, in 16-bit (FlashMLA, FlashInfer decode: their own kernels, not the
    # weights' GEMMs)
    compute = group * (matmul / _rate() + attention_token_flops(structure, context) / r_attn) / (tp * pp)
    comm = sympy.Piecewise((0, sympy.Eq(tp, 1)),
                           (L / pp * 2 * 2 * (tp - 1) / tp * act * group * h / link_bw, True))
    nbytes = _touched_weights(structure, batch) + batch / pp * kv_bytes(structure, o, context)
    step = pp * (hi(compute, nbytes / (hbm_bw * eta_bw)) + _floor(structure) + comm)
    return step * (1 + spec / L) + _expert_all_to_all(structure, o, group / tp) + t_sched


def _prefill(structure, o) -> tuple[sympy.Expr, sympy.Expr]:
    """``(time, seconds per token)``: one request's prefill alone on a replica (the longer of its FLOPs and a read
    of the weights, its attention at the fused kernel's curve, the floor, its all-reduces), and the compute a
    prompt token adds to a step it shares (its matmuls and causal attention: chunked prefill's marginal cost)."""
    act = o.activation_bytes
    matmul = q("flops_forward_token") - q("flops_attention_token") - 2 * h * V  # logits: the last token's only
    attn = attention_token_flops(structure, I, sympy.Rational(1, 2))  # causal: half the scores
    t_attn = attn * (I + n_half) / (I * r_attn)
    per_token = matmul / (tp * pp * _rate()) + t_attn / (tp * pp)
    compute = I * (matmul / (tp * _rate()) + t_attn / tp) + (2 * h * V / tp + pp * _expert_penalty(structure)) / _rate()
    comm = sympy.Piecewise((0, sympy.Eq(tp, 1)),
                           (L * 2 * (all_reduce(tp, act * I * h, link_bw) + alpha_ar), True))
    time = (hi(compute, pp * q("mem_weights") / (hbm_bw * eta_bw)) + pp * _floor(structure)
            + _prefill_dispatch(structure) + _expert_all_to_all(structure, o, I / tp) + comm + t_sched)
    return time, per_token


def _capacity(structure, o) -> sympy.Expr:
    """KV pool bytes per device: the engine's memory share less the weights and the activation peak of a step of
    max_num_batched_tokens tokens (residual, q/k/v, the MLP's gated intermediate, one layer at a time)."""
    act = o.activation_bytes
    width = C.top_k * C.d_ff_expert if structure.moe else C.d_ff
    activations = budget * act * (3 * h + (a * C.head_dim + 2 * C.n_kv_heads * C.head_dim) / tp
                                  + 3 * width / tp)
    if engine_record(o.engine).memory_kind == "free":
        return util * (hbm - q("mem_weights") - activations)
    return util * hbm - q("mem_weights") - activations


def _disaggregated(structure, o) -> dict[str, sympy.Expr]:
    """The definitions serving disaggregated replaces (SRC_DISAGG): prefill_replicas prefill replicas and dp decode
    replicas of tp x pp devices each. The decode slots' closed loop runs through the prefill pool's queue (M/D/1 at
    the loop's own rate, solved as a quadratic), so its rate rises to the prefill pool's capacity and no further;
    the decode batch is what Little's law leaves decoding (fewer than the slots when the prefill pool binds)."""
    d, c, running = q("time_decode"), q("time_prefill_token"), q("running_requests")
    ttft1, tokens, tpot = q("time_first_step"), q("accepted_tokens"), q("tpot")
    # a request's KV cache at its prompt, per device, to its decode replica: over the scale-up link when both pools
    # fit in one node, else over the NICs
    bw = sympy.Piecewise((eta_link * link_bw, (n_pre + dp) * tp * pp <= per_node), (eta_nic * net_bw, True))
    transfer = kv_bytes(structure, o, I) / bw + alpha
    service = I * c + I / budget * _prefill_dispatch(structure)  # a prompt's share of a busy prefill replica
    capacity = n_pre / service  # requests per second the prefill pool prefills
    burst = f_lock * q("time_lockstep")
    outside = ttft1 + burst + (O - 1) * tpot  # a request's time in the system but for the prefill queue
    # the closed loop of the admitted requests A = dp B at the M/D/1 wait of its own rate X: A = X (Z + W(X)), W =
    # rho S / (2 (1 - rho)), rho = X / capacity: a quadratic in rho, its root in (0, 1) (a = capacity Z, n the
    # prefill replicas), so the rate rises to the prefill pool's capacity and never past it
    admitted, a = dp * running, capacity * outside
    rho = 2 * admitted / (a + admitted + sympy.sqrt((a - admitted) ** 2 + 2 * n_pre * admitted))
    # the requests decoding at a time (Little's law at the prefill pool's capacity, the decode step at the full
    # batch: an upper bound) when the prefill pool binds; else every running slot
    decoding = lo(running, capacity * (O - 1) * _decode_step(structure, o) / (tokens * dp))
    return {
        "decoding_requests": decoding,
        "time_kv_transfer": transfer,
        "time_first_step": q("time_prefill") + q("time_kv_transfer") + d,
        "tpot": d / tokens,
        "time_queue": admitted / (capacity * rho) - outside,
        "time_lockstep": hi(0, C_ / n_pre - 1) / 2 * service,
        # Little's law over every request in flight: those beyond the decode slots wait for one too
        "ttft": C_ * O / q("tokens_per_s") - (O - 1) * tpot,
        "tokens_per_s": O * admitted / (outside + q("time_queue")),
        "tokens_per_s_per_gpu": q("tokens_per_s") / (tp * pp * (dp + n_pre)),
        "cost_per_mtok_input": n_pre / (dp + n_pre) * q("cost_per_mtok") * O / I,
        "cost_per_mtok_output": dp / (dp + n_pre) * q("cost_per_mtok"),
    }


def quantities(structure, o) -> list[Quantity]:
    """The serving quantities of mode inference (module docstring), aggregated or disaggregated (o.serving)."""
    out = _aggregated(structure, o)
    if o.serving != "disaggregated":
        return [x for x in out if x.name not in DISAGGREGATED_ONLY]
    new = {**_disaggregated(structure, o), "time_decode": _decode_step(structure, o, q("decoding_requests"))}
    texts = {
        "time_decode": ("one decode step of a decode replica (every decoding request gains a token)",
                        "; ".join((SRC_SERVING, SRC_MOE_DECODE, SRC_MOE_LAYER, SRC_AR, SRC_A2A))),
        "decoding_requests": ("requests decoding at once on a decode replica: its running slots, or fewer when the "
                              "prefill pool's capacity binds (Little's law)", SRC_DISAGG),
        "time_kv_transfer": ("a request's KV cache at its prompt, per device, from its prefill replica to its decode "
                             "replica", SRC_DISAGG),
        "time_first_step": ("a request's first token: its prefill, the KV cache's transfer and a decode step",
                            SRC_DISAGG),
        "tpot": ("time per output token: a decode replica's step (no prefill chunks), over the tokens it yields",
                 SRC_DISAGG + "; " + SRC_SPEC),
        "time_queue": ("a prompt's wait in the prefill pool's queue (M/D/1 at the closed loop's own rate)",
                       SRC_QUEUE),
        "time_lockstep": ("the mean wait of a request that arrives with all the others: the prompts ahead of it "
                          "in its prefill replica", SRC_LOCKSTEP),
        "ttft": ("time to first token: what Little's law leaves of the requests in flight at the deployment's rate "
                 "(the first step, the prefill queue, the lockstep_fraction's burst, the wait for a decode slot)",
                 "; ".join((SRC_DISAGG, SRC_QUEUE, SRC_LOCKSTEP))),
        "tokens_per_s": ("output tokens per second, the whole deployment: the decode slots' closed loop through the "
                         "prefill pool's queue (at most its capacity)", SRC_DISAGG),
        "tokens_per_s_per_gpu": ("output tokens per second per device, prefill and decode pools together",
                                 "tokens_per_s / (tp pp (dp + prefill_replicas))"),
        "cost_per_mtok_input": ("US dollars per million input tokens: the prefill pool's devices over the prompt "
                                "tokens", SRC_COST),
        "cost_per_mtok_output": ("US dollars per million output tokens: the decode pool's devices", SRC_COST),
    }
    return [x.__class__(**{**x.__dict__, "definition": new[x.name], "long_name": texts[x.name][0],
                           "source": texts[x.name][1]}) if x.name in new else x for x in out]


DISAGGREGATED_ONLY = ("decoding_requests", "time_kv_transfer")
"""Serving quantities of serving disaggregated only (placeholders in ``_aggregated``, which leaves them out)."""


def _aggregated(structure, o) -> list[Quantity]:
    """The serving quantities of aggregated serving (and DISAGGREGATED_ONLY's placeholders, which the
    disaggregated layout defines)."""
    decode, (prefill, per_token) = _decode_step(structure, o), _prefill(structure, o)
    d, p, c = q("time_decode"), q("time_prefill"), q("time_prefill_token")  # named: the printed formulas stay short
    running = q("running_requests")
    ttft1 = q("time_first_step")
    tokens = q("accepted_tokens")
    mixed = engine_record(o.engine).mixed_chunk  # a burst's prefill steps carry the decodes, or run apart
    step_decodes = d if mixed else sympy.Integer(0)
    # the decode steps between a request's first and last token (output_len >= 2: at 1 there is no gap)
    gaps = hi(1, O - 1) / tokens
    beta = ttft1 - running * I * c - gaps * d
    tau = 2 * d * ttft1 / (beta + sympy.sqrt(beta**2 + 4 * gaps * d * ttft1)) / tokens
    # the prefills' share of the time rho = 1 - d / step (a step = tpot x tokens = d / (1 - rho)): the M/D/1 wait
    # rho / (1 - rho) S / 2
    queue = (q("tpot") * tokens - d) / d * I * c / 2
    prefill_share = 1 - d / (q("tpot") * tokens)  # of a step's time, the prefill chunks
    cycle = ttft1 + q("time_queue") + f_lock * q("time_lockstep") + (O - 1) * q("tpot")
    rate = running / cycle  # requests per second per replica
    waiting = hi(0, C_ / dp - running) / rate
    per_request = sympy.ceiling((I + O) / block) * block
    n_dev = tp * pp * dp
    return [
        quantity("time_decode", decode, "one decode step of a replica alone (every running request gains a token)",
                 r"T_{\mathrm{dec}}", "; ".join((SRC_SERVING, SRC_MOE_DECODE, SRC_MOE_LAYER, SRC_AR, SRC_A2A)),
                 units="s"),
        quantity("time_prefill", prefill, "one request's prefill alone on a replica", r"T_{\mathrm{pre}}",
                 "; ".join((SRC_SERVING, SRC_MOE_LAYER, SRC_AR, SRC_DISPATCH, SRC_A2A)), units="s"),
        quantity("time_prefill_token", per_token, "the compute a prompt token adds to a step it shares (chunked "
                 "prefill's marginal cost)", r"t_{\mathrm{pre}}", SRC_SERVING, units="s"),
        quantity("running_requests", _running(), "requests running at once on a replica (at most max_num_seqs and "
                 "what its KV pool holds; the rest wait)", r"B", SRC_SERVING, units="1"),
        quantity("accepted_tokens", accepted_tokens(), "tokens a decode step yields per request (1 without "
                 "speculative decoding)", r"n_{\mathrm{a}}", SRC_SPEC, units="1"),
        quantity("time_kv_transfer", sympy.Integer(0), "a request's KV cache's transfer (disaggregated serving)",
                 r"T_{\mathrm{kv}}", SRC_DISAGG, units="s"),
        quantity("decoding_requests", running, "requests decoding at once on a decode replica (disaggregated "
                 "serving)", r"B_{\mathrm{d}}", SRC_DISAGG, units="1"),
        quantity("time_first_step", p + d, "the step that yields a request's first token: its prefill and the "
                 "running decodes", r"T_{1}", SRC_SERVING, units="s"),
        quantity("tpot", tau, "time per output token: the decode step stretched by the prefill chunks it carries, "
                 "over the tokens it yields", r"T_{\mathrm{TPOT}}", SRC_SERVING + "; " + SRC_SPEC, units="s"),
        quantity("time_queue", queue, "a prefill's wait behind the prefills ahead of it (M/D/1)",
                 r"W_{\mathrm{pre}}", SRC_QUEUE, units="s"),
        quantity("time_lockstep", (running - 1) / 2 * I * c
                 + running * I / (2 * budget) * (step_decodes + _prefill_dispatch(structure)),
                 "the mean wait of a request that arrives with all the running ones: the prefills ahead of it, in "
                 "steps of max_num_batched_tokens prompt tokens" + (" that carry the decodes too" if mixed else
                                                                   " alone (the decodes wait)"),
                 r"W_{\mathrm{ls}}", SRC_LOCKSTEP, units="s"),
        quantity("ttft", ttft1 + q("time_queue") + f_lock * q("time_lockstep") + waiting, "time to first token: the "
                 "prefill in the next step, its wait behind the prefills ahead of it (random arrivals, and the "
                 "lockstep_fraction that arrive in a burst), and for a running slot (max_num_seqs, the KV pool)",
                 r"T_{\mathrm{TTFT}}", "; ".join((SRC_SERVING, SRC_QUEUE, SRC_LOCKSTEP)), units="s"),
        quantity("tokens_per_s", dp * O * running / cycle, "output tokens per second, the whole deployment",
                 r"\mathrm{tok/s}", SRC_SERVING, units="1/s"),
        quantity("tokens_per_s_per_gpu", q("tokens_per_s") / n_dev, "output tokens per second per device",
                 r"r_{\mathrm{dev}}", "tokens_per_s / (tp pp dp)", units="1/s"),
        quantity("tokens_per_s_per_user", 1 / q("tpot"), "output tokens per second one request sees while it "
                 "decodes", r"r_{\mathrm{user}}", "1 / tpot", units="1/s"),
        quantity("mem_kv_pool", _capacity(structure, o), "KV-cache pool per device", r"M_{p}",
                 SRC_CAPACITY),
        quantity("mem_kv_request", kv_bytes(structure, o, I + O) * per_request / (I + O), "a request's KV cache "
                 "per device at its longest, input_len + output_len tokens, in whole pages of block_size tokens",
                 r"m_{\mathrm{req}}", SRC_CAPACITY),
        quantity("max_concurrency", dp * sympy.floor(q("mem_kv_pool") / q("mem_kv_request")),
                 "requests of input_len + output_len tokens the KV pools hold at once", r"C_{\max}", SRC_CAPACITY,
                 units="1"),
        quantity("tokens_per_s_per_mw", q("tokens_per_s_per_gpu") * 1000 / power, "output tokens per second per "
                 "megawatt of the devices' rated power (TDP)", r"r_{\mathrm{MW}}", "tokens_per_s_per_gpu / power_kw",
                 units="s-1 MW-1"),
        quantity("cost_per_mtok", sympy.Integer(10**6) * price / (3600 * q("tokens_per_s_per_gpu")),
                 "US dollars per million output tokens, all the devices' time charged to them", r"c_{M}", SRC_COST,
                 units="1"),
        quantity("cost_per_mtok_input", prefill_share * q("cost_per_mtok") * O / I, "US dollars per million input "
                 "tokens: the prefills' share of the devices' time over the prompt tokens", r"c_{M,\mathrm{in}}",
                 SRC_COST, units="1"),
        quantity("cost_per_mtok_output", (1 - prefill_share) * q("cost_per_mtok"), "US dollars per million output "
                 "tokens: the decodes' share of the devices' time", r"c_{M,\mathrm{out}}", SRC_COST, units="1"),
    ]
