"""Host (CPU) offload of model states: ZeRO-Offload (optimizer) and ZeRO-Infinity / FSDP parameter offload (params).

Hand-computed bytes for GPT-2 (P = 124,439,808 parameters; the largest unit gathered at once is the embedding plus
positions, 38,597,376 + 786,432 = 39,383,808 parameters, larger than a layer's 7,087,872), AdamW, dp = 4.
"""

from __future__ import annotations

import json

import pytest

from engine.catalog.model import architecture, estimate_formulas, memory_estimate, memory_options
from engine.errors import SpecError
from engine.symbolic.memory import MEMORY_MODELS

P = 124_439_808
UNIT = 38_597_376 + 786_432
DP = 4
SHAPE = {"batch": 2, "seq_len": 128, "dp": DP}
PARTS = ("weights", "gradients", "master", "optimizer")


def _states(precision, zero, offload, model="pytorch"):
    """Device and host model states (bytes) from the formula set."""
    arch = architecture("gpt2")
    o = memory_options(precision=precision, zero=zero, offload=offload, memory_model=model)
    fs = estimate_formulas(arch.family, arch.structure, o)
    given = {**arch.values, **SHAPE}
    device = {k: fs.evaluate_exact(f"mem_{k}", given) for k in PARTS}
    host = {k: fs.evaluate_exact(f"mem_host_{k}", given) for k in PARTS} if offload != "none" else {}
    return device, host, fs, given


