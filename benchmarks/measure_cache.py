"""Record, exactly, the bytes transformers' KV / state cache holds after one prefill, per layer.

    python benchmarks/measure_cache.py [--out tests/data/transformers_cache_bytes.json] [--only NAME ...]
    python benchmarks/measure_cache.py --presets [--out FILE]   # also every preset of a supported type
    python benchmarks/measure_cache.py --list

(in an environment with `pip install torch==2.13.0 transformers`; the fixture in tests/data was made
with torch 2.13.0+cpu and transformers 5.24.0)

Needs torch and transformers; nothing is downloaded (configs come from ``AutoConfig.for_model`` and
models from ``AutoModelForCausalLM.from_config``, random init). Ground truth for the engine's cache
formulas.

How
---
Each case is a config dict (``model_type`` + fields; no fields = transformers' defaults of the type),
a dtype, a batch and a sequence length. The config is SHRUNK before the model is built: only widths
that do not shape the cache are made small (hidden_size 64, or the next multiple of the number of
query heads; every intermediate / MoE-intermediate size 32; vocab 256; 4 routed experts with 2 per
token and one routing group; q_lora_rank 32). The number of query heads does not shape the cache
either: for GQA models it is cut to num_key_value_heads, for MLA models (whose transformers 5.x cache
is the head-less latent) to 4; cases named ``*-heads*`` keep the original heads and show the same
bytes. Every cache-shaping field is kept, and ``head_dim`` is passed explicitly where the model would
otherwise derive it from hidden_size (StableLM ignores ``head_dim`` and OLMoE sizes its q/k norms by
hidden_size: their hidden_size and heads are kept). The resolved cache-shaping fields of the original
and the shrunk config must be equal (``cache_fields`` in the output). deepseek_v2's default
``num_experts_per_tok=None`` cannot run (top-k of None) and is set to 2.

The model is built in the case's dtype, ``eval()``, and run once as
``model(input_ids=randint(0, vocab, (batch, seq_len)), use_cache=True)`` under ``torch.no_grad()``
with ``attn_implementation="sdpa"`` (``eager`` where a model has no SDPA support). For long
sequences (seq_len > ``--probe-above``, default 512) the attention *computation* is replaced by a
registered shape-only implementation ("cache_probe") that returns zeros of the right shape and builds
no mask: the cache is written by ``cache.update`` / ``update_conv_state`` / ``update_recurrent_state``
inside the attention and mixer modules before the attention kernel runs, so its layout does not
depend on the kernel, and the run stays O(s) instead of O(s^2). ``meta.probe_check`` lists the cases
re-run with the probe (each type's short case, each windowed type past its window) and whether the
layout was identical.

The returned ``past_key_values`` is walked generically: for each entry of ``cache.layers`` every
tensor reachable through ``vars()`` (recursively into dicts, lists and tuples) is recorded with its
attribute path, shape and dtype. Per layer: ``bytes`` = sum of numel*element_size over the distinct
state tensors (dimension >= 1; 0-dim bookkeeping tensors such as a sliding layer's
``_sliding_window_tensor`` are listed and counted separately in ``aux_bytes``), and
``storage_bytes`` = sum of the sizes of the distinct storages those tensors live in (what stays
allocated: a sliding layer's keys after a long prefill are a *view* of the whole prefill's keys).
Tensors held by the cache object itself, outside its layers, are listed under ``cache_tensors``.
``--presets`` adds every preset of engine/catalog/data/presets.json whose model_type is one of
TYPES, shrunk the same way, at the short length and at the long one (window + 5, else 300).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "data" / "transformers_cache_bytes.json"
PRESETS = REPO / "engine" / "catalog" / "data" / "presets.json"

TYPES = [
    "deepseek_v2", "deepseek_v3", "qwen2_moe", "qwen3_moe", "qwen3_next", "gpt_oss", "llama4_text",
    "gemma2", "gemma3_text", "olmo2", "olmoe", "stablelm", "starcoder2", "cohere", "nemotron_h",
    "granite", "glm4_moe", "llama", "mistral",
]
MLA_TYPES = {"deepseek_v2", "deepseek_v3"}
# models whose attention takes head_dim = hidden_size // num_attention_heads whatever config.head_dim says
# (StableLM), or whose q/k norms are sized by hidden_size (OLMoE): hidden_size is kept for these
KEEP_HIDDEN = {"stablelm", "olmoe"}

SHORT_S, SHORT_B = 7, 2
NOWINDOW_LONG_S = 300  # > Mamba-2 chunk_size 128 and the gated-delta-rule chunk 64
SMALL = {"hidden_size": 64, "intermediate": 32, "vocab_size": 256, "experts": 4, "experts_per_tok": 2,
         "q_lora_rank": 32, "mla_heads": 4}

INTERMEDIATE_KEYS = ["intermediate_size", "moe_intermediate_size", "shared_expert_intermediate_size",
                     "moe_shared_expert_intermediate_size", "intermediate_size_mlp"]
EXPERT_KEYS = ["n_routed_experts", "num_experts", "num_local_experts"]
TOKEN_KEYS = ["bos_token_id", "eos_token_id", "pad_token_id"]
# resolved config attributes that decide the cache (compared between original and shrunk config)
CACHE_KEYS = [
    "num_hidden_layers", "num_key_value_heads", "head_dim", "layer_types", "sliding_window",
    "use_sliding_window", "max_window_layers", "attention_chunk_size", "kv_lora_rank",
    "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "ssm_state_size", "mamba_num_heads",
    "mamba_head_dim", "n_groups", "conv_kernel", "mamba_ssm_cache_dtype", "linear_num_key_heads",
    "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim",
    "num_nextn_predict_layers", "mlp_only_layers",
]
# generic PretrainedConfig keys left out of the recorded configs
NOISE_KEYS = {"transformers_version", "architectures", "output_hidden_states", "return_dict", "dtype",
              "chunk_size_feed_forward", "is_encoder_decoder", "problem_type", "_name_or_path",
              "output_attentions", "id2label", "label2id", "tokenizer_class", "torch_dtype",
              "_attn_implementation_autoset"}


# ---------------------------------------------------------------------------------------------- cases
def window_of(cfg) -> int | None:
    """Largest sliding window / attention chunk of a resolved config (None: no windowed layer)."""
    types = getattr(cfg, "layer_types", None) or []
    ws = []
    sw = getattr(cfg, "sliding_window", None)
    ch = getattr(cfg, "attention_chunk_size", None)
    if sw and (not types or "sliding_attention" in types or "hybrid_sliding" in types):
        ws.append(int(sw))
    if ch and (not types or "chunked_attention" in types):
        ws.append(int(ch))
    return max(ws) if ws else None


def long_len(cfg) -> int:
    w = window_of(cfg)
    return w + 5 if w else NOWINDOW_LONG_S


def base_fields(model_type: str) -> dict:
    """Fields added to transformers' default config of the type for the default cases."""
    if model_type == "nemotron_h":
        # Mamba-2 (M), attention (*), MLP (-), MoE (E): the default is only "M E * -"
        return {"hybrid_override_pattern": "M-M*EM*-E"}
    return {}


