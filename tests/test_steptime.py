"""The step-time model: golden numbers, the `time` command, kernel == sympy, errors on measured runs."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

from engine.catalog.hardware import device
from engine.catalog.model import architecture, estimate_formulas, memory_options
from engine.catalog.timing import Layout, time_estimate
from engine.errors import SpecError
from engine.options import MEMORY_OPTIONS
from engine.symbolic.memory import steptime

REPO = Path(__file__).resolve().parents[1]


def test_ring_all_reduce_by_hand():
    # 1 GB over 8 devices at 300 GB/s x 0.7, 10 us per ring step: 2 x 7/8 x 1e9 / 210e9 + 14 x 1e-5
    bw = sympy.Float(300e9) * sympy.Rational(7, 10)
    t = steptime.all_reduce(8, 10**9, bw).subs(steptime.alpha, sympy.Rational(1, 100000))
    assert float(t) == pytest.approx(2 * 7 / 8 * 1e9 / 210e9 + 14e-5, rel=1e-12)
    assert float(t) == pytest.approx(0.008473, abs=1e-6)


def test_the_bubble_is_pp_minus_1_over_vp_micro_batches():
    arch = architecture("gpt3-175b")
    lay = Layout(gpus=128, seq_len=2048, global_batch=64, micro_batch=1, tp=8, pp=4, vp=1)
    est = time_estimate(arch, "a100-80gb", lay)
    m = 64 // (4 * 1)  # dp = 128 / 32 = 4
    per_micro = est["breakdown"]["bubble"] / 3  # (pp - 1) / vp micro-batch times
    assert (est["breakdown"]["compute"] + est["breakdown"]["tp"]) == pytest.approx(m * per_micro, rel=1e-9)
    two = time_estimate(arch, "a100-80gb", Layout(128, 2048, 64, 1, tp=8, pp=4, vp=2))
    assert two["breakdown"]["bubble"] == pytest.approx(est["breakdown"]["bubble"] / 2, rel=1e-9)
    assert sum(est["breakdown"].values()) == pytest.approx(est["step_time"], rel=1e-12)


def test_mfu_and_tokens_per_s_follow_the_step_time():
    arch = architecture("llama-2-7b")
    est = time_estimate(arch, "h100-sxm", Layout(8, 4096, 64, 1, tp=2))
    assert est["tokens_per_s"] == pytest.approx(64 * 4096 / est["step_time"])
    fs = estimate_formulas(arch.family, arch.structure, memory_options(memory_model="korthikanti", precision="bf16",
                                                                       attention="flash"))
    flops = float(fs.evaluate_exact("flops_token", {**arch.values, "seq_len": 4096, "batch": 1}))
    assert est["mfu"] == pytest.approx(flops * 64 * 4096 / (8 * 989.4e12 * est["step_time"]))
    assert est["fits"] and est["mem_peak"] < device("h100-sxm").hbm_bytes


@pytest.mark.parametrize("args,message", [
    (["--gpu", "a1000"], "unknown device; valid: a100-40gb"),
    (["--gpus", "100", "--tp", "8"], "is not a multiple of tp x pp x cp = 8; valid: 8, 16, 24, 32"),
    (["--global-batch", "12"], "must be a multiple of dp x micro-batch = 8 x 1"),
    (["--tp", "3", "--gpus", "24", "--global-batch", "24"], "tp must divide n_heads"),
    (["--ep", "2"], "expert parallelism applies to MoE models"),
    (["--pp", "2", "--gpus", "16", "--global-batch", "8", "--dp", "3"], "--dp 8 uses them all"),
])
def test_time_errors_are_one_line(run_cli, args, message):
    base = {"--arch": "llama-2-7b", "--gpu": "a100-80gb", "--gpus": "8", "--seq-len": "2048", "--global-batch": "64"}
    given = dict(zip(args[::2], args[1::2]))
    argv = ["time"] + [x for k, v in {**base, **given}.items() for x in (k, v)]
    r = run_cli(*argv)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_time_json_keys(run_cli):
    r = run_cli("time", "--arch", "gpt3-175b", "--gpu", "a100", "--gpus", "1024", "--seq-len", "2048",
                "--global-batch", "1536", "--tp", "8", "--pp", "16", "--recompute", "selective",
                "--sequence-parallel", "--json")
    out = json.loads(r.stdout)
    assert {"step_time", "tokens_per_s", "mfu", "hfu", "mem_peak", "hbm", "fits", "breakdown", "layout"} <= set(out)
    assert set(out["breakdown"]) == {"compute", "tp", "ep", "cp", "bubble", "p2p", "dp", "optimizer"}
    assert out["layout"]["dp"] == 8 and 0 < out["mfu"] <= out["hfu"] < 1


def test_step_time_kernel_matches_sympy(step_time_kernel_matches_sympy):
    step_time_kernel_matches_sympy("gpt3-13b", {}, {"seq_len": 2048, "global_batch": 512, "batch": 1, "dp": 8},
                                   (1, 2, 4, 8), (1, 2, 4), quantities=("step_time", "step_mfu", "mem_peak"))


def test_errors_on_published_measured_runs_are_pinned():
    """benchmarks/validate_steptime.py with the shipped knobs: the median error per source, pinned near what it
    measures. Two knobs are fitted, on the shared file's four groups only (matmul 0.72, eager attention 0.30);
    everything else is published: each run's stack (SOURCE_STACK) sets its attention kernel, priced on the
    library's published fwd+bwd curve by tokens per device (engine/catalog/kernels.py), and the communication it
    overlaps (exposed = max(floor, comm - hideable) per collective, the hidden part slowing compute by the SMs it
    takes); rings run one per NIC at nccl-tests' bus fractions; torchtitan's runs are on Meta's 500 W HBM2e H100
    (h100-sxm-500w); fp8 GEMM inputs are cast with a transposed copy (current scaling reading each tensor once
    more); gradients are reduced in the stack's dtype; the last pipeline stage runs the output layer on top of its
    layers (refit: matmul 0.72 -> 0.73); a cluster's stated network where it is not the catalog device's (GCP A3,
    BLOOM's Omni-Path); Megatron-Bridge MoE recipes' expert-parallel overlap (RECORD_OVERLAP). Measured at issue
    21's merge (InfiniBand NICs at DeepEP's 0.86): held out 17.3 -> 12.2 % median, worst 69.6 ->
    68.2 % (a Bridge Qwen3-30B-A3B MoE run 1.7x slower per sample than the same model's later Bridge run), signed
    +12.1 -> +5.5 %. Then a TPU's own matmul efficiency (0.90 of its XLA ceiling, fitted on MaxText's v5e table
    alone; v4 and v5p held out) and MaxText's tensor-parallel overlap on TPU: held out (85 runs, v5e now fitted)
    9.2 %, -6.7 % signed. Then MaxText's gradient reduction exposed on GPU (openxla/xla#1539) and the interleaved
    pipeline's vp times as many sends (refit: matmul 0.73 -> 0.74): held out 8.6 %, -6.5 % signed. Then the
    output layer in 16 bits under fp8 (the recipes convert the transformer layers' linears only): NeMo 24.07 fp8
    10.7 -> 8.7 %, held out 8.3 %, -5.6 % signed. Then async TP overlapped where a run states it and pipeline sends
    partitioned over tp where the stack does (Megatron-LM 2021, DeepSpeed; refit: matmul back at 0.73): held out
    7.3 %, -5.4 % signed. Then eager element-wise ops for torchtitan runs without torch.compile (RMSNorm, RoPE,
    SwiGLU as chains of ops, counted from its code): held out 7.0 %, -5.3 % signed. The issue's per-group targets
    (10 % median, 25 % worst, 8 % sign bias) are not met by every group."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import validate_steptime as v

    records = [r for path in v.DATA for r in json.loads(path.read_text())["records"] if not v.usable(r)]
    knobs = v.shipped_knobs()
    errors = v.errors([v.predictor(r) for r in records], [r["derived"]["step_time_s_best"] for r in records], knobs)
    by, signed = {}, {}
    for r, e in zip(records, errors):
        by.setdefault(r["source_group"], []).append(abs(e))
        signed.setdefault(r["source_group"], []).append(e)
    assert len(records) == 245
    # fitted on these (the shared file)
    assert statistics.median(by["korthikanti2022"]) <= 0.095  # measured 9.1 %
    assert statistics.median(by["narayanan2021_t2"]) <= 0.105  # 10.1 %
    assert statistics.median(by["mpt_llmfoundry"]) <= 0.12  # 11.7 % (+10.8 % signed: FlashAttention-1's curve)
    assert statistics.median(by["mtnlg2022"]) <= 0.155  # 14.9 %
    # held out (tests/data/steptime_extra.json): other stacks, TPUs, fp8, long context, MoE
    assert statistics.median(by["nemo_perf_2407"]) <= 0.08 and max(by["nemo_perf_2407"]) <= 0.155  # 7.7, 14.9 %
    assert statistics.median(signed["nemo_perf_2407"]) > -0.08  # -7.7 %: predicted too fast (NeMo, H100 fp8)
    assert statistics.median(by["megatron_bridge_perf"]) <= 0.085  # Megatron-Bridge, H100, dense and MoE: 8.1 %
    # FSDP2 / TP / PP / CP, 500 W H100, bf16 and fp8, async TP overlapped where the run states it, eager
    # element-wise ops where it does not compile: 6.1 %, -5.3 % signed
    assert statistics.median(by["torchtitan"]) <= 0.065 and abs(statistics.median(signed["torchtitan"])) <= 0.06
    assert max(by["torchtitan"]) <= 0.34  # 33.4 %: Llama 3.1 8B at tp 8 with async TP, fp8
    # MaxText, one group per published table; the TPU knob (0.90 of the XLA ceiling) is fitted on v5e's alone
    assert statistics.median(by["maxtext_tpu_v5e"]) <= 0.045  # (fit) 3.9 %, was 22.4 % at the GPU knob
    assert statistics.median(by["maxtext_tpu_v4"]) <= 0.035 and max(by["maxtext_tpu_v4"]) <= 0.065  # 3.0, 5.9 %
    assert statistics.median(by["maxtext_tpu_v5p"]) <= 0.10  # 9.6 % (-8.1 % signed: multi-slice runs too fast)
    # 7.1 %, worst 11.3 %, -7.1 % signed (was 19.1 %: XLA:GPU's gradient all-reduce across A3 VMs priced hidden)
    assert statistics.median(by["maxtext_gpu_a3"]) <= 0.075 and max(by["maxtext_gpu_a3"]) <= 0.12
    assert statistics.median(by["nemo_longseq_2403"]) <= 0.04  # context parallelism to 1M tokens: 3.4 %
    assert max(by["nemo_longseq_2403"]) <= 0.07  # 6.4 %
    assert max(by["bigscience_bloom"]) <= 0.10  # 9.7 %: DeepSpeed's pipe engine partitions its sends over tp
    held = [e for r, e in zip(records, errors) if r["source_group"] not in v.SHIPPED_FIT]
    assert len(held) == 85 and statistics.median(abs(e) for e in held) <= 0.072  # 7.0 %
    assert max(abs(e) for e in held) <= 0.665  # 66.1 %
    assert abs(statistics.median(held)) <= 0.058  # -5.3 %


def test_stack_table_covers_every_source_group():
    """Every source group of the measured data names the stack it ran (with a source), whose records give the
    attention kernel per device generation; a group's own field (NeMo 24.03's FlashAttention-2) and a record's
    own kernel text override it; an unknown group is an error naming the table."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import validate_steptime as v

    from engine.options.stacks import STACK_NAMES

    records = [r for path in v.DATA for r in json.loads(path.read_text())["records"]]
    groups = {r["source_group"] for r in records}
    assert groups == set(v.SOURCE_STACK), sorted(groups ^ set(v.SOURCE_STACK))
    for name, fields, why in v.SOURCE_STACK.values():
        assert name in STACK_NAMES and set(fields) <= {"attention"} and len(why) > 20
    ids = {r["id"] for r in records}
    for rid, (overlap, why) in v.RECORD_OVERLAP.items():  # a recipe's own overlap: a real run, a valid value
        assert rid in ids and MEMORY_OPTIONS["overlap"].canonical(overlap) == overlap and len(why) > 40
        MEMORY_OPTIONS["overlap"].check(overlap)
    kernels = {r["id"]: v.attention_of(r) for r in records}  # every record resolves
    by_group = {}
    for r in records:
        by_group.setdefault(r["source_group"], set()).add(kernels[r["id"]])
    # 2021-22 Megatron / Megatron-DeepSpeed ran unfused softmax attention; the post-2023 stacks fused kernels
    assert {g for g, k in by_group.items() if k == {"eager"}} == {
        "korthikanti2022", "narayanan2021_t1", "narayanan2021_t2", "mtnlg2022", "bigscience_bloom", "palm_paper"}
    assert by_group["mpt_llmfoundry"] == {"flash1"}  # llm-foundry 2023 pinned flash-attn 1.0.3
    assert by_group["nemo_perf_2407"] == {"cudnn"} and by_group["nemo_longseq_2403"] == {"flash"}
    one = next(r for r in records if r["source_group"] == "torchtitan")
    assert kernels[one["id"]] == "flash"  # SDPA's FlashAttention-2 backend on H100 (torchtitan v0.1)
    with pytest.raises(ValueError, match="SOURCE_STACK"):
        v.attention_of({**one, "source_group": "nobody"})
    eager = {**one, "parallel": {**one["parallel"], "other": {"attention": "dot_product"}}}
    assert v.attention_of(eager) == "eager"
    with pytest.raises(ValueError, match="ATTENTION_WORDS"):
        v.attention_of({**one, "parallel": {**one["parallel"], "other": {"attention": "something new"}}})


def test_formulas_prints_the_step_time_model(run_cli):
    r = run_cli("formulas", "--arch", "gpt2", "--option", "memory_model=korthikanti", "--format", "latex")
    assert r.returncode == 0 and r"T_{\mathrm{step}}" in r.stdout and "Thakur" in r.stdout
    r = run_cli("formulas", "--arch", "gpt2", "--option", "mode=inference")
    assert "tpot [s]" in r.stdout and "ttft [s]" in r.stdout


def test_plan_agrees_with_exhaustive_evaluation():
    import itertools

    from engine.catalog.model import memory_options
    from engine.catalog.plan import Space, plan

    arch = architecture("gpt3-1.3b")
    space = Space(tp=(1, 2), pp=(1, 2, 5), cp=(1,), micro_batch=(1, 2), vp=(1, 2),
                  recompute=("full",), zero=(1,), sequence_parallel=(False, True))
    out = plan(arch, "a100-40gb", gpus=16, seq_len=2048, global_batch=64, top=3, space=space)
    brute = []
    for tp, pp, cp, mb, vp, rc, z, sp in itertools.product(space.tp, space.pp, space.cp, space.micro_batch,
                                                           space.vp, space.recompute, space.zero,
                                                           space.sequence_parallel):
        if sp and tp == 1:
            continue
        try:
            est = time_estimate(arch, "a100-40gb", Layout(16, 2048, 64, mb, tp, pp, None, cp, 1, vp),
                                memory_options(memory_model="korthikanti", precision="bf16", recompute=rc, zero=z,
                                               sequence_parallel=sp, attention="flash"))
        except SpecError:
            continue  # a layout rule: pp 3 does not divide 24 layers, 16 devices not a multiple of 3, ...
        if est["fits"]:
            brute.append((est["step_time"], tp, pp, cp, mb, vp, rc, z, sp))
    brute.sort()
    assert out["fit"] == len(brute)
    best = out["layouts"][0]
    assert best["step_time"] == pytest.approx(brute[0][0], rel=1e-5)
    assert [x["step_time"] for x in out["layouts"]] == pytest.approx([b[0] for b in brute[:3]], rel=1e-5)


def test_plan_cli(run_cli):
    r = run_cli("plan", "--arch", "gpt2", "--gpu", "a100-40gb", "--gpus", "4", "--seq-len", "1024",
                "--global-batch", "16", "--top", "2", "--zero", "1", "--recompute", "none", "--json")
    out = json.loads(r.stdout)
    assert len(out["layouts"]) == 2 and out["layouts"][0]["step_time"] <= out["layouts"][1]["step_time"]
    assert out["searched"] >= out["valid"] >= out["fit"] > 0
    r = run_cli("plan", "--arch", "nemotron-h-56b-base-8k", "--gpu", "h100", "--gpus", "8", "--seq-len", "1024",
                "--global-batch", "16")
    assert r.returncode == 2 and "Mamba-2" in r.stderr and "Traceback" not in r.stderr


def test_plan_searches_expert_parallelism_like_exhaustive_evaluation():
    """A MoE model: ep is an axis (etp 1; ep divides the experts and the devices of a stage) and plan's best
    layouts are the exhaustive search's."""
    import itertools

    from engine.catalog.model import memory_options
    from engine.catalog.plan import Space, plan

    arch = architecture("olmoe-1b-7b-0924")  # 64 experts, top 8
    space = Space(tp=(1, 2), pp=(1, 2), cp=(1,), micro_batch=(1,), vp=(1,), ep=(1, 2, 4, 8, 16),
                  recompute=("selective",), zero=(1,), sequence_parallel=(False,))
    out = plan(arch, "h100-sxm", gpus=8, seq_len=2048, global_batch=32, top=3, space=space, attention="flash")
    brute = []
    for tp, pp, mb, ep in itertools.product(space.tp, space.pp, space.micro_batch, space.ep):
        try:
            est = time_estimate(arch, "h100-sxm", Layout(8, 2048, 32, mb, tp, pp, None, 1, ep, 1, etp=1),
                                memory_options(memory_model="korthikanti", precision="bf16", recompute="selective",
                                               zero=1, attention="flash"))
        except SpecError:
            continue  # ep 16 does not divide the 8 devices of a stage, ...
        if est["fits"]:
            brute.append((est["step_time"], tp, pp, mb, ep))
    brute.sort()
    assert out["fit"] == len(brute) and {b[4] for b in brute} >= {1, 2, 4, 8}
    assert [x["step_time"] for x in out["layouts"]] == pytest.approx([b[0] for b in brute[:3]], rel=1e-5)
    assert out["layouts"][0]["layout"]["ep"] == brute[0][4] and out["layouts"][0]["layout"]["etp"] == 1


def test_hybrid_sharding_shards_within_groups(run_cli):
    arch = architecture("meta-llama-3-8b")
    opts = memory_options(memory_model="korthikanti", precision="bf16", zero=3, recompute="full", attention="flash",
                          overlap="none")
    full = time_estimate(arch, "h100-sxm", Layout(64, 4096, 128, 1), opts)
    hybrid = time_estimate(arch, "h100-sxm", Layout(64, 4096, 128, 1, shard_group=8), opts)
    assert hybrid["layout"]["shard_group"] == 8 and full["layout"]["shard_group"] == 64
    # states sharded over 8 devices instead of 64: the weights per device grow 8-fold
    fs = estimate_formulas(arch.family, arch.structure, opts)
    vals = {**arch.values, "batch": 1, "seq_len": 4096, "dp": 64}
    w64 = fs.evaluate_exact("mem_weights", vals)
    assert fs.evaluate_exact("mem_weights", {**vals, "shard_group": 8}) == 8 * w64
    # the ZeRO-3 traffic stays inside a node (NVLink) and a 1/8 shard crosses the network, all-reduced by groups of
    # one device per node (one NIC each); full sharding's ring has 8 members per node, one ring per NIC: it crosses
    # nodes at min(NVLink, 8 NICs), so hierarchical rings make hybrid sharding no cheaper. Two micro-batches, each
    # a reduce-scatter of fp32 gradients and two bf16 gathers; hybrid's all-reduce across groups once per step, of
    # the accumulated shard (by hand)
    n = float(fs.evaluate_exact("params_total", vals))
    nvlink, nics = 0.8 * 450e9, 0.86 * 50e9  # ring bus bandwidths (steptime DEFAULTS)
    half = lambda p, nbytes, bw, a: (p - 1) / p * nbytes / bw + (p - 1) * a  # noqa: E731
    per_micro_full = half(64, 4 * n, min(nvlink, 8 * nics), 8e-6) + 2 * half(64, 2 * n, min(nvlink, 8 * nics), 8e-6)
    per_micro_hybrid = half(8, 4 * n, nvlink, 6e-6) + 2 * half(8, 2 * n, nvlink, 6e-6)
    assert full["breakdown"]["dp"] == pytest.approx(2 * per_micro_full, rel=1e-9)
    assert hybrid["breakdown"]["dp"] == pytest.approx(2 * per_micro_hybrid + 2 * half(8, 4 * n / 8, nics, 8e-6),
                                                      rel=1e-9)
    r = run_cli("time", "--arch", "meta-llama-3-8b", "--gpu", "h100", "--gpus", "64", "--seq-len", "4096",
                "--global-batch", "128", "--shard-group", "8", "--zero", "0")
    assert r.returncode == 2 and "give --zero 1, 2 or 3" in r.stderr


def test_plan_builds_the_request_the_layout_spec_writes():
    """`plan` runs the request sweeps/plan-gpt3-175b.toml writes (categorical recompute, ZeRO and sequence
    parallelism; swept degrees; the layout rules as validity; mem_peak within the device, step_time
    minimized over every dim): over the file's axes, plan_spec parses into the same request."""
    from engine.catalog.plan import Space, plan_spec
    from engine.request.spec import load_spec, parse_spec

    spec = load_spec(REPO / "sweeps" / "plan-gpt3-175b.toml")
    space = Space(tp=(1, 2, 4, 8, 16, 32, 64), pp=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 96), cp=(1,),
                  micro_batch=(1, 2, 3, 4, 6, 8, 12, 16), vp=(1, 2, 3, 4, 6))
    ours = parse_spec(plan_spec(architecture("gpt3-175b"), "a100-80gb", 1024, 2048, 1536, space,
                                hbm=device("a100-80gb").hbm_bytes))
    assert list(ours.axes) == list(spec.axes) and ours.categories == spec.categories
    for dim, values in spec.axes.items():
        np.testing.assert_array_equal(ours.axes[dim], values)
    assert (ours.fixed, ours.options, ours.quantities, ours.arch) == (spec.fixed, spec.options, spec.quantities,
                                                                       spec.arch)
    assert set(ours.variants) == set(spec.variants)
    for labels, variant in spec.variants.items():
        assert ours.variants[labels].fixed == variant.fixed and ours.variants[labels].options == variant.options
        assert [v.message for v in ours.variants[labels].formulas.validity] == \
            [v.message for v in variant.formulas.validity]
    assert [(c.quantity, c.op, c.value) for c in ours.query.where] == [("mem_peak", "<=", 80 * 10**9)]
    assert [(c.quantity, c.op, c.value) for c in spec.query.where] == [("mem_peak", "<=", 80 * 10**9)]
    assert (ours.query.objective, ours.query.sense, ours.query.over) == (spec.query.objective, spec.query.sense,
                                                                         spec.query.over)