# (precision, zero, offload): device {weights, gradients, master, optimizer}, host {...}
HAND = {
    # DeepSpeed bf16: 16-bit weights and grads, fp32 master and AdamW states
    ("bf16", 2, "none"): ((2 * P, 2 * P // DP, 4 * P // DP, 8 * P // DP), None),
    ("bf16", 2, "optimizer"): ((2 * P, 2 * UNIT, 0, 0), (0, 4 * P // DP, 4 * P // DP, 8 * P // DP)),
    ("bf16", 3, "optimizer"): ((2 * P // DP, 2 * UNIT, 0, 0), (0, 4 * P // DP, 4 * P // DP, 8 * P // DP)),
    ("bf16", 3, "params"): ((2 * UNIT, 2 * UNIT, 0, 0), (2 * P // DP, 4 * P // DP, 4 * P // DP, 8 * P // DP)),
    # fp32: no master copy
    ("fp32", 2, "none"): ((4 * P, 4 * P // DP, 0, 8 * P // DP), None),
    ("fp32", 2, "optimizer"): ((4 * P, 4 * UNIT, 0, 0), (0, 4 * P // DP, 0, 8 * P // DP)),
    ("fp32", 3, "params"): ((4 * UNIT, 4 * UNIT, 0, 0), (4 * P // DP, 4 * P // DP, 0, 8 * P // DP)),
}


@pytest.mark.parametrize("key", sorted(HAND))
def test_hand_computed_bytes(key):
    device, host, _, _ = _states(*key)
    want_device, want_host = HAND[key]
    assert [device[k] for k in PARTS] == list(want_device)
    if want_host is not None:
        assert [host[k] for k in PARTS] == list(want_host)


@pytest.mark.parametrize("model", sorted(MEMORY_MODELS))
@pytest.mark.parametrize("precision", ["bf16", "fp32", "bf16-mixed"])
@pytest.mark.parametrize("zero, offload", [(2, "optimizer"), (3, "optimizer"), (3, "params")])
def test_offload_moves_bytes(model, precision, zero, offload):
    """Host + device states = the states without offload, less the device's in-flight unit (gathered weights,
    gradient bucket), plus the gradients widened to fp32 on the host (DeepSpeed's fp32 gradient partition)."""
    none, _, fs_none, given = _states(precision, zero, "none", model)
    device, host, fs, _ = _states(precision, zero, offload, model)
    bits_grad = int(fs.defaults["bits_grad"])
    in_flight = UNIT * bits_grad // 8 + (UNIT * int(fs.defaults["bits_weight"]) // 8 if offload == "params" else 0)
    widening = (32 - bits_grad) * P // 8 // DP
    assert sum(device.values()) + sum(host.values()) - in_flight == sum(none.values()) + widening
    assert host["master"] == none["master"] and host["optimizer"] == none["optimizer"]
    assert host["weights"] == (none["weights"] if offload == "params" else 0)
    assert fs.evaluate_exact("mem_host_peak", given) == fs.evaluate_exact("mem_host_model_states", given) == \
        sum(host.values())
    # the device peak drops; the estimate reports the host apart
    arch = architecture("gpt2")
    o = memory_options(precision=precision, zero=zero, offload=offload, memory_model=model)
    est = memory_estimate(arch, o, SHAPE)
    base = memory_estimate(arch, memory_options(precision=precision, zero=zero, memory_model=model), SHAPE)
    assert est["peak"] < base["peak"]
    assert est["host_peak"] == sum(est["host"].values()) == sum(host.values())
    assert sum(est["breakdown"].values()) == est["peak"]
    assert "host_peak" not in base and "host" not in base


def test_offload_none_is_today():
    arch = architecture("gpt2")
    for model in sorted(MEMORY_MODELS):
        a = memory_estimate(arch, memory_options(memory_model=model, zero=2), SHAPE)
        b = memory_estimate(arch, memory_options(memory_model=model, zero=2, offload="none"), SHAPE)
        assert a == b
        fs = estimate_formulas(arch.family, arch.structure, memory_options(memory_model=model))
        assert not [q for q in fs.quantities if q.startswith("mem_host")]


def test_cli_json_keys(run_cli):
    base = ["memory", "--arch", "gpt2", "--batch", "2", "--seq-len", "128", "--dp", "4", "--precision", "bf16",
            "--zero", "3", "--json"]
    r = run_cli(*base, "--offload", "params")
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)
    assert est["host"] == {"weights": 2 * P // DP, "gradients": 4 * P // DP, "master": 4 * P // DP,
                           "optimizer": 8 * P // DP}
    assert est["host_peak"] == 18 * P // DP
    assert est["breakdown"]["weights"] == 2 * UNIT and est["breakdown"]["master"] == 0
    plain = json.loads(run_cli(*base).stdout)
    assert "host_peak" not in plain and est["peak"] < plain["peak"]
    text = run_cli(*base[:-1], "--offload", "optimizer")
    assert text.returncode == 0 and "host (offload optimizer)" in text.stdout


def test_sweep_spec_with_offload(write_spec):
    from engine.request.spec import load_spec
    from engine.runtime.sweep import run

    req = load_spec(write_spec('''
        [sweep]
        arch = "gpt2"
        quantities = ["mem_peak", "mem_host_peak", "mem_host_optimizer", "mem_host_gradients"]
        [options]
        precision = "bf16"
        zero = 2
        offload = "optimizer"
        [axes]
        dp = [1, 4]
        batch = [2]
        seq_len = [128]
    '''))
    ds = run(req).dataset
    assert ds.sel(dp=4, batch=2, seq_len=128)["mem_host_optimizer"].item() == 8 * P // DP
    assert ds.sel(dp=1, batch=2, seq_len=128)["mem_host_gradients"].item() == 4 * P
    assert ds.sel(dp=4, batch=2, seq_len=128)["mem_host_peak"].item() == 16 * P // DP
    arch = architecture("gpt2")
    est = memory_estimate(arch, memory_options(precision="bf16", zero=2, offload="optimizer"), SHAPE)
    assert ds.sel(dp=4, batch=2, seq_len=128)["mem_peak"].item() == est["peak"]


@pytest.mark.parametrize("args, words", [
    (["--mode", "inference", "--offload", "optimizer"], "offload applies to training"),
    (["--offload", "params", "--zero", "2"], "offload params needs zero 3"),
    (["--offload", "optimizer"], "offload optimizer needs zero 1, 2 or 3"),
    (["--offload", "cpu"], "invalid choice"),
])
def test_bad_input_is_one_line(args, words, run_cli):
    r = run_cli("memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert words in r.stderr
    if words != "invalid choice":  # argparse prints its usage first
        assert len(r.stderr.strip().splitlines()) == 1


def test_bad_input_in_python_and_spec(write_spec):
    from engine.request.spec import load_spec

    with pytest.raises(SpecError, match="offload params needs zero 3"):
        memory_options(offload="params", zero=1)
    with pytest.raises(SpecError, match="offload applies to training"):
        memory_options(mode="inference", offload="params")
    with pytest.raises(Exception, match="offload"):
        load_spec(write_spec('''
            [sweep]
            arch = "gpt2"
            quantities = ["mem_peak"]
            [options]
            offload = "params"
            [axes]
            batch = [1]
            seq_len = [8]
        '''))
