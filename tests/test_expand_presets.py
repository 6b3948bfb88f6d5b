"""`formulas --arch PRESET --expand` prints the preset's own model: every expanded formula, read back
from the printed text and evaluated at the printed sizes, equals the quantity's value (all presets)."""

import re

import pytest
import sympy
from sympy.parsing.sympy_parser import parse_expr

from engine.catalog.model import architecture, formulas_of, param_counts
from engine.catalog.presets import PRESETS
from engine.symbolic.printing import format_formulas
from engine.symbolic.symbols import SYMBOLS

_NAMES = {name: info.symbol for name, info in SYMBOLS.items()}


def _printed(text: str) -> tuple[dict[str, str], dict[str, int]]:
    """quantity -> its printed expanded line (the second ``=`` line), and the printed sizes."""
    expanded, current, lines = {}, None, text.splitlines()
    for line in lines:
        head = re.match(r"^(\w+) \[", line)
        if head:
            current, seen = head.group(1), 0
        elif current and line.startswith("  = "):
            seen += 1
            expanded[current] = line[4:]  # the last '=' line: the expanded one where there are two
    sizes_line = next(line for line in lines if line.startswith("Values: "))
    sizes = {k.strip(): int(v) for k, v in (item.split("=") for item in sizes_line[8:].split(","))}
    return expanded, sizes


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_expanded_formulas_evaluate_to_the_preset_counts(name):
    arch = architecture(name)
    fs = formulas_of(arch)
    text = format_formulas(fs, "text", expand=True, values=arch.values)
    expanded, sizes = _printed(text)
    assert sizes == arch.values
    at = {_NAMES[k]: sympy.Integer(v) for k, v in sizes.items()}
    for q, line in expanded.items():
        value = parse_expr(line, local_dict=dict(_NAMES), evaluate=True).xreplace(at)
        assert not value.free_symbols, f"{name}: {q} printed with free {value.free_symbols}: {line}"
        assert sympy.simplify(value - fs.evaluate_exact(q, arch.values)) == 0, f"{name}: {q} = {line}"
    total = parse_expr(expanded["params_total"], local_dict=dict(_NAMES)).xreplace(at)
    assert int(total) == param_counts(arch)["total"]


def test_gqa_attention_keeps_its_kv_heads():
    """Llama-3.1-8B's attention per layer: 41,943,040 (8 KV heads), not 67,108,864 (the MHA default)."""
    arch = architecture("llama-3.1-8b")
    text = format_formulas(formulas_of(arch), "text", expand=True, values=arch.values)
    line = _printed(text)[0]["params_attention_layer"]
    assert "n_kv_heads" in line
    value = parse_expr(line, local_dict=dict(_NAMES)).xreplace(
        {_NAMES[k]: sympy.Integer(v) for k, v in arch.values.items()})
    assert value == 41_943_040
