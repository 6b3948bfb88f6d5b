"""Emulate ``torch.cuda.max_memory_allocated()`` on the CPU and measure training / prefill memory.

    python benchmarks/measure_memory_cpu.py --validate [--max-tokens 2048]
    python benchmarks/measure_memory_cpu.py --extra [--out tests/data/cpu_measured_memory.json]
    python benchmarks/measure_memory_cpu.py --issue10 [--out tests/data/cpu_measured_memory_extra.json]
    python benchmarks/measure_memory_cpu.py --selftest

(in an environment with `pip install torch==2.13.0 transformers`; the fixture in tests/data was made
with torch 2.13.0+cpu and transformers 5.24.0)

Needs torch and transformers; nothing is downloaded (models come from ``AutoConfig.for_model`` and
``AutoModelForCausalLM.from_config``, random init).

How the emulation works
-----------------------
The whole measurement (model construction, optimizer, both steps) runs inside
``torch.profiler.profile(activities=[CPU], profile_memory=True)``. Every allocation and free of the
CPU allocator is then an event with a time stamp, a signed size and the block's address (read from
``kineto_results.experimental_event_tree()``). Each allocation is rounded up the way the CUDA
caching allocator rounds a request (to a multiple of 512 bytes, at least 512; size 0 allocates
nothing) and its free subtracts the same rounded size (matched by address). The running sum over
time is the emulated ``torch.cuda.memory_allocated()``; its maximum over a window is the emulated
``max_memory_allocated()``. Points in the program are marked with empty ``record_function`` ranges
whose start times lie on the same clock.

Dtype policy under bf16-amp: CPU autocast leaves ops such as pow, softmax, layer_norm, sum, exp in the
input dtype, while CUDA autocast runs them in fp32. With ``autocast_policy="cuda"`` (default) a
TorchFunctionMode casts the bf16 inputs of CUDA autocast's fp32-list ops to fp32 (also inside
activation-checkpoint recomputation), so the saved activations have the dtypes of a GPU run. On GPT-2
(gelu_new = 0.5*x*(1+tanh(c*(x+0.044715*pow(x,3))))) this is worth 24 bytes per MLP element per layer;
LLaMA-style models upcast explicitly and are unaffected.

What the emulation does not reproduce (see ``--validate``):
* Allocations the CUDA side makes and the CPU side does not: cuBLAS/cuBLASLt workspaces (allocated
  through the caching allocator on first use and kept), kernel-specific workspaces; oneDNN/MKL
  scratch on the CPU is not seen by the c10 allocator either. The CPU SDPA kernel
  (flash-attention-for-cpu) is not the CUDA kernel, though it saves the same tensors.
* The caching allocator's block accounting: a block whose remainder would be <= 1 MiB is handed out
  whole and counted whole by ``allocated_bytes`` (e.g. a fresh >= 10 MiB request gets a 2 MiB-rounded
  segment). The main fields count the 512-rounded request; ``alt["cuda512_large2mib"]`` applies the
  fresh-segment rule to requests >= 10 MiB; ``alt["exact"]`` has unrounded bytes.
* AdamW's per-parameter ``step`` counters are CPU tensors on a GPU run (not counted by the CUDA
  allocator); here they would be counted, so their (rounded) bytes are subtracted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
H200_FILE = REPO / "tests" / "data" / "measured_memory_pytorch_h200.json"
OUT_DIR = Path(__file__).resolve().parent  # benchmarks/; the committed fixture lives in tests/data

CUDA_ROUND = 512  # kMinBlockSize of the CUDA caching allocator
MIB = 1 << 20


def cuda_round(n: int) -> int:
    """Bytes the CUDA caching allocator counts for a request of n bytes (default settings)."""
    if n <= 0:
        return 0
    return ((n + CUDA_ROUND - 1) // CUDA_ROUND) * CUDA_ROUND


def cuda_round_large(n: int) -> int:
    """cuda_round, plus the caching allocator's whole-block rule for requests >= 10 MiB served from a fresh
    segment: the segment is rounded up to 2 MiB, and a remainder <= 1 MiB is not split off, so
    allocated_bytes counts the whole 2 MiB-rounded block. (A request served from a cached block can be
    counted anywhere between the two; this rule assumes the fresh-segment case.)"""
    r = cuda_round(n)
    if n >= 10 * MIB:
        seg = ((n + 2 * MIB - 1) // (2 * MIB)) * (2 * MIB)
        if seg - r <= MIB:
            return seg
    return r


RULES = {"cuda512": cuda_round, "cuda512_large2mib": cuda_round_large, "exact": lambda n: max(n, 0)}


# --------------------------------------------------------------------------------------------
# Allocation trace
# --------------------------------------------------------------------------------------------

MARK_PREFIX = "memmark::"


def train_steps(model, opt, ids, steps: int, autocast=nullcontext, forward=nullcontext) -> list[int]:
    """``steps`` training steps with marks start/fwd/bwd/end; the bytes of AdamW's ``step`` counters.

    ``autocast`` and ``forward`` are context factories entered around each forward pass.
    """
    import torch

    for s in range(steps):
        mark(f"start{s}")
        with autocast(), forward():
            out = model(input_ids=ids, labels=ids)
        loss = out.loss
        mark(f"fwd{s}")
        loss.backward()
        mark(f"bwd{s}")
        del out, loss
        opt.step()
        opt.zero_grad(set_to_none=True)
        mark(f"end{s}")
    return [st["step"].untyped_storage().nbytes() for st in opt.state.values()
            if isinstance(st, dict) and isinstance(st.get("step"), torch.Tensor)]


def mark(name: str) -> None:
    """Put a named point on the profiler's clock."""
    import torch

    with torch.profiler.record_function(MARK_PREFIX + name):
        pass


