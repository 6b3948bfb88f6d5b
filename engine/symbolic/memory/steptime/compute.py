"""One micro-batch's compute on one device: the roofline of its matmuls and attention kernels, the memory-bound
element-wise kernels and the loss."""

from __future__ import annotations

import sympy

from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.architectures import mlp_counts
from engine.symbolic.memory.base import L, b, ep, h, q, s, tp
from engine.symbolic.memory.steptime.collectives import hi
from engine.symbolic.memory.steptime.common import (attn_ceiling, attn_peak, ceiling, cp, eta_attn, eta_mm,
                                                    hbm_bw, peak, stage_layers)
from engine.symbolic.symbols import symbol

def micro_batch(structure, o, act: int, m: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """``(micro, t_attn, gemm)``: one micro-batch's roofline on one device (its compute or its memory traffic, plus
    the memory-bound element-wise kernels and loss), and the attention kernels' and the dense GEMMs' shares of its
    compute (what communication can hide behind)."""
    layers = stage_layers()
    # compute: hardware FLOPs (model FLOPs + recomputation) of this device's share of a micro-batch; the
    # attention kernels (forward, backward x 2, and the recomputed forward) at their own efficiency
    # (the bottleneck stage's layers: its share of the model's FLOPs is stage_layers / n_layers, 1 / pp when the
    # stages are even)
    share = b * s / (tp * cp) * layers / L
    attn_passes = 3 + (1 if o.recompute != "none" else 0)
    attn = q("flops_attention_token") * attn_passes * share
    # what the attention kernels execute: a fused causal kernel (FlashAttention, SDPA's flash and efficient
    # kernels) skips the masked half of the scores; eager attention multiplies them all and masks afterwards
    counted = sympy.Rational(1, 2) if o.causal_flops == "half" else 1
    executed = (sympy.Rational(1, 2) if o.attention != "eager" else 1) / counted
    if o.attention == "eager":  # at attention_efficiency of the 16-bit matmul ceiling (fit on 2021-22 Megatron)
        t_attn = attn * executed / (attn_peak * attn_ceiling * eta_attn)
    else:
        # a fused kernel at its library's measured rate on the device, r(n) = r_max n / (n + n_half), n = s / cp
        # the tokens of one sequence on one device (Device.values: engine/catalog/kernels.py; where none is published,
        # FlashAttention-2's H100 curve as a share of the device's 16-bit ceiling: fused_attention_share). The curves
        # count FLOPs as FlashAttention's benchmark does, the backward as 2.5 forwards (it recomputes the scores,
        # as every fused kernel does): the kernels execute attn_passes + 1/2 forwards where attn_passes are counted.
        # Approximations: the curves are head dim 128 (MLA's 192 and head dim 64 run somewhat slower), a local
        # layer's window is not its n, and the recurrent state updates of Mamba-2 / linear-attention layers (in
        # flops_attention_token) are priced with the attention
        fa_passes = sympy.Rational(2 * attn_passes + 1, 2 * attn_passes)
        t_attn = attn * executed * fa_passes * (s + cp * symbol("attention_half_tokens")) / (
            s * symbol("attention_curve_peak_flops"))
    # the output layer (logits, 2 d_model vocab FLOPs per token forward, vocab-parallel over tp) is the last
    # stage's alone, not spread over the stages with the layers: with pp > 1 the last stage, the bottleneck, runs
    # it on top of its layers (Megatron-LM's --account-for-loss-in-pipeline-split exists to move layers off it);
    # at pp 1, stage_layers = n_layers and this is 0
    logits = 6 * h * symbol("vocab") * b * s / (tp * cp)
    head = logits * (1 - layers / L)
    # so the bottleneck stage runs the whole output layer, logits FLOPs, and runs it in 16
    # bits under fp8 too: fp8 recipes convert the transformer layers' linears only (Megatron-Core's output_layer is
    # a tensor_parallel.ColumnParallelLinear, not a Transformer Engine module, so fp8_autocast leaves it in bf16;
    # torchtitan's float8 conversion skips it, module_filter_fn fqn != "output"): attention_peak_flops x
    # attention_ceiling, the 16-bit rate
    gemm = (q("hardware_flops_token") * share - attn + head) / (peak * ceiling * eta_mm)
    if o.precision == "fp8":
        gemm += logits * (1 / (attn_peak * attn_ceiling) - 1 / (peak * ceiling)) / eta_mm
    compute = gemm + t_attn
    moe_gemm, moe_bytes = _routed_experts(structure, o, act, layers) if structure.moe else (0, 0)
    compute += moe_gemm
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
    if o.precision == "fp8":
        elementwise += _fp8_casts(structure, o, width) * layers * b * s / cp / tp
    if o.eager_elementwise:
        elementwise += _eager_ops(structure, o) * layers * b * s / cp / tp
    # the loss over the vocabulary (on the last pipeline stage, vocab-parallel over tp): the logits upcast to fp32,
    # softmax and its gradient, about eight fp32 passes over b s V / tp elements (Megatron's VocabParallel-
    # CrossEntropy, PyTorch's log_softmax + nll_loss): memory-bound, and the bottleneck stage's
    loss = 8 * 4 * b * s / cp * symbol("vocab") / tp
    return hi(compute, traffic / hbm_bw) + (elementwise + loss + moe_bytes) / hbm_bw, t_attn, gemm


def _routed_experts(structure, o, act: int, layers: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """``(time, bytes)`` a MoE model adds to a micro-batch on one device: its routed experts' grouped-GEMM penalty
    (at the matmul rate) and the token dispatcher's permute traffic (memory-bound)."""
    # routed experts: grouped GEMMs over M tokens per expert run at M / (M + expert_half_tokens) of the dense
    # rate (DeepGEMM's grouped GEMMs; steptime DEFAULTS). A device holds n_experts / ep experts (each split etp
    # ways) and receives its ep group's top_k token copies routed to them: evenly, its b s / (cp tp) tokens
    # (the sequence-parallel share, gathered over etp) x etp x top_k x ep / n_experts per expert. The time
    # of the routed FLOPs F at rate x M / (M + m_half) is F / rate + F m_half / M / rate, and F / M = 2 x the
    # expert's weights x n_experts / (ep etp) per MoE layer and pass: each local expert costs m_half more
    # tokens
    moe_layers = mlp_counts(structure)["moe"] * layers / L
    d_in = C.moe_latent_size if structure.moe_latent else h
    expert = C.mlp(structure.mlp, structure.expert_bias, C.d_ff_expert, d_in)
    mm_passes = 3 + (1 if o.recompute == "full" else 0)
    local_experts = C.n_experts / (ep * symbol("etp"))  # expert weights per device, in whole experts
    penalty = symbol("expert_half_tokens") * local_experts * 2 * expert * moe_layers * mm_passes
    # the token dispatcher's permute (top_k copies of each token, grouped by expert) and unpermute (the
    # weighted sum back), forward and backward, each reading and writing top_k x d_in elements per token:
    # memory-bound (Megatron-Core MoEAlltoAllTokenDispatcher permute / unpermute; Gale et al. 2023, MegaBlocks
    # §5); the recomputed forward repeats the two forward passes. The received tokens' chunk sort by local
    # expert is not counted (fused with the permutation in recent Megatron-Core)
    moe_passes = 4 + (2 if o.recompute == "full" else 0)
    moe_bytes = moe_passes * 2 * C.top_k * d_in * act * moe_layers * b * s / (cp * tp)
    return penalty / (peak * ceiling * eta_mm), moe_bytes


def _eager_ops(structure, o) -> sympy.Expr:
    """Bytes per token and layer that eager element-wise ops read and write beyond fused kernels (before the
    tensor-parallel split): each op of a chain is a kernel that reads and writes its whole tensor. Counted from the
    eager code (torchtitan models/norms.py RMSNorm, models/llama/model.py apply_rotary_emb and FeedForward;
    transformers' LlamaRMSNorm and apply_rotary_pos_emb do the same), bytes per element with 16-bit tensors:
    - RMSNorm forward: x.float() 2+4, pow(2) 4+4, mean 4, x * rsqrt 4+4, type_as 4+2, * weight 2+2 = 36 against a
      fused kernel's 2+2: 32 more; backward (autograd through the chain: the weight's product and reduction 10, the
      upcast 6, the products with rsqrt and its reduction 16, the mean's expand 4, pow's 2 x 12, the sum 12, the
      downcast 6) 66 against 6: 60 more; two norms a layer
    - RoPE on q and k: float 2+4, complex multiply 4+4, type_as 4+2 = 20 against 4, backward the same: 16 more each
    - gated activation silu(a) * b: 4+6 = 10 against 6 fused, backward 18 against 10: 4 and 8 more per MLP unit
    The recomputed forward (full, or a selective policy that does not save them) runs the forward chains again."""
    width = symbol("top_k") * symbol("d_ff_expert") if structure.moe else symbol("d_ff")
    gated = width if structure.mlp == "gated" else 0
    rope = (symbol("n_heads") + symbol("n_kv_heads")) * symbol("head_dim") if structure.positions == "rotary" else 0
    forward = 2 * 32 * h + 16 * rope + 4 * gated
    backward = 2 * 60 * h + 16 * rope + 8 * gated
    return forward * (2 if o.recompute != "none" else 1) + backward


def _fp8_casts(structure, o, width: sympy.Expr) -> sympy.Expr:
    """Bytes the fp8 casts of a training step read and write per token and layer (before the tensor-parallel split)."""
    # fp8 GEMMs take their inputs in fp8, each cast with a transposed copy for the other GEMM of the backward
    # (Transformer Engine's fused cast_transpose; torchao's float8 casts): read 16-bit, write two 1-byte
    # copies, 4 bytes per element -- forward the four linear layers' inputs (3 d_model + the MLP's width),
    # backward their output gradients (q, k, v, the output projection's d_model, the MLP's up and gate
    # widths, its down d_model); recomputation casts the forward's again. Memory-bound, between the GEMMs
    # (Micikevicius et al. 2022, FP8 Formats for Deep Learning §4; TE transformer_engine/common/transpose)
    # per-tensor current scaling reads each 16-bit tensor once more for its amax before the cast (TE
    # Float8CurrentScaling, torchao tensorwise); delayed scaling takes the scale from an amax history, blockwise
    # and mxfp8 compute their per-block scales inside the cast
    per_element = 4 + (2 if o.fp8_scaling == "current" else 0)
    up = 2 if structure.mlp == "gated" else 1
    qkv = symbol("n_heads") * symbol("head_dim") + 2 * symbol("n_kv_heads") * symbol("head_dim")
    forward_casts = (1 + (1 if o.recompute == "full" else 0)) * (3 * h + width)
    return per_element * (forward_casts + qkv + 2 * h + up * width)
