"""Model states per device: weights (quantized or not), gradients, fp32 master copy, optimizer states, ZeRO.

Source: Rajbhandari et al. 2020 (ZeRO) §3.1 and §5, Figure 1; EleutherAI Transformer Math 101
(optimizer states); Shazeer & Stern 2018 (Adafactor).
"""

from __future__ import annotations

import sympy

from engine.options import DTYPE_BITS, PRECISIONS
from engine.options.memory import QUANT_BLOCKS
from engine.symbolic.formulas import components as C
from engine.symbolic.formulas.architectures import mlp_counts
from engine.symbolic.formulas.base import Quantity
from engine.symbolic.memory.base import L, V, a, bits_g, bits_m, bits_o, bits_qm, bits_w, dp, ep, etp, h, pp, qi, quant_group, quantity, s, tp
from engine.symbolic.memory.steptime.common import even_stage_layers, stage_layers
from engine.symbolic.symbols import symbol

shard_group = symbol("shard_group")
from engine.symbolic.memory.base import q as _q

SRC_ZERO = "Rajbhandari et al. 2020 (ZeRO) §3.1 and §5, Figure 1: per-device model states by stage"
SRC_EP = ("Megatron-Core expert parallelism (docs: MoE parallel folding; megatron/core/parallel_state.py "
          "initialize_model_parallel with expert_model_parallel_size and expert_tensor_parallel_size, default etp = tp): "
          "routed experts are split over ep x etp devices of a pipeline stage, every other weight over tp; the "
          "expert data-parallel group has dp x tp / (ep x etp) ranks and the distributed optimizer shards the routed "
          "experts' gradients and optimizer states over it, the dense ones over dp")
SRC_OFFLOAD = ("ZeRO-Offload (Ren et al. 2021; DeepSpeed zero_optimization.offload_optimizer, stages 1-3): fp32 master "
               "weights and optimizer states on the host, updated there (DeepSpeedCPUAdam, in place); DeepSpeed "
               "stage_1_and_2.py with cpu_offload keeps each rank's gradient partition on the host as the fp32 "
               "master's .grad (single_grad_partition, dtype of single_partition_of_fp32_groups, device cpu), the "
               "16-bit gradients being reduced bucket by bucket on the device; ZeRO-Infinity (Rajbhandari et al. "
               "2021; offload_param, stage 3 only) and PyTorch FSDP CPUOffload(offload_params=True) keep the "
               "parameter shards on the host and gather one FSDP unit / prefetch bucket at a time. Assumed resident "
               "on the device: the largest gathered unit (a layer, or the embedding, or the head) of parameters "
               "(params) and of gradients in flight (optimizer, params); bytes per device (each rank's share of the "
               "host)")

SRC_FP8 = ("TransformerEngine transformer_engine/pytorch/module/linear.py (Linear, _Linear.forward) and "
           "layernorm_linear.py (LayerNormLinear): under fp8_autocast the weight is cast to an fp8 workspace "
           "(get_weight_workspace / cast_to_fp8 with a transpose for the backward's dgrad GEMM) that is cached "
           "across micro-batches when is_first_microbatch is given (cache_name 'weight', refreshed on the first "
           "micro-batch), which Megatron-Core's TE wrappers always pass: 1 byte + 1 byte (transpose) per linear "
           "weight element (Hopper; MXFP8's rowwise + columnwise copies are the same bytes); the bf16 weights, fp32 "
           "master weights and fp32 Adam states are Megatron's (--bf16, distributed optimizer), as precision bf16 "
           "(fp32 main-grad buffer not counted). Scaling metadata: transformer_engine/pytorch/fp8.py "
           "FP8GlobalStateManager / DelayedScaling recipe state (common/recipe/__init__.py DelayedScaling, "
           "amax_history_len = 1024 by default): per GEMM 3 forward fp8 tensors (input, weight, output) and 2 "
           "backward (grad_output, grad_input), each an amax history of amax_history_len fp32 values plus an fp32 "
           "scale and scale_inv. Linear weights: Q/K/V, output projection, MLP (or every expert's) matrices; "
           "embedding, head, norms, biases and the MoE router stay bf16 (Megatron keeps them outside fp8). "
           "Modelled variant: bf16 weights kept (no --fp8-param-gather; with it Megatron keeps fp8 parameters "
           "instead of the bf16 copy, 1 byte less per linear weight: not modelled)")
