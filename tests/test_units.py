"""Units: every symbol and every quantity of every formula set carries a UDUNITS-2 unit (the netCDF ``units``
attribute; cf_units parses them as netCDF readers do) that makes dimensional sense for what it names."""

from __future__ import annotations

import re
from functools import lru_cache

import pytest

from engine.catalog.families import FAMILIES
from engine.catalog.model import architecture, estimate_formulas, formula_set
from engine.errors import SpecError
from engine.symbolic.formulas import FORMULA_SETS, build_formula_set, options_for
from engine.options import MEMORY_OPTIONS as OPTIONS, MemoryOptions
from engine.symbolic.symbols import SYMBOLS

cf_units = pytest.importorskip("cf_units")

# what a name says it measures -> the unit it must equal (UDUNITS has no FLOP: FLOPs are counts, FLOP/s is 1/s)
DIMENSIONS = [
    (re.compile(r"^(mem_|bytes_)|^(kv_cache_per_token|hbm_capacity)$"), "byte"),
    (re.compile(r"^bits_"), "bit"),
    (re.compile(r"_bandwidth$"), "byte/s"),
    (re.compile(r"^time_|^(step_time|ttft|tpot|train_seconds)$|_latency$"), "s"),
    (re.compile(r"peak_flops$|^tokens_per_s(_per_gpu|_per_user)?$"), "s-1"),
    (re.compile(r"_per_mw$"), "s-1 MW-1"),
    (re.compile(r"_kw$"), "kW"),
    (re.compile(r"^cost_per_hour$"), "h-1"),
]
# Combinations beyond one option at a time that build quantities of their own
COMBINATIONS = [dict(mode="inference", kv_layout="expanded"), dict(zero=1, offload="optimizer"),
                dict(zero=3, offload="params"), dict(finetune="lora", precision="bf16-true"),
                dict(finetune="qlora", precision="bf16-true"), dict(precision="bf16", memory_model="korthikanti"),
                dict(optimizer="paged_adamw", precision="bf16-true")]


def expected(name: str) -> str:
    """The unit a name's dimension asks for; dimensionless ("1") unless it names bytes, bits, time or a rate."""
    return next((unit for pattern, unit in DIMENSIONS if pattern.search(name)), "1")


def memory_options() -> list[MemoryOptions]:
    """Every valid option value one at a time, and the combinations that need each other."""
    out = [MemoryOptions()]
    for key, spec in OPTIONS.items():
        for value in spec.choices:
            try:
                out.append(MemoryOptions().with_options(**{key: value}))
            except ValueError:  # needs another option (offload without zero): among COMBINATIONS
                pass
    out += [MemoryOptions().with_options(**combo) for combo in COMBINATIONS]
    return list(dict.fromkeys(out))


# one model type of each kind of layer (GPT block, LLaMA block, MLA + MoE + MTP, Mamba-2, linear attention,
# sliding windows with sinks): every option is built on each; every other type with the default options
KINDS = ("gpt2", "llama", "deepseek_v3", "nemotron_h", "qwen3_next", "gpt_oss")


@lru_cache(maxsize=1)
def quantity_units() -> dict[str, set[str]]:
    """{quantity name: the units it carries} over every formula set and its options, every model type's
    structure, and every memory, compute and step-time option."""
    units: dict[str, set[str]] = {}

    def add(fs):
        for q in fs.quantities.values():
            units.setdefault(q.name, set()).add(q.units)

    for name in FORMULA_SETS:
        add(build_formula_set(name))
        for key, spec in options_for(name).items():
            for value in spec.choices:
                add(build_formula_set(name, {key: value}))
    built = 0
    for family in FAMILIES:
        arch = architecture(family)
        add(formula_set(arch.family, arch.structure))
        every = memory_options() if family in KINDS else [MemoryOptions(), MemoryOptions(mode="inference")]
        for options in every:
            try:
                add(estimate_formulas(arch.family, arch.structure, options))
                built += 1
            except SpecError:  # an option this structure refuses (kv_layout expanded without MLA): no quantities
                pass
    assert built > 0.9 * (len(FAMILIES) * 2 + len(KINDS) * (len(memory_options()) - 2))
    return units


def test_every_symbol_has_a_udunits_unit_of_its_dimension():
    for name, info in SYMBOLS.items():
        unit = cf_units.Unit(info.units)  # raises ValueError on a unit UDUNITS cannot parse
        assert not unit.is_unknown(), name
        assert unit == cf_units.Unit(expected(name)), (name, info.units, expected(name))


def test_flop_rates_are_per_second():
    for name in ("peak_flops", "attention_peak_flops"):
        assert cf_units.Unit(SYMBOLS[name].units).is_convertible("Hz"), name
        assert "FLOP/s" in SYMBOLS[name].meaning


def test_every_quantity_has_one_udunits_unit_of_its_dimension():
    units = quantity_units()
    assert len(units) > 80 and {"mem_peak", "step_time", "tokens_per_s", "flops_step", "params_total"} <= set(units)
    for name, seen in units.items():
        assert len(seen) == 1, (name, seen)  # a quantity has one unit whatever the options
        unit = cf_units.Unit(next(iter(seen)))
        assert not unit.is_unknown(), name
        assert unit == cf_units.Unit(expected(name)), (name, seen, expected(name))


def test_bytes_is_the_spelling_the_tool_scales():
    # the summary and the plots scale variables whose units are exactly "bytes" (KiB, MiB, ...)
    spelled = {u for seen in quantity_units().values() for u in seen if cf_units.Unit(u) == cf_units.Unit("byte")}
    assert spelled == {"bytes"}
