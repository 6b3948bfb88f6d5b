"""The hardware catalog: every required device, sourced; precision -> peak; custom TOML devices and their errors."""

from __future__ import annotations

import json
import textwrap
from importlib import resources

import pytest

from engine.catalog.hardware import (ALIASES, DEVICES, DTYPES, PRECISION_DTYPE, Device, device, device_names,
                                     load_catalog)
from engine.errors import SpecError

REQUIRED = ("v100-32gb", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h800", "h200", "b200", "mi250x",
            "mi300x", "tpu-v4", "tpu-v5e", "tpu-v5p", "l40s", "rtx-4090")


def catalog_data() -> dict:
    return json.loads(resources.files("engine.catalog").joinpath("data/hardware.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", REQUIRED)
def test_required_device_present_positive_and_sourced(name):
    dev = DEVICES[name]
    assert dev.name == name and dev.vendor and dev.description
    assert set(dev.peak_flops) == set(DTYPES)
    assert any(dev.peak_flops[d] for d in ("bf16", "fp16"))
    assert all(v is None or v > 0 for v in dev.peak_flops.values())
    for value in (dev.hbm_bytes, dev.hbm_bandwidth, dev.intra_bandwidth, dev.inter_bandwidth, dev.devices_per_node):
        assert value > 0
    assert isinstance(dev.hbm_bytes, int) and isinstance(dev.devices_per_node, int)
    assert any(s.startswith("https://") for s in dev.sources)
    assert dev.notes


def test_catalog_never_points_at_repository_paths():
    text = resources.files("engine.catalog").joinpath("data/hardware.json").read_text(encoding="utf-8")
    assert "shared/" not in text


def test_units_are_si():
    h100 = device("h100-sxm")
    assert h100.peak("bf16") == 989.4e12
    assert h100.hbm_bytes == 80 * 10**9
    assert h100.hbm_bandwidth == 3.35e12
    assert h100.intra_bandwidth == 450e9
    assert h100.inter_bandwidth == 50e9
    assert device("tpu-v4").hbm_bytes == 32 * 2**30  # Google states GiB
    assert device("mi250x").hbm_bytes == 64 * 10**9  # one GCD


def test_dense_not_sparse_peaks():
    # the datasheets' headline figures are 2:4-sparse; the catalog holds half of them
    assert device("a100-80gb").peak("bf16") == 312e12
    assert device("h100-sxm").peak("fp8") == 1978.9e12
    assert device("b200").peak("bf16") == 2250e12


@pytest.mark.parametrize("alias,name", [("h100", "h100-sxm"), ("a100", "a100-80gb"), ("H100", "h100-sxm"),
                                        ("A100_40GB", "a100-40gb"), ("V100", "v100-32gb"), ("v5p", "tpu-v5p"),
                                        ("MI300X", "mi300x")])
def test_aliases_and_case(alias, name):
    assert device(alias) is DEVICES[name]


def test_every_alias_resolves():
    for alias, name in ALIASES.items():
        assert device(alias) is DEVICES[name]


def test_peak_by_precision():
    a100 = device("a100-80gb")
    assert a100.peak("fp32") == 19.5e12  # plain fp32: PyTorch leaves TF32 matmuls off by default
    assert a100.peak("tf32") == 156e12
    for precision in ("bf16", "bf16-mixed", "bf16-true"):
        assert a100.peak(precision) == 312e12
    for precision in ("fp16", "fp16-mixed", "fp16-true"):
        assert a100.peak(precision) == 312e12
    assert device("h100").peak("fp8") == 1978.9e12


def test_every_engine_precision_has_a_dtype():
    from engine.options import PRECISIONS
    assert set(PRECISIONS) <= set(PRECISION_DTYPE)


def test_missing_dtype_raises_spec_error_naming_the_device():
    with pytest.raises(SpecError, match="a100-80gb.*no fp8") as err:
        device("a100").peak("fp8")
    assert "bf16" in str(err.value)  # says what it has
    with pytest.raises(SpecError, match="v100-32gb.*no bf16"):
        device("v100").peak("bf16-mixed")
    assert device("v100").peak("fp16-mixed") == 125e12


def test_unknown_precision_is_a_value_error():
    with pytest.raises(ValueError, match="unknown precision 'int3'"):
        device("h100").peak("int3")


def test_values():
    v = device("h100-sxm").values("bf16-mixed")
    assert v == {"peak_flops": 989.4e12, "attention_peak_flops": 989.4e12, "matmul_ceiling": 0.801,
                 "attention_ceiling": 0.801, "attention_curve_peak_flops": 333.5e12, "attention_half_tokens": 532,
                 "hbm_bandwidth": 3.35e12, "link_bandwidth": 450e9, "inter_bandwidth": 50e9, "devices_per_node": 8,
                 "hbm_capacity": 80 * 10**9}


def test_fp8_attention_runs_at_the_16_bit_peak():
    """Only the linear layers run in fp8 (Transformer Engine, torchao Float8Linear): attention keeps bf16's peak."""
    v = device("h100-sxm").values("fp8")
    assert v["peak_flops"] == 1978.9e12 and v["attention_peak_flops"] == 989.4e12


def test_matmul_ceiling_is_the_measured_mamf_or_one():
    assert device("a100-80gb").values("bf16")["matmul_ceiling"] == 0.859
    assert device("mi300x").values("bf16")["matmul_ceiling"] == 0.601
    assert device("tpu-v5e").values("bf16")["matmul_ceiling"] == 0.923  # XLA, 8192^3 (Bekman's table)
    # none published for v4 and v5p: v5e's XLA figure (same MXU design and compiler), their notes say so
    assert device("tpu-v5p").values("bf16")["matmul_ceiling"] == 0.923 and "v5e's" in DEVICES["tpu-v5p"].notes
    assert device("tpu-v4").values("bf16")["matmul_ceiling"] == 0.923 and "v5e's" in DEVICES["tpu-v4"].notes
    assert device("h200").values("bf16")["matmul_ceiling"] < 1 and device("rtx-4090").values("bf16")[
        "matmul_ceiling"] == 1.0  # none published: the datasheet peak


def test_tpus_carry_their_own_matmul_efficiency():
    """A TPU's GEMMs run at TPU_MATMUL_EFFICIENCY of its ceiling (fitted on MaxText's v5e table), a GPU's at the
    step-time default: the device's values give it only on a TPU."""
    from engine.catalog.hardware import TPU_MATMUL_EFFICIENCY

    for name in ("tpu-v4", "tpu-v5e", "tpu-v5p"):
        assert device(name).values("bf16", "splash")["matmul_efficiency"] == TPU_MATMUL_EFFICIENCY == 0.90
    assert "matmul_efficiency" not in device("h100-sxm").values("bf16")
    assert all("ml-engineering" in " ".join(DEVICES[n].sources) for n in DEVICES if DEVICES[n].mamf_fraction < 1)


def test_fp8_matmuls_use_the_fp8_ceiling_and_attention_the_16_bit_one():
    """fp8 runs their GEMMs in fp8: Bekman's MAMF table gives H100 SXM 0.709 of the fp8 peak (0.801 of bf16's), H200
    0.734, B200 0.763 (0.776 bf16); attention stays 16-bit, so it keeps the bf16 ceiling."""
    h100 = device("h100-sxm")
    assert h100.mamf_fp8 == 0.709 and h100.values("fp8")["matmul_ceiling"] == 0.709
    assert h100.values("fp8")["attention_ceiling"] == h100.values("bf16")["matmul_ceiling"] == 0.801
    assert device("h200").values("fp8")["matmul_ceiling"] == 0.734
    assert device("b200").values("fp8")["matmul_ceiling"] == 0.763
    assert device("b200").values("bf16")["matmul_ceiling"] == 0.776
    assert all("ml-engineering" in " ".join(DEVICES[n].sources) for n in DEVICES if DEVICES[n].mamf_fp8 is not None)


def test_a_device_without_an_fp8_figure_uses_the_bf16_one_and_says_so():
    for name, dev in DEVICES.items():
        if dev.peak_flops["fp8"] is not None and dev.mamf_fp8 is None:
            assert dev.values("fp8")["matmul_ceiling"] == dev.mamf_fraction, name
            assert "no fp8 MAMF published" in dev.notes, name
    assert device("h800").values("fp8")["matmul_ceiling"] == device("h800").mamf_fraction == 0.801
    assert device("h800").mamf_fp8 is None


def test_a_custom_device_takes_mamf_fp8(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text(GOOD_TOML.replace('vendor = "Acme"', 'vendor = "Acme"\nmamf_fraction = 0.8\nmamf_fp8 = 0.7'))
    dev = device(str(f))
    assert dev.values("fp8")["matmul_ceiling"] == 0.7 and dev.values("bf16")["matmul_ceiling"] == 0.8
    assert dev.values("fp8")["attention_ceiling"] == 0.8


@pytest.mark.parametrize("bad", ["1.2", "0", "true", '"0.7"'])
def test_a_bad_mamf_fp8_is_refused(tmp_path, bad):
    f = tmp_path / "g.toml"
    f.write_text(GOOD_TOML.replace('vendor = "Acme"', f'vendor = "Acme"\nmamf_fraction = 0.8\nmamf_fp8 = {bad}'))
    with pytest.raises(SpecError, match=r"mamf_fp8: must be a number in \(0, 1\]"):
        device(str(f))


def test_mamf_fp8_without_an_fp8_peak_is_refused(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text(GOOD_TOML.replace('vendor = "Acme"', 'vendor = "Acme"\nmamf_fraction = 0.8\nmamf_fp8 = 0.7')
                 .replace("fp8 = 2000\n", ""))
    with pytest.raises(SpecError, match=r"mamf_fp8: given, but the device has no fp8 peak"):
        device(str(f))


def test_a_mamf_fraction_above_one_is_refused(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text(GOOD_TOML.replace('vendor = "Acme"', 'vendor = "Acme"\nmamf_fraction = 1.2'))
    with pytest.raises(SpecError, match=r"mamf_fraction: must be a number in \(0, 1\]"):
        device(str(f))


def test_unknown_name_lists_valid_names():
    with pytest.raises(SpecError) as err:
        device("h1000")
    message = str(err.value)
    assert message.startswith("--gpu: h1000: unknown device; valid: ")
    assert all(name in message for name in device_names())
    assert "TOML" in message
    assert device_names() == sorted(DEVICES) and set(REQUIRED) <= set(device_names())


@pytest.mark.parametrize("name, guess", [("h100-sxn", "h100-sxm"), ("a100-80gbb", "a100-80gb"), ("H1000", "h100-sxm")])
def test_unknown_name_suggests_the_closest_device(name, guess):
    with pytest.raises(SpecError, match=f"did you mean {guess}\\?$"):
        device(name)


GOOD_TOML = """
name = "my-gpu"
vendor = "Acme"
hbm_gb = 96
hbm_bandwidth_gbps = 4000
intra_node_gbps = 400
devices_per_node = 4
inter_node_gbps = 50
sources = ["https://example.com/datasheet"]
[peak_tflops]
bf16 = 1000
fp8 = 2000
"""


def write(tmp_path, text, name="dev.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_custom_toml_device(tmp_path):
    dev = device(str(write(tmp_path, GOOD_TOML)))
    assert isinstance(dev, Device)
    assert dev.name == "my-gpu" and dev.vendor == "Acme"
    assert dev.peak("bf16-mixed") == 1e15 and dev.peak("fp8") == 2e15
    assert dev.hbm_bytes == 96 * 10**9 and dev.devices_per_node == 4
    assert dev.values("bf16")["link_bandwidth"] == 400e9
    with pytest.raises(SpecError, match="no fp16"):
        dev.peak("fp16")


def test_custom_toml_name_defaults_to_stem_and_gib(tmp_path):
    text = GOOD_TOML.replace('name = "my-gpu"\n', "").replace("hbm_gb = 96", "hbm_gib = 64")
    dev = device(str(write(tmp_path, text, "box.toml")))
    assert dev.name == "box" and dev.hbm_bytes == 64 * 2**30


@pytest.mark.parametrize("change,field,what", [
    (("hbm_bandwidth_gbps = 4000\n", ""), "hbm_bandwidth_gbps", "missing"),
    (("devices_per_node = 4", "devices_per_node = -4"), "devices_per_node", "positive integer"),
    (("devices_per_node = 4", "devices_per_node = 2.5"), "devices_per_node", "positive integer"),
    (("inter_node_gbps = 50", "inter_node_gbps = -50"), "inter_node_gbps", "positive number"),
    (("inter_node_gbps = 50", 'inter_node_gbps = "fast"'), "inter_node_gbps", "positive number"),
    (("bf16 = 1000", "bf16 = 0"), "peak_tflops.bf16", "positive number"),
    (("fp8 = 2000", "fp6 = 4000"), "peak_tflops.fp6", "unknown dtype"),
    (("vendor = ", "vendr = "), "vendr", "unknown field"),
    (("hbm_gb = 96", "hbm_gb = 96\nhbm_gib = 90"), "hbm_gb", "exactly one"),
    (("bf16 = 1000\nfp8 = 2000", "fp8 = 2000"), "peak_tflops", "needs bf16 or fp16"),
])
def test_bad_toml_names_the_field(tmp_path, change, field, what):
    path = write(tmp_path, GOOD_TOML.replace(*change))
    with pytest.raises(SpecError, match=what) as err:
        device(str(path))
    assert err.value.source == str(path)
    assert err.value.key == field


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        device(str(tmp_path / "absent.toml"))
    with pytest.raises(SpecError, match="not valid TOML"):
        device(str(write(tmp_path, "hbm_gb = = 3")))


def test_catalog_validation_names_device_and_field():
    data = catalog_data()
    del data["devices"]["h100-sxm"]["sources"]
    with pytest.raises(SpecError, match="sources") as err:
        load_catalog(data)
    assert err.value.key == "devices.h100-sxm.sources"
    data = catalog_data()
    data["devices"]["a100-80gb"]["intra_node_gbps"] = 0
    with pytest.raises(SpecError) as err:
        load_catalog(data)
    assert err.value.key == "devices.a100-80gb.intra_node_gbps"
    data = catalog_data()
    data["aliases"]["x"] = "nope"
    with pytest.raises(SpecError) as err:
        load_catalog(data)
    assert err.value.key == "aliases.x"
