"""Step-time model against published, measured training runs: error per record, and calibration.

    python benchmarks/validate_steptime.py [--data tests/data/steptime_public.json] [--calibrate GROUP,...]
                                           [--per-record] [--json OUT.json] [--quiet]

Each record (Korthikanti et al. 2022 Table 5, Narayanan et al. 2021 Tables 1-2, MT-NLG 530B, MosaicML
llm-foundry's A100 and H100 tables; see the file's ``meta`` and every record's ``source``) gives a model,
a device, a parallel layout and a measured step time (``derived.step_time_s_best``: printed, or from the
printed throughput or TFLOP/s with the authors' stated FLOP formula -- compare step times, not TFLOP/s).
The engine predicts ``step_time`` with ``llm-sweep time``'s formulas at the record's layout, with the attention
kernel the record's stack ran (SOURCE_STACK: the stack of each source group, with its source; a record's own
``parallel.other`` ``attention`` / ``attn_impl`` text overrides it).

``--calibrate`` fits the efficiency knobs (KNOBS: matmul_efficiency, attention_efficiency of eager attention,
``engine/symbolic/memory/steptime/``, on the named groups' GPU records; tpu_matmul_efficiency, a TPU's, on their
TPU records; every other constant is published, PUBLISHED) on the named groups only, by a grid search minimising
the mean over the named groups of each group's median |log(predicted / measured)| (``--per-record``: the median
over all the fitted records), and reports every record with those knobs: the other groups are predictions of
runs the knobs never saw. Without it the shipped knobs are used; the GPU ones were fitted on the shared file's
groups, the TPU one on MaxText's v5e table (FIT_BY_KNOB; SHIPPED_FIT), so "held out" is the rest.
MoE records use the preset of their published config (``expert_tensor_parallel`` as etp).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# the knobs fitted on measured runs (--calibrate): the GEMMs' efficiency (of the device's measured matmul
# ceiling) and eager attention's (of the 16-bit ceiling; fused kernels run at their published curves)
# and a TPU's GEMMs' (of its ceiling: one XLA program per step, engine/catalog/hardware.py TPU_MATMUL_EFFICIENCY)
KNOBS = ("matmul_efficiency", "attention_efficiency", "tpu_matmul_efficiency")
FORMULA_KNOBS = KNOBS[:2]  # the formulas' symbols; a TPU record's tpu_matmul_efficiency is its matmul_efficiency
# the step time's other constants, each from a publication, not fitted here (engine/symbolic/memory/steptime/
# common.py DEFAULTS has their sources)
PUBLISHED = {"comm_efficiency": "ring bus bandwidth / link, nccl-tests on NVLink4 0.803-0.816 (Bekman, "
                                "ml-engineering network/README.md)",
             "network_efficiency": "bandwidth / NIC across nodes on InfiniBand, DeepEP's internode all-to-all 43 of "
                                   "~50 GB/s (deepseek-ai/DeepEP docs/legacy.md); EFA measures 0.73 (Bekman)",
             "collective_latency": "6 us per ring step inside a node (same source)",
             "network_latency": "8 us per ring step across nodes (same source)",
             "dp_bucket_params": "Megatron-Core DDP bucket_size max(40M, 1M x dp)",
             "overlap_contention": "20 of 132 SMs for overlapped collectives (DeepSeek-V3, arXiv:2412.19437 §3.2.2)",
             "expert_half_tokens": "DeepGEMM grouped fp8 GEMMs, r_max M / (M + 120) (deepseek-ai/DeepGEMM README)"}
DEVICES = {"A100-SXM4-80GB": "a100-80gb", "A100-SXM4-40GB": "a100-40gb", "H100-SXM5-80GB": "h100-sxm",
           # Meta's 500 W HBM2e H100s (torchtitan's cluster): 780 TFLOP/s bf16 at the cap, 2.4 TB/s (the catalog's
           # h100-sxm-500w, with its sources)
           "H100-SXM5-96GB-HBM2e-500W": "h100-sxm-500w", "H200-SXM-141GB": "h200", "H800-SXM5-80GB": "h800",
           "TPU-v4": "tpu-v4", "TPU-v5e": "tpu-v5e", "TPU-v5p": "tpu-v5p"}
# the source groups each shipped knob was calibrated on: the GPU knobs (steptime.DEFAULTS) on the shared file's
# groups, the TPU knob on MaxText's v5e table (its v4 and v5p tables held out); SHIPPED_FIT is their union
FIT_BY_KNOB = {"matmul_efficiency": frozenset({"korthikanti2022", "narayanan2021_t2", "mtnlg2022", "mpt_llmfoundry"}),
               "tpu_matmul_efficiency": frozenset({"maxtext_tpu_v5e"})}
FIT_BY_KNOB["attention_efficiency"] = FIT_BY_KNOB["matmul_efficiency"]
SHIPPED_FIT = frozenset().union(*FIT_BY_KNOB.values())
DATA = (REPO / "tests" / "data" / "steptime_public.json", REPO / "tests" / "data" / "steptime_extra.json")
# The stack each source group ran (engine/options/data/stacks.json: its attention kernel per device generation and
# the communication it overlaps), with the source of the attribution, and the fields where the group's runs
# differ from the stack's defaults (each with its source). A record's own `parallel.other.attention` /
# `attn_impl` text overrides the attention kernel (ATTENTION_WORDS).
SOURCE_STACK = {
    "korthikanti2022": ("megatron-lm-2021", {}, "Megatron-LM 2022 (Korthikanti et al. 2022, arXiv:2205.05198 §4.1: "
                                                "QK^T, fused scale-mask-softmax, dropout with the s^2 scores in memory)"),
    "narayanan2021_t1": ("megatron-lm-2021", {}, "Megatron-LM 2021, fused scale-mask-softmax kernel; predates "
                                                 "FlashAttention (Narayanan et al. 2021, arXiv:2104.04473)"),
    "narayanan2021_t2": ("megatron-lm-2021", {}, "as narayanan2021_t1; the ZeRO-3 rows are DeepSpeed 2021 on the same "
                                                 "GPT model (Table 2)"),
    "mtnlg2022": ("deepspeed", {"attention": "eager"}, "Megatron-DeepSpeed, Jan 2022, before FlashAttention (Smith "
                                                       "et al. 2022, arXiv:2201.11990)"),
    "bigscience_bloom": ("deepspeed", {"attention": "eager"}, "Megatron-DeepSpeed bigscience fork with ALiBi and the "
                                                              "fused masked softmax; tr11-176B-ml.slurm sets no flash "
                                                              "option (bigscience-workshop/bigscience)"),
    "mpt_llmfoundry": ("llm-foundry", {}, "MosaicML llm-foundry scripts/train/benchmarking/README.md (2023): "
                                          "Composer FSDP, attn_impl triton/flash = FlashAttention v1 then"),
    "torchtitan": ("torchtitan", {}, "torchtitan's benchmark tables (docs/performance.md): FSDP2, "
                                     "F.scaled_dot_product_attention(is_causal=True)"),
    # MaxText's four published tables, each its own source (README / configs/tpu/<chip>/README.md /
    # configs/gpu/a3/llama_2_7b/README.md): different chips, dates and scripts
    "maxtext_tpu_v4": ("maxtext", {}, "MaxText's TPU v4 table (README, Mar-Apr 2023); may predate splash: unverified"),
    "maxtext_tpu_v5e": ("maxtext", {}, "MaxText's TPU v5e table (Oct-Nov 2023, configs/largest_job/*.sh: "
                                       "enable_flash_attention=true)"),
    "maxtext_tpu_v5p": ("maxtext", {}, "MaxText's TPU v5p table (Dec 2023, configs/v5p/*.sh: attention='flash')"),
    "maxtext_gpu_a3": ("maxtext", {}, "MaxText's A3 (H100) Llama2-7B table (Apr 2024, attention=cudnn_flash_te)"),
    "nemo_perf_2407": ("nemo", {}, "NeMo 24.07 performance summary = Megatron-Core with Transformer Engine"),
    "nemo_longseq_2403": ("nemo", {"attention": "flash"}, "NeMo 24.03.01 long-context recipes: Transformer Engine "
                                                          "ran FlashAttention-2 before it preferred cuDNN on Hopper "
                                                          "(NeMo PR #9188)"),
    "megatron_bridge_perf": ("megatron-bridge", {}, "Megatron-Bridge 25.11 performance summary (Megatron-Core + TE)"),
    # skipped (no micro-batch stated); listed so that the table is total over the data. The papers do not name the
    # kernel: the assumption is the practice of the stack's year.
    "llama3_paper": ("torchtitan", {}, "Meta's 2024 PyTorch stack on H100 (arXiv:2407.21783 §3.3); kernel not "
                                       "stated, assumed fused as every 2024 H100 stack here"),
    "palm_paper": ("maxtext", {"attention": "eager"}, "T5X/JAX on Pathways, 2022, XLA attention before Pallas kernels "
                                                    "(arXiv:2204.02311); kernel not stated"),
    "deepseek_v3_paper": ("megatron-core", {}, "HAI-LLM, MLA on H800, 2024 (arXiv:2412.19437 §3); kernel not stated, "
                                               "assumed fused"),
}
# The network per device of the clusters whose records state one other than the catalog device's (the DGX-style
# one NIC per GPU): the record's `hardware.inter_node` text -> (bytes/s per device, source). Every other stated
# network equals the catalog's (Selene and llm-foundry's A100s 25 GB/s, DGX H100 and Grand Teton 50 GB/s, TPU DCN).
CLUSTER_NETWORKS = {
    "GCP A3 VM-to-VM": (12.5e9, "a3-highgpu-8g: 4 x 200 Gb/s GPUDirect-TCPX NICs per 8-GPU VM, 800 Gb/s = 100 Gb/s a GPU "
                                "(Google Cloud, 'GPU machine types', A3 series; the record's text)"),
    "Omni-Path (OPA)": (6.25e9, "Jean Zay: 4 x 100 Gb/s Omni-Path links per 8-GPU node = 50 Gb/s a GPU (the record's "
                                "text; bigscience-workshop/bigscience tr11 README)"),
}
# Runs whose recipe overlaps other communication than its stack's defaults: record id -> (overlap option, source).
# Megatron-Bridge's performance configs switch the expert-parallel all-to-all overlap on per model and release
# (overlap_moe_expert_parallel_comm with delay_wgrad_compute; Megatron-Core's default is off) and TP overlap or the
# gradient-reduce overlap off for some.
RECORD_OVERLAP = {
    "bridge2511_h100_fp8cs_qwen3_235b_a22b_256gpu": (
        "dp,cp,ep,pp", "Megatron-Bridge v0.2.0 (25.11) scripts/performance/configs/qwen3/workload_base_configs.py: "
                       "moe_a2a_overlap=True, tp_comm_overlap=False"),
    "bridge260401_h100_fp8_qwen3_235b_a22b_256gpu_gbs8192": (
        "dp,cp,ep,pp", "Megatron-Bridge v0.4.2 (26.04.01) scripts/performance/configs/qwen/"
                       "qwen3_workload_base_configs.py (V2, GBS 8192): moe_a2a_overlap=True, tp_comm_overlap=False"),
    "bridge2509_h100_fp8_deepseek_v3_1024gpu_dropless": (
        "tp,cp,ep,pp", "Megatron-Bridge r0.1.0 (25.09) scripts/performance/run_script.py: A2A_1F1B on H100 "
                       "(overlap_moe_expert_parallel_comm, delay_wgrad_compute), overlap_grad_reduce False on H100"),
}
# a record's own kernel text -> the attention option (first match wins; an unknown text is an error). llm-foundry's
# 2023 "flash (Triton/FA per yaml)" is FlashAttention v1: its 'gpu' extra and Docker images pinned
# flash-attn==v1.0.3.post0 (mosaicml/llm-foundry setup.py, 2023)
ATTENTION_WORDS = (("flash (triton", "flash1"), ("splash", "splash"), ("cudnn", "cudnn"), ("flash3", "flash3"),
                   ("flash", "flash"), ("sdpa", "sdpa"), ("fused", "flash"), ("eager", "eager"),
                   ("dot_product", "eager"), ("math", "eager"))


def precision_of(text: str) -> str:
    """The record's precision in llm-sweep's names (Megatron's mixed fp16/bf16 keeps 16-bit weights and an
    fp32 master copy: ``bf16``; torch.autocast over fp32 FSDP weights: ``bf16-mixed``)."""
    t = text.lower()
    if "fp8" in t or "float8" in t:
        return "fp8"
    if "amp" in t or "mixed_precision=default" in t:
        return "bf16-mixed"
    if "pure" in t:
        return "bf16-true"
    return "bf16"


def zero_of(text: str) -> int:
    t = text.lower()
    if "fsdp" in t or "zero-3" in t or "fully_shard" in t:
        return 3
    if "zero-2" in t:
        return 2
    if "zero-1" in t or "distributed optimizer" in t:
        return 1
    return 0


def recompute_of(text: str) -> str:
    t = (text or "none").lower()
    if t.startswith("full"):
        return "full"
    if t.startswith(("selective", "minimal", "partial")) or "recompute" in t:
        return "selective"
    return "none"


def usable(record: dict) -> str:
    """Why a record cannot be predicted ('' when it can)."""
    if record["hardware"]["device"] not in DEVICES:
        return "device outside the catalog map"
    if not record["derived"].get("step_time_s_best"):
        return "no step time"
    if not record["parallel"].get("micro_batch"):
        return "no micro-batch stated"
    moe = record["model"].get("moe")
    if moe and _preset(moe) is None:
        return "MoE model without a preset"
    return ""


def _preset(moe: dict) -> str | None:
    """The preset of a MoE record's model (its HF config's name, lower case), or None."""
    from engine.catalog.presets import PRESETS

    name = str(moe.get("hf_config") or "").rsplit("/", 1)[-1].lower()
    return name if name in PRESETS else None


def stack_of(record: dict) -> str:
    """The stack a record's run used (its source group's, SOURCE_STACK)."""
    group = record["source_group"]
    if group not in SOURCE_STACK:
        raise ValueError(f"{record['id']}: source group {group!r} is not in SOURCE_STACK (which stack did it run? "
                         "add it with its source)")
    return SOURCE_STACK[group][0]


def overlap_of(record: dict) -> str | None:
    """The overlap a record's recipe sets where it is not its stack's default (None: the stack's): RECORD_OVERLAP's,
    or, for a run whose record states async tensor parallelism (torchtitan's enable_async_tensor_parallel: the
    TP all-gathers and reduce-scatters decomposed and overlapped with the GEMMs, PyTorch's micro-pipelined async
    TP), the stack's communications and tp."""
    if record["id"] in RECORD_OVERLAP:
        return RECORD_OVERLAP[record["id"]][0]
    p = record["parallel"]
    if (p.get("other") or {}).get("async_tp") and p["tp"] > 1:
        from engine.options.stacks import stack_overlap

        return ",".join(sorted(stack_overlap(stack_of(record)) | {"tp"}))
    return None


def elementwise_of(record: dict) -> str:
    """How a record's run ran its element-wise ops: fused where it states torch.compile (torchtitan's
    training.compile), else its stack's (``"stack"``)."""
    return "fused" if (record["parallel"].get("other") or {}).get("torch_compile") else "stack"


def attention_of(record: dict) -> str:
    """The attention kernel a record's run used: its own ``parallel.other`` ``attention`` / ``attn_impl`` text
    when it states one, else its source group's (SOURCE_STACK's override, else the stack's default for the
    device's generation)."""
    other = record["parallel"].get("other") or {}
    text = str(other.get("attention") or other.get("attn_impl") or "").lower()
    if text:
        for word, kernel in ATTENTION_WORDS:
            if word in text:
                return kernel
        raise ValueError(f"{record['id']}: attention {text!r} matches none of ATTENTION_WORDS")
    name, fields, _ = SOURCE_STACK.get(record["source_group"], (stack_of(record), {}, ""))
    if "attention" in fields:
        return fields["attention"]
    from engine.options.stacks import stack

    return stack(name).attention_for(DEVICES[record["hardware"]["device"]])


def setup(record: dict):
    """(formula set, values) of one record: the architecture, options and inputs of its layout."""
    from engine.catalog.families import from_hf_config
    from engine.catalog.hardware import device, stack_and_kernel
    from engine.catalog.model import estimate_formulas, memory_options

    m, p, hw = record["model"], record["parallel"], record["hardware"]
    mlp = str(m.get("mlp_type") or "gelu").lower()
    gated = "swiglu" in mlp or "geglu" in mlp or "gated" in mlp
    learned = str(m.get("position_embedding") or "").lower().startswith("learned")
    if m.get("moe"):  # the preset of the published config (transformers' layout, checked in tests)
        from engine.catalog.model import architecture

        arch = architecture(_preset(m["moe"]))
    elif not gated and learned:  # GPT-style: the gpt2 model type
        config = {"model_type": "gpt2", "n_embd": m["d_model"], "n_layer": m["n_layers"], "n_head": m["n_heads"],
                  "n_inner": m["d_ff"], "vocab_size": m["vocab"], "n_positions": m["seq_len"],
                  "tie_word_embeddings": bool(m.get("tied_embeddings", True))}
        arch = from_hf_config(config, record["id"])
    else:  # rotary positions: the LLaMA block, with a 2-matrix MLP when it is not gated (MaxText's relu)
        config = {"model_type": "llama", "hidden_size": m["d_model"], "num_hidden_layers": m["n_layers"],
                  "num_attention_heads": m["n_heads"], "num_key_value_heads": m.get("n_kv_heads") or m["n_heads"],
                  "head_dim": m.get("head_dim") or m["d_model"] // m["n_heads"], "intermediate_size": m["d_ff"],
                  "vocab_size": m["vocab"], "tie_word_embeddings": bool(m.get("tied_embeddings", False))}
        arch = from_hf_config(config, record["id"])
        if not gated:
            from engine.catalog.families import Architecture

            arch = Architecture(arch.family, arch.structure.with_options(mlp="gelu"), arch.values, arch.source,
                                arch.name)
    precision = precision_of(p.get("precision") or "")
    attention = attention_of(record)
    # the stack's overlap on the record's kind of device (its TPU defaults on a TPU), unless the recipe's own
    _, _, overlap = stack_and_kernel(DEVICES[hw["device"]], stack_of(record), attention, overlap_of(record))
    zero = zero_of(p["zero_or_fsdp"])
    options = memory_options(memory_model="korthikanti", precision=precision, zero=zero,
                             recompute=recompute_of(p.get("recompute")), sequence_parallel=bool(p.get("sp")),
                             attention=attention, stack=stack_of(record),
                             overlap=overlap, elementwise=elementwise_of(record))
    fs = estimate_formulas(arch.family, arch.structure, options)
    dev = device(DEVICES[hw["device"]])
    values = {**arch.values, **dev.values(precision, attention), "batch": p["micro_batch"], "seq_len": m["seq_len"],
              "global_batch": p["global_batch_seqs"], "dp": p["dp"], "tp": p["tp"], "pp": p["pp"],
              "vp": p.get("vpp") or 1, "cp": p.get("cp") or 1,
              # MaxText multi-slice: FSDP inside an ICI slice, plain data parallelism across slices (DCN)
              "shard_group": (p.get("other") or {}).get("ici_fsdp_parallelism") or p["dp"],
              **({"ep": p.get("ep") or 1, "etp": (p.get("other") or {}).get("expert_tensor_parallel") or p["tp"]}
                 if m.get("moe") else {}),
              # a TPU's scale-up domain is its ICI slice (the catalog's), not the 4 or 8 chips of a host
              "devices_per_node": (dev.devices_per_node if dev.name.startswith("tpu")
                                   else hw.get("devices_per_node") or dev.devices_per_node)}
    for words, (per_device, _) in CLUSTER_NETWORKS.items():  # a cluster whose network is not the catalog device's
        if str(hw.get("inter_node") or "").startswith(words):
            values["inter_bandwidth"] = per_device
    return fs, values


_COMPILED: dict = {}


def on_tpu(record: dict) -> bool:
    """Whether the record ran on a TPU (the generation test Device.values gives TPU_MATMUL_EFFICIENCY by)."""
    from engine.options.stacks import device_generation

    return device_generation(DEVICES[record["hardware"]["device"]]) == "tpu"


def predictor(record: dict):
    """A numpy function of the knobs (KNOBS order) giving the record's predicted step time (one lambdified formula
    per structure and options, shared by the records that have them): a TPU record's GEMMs take
    tpu_matmul_efficiency, a GPU record's matmul_efficiency."""
    import sympy

    from engine.symbolic.symbols import symbol

    fs, values = setup(record)
    knobs = [symbol(k) for k in FORMULA_KNOBS]
    key = (id(fs), tuple(sorted(values)))
    if key not in _COMPILED:
        expr = fs.apply(fs.expanded("step_time"), {**{k: None for k in values}, **{k: None for k in FORMULA_KNOBS}})
        inputs = sorted(expr.free_symbols - set(knobs), key=lambda s: s.name)
        missing = [s.name for s in inputs if s.name not in values]
        if missing:
            raise ValueError(f"{record['id']}: step_time still needs {missing}")
        # fs is kept with its function: the key holds id(fs), and an id is unique only while its object lives
        _COMPILED[key] = (inputs, sympy.lambdify([*inputs, *knobs], expr, modules="numpy"), fs)
    inputs, fn, _ = _COMPILED[key]
    args = [float(values[s.name]) for s in inputs]
    if on_tpu(record):
        return lambda mm, attn, tpu_mm: fn(*args, tpu_mm, attn)
    return lambda mm, attn, tpu_mm: fn(*args, mm, attn)


def shipped_knobs() -> tuple[float, ...]:
    """The knobs as shipped, KNOBS order (steptime.DEFAULTS; the TPU one from the hardware catalog)."""
    from engine.catalog.hardware import TPU_MATMUL_EFFICIENCY
    from engine.symbolic.memory.steptime import DEFAULTS

    return float(DEFAULTS["matmul_efficiency"]), float(DEFAULTS["attention_efficiency"]), TPU_MATMUL_EFFICIENCY


def errors(preds, measured, knobs) -> np.ndarray:
    return np.array([f(*knobs) / t - 1 for f, t in zip(preds, measured)])


def calibrate(records, preds, measured, fit_on: set, per_record: bool, knobs: tuple) -> tuple[float, ...]:
    """The knobs minimising the mean over the fitted groups of each group's median |log(predicted / measured)|
    (``per_record``: the median over the fitted records), by grid search in steps of 0.01: the GPU knobs on the
    named groups' GPU records, the TPU knob on their TPU records (a kind with no named group keeps its shipped
    knobs)."""
    grid = np.linspace(0.3, 1.0, 71)
    mm, attn, tpu_mm = knobs
    for tpu in (False, True):
        idx = [i for i, r in enumerate(records) if r["source_group"] in fit_on and on_tpu(r) == tpu]
        if not idx:
            continue
        if tpu:
            mesh = [np.full_like(grid, mm), np.full_like(grid, attn), grid]
        else:
            pair = [m.ravel() for m in np.meshgrid(grid, grid, indexing="ij")]
            mesh = [pair[0], pair[1], np.full_like(pair[0], tpu_mm)]
        logs = np.array([np.abs(np.log(np.broadcast_to(preds[i](*mesh), mesh[0].shape) / measured[i])) for i in idx])
        # every knob combination at once (one row per fitted record); each source group counts once, so the
        # 113 llm-foundry rows do not outvote the 8 of Korthikanti et al.
        groups = [records[i]["source_group"] for i in idx]
        score = np.median(logs, axis=0) if per_record else np.mean(
            [np.median(logs[[k for k, g in enumerate(groups) if g == name]], axis=0) for name in sorted(set(groups))],
            axis=0)
        j = int(np.argmin(score))
        if tpu:
            tpu_mm = float(mesh[2][j])
        else:
            mm, attn = float(mesh[0][j]), float(mesh[1][j])
    return mm, attn, tpu_mm


def report(records, e, fit_on: set, knobs: tuple, quiet: bool) -> list[dict]:
    """Print every record's error (unless ``quiet``), the knobs with what they were fitted on, the published
    constants and each group's median and worst error; return the rows."""
    from engine.symbolic.memory.steptime import DEFAULTS

    fitted_groups = fit_on or SHIPPED_FIT
    rows = []
    for r, err in zip(records, e):
        rows.append({"id": r["id"], "group": r["source_group"], "device": r["hardware"]["device"],
                     "measured_s": r["derived"]["step_time_s_best"], "error": float(err),
                     "calibrated_on": r["source_group"] in fitted_groups})
        if not quiet:
            print(f"{r['id']:<52} {r['hardware']['device']:<16} {r['derived']['step_time_s_best']:>9.3f} s  "
                  f"{100 * err:+7.1f} %{'  (fit)' if r['source_group'] in fitted_groups else ''}")
    print("knobs:")
    for k, v in zip(KNOBS, knobs):
        tpu = k.startswith("tpu")
        on = sorted(g for g in fit_on if any(r["source_group"] == g and on_tpu(r) == tpu for r in records))
        on = on or sorted(FIT_BY_KNOB[k])
        print(f"  {k:<21} {v:.3f}  fitted on {', '.join(on)}" + ("" if fit_on else " (shipped)"))
    for k, why in PUBLISHED.items():
        print(f"  {k:<21} {float(DEFAULTS[k]):.3g}  published, not fitted: {why}")
    for g in sorted({r["group"] for r in rows}) + ["all", "held out"]:
        sel = [x for x in rows if (g == "all") or (g == "held out" and not x["calibrated_on"]) or x["group"] == g]
        if not sel:
            continue
        a = [abs(x["error"]) for x in sel]
        fitted = "  (fit)" if g in fitted_groups else ""
        print(f"  {g:<20} n = {len(sel):>3}  median |error| {100 * statistics.median(a):5.1f} %  "
              f"worst {100 * max(a):5.1f} %  signed median {100 * statistics.median(x['error'] for x in sel):+6.1f} %"
              f"{fitted}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="*", default=[str(p) for p in DATA])
    ap.add_argument("--calibrate", help="source groups to fit the knobs on, comma-separated")
    ap.add_argument("--json", help="write per-record errors here")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--per-record", action="store_true", help="calibrate on the median over every fitted record "
                                                               "instead of the mean of the groups' medians")
    args = ap.parse_args()
    records = [r for path in args.data for r in json.loads(Path(path).read_text())["records"]]
    skipped = {r["id"]: usable(r) for r in records if usable(r)}
    print(f"{len(records) - len(skipped)} of {len(records)} records; skipped: "
          + ("; ".join(f"{k} ({v})" for k, v in skipped.items()) or "none"))
    records = [r for r in records if r["id"] not in skipped]
    preds = [predictor(r) for r in records]
    measured = [r["derived"]["step_time_s_best"] for r in records]
    knobs = shipped_knobs()
    fit_on = set((args.calibrate or "").split(",")) - {""}
    unknown = fit_on - {r["source_group"] for r in records}
    if unknown:
        raise SystemExit(f"--calibrate: no records in {sorted(unknown)}; groups: "
                         f"{', '.join(sorted({r['source_group'] for r in records}))}")
    if fit_on:
        knobs = calibrate(records, preds, measured, fit_on, args.per_record, knobs)
    rows = report(records, errors(preds, measured, knobs), fit_on, knobs, args.quiet)
    if args.json:
        Path(args.json).write_text(json.dumps({"knobs": dict(zip(KNOBS, knobs)), "records": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