def test_time_of_moe_models_with_expert_parallelism(run_cli):
    r = run_cli("time", "--arch", "qwen3-30b-a3b", "--gpu", "h100", "--gpus", "16", "--seq-len", "4096",
                "--global-batch", "256", "--ep", "8", "--json")
    out = json.loads(r.stdout)
    assert out["breakdown"]["ep"] > 0 and out["layout"]["ep"] == 8
    one = json.loads(run_cli("time", "--arch", "qwen3-30b-a3b", "--gpu", "h100", "--gpus", "16", "--seq-len", "4096",
                             "--global-batch", "256", "--json").stdout)
    assert one["breakdown"]["ep"] == 0 and one["mem_peak"] > out["mem_peak"]  # experts split 8 ways
    r = run_cli("time", "--arch", "qwen3-30b-a3b", "--gpu", "h100", "--gpus", "8", "--seq-len", "4096",
                "--global-batch", "64", "--tp", "2", "--ep", "8", "--etp", "2")
    assert r.returncode == 2 and "ep x etp = 16 must divide dp x tp x cp = 8" in r.stderr
    r = run_cli("time", "--arch", "llama-2-7b", "--gpu", "h100", "--gpus", "8", "--seq-len", "4096",
                "--global-batch", "64", "--etp", "2")
    assert r.returncode == 2 and "--etp" in r.stderr and "no experts" in r.stderr