SRC_FP8_FSDP = ("fp8 under full sharding (zero 3 / FSDP): the 16-bit (or fp32) weight shards as any zero 3, and fp8 "
                "copies of the layer being gathered only: torchao float8 with FSDP2 (torchao/float8/fsdp_utils.py "
                "WeightWithDynamicFloat8CastTensor: fsdp_pre_all_gather casts each rank's shard to fp8, the all-gather "
                "moves fp8, fsdp_post_all_gather builds the unsharded fp8 weight, freed after the layer's forward and "
                "gathered again for its backward; torchao float8 README 'float8 all-gather with FSDP2'; torchtitan "
                "--float8.enable_fsdp_float8_all_gather) and TransformerEngine under FSDP (the fp8 workspace of a "
                "gathered weight is not cached across micro-batches: is_first_microbatch is None outside Megatron's "
                "TE wrappers); 1 byte + 1 byte (the transposed copy for the dgrad GEMM) per element of one layer's "
                "linear weights on the device; delayed-scaling metadata as TE's (torchao's dynamic scaling keeps "
                "none: an upper bound). Modelled: one layer gathered at a time (FSDP2 prefetches the next: up to 2)")
FP8_AMAX_HISTORY = 1024  # TE DelayedScaling.amax_history_len default (Megatron --fp8-amax-history-len can lower it)
FP8_TENSORS_PER_GEMM = 3 + 2  # forward input, weight, output; backward grad_output, grad_input

# bits per tensor class of each precision: its record (engine/options/precision.py PRECISION_TABLE)
MIXED_PRECISIONS = tuple(p.name for p in PRECISIONS.values() if p.kind == "mixed")  # torch.autocast over fp32 weights
TRUE_PRECISIONS = tuple(p.name for p in PRECISIONS.values() if p.kind == "true")  # model.to(dtype): states 16-bit
# 16-bit weights with 16-bit matmuls (bf16/fp16, with or without an fp32 master copy; fp8 runs TE's fp8 matmuls)
SIXTEEN_BIT = tuple(p.name for p in PRECISIONS.values() if p.weights == 16 and p.matmul != "fp8")
OPTIMIZER_STATES = {"adamw": 2, "adam8bit": 2, "paged_adamw": 2, "paged_adamw_8bit": 2, "sgd": 0, "sgd_momentum": 1,
                    "adafactor": 0, "none": 0}
EIGHT_BIT = ("adam8bit", "paged_adamw_8bit")  # bitsandbytes 8-bit states with a block-wise absmax
# bitsandbytes' paged optimizers allocate their states with cudaMallocManaged (optim/optimizer.py get_state_buffer
# -> functional.get_paged -> cget_managed_ptr): CUDA unified memory, outside PyTorch's caching allocator, so
# torch.cuda.max_memory_allocated() does not count them; they sit on the device until memory runs short and are then
# paged to the host. The device peak leaves them out; they are reported apart (mem_paged_optimizer).
PAGED = ("paged_adamw", "paged_adamw_8bit")
SRC_PAGED = ("bitsandbytes optim/optimizer.py (is_paged: get_state_buffer -> F.get_paged) and functional.py get_paged "
             "(lib.cget_managed_ptr: cudaMallocManaged); Dettmers et al. 2023 (QLoRA) §2 paged optimizers")


def defaults(o) -> dict[str, sympy.Expr]:
    """Defaults of the numeric inputs: bits per tensor class, parallel degrees, KV window, devices, MFU."""
    p = PRECISIONS[o.precision]
    # kv_dtype / weight_dtype (inference) choose the element types; auto: the precision's
    w_bits = DTYPE_BITS[o.weight_dtype] if o.weight_dtype != "auto" else p.weights
    kv_bits = DTYPE_BITS[o.kv_dtype] if o.kv_dtype != "auto" else p.weights if o.mode == "inference" else 16
    return {
        "bits_weight": sympy.Integer(w_bits), "bits_grad": sympy.Integer(p.grads),
        "bits_master": sympy.Integer(p.master or 32),
        # bitsandbytes keeps 32-bit optimizer states in fp32 whatever the parameters' dtype
        "bits_opt": sympy.Integer(8 if o.optimizer in EIGHT_BIT else 32 if o.optimizer == "paged_adamw"
                                  else p.optimizer),
        "bits_kv": sympy.Integer(kv_bits),
        "quant_group": sympy.Integer(QUANT_BLOCKS.get(o.weight_dtype, (128, 32))[0]),
        "bits_quant_meta": sympy.Integer(QUANT_BLOCKS.get(o.weight_dtype, (128, 32))[1]),
        "dp": sympy.Integer(1), "tp": sympy.Integer(1), "pp": sympy.Integer(1), "vp": sympy.Integer(1),
        "stage_layers": even_stage_layers(), "in_flight_layers": pp * even_stage_layers(),  # the even split
        "ep": sympy.Integer(1), "etp": tp, "shard_group": dp,
        "kv_window": s, "n_gpus": dp * tp * pp * symbol("cp"), "mfu": sympy.Rational(1, 2),
    }


