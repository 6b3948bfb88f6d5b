"""Long phases say what they are doing (formulas, kernels, compiling, writing), on a terminal only; natural
dims come from the dependency graph without resolving a single expression."""

from __future__ import annotations

import io


from engine import progress
from engine.request.spec import load_spec, parse_spec
from engine.runtime import dims as dims_module
from engine.runtime.categories import combinations
from engine.runtime.dims import natural_dims
from engine.symbolic.formulas.base import FormulaSet


class _Terminal(io.StringIO):
    def isatty(self):
        return True


CATEGORICAL = """
[sweep]
arch = "llama-3.1-8b"
quantities = ["step_time", "mem_peak", "params_total", "time_p2p", "flops_palm_token"]

[options]
memory_model = "korthikanti"
precision = "bf16"
attention = "flash"

[fixed]
n_gpus = 8
global_batch = 64
batch = 1
pp = 1

[axes]
seq_len = [2048, 4096]
tp = [1, 2, 4]
recompute = ["none", "full"]
gpu = ["h100-sxm", "a100-80gb"]
"""


def test_notes_show_only_on_a_terminal_and_are_cleared():
    plain = io.StringIO()
    with progress.reporting(True, plain):
        progress.note("compiling kernel 1 of 2")
    assert plain.getvalue() == ""
    term = _Terminal()
    with progress.reporting(False, term):
        progress.note("compiling kernel 1 of 2")
    assert term.getvalue() == ""
    with progress.reporting(True, term):
        progress.note("compiling kernel 1 of 2")
    assert "\rcompiling kernel 1 of 2 [0 s]" in term.getvalue()
    assert term.getvalue().endswith("\r\x1b[K")  # the line is clean for what the command prints next
    progress.note("after the block")  # nobody reports: nothing, no error
    assert "after the block" not in term.getvalue()


def test_a_categorical_spec_says_which_combination_it_builds(write_spec):
    term = _Terminal()
    with progress.reporting(True, term):
        load_spec(write_spec(CATEGORICAL))
    shown = term.getvalue()
    assert "building formulas of combination 1 of 4" in shown
    assert "checking inputs of combination 4 of 4" in shown


def test_a_run_says_it_builds_compiles_and_finishes(small_spec):
    from engine.runtime.sweep import run

    term = _Terminal()
    with progress.reporting(True, term):
        run(load_spec(small_spec))
    shown = term.getvalue()
    for phase in ("building the kernel", "compiling the kernel (XLA)", "finishing the output"):
        assert phase in shown


def _resolved_dims(request) -> dict[str, set[str]]:
    """The free symbols of every resolved expression (what natural dims were computed from before)."""
    given = {**{a: None for a in request.axes}, **request.fixed}
    fs = request.formulas
    out = {q: {s.name for s in fs.resolve(q, given).free_symbols} & set(request.axes) for q in request.quantities}
    conditions = [c for _, c in fs.conditions(given)]
    if conditions:
        out["valid"] = {s.name for c in conditions for s in c.free_symbols} & set(request.axes)
    return out


def test_natural_dims_resolve_nothing_and_equal_the_resolved_free_symbols(write_spec, monkeypatch):
    """pp = 1 makes time_p2p 0 (a Piecewise the walk decides) and flops_palm_token's embedding terms cancel (the
    cheap definitions are folded): both dims must be exact, with ``resolve`` never called."""
    request = parse_spec(__import__("tomllib").loads(CATEGORICAL))
    expected = {}
    for labels, plain in combinations(request):
        for q, names in _resolved_dims(plain).items():
            expected.setdefault(q, set()).update(names)

    def refuse(*args, **kwargs):
        raise AssertionError("natural_dims resolved an expression")

    monkeypatch.setattr(FormulaSet, "resolve", refuse)
    found = natural_dims(request)
    numeric = [a for a in request.axes if a not in request.categories]
    assert {q: {a for a in d if a in numeric} for q, d in found.items()} == expected
    assert found["time_p2p"] == ("recompute", "gpu")  # only the categorical dims every output keeps
    assert "seq_len" in found["step_time"]


def test_the_walk_is_exact_on_piecewise_and_products():
    import sympy

    x, y, z = sympy.symbols("seq_len tp pp", positive=True, integer=True)
    values = {"pp": sympy.Integer(1)}

    def leaf(s):
        if s.name in values:
            return values[s.name], set()
        return None, {s.name}

    def fold(expr):
        value = expr.xreplace({z: values["pp"]})
        known = value.is_number or value in (sympy.true, sympy.false)
        return (value if known else None), {s.name for s in value.free_symbols}

    walk = dims_module._Walker(leaf, fold)
    assert walk((z - 1) * x) == (0, set())
    assert walk(sympy.Piecewise((x, z > 1), (y, True)))[1] == {"tp"}
    assert walk(sympy.Piecewise((x, y > 1), (y, True)))[1] == {"seq_len", "tp"}
    assert walk(sympy.Max(x * (z - 1), 3)) == (3, set())
    assert walk(sympy.Max(x, 3 * z))[1] == {"seq_len"}
    # the sum-and-product factors of a product are folded together: y / y beside a Max leaves no tp
    assert walk(sympy.Mul(y, sympy.Max(x, 3), 1 / y, evaluate=False))[1] == {"seq_len"}