def test_expert_all_to_all_crosses_the_network_only_for_peers_off_the_node():
    """16 experts' ranks over 2 nodes of 8: 7/16 of the bytes over NVLink, 8/16 over the network, at once."""
    from engine.symbolic.memory.steptime import all_to_all

    vals = {"devices_per_node": 8, "link_bandwidth": 450e9, "inter_bandwidth": 50e9, "comm_efficiency": 1,
            "network_efficiency": 1, "collective_latency": 0, "network_latency": 0}
    t = all_to_all(sympy.Integer(16), sympy.Integer(10**9)).subs({steptime.symbol(k): v for k, v in vals.items()})
    assert float(t) == pytest.approx(max(7 / 16 * 1e9 / 450e9, 8 / 16 * 1e9 / 50e9))
    inside = all_to_all(sympy.Integer(8), sympy.Integer(10**9)).subs({steptime.symbol(k): v for k, v in vals.items()})
    assert float(inside) == pytest.approx(7 / 8 * 1e9 / 450e9)


def test_zero3_moves_two_16_bit_gathers_and_an_fp32_reduce_scatter():
    """Megatron-style bf16 (fp32 main gradients): ZeRO-3 over 8 devices of one node, by hand (not overlapped: all
    of it exposed; one micro-batch per step)."""
    arch = architecture("gpt2")
    opts = memory_options(memory_model="korthikanti", precision="bf16", zero=3, attention="flash", overlap="none")
    est = time_estimate(arch, "a100-80gb", Layout(8, 1024, 8, 1), opts)
    n = 124_439_808  # GPT-2 small's parameters (tied head)
    bw, alpha = 0.8 * 300e9, 6e-6  # NVLink3 ring bus bandwidth, 6 us per ring step inside a node
    ring = lambda nbytes: 7 / 8 * nbytes / bw + 7 * alpha  # noqa: E731  reduce-scatter or all-gather over 8
    want = ring(4 * n) + 2 * ring(2 * n)
    assert est["breakdown"]["dp"] == pytest.approx(want, rel=1e-9)


