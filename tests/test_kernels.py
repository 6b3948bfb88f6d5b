"""engine/catalog/kernels.py and its data: published kernel figures, their fits and their citations."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from engine.catalog import kernels

ROOT = Path(__file__).resolve().parent.parent
DATA_FILE = ROOT / "engine" / "catalog" / "data" / "kernels.json"
DATA = json.loads(DATA_FILE.read_text(encoding="utf-8"))


def _sat(n, r, h):
    return r * n / (n + h)


def _curve(lib, dev, causal, hd):
    (c,) = [c for c in DATA["attention"]["curves"]
            if (c["library"], c["device"], c["causal"], c["head_dim"]) == (lib, dev, causal, hd)]
    return c


def test_every_attention_fit_reproduces_its_points():
    for c in DATA["attention"]["curves"]:
        f = c["fit"]
        worst = max(abs(_sat(p["seq_len"], f["r_max_tflops"], f["n_half"]) / p["tflops"] - 1) for p in c["points"])
        assert worst <= f["max_rel_residual"] + 1e-9, (c["library"], c["device"], c["causal"], c["head_dim"])
        assert len(c["points"]) >= 5


def test_derived_points_follow_their_formula():
    derived = [c for c in DATA["attention"]["curves"] if c["derived"]]
    assert {c["library"] for c in derived} == {"flash3", "cudnn"}
    for c in derived:
        assert "3.5 / (1/r_fwd + 2.5/r_bwd)" in c["formula"]
        for p in c["points"]:
            assert p["derived"] is True
            assert p["tflops"] == pytest.approx(3.5 / (1 / p["fwd_tflops"] + 2.5 / p["bwd_tflops"]), abs=0.051)


def test_every_gemm_fit_reproduces_its_points():
    gg = DATA["grouped_gemm"]
    by = collections.defaultdict(list)
    for p in gg["grouped_points"]:
        if p["readme_commit"] == "a6d97a1":
            by[f"n={p['n']},k={p['k']}"].append((p["m_per_group"], p["tflops"]))
    dense = collections.defaultdict(list)
    for p in gg["dense_points"]:
        dense[f"n={p['n']},k={p['k']}"].append((p["m"], p["tflops_initial"]))
    for fits, pts in ((gg["fits"]["grouped_initial_release_per_shape"], by),
                      (gg["fits"]["dense_initial_per_shape"], dense)):
        for shape, f in fits.items():
            worst = max(abs(_sat(m, f["r_max_tflops"], f["m_half"]) / v - 1) for m, v in pts[shape])
            assert worst <= f["max_rel_residual"] + 1e-9, shape


def test_flashattention2_fits_near_the_earlier_study():
    a100 = _curve("flash", "a100-80gb", True, 128)["fit"]
    assert a100["r_max_tflops"] == pytest.approx(194, abs=4)
    assert a100["n_half"] == pytest.approx(487, abs=20)
    h100 = _curve("flash", "h100-sxm", True, 128)["fit"]
    assert h100["r_max_tflops"] == pytest.approx(334, abs=4)
    assert h100["n_half"] == pytest.approx(534, abs=20)


def test_short_chunks_run_at_about_half_rate():
    # what context parallelism pays: 512-token chunks against 16k-token sequences
    c = kernels.attention_curve("flash", "a100-80gb", head_dim=128, causal=True)
    assert c.rate(512) / c.rate(16384) == pytest.approx(0.5, abs=0.06)
    assert c.r_max_flops == pytest.approx(193.5e12, rel=0.01)
    assert c.n_half == pytest.approx(484, abs=5)


def test_every_record_has_a_citation():
    sources = DATA["sources"]
    assert all(s.get("citation") for s in sources.values())
    seen = 0

    def walk(x):
        nonlocal seen
        if isinstance(x, dict):
            for k, v in x.items():
                if k in ("source", "fwd_source", "bwd_source") and isinstance(v, str):
                    assert v in sources, v
                    seen += 1
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for section in ("attention", "grouped_gemm", "matmul_ceilings", "collectives"):
        walk(DATA[section])
    for c in DATA["attention"]["curves"]:
        for p in c["points"]:
            assert ("source" in p) or ("fwd_source" in p and "bwd_source" in p)
            assert isinstance(p.get("workshop_index", p.get("fwd_workshop_index")), int)
    for p in DATA["grouped_gemm"]["grouped_points"] + DATA["grouped_gemm"]["dense_points"]:
        assert "source" in p and isinstance(p["workshop_index"], int)
    for p in DATA["matmul_ceilings"]["records"]:
        assert "source" in p and isinstance(p["workshop_index"], int)
    for algo in DATA["collectives"]["bus_fraction"].values():
        for e in algo.values():
            assert "source" in e and isinstance(e["workshop_index"], int)
    assert seen > 250


def test_no_workshop_paths_in_the_product():
    for path in (DATA_FILE, ROOT / "engine" / "catalog" / "kernels.py"):
        assert "shared/" not in path.read_text(encoding="utf-8"), path


def test_unknown_library_names_the_valid_ones():
    with pytest.raises(ValueError) as err:
        kernels.attention_curve("flashy", "h100-sxm")
    for name in ("flash", "flash1", "flash3", "cudnn", "eager", "splash"):
        assert name in str(err.value)


def test_stand_in_devices_and_head_dims_say_so():
    h200 = kernels.attention_curve("flash", "h200")
    h100 = kernels.attention_curve("flash", "h100-sxm")
    assert (h200.r_max_flops, h200.n_half) == (h100.r_max_flops, h100.n_half)
    assert "h200" in h200.source and "H100" in h200.source
    assert "no published curve" not in h100.source
    a40 = kernels.attention_curve("flash", "a100-40gb", head_dim=64, causal=False)
    assert "A100 80GB" in a40.source and "head_dim 64" in a40.fitted_on
    odd = kernels.attention_curve("flash", "h100", head_dim=96)  # catalog alias; tie -> 128
    assert "head_dim 96 not measured" in odd.source and "head_dim 128" in odd.fitted_on
    assert "derived" in kernels.attention_curve("cudnn", "h800").source


@pytest.mark.parametrize("lib, dev", [("splash", "tpu-v5p"), ("flash", "tpu-v5e"), ("flash", "b200"),
                                      ("flash", "mi300x"), ("flash3", "a100-80gb"), ("cudnn", "v4")])
def test_no_figures_means_none(lib, dev):
    assert kernels.attention_curve(lib, dev) is None


def test_gemm_knees():
    g = kernels.grouped_gemm_half("grouped")
    d = kernels.grouped_gemm_half("dense")
    assert 90 < g.m_half < 140 and 190 < d.m_half < 240
    assert 0.6 < g.peak_fraction < 0.75 and g.r_max_flops == pytest.approx(g.peak_fraction * 1979e12, rel=0.01)
    assert "DeepGEMM" in g.source
    with pytest.raises(ValueError, match="dense, grouped"):
        kernels.grouped_gemm_half("sparse")


def test_mamf_and_collectives():
    assert kernels.mamf("h100-sxm", "bf16") == pytest.approx(0.803)
    assert kernels.mamf("h100-sxm", "fp8") == pytest.approx(0.709)
    assert kernels.mamf("h200", "fp8") == pytest.approx(0.734)
    assert kernels.mamf("a100-80gb", "fp8") is None
    assert kernels.mamf("tpu-v5e", "bf16") == pytest.approx(0.923)
    assert kernels.mamf("tpu-v4", "bf16") is None
    assert kernels.bus_fraction("ring_all_reduce", "nvlink4") == pytest.approx(367.2 / 450, abs=1e-3)
    assert kernels.bus_fraction("ring_all_reduce", "nvlink3") == pytest.approx(234.89 / 300, abs=1e-3)
    assert kernels.bus_fraction("nvls_all_reduce", "nvlink4") > 1
    assert 0.7 < kernels.bus_fraction("ring_all_reduce", "efa") == kernels.bus_fraction("ring_all_reduce", "ib") < 0.8
    with pytest.raises(ValueError, match="ring_all_reduce/nvlink4"):
        kernels.bus_fraction("nvls_all_reduce", "nvlink3")
    assert 1e-6 < kernels.alpha_per_step("intra_node_nvlink4") < 1e-5