class AllocTrace:
    """Profile a block of code; afterwards query emulated allocated bytes at marks and peaks between marks."""

    def __init__(self, rule: str = "cuda512"):
        self.rule = rule
        self._prof = None

    def __enter__(self):
        from torch.profiler import ProfilerActivity, profile

        self._prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False,
                             with_stack=False)
        self._prof.__enter__()
        mark("__begin__")
        return self

    def __exit__(self, *exc):
        mark("__end__")
        self._prof.__exit__(*exc)
        if exc[0] is None:
            self._analyse()
        return False

    def _analyse(self):
        res = self._prof.profiler.kineto_results
        # allocation events with addresses, from the event tree (iterative walk)
        allocs = []
        stack = list(res.experimental_event_tree())
        while stack:
            node = stack.pop()
            ef = node.extra_fields
            if type(ef).__name__ == "_ExtraFields_Allocation":
                if str(ef.device).startswith("cpu") or getattr(ef.device, "type", None) is None:
                    allocs.append((node.start_time_ns, ef.ptr, int(ef.alloc_size)))
            stack.extend(node.children)
        # the flat event list holds the same [memory] events; check nothing was lost
        flat = [e for e in res.events() if e.name() == "[memory]"]
        self.n_events_flat = len(flat)
        self.n_events = len(allocs)
        marks = {}
        self.sdpa_ops = {}
        for e in res.events():
            n = e.name()
            if n.startswith("aten::_scaled_dot_product") or n.startswith("aten::_efficient_attention") or \
                    n.startswith("aten::_flash_attention"):
                self.sdpa_ops[n] = self.sdpa_ops.get(n, 0) + 1
            if n.startswith(MARK_PREFIX):
                marks[n[len(MARK_PREFIX):]] = e.start_ns()
        self.marks = marks
        # stable order: by time; equal times keep allocation-before-free (conservative for peaks)
        allocs.sort(key=lambda t: (t[0], 0 if t[2] > 0 else 1))
        self._allocs = allocs
        self._series = {}
        self._select(self.rule)

    def _select(self, rule: str):
        if rule not in self._series:
            rnd = RULES[rule]
            live = {}
            times, values = [], []
            cur = 0
            unmatched = 0
            for t, ptr, n in self._allocs:
                if n > 0:
                    b = rnd(n)
                    if ptr in live:  # address reused without a seen free (should not happen)
                        cur -= live[ptr]
                    live[ptr] = b
                    cur += b
                elif n < 0:
                    b = live.pop(ptr, None)
                    if b is None:
                        unmatched += 1
                        b = rnd(-n)
                    cur -= b
                else:
                    continue
                times.append(t)
                values.append(cur)
            self._series[rule] = (times, values, unmatched, cur, len(live))
        self.rule = rule
        self.times, self.values, self.unmatched_frees, self.final, self.n_live_end = self._series[rule]

    # value just before time t (all events with time < t)
    def _idx(self, t):
        import bisect

        return bisect.bisect_left(self.times, t)

    def at(self, name: str, rule: str | None = None) -> int:
        if rule:
            self._select(rule)
        i = self._idx(self.marks[name])
        return self.values[i - 1] if i > 0 else 0

    def peak(self, start: str, end: str, rule: str | None = None) -> int:
        if rule:
            self._select(rule)
        i0, i1 = self._idx(self.marks[start]), self._idx(self.marks[end])
        base = self.values[i0 - 1] if i0 > 0 else 0
        return max([base] + self.values[i0:i1])


def selftest() -> None:
    """The running sum must return to its start when every tensor dies, and match known sizes."""
    import torch

    with AllocTrace() as tr:
        mark("a")
        x = torch.empty(1000)          # 4000 B -> 4096
        y = torch.empty(300, 300)      # 360000 B -> 360448
        z = torch.empty(3, dtype=torch.int8)  # 3 B -> 512
        mark("b")
        w = (y @ y).sum()
        mark("c")
        del x, y, z, w
        mark("d")
    assert tr.n_events == tr.n_events_flat, (tr.n_events, tr.n_events_flat)
    assert tr.at("b") - tr.at("a") == 4096 + 360448 + 512, tr.at("b") - tr.at("a")
    assert tr.at("d") == tr.at("a"), (tr.at("a"), tr.at("d"))
    assert tr.peak("b", "c") >= tr.at("b") + 360448, (tr.peak("b", "c"), tr.at("b"))
    print(f"selftest ok: {tr.n_events} events, start={tr.at('a')} after-alloc={tr.at('b')} "
          f"peak(matmul)={tr.peak('b', 'c')} end={tr.at('d')} unmatched_frees={tr.unmatched_frees}")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