def test_causal_attention_executes_half_the_scores_with_fused_kernels():
    """flash / sdpa skip the masked half of QK^T and AV, and their backward recomputes the scores (FlashAttention's
    benchmark convention: fwd + bwd = 3.5 forwards of the causal half); eager computes all of it in 3 passes. On a
    device without a published curve (fp8: at the 16-bit peak), eager runs at the fitted attention efficiency and
    the fused kernel at FlashAttention-2's H100 share of the ceiling, r(n) = r_max n / (n + n_half)."""
    import dataclasses

    arch = architecture("llama-2-7b")
    fs = {a: estimate_formulas(arch.family, arch.structure, memory_options(memory_model="korthikanti",
                                                                           precision="fp8", attention=a))
          for a in ("flash", "eager")}
    dev = dataclasses.replace(device("h100-sxm"), attention_curve=None).values("fp8")
    given = {**arch.values, **dev, "batch": 1, "seq_len": 8192, "global_batch": 8, "dp": 8}
    t = {a: float(f.evaluate_exact("time_compute", given)) for a, f in fs.items()}
    forward = float(fs["flash"].evaluate_exact("flops_attention_token", given)) * 8192 * 1
    from engine.catalog.hardware import fused_attention_share

    eta, (share, n_half) = float(steptime.DEFAULTS["attention_efficiency"]), fused_attention_share()
    eager = 3 * forward / (989.4e12 * 0.801 * eta)
    fused = 3.5 / 2 * forward / (989.4e12 * 0.801 * share * 8192 / (8192 + n_half))
    assert t["eager"] - t["flash"] == pytest.approx(eager - fused, rel=1e-9)


