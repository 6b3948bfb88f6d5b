"""The fastest layouts that fit: every (tp, pp, cp, dp, micro-batch, vp, ep) x (recompute, ZeRO, sequence
parallel) of a device count, evaluated at once by one jit-compiled kernel per structural combination.

    >>> from engine.catalog.model import architecture
    >>> from engine.catalog.plan import plan
    >>> best = plan(architecture("gpt3-175b"), "a100-80gb", gpus=1024, seq_len=2048, global_batch=1536)  # doctest: +SKIP

The grid holds every combination of the degrees (invalid ones masked: tp dividing the heads and kv
heads, pp the layers, tp x pp x cp the device count, whole micro-batches on every data-parallel rank,
vp the layers of a stage, cp the sequence, ep the routed experts and the devices of a stage -- expert
tensor parallelism is 1: each routed expert whole on one device), so its size is the product of the axes, not only the
valid layouts; ``dp`` is ``gpus / (tp x pp x cp)``. Step time and memory are the formulas of
``llm-sweep time`` (``engine/symbolic/memory/steptime.py``, the ``korthikanti`` memory model) with
``dp`` substituted, lambdified to JAX, evaluated in float32 chunks. The fastest that fit are then evaluated
exactly, as ``time_estimate`` does, by each combination's formulas compiled once to Python over fractions
(``_Exact``), and layouts whose every prediction is the same and that differ only in knobs that change
nothing there (ZeRO stage at dp 1, ...) become one row naming them (``_fold``).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from engine.catalog.families import Architecture
from engine.errors import SpecError

RECOMPUTE = ("none", "selective", "full")
ZERO = (0, 1, 2, 3)
AXES = ("tp", "pp", "cp", "batch", "vp", "ep")
# a step of 2**40 sequences is past any run (published ones hold up to ~10**5); its divisors take 0.1 s to list
MAX_GLOBAL_BATCH = 2**40
KNOBS = ("recompute", "zero", "sequence_parallel", "vp", "ep")  # choices a row may fold (the rest are its layout)
# the float32 kernels rank the layouts; exact values are computed for every layout within this relative margin
# of the top-th row's step time (and of the device's memory), so rounding reorders nothing that is reported
MARGIN = 1e-3


@dataclass(frozen=True)
class Space:
    """The degrees searched (each a tuple of candidates) and the structural choices."""

    tp: tuple[int, ...]
    pp: tuple[int, ...]
    cp: tuple[int, ...]
    micro_batch: tuple[int, ...]
    vp: tuple[int, ...]
    ep: tuple[int, ...] = (1,)  # expert parallelism (MoE), with etp = 1: each routed expert whole on a device
    recompute: tuple[str, ...] = RECOMPUTE
    zero: tuple[int, ...] = ZERO
    sequence_parallel: tuple[bool, ...] = (False, True)

    @property
    def size(self) -> int:
        return (len(self.tp) * len(self.pp) * len(self.cp) * len(self.micro_batch) * len(self.vp) * len(self.ep)
                * len(self.recompute) * len(self.zero) * len(self.sequence_parallel))


def default_space(arch: Architecture, gpus: int, global_batch: int) -> Space:
    """Powers of two for tp and cp up to 64 and 8, every pp up to the layers, every divisor of the global
    batch as micro-batch, vp up to 12; for a MoE model every power of two dividing the routed experts as ep
    (up to 256)."""
    if global_batch > MAX_GLOBAL_BATCH:
        raise SpecError("--global-batch", str(global_batch), f"at most {MAX_GLOBAL_BATCH:,} sequences per step (the "
                                                             "plan lists the divisors of the global batch)")
    layers = arch.values["n_layers"]
    p2 = [2**i for i in range(7) if 2**i <= gpus]
    experts = arch.values.get("n_experts", 1) if arch.structure.moe else 1
    return Space(tp=tuple(p2), pp=tuple(p for p in range(1, layers + 1) if p <= gpus),
                 cp=tuple(c for c in (1, 2, 4, 8) if c <= gpus),
                 micro_batch=divisors(global_batch),
                 vp=tuple(range(1, 13)),
                 ep=tuple(2**i for i in range(9) if 2**i <= min(gpus, experts) and experts % 2**i == 0))


def divisors(n: int) -> tuple[int, ...]:
    """Every divisor of ``n`` in increasing order, by trial division up to its square root (a loop to ``n`` never
    returned for a global batch of 10**20)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return tuple(small + [n // d for d in reversed(small) if d * d != n])


def _kernel(arch: Architecture, options, fixed: dict[str, Any]):
    """A jitted JAX function of (tp, pp, cp, batch, vp, ep) arrays -> (step_time, mem_peak)."""
    import jax
    import jax.numpy as jnp
    import sympy

    from engine.catalog.model import estimate_formulas
    from engine.symbolic.symbols import symbol

    fs = estimate_formulas(arch.family, arch.structure, options)
    tp, pp, cp, mb, vp, ep, dp = (symbol(n) for n in (*AXES, "dp"))
    given = {**arch.values, **fixed, **{n: None for n in AXES}, "dp": None}
    out = []
    for name in ("step_time", "mem_peak"):
        # dp stays an argument, computed from the others below: substituting n_gpus / (tp pp cp) into the
        # formulas' link choices (dp tp <= devices_per_node) lets sympy decide them wrongly for positive integers
        # (it evaluates 8/(cp pp) <= 4 to False)
        expr = fs.apply(fs.expanded(name), given)
        # float32 kernel: constants past int32 (bytes, vocab x d_model) as floats, not weak int32 arguments
        expr = expr.xreplace({n: sympy.Float(n) for n in expr.atoms(sympy.Integer) if abs(n) >= 2**31})
        rest = expr.free_symbols - {tp, pp, cp, mb, vp, ep, dp}
        if rest:
            raise SpecError(arch.label, "", f"{name} needs {', '.join(sorted(s.name for s in rest))}")
        out.append(sympy.lambdify([tp, pp, cp, mb, vp, ep, dp], expr,
                                  modules=[{"ceiling": jnp.ceil, "floor": jnp.floor}, "jax"]))
    step, mem = out
    gpus = float(fixed["n_gpus"])

    def both(tp, pp, cp, mb, vp, ep):
        dp = gpus / (tp * pp * cp)
        return step(tp, pp, cp, mb, vp, ep, dp), mem(tp, pp, cp, mb, vp, ep, dp)

    return jax.jit(both)


def _grid(space: Space) -> dict[str, np.ndarray]:
    mesh = np.meshgrid(*(np.asarray(getattr(space, a if a != "batch" else "micro_batch"), dtype=np.int64)
                         for a in AXES), indexing="ij")
    return {a: m.ravel() for a, m in zip(AXES, mesh)}


def _valid(arch: Architecture, g: dict[str, np.ndarray], gpus: int, seq_len: int, global_batch: int) -> np.ndarray:
    v = arch.values
    heads, kv, layers = v["n_heads"], v.get("n_kv_heads", v["n_heads"]), v["n_layers"]
    tp, pp, cp, mb, vp, ep = (g[a] for a in AXES)
    model = tp * pp * cp
    ok = (heads % tp == 0) & (kv % tp == 0) & (layers % pp == 0) & (gpus % model == 0) & (seq_len % cp == 0)
    dp = np.where(ok, gpus // np.maximum(model, 1), 1)
    ok &= (global_batch % (dp * mb) == 0) & ((layers // pp) % vp == 0) & ((vp == 1) | (pp > 1))
    # experts: ep divides the routed experts, and ep x etp (etp = 1) the devices of a pipeline stage
    experts = v.get("n_experts", 1) if arch.structure.moe else 1
    ok &= (experts % ep == 0) & ((dp * tp * cp) % ep == 0)
    return ok


class _Inexact(Exception):
    """A combination's formulas hold something ``_Exact`` cannot evaluate in fractions (a float, a root)."""


_EXACT_FUNCTIONS = (sympy.Piecewise, sympy.Max, sympy.Min, sympy.ceiling, sympy.floor, sympy.Abs, sympy.Mod)


def _fraction_printer():
    """A printer of Python source over ``fractions.Fraction``: every non-integer constant a name
    (``printer.constants``: (p, q) -> name, bound to ``Fraction(p, q)`` in the function's globals), so the
    generated function computes in exact rationals what sympy would, given Fraction arguments."""
    from sympy.printing.pycode import PythonCodePrinter

    class Printer(PythonCodePrinter):
        def __init__(self):
            super().__init__()
            self.constants: dict[tuple[int, int], str] = {}

        def _print_Rational(self, e):
            if e.q == 1:
                return str(e.p)
            return self.constants.setdefault((int(e.p), int(e.q)), f"_q{len(self.constants)}")

        _print_Half = _print_Rational

        def _print_Integer(self, e):
            return str(e.p)

    return Printer()


def _exactly_rational(expr) -> bool:
    """Whether ``expr`` evaluates to a rational at rational arguments with the functions ``_Exact`` prints:
    rational constants, integer powers, Piecewise (ending in True), Max, Min, ceiling, floor, Abs, Mod."""
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Number) and not isinstance(node, sympy.Rational):
            return False  # a Float, an infinity, NaN
        if isinstance(node, sympy.NumberSymbol) or node in (sympy.I, sympy.zoo):
            return False
        if isinstance(node, sympy.Pow) and not node.exp.is_Integer:
            return False
        if isinstance(node, sympy.Piecewise) and node.args[-1].cond is not sympy.true:
            return False
        if isinstance(node, sympy.Function) and not isinstance(node, _EXACT_FUNCTIONS):
            return False
    return True


class _Exact:
    """One structural combination's outputs at any layout, exactly as ``time_estimate`` computes them.

    ``time_estimate`` substitutes every value into each quantity with sympy (milliseconds a layout); here the
    quantities, defaults applied and every input left a symbol, are lambdified once (common subexpressions
    shared) to Python over ``fractions.Fraction`` and called with the values as exact rationals (a float as
    the decimal it prints, as sympy reads it): the same exact numbers, converted to float (correctly rounded)
    the same way, about 0.2 ms a layout. ``_Inexact`` when a quantity holds something not exactly rational
    (then ``time_estimate`` evaluates that combination's layouts). A call raises ArithmeticError where a
    shared subexpression of a branch not taken divides by zero (then ``time_estimate`` evaluates that layout)."""

    def __init__(self, arch: Architecture, options, dev, seq_len: int, global_batch: int):
        import math
        from fractions import Fraction

        from engine.catalog.model import estimate_formulas
        from engine.catalog.timing import TRAINING_PARTS
        from engine.symbolic.formulas.base import exact_number
        from engine.symbolic.memory import moments

        fs = estimate_formulas(arch.family, arch.structure, options)
        # the names and values time_estimate gives (its memory_estimate too); the layout's degrees per call
        given = {**arch.values, **dev.values(options.precision), "batch": None, "seq_len": seq_len,
                 "global_batch": global_batch, "dp": None, "tp": None, "pp": None, "vp": None, "cp": None,
                 "shard_group": None, **({"ep": None, "etp": 1} if arch.structure.moe else {})}
        names = set(given)
        self.parts = TRAINING_PARTS
        quantities = ("step_time", "tokens_per_s", "step_mfu", "step_hfu", *(f"time_{k}" for k in TRAINING_PARTS))
        exprs = [fs.apply(fs.expanded(n), names) for n in quantities]
        exprs += [sum(fs.apply(fs.inline(v), names) for v in m.parts.values())
                  for m in moments(arch.structure, options)]  # each moment's total: the peak is the largest
        symbols = sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda x: x.name)
        if any(x.name not in given for x in symbols) or not all(_exactly_rational(e) for e in exprs):
            raise _Inexact
        fixed = {}
        for x in symbols:
            if given[x.name] is not None:
                value = exact_number(given[x.name])
                if not isinstance(value, sympy.Rational):
                    raise _Inexact
                fixed[x.name] = Fraction(int(value.p), int(value.q))
        printer = _fraction_printer()
        f = sympy.lambdify(symbols, exprs, modules=[{"math": math, "max": max, "min": min}], printer=printer,
                           cse=True)
        f.__globals__.update({name: Fraction(p, q) for (p, q), name in printer.constants.items()})
        self._f = f
        self._args = [fixed.get(x.name) for x in symbols]  # the fixed values; the layout's filled per call
        self._slots = [(i, x.name) for i, x in enumerate(symbols) if given[x.name] is None]
        self._fraction = Fraction
        self._ceil = math.ceil
        self._n = len(quantities)

    def __call__(self, tp: int, pp: int, cp: int, mb: int, vp: int, ep: int, dp: int) -> tuple[list[float], int]:
        """(step_time, tokens_per_s, mfu, hfu, time of each part) as floats and the peak in whole bytes."""
        F = self._fraction
        degrees = {"tp": tp, "pp": pp, "cp": cp, "batch": mb, "vp": vp, "ep": ep, "dp": dp, "shard_group": dp}
        args = list(self._args)
        for i, name in self._slots:
            args[i] = F(degrees[name])
        values = self._f(*args)
        return [float(v) for v in values[:self._n]], int(self._ceil(max(values[self._n:])))


def _format_values(values: list) -> str:
    """``0–2`` for a run of integers, ``on/off`` for sequence parallelism, ``none/selective`` for names."""
    if all(isinstance(v, bool) for v in values):
        return "/".join("on" if v else "off" for v in values)
    if all(isinstance(v, int) for v in values):
        if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
            return f"{values[0]}–{values[-1]}"
        return ",".join(map(str, values))
    return "/".join(map(str, values))


def _reason(knob: str, est: dict[str, Any], moe: bool) -> str:
    """Why ``knob`` changes nothing at this layout, where the layout says it (ZeRO shards over dp, ...)."""
    lay = est["layout"]
    where = {"zero": ("dp", lay["dp"] == 1), "sequence_parallel": ("tp", lay["tp"] == 1),
             "vp": ("pp", lay["pp"] == 1)}.get(knob)
    if where and where[1]:
        return f"no effect at {where[0]} 1"
    if knob == "ep" and not moe:
        return "no effect without experts"
    return "no effect on any prediction here"


def _fold(rows: list[tuple[int, dict[str, Any]]], knob_order: dict[str, list],
          moe: bool) -> list[tuple[int, dict[str, Any]]]:
    """Rows -> boxes: rows whose every output (step time, its breakdown, throughput, MFU, HFU, peak memory) and
    every other layout degree are identical, merged along one knob at a time while the others agree, so a box
    is a product of knob values, each of which changes no prediction. A box is its first row in search
    order (the smallest knob values) with ``folded``: knob -> {values, reason} for the knobs it spans, paired
    with the earliest position of its rows."""

    def base(est):
        lay = est["layout"]
        return (est["step_time"], est["tokens_per_s"], est["mfu"], est["hfu"], est["mem_peak"],
                tuple(est["breakdown"].values()),
                tuple(v for k, v in lay.items() if k not in KNOBS))

    def knobs_of(est):
        return {"recompute": est["recompute"], "zero": est["zero"], "sequence_parallel": est["sequence_parallel"],
                "vp": est["layout"]["vp"], "ep": est["layout"]["ep"]}

    boxes = [{"base": base(est), "knobs": {k: frozenset((v,)) for k, v in knobs_of(est).items()},
              "rows": [(pos, est)]} for pos, est in rows]
    changed = True
    while changed:
        changed = False
        for knob in KNOBS:
            groups: dict[Any, list] = {}
            for box in boxes:
                sig = (box["base"], tuple(box["knobs"][k] for k in KNOBS if k != knob))
                groups.setdefault(sig, []).append(box)
            if len(groups) < len(boxes):
                changed = True
                boxes = [{"base": g[0]["base"], "rows": [r for b in g for r in b["rows"]],
                          "knobs": {**g[0]["knobs"], knob: frozenset().union(*(b["knobs"][knob] for b in g))}}
                         for g in groups.values()]
    out = []
    for box in boxes:
        first = min(box["rows"], key=lambda r: tuple(knob_order[k].index(v) for k, v in knobs_of(r[1]).items()))
        est = dict(first[1])
        est["folded"] = {}
        for k in KNOBS:
            if len(box["knobs"][k]) > 1:
                values = sorted(box["knobs"][k], key=knob_order[k].index)
                est["folded"][k] = {"values": values, "reason": _reason(k, est, moe)}
        out.append((min(pos for pos, _ in box["rows"]), est))
    return out


def describe_folded(est: dict[str, Any]) -> str:
    """``zero 0–2: no effect at dp 1`` for a folded row (``; `` between knobs), empty when nothing is folded."""
    names = {"sequence_parallel": "sp"}
    return "; ".join(f"{names.get(k, k)} {_format_values(f['values'])}: {f['reason']}"
                     for k, f in est.get("folded", {}).items())


def knob_text(est: dict[str, Any], knob: str) -> str:
    """The value(s) of ``knob`` a row stands for, as ``plan`` prints them (``0–2`` when folded)."""
    folded = est.get("folded", {}).get(knob)
    if folded:
        return _format_values(folded["values"])
    value = est["layout"][knob] if knob in ("vp", "ep") else est[knob]
    return _format_values([value])


def plan(arch: Architecture, gpu: str, gpus: int, seq_len: int, global_batch: int, top: int = 10,
         precision: str = "bf16", space: Space | None = None, attention: str = "flash",
         chunk: int = 1 << 21, prune: bool = True, fold: bool = True) -> dict[str, Any]:
    """The ``top`` fastest layouts that fit in ``gpu``'s memory: ``{"layouts": [...], "searched": n,
    "valid": n, "evaluated": n, "fit": n, "seconds": s, "exact_seconds": s, "configs_per_s": r,
    "hbm": bytes, "lowest_peak": est | None}``; each layout as ``time_estimate`` reports it (exact values), with its
    structural choices and ``folded`` (knob -> {values, reason}: the knob values it stands for, which change
    no prediction there; empty when none). With ``fold`` False every layout is its own row. With ``prune``
    the kernels see only the layouts that pass the rules; without it every grid point goes through them and
    the rules mask the results (the same answer; ``benchmarks/plan_speed.py`` measures both). No layout
    fits: ``layouts`` is empty and ``lowest_peak`` is the valid layout of the lowest peak (None when no
    layout passes the rules).

    The kernels (float32) rank the layouts; the best are then evaluated exactly in that order until the
    ``top``-th row's exact step time is passed by ``MARGIN`` (so rows the float32 ranking swaps, and every
    layout equal to a reported row, are found), and the rows are ordered by their exact step time."""
    import jax.numpy as jnp

    from engine.catalog.hardware import device
    from engine.catalog.model import memory_options
    from engine.progress import note

    for name, value in (("--gpus", gpus), ("--seq-len", seq_len), ("--global-batch", global_batch), ("--top", top)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SpecError(name, str(value), "must be a positive integer")
    dev = device(gpu)
    from engine.catalog.model import estimate_formulas

    probe = estimate_formulas(arch.family, arch.structure, memory_options(memory_model="korthikanti",
                                                                          precision=precision, attention=attention))
    for name in ("step_time", "mem_peak"):
        if name in probe.absent:  # e.g. the training memory of Mamba-2 layers
            raise SpecError(arch.label, "plan", probe.absent[name])
    space = space or default_space(arch, gpus, global_batch)
    start = time.perf_counter()
    g = _grid(space)
    valid = _valid(arch, g, gpus, seq_len, global_batch)
    idx = np.flatnonzero(valid) if prune else np.arange(valid.size)
    fixed = {**dev.values(precision), "seq_len": seq_len, "global_batch": global_batch, "n_gpus": gpus,
             **({"etp": 1} if arch.structure.moe else {})}
    combos = list(itertools.product(space.recompute, space.zero, space.sequence_parallel))
    combo_options = [memory_options(memory_model="korthikanti", precision=precision, recompute=recompute, zero=zero,
                                    sequence_parallel=sp, attention=attention) for recompute, zero, sp in combos]
    steps, owners, rows = [], [], []  # every layout that fits (or nearly: MARGIN), by combination
    n_fit = 0
    lowest = (np.inf, -1, -1)  # the lowest float32 peak of a valid layout: what "nothing fits" reports
    for c, (recompute, zero, sp) in enumerate(combos):
        note(f"searching: kernel {c + 1} of {len(combos)} (recompute {recompute}, ZeRO {zero}, "
             f"sequence parallelism {'on' if sp else 'off'})")
        kernel = _kernel(arch, combo_options[c], fixed)
        for lo in range(0, idx.size, chunk):
            sel = idx[lo:lo + chunk]
            args = [jnp.asarray(g[a][sel], dtype=jnp.float32) for a in AXES]
            step, mem = (np.asarray(x) for x in kernel(*args))
            ok = np.isfinite(step) & valid[sel]
            if sp:  # sequence parallelism splits the tensor-parallel regions: it needs tp > 1 (Megatron)
                ok &= g["tp"][sel] > 1
            n_fit += int((ok & (mem <= dev.hbm_bytes)).sum())
            near = np.flatnonzero(ok & (mem <= dev.hbm_bytes * (1 + MARGIN)))
            steps.append(step[near].astype(np.float32))
            owners.append(np.full(near.size, c, dtype=np.int32))
            rows.append(sel[near])
            if ok.any():
                i = int(np.argmin(np.where(ok, mem, np.inf)))
                if mem[i] < lowest[0]:
                    lowest = (float(mem[i]), c, int(sel[i]))
    seconds = time.perf_counter() - start

    evaluators: dict[int, Any] = {}
    knob_order = {"recompute": list(space.recompute), "zero": list(space.zero),
                  "sequence_parallel": list(space.sequence_parallel), "vp": list(space.vp), "ep": list(space.ep)}

    def estimate(c: int, i: int) -> dict[str, Any]:
        """The exact estimate of grid point ``i`` under combination ``c``, as ``time_estimate`` gives it."""
        recompute, zero, sp = combos[c]
        tp, pp, cp, mb, vp, ep = (int(g[a][i]) for a in AXES)
        dp = gpus // (tp * pp * cp)
        options = combo_options[c]
        if c not in evaluators:
            try:
                evaluators[c] = _Exact(arch, options, dev, seq_len, global_batch)
            except _Inexact:
                evaluators[c] = None
        exact = evaluators[c]
        try:
            values, peak = exact(tp, pp, cp, mb, vp, ep, dp) if exact else (None, None)
        except ArithmeticError:
            values = None
        if values is None:  # the reference path: every value substituted with sympy
            from engine.catalog.timing import Layout, time_estimate

            est = time_estimate(arch, gpu, Layout(gpus, seq_len, global_batch, mb, tp, pp, None, cp, ep, vp,
                                                  etp=1 if arch.structure.moe else None), options)
        else:
            est = {"step_time": values[0], "tokens_per_s": values[1], "mfu": values[2], "hfu": values[3],
                   "mem_peak": peak, "hbm": dev.hbm_bytes, "fits": peak <= dev.hbm_bytes, "gpu": dev.name,
                   "layout": {"gpus": gpus, "tp": tp, "pp": pp, "dp": dp, "cp": cp, "ep": ep,
                              "etp": 1 if arch.structure.moe else tp, "vp": vp, "shard_group": dp,
                              "micro_batch": mb, "global_batch": global_batch, "seq_len": seq_len},
                   "breakdown": dict(zip(exact.parts, values[4:]))}
        est.update(recompute=recompute, zero=zero, sequence_parallel=sp)
        return est

    start = time.perf_counter()
    steps_all = np.concatenate(steps) if steps else np.zeros(0, np.float32)
    owner_all = np.concatenate(owners) if owners else np.zeros(0, np.int32)
    row_all = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    order = np.argsort(steps_all, kind="stable")
    evaluated: list[tuple[int, dict[str, Any]]] = []
    seen: dict[Any, float] = {}  # distinct rows (outputs and non-knob degrees) -> exact step time
    heap: list[float] = []  # the `top` smallest exact step times of distinct rows, negated (a max-heap)
    shown = time.perf_counter()
    for n, pos in enumerate(order):
        if len(heap) == top and float(steps_all[pos]) > -heap[0] * (1 + MARGIN):
            break  # every later layout is slower than the top-th row, by more than the kernels' rounding
        if time.perf_counter() - shown > 0.2:
            note(f"exact values of the fastest layouts: {n:,}" + (f" of {order.size:,}" if top >= order.size else ""))
            shown = time.perf_counter()
        est = estimate(int(owner_all[pos]), int(row_all[pos]))
        if not est["fits"]:
            continue  # the float32 kernel's peak was within MARGIN of the device's memory, the exact one is not
        evaluated.append((n, est))
        lay = est["layout"]
        key = ((est["step_time"], est["tokens_per_s"], est["mfu"], est["hfu"], est["mem_peak"],
                tuple(est["breakdown"].values()), tuple(v for k, v in lay.items() if k not in KNOBS))
               if fold else n)
        if key not in seen:
            seen[key] = est["step_time"]
            if len(heap) < top:
                heapq.heappush(heap, -est["step_time"])
            elif est["step_time"] < -heap[0]:
                heapq.heapreplace(heap, -est["step_time"])
    if fold:
        boxes = _fold(evaluated, knob_order, arch.structure.moe)
    else:
        boxes = [(n, {**est, "folded": {}}) for n, est in evaluated]
    boxes.sort(key=lambda b: (b[1]["step_time"], b[0]))
    layouts = [est for _, est in boxes[:top]]
    lowest_peak = None
    if not layouts and lowest[1] >= 0:
        lowest_peak = {**estimate(lowest[1], lowest[2]), "folded": {}}
    searched = space.size
    combos_n = searched // max(g["tp"].size, 1)
    return {"layouts": layouts, "searched": searched, "valid": int(valid.sum()) * combos_n,
            "evaluated": int(idx.size) * combos_n, "fit": n_fit, "seconds": seconds,
            "exact_seconds": time.perf_counter() - start,
            "configs_per_s": searched / seconds if seconds else float("inf"), "hbm": dev.hbm_bytes,
            "lowest_peak": lowest_peak}