def default_cases() -> list[dict]:
    cases = []

    def add(name, model_type, fields, s, b, dtype="bfloat16", long=False, check=False, keep_heads=False):
        cases.append({"name": name, "config": {"model_type": model_type, **fields}, "seq_len": s,
                      "batch": b, "dtype": dtype, "long": long, "probe_check": check,
                      "keep_heads": keep_heads})

    for t in TYPES:
        f = base_fields(t)
        add(f"{t}", t, f, SHORT_S, SHORT_B, check=True)
        add(f"{t}-fp32", t, f, SHORT_S, SHORT_B, dtype="float32")
        add(f"{t}-long", t, f, None, 1, long=True)  # seq_len resolved from the config: window + 5
    # small windows / chunks: which tokens a windowed layer keeps, pinned around the boundary
    win = {
        "mistral": {"sliding_window": 16},
        "gemma2": {"sliding_window": 16},
        "gemma3_text": {"sliding_window": 16},
        "gpt_oss": {"sliding_window": 16},
        "starcoder2": {"sliding_window": 16},
        "qwen2_moe": {"use_sliding_window": True, "sliding_window": 16, "max_window_layers": 12},
        "qwen3_moe": {"use_sliding_window": True, "sliding_window": 16},
        "llama4_text": {"attention_chunk_size": 16},
    }
    for t, f in win.items():
        for s in (10, 15, 16, 17, 40):
            # the probe check also on windowed layers past their window
            add(f"{t}-w16-s{s}", t, {**base_fields(t), **f}, s, 2, check=s == 40)
    add("mistral-w16-s40-fp32", "mistral", win["mistral"], 40, 2, dtype="float32")
    add("llama4_text-w16-s40-fp32", "llama4_text", win["llama4_text"], 40, 2, dtype="float32")
    # MLA: q_lora_rank None as well as set (set is the default of both types); heads do not matter
    for t in sorted(MLA_TYPES):
        add(f"{t}-qlora-none", t, {"q_lora_rank": None}, SHORT_S, SHORT_B)
        add(f"{t}-qlora-none-long", t, {"q_lora_rank": None}, NOWINDOW_LONG_S, 1)
    # the number of heads does not shape an MLA (latent) cache nor a GQA cache: same bytes as the defaults
    add("deepseek_v3-heads16", "deepseek_v3", {"num_attention_heads": 16, "num_key_value_heads": 16},
        SHORT_S, SHORT_B, keep_heads=True)
    add("deepseek_v2-heads32", "deepseek_v2", {}, SHORT_S, SHORT_B, keep_heads=True)
    add("mistral-heads32", "mistral", {}, SHORT_S, SHORT_B, keep_heads=True)
    add("llama4_text-heads40", "llama4_text", {}, SHORT_S, SHORT_B, keep_heads=True)
    add("deepseek_v3-small-latent", "deepseek_v3", {"kv_lora_rank": 64, "qk_rope_head_dim": 32,
                                                    "qk_nope_head_dim": 48, "v_head_dim": 40},
        SHORT_S, SHORT_B)
    # GQA / head_dim variants of plain attention
    add("llama-gqa-hd64", "llama", {"num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                                    "num_hidden_layers": 4}, 9, 3)
    # a different Mamba-2 geometry and a longer, all-kinds pattern
    add("nemotron_h-small-ssm", "nemotron_h",
        {"hybrid_override_pattern": "M*M-E", "mamba_num_heads": 8, "mamba_head_dim": 16,
         "ssm_state_size": 32, "n_groups": 2, "conv_kernel": 3}, 5, 3)
    add("nemotron_h-small-ssm-s2", "nemotron_h",
        {"hybrid_override_pattern": "M*M-E", "mamba_num_heads": 8, "mamba_head_dim": 16,
         "ssm_state_size": 32, "n_groups": 2, "conv_kernel": 3}, 2, 3)
    # Qwen3-Next linear attention with other geometry and a prefill shorter than the conv kernel
    q3n = {"num_hidden_layers": 4, "layer_types": ["linear_attention", "full_attention",
                                                    "linear_attention", "linear_attention"],
           "linear_num_key_heads": 2, "linear_num_value_heads": 6, "linear_key_head_dim": 24,
           "linear_value_head_dim": 40, "linear_conv_kernel_dim": 5}
    add("qwen3_next-small", "qwen3_next", q3n, 9, 3)
    add("qwen3_next-small-s3", "qwen3_next", q3n, 3, 3)
    add("qwen3_next-small-fp32", "qwen3_next", q3n, 9, 3, dtype="float32")
    return cases


def preset_cases() -> list[dict]:
    data = json.loads(PRESETS.read_text())
    cases = []
    for name, p in data["presets"].items():
        cfg = dict(p["config"])
        if cfg.get("model_type") not in TYPES:
            continue
        cases.append({"name": f"preset:{name}", "config": cfg, "seq_len": SHORT_S, "batch": SHORT_B,
                      "dtype": "bfloat16", "long": False})
        cases.append({"name": f"preset:{name}-long", "config": cfg, "seq_len": None, "batch": 1,
                      "dtype": "bfloat16", "long": True})
    return cases


# ------------------------------------------------------------------------------------------- configs
def jsonable(v):
    """Config values as strict JSON (inf / nan as strings, tuples as lists)."""
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return str(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def clean(d: dict) -> dict:
    return {k: jsonable(v) for k, v in d.items() if k not in NOISE_KEYS}


def resolved_head_dim(cfg, model_type: str):
    if model_type in MLA_TYPES:
        return None
    if model_type in KEEP_HIDDEN:
        return cfg.hidden_size // cfg.num_attention_heads
    hd = getattr(cfg, "head_dim", None)
    return hd if hd else cfg.hidden_size // cfg.num_attention_heads


def cache_fields(cfg, model_type: str) -> dict:
    out = {}
    for k in CACHE_KEYS:
        if k == "num_key_value_heads" and model_type in MLA_TYPES:
            continue  # MLA: the latent cache has no head axis
        v = resolved_head_dim(cfg, model_type) if k == "head_dim" else getattr(cfg, k, None)
        if v is not None:
            out[k] = list(v) if isinstance(v, tuple) else v
    if model_type in KEEP_HIDDEN:
        out["hidden_size"] = cfg.hidden_size
    return out


def shrink(model_type: str, fields: dict, cfg0, keep_heads: bool = False) -> dict:
    """Fields of the shrunk config: the case's fields plus small non-cache widths."""
    d0 = cfg0.to_dict()
    over: dict = {}
    if model_type not in KEEP_HIDDEN:
        over["hidden_size"] = SMALL["hidden_size"]
        if model_type not in MLA_TYPES:
            over["head_dim"] = resolved_head_dim(cfg0, model_type)
    if model_type in MLA_TYPES:
        if not keep_heads:
            over["num_attention_heads"] = over["num_key_value_heads"] = SMALL["mla_heads"]
        if cfg0.q_lora_rank is not None:
            over["q_lora_rank"] = SMALL["q_lora_rank"]
        if d0.get("num_experts_per_tok") is None:  # deepseek_v2's default (None) cannot run: top-k of None
            over["num_experts_per_tok"] = SMALL["experts_per_tok"]
    elif getattr(cfg0, "num_key_value_heads", None) is not None:
        nq, nkv = cfg0.num_attention_heads, cfg0.num_key_value_heads
        over["num_key_value_heads"] = nkv
        # GQA: query heads do not shape the cache; fewer of them keep the bf16 CPU matmuls cheap
        if not keep_heads and model_type not in KEEP_HIDDEN and nkv < nq and nq % nkv == 0:
            over["num_attention_heads"] = nkv
    if "hidden_size" in over:  # some configs insist on hidden_size % num_attention_heads == 0
        nq = over.get("num_attention_heads", cfg0.num_attention_heads)
        over["hidden_size"] = nq * -(-SMALL["hidden_size"] // nq)
    for k in INTERMEDIATE_KEYS:
        if d0.get(k) is not None:
            over[k] = SMALL["intermediate"]
    over["vocab_size"] = SMALL["vocab_size"]
    topk = d0.get("num_experts_per_tok")
    if topk is not None and "num_experts_per_tok" not in over:
        over["num_experts_per_tok"] = min(topk, SMALL["experts_per_tok"])
    for k in EXPERT_KEYS:
        if d0.get(k) is not None:
            over[k] = max(SMALL["experts"], over.get("num_experts_per_tok", 1))
    for k in ("n_group", "topk_group"):
        if d0.get(k) is not None:
            over[k] = 1
    for k in TOKEN_KEYS:
        v = d0.get(k)
        if isinstance(v, int) and v >= SMALL["vocab_size"]:
            over[k] = None
        elif isinstance(v, list) and any(x >= SMALL["vocab_size"] for x in v):
            over[k] = None
    return over


# ------------------------------------------------------------------------------------- cache walking
def walk_tensors(obj, prefix: str, out: list, seen_objs: set, depth: int = 0) -> None:
    import torch

    if depth > 6 or id(obj) in seen_objs:
        return
    if isinstance(obj, torch.Tensor):
        out.append((prefix, obj))
        return
    if isinstance(obj, (str, bytes, int, float, bool, type(None), torch.dtype, torch.device)):
        return
    seen_objs.add(id(obj))
    if isinstance(obj, dict):
        for k, v in obj.items():
            walk_tensors(v, f"{prefix}[{k}]", out, seen_objs, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            walk_tensors(v, f"{prefix}[{i}]", out, seen_objs, depth + 1)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        for k, v in vars(obj).items():
            walk_tensors(v, f"{prefix}.{k}" if prefix else k, out, seen_objs, depth + 1)


def describe(tensors: list) -> dict:
    """Distinct tensors -> names, shapes, dtypes, logical bytes, storage bytes, aux (0-dim) bytes."""
    seen, storages = set(), {}
    rec, state_bytes, aux_bytes = {}, 0, 0
    for name, t in tensors:
        key = (t.data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if key in seen:
            continue
        seen.add(key)
        n = t.numel() * t.element_size()
        dt = str(t.dtype).replace("torch.", "")
        entry = [list(t.shape), dt]
        if t.dim() == 0:
            aux_bytes += n
            entry.append("aux")
        else:
            state_bytes += n
            st = t.untyped_storage()
            storages[(st.data_ptr(), st.nbytes())] = st.nbytes()
            if not t.is_contiguous() or st.nbytes() != n:
                entry.append({"storage_bytes": st.nbytes(), "contiguous": t.is_contiguous()})
        rec[name] = entry
    return {"tensors": rec, "bytes": state_bytes, "storage_bytes": sum(storages.values()),
            "aux_bytes": aux_bytes}


def kind_of(layer, layer_type, model_type: str) -> str:
    cls = type(layer).__name__
    if cls == "DummyLayer":
        return "none"
    if model_type in MLA_TYPES:
        return "mla"
    if model_type == "nemotron_h" and layer_type == "linear_attention":
        return "mamba"
    if layer_type in ("full_attention", "sliding_attention", "chunked_attention", "linear_attention"):
        return layer_type
    return {"DynamicLayer": "full_attention", "DynamicSlidingWindowLayer": "sliding_attention",
            "LinearAttentionLayer": "linear_attention"}.get(cls, cls)


def measure_cache(cache, cfg, model_type: str) -> dict:
    layer_types = getattr(cfg, "layer_types", None)
    layers = []
    for i, layer in enumerate(cache.layers):
        ts: list = []
        walk_tensors(layer, "", ts, set())
        lt = layer_types[i] if layer_types and i < len(layer_types) else None
        d = describe(ts)
        rec = {"index": i, "class": type(layer).__name__, "layer_type": lt,
               "kind": kind_of(layer, lt, model_type), "bytes": d["bytes"],
               "storage_bytes": d["storage_bytes"], "aux_bytes": d["aux_bytes"], "tensors": d["tensors"]}
        for attr in ("sliding_window", "cumulative_length"):
            if isinstance(getattr(layer, attr, None), int):
                rec[attr] = getattr(layer, attr)
        layers.append(rec)
    top: list = []
    walk_tensors({k: v for k, v in vars(cache).items() if k != "layers"}, "", top, set())
    return {"cache_class": type(cache).__name__, "layers": layers,
            "cache_tensors": describe(top)["tensors"] if top else {}}


# ------------------------------------------------------------------------------------------ running
_PROBE = "cache_probe"


def register_probe() -> None:
    from transformers import AttentionInterface

    def cache_probe_attention(module, query, key, value, attention_mask, **kwargs):
        # query (b, heads, q, d); the output has the value head size; layout (b, q, heads, d_v)
        b, h, q, _ = query.shape
        return query.new_zeros(b, q, h, value.shape[-1]), None

    AttentionInterface.register(_PROBE, cache_probe_attention)


def set_attn(model, impl: str) -> None:
    for m in model.modules():
        c = getattr(m, "config", None)
        if c is not None and hasattr(c, "_attn_implementation_internal"):
            c._attn_implementation_internal = impl
    model.config._attn_implementation = impl


def layout(m: dict) -> list:
    return [(L["class"], L["bytes"], L["storage_bytes"], sorted((k, v[0], v[1]) for k, v in L["tensors"].items()))
            for L in m["layers"]]


# ------------------------------------------------------------------------------------------- rules
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


def rule_kinds(model_type: str, f: dict) -> list[str]:
    """Layer kinds from the resolved cache fields, the way transformers' DynamicCache(config) picks them."""
    n = f["num_hidden_layers"]
    types = f.get("layer_types")
    if types is None:
        kind = ("sliding_attention" if f.get("sliding_window") is not None else
                "chunked_attention" if f.get("attention_chunk_size") is not None else "full_attention")
        types = [kind] * n
    out = []
    for lt in types:
        if lt in ("mlp", "moe"):
            out.append("none")
        elif model_type in MLA_TYPES:
            out.append("mla")
        elif lt == "linear_attention":
            out.append("mamba" if model_type == "nemotron_h" else "linear_attention")
        else:
            out.append(lt)
    return out


def rule_layer(kind: str, f: dict, b: int, s: int, dtype: str) -> tuple[int, int, int, str]:
    """(bytes, storage_bytes, aux_bytes, class) of one layer after a prefill of s tokens."""
    e = DTYPE_BYTES[dtype]
    if kind == "none":
        return 0, 0, 0, "DummyLayer"
    if kind == "full_attention":  # keys + values (b, n_kv, s, head_dim)
        x = 2 * b * s * f["num_key_value_heads"] * f["head_dim"] * e
        return x, x, 0, "DynamicLayer"
    if kind in ("sliding_attention", "chunked_attention"):  # last W-1 tokens: a view of all s
        w = f["sliding_window"] if kind == "sliding_attention" else f["attention_chunk_size"]
        tok = 2 * b * f["num_key_value_heads"] * f["head_dim"] * e
        return tok * min(s, w - 1), tok * s, 8, "DynamicSlidingWindowLayer"
    if kind == "mla":  # keys = normed latent (b, 1, s, kv_lora_rank), values = roped k (b, 1, s, rope)
        x = b * s * (f["kv_lora_rank"] + f["qk_rope_head_dim"]) * e
        return x, x, 0, "DynamicLayer"
    if kind == "mamba":  # conv (b, heads*head_dim + 2*groups*state, kernel); ssm fp32 (b, heads, head_dim, state)
        nh, hd, n, g, k = (f["mamba_num_heads"], f["mamba_head_dim"], f["ssm_state_size"], f["n_groups"],
                           f["conv_kernel"])
        x = b * (nh * hd + 2 * g * n) * k * e + b * nh * hd * n * 4
        return x, x, 0, "LinearAttentionLayer"
    if kind == "linear_attention":  # conv (b, 2*nk*dk + nv*dv, kernel); recurrent fp32 (b, nv, dk, dv)
        nk, nv, dk, dv, k = (f["linear_num_key_heads"], f["linear_num_value_heads"], f["linear_key_head_dim"],
                             f["linear_value_head_dim"], f["linear_conv_kernel_dim"])
        x = b * (2 * nk * dk + nv * dv) * k * e + b * nv * dk * dv * 4
        return x, x, 0, "LinearAttentionLayer"
    raise KeyError(kind)


def rule_check(rec: dict) -> list[str]:
    """Mismatches between a recorded case and the closed-form rules (empty: every layer agrees)."""
    f, b, s, dt = rec["cache_fields"], rec["batch"], rec["seq_len"], rec["dtype"]
    kinds = rule_kinds(rec["model_type"], f)
    if len(kinds) != len(rec["layers"]):
        return [f"{len(rec['layers'])} cache layers, rule says {len(kinds)}"]
    bad = []
    for k, L in zip(kinds, rec["layers"]):
        want = rule_layer(k, f, b, s, dt)
        got = (L["bytes"], L["storage_bytes"], L["aux_bytes"], L["class"])
        if want != got or L["kind"] != k:
            bad.append(f"layer {L['index']} {k}: rule {want}, got {L['kind']} {got}")
    return bad


class Runner:
    def __init__(self):
        import torch

        self.torch = torch
        torch.manual_seed(0)
        register_probe()
        self.models: dict = {}

    def build(self, model_type: str, fields: dict, dtype: str):
        from transformers import AutoConfig, AutoModelForCausalLM

        key = json.dumps([model_type, fields, dtype], sort_keys=True, default=str)
        if key in self.models:
            return self.models[key]
        self.models.clear()  # one model alive at a time (memory)
        cfg = AutoConfig.for_model(model_type, **fields)
        impl = "sdpa"
        tdtype = getattr(self.torch, dtype)
        t0 = time.perf_counter()
        try:
            model = AutoModelForCausalLM.from_config(cfg, dtype=tdtype, attn_implementation="sdpa")
        except (ValueError, ImportError) as e:  # no SDPA support
            if "sdpa" not in str(e).lower() and "scaled_dot_product" not in str(e).lower():
                raise
            impl = "eager"
            cfg = AutoConfig.for_model(model_type, **fields)
            model = AutoModelForCausalLM.from_config(cfg, dtype=tdtype, attn_implementation="eager")
        model.eval()
        out = (model, impl, time.perf_counter() - t0)
        self.models[key] = out
        return out

    def forward(self, model, impl: str, b: int, s: int):
        torch = self.torch
        set_attn(model, impl)
        g = torch.Generator().manual_seed(1234)
        ids = torch.randint(0, model.config.vocab_size, (b, s), generator=g)
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=True)
        return out.past_key_values

    def run(self, case: dict, probe_above: int, probe_check: bool) -> dict:
        from transformers import AutoConfig

        c = dict(case["config"])
        mt = c.pop("model_type")
        cfg0 = AutoConfig.for_model(mt, **c)
        over = shrink(mt, c, cfg0, keep_heads=case.get("keep_heads", False))
        fields1 = {**c, **over}
        model, impl, build_s = self.build(mt, fields1, case["dtype"])
        cfg1 = model.config
        f0, f1 = cache_fields(cfg0, mt), cache_fields(cfg1, mt)
        if f0 != f1:
            diff = {k: (f0.get(k), f1.get(k)) for k in set(f0) | set(f1) if f0.get(k) != f1.get(k)}
            raise RuntimeError(f"shrinking changed cache-shaping fields: {diff}")
        s = case["seq_len"] if case["seq_len"] is not None else long_len(cfg0)
        b = case["batch"]
        run_impl = _PROBE if s > probe_above else impl
        t0 = time.perf_counter()
        cache = self.forward(model, run_impl, b, s)
        fwd_s = time.perf_counter() - t0
        m = measure_cache(cache, cfg1, mt)
        del cache
        rec = {
            "model_type": mt, "config": clean(cfg0.to_dict()), "shrunk": clean(cfg1.to_dict()),
            "fields": c, "shrink_overrides": over, "cache_fields": f0, "dtype": case["dtype"],
            "batch": b, "seq_len": s, "window": window_of(cfg0), "attn_implementation": run_impl,
            "model_class": type(model).__name__,
            "total_bytes": sum(L["bytes"] for L in m["layers"]),
            "total_storage_bytes": sum(L["storage_bytes"] for L in m["layers"]),
            "total_aux_bytes": sum(L["aux_bytes"] for L in m["layers"]),
            "n_layers": len(m["layers"]), **m,
            "seconds": {"build": round(build_s, 2), "forward": round(fwd_s, 2)},
        }
        rec["rule_mismatches"] = rule_check(rec)
        if probe_check and run_impl != _PROBE:
            cache2 = self.forward(model, _PROBE, b, s)
            same = layout(measure_cache(cache2, cfg1, mt)) == layout(m)
            del cache2
            rec["probe_check"] = same
        set_attn(model, impl)
        return rec


def versions() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "device": f"cpu ({platform.machine()})"}


RULES = (
    "e = bytes per element of the model dtype; per layer after one prefill of s tokens, batch b: "
    "full_attention 2*b*s*n_kv*head_dim*e; sliding_attention / chunked_attention (window W = sliding_window / "
    "attention_chunk_size) 2*b*min(s, W-1)*n_kv*head_dim*e (storage_bytes 2*b*s*n_kv*head_dim*e, aux 8); "
    "mla b*s*(kv_lora_rank + qk_rope_head_dim)*e; mamba b*(mamba_num_heads*mamba_head_dim + "
    "2*n_groups*ssm_state_size)*conv_kernel*e + b*mamba_num_heads*mamba_head_dim*ssm_state_size*4; "
    "linear_attention (Qwen3-Next) b*(2*linear_num_key_heads*linear_key_head_dim + "
    "linear_num_value_heads*linear_value_head_dim)*linear_conv_kernel_dim*e + "
    "b*linear_num_value_heads*linear_key_head_dim*linear_value_head_dim*4; none (MLP / MoE block) 0"
)

HOW = (
    "Per case: AutoConfig.for_model(model_type, **fields) is the original config; the shrunk config adds "
    "shrink_overrides (hidden_size 64 or the next multiple of the query heads, intermediate sizes 32, vocab 256, "
    "4 routed experts with 2 per token and one routing group, q_lora_rank 32; query heads cut to n_kv for GQA "
    "and to 4 for MLA unless the case name says heads; head_dim / num_key_value_heads passed explicitly); "
    "cache_fields (resolved cache-shaping fields) are equal for both. AutoModelForCausalLM.from_config(shrunk, "
    "dtype, attn_implementation='sdpa'), eval(), one forward model(input_ids=randint(0, 256, (batch, seq_len)), "
    "use_cache=True) under no_grad; attn_implementation 'cache_probe' (long sequences) = a registered attention "
    "that returns zeros without building a mask (the cache is written before the kernel; probe_check = the "
    "same layout as under sdpa). past_key_values.layers walked through vars() recursively: bytes = sum of "
    "numel*element_size of distinct tensors of dimension >= 1 (0-dim bookkeeping tensors in aux_bytes); "
    "storage_bytes = sum of distinct underlying storages (views keep their base alive). tensors: "
    "{attribute path: [shape, dtype(, 'aux' | {storage_bytes, contiguous})]}. kind: layer_types entry, or "
    "'mla' (DeepSeek latent cache), 'mamba' (Nemotron-H Mamba-2 mixer), 'none' (DummyLayer: MLP/MoE block)."
)


def dump(o, ind: int = 0) -> str:
    """Indented JSON; lists of scalars and every layer record on one line (readable, small)."""
    pad, pad1 = " " * ind, " " * (ind + 1)
    if isinstance(o, dict) and o:
        if "index" in o and "tensors" in o:  # a layer record
            return json.dumps(o)
        items = [f"{pad1}{json.dumps(str(k))}: {dump(v, ind + 1)}" for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(o, list) and o and any(isinstance(x, (dict, list)) for x in o):
        if all(isinstance(x, list) for x in o) or not all(isinstance(x, dict) for x in o):
            return json.dumps(o)
        return "[\n" + ",\n".join(pad1 + dump(x, ind + 1) for x in o) + "\n" + pad + "]"
    return json.dumps(o)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSON (default %(default)s)")
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="run only these cases (exact names, or prefixes ending in *)")
    p.add_argument("--presets", action="store_true",
                   help="also run every preset of presets.json of a listed type")
    p.add_argument("--no-defaults", action="store_true", help="with --presets: run only the presets")
    p.add_argument("--probe-above", type=int, default=512,
                   help="seq_len above which the shape-only 'cache_probe' attention replaces sdpa (default 512)")
    p.add_argument("--no-probe-check", action="store_true", help="skip re-running short cases with the probe")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--list", action="store_true", help="list the case names and exit")
    a = p.parse_args()

    cases = [] if a.no_defaults else default_cases()
    if a.presets:
        cases += preset_cases()
    if a.only:
        def want(n):
            return any(n == o or (o.endswith("*") and n.startswith(o[:-1])) for o in a.only)
        cases = [c for c in cases if want(c["name"])]
    if a.list:
        for c in cases:
            print(c["name"])
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub-kernel look-ups
    import torch

    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # random tiny models: denormals make CPU ops 10-50x slower
    runner = Runner()
    results, failures = {}, {}
    t_all = time.perf_counter()
    # run the cases of one model (config, dtype) one after the other: each model is built once
    def model_key(c):
        return json.dumps([c["config"], c["dtype"], c.get("keep_heads")], sort_keys=True)

    first: dict = {}
    for c in cases:
        first.setdefault(model_key(c), len(first))
    order = sorted(cases, key=lambda c: first[model_key(c)])
    for c in order:
        t0 = time.perf_counter()
        try:
            rec = runner.run(c, a.probe_above, not a.no_probe_check and c.get("probe_check", False))
        except Exception as e:  # report and go on
            failures[c["name"]] = f"{type(e).__name__}: {e}"[:2000]
            print(f"FAIL {c['name']}: {failures[c['name']][:300]}", flush=True)
            continue
        results[c["name"]] = rec
        print(f"{c['name']:<34} b={rec['batch']} s={rec['seq_len']:<5} {rec['dtype']:<8} "
              f"{rec['attn_implementation']:<11} layers={rec['n_layers']:<3} bytes={rec['total_bytes']:>13,} "
              f"storage={rec['total_storage_bytes']:>13,} {time.perf_counter() - t0:6.1f}s"
              + ("" if not rec["rule_mismatches"] else f"  RULE MISMATCH: {rec['rule_mismatches'][:3]}"),
              flush=True)
    results = {c["name"]: results[c["name"]] for c in cases if c["name"] in results}
    meta = {**versions(), "how": HOW, "seconds_total": round(time.perf_counter() - t_all, 1),
            "failures": failures,
            "probe_check": {n: r["probe_check"] for n, r in results.items() if "probe_check" in r},
            "rule_check": {"rules": RULES, "layers_checked": sum(r["n_layers"] for r in results.values()),
                           "cases_mismatching": [n for n, r in results.items() if r["rule_mismatches"]]}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(dump({"meta": meta, "cases": results}) + "\n")
    print(f"wrote {a.out} ({len(results)} cases, {len(failures)} failed, {meta['seconds_total']} s)")


if __name__ == "__main__":
    main()