def test_fp8_gemms_run_at_the_fp8_ceiling_times_the_fp8_peak(monkeypatch):
    """fp8 `time` on h100-sxm prices its GEMMs at 0.709 x the fp8 peak (Bekman's fp8 MAMF), attention at the
    bf16 path's 0.801 x the bf16 peak. The bf16 run gives the GEMM FLOPs (its compute minus the same
    attention term); a copy of h100-sxm without an fp8 figure (fp8 falls back to the bf16 fraction) isolates
    the ceiling."""
    import dataclasses

    from engine.catalog import timing

    arch, lay = architecture("llama-2-7b"), Layout(1, 4096, 8, 1)
    h100 = device("h100-sxm")
    bf16_peak, fp8_peak = h100.peak("bf16"), h100.peak("fp8")
    assert (h100.mamf_fraction, h100.mamf_fp8) == (0.801, 0.709) and fp8_peak == 1978.9e12

    def compute(precision, dev=h100):
        monkeypatch.setattr(timing, "device", lambda name: dev)
        opts = memory_options(memory_model="korthikanti", precision=precision, attention="flash")
        return time_estimate(arch, "h100-sxm", lay, opts)["breakdown"]["compute"]

    bf16, fp8 = compute("bf16"), compute("fp8")
    fallback = compute("fp8", dataclasses.replace(h100, mamf_fp8=None))
    assert dataclasses.replace(h100, mamf_fp8=None).values("fp8")["matmul_ceiling"] == 0.801
    eta = float(steptime.DEFAULTS["matmul_efficiency"])
    # bf16 - fallback = G (1/(0.801 bf16_peak) - 1/(0.801 fp8_peak)) / eta - the fp8 casts: the same attention term
    # cancels; the casts (4 bytes an element of the linear layers' inputs and output gradients, 32 layers, 4096
    # tokens, 8 micro-batches) are fp8's alone
    h, f = 4096, 11008
    casts = 8 * 4 * ((3 * h + f) + (3 * h + 2 * h + 2 * f)) * 32 * 4096 / 3.35e12
    gemm_flops = (bf16 - fallback + casts) * eta * 0.801 / (1 / bf16_peak - 1 / fp8_peak)
    assert fallback - gemm_flops / (0.801 * fp8_peak * eta) == pytest.approx(fp8 - gemm_flops / (0.709 * fp8_peak * eta),
                                                                            rel=1e-9)
    assert fp8 > fallback and fp8 < bf16


