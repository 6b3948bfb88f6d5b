"""`plan`: exit 3 when nothing fits, layouts that differ only in a knob that changes nothing there folded into
one row (decided by comparing the exact predictions), exact rows without sympy per row, progress on a terminal."""

from __future__ import annotations

import io
import json

import pytest

from engine import progress
from engine.catalog.model import architecture, memory_options
from engine.catalog.plan import KNOBS, Space, describe_folded, plan
from engine.options.stacks import stack_attention
from engine.catalog.timing import Layout, time_estimate


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _slow(arch, gpu, est):
    """The row as `time` computes it: every value substituted with sympy (the path plan used for each row)."""
    lay = est["layout"]
    options = memory_options(memory_model="korthikanti", precision="bf16", recompute=est["recompute"],
                             zero=est["zero"], sequence_parallel=est["sequence_parallel"],
                             attention=stack_attention("megatron-core", gpu))  # plan's default: the stack's kernel
    out = time_estimate(arch, gpu, Layout(lay["gpus"], lay["seq_len"], lay["global_batch"], lay["micro_batch"],
                                          lay["tp"], lay["pp"], None, lay["cp"], lay["ep"], lay["vp"],
                                          etp=1 if arch.structure.moe else None), options)
    out.update(recompute=est["recompute"], zero=est["zero"], sequence_parallel=est["sequence_parallel"])
    return out


def _outputs(est):
    lay = {k: v for k, v in est["layout"].items() if k not in KNOBS}
    return (est["step_time"], est["tokens_per_s"], est["mfu"], est["hfu"], est["mem_peak"], est["breakdown"], lay)


def test_nothing_fits_exits_3_with_one_line(run_cli):
    args = ("plan", "--arch", "gpt3-175b", "--gpu", "a100-40gb", "--gpus", "8", "--seq-len", "2048",
            "--global-batch", "8", "--recompute", "full", "--zero", "3")
    r = run_cli(*args)
    assert r.returncode == 3 and r.stdout == "" and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("llm-sweep plan: nothing fits: gpt3-175b on 8 x a100-40gb")
    assert "the lowest peak of a valid layout is" in r.stderr and "37.25 GiB" in r.stderr
    r = run_cli(*args, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 3 and out["layouts"] == [] and len(r.stderr.strip().splitlines()) == 1
    assert out["lowest_peak"]["mem_peak"] > out["hbm"] and not out["lowest_peak"]["fits"]
    r = run_cli(*args[:-2], "--top", "0")  # bad input stays exit 2, one line
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--top" in r.stderr


def test_equivalent_layouts_fold_into_one_row_naming_the_knob():
    """At dp 1 the ZeRO stage shards nothing: the four stages predict the same step time, breakdown and peak,
    so they are one row saying so; every stage's own estimate equals the row; no two rows are equivalent."""
    arch = architecture("gpt3-1.3b")
    space = Space(tp=(1, 2), pp=(1, 2), cp=(1,), micro_batch=(1, 2), vp=(1,), recompute=("none",),
                  zero=(0, 1, 2, 3), sequence_parallel=(False,))
    stream = _Terminal()
    with progress.reporting(True, stream):
        out = plan(arch, "a100-40gb", gpus=2, seq_len=2048, global_batch=8, top=100, space=space)
    assert "searching: kernel 1 of 4 (recompute none, ZeRO 0, sequence parallelism off)" in stream.getvalue()
    unfolded = plan(arch, "a100-40gb", gpus=2, seq_len=2048, global_batch=8, top=100, space=space, fold=False)
    rows = out["layouts"]
    dp1 = [r for r in rows if r["layout"]["dp"] == 1]
    assert dp1 and all(r["folded"] == {"zero": {"values": [0, 1, 2, 3], "reason": "no effect at dp 1"}} for r in dp1)
    assert all(r["zero"] == 0 for r in dp1)  # the row is its first member
    assert describe_folded(dp1[0]) == "zero 0–3: no effect at dp 1"
    for row in dp1:
        for zero in (0, 1, 2, 3):
            member = _slow(arch, "a100-40gb", {**row, "zero": zero})
            assert _outputs(member) == _outputs(row)
    # dp 2: each stage its own row (its peak differs), so nothing is lost by folding
    assert all(r["folded"] == {} for r in rows if r["layout"]["dp"] == 2)
    assert len({json.dumps(_outputs(r)) for r in rows}) == len(rows)
    assert sum(len(r["folded"].get("zero", {"values": [0]})["values"]) for r in rows) == len(unfolded["layouts"])
    assert len(unfolded["layouts"]) == out["fit"]


def test_large_top_equals_the_slow_path_row_for_row():
    """Every layout that fits (top larger than their count), unfolded: each row equals time_estimate's value
    for value (no rounding: the same exact rationals), ordered by exact step time; a small top is its start."""
    arch = architecture("gpt3-1.3b")
    space = Space(tp=(1, 2), pp=(1, 2, 4), cp=(1, 2), micro_batch=(1, 2), vp=(1, 2), recompute=("full",),
                  zero=(1, 3), sequence_parallel=(False, True))
    out = plan(arch, "a100-40gb", gpus=16, seq_len=2048, global_batch=64, top=10**6, space=space, fold=False)
    rows = out["layouts"]
    assert len(rows) == out["fit"] > 50
    for row in rows:
        assert {k: v for k, v in row.items() if k != "folded"} == _slow(arch, "a100-40gb", row)
    times = [r["step_time"] for r in rows]
    assert times == sorted(times)
    few = plan(arch, "a100-40gb", gpus=16, seq_len=2048, global_batch=64, top=5, space=space, fold=False)
    assert few["layouts"] == rows[:5]


def test_plan_prints_folded_rows(run_cli):
    r = run_cli("plan", "--arch", "gpt3-1.3b", "--gpu", "a100-40gb", "--gpus", "2", "--seq-len", "2048",
                "--global-batch", "8", "--top", "8", "--recompute", "none", "--zero", "1", "--zero", "2")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines()[1:] if not line.startswith("    step: ")]
    assert len(lines) == 8 and r.stdout.splitlines()[2].startswith("    step: compute ")  # the top row's shares
    folded = [line for line in lines if "dp 1 " in line]
    assert folded and all("zero 1,2" in line and line.endswith("(zero 1,2: no effect at dp 1)") for line in folded)


