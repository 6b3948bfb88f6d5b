"""Memory and compute on top of an architecture: model states, activations, KV cache, FLOPs.

``extend(formulas, structure, options)`` adds memory and compute quantities to an architecture's
formula set (pure sympy). Structural options (``MemoryOptions``) choose the expressions; numeric
knobs (bits per tensor class, parallel degrees, batch, sequence length) are symbols, so every
quantity can be swept. All memory quantities are bytes per device; they are real-valued
(quantized weights have fractional bytes per parameter) and evaluated in float64, exact for
integers below 2^53 bytes (8 PiB).

Sources: ZeRO (Rajbhandari et al. 2020, §3.1, §5, Fig. 1); activations (Korthikanti et al. 2022,
§4.1, Table 2, §4.2.3; Megatron-LM ``theoretical_memory_usage.py``); FlashAttention (Dao et al.
2022, §3.1); KV cache (kipply, "Transformer Inference Arithmetic"); FLOPs (Kaplan et al. 2020
§2.1; PaLM App. B; Narayanan et al. 2021 §5.1 Eq. 3); scaling laws (Kaplan Eq. 1.1-1.5;
Hoffmann et al. 2022 Eq. 2, 4; Besiroglu et al. 2024).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import sympy

from ..symbols import symbol
from . import components as C
from . import seed as _seed_set
from .base import FormulaSet, OptionSpec, Quantity, Validity, quantity_symbol, show_value

_SEED = _seed_set.build()  # the seed memory model is the seed formula set's own expressions

S = symbol
b, s, L = S("batch"), S("seq_len"), S("n_layers")
h, a, V = S("d_model"), S("n_heads"), S("vocab")
dp, tp, pp, vp = S("dp"), S("tp"), S("pp"), S("vp")
bits_w, bits_g, bits_m, bits_o, bits_kv = S("bits_weight"), S("bits_grad"), S("bits_master"), S("bits_opt"), S("bits_kv")
kv_window = S("kv_window")
quant_group, bits_qm = S("quant_group"), S("bits_quant_meta")
tokens, n_gpus, peak_flops, mfu, compute = S("tokens"), S("n_gpus"), S("peak_flops"), S("mfu"), S("compute")

PRECISIONS = ("fp32", "bf16-amp", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adam8bit", "sgd", "sgd_momentum", "adafactor", "none")
ATTENTIONS = ("eager", "sdpa", "flash")
RECOMPUTE = ("none", "selective", "full")
MEMORY_MODELS = ("korthikanti", "pytorch", "seed")
MODES = ("training", "inference")

SRC_ZERO = "Rajbhandari et al. 2020 (ZeRO) §3.1 and §5, Figure 1: per-device model states by stage"
SRC_KORTHIKANTI = ("Korthikanti et al. 2022 §4.1 (sbh(34 + 5as/h) per layer), Table 2 (TP, SP, selective and full "
                   "recompute), §4.2.3 (pipeline first stage, interleaving); Megatron-LM theoretical_memory_usage.py")
SRC_FLASH = "Dao et al. 2022 (FlashAttention) §3.1: no s^2 term; fp32 logsumexp per row saved"
SRC_KV = "K and V per layer: 2 b s L n_kv d_head bytes (kipply, Transformer Inference Arithmetic)"
SRC_PYTORCH = ("llm-sweep's model of Hugging Face training in PyTorch, derived from the tensors each op saves and "
               "calibrated on tests/data/measured_memory_pytorch_h200.json and CPU allocator traces "
               "(benchmarks/measure_memory_cpu.py)")


@dataclass(frozen=True)
class MemoryOptions:
    """Structural choices of a memory/compute estimate (see ``OPTIONS``)."""

    mode: str = "training"
    memory_model: str = "pytorch"
    precision: str = "fp32"
    optimizer: str = "adamw"
    attention: str = "sdpa"
    recompute: str = "none"
    dropout: bool = False
    zero: int = 0
    sequence_parallel: bool = False
    quantized: bool = False
    causal_flops: str = "full"

    def with_options(self, **options: Any) -> "MemoryOptions":
        for key, value in options.items():
            if key not in OPTIONS:
                raise ValueError(f"unknown option {key!r}; valid options: {', '.join(OPTIONS)}")
            spec = OPTIONS[key]
            if type(value) is not type(spec.default) or value not in spec.choices:
                raise ValueError(f"option {key!r} must be one of {', '.join(map(show_value, spec.choices))}, "
                                 f"got {show_value(value)}")
        new = replace(self, **options)
        problems = []
        if new.mode == "training" and new.memory_model == "pytorch":
            if new.sequence_parallel:
                problems.append("sequence_parallel needs memory_model korthikanti (the pytorch model has no tensor "
                                "parallelism)")
            if new.recompute == "selective":
                problems.append("recompute selective needs memory_model korthikanti (Hugging Face models "
                                "checkpoint whole layers: recompute full)")
        if new.mode == "inference":
            for key, default in (("memory_model", "pytorch"), ("recompute", "none"), ("dropout", False),
                                 ("zero", 0), ("sequence_parallel", False)):
                if getattr(new, key) != default:
                    problems.append(f"{key} applies to training, not to mode inference (a prefill holds every "
                                    "layer's full weights and saves no activations)")
        if problems:
            raise ValueError("; ".join(problems))
        return new


OPTIONS: dict[str, OptionSpec] = {
    "mode": OptionSpec("mode", "training", MODES, "training step or inference (prefill + KV cache)"),
    "memory_model": OptionSpec("memory_model", "pytorch", MEMORY_MODELS,
                               "activation model: Korthikanti et al., PyTorch/Hugging Face, or the seed article"),
    "precision": OptionSpec("precision", "fp32", PRECISIONS,
                            "fp32; bf16-amp (autocast, fp32 weights); bf16/fp16 (16-bit weights, fp32 master)"),
    "optimizer": OptionSpec("optimizer", "adamw", OPTIMIZERS, "optimizer whose states are kept"),
    "attention": OptionSpec("attention", "sdpa", ATTENTIONS, "eager softmax(QK^T), PyTorch SDPA, FlashAttention"),
    "recompute": OptionSpec("recompute", "none", RECOMPUTE, "activation recomputation"),
    "dropout": OptionSpec("dropout", False, (True, False), "dropout is on (its masks are saved)"),
    "zero": OptionSpec("zero", 0, (0, 1, 2, 3), "ZeRO stage: 1 shards optimizer states, 2 also gradients, "
                                                "3 (= FSDP full shard) also weights, over dp"),
    "sequence_parallel": OptionSpec("sequence_parallel", False, (True, False), "Megatron sequence parallelism"),
    "quantized": OptionSpec("quantized", False, (True, False),
                            "group-wise quantized weights: a scale and zero point per quant_group weights"),
    "causal_flops": OptionSpec("causal_flops", "full", ("full", "half"),
                               "attention FLOPs: full QK^T and AV (Narayanan, PaLM) or the causal half (Kaplan)"),
}

PRECISION_BITS = {  # weights, gradients, master copy (0: none), activations
    "fp32": (32, 32, 0, 32),
    "bf16-amp": (32, 32, 0, 16),
    "bf16": (16, 16, 32, 16),
    "fp16": (16, 16, 32, 16),
}
OPTIMIZER_STATES = {"adamw": 2, "adam8bit": 2, "sgd": 0, "sgd_momentum": 1, "adafactor": 0, "none": 0}


def _q(name: str) -> sympy.Symbol:
    return quantity_symbol(name, integer=False)


def _qi(name: str) -> sympy.Symbol:
    return quantity_symbol(name, integer=True)


def extend(fs: FormulaSet, structure, options: MemoryOptions) -> FormulaSet:
    """``fs`` (an architecture) plus memory and compute quantities for ``options``."""
    o = options
    N = _qi("params_total")
    head_dim, n_kv = C.head_dim, C.n_kv_heads
    q_dim = a * head_dim
    w_bits, g_bits, m_bits, act_bits = PRECISION_BITS[o.precision]
    defaults: dict[str, sympy.Expr] = {
        "bits_weight": sympy.Integer(w_bits), "bits_grad": sympy.Integer(g_bits),
        "bits_master": sympy.Integer(m_bits or 32),
        "bits_opt": sympy.Integer(8 if o.optimizer == "adam8bit" else 32),
        "bits_kv": sympy.Integer(w_bits if o.mode == "inference" else 16),
        "quant_group": sympy.Integer(128), "bits_quant_meta": sympy.Integer(32),
        "dp": sympy.Integer(1), "tp": sympy.Integer(1), "pp": sympy.Integer(1), "vp": sympy.Integer(1),
        "kv_window": s, "n_gpus": dp * tp * pp, "mfu": sympy.Rational(1, 2),
    }
    qs: list[Quantity] = []

    def add(name, definition, long_name, latex, source, units="bytes", note=""):
        qs.append(Quantity(name, sympy.sympify(definition), units, long_name, latex, source, integer=False, note=note))

    shard = tp * pp  # model parallel split of the weights (even split assumed)
    per_dev = N / shard
    # -- model states ------------------------------------------------------------------------------
    weights = per_dev * bits_w / 8
    if o.quantized:  # GPTQ/AWQ-style: linear layers quantized, embedding and head kept in 16 bits
        kept = (_qi("params_embedding") + _qi("params_head") + _qi("params_positions")) / shard
        weights = (per_dev - kept) * (bits_w / 8 + bits_qm / (8 * quant_group)) + kept * 2
    if o.zero >= 3:
        weights /= dp
    add("mem_weights", weights, "weights per device", r"M_{\mathrm{weights}}",
        SRC_ZERO + ("; group-wise quantization: one scale + zero point per quant_group weights" if o.quantized else ""))
    if o.mode == "training":
        grads = per_dev * bits_g / 8 / (dp if o.zero >= 2 else 1)
        add("mem_gradients", grads, "gradients per device", r"M_{\mathrm{grads}}", SRC_ZERO)
        master = per_dev * bits_m / 8 / (dp if o.zero >= 1 else 1) if m_bits else sympy.Integer(0)
        add("mem_master", master, "fp32 master weights per device (mixed precision)", r"M_{\mathrm{master}}", SRC_ZERO)
        add("mem_optimizer", _optimizer_bytes(o, per_dev) / (dp if o.zero >= 1 else 1),
            f"{o.optimizer} optimizer states per device", r"M_{\mathrm{optimizer}}",
            "EleutherAI Transformer Math 101 (AdamW 2 states, 8-bit Adam 2 x 1 byte + block absmax, SGD momentum "
            "1); Adafactor keeps row and column factors (Shazeer & Stern 2018)")
        add("mem_model_states", _q("mem_weights") + _q("mem_gradients") + _q("mem_master") + _q("mem_optimizer"),
            "model states per device", r"M_{\mathrm{states}}", SRC_ZERO)
        act, act_src, note = _training_activations(structure, o)
        add("mem_activations", act, "saved activations per device at the start of the backward pass",
            r"M_{\mathrm{act}}", act_src, note=note)
        extra, extra_src = _training_extra(structure, o)
        add("mem_logits", extra, "logits, loss and their gradients at the start of the backward pass",
            r"M_{\mathrm{logits}}", extra_src)
        if o.memory_model == "pytorch":
            from .pytorch_memory import SRC as PT_SRC, checkpoint_recompute, optimizer_step_extra

            resident = _q("mem_weights") + _q("mem_master") + _q("mem_optimizer")
            add("mem_peak_backward", resident + _q("mem_activations") + _q("mem_logits"),
                "memory at the loss backward (saved activations, logits and their gradients)",
                r"M_{\mathrm{bwd}}", PT_SRC)
            add("mem_peak_step", resident + _q("mem_gradients") + optimizer_step_extra(structure, o),
                "memory during the optimizer step (all gradients, returned logits, AdamW temporaries)",
                r"M_{\mathrm{step}}", PT_SRC)
            moments = [_q("mem_peak_backward"), _q("mem_peak_step")]
            if o.recompute == "full":
                add("mem_peak_recompute", resident + _q("mem_activations") + checkpoint_recompute(structure, o),
                    "memory while the last checkpointed layer is recomputed and differentiated",
                    r"M_{\mathrm{rec}}", PT_SRC)
                moments.append(_q("mem_peak_recompute"))
            add("mem_peak", sympy.Max(*moments), "peak memory per device during a training step",
                r"M_{\mathrm{peak}}", "the largest of the step's moments")
        else:
            add("mem_peak", _q("mem_model_states") + _q("mem_activations") + _q("mem_logits"),
                "peak memory per device during a training step", r"M_{\mathrm{peak}}", "sum of the above")
    else:
        window = sympy.Min(s, kv_window)
        # per device: L / pp layers; tensor parallelism splits the kv heads, replicating them when
        # there are fewer kv heads than devices (MQA/GQA)
        kv_per_token = 2 * (L / pp) * sympy.ceiling(n_kv / tp) * head_dim * bits_kv / 8
        add("kv_cache_per_token", kv_per_token, "KV-cache bytes per token per sequence, per device",
            r"m_{\mathrm{KV}}", SRC_KV)
        add("mem_kv_cache", b * window * _q("kv_cache_per_token"), "KV cache per device", r"M_{\mathrm{KV}}", SRC_KV)
        working, wsrc = _prefill_working(structure, o)
        add("mem_working", working, "transient memory of a prefill forward pass", r"M_{\mathrm{work}}", wsrc)
        add("mem_peak", _q("mem_weights") + _q("mem_kv_cache") + _q("mem_working"),
            "peak memory of a prefill (one forward pass filling the cache)", r"M_{\mathrm{peak}}", "sum of the above")
    # -- compute -----------------------------------------------------------------------------------
    n_matmul = _qi("params_attention") + _qi("params_mlp")
    if structure.moe:  # a token runs through top_k experts (and every shared expert)
        n_matmul += L * C.top_k * C.mlp(structure.mlp, structure.mlp_bias)
        if structure.shared_experts:
            n_matmul += L * C.n_shared_experts * C.mlp(structure.mlp, structure.mlp_bias, C.d_ff_shared)
    attn_factor = sympy.Rational(1, 2) if o.causal_flops == "half" else 1
    attn_fwd = 4 * L * s * q_dim * attn_factor  # QK^T and AV, 2 FLOPs per multiply-add
    fwd_token = 2 * n_matmul + 2 * h * V + attn_fwd + 2 * _qi("params_router")
    add("flops_forward_token", fwd_token, "forward FLOPs per token (matmuls, attention, logits)",
        r"C_{\mathrm{fwd}}", "2 FLOPs per weight per token (Kaplan et al. 2020 §2.1) + attention 4 s d_attn per layer "
        "(full, Narayanan/PaLM) or half of it (causal, Kaplan) + logits 2 d V", units="1")
    if o.mode == "training":
        add("flops_token", 3 * _q("flops_forward_token"), "model FLOPs per training token (forward + backward)",
            r"C_{\mathrm{token}}", "backward = 2 x forward (Kaplan et al. 2020 §2.1)", units="1")
    else:
        add("flops_token", _q("flops_forward_token"), "model FLOPs per token of a prefill (one forward pass)",
            r"C_{\mathrm{token}}", "Kaplan et al. 2020 §2.1", units="1")
    recompute_fwd = {"none": 0, "selective": 4 * L * s * q_dim * attn_factor, "full": fwd_token - 2 * h * V}[o.recompute]
    add("hardware_flops_token", _q("flops_token") + recompute_fwd,
        "hardware FLOPs per training token (model FLOPs + recomputation)", r"C_{\mathrm{hw}}",
        "Narayanan et al. 2021 §5.1: full recompute adds one forward pass without the logits", units="1")
    add("flops_step", _q("flops_token") * b * s, "model FLOPs of one step (batch x seq_len tokens)",
        r"C_{\mathrm{step}}", "flops_token x tokens per step", units="1")
    add("flops_palm_token", 6 * (_qi("params_active") - _qi("params_embedding") - _qi("params_head")
                                 - _qi("params_positions")) + 12 * L * a * head_dim * s,
        "PaLM's model FLOPs per token: 6N + 12 L H Q T (N: active, non-embedding)", r"C_{\mathrm{PaLM}}",
        "Chowdhery et al. 2022 App. B (N without embeddings), as in nanoGPT estimate_mfu", units="1")
    add("flops_narayanan_step", 72 * b * s * L * h**2 * (1 + s / (6 * h) + V / (12 * L * h)),
        "Narayanan's model FLOPs per iteration, no recompute: 72 B s l h^2 (1 + s/6h + V/12lh)",
        r"F_{72}", "Narayanan et al. 2021 §5.1 (derived without the recompute pass)", units="1",
        note="assumes MHA and d_ff = 4 d_model (GPT blocks)")
    add("flops_narayanan_recompute_step", 96 * b * s * L * h**2 * (1 + s / (6 * h) + V / (16 * L * h)),
        "Narayanan's FLOPs per iteration with full recompute: 96 B s l h^2 (1 + s/6h + V/16lh)",
        r"F_{96}", "Narayanan et al. 2021 §5.1 Eq. (3)", units="1", note="assumes MHA and d_ff = 4 d_model")
    add("train_seconds", _q("flops_token") * tokens / (n_gpus * peak_flops * mfu),
        "training time for `tokens` tokens on n_gpus devices at peak_flops x mfu", r"T",
        "Narayanan et al. 2021 Eq. (4) form: 6TP/(nX) generalised to the model FLOPs per token", units="s")
    quantities = {**fs.quantities, **{x.name: x for x in qs}}
    validity = list(fs.validity) + [
        Validity("tp must divide n_heads", sympy.Eq(sympy.Mod(a, tp), 0)),
        Validity("pp must divide n_layers", sympy.Eq(sympy.Mod(L, pp), 0)),
        Validity("mfu must be at most 1", sympy.Le(mfu, 1)),
    ]
    if structure.positions == "learned":
        validity.append(Validity("seq_len must not exceed n_positions (learned position table)",
                                 sympy.Le(s, C.n_positions)))
    if o.mode == "training" and o.memory_model == "pytorch":
        validity += [
            Validity("the pytorch memory model describes Hugging Face training without tensor or pipeline "
                     "parallelism (tp = pp = vp = 1); use memory_model korthikanti", sympy.Eq(tp * pp * vp, 1)),
        ]
    return replace(fs, quantities=quantities, defaults={**fs.defaults, **defaults}, validity=validity,
                   options={**fs.options, **asdict(o)}, title=f"{fs.title}; {o.mode} memory and compute")


def _optimizer_bytes(o: MemoryOptions, per_dev) -> sympy.Expr:
    states = OPTIMIZER_STATES[o.optimizer]
    if o.optimizer == "adafactor":
        # factored second moment: one row and one column vector per matrix (fp32); vectors kept whole
        h_, f = h, C.d_ff
        rc = L * (4 * h_ + 2 * a * C.head_dim + 2 * C.n_kv_heads * C.head_dim) + L * 3 * (h_ + f) + (V + h_)
        return 4 * rc / (tp * pp)
    extra = per_dev * 2 * 32 / 2048 / 8 if o.optimizer == "adam8bit" else 0  # bitsandbytes absmax per 2048 block
    return per_dev * states * bits_o / 8 + extra


def _training_activations(structure, o: MemoryOptions):
    """Saved activations per device (bytes) for the chosen memory model."""
    if o.memory_model == "seed":
        q = _SEED.quantities["mem_activations"]
        return _SEED.expanded("mem_activations"), q.source, q.note
    if o.memory_model == "korthikanti":
        return _korthikanti(structure, o)
    from .pytorch_memory import training_activations

    return training_activations(structure, o)


def _korthikanti(structure, o: MemoryOptions):
    """Korthikanti et al. §4.1 / Table 2, per device; GQA, d_ff != 4h, gated MLPs are derived terms.

    With MHA, d_ff = 4 d_model and dropout on, this is exactly Table 2: sbh(34 + 5as/h) per layer
    without parallelism, sbh(10 + 24/t + 5as/(ht)) with TP, sbh(34/t + 5as/(ht)) with TP + SP,
    sbh(10 + 24/t) / 34sbh/t with selective recompute, 2sbh with full recompute.
    """
    sb = s * b
    mask = 1 if o.dropout else 0
    w = 2 if o.precision == "fp32" else 1  # Table 2 counts 16-bit activations; fp32 doubles them (not masks)
    q_dim, kv_dim, f = a * C.head_dim, C.n_kv_heads * C.head_dim, C.d_ff
    experts = C.top_k if structure.moe else 1  # a token's MLP activations, once per expert it uses
    # kept whole by TP without SP: LN inputs, the two dropout masks, attention and MLP block inputs
    whole = w * 2 * structure.norms_per_layer * sb * h + 2 * mask * sb * h + w * 4 * sb * h
    # split by TP: Q, K, V, output-projection input; MLP hidden activations
    attn = w * (2 * sb * q_dim + 4 * sb * kv_dim + 2 * sb * q_dim)
    mlp = w * (6 if structure.mlp == "gated" else 4) * sb * f * experts
    split = attn + mlp
    if o.attention in ("flash", "sdpa"):
        scores = 4 * a * sb  # fused kernels keep an fp32 log-sum-exp per row; no s^2 term
    else:
        scores = (w * 4 + mask) * a * s * sb if mask else w * 2 * a * s * sb  # softmax out (+ mask, dropout out)
    t = tp
    if o.recompute == "full":
        per_layer = 2 * sb * h / (t if o.sequence_parallel else 1)
    else:
        kept = split + (0 if o.recompute == "selective" else scores)
        per_layer = (whole + kept) / t if o.sequence_parallel else whole + kept / t
    # first pipeline stage: p micro-batches in flight x L/p layers = L layers (§4.2.3); interleaving costs more
    interleave = sympy.Piecewise((1, sympy.Eq(vp, 1)), (1 + (pp - 1) / (pp * vp), True))
    note = ("Table 2 assumes 16-bit activations, eager attention and dropout (precision bf16, attention eager, "
            "dropout true reproduce it); fp32 doubles every tensor but the masks; GQA, d_ff != 4 d_model, gated "
            "MLPs and MoE top_k are derived generalisations (Megatron's 18 + 4f/h)")
    return per_layer * L * interleave, SRC_KORTHIKANTI + ("; " + SRC_FLASH if o.attention != "eager" else ""), note


def _training_extra(structure, o: MemoryOptions):
    if o.memory_model == "seed":  # the seed's 4BSV peak term and its int64 inputs 8BD (D = seq_len)
        extra = _SEED.apply(_SEED.expanded("mem_peak_extra") + _SEED.expanded("mem_input"), {"seq_len"})
        return extra, _SEED.quantities["mem_peak_extra"].source + "; " + _SEED.quantities["mem_input"].source
    if o.memory_model == "korthikanti":
        # Megatron: final LN, output projection input and fp32 cross-entropy, when p = 1 (÷ t)
        return sympy.Piecewise((4 * s * b * h * (1 + V / h) / tp, sympy.Eq(pp, 1)), (0, True)), \
            "Megatron-LM theoretical_memory_usage.py: 4sbh(1 + V/h) / t on the last stage (p = 1)"
    from .pytorch_memory import training_extra

    return training_extra(structure, o)


def _prefill_working(structure, o: MemoryOptions):
    from .pytorch_memory import prefill_working

    return prefill_working(structure, o)