def hf_fields(config: dict, seq: int, dropout: float | None) -> tuple[str, dict]:
    """(model_type, AutoConfig fields) from either a transformers config dict (with model_type) or an
    H200-record-style dict (arch, d_model, n_layers, n_heads, n_kv_heads, d_ff, vocab)."""
    if "model_type" in config:
        fields = dict(config)
        mt = fields.pop("model_type")
    else:
        mt = config["arch"]
        if mt == "gpt2":
            fields = dict(n_embd=config["d_model"], n_layer=config["n_layers"], n_head=config["n_heads"],
                          n_inner=config["d_ff"], vocab_size=config["vocab"],
                          n_positions=max(1024, seq))
        elif mt == "llama":
            fields = dict(hidden_size=config["d_model"], num_hidden_layers=config["n_layers"],
                          num_attention_heads=config["n_heads"], num_key_value_heads=config["n_kv_heads"],
                          intermediate_size=config["d_ff"], vocab_size=config["vocab"],
                          max_position_embeddings=max(2048, seq))
        else:
            raise ValueError(f"unknown arch {mt}")
    if mt == "gpt2":
        fields["n_positions"] = max(fields.get("n_positions", 1024), seq)
    elif "max_position_embeddings" in fields or mt == "llama":
        fields["max_position_embeddings"] = max(fields.get("max_position_embeddings", 2048), seq)
    if dropout is None:
        dropout = config.get("dropout", 0.0)
    if mt == "gpt2":
        fields.update(resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    elif mt == "llama":
        fields.update(attention_dropout=dropout)
    else:
        for k in ("attention_dropout", "hidden_dropout", "dropout"):
            fields.setdefault(k, dropout)
    fields.pop("dropout", None) if mt in ("gpt2", "llama") else None
    fields.pop("arch", None)
    return mt, fields


def build_model(config: dict, seq: int, attn: str, dtype=None, dropout: float | None = None):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    mt, fields = hf_fields(config, seq, dropout)
    cfg = AutoConfig.for_model(mt, **fields)
    kw = {"attn_implementation": attn}
    if dtype is not None:
        kw["dtype"] = dtype
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, **kw), cfg


def _vocab(cfg) -> int:
    return cfg.vocab_size


def _tensor_bytes(obj, rnd=cuda_round) -> int:
    """Rounded bytes of all distinct tensors reachable in obj (lists/tuples/dicts/Cache objects)."""
    import torch

    seen, total = set(), 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, torch.Tensor):
            if o.untyped_storage().data_ptr() not in seen:
                seen.add(o.untyped_storage().data_ptr())
                total += rnd(o.untyped_storage().nbytes())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif hasattr(o, "layers"):  # transformers Cache (5.x): .layers[i].keys / .values
            for layer in o.layers:
                stack.extend([getattr(layer, "keys", None), getattr(layer, "values", None)])
        elif hasattr(o, "key_cache"):
            stack.extend([o.key_cache, o.value_cache])
    return total


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def _cuda_fp32_funcs():
    """Python-level callables whose aten ops are on CUDA autocast's fp32 (or fp32_set_opt_dtype) list but
    not on CPU autocast's: under CUDA autocast their bf16/fp16 inputs are cast to fp32 (outputs fp32);
    under CPU autocast they run in the input dtype. (Both lists: aten/src/ATen/autocast_mode.cpp.)"""
    import torch
    import torch.nn.functional as F

    T = torch.Tensor
    names_torch = ["pow", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal", "rsqrt", "acos", "asin",
                   "cosh", "sinh", "tan", "erfinv", "softmax", "log_softmax", "cumsum", "cumprod", "prod", "sum",
                   "norm", "logsumexp", "layer_norm", "group_norm", "dist", "cdist", "renorm", "frobenius_norm",
                   "nuclear_norm", "cosine_similarity"]
    names_tensor = ["pow", "__pow__", "__rpow__", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal",
                    "rsqrt", "acos", "asin", "cosh", "sinh", "tan", "erfinv", "softmax", "log_softmax", "cumsum",
                    "cumprod", "prod", "sum", "norm", "logsumexp", "dist", "renorm"]
    names_f = ["softmax", "log_softmax", "layer_norm", "group_norm", "softplus", "cosine_similarity", "mse_loss",
               "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss", "margin_ranking_loss",
               "soft_margin_loss", "triplet_margin_loss", "multi_margin_loss", "multilabel_margin_loss",
               "hinge_embedding_loss", "cosine_embedding_loss", "binary_cross_entropy_with_logits", "pdist",
               "nll_loss", "cross_entropy"]
    out = set()
    for mod, names in ((torch, names_torch), (T, names_tensor), (F, names_f)):
        for n in names:
            f = getattr(mod, n, None)
            if f is not None:
                out.add(f)
    out.add(torch.linalg.vector_norm)
    return out