def fp8_quantities(o, structure) -> list[Quantity]:
    """precision fp8: TE's cached fp8 weight copies + transposes and the delayed-scaling metadata, per device."""
    if structure is None:
        raise ValueError("precision fp8 needs the architecture's structure (linear layers)")
    attn = C.attention("none")  # Q, K, V and output projection matrices
    mlp = C.mlp(structure.mlp, False)
    gemms = L * (2 + 2)  # fused QKV, output projection; fc1 (gate and up fused in Megatron), fc2
    if structure.moe or structure.mla or structure.separate_mlp or structure.dense_layers:
        # from the parameter counts: routed experts over ep x etp, the other linear weights over tp
        routed = qi("params_routed_experts") if structure.moe else 0
        kept = qi("params_embedding") + qi("params_head") + qi("params_positions") + qi("params_norms")
        if structure.moe:
            kept += qi("params_router")
        linear = ((qi("params_total") - kept - routed) / tp + routed / (ep * etp)) / stages()
        if structure.moe:  # TE GroupedLinear: every local expert's fc1 and fc2 (and the shared experts')
            local = 2 * C.n_experts / ep + (2 if structure.shared_experts else 0)
            gemms = L * 4 + mlp_counts(structure)["moe"] * (local - 2)
    else:
        linear = L * (attn + mlp) / (tp * stages())
    meta = gemms / stages() * FP8_TENSORS_PER_GEMM * (FP8_AMAX_HISTORY + 2) * 4
    src = SRC_FP8
    if o.zero >= 3:  # full sharding: the fp8 weights of the layer being gathered only, not the stage's
        linear, src = linear / stage_layers(), SRC_FP8_FSDP
    return [quantity("mem_fp8_weights", linear * 2, "TE fp8 copies and fp8 transposes of the linear weights per "
                     "device" + (" (of the one layer gathered at a time, zero 3)" if o.zero >= 3 else ""),
                     r"M_{\mathrm{fp8\,weights}}", src),
            quantity("mem_fp8_scaling", meta, "TE delayed-scaling amax histories and scales per device",
                     r"M_{\mathrm{fp8\,scaling}}", SRC_FP8)]


def stages() -> sympy.Expr:
    """The pipeline split of the per-layer weights on the bottleneck stage: n_layers / its layers (pp when the
    layers divide evenly; ``steptime.common.stage_layers``). Every parameter (embedding and head included) is
    spread over the layers, as the even split spreads it over pp."""
    return L / stage_layers()