@pytest.mark.parametrize("top", [1, 3])
def test_folding_fills_the_top_with_distinct_rows(top):
    """With folding the top K rows are K different predictions (the equivalent stages no longer pad it)."""
    arch = architecture("gpt3-1.3b")
    space = Space(tp=(1, 2), pp=(1, 2), cp=(1,), micro_batch=(1,), vp=(1,), recompute=("none",),
                  zero=(0, 1, 2, 3), sequence_parallel=(False,))
    out = plan(arch, "a100-40gb", gpus=2, seq_len=2048, global_batch=8, top=top, space=space)
    assert len(out["layouts"]) == top
    assert len({json.dumps(_outputs(r)) for r in out["layouts"]}) == top


def test_exact_rows_of_a_moe_model_and_the_reference_path_agree(monkeypatch):
    """A MoE model (ep searched, etp 1): every row equals time_estimate's; with the compiled formulas refused
    (as for a formula holding a float or a root) the rows come from time_estimate and are the same."""
    import engine.catalog.plan as plan_module

    arch = architecture("olmoe-1b-7b-0924")
    space = Space(tp=(1, 2), pp=(1, 2), cp=(1,), micro_batch=(1, 2), vp=(1,), ep=(1, 2, 4, 8),
                  recompute=("selective",), zero=(1,), sequence_parallel=(False,))
    out = plan(arch, "h100-sxm", gpus=8, seq_len=2048, global_batch=32, top=1000, space=space, fold=False)
    assert out["layouts"] and {r["layout"]["ep"] for r in out["layouts"]} == {1, 2, 4, 8}
    for row in out["layouts"]:
        assert {k: v for k, v in row.items() if k != "folded"} == _slow(arch, "h100-sxm", row)

    def refuse(*args, **kwargs):
        raise plan_module._Inexact

    monkeypatch.setattr(plan_module, "_Exact", refuse)
    slow = plan(arch, "h100-sxm", gpus=8, seq_len=2048, global_batch=32, top=1000, space=space, fold=False)
    assert slow["layouts"] == out["layouts"]


def test_a_huge_global_batch_is_refused_at_once(run_cli):
    """The micro-batch list is the global batch's divisors: a loop to 10**20 never returned; now one line, exit 2."""
    from engine.catalog.plan import divisors

    assert divisors(36) == (1, 2, 3, 4, 6, 9, 12, 18, 36) and divisors(97) == (1, 97) and divisors(1) == (1,)
    assert divisors(1536) == tuple(m for m in range(1, 1537) if 1536 % m == 0)
    r = run_cli("plan", "--arch", "gpt2", "--gpu", "h100-sxm", "--gpus", "8", "--seq-len", "1024",
                "--global-batch", "99999999999999999999")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--global-batch" in r.stderr and "at most 1,099,511,627,776" in r.stderr


def test_a_search_that_runs_out_of_rows_asks_for_more(monkeypatch):
    """With one candidate per row asked, the rows the top-k query returns are folded equivalents (four ZeRO
    stages at dp 1) before the top-th distinct row: plan asks again for more and answers as with plenty."""
    import engine.catalog.plan as plan_module

    arch = architecture("gpt3-1.3b")
    space = Space(tp=(1, 2), pp=(1, 2), cp=(1,), micro_batch=(1, 2), vp=(1,), recompute=("none",),
                  zero=(0, 1, 2, 3), sequence_parallel=(False,))
    plenty = plan(arch, "a100-40gb", gpus=2, seq_len=2048, global_batch=8, top=4, space=space)
    asked = []
    search = plan_module._search
    monkeypatch.setattr(plan_module, "FIRST_K", 1)
    monkeypatch.setattr(plan_module, "ROWS_PER_TOP", 1)
    monkeypatch.setattr(plan_module, "_search", lambda request, query, k: asked.append(k) or search(request, query, k))
    few = plan(arch, "a100-40gb", gpus=2, seq_len=2048, global_batch=8, top=4, space=space)
    assert asked[:2] == [4, min(8 * 4, plenty["fit"])]  # eight times more, at most every layout that fits
    assert few["layouts"] == plenty["layouts"] and few["fit"] == plenty["fit"]