def cuda_autocast_policy():
    """TorchFunctionMode that, while CPU autocast is on, casts lower-precision floating inputs of the ops on
    CUDA autocast's fp32 list to fp32, so a CPU run under torch.autocast('cpu', bf16) keeps the dtypes a
    CUDA autocast run would (e.g. pow inside GPT-2's gelu_new, softmax/layer_norm of bf16 inputs)."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_map

    funcs = _cuda_fp32_funcs()
    low = (torch.bfloat16, torch.float16)

    def up(t):
        return t.float() if isinstance(t, torch.Tensor) and t.dtype in low else t

    class _Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in funcs and torch.is_autocast_enabled("cpu"):
                args, kwargs = tree_map(up, (args, kwargs))
            return func(*args, **kwargs)

    return _Mode()


SDPA_BACKENDS = {"math": "MATH", "flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION",
                 "cudnn": "CUDNN_ATTENTION"}


def sdpa_recorder(calls: dict, cast_under_autocast: bool = True, cuda_policy: bool = False):
    """TorchFunctionMode that records how F.scaled_dot_product_attention is called (q/k dtypes, head counts,
    enable_gqa, mask, is_causal, dropout_p) into ``calls`` (signature -> count). With ``cast_under_autocast``,
    while CPU autocast is on, fp32 q/k/v are cast to bf16 as CUDA autocast does (SDPA is on CUDA autocast's
    lower-precision list). ``cuda_policy``: also apply cuda_autocast_policy's fp32 casts (one mode instead of
    two, for the checkpoint recomputation, where two stacked modes break on its early-stop exception)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_map

    funcs = _cuda_fp32_funcs() if cuda_policy else set()
    low = (torch.bfloat16, torch.float16)

    def up(t):
        return t.float() if isinstance(t, torch.Tensor) and t.dtype in low else t

    class _Rec(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in funcs and torch.is_autocast_enabled("cpu"):
                args, kwargs = tree_map(up, (tuple(args), kwargs))
            if func is F.scaled_dot_product_attention:
                args = list(args)
                q, k = args[0], args[1]
                cast = False
                if cast_under_autocast and torch.is_autocast_enabled("cpu") and q.dtype == torch.float32:
                    args[:3] = [t.to(torch.bfloat16) for t in args[:3]]
                    cast = True
                mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
                sig = (f"q={tuple(q.shape)} {str(args[0].dtype).replace('torch.', '')} k_heads={k.shape[1]} "
                       f"enable_gqa={kwargs.get('enable_gqa', False)} mask={'none' if mask is None else 'tensor'} "
                       f"is_causal={kwargs.get('is_causal', False)} dropout_p={kwargs.get('dropout_p', 0.0)}"
                       + (" (cast fp32->bf16 as CUDA autocast)" if cast else ""))
                calls[sig] = calls.get(sig, 0) + 1
            return func(*args, **kwargs)

    return _Rec()


def _training_fields(tr: AllocTrace, s: int, corr: int, ids_bytes: int, rule: str) -> dict:
    tr._select(rule)
    base = tr.at("base")
    return {
        "mem_weights": tr.at("weights") - base,
        "mem_after_forward_minus_before": tr.at(f"fwd{s}") - tr.at(f"start{s}"),
        "mem_after_backward": tr.at(f"bwd{s}") - base - corr,
        "peak_total": tr.peak(f"start{s}", f"end{s}") - base - corr,
        "peak_over_step_start": tr.peak(f"start{s}", f"end{s}") - tr.at(f"start{s}"),
        "mem_steady_weights_plus_optimizer": tr.at(f"end{s}") - base - ids_bytes - corr,
    }


def measure_training(config: dict, batch: int, seq: int, precision: str = "fp32", attn: str = "eager",
                     checkpointing: bool = False, optimizer: str = "adamw", dropout: float | None = None,
                     steps: int = 2, autocast_policy: str = "cuda", sdpa_backend: str | None = None) -> dict:
    """Replicate the H200 protocol on the CPU; numbers from the last of `steps` training steps.

    precision: "fp32", "bf16-amp" = "bf16-mixed" (torch.autocast("cpu", bfloat16), fp32 weights) or
    "bf16-true" (model.to(torch.bfloat16), AdamW on bf16 parameters: bf16 states, no master, no autocast).
    sdpa_backend: None (the CPU's own choice) or "math" / "flash" / "efficient" / "cudnn": the whole step
    (forward, backward and checkpoint recomputation) runs under torch.nn.attention.sdpa_kernel(that backend).
    The calls to F.scaled_dot_product_attention are recorded ("sdpa_calls") and the aten SDPA ops the
    profiler saw are listed ("sdpa_ops"), so the kernel that actually ran is on record.
    autocast_policy (bf16-amp only): "cuda" = additionally cast the inputs of CUDA autocast's fp32-list ops to
    fp32 (what a GPU run does; see cuda_autocast_policy), "cpu" = plain CPU autocast.
    Returns mem_weights, mem_after_forward_minus_before, mem_after_backward, peak_total,
    peak_over_step_start, mem_steady_weights_plus_optimizer, mem_input_ids, params (bytes; 512-byte
    rounding), and the same fields under the other accounting rules in "alt".
    """
    import torch

    if precision not in ("fp32", "bf16-amp", "bf16-mixed", "bf16-true"):
        raise ValueError(precision)
    if autocast_policy not in ("cuda", "cpu"):
        raise ValueError(autocast_policy)
    amp = precision in ("bf16-amp", "bf16-mixed")
    true16 = precision == "bf16-true"
    if sdpa_backend is not None:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        kernel_ctx = sdpa_kernel(getattr(SDPBackend, SDPA_BACKENDS[sdpa_backend]))
    else:
        kernel_ctx = nullcontext()
    sdpa_calls, sdpa_calls_recompute = {}, {}
    gc.collect()
    t0 = time.time()
    with AllocTrace() as tr:
        mark("base")
        model, cfg = build_model(config, seq, attn, dropout=dropout)
        model.to("cpu")
        if true16:
            model.to(torch.bfloat16)
        model.train()
        policy_on = amp and autocast_policy == "cuda"
        if checkpointing:
            # the recomputation in backward must see the same dtype policy (and SDPA input casts) as the forward
            # (transformers' default is use_reentrant=False; context_fn only adds the modes to the recompute)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={
                "use_reentrant": False,
                "context_fn": lambda: (nullcontext(), sdpa_recorder(sdpa_calls_recompute, cuda_policy=policy_on))})
        mark("weights")
        params = sum(p.numel() for p in model.parameters())
        if optimizer == "adamw":
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)
        elif optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=1e-4)
        else:
            raise ValueError(optimizer)
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, _vocab(cfg), (batch, seq), generator=g)
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else nullcontext
        mode = cuda_autocast_policy() if policy_on else nullcontext()
        with kernel_ctx, mode:  # the recorder sees the forward only (backward: context_fn above)
            step_tensors = train_steps(model, opt, ids, steps, ctx, lambda: sdpa_recorder(sdpa_calls))
        ids_n = ids.numel() * ids.element_size()
        del model, opt, ids
        gc.collect()
        mark("gone")
    s = steps - 1
    # AdamW step counters live on the CPU in a GPU run: removed from the absolute fields after step 0
    res = {"params": int(params)}
    alt = {}
    for rule in ("exact", "cuda512_large2mib", "cuda512"):
        rnd = RULES[rule]
        corr = sum(rnd(n) for n in step_tensors)
        f = _training_fields(tr, s, corr, rnd(ids_n), rule)
        if rule == "cuda512":
            res.update(f)
            res["mem_input_ids"] = rnd(ids_n)
            res["optimizer_step_counter_bytes_removed"] = corr
        else:
            alt[rule] = f
    res.update({
        "precision_autocast_policy": (autocast_policy if amp else None),
        "sdpa_backend_forced": sdpa_backend,
        "sdpa_calls": sdpa_calls,
        "sdpa_calls_recompute": sdpa_calls_recompute,
        "sdpa_ops": tr.sdpa_ops,
        "alt": alt,
        "leak_after_delete": tr.at("gone") - tr.at("base"),
        "trace_events": tr.n_events,
        "unmatched_frees": tr.unmatched_frees,
        "seconds": round(time.time() - t0, 2),
    })
    return res


