"""Layouts real runs use: uneven pipeline stages (Llama 3.1 405B's 126 layers over pp 16, Megatron's first/last
stage counts), fp8 with ZeRO-3 / FSDP, and the status line of a long `plan`."""

from __future__ import annotations

import io

import pytest

from engine import progress
from engine.catalog.model import architecture, estimate_formulas, memory_options
from engine.catalog.plan import Space, _search, plan_spec
from engine.catalog.timing import Layout, time_estimate
from engine.errors import SpecError
from engine.request.spec import parse_spec
from engine.symbolic.memory.steptime.layout import stage_split

SEL = memory_options(memory_model="korthikanti", precision="bf16", recompute="selective", zero=1,
                     sequence_parallel=True, attention="flash")
LLAMA = dict(gpus=16384, seq_len=8192, global_batch=2048, micro_batch=1, tp=8, pp=16)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_126_layers_over_pp_16_split_as_evenly_as_possible():
    """No refusal: the fullest stage holds ceiling(126 / 16) = 8 layers; Llama 3's split (one layer fewer on
    the first and last stages: 7 + 14 x 8 + 7) has the same bottleneck and a lower peak (the first stage holds
    16 micro-batches of 7 layers, the second 15 of 8, against 16 of 8)."""
    arch = architecture("llama-3.1-405b")
    even = time_estimate(arch, "h100-sxm", Layout(**LLAMA), SEL)
    llama = time_estimate(arch, "h100-sxm", Layout(**LLAMA, first_stage_layers=7, last_stage_layers=7), SEL)
    assert even["stage_layers"] == llama["stage_layers"] == 8
    assert llama["step_time"] == even["step_time"] and llama["mem_peak"] < even["mem_peak"]
    assert llama["layout"]["first_stage_layers"] == 7
    fs = estimate_formulas(arch.family, arch.structure, SEL)
    given = {**arch.values, "batch": 1, "seq_len": 8192, "tp": 8, "pp": 16, "dp": 128}
    assert stage_split(126, 16) == (8, 128) and stage_split(126, 16, 1, 7, 7) == (8, 120)  # max(16 x 7, 15 x 8, 7)
    act = {f: fs.evaluate_exact("mem_activations", {**given, "in_flight_layers": n}) for f, n in ((0, 128), (7, 120))}
    assert act[0] * 120 == act[7] * 128 and act[0] == fs.evaluate_exact("mem_activations", given)  # the default
    # the bottleneck stage's weights: 8 of the 126 layers' share of every parameter, over tp
    weights = fs.evaluate_exact("mem_weights", given)
    assert weights == fs.evaluate_exact("params_total", given) * 8 / (126 * 8) * 2
    # BLOOM: 70 layers over pp 12 -> 6
    assert time_estimate(architecture("bloom"), "a100-80gb", Layout(384, 2048, 2048, 1, 4, 12), SEL)["stage_layers"] == 6


def test_stage_layers_with_interleaving_and_first_last_stages():
    arch = architecture("llama-3.1-405b")
    stage = lambda **kw: time_estimate(arch, "h100-sxm", Layout(**{**LLAMA, **kw}), SEL)["stage_layers"]
    assert stage(vp=2) == 8  # 126 / 32 chunks -> 4 a chunk, 2 chunks a stage
    assert stage(vp=3) == 9  # 126 / 48 -> 3 a chunk
    assert stage(first_stage_layers=14, last_stage_layers=0) == 14  # the first stage is the bottleneck
    assert stage(first_stage_layers=2, last_stage_layers=4) == 9  # 120 over 14 middle stages: 9
    assert stage(pp=2, first_stage_layers=60, last_stage_layers=66) == 66


@pytest.mark.parametrize("kw, flag, words", [
    ({"first_stage_layers": 70, "last_stage_layers": 60}, "--first-stage-layers",
     "first 70 + last 60 layers leave -4 for 14 middle stages of the 126 layers: first + last may be at most 112"),
    ({"last_stage_layers": 126}, "--last-stage-layers", "first + last may be at most 111"),
    ({"pp": 2, "first_stage_layers": 60, "last_stage_layers": 60}, "--first-stage-layers",
     "must add up to the 126 layers"),
    ({"pp": 1, "gpus": 2048, "first_stage_layers": 3}, "--first-stage-layers", "give --pp > 1"),
    ({"vp": 2, "first_stage_layers": 7}, "--vp", "without interleaving"),
    ({"first_stage_layers": -1}, "--first-stage-layers", "non-negative integer"),
])
def test_impossible_stage_splits_are_point_errors(kw, flag, words):
    arch = architecture("llama-3.1-405b")
    with pytest.raises(SpecError) as info:
        time_estimate(arch, "h100-sxm", Layout(**{**LLAMA, **kw}), SEL)
    assert flag in str(info.value) and words in str(info.value) and "\n" not in str(info.value)


def test_time_flags_for_first_and_last_stages(run_cli):
    args = ("time", "--arch", "llama-3.1-405b", "--gpu", "h100-sxm", "--gpus", "16384", "--seq-len", "8192",
            "--global-batch", "2048", "--tp", "8", "--pp", "16", "--sequence-parallel")
    r = run_cli(*args, "--first-stage-layers", "7", "--last-stage-layers", "7")
    assert r.returncode == 0 and "stages of at most 8 layers" in r.stdout
    r = run_cli(*args, "--first-stage-layers", "100", "--last-stage-layers", "20")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--first-stage-layers" in r.stderr