def test_zero3_overlaps_its_gradient_reduction_and_parameter_gathers_apart():
    """``--overlap dp_reduce`` hides ZeRO-3's reduce-scatter and exposes its two gathers whole, ``dp_gather`` the
    other way round (MaxText on GPU: openxla/xla#1539); ``dp`` is both. Compute hides each here, so each hidden
    part costs the same share of itself (a layer's floor, the contention of the rest) and the parts add up."""
    arch = architecture("gpt2")
    dp = {}
    for overlap in ("none", "dp", "dp_reduce,dp_gather", "dp_reduce", "dp_gather"):
        opts = memory_options(memory_model="korthikanti", precision="bf16", zero=3, attention="flash",
                              overlap=overlap)
        dp[overlap] = time_estimate(arch, "a100-80gb", Layout(8, 1024, 64, 8), opts)["breakdown"]["dp"]
    n, bw, alpha = 124_439_808, 0.8 * 300e9, 6e-6
    ring = lambda nbytes: 7 / 8 * nbytes / bw + 7 * alpha  # noqa: E731  reduce-scatter or all-gather over 8
    assert dp["none"] == pytest.approx(ring(4 * n) + 2 * ring(2 * n), rel=1e-9)
    assert dp["dp"] == dp["dp_reduce,dp_gather"] < min(dp["dp_reduce"], dp["dp_gather"])
    assert max(dp["dp_reduce"], dp["dp_gather"]) < dp["none"]
    assert dp["dp_reduce"] + dp["dp_gather"] == pytest.approx(dp["none"] + dp["dp"], rel=1e-9)