# --------------------------------------------------------------------------------------------
# Prefill
# --------------------------------------------------------------------------------------------

_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def measure_prefill(config: dict, batch: int, seq: int, dtype: str = "bf16", attn: str = "sdpa") -> dict:
    """Peak of model(input_ids, use_cache=True) under no_grad, model built in `dtype`, eval mode.

    Returns mem_weights, peak_total, peak_over_weights (peak minus allocated just before the call),
    mem_after_call_minus_before, kv_cache_bytes, logits_bytes (bytes, 512-byte rounding), and the
    same fields under the other accounting rules in "alt".
    """
    import torch

    tdt = getattr(torch, _DTYPES[dtype])
    gc.collect()
    t0 = time.time()
    with AllocTrace() as tr:
        mark("base")
        model, cfg = build_model(config, seq, attn, dtype=tdt, dropout=0.0)
        model.to("cpu")
        model.eval()
        mark("weights")
        params = sum(p.numel() for p in model.parameters())
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, _vocab(cfg), (batch, seq), generator=g)
        mark("before")
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=True)
        mark("after")
        kv = {r: _tensor_bytes(out.past_key_values, RULES[r]) for r in RULES}
        ln = out.logits.numel() * out.logits.element_size()
        logits_dtype = str(out.logits.dtype).replace("torch.", "")
        del out, model, ids
        gc.collect()
        mark("gone")
    res = {"params": int(params)}
    alt = {}
    for rule in ("exact", "cuda512_large2mib", "cuda512"):
        tr._select(rule)
        base = tr.at("base")
        f = {
            "mem_weights": tr.at("weights") - base,
            "peak_total": tr.peak("before", "after") - base,
            "peak_over_weights": tr.peak("before", "after") - tr.at("before"),
            "mem_after_call_minus_before": tr.at("after") - tr.at("before"),
            "kv_cache_bytes": kv[rule],
            "logits_bytes": RULES[rule](ln),
        }
        if rule == "cuda512":
            res.update(f)
        else:
            alt[rule] = f
    res.update({
        "logits_dtype": logits_dtype,
        "alt": alt,
        "leak_after_delete": tr.at("gone") - tr.at("base"),
        "trace_events": tr.n_events,
        "seconds": round(time.time() - t0, 2),
    })
    return res


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

FIELDS = ["mem_weights", "mem_after_forward_minus_before", "mem_after_backward", "peak_total",
          "peak_over_step_start", "mem_steady_weights_plus_optimizer"]
SHORT = {"mem_weights": "weights", "mem_after_forward_minus_before": "fwd-before",
         "mem_after_backward": "after-bwd", "peak_total": "peak_total", "peak_over_step_start": "peak/start",
         "mem_steady_weights_plus_optimizer": "steady"}


def _versions() -> dict:
    import platform

    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "device": f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"}


META_HOW = (
    "CPU emulation of torch.cuda.max_memory_allocated(): the whole run is profiled with "
    "torch.profiler (CPU, profile_memory=True); every allocator event is rounded up to a multiple of "
    "512 bytes (CUDA caching allocator block rounding; frees matched by address) and the running sum is "
    "the emulated allocated bytes; points are marked with empty record_function ranges. Training: model "
    "built with transformers on the CPU (random init, AutoConfig.for_model + from_config), model.train(), "
    "AdamW(lr=1e-4, foreach=False) or SGD(lr=1e-4), two training steps on the same random token ids with "
    "labels=input_ids (loss inside the model), `del out, loss` after backward, then opt.step() and "
    "zero_grad(set_to_none=True); numbers from the second step. mem_weights = allocated after the model "
    "exists minus the baseline before it; mem_after_forward_minus_before = allocated after the forward "
    "minus before it; mem_after_backward = allocated after backward minus baseline; peak_total = max "
    "allocated during step 2 minus the baseline; peak_over_step_start = max during step 2 minus allocated "
    "at its start; mem_steady_weights_plus_optimizer = allocated after opt.step()+zero_grad minus baseline "
    "minus the input ids. AdamW's per-parameter `step` counters (CPU tensors on a GPU run) are subtracted "
    "from the absolute fields (optimizer_step_counter_bytes_removed). precision bf16-amp = "
    "torch.autocast('cpu', bfloat16) with fp32 weights; with precision_autocast_policy='cuda' (default) a "
    "TorchFunctionMode additionally casts the bf16 inputs of ops on CUDA autocast's fp32 list (pow, softmax, "
    "layer_norm, sum, exp, ...) to fp32, as CUDA autocast does and CPU autocast does not; 'cpu' = plain CPU "
    "autocast. attn eager = "
    "attn_implementation='eager', sdpa = 'sdpa' (CPU SDPA kernel). checkpointing = "
    "model.gradient_checkpointing_enable(). Dropout fields set to the record's dropout (gpt2: resid/embd/"
    "attn_pdrop; llama: attention_dropout). Prefill: model built in the dtype, eval(), "
    "model(input_ids, use_cache=True) under torch.no_grad(); peak_total = max during the call minus the "
    "baseline before the model; peak_over_weights = max during the call minus allocated just before it; "
    "kv_cache_bytes = bytes (512-rounded) of the returned past_key_values tensors; logits_bytes likewise. "
    "Main fields use the 512-byte rule; 'alt' holds the same fields with exact byte counts ('exact') and "
    "with the caching allocator's whole-block rule for requests >= 10 MiB ('cuda512_large2mib': a fresh "
    "segment is rounded to 2 MiB and a remainder <= 1 MiB stays in the block and is counted). Bytes throughout.")


