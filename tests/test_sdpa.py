"""PyTorch SDPA kernel selection (engine/symbolic/memory/pytorch.py kernel_rules / attention_kernel)."""

from __future__ import annotations

import json

import pytest
import sympy

from engine.catalog.model import architecture, memory_estimate
from engine.options import MemoryOptions
from engine.symbolic.memory import pytorch
from engine.symbolic.memory.base import a, h, s



def _opts(**kw):
    return MemoryOptions(**{"attention": "sdpa", **kw})


# (precision, head_dim, dropout, n_heads, n_kv_heads) -> kernel, on sm90 with CUDNN_FIRST and torch <= 2.11 rules
RULES = [
    ("fp32", 64, False, 12, 12, "efficient"),  # GPT-2: flash needs 16-bit, mem-efficient takes fp32
    ("fp32", 64, True, 12, 12, "efficient"),  # mem-efficient supports dropout (philox seed, no mask)
    ("fp32", 64, False, 32, 8, "math"),  # GQA: mem-efficient refuses enable_gqa with fewer k/v heads
    ("fp32", 64, True, 32, 8, "math"),
    ("fp32", 66, False, 12, 12, "math"),  # head_dim not a multiple of 4 (fp32 gemm alignment)
    ("fp32", 68, False, 12, 12, "efficient"),
    ("fp32", 512, False, 12, 12, "efficient"),  # no head_dim limit for mem-efficient
    ("bf16", 64, False, 12, 12, "cudnn"),
    ("bf16", 128, False, 32, 8, "cudnn"),  # cuDNN accepts GQA
    ("bf16", 64, True, 12, 12, "flash"),  # p = 0.1 is not a multiple of 1/16: cuDNN refuses
    ("bf16", 64, True, 32, 8, "flash"),  # flash accepts GQA and dropout
    ("bf16", 100, False, 12, 12, "flash"),  # not a multiple of 8: flash pads
    ("bf16", 192, False, 32, 8, "flash"),  # over cuDNN's 128
    ("bf16", 256, True, 12, 12, "flash"),
    ("bf16", 264, False, 12, 12, "efficient"),  # over flash's 256, a multiple of 8
    ("bf16", 264, False, 32, 8, "math"),  # ... but grouped
    ("bf16", 260, False, 12, 12, "math"),  # over 256, not a multiple of 8
    ("fp16", 64, False, 32, 8, "cudnn"),
]


@pytest.mark.parametrize("precision,head_dim,dropout,n_heads,n_kv_heads,kernel", RULES)
def test_rule_table(precision, head_dim, dropout, n_heads, n_kv_heads, kernel):
    o = _opts(precision=precision, dropout=dropout)
    values = {"head_dim": head_dim, "n_heads": n_heads, "n_kv_heads": n_kv_heads}
    assert pytorch.attention_kernel(None, o, values) == kernel
    # the autocast precision gives bf16 q/k/v: the same choice as bf16
    if precision == "bf16":
        mixed = next(p for p in ("bf16-mixed", "bf16-amp") if p in _precisions())
        assert pytorch.attention_kernel(None, _opts(precision=mixed, dropout=dropout), values) == kernel
    # the memory term follows the kernel
    got = pytorch._scores_bytes_per_token(o).xreplace(_subs(values))
    want = pytorch._eager_scores_bytes_per_token(o) if kernel == "math" else 4 * a + 8 * h
    assert sympy.simplify(got - want.xreplace(_subs(values))) == 0


def _precisions():
    from engine.options import PRECISIONS

    return PRECISIONS


def _subs(values):
    from engine.symbolic.symbols import symbol

    return {symbol(k): v for k, v in values.items()}


def test_eager_and_flash_options_unchanged():
    for precision in ("fp32", "bf16"):
        assert pytorch.attention_kernel(None, _opts(attention="eager", precision=precision)) == "eager"
        assert pytorch.attention_kernel(None, _opts(attention="flash", precision=precision)) == "flash"
        assert pytorch._scores_bytes_per_token(_opts(attention="flash", precision=precision)) == 4 * a + 8 * h
        eager = pytorch._scores_bytes_per_token(_opts(attention="eager", precision=precision))
        assert eager == pytorch._eager_scores_bytes_per_token(_opts(precision=precision))
        assert sympy.degree(sympy.expand(eager), s) == 1 and not isinstance(eager, sympy.Piecewise)


def test_symbolic_head_dim_is_a_piecewise():
    term = pytorch._scores_bytes_per_token(_opts(precision="fp32"))
    assert isinstance(term, sympy.Piecewise)
    with pytest.raises(ValueError):
        pytorch.attention_kernel(None, _opts(precision="fp32"))  # head_dim and heads unknown


@pytest.mark.parametrize("dropout", [False, True])
def test_fp32_gqa_sdpa_is_eager(dropout):
    arch = architecture("mistral")  # 32 query heads, 8 k/v heads, head_dim 128
    assert arch.values["n_kv_heads"] != arch.values["n_heads"]
    values = {"batch": 1, "seq_len": 512}
    sdpa = memory_estimate(arch, MemoryOptions(attention="sdpa", precision="fp32", dropout=dropout), values)
    eager = memory_estimate(arch, MemoryOptions(attention="eager", precision="fp32", dropout=dropout), values)
    assert sdpa["attention_kernel"] == "math" and eager["attention_kernel"] == "eager"
    assert sdpa["peak"] == eager["peak"] and sdpa["breakdown"] == eager["breakdown"]
    # 16-bit autocast: a fused kernel, no S^2 term
    mixed = next(p for p in ("bf16-mixed", "bf16-amp") if p in _precisions())
    fused = memory_estimate(arch, MemoryOptions(attention="sdpa", precision=mixed, dropout=dropout), values)
    assert fused["attention_kernel"] == ("flash" if dropout else "cudnn")


def test_gpt2_mha_keeps_a_fused_kernel():
    arch = architecture("gpt2")
    for precision, kernel in (("fp32", "efficient"), ("bf16", "cudnn")):
        est = memory_estimate(arch, MemoryOptions(precision=precision), {"batch": 4, "seq_len": 1024})
        assert est["attention_kernel"] == kernel


def test_memory_json_reports_the_kernel(run_cli):
    cli = run_cli
    r = cli("memory", "--arch", "mistral", "--batch", "1", "--seq-len", "512", "--attention", "sdpa", "--precision",
            "fp32", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["attention_kernel"] == "math" and {"peak", "moment", "breakdown"} <= set(out)
    r = cli("memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "512", "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    assert "efficient attention" in r.stdout.splitlines()[0]