def test_interleaving_sends_each_micro_batch_from_every_model_chunk():
    """Pipeline sends, by hand: each of m micro-batches' activations (b s h 16-bit elements) forward and its
    gradient back, from each of a device's vp chunks, plus the pp - 1 of the fill and drain (Narayanan et al.
    2021 §2.2.2: interleaving multiplies the communication by v). Stages 8 apart cross the node: at pp 2 over 16
    A100s the sends go over one 25 GB/s NIC at 0.86, 8 us a send."""
    arch = architecture("gpt2")
    opts = memory_options(memory_model="korthikanti", precision="bf16", attention="flash", overlap="none")
    send = 2 * 1 * 1024 * 768 / (0.86 * 25e9) + 8e-6
    for vp in (1, 2, 3):
        lay = Layout(16, 1024, 64, 1, tp=1, pp=2, vp=vp)
        p2p = time_estimate(arch, "a100-80gb", lay, opts)["breakdown"]["p2p"]
        assert p2p == pytest.approx(2 * (vp * 8 + 1) * send, rel=1e-9)


def test_fp8_runs_the_output_layer_in_16_bits():
    """fp8 recipes convert the transformer layers' linears only (Megatron-Core's output layer is not a Transformer
    Engine module; torchtitan's float8 conversion skips "output"): a larger vocabulary adds its logits GEMMs
    (6 d_model vocab FLOPs a token) at the bf16 rate, 0.801 x the bf16 peak, and its fp32 loss passes (32 bytes
    a logit) at the HBM bandwidth -- not at the fp8 rate."""
    arch = architecture("llama-2-7b")
    fs = estimate_formulas(arch.family, arch.structure,
                           memory_options(memory_model="korthikanti", precision="fp8", attention="flash"))
    given = {**arch.values, **device("h100-sxm").values("fp8"), "batch": 1, "seq_len": 4096, "global_batch": 8,
             "dp": 8}
    t = {v: float(fs.evaluate_exact("time_compute", {**given, "vocab": v})) for v in (32000, 33000)}
    eta = float(steptime.DEFAULTS["matmul_efficiency"])
    logits = 6 * 4096 * 1000 * 4096 / (989.4e12 * 0.801 * eta)
    assert t[33000] - t[32000] == pytest.approx(logits + 32 * 4096 * 1000 / 3.35e12, rel=1e-9)