def _print_cmp(m: dict, r: dict) -> None:
    for k in FIELDS:
        a, b = m[k], r[k]
        rel = (a - b) / b if b else float("nan")
        a2 = m["alt"]["cuda512_large2mib"][k]
        rel2 = (a2 - b) / b if b else float("nan")
        print(f"    {SHORT[k]:>11}: cpu {a:>14,d}  h200 {b:>14,d}  diff {a - b:>+13,d}  rel {rel:+.4%}"
              f"   | +2MiB-rule diff {a2 - b:>+13,d} rel {rel2:+.4%}", flush=True)


def cmd_validate(max_tokens: int, only: list[int] | None, cpu_policy_too: bool = True) -> list[dict]:
    d = json.loads(H200_FILE.read_text())
    rows = []
    for i, r in enumerate(d["records"]):
        if only and i not in only:
            continue
        tag = (f"[{i}] {r['arch']} b{r['batch']} s{r['seq']} {r['precision']} {r['attn']} "
               f"ckpt={r['checkpointing']} drop={r.get('dropout', 0.0)}")
        if r["batch"] * r["seq"] > max_tokens:
            print(f"{tag}: SKIPPED, batch*seq={r['batch'] * r['seq']} > --max-tokens {max_tokens}", flush=True)
            continue
        policies = ["cuda"] + (["cpu"] if (r["precision"] == "bf16-amp" and cpu_policy_too) else [])
        for pol in policies:
            m = measure_training(r, r["batch"], r["seq"], r["precision"], r["attn"], r["checkpointing"],
                                 r["optimizer"], dropout=r.get("dropout", 0.0), autocast_policy=pol)
            rows.append({"index": i, "autocast_policy": m["precision_autocast_policy"],
                         "h200": {k: r[k] for k in FIELDS + ["params"]}, "cpu": m})
            pol_s = f" autocast_policy={pol}" if r["precision"] == "bf16-amp" else ""
            print(f"{tag}{pol_s} ({m['seconds']} s; params cpu={m['params']} h200={r['params']})", flush=True)
            _print_cmp(m, r)
    return rows


def _gpt2(d, L, H, V, ff=None):
    return {"model_type": "gpt2", "n_embd": d, "n_layer": L, "n_head": H, "n_inner": ff or 4 * d,
            "vocab_size": V, "n_positions": 1024}


def _llama(d, L, H, KV, ff, V):
    return {"model_type": "llama", "hidden_size": d, "num_hidden_layers": L, "num_attention_heads": H,
            "num_key_value_heads": KV, "intermediate_size": ff, "vocab_size": V,
            "max_position_embeddings": 2048}