def quantities(o, structure=None) -> list[Quantity]:
    """``mem_weights``; in training also gradients, master weights, optimizer states and their sum."""
    shard = tp * stages()  # model parallel split of the weights: the bottleneck pipeline stage's share
    moe = structure is not None and structure.moe
    if moe:  # routed experts over ep x etp (Megatron), the rest over tp; their data-parallel groups differ
        routed = qi("params_routed_experts") / (ep * etp * stages())
        per_dev = (qi("params_total") - qi("params_routed_experts")) / shard + routed
        edp = dp * tp / (ep * etp)
    else:
        routed, per_dev, edp = sympy.Integer(0), qi("params_total") / shard, dp

    zg = shard_group  # ZeRO/FSDP shards over a group of shard_group devices (dp by default; hybrid sharding: fewer)
    if o.mode == "training":  # ... and over the context-parallel ranks, which hold the same weights: Megatron's
        # distributed optimizer shards over the data-parallel group with context parallelism, torchtitan's FSDP over
        # its dp_shard x cp mesh (as the step time's gathers and reductions run over shard_group x cp)
        cp = symbol("cp")
        zg, edp = zg * cp, edp * cp

    def sharded(x):  # a per-device count split over the shard group (ZeRO): dense over it, routed over edp
        return (x - routed) / zg + routed / edp if moe else x / zg

    weights = per_dev * bits_w / 8
    if o.group_quantized:  # GPTQ/AWQ-style: linear layers quantized, embedding and head kept in 16 bits
        kept = (qi("params_embedding") + qi("params_head") + qi("params_positions")) / shard
        weights = (per_dev - kept) * (bits_w / 8 + bits_qm / (8 * quant_group)) + kept * 2
    if o.zero >= 3:
        weights = sharded(per_dev) * bits_w / 8 if not o.group_quantized else weights / zg
    # offload: the largest unit gathered / reduced at once on the device (a layer, the embedding or the head)
    unit = sympy.Max(qi("params_layer"), qi("params_embedding") + qi("params_positions"), qi("params_head")) / shard
    host_weights = sympy.Integer(0)
    if o.offload == "params":  # the zero-3 shard lives on the host; one unit is gathered (16-bit) on the device
        host_weights, weights = weights, unit * bits_w / 8
    out = [quantity("mem_weights", weights, "weights per device", r"M_{\mathrm{weights}}", SRC_ZERO + (
        "; " + SRC_EP if moe else "") + (
        "; group-wise quantization: one scale + zero point per quant_group weights" if o.group_quantized else "") + (
        "; " + SRC_OFFLOAD if o.offload == "params" else ""))]
    if o.mode != "training":
        return out
    m_bits = PRECISIONS[o.precision].master
    master = (sharded(per_dev) if o.zero >= 1 else per_dev) * bits_m / 8 if m_bits else sympy.Integer(0)
    grads = (sharded(per_dev) if o.zero >= 2 else per_dev) * bits_g / 8
    if o.optimizer == "adafactor":  # row and column factors, not proportional to the parameters
        optimizer = _optimizer_bytes(o, per_dev, structure) / (zg if o.zero >= 1 else 1)
    else:
        optimizer = _optimizer_bytes(o, sharded(per_dev) if o.zero >= 1 else per_dev)
    src = SRC_ZERO + ("; " + SRC_EP if moe else "")
    if o.offload != "none":  # master and optimizer move to the host; the gradient partition too, as fp32
        host = {"weights": host_weights, "gradients": sharded(per_dev) * bits_m / 8, "master": master,
                "optimizer": optimizer}
        grads, master, optimizer = unit * bits_g / 8, sympy.Integer(0), sympy.Integer(0)
        src = SRC_ZERO + "; " + SRC_OFFLOAD
    paged = []
    if o.optimizer in PAGED:  # in CUDA managed memory: apart from the device peak
        paged = [quantity("mem_paged_optimizer", optimizer, f"{o.optimizer} states in CUDA managed memory per device",
                          r"M_{\mathrm{paged}}", SRC_PAGED)]
        optimizer = sympy.Integer(0)
    fp8 = fp8_quantities(o, structure) if o.precision == "fp8" else []
    out += fp8 + [
        quantity("mem_gradients", grads, "gradients per device", r"M_{\mathrm{grads}}", src),
        quantity("mem_master", master, "fp32 master weights per device (mixed precision)", r"M_{\mathrm{master}}",
                 src),
        quantity("mem_optimizer", optimizer,
                 f"{o.optimizer} optimizer states per device", r"M_{\mathrm{optimizer}}",
                 "EleutherAI Transformer Math 101 (AdamW 2 states, 8-bit Adam 2 x 1 byte + block absmax, SGD "
                 "momentum 1); Adafactor keeps row and column factors (Shazeer & Stern 2018)" + (
                     "; " + SRC_OFFLOAD if o.offload != "none" else "")),
        quantity("mem_model_states", _q("mem_weights") + _q("mem_gradients") + _q("mem_master") + _q("mem_optimizer")
                 + sympy.Add(*(_q(x.name) for x in fp8)),
                 "model states per device", r"M_{\mathrm{states}}", SRC_ZERO + ("; " + SRC_FP8 if fp8 else "")),
    ]
    out += paged
    if o.offload != "none":
        out += [quantity(f"mem_host_{k}", v, f"{k} on the host per device (offload {o.offload})",
                         rf"M^{{\mathrm{{host}}}}_{{\mathrm{{{k}}}}}", SRC_OFFLOAD) for k, v in host.items()]
        out += [quantity("mem_host_model_states", sympy.Add(*(_q(f"mem_host_{k}") for k in host)),
                         "model states on the host per device", r"M^{\mathrm{host}}_{\mathrm{states}}", SRC_OFFLOAD),
                quantity("mem_host_peak", _q("mem_host_model_states"),
                         "host memory per device: the offloaded model states (pinned buffers not counted)",
                         r"M^{\mathrm{host}}_{\mathrm{peak}}", SRC_OFFLOAD)]
    return out


HOST_PARTS = ("weights", "gradients", "master", "optimizer")  # mem_host_<part>, with offload


def _optimizer_bytes(o, per_dev, structure=None) -> sympy.Expr:
    states = OPTIMIZER_STATES[o.optimizer]
    if o.optimizer == "adafactor":
        # factored second moment: one row and one column vector per matrix (fp32); vectors kept whole;
        # MoE: every expert's matrices (transformers 5 stacks them, Adafactor factors the last two dimensions)
        h_ = h
        mlp_rc = 3 * (h_ + C.d_ff)
        if structure is not None and structure.moe:
            mlp_rc = C.n_experts * 3 * (h_ + C.d_ff_expert) + (
                C.n_shared_experts * 3 * (h_ + C.d_ff_shared) if structure.shared_experts else 0)
        rc = L * (4 * h_ + 2 * a * C.head_dim + 2 * C.n_kv_heads * C.head_dim) + L * mlp_rc + (V + h_)
        return rc * bits_o / 8 / (tp * stages())
    extra = per_dev * 2 * 32 / 2048 / 8 if o.optimizer in EIGHT_BIT else 0  # bitsandbytes absmax per 2048 block
    return per_dev * states * bits_o / 8 + extra