def test_megatron_2021_and_deepspeed_partition_pipeline_sends_over_tensor_parallel_ranks():
    """Without sequence parallelism a Megatron-Core stage sends its whole output from every tensor-parallel rank;
    Megatron-LM 2021 (scatter/gather, Narayanan et al. 2021 §4.1) and DeepSpeed's pipe engine (is_pipe_partitioned)
    send 1/tp of it from each, and sequence parallelism shards it by tp anyway. By hand at tp 2, pp 2 over 16
    A100s: m = 16 micro-batches, each send over one 25 GB/s NIC at 0.86, 8 us."""
    arch = architecture("gpt2")
    lay = Layout(16, 1024, 64, 1, tp=2, pp=2)
    send = lambda nbytes: nbytes / (0.86 * 25e9) + 8e-6  # noqa: E731
    whole = 2 * 1024 * 768  # b s h 16-bit elements
    for stack, sp, nbytes in (("megatron-core", False, whole), ("megatron-lm-2021", False, whole / 2),
                              ("deepspeed", False, whole / 2), ("megatron-core", True, whole / 2)):
        opts = memory_options(memory_model="korthikanti", precision="bf16", attention="flash", overlap="none",
                              stack=stack, sequence_parallel=sp)
        p2p = time_estimate(arch, "a100-80gb", lay, opts)["breakdown"]["p2p"]
        assert p2p == pytest.approx(2 * (16 + 1) * send(nbytes), rel=1e-9), (stack, sp)


def test_experts_fold_into_the_context_parallel_devices_too():
    """Megatron-Core's MoE parallel folding carves ep x etp out of a pipeline stage's dp x tp x cp devices: Mixtral
    8x7B at tp 2, cp 8, ep 8 over 64 GPUs (dp 2: dp x tp = 4 alone could not hold ep x etp = 16) is priced, and
    one that no stage can hold is refused naming the rule."""
    arch = architecture("mixtral-8x7b")
    opts = memory_options(memory_model="korthikanti", precision="bf16", attention="flash", sequence_parallel=True)
    est = time_estimate(arch, "h100-sxm", Layout(64, 8192, 16, 1, tp=2, pp=2, cp=8, ep=8), opts)
    assert est["step_time"] > 0 and est["breakdown"]["ep"] > 0
    with pytest.raises(SpecError, match="ep x etp = 32 must divide dp x tp x cp = 16"):
        time_estimate(arch, "h100-sxm", Layout(32, 8192, 16, 1, tp=2, pp=2, cp=4, ep=16), opts)


def test_eager_element_wise_ops_read_and_write_each_tensor():
    """torchtitan without torch.compile runs RMSNorm, RoPE and SwiGLU as chains of eager ops (its stack's
    ``elementwise``); by hand, Llama-2-7B on one H100 (bf16, no recompute, one micro-batch of 4096 tokens): two
    norms at 32 bytes an element more forward and 60 backward, RoPE on q and k (4096 + 4096 wide) 16 + 16 more,
    the gated activation over 11008 units 4 + 8 more, 32 layers, at the HBM bandwidth. Fused is the stack default
    of Megatron-Core; ``--elementwise`` overrides either."""
    arch = architecture("llama-2-7b")
    t = {}
    for stack, elementwise in (("megatron-core", "stack"), ("torchtitan", "fused"), ("torchtitan", "stack"),
                               ("megatron-core", "eager")):
        opts = memory_options(memory_model="korthikanti", precision="bf16", attention="flash", stack=stack,
                              elementwise=elementwise)
        t[stack, elementwise] = time_estimate(arch, "h100-sxm", Layout(1, 4096, 1, 1), opts)["breakdown"]["compute"]
    h, f = 4096, 11008
    extra = (2 * 32 * h + 16 * 2 * h + 4 * f + 2 * 60 * h + 16 * 2 * h + 8 * f) * 32 * 4096 / 3.35e12
    assert t["torchtitan", "stack"] - t["torchtitan", "fused"] == pytest.approx(extra, rel=1e-9)
    assert t["megatron-core", "eager"] - t["megatron-core", "stack"] == pytest.approx(extra, rel=1e-9)