def extra_plan() -> list[dict]:
    """The list of extra shapes (training and prefill). About 5 minutes on 2 cores."""
    plan = []

    def train(cfg, b, s, prec, attn, ck=False, drop=0.0, opt="adamw", policy="cuda"):
        plan.append(dict(kind="train", config=cfg, batch=b, seq=s, precision=prec, attn=attn, checkpointing=ck,
                         dropout=drop, optimizer=opt, autocast_policy=policy))

    g_small = _gpt2(256, 4, 4, 8000)
    g_mid = _gpt2(384, 6, 6, 16000)
    g_wide = _gpt2(512, 4, 8, 8000)
    g_deep_bigv = _gpt2(512, 6, 8, 32000)
    g_124m = _gpt2(768, 12, 12, 50257)
    ll = _llama(512, 4, 8, 2, 1376, 8000)
    ll_mha = _llama(512, 4, 8, 8, 1376, 8000)
    ll_bigv = _llama(512, 4, 8, 2, 1376, 32000)
    ll_big = _llama(768, 6, 12, 4, 2048, 32000)
    precs, attns, cks = ("fp32", "bf16-amp"), ("eager", "sdpa"), (False, True)
    # (a) GPT-2 style
    for attn in attns:  # full factorial on the small model, incl. dropout
        for prec in precs:
            for ck in cks:
                for drop in (0.0, 0.1):
                    train(g_small, 4, 256, prec, attn, ck, drop)
    for b, s in ((1, 512), (2, 512), (1, 1024), (2, 1024), (8, 256), (1, 2048)):  # batch / seq scaling
        for attn in attns:
            train(g_small, b, s, "fp32", attn)
    for cfg in (g_wide, g_deep_bigv):  # wider / deeper / larger vocabulary
        for attn in attns:
            for prec in precs:
                for ck in cks:
                    train(cfg, 4, 256, prec, attn, ck)
        train(cfg, 4, 256, "fp32", "eager", drop=0.1)
        train(cfg, 4, 256, "bf16-amp", "sdpa", drop=0.1)
    for attn in attns:
        for prec in precs:
            train(g_deep_bigv, 2, 1024, prec, attn)
            train(g_mid, 4, 512, prec, attn)
    train(g_wide, 4, 256, "fp32", "eager", opt="sgd")
    train(g_wide, 4, 256, "bf16-amp", "sdpa", opt="sgd")
    # (b) LLaMA style with GQA (and one MHA model for contrast)
    for attn in attns:
        for prec in precs:
            for ck in cks:
                train(ll, 4, 256, prec, attn, ck)
            train(ll, 2, 1024, prec, attn)
            train(ll_bigv, 4, 256, prec, attn)
            train(ll_mha, 4, 256, prec, attn)
            train(ll_big, 2, 512, prec, attn)
        train(ll, 4, 256, "fp32", attn, drop=0.1)
        train(ll, 1, 2048, "fp32", attn)
    train(ll_big, 2, 512, "bf16-amp", "sdpa", ck=True)
    train(ll, 4, 256, "fp32", "sdpa", opt="sgd")
    # plain CPU autocast (no CUDA fp32-list emulation), for contrast with the default policy
    for cfg in (g_small, g_deep_bigv, ll):
        train(cfg, 4, 256, "bf16-amp", "eager", policy="cpu")
    # (c) prefill
    for cfg in (g_wide, g_deep_bigv, ll, ll_bigv):
        for dt in ("bf16", "fp32"):
            for b, s in ((1, 512), (4, 256), (2, 1024), (8, 256), (1, 2048)):
                for attn in attns:
                    if attn == "eager" and (b, s) not in ((1, 512), (2, 1024)):
                        continue
                    plan.append(dict(kind="prefill", config=cfg, batch=b, seq=s, dtype=dt, attn=attn))
    for cfg in (g_124m, ll_big):
        for dt in ("bf16", "fp32"):
            for b, s in ((1, 1024), (4, 256)):
                plan.append(dict(kind="prefill", config=cfg, batch=b, seq=s, dtype=dt, attn="sdpa"))
    return plan


def issue10_plan() -> list[dict]:
    """Pure bf16 training (bf16-true) and GQA attention through SDPA with the kernel CUDA would pick forced on
    the CPU (issue 10). Small shapes: a few minutes on 2 cores.

    Kernel forcing (``sdpa_backend``): the pytorch memory model predicts, for a CUDA sm80+ device,
    math for fp32 with grouped k/v (mem-efficient refuses enable_gqa with fewer k/v heads) and cuDNN/flash for
    16-bit inputs (head_dim <= 128). The CPU's own choice differs (its flash kernel also takes fp32 + GQA), so
    the fp32 GQA runs force ``math``. The CPU has no cuDNN or CUDA-flash kernel; the 16-bit runs force the CPU
    flash kernel (``_scaled_dot_product_flash_attention_for_cpu``), which like CUDA's flash/cuDNN saves only
    q, k, v, the output and an fp32 log-sum-exp per row (no S x S tensor) - the tensors the model counts.
    Workspaces of the CUDA kernels are not reproduced (as for every record of this tool).
    """
    plan = []

    def train(cfg, b, s, prec, attn, ck=False, backend=None, group="bf16-true"):
        plan.append(dict(kind="train", config=cfg, batch=b, seq=s, precision=prec, attn=attn, checkpointing=ck,
                         dropout=0.0, optimizer="adamw", autocast_policy="cuda", sdpa_backend=backend,
                         group=group))

    # small shapes: bf16 matmuls are slow on CPUs without bf16 instructions
    g_small = _gpt2(128, 2, 4, 4000)
    g_wide = _gpt2(256, 2, 4, 4000)
    g_deep = _gpt2(192, 4, 4, 8000)
    ll = _llama(256, 2, 4, 2, 688, 4000)
    ll_mha = _llama(256, 2, 4, 4, 688, 4000)
    ll_bigv = _llama(256, 2, 4, 2, 688, 8000)
    ll_big = _llama(384, 3, 6, 2, 1024, 8000)
    # (1) pure bf16: model.to(torch.bfloat16) + AdamW, no autocast
    for ck in (False, True):
        train(g_small, 2, 256, "bf16-true", "eager", ck)
        train(g_wide, 2, 256, "bf16-true", "eager", ck)
        train(g_deep, 1, 512, "bf16-true", "eager", ck)
        train(ll, 2, 256, "bf16-true", "eager", ck)
        train(ll_big, 1, 512, "bf16-true", "eager", ck)
    train(g_small, 4, 128, "bf16-true", "eager")
    train(ll_mha, 2, 256, "bf16-true", "eager")
    train(ll_bigv, 2, 256, "bf16-true", "eager")
    # (2) GQA through SDPA, CUDA's kernel forced: math for fp32, (CPU) flash for 16-bit
    for prec, backend in (("fp32", "math"), ("bf16-mixed", "flash"), ("bf16-true", "flash")):
        for ck in (False, True):
            train(ll, 2, 256, prec, "sdpa", ck, backend, group="gqa-sdpa")
        train(ll_big, 1, 512, prec, "sdpa", False, backend, group="gqa-sdpa")
        train(ll_bigv, 4, 128, prec, "sdpa", False, backend, group="gqa-sdpa")
    # pure bf16 through SDPA on GPT-2 (MHA: CUDA flash/cuDNN; CPU flash)
    train(g_small, 2, 256, "bf16-true", "sdpa", False, "flash")
    train(g_wide, 2, 256, "bf16-true", "sdpa", True, "flash")
    return plan