def test_uneven_stages_in_the_kernel_equal_the_exact_values_and_the_search_shows_its_progress():
    """A search over pp that does not divide the 24 layers (5, 7: ceiling in the JAX kernel) ranks by the values
    `time` computes exactly; on a terminal it says what it does on one status line, the chunk and an ETA."""
    arch = architecture("gpt3-1.3b")
    space = Space(tp=(1,), pp=(5, 7), cp=(1,), micro_batch=(1, 2), vp=(1, 2), recompute=("selective",), zero=(1,),
                  sequence_parallel=(False,))
    request = parse_spec(plan_spec(arch, "a100-80gb", 70, 2048, 70, space, hbm=80 * 2**30), source="test")
    tty = _Terminal()
    with progress.reporting(True, tty):
        ds, _ = _search(request, request.query, 16)
    shown = tty.getvalue()
    assert "building" in shown and "compiling" in shown and "\n" not in shown  # one line, rewritten
    assert "chunk 1 of 1, 100% of 16 points, ETA 0 s" in shown
    assert ds.sizes["rank"] == 4  # pp 5, 7 x vp 1, 2; micro-batch 2 splits 70 sequences over dp 14 or 10 unevenly
    opts = memory_options(memory_model="korthikanti", precision="bf16", recompute="selective", zero=1,
                          sequence_parallel=False, attention="flash")
    for i in range(ds.sizes["rank"]):
        row = {d: int(ds[d].values[i]) for d in ("pp", "dp", "batch", "vp")}
        est = time_estimate(arch, "a100-80gb", Layout(70, 2048, 70, row["batch"], 1, row["pp"], row["dp"],
                                                      vp=row["vp"]), opts)
        assert float(ds["step_time"].values[i]) == pytest.approx(est["step_time"], rel=1e-12)
        assert est["stage_layers"] == -(-24 // (row["pp"] * row["vp"])) * row["vp"]


def test_fp8_with_zero_3_by_hand():
    """fp8 under full sharding: the bf16 weight shards as zero 3 has them, and the fp8 copy + transpose of the
    one layer being gathered. GPT-3 1.3B (d 2048, d_ff 8192) at tp 2, pp 2, dp 4: a layer's linear weights are
    4 d^2 + 2 d d_ff = 50,331,648, over tp 2, 2 bytes each; with zero 1 the stage's 12 layers."""
    arch = architecture("gpt3-1.3b")
    given = {**arch.values, "batch": 1, "seq_len": 2048, "tp": 2, "pp": 2, "dp": 4}
    ev = {}
    for zero in (1, 3):
        o = memory_options(memory_model="korthikanti", precision="fp8", zero=zero, attention="flash")
        fs = estimate_formulas(arch.family, arch.structure, o)
        ev[zero] = {k: fs.evaluate_exact(k, given) for k in ("mem_fp8_weights", "mem_fp8_scaling", "mem_weights",
                                                             "params_total", "mem_model_states")}
    layer = 4 * 2048**2 + 2 * 2048 * 8192
    assert ev[3]["mem_fp8_weights"] == layer // 2 * 2 == 50_331_648
    assert ev[1]["mem_fp8_weights"] == 12 * layer // 2 * 2
    assert ev[3]["mem_weights"] == ev[3]["params_total"] * 2 / (2 * 2 * 4) == 164_465_408
    assert ev[3]["mem_fp8_scaling"] == ev[1]["mem_fp8_scaling"] == 24 * 4 // 2 * 5 * 1026 * 4
    assert ev[3]["mem_model_states"] < ev[1]["mem_model_states"]


def test_eta_of_equal_steps(monkeypatch):
    monkeypatch.setattr(progress.time, "perf_counter", lambda: 130.0)
    with progress.reporting(True, _Terminal()):
        assert progress.eta(100.0, 3, 24) == ", ETA 210 s"  # 10 s a kernel, 21 to go
        assert progress.eta(100.0, 0, 24) == progress.eta(100.0, 24, 24) == ""
    assert progress.eta(100.0, 3, 24) == ""  # no one reports


def test_no_status_line_off_a_terminal():
    pipe = io.StringIO()
    with progress.reporting(True, pipe):
        progress.note("searching: kernel 1 of 1")
        progress.detail("chunk 1 of 2, 50% of 8 points, ETA 1 s")
    assert pipe.getvalue() == ""


def test_plan_quiet_has_no_status_line(run_cli, monkeypatch):
    """`plan` reports on a terminal unless --quiet; the top row is followed by its step's shares."""
    arch = architecture("gpt2")
    est = time_estimate(arch, "a100-80gb", Layout(1, 128, 2, 1), SEL)
    est.update(recompute="selective", zero=1, sequence_parallel=False, folded={})

    def fake_plan(*args, **kwargs):  # what plan says while it works, then one row
        progress.note("searching: kernel 1 of 1")
        return {"layouts": [est], "searched": 1, "valid": 1, "fit": 1, "seconds": 0.0}

    monkeypatch.setattr("engine.catalog.plan.plan", fake_plan)
    shown = {}
    for flags in ((), ("--quiet",)):
        tty = shown[flags] = _Terminal()
        monkeypatch.setattr("engine.commands.plan.reporting", lambda enabled, t=tty: progress.reporting(enabled, t))
        r = run_cli("plan", "--arch", "gpt2", "--gpu", "a100-80gb", "--gpus", "1", "--seq-len", "128",
                    "--global-batch", "2", *flags)
        shares = sorted(est["breakdown"].items(), key=lambda kv: -kv[1])[:2]  # the top row's shares
        line = ", ".join(f"{k} {100 * v / est['step_time']:.1f}%" for k, v in shares)
        assert r.returncode == 0 and f"\n    step: {line}" in r.stdout, (line, r.stdout)
    assert "searching" in shown[()].getvalue() and shown[("--quiet",)].getvalue() == ""