def _summary(config: dict) -> dict:
    """H200-style summary fields of a transformers config dict."""
    if config["model_type"] == "gpt2":
        return {"arch": "gpt2", "d_model": config["n_embd"], "n_layers": config["n_layer"],
                "n_heads": config["n_head"], "n_kv_heads": config["n_head"], "d_ff": config["n_inner"],
                "vocab": config["vocab_size"]}
    return {"arch": config["model_type"], "d_model": config["hidden_size"], "n_layers": config["num_hidden_layers"],
            "n_heads": config["num_attention_heads"], "n_kv_heads": config["num_key_value_heads"],
            "d_ff": config["intermediate_size"], "vocab": config["vocab_size"]}


def cmd_extra(out_path: Path, limit: int | None, plan: list[dict] | None = None) -> None:
    plan = extra_plan() if plan is None else plan
    if limit:
        plan = plan[:limit]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    records = []
    meta = dict(_versions(), how=META_HOW, rounding_bytes=CUDA_ROUND, seconds=None)

    def dump():
        meta["seconds"] = round(time.time() - t0, 1)
        out_path.write_text(json.dumps({"meta": meta, "records": records}, indent=1))

    for i, p in enumerate(plan):
        cfg = p["config"]
        # the config the model was actually built with (positions raised to seq, dropout fields set)
        mt, fields = hf_fields(cfg, p["seq"], p.get("dropout", 0.0))
        rec = dict(_summary(cfg), config=dict(model_type=mt, **fields), kind=p["kind"], batch=p["batch"],
                   seq=p["seq"])
        try:
            if p["kind"] == "train":
                rec.update(precision=p["precision"], attn=p["attn"], checkpointing=p["checkpointing"],
                           dropout=p["dropout"], optimizer=p["optimizer"])
                if "group" in p:
                    rec["group"] = p["group"]
                m = measure_training(cfg, p["batch"], p["seq"], p["precision"], p["attn"], p["checkpointing"],
                                     p["optimizer"], dropout=p["dropout"],
                                     autocast_policy=p.get("autocast_policy", "cuda"),
                                     sdpa_backend=p.get("sdpa_backend"))
            else:
                rec.update(precision=p["dtype"], dtype=p["dtype"], attn=p["attn"], checkpointing=False,
                           dropout=0.0, optimizer=None)
                m = measure_prefill(cfg, p["batch"], p["seq"], p["dtype"], attn=p["attn"])
            rec.update(m, ok=True)
        except Exception as e:  # record the failure, keep going
            rec.update(ok=False, error=f"{type(e).__name__}: {e}")
        records.append(rec)
        dump()
        tag = (f"{rec['kind']:7} {rec['arch']:5} d{rec['d_model']} L{rec['n_layers']} V{rec['vocab']} "
               f"b{rec['batch']} s{rec['seq']} {rec['precision']:8} {rec['attn']:5} ck={int(rec['checkpointing'])} "
               + (f"kernel={rec.get('sdpa_backend_forced')} " if rec.get("sdpa_backend_forced") else "") +
               f"dr={rec['dropout']}" + (f" policy={rec['precision_autocast_policy']}"
                                         if rec.get("precision_autocast_policy") else ""))
        if rec["ok"]:
            print(f"[{i + 1}/{len(plan)}] {tag}: peak_total={rec['peak_total']:,} ({rec['seconds']} s, "
                  f"total {time.time() - t0:.0f} s)", flush=True)
        else:
            print(f"[{i + 1}/{len(plan)}] {tag}: FAILED {rec['error']}", flush=True)
    dump()
    print(f"wrote {len(records)} records ({sum(r['ok'] for r in records)} ok) to {out_path} "
          f"in {time.time() - t0:.0f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--validate", action="store_true", help="rerun cheap H200 records on the CPU and compare")
    ap.add_argument("--max-tokens", type=int, default=2048, help="--validate: skip records with batch*seq above")
    ap.add_argument("--only", type=int, nargs="*", help="--validate: record indices to run")
    ap.add_argument("--validate-json", type=Path, default=OUT_DIR / "cpu_validate.json")
    ap.add_argument("--extra", action="store_true", help="measure extra shapes, write --out")
    ap.add_argument("--issue10", action="store_true",
                    help="pure bf16 (bf16-true) training and GQA through SDPA with CUDA's kernel forced; writes "
                         "--out (default tests/data/cpu_measured_memory_extra.json)")
    ap.add_argument("--limit", type=int, help="--extra / --issue10: only the first N shapes")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    if not (a.validate or a.extra or a.selftest or a.issue10):
        ap.error("nothing to do: --validate, --extra, --issue10 or --selftest")
    if a.selftest:
        selftest()
    if a.validate:
        selftest()
        rows = cmd_validate(a.max_tokens, a.only)
        a.validate_json.parent.mkdir(parents=True, exist_ok=True)
        a.validate_json.write_text(json.dumps({"meta": dict(_versions(), how=META_HOW), "rows": rows}, indent=1))
        print(f"wrote {a.validate_json}")
    if a.extra:
        cmd_extra(a.out or OUT_DIR / "cpu_measured.json", a.limit)
    if a.issue10:
        cmd_extra(a.out or REPO / "tests" / "data" / "cpu_measured_memory_extra.json", a.limit, issue10_plan())
    return 0


if __name__ == "__main__":
    sys.exit(main())
