"""The fastest layouts that fit: every (tp, pp, dp, cp, micro-batch, vp, ep) x (recompute, ZeRO, sequence
parallelism) of a device count, through the one engine.

    >>> from engine.catalog.model import architecture
    >>> from engine.catalog.plan import plan
    >>> best = plan(architecture("gpt3-175b"), "a100-80gb", gpus=1024, seq_len=2048, global_batch=1536)  # doctest: +SKIP

``plan`` writes the request a layout spec writes (``sweeps/plan-gpt3-175b.toml``; ``plan_spec``): the
structural choices as categorical dims (one kernel per combination), the degrees as swept axes, ``n_gpus``,
``seq_len`` and ``global_batch`` fixed, the layout rules (``engine.symbolic.memory.steptime.LAYOUT_RULES``)
as the request's validity, and a top-k query (minimize ``step_time`` where ``mem_peak`` fits the device),
and runs it through ``engine.runtime.sweep.run`` into a ``TopKSink``. The grid is the product of the axes:
dp takes every value ``gpus / (tp x pp x cp)`` can, the rule ``dp x tp x pp x cp = n_gpus`` masking the
rest. Step time and memory are the formulas of ``llm-sweep time`` (``engine/symbolic/memory/steptime/``,
the ``korthikanti`` memory model). The best rows are then evaluated exactly, as ``time_estimate`` does, by
each combination's formulas compiled once to Python over fractions (``_Exact``), and layouts whose every
prediction is the same and that differ only in knobs that change nothing there (ZeRO stage at dp 1, ...)
become one row naming them (``_fold``).
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping

import sympy
from sympy.printing.pycode import PythonCodePrinter

from engine.catalog.families import Architecture
from engine.catalog.hardware import device, stack_and_kernel
from engine.catalog.model import architecture, estimate_formulas, memory_options
from engine.catalog.timing import TRAINING_PARTS, Layout, time_estimate
from engine.errors import SpecError
from engine.options import DEFAULT_PRECISION, MEMORY_OPTIONS, RECOMPUTE
from engine.progress import note
from engine.request.query import make_query
from engine.request.spec import parse_spec
from engine.symbolic.formulas.base import exact_number
from engine.symbolic.memory import moments

ZERO = MEMORY_OPTIONS["zero"].choices  # every ZeRO stage the memory options know
CATEGORIES = ("recompute", "zero", "sequence_parallel")  # categorical dims, in the request's order
# a step of 2**40 sequences is past any run (published ones hold up to ~10**5); its divisors take 0.1 s to list
MAX_GLOBAL_BATCH = 2**40
KNOBS = ("recompute", "zero", "sequence_parallel", "vp", "ep")  # choices a row may fold (the rest are its layout)
# the engine ranks the layouts in float64; exact values are computed for every layout within this relative margin
# of the top-th row's step time, so rounding reorders nothing that is reported and every layout equal to a
# reported row is found
MARGIN = 1e-9
# candidates the first top-k query returns: FIRST_K, or ROWS_PER_TOP per row asked; 8 times more while they run out
FIRST_K, ROWS_PER_TOP = 1024, 16


@dataclass(frozen=True)
class Space:
    """The degrees searched (each a tuple of candidates) and the structural choices; ``dp`` follows from the
    device count (``gpus / (tp x pp x cp)``)."""

    tp: tuple[int, ...]
    pp: tuple[int, ...]
    cp: tuple[int, ...]
    micro_batch: tuple[int, ...]
    vp: tuple[int, ...]
    ep: tuple[int, ...] = (1,)  # expert parallelism (MoE), with etp = 1: each routed expert whole on a device
    recompute: tuple[str, ...] = RECOMPUTE
    zero: tuple[int, ...] = ZERO
    sequence_parallel: tuple[bool, ...] = (False, True)

    def data_parallel(self, gpus: int) -> tuple[int, ...]:
        """Every dp ``gpus / (tp x pp x cp)`` takes over the space, in increasing order."""
        return tuple(sorted({gpus // (t * p * c) for t in self.tp for p in self.pp for c in self.cp
                             if gpus % (t * p * c) == 0})) or (1,)


def default_space(arch: Architecture, gpus: int, global_batch: int) -> Space:
    """Powers of two for tp and cp up to 64 and 8, every divisor of the layers as pp, every divisor of the global
    batch as micro-batch, vp up to 12; for a MoE model every power of two dividing the routed experts as ep
    (up to 256).

    Raises
    ------
    SpecError
        A global batch past ``MAX_GLOBAL_BATCH``.
    """
    if global_batch > MAX_GLOBAL_BATCH:
        raise SpecError("--global-batch", str(global_batch), f"at most {MAX_GLOBAL_BATCH:,} sequences per step (the "
                                                             "plan lists the divisors of the global batch)")
    layers = arch.values["n_layers"]
    p2 = [2**i for i in range(7) if 2**i <= gpus]
    experts = arch.values.get("n_experts", 1) if arch.structure.moe else 1
    return Space(tp=tuple(p2), pp=tuple(p for p in divisors(layers) if p <= gpus),
                 cp=tuple(c for c in (1, 2, 4, 8) if c <= gpus),
                 micro_batch=divisors(global_batch),
                 vp=tuple(range(1, 13)),
                 ep=tuple(2**i for i in range(9) if 2**i <= min(gpus, experts) and experts % 2**i == 0))


def divisors(n: int) -> tuple[int, ...]:
    """Every divisor of ``n`` in increasing order, by trial division up to its square root (a loop to ``n`` never
    returned for a global batch of 10**20)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return tuple(small + [n // d for d in reversed(small) if d * d != n])


def plan_spec(arch: Architecture, gpu: str, gpus: int, seq_len: int, global_batch: int, space: Space,
              precision: str = DEFAULT_PRECISION, attention: str = "flash", hbm: int | None = None,
              stack: str = "megatron-core", overlap: str = "stack",
              framework: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The layout spec of a plan (the tables of ``sweeps/plan-gpt3-175b.toml``), as ``parse_spec`` reads it.

    Parameters
    ----------
    arch : Architecture
        A preset, family or config.json architecture (the spec names it by ``arch.label``).
    gpu : str
        The device (``engine.catalog.hardware.device``).
    gpus, seq_len, global_batch : int
        Devices, tokens per sequence, sequences per optimizer step.
    space : Space
        The axes searched.
    precision, attention : str
        Memory options of every combination.
    hbm : int, optional
        The query's memory bound in bytes (default: no query).
    stack, overlap : str
        The training stack whose defaults the step time takes, and the communication it overlaps.
    framework : mapping, optional
        Other stack fields given on their own (``grad_reduce_dtype``, ``fp8_recipe``, ``elementwise``: memory
        options).

    Returns
    -------
    dict
        ``{"sweep", "options", "fixed", "axes"[, "query"]}``.
    """
    moe = arch.structure.moe
    axes: dict[str, Any] = {c: list(getattr(space, c)) for c in CATEGORIES}
    axes.update(tp=list(space.tp), pp=list(space.pp), dp=list(space.data_parallel(gpus)), cp=list(space.cp),
                batch=list(space.micro_batch), vp=list(space.vp))
    if moe:
        axes["ep"] = list(space.ep)
    spec = {"sweep": {"arch": arch.name or arch.source, "gpu": gpu, "quantities": ["step_time", "mem_peak"]},
            "options": {"memory_model": "korthikanti", "precision": precision, "attention": attention,
                        "stack": stack, "overlap": overlap, **(framework or {})},
            "fixed": {"n_gpus": gpus, "seq_len": seq_len, "global_batch": global_batch, **({"etp": 1} if moe else {})},
            "axes": axes}
    if hbm is not None:
        spec["query"] = {"where": f"mem_peak <= {hbm}", "minimize": "step_time", "over": list(axes)}
    return spec


class _Inexact(Exception):
    """A combination's formulas hold something ``_Exact`` cannot evaluate in fractions (a float, a root)."""


_EXACT_FUNCTIONS = (sympy.Piecewise, sympy.Max, sympy.Min, sympy.ceiling, sympy.floor, sympy.Abs, sympy.Mod)


def _fraction_printer():
    """A printer of Python source over ``fractions.Fraction``: every non-integer constant a name
    (``printer.constants``: (p, q) -> name, bound to ``Fraction(p, q)`` in the function's globals), so the
    generated function computes in exact rationals what sympy would, given Fraction arguments."""

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

        fs = estimate_formulas(arch.family, arch.structure, options)
        # the names and values time_estimate gives (its memory_estimate too); the layout's degrees per call
        given = {**arch.values, **dev.values(options.precision, options.attention), "batch": None, "seq_len": seq_len,
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


def _combination_text(labels: dict[str, Any]) -> str:
    """``recompute none, ZeRO 0, sequence parallelism off``: a combination as ``plan`` reports its progress."""
    return (f"recompute {labels['recompute']}, ZeRO {labels['zero']}, sequence parallelism "
            f"{'on' if labels['sequence_parallel'] else 'off'}")


def _search(request, query, k: int):
    """The ``k`` best points of ``request`` under ``query`` (``TopKSink``): ``(dataset, seconds)``."""
    from engine.runtime.sweep import run  # JAX and xarray load with the first search, not with the module
    from engine.sinks.topk import TopKSink

    start = time.perf_counter()
    ds = run(request, TopKSink(query, k, _combination_text)).dataset
    return ds, time.perf_counter() - start


class _Rows:
    """Exact estimates of the layouts of a plan, evaluated once each (``time_estimate``'s values)."""

    def __init__(self, arch: Architecture, gpu: str, gpus: int, seq_len: int, global_batch: int, precision: str,
                 attention: str, stack: str = "megatron-core", overlap: str = "stack",
                 framework: Mapping[str, str] | None = None):
        self.arch, self.gpu, self.dev = arch, gpu, device(gpu)
        self.gpus, self.seq_len, self.global_batch = gpus, seq_len, global_batch
        self.precision, self.attention, self.stack, self.overlap = precision, attention, stack, overlap
        self.framework = dict(framework or {})
        self.evaluators: dict[tuple, Any] = {}
        self.layers = arch.values["n_layers"]

    def options(self, recompute: str, zero: int, sp: bool):
        return memory_options(memory_model="korthikanti", precision=self.precision, recompute=recompute, zero=zero,
                              sequence_parallel=sp, attention=self.attention, stack=self.stack,
                              overlap=self.overlap, **self.framework)

    def estimate(self, row: dict[str, Any]) -> dict[str, Any]:
        """The exact estimate of one row of the search (its coordinates by dim), as ``time_estimate`` gives it."""
        combo = (str(row["recompute"]), int(row["zero"]), bool(row["sequence_parallel"]))
        tp, pp, dp, cp, mb, vp = (int(row[a]) for a in ("tp", "pp", "dp", "cp", "batch", "vp"))
        ep = int(row.get("ep", 1))
        options = self.options(*combo)
        if combo not in self.evaluators:
            try:
                self.evaluators[combo] = _Exact(self.arch, options, self.dev, self.seq_len, self.global_batch)
            except _Inexact:
                self.evaluators[combo] = None
        exact = self.evaluators[combo]
        try:
            values, peak = exact(tp, pp, cp, mb, vp, ep, dp) if exact else (None, None)
        except ArithmeticError:
            values = None
        moe = self.arch.structure.moe
        if values is None:  # the reference path: every value substituted with sympy
            est = time_estimate(self.arch, self.gpu, Layout(self.gpus, self.seq_len, self.global_batch, mb, tp, pp,
                                                            None, cp, ep, vp, etp=1 if moe else None), options)
        else:
            hbm = self.dev.hbm_bytes
            est = {"step_time": values[0], "tokens_per_s": values[1], "mfu": values[2], "hfu": values[3],
                   "mem_peak": peak, "hbm": hbm, "fits": peak <= hbm, "gpu": self.dev.name,
                   "layout": {"gpus": self.gpus, "tp": tp, "pp": pp, "dp": dp, "cp": cp, "ep": ep,
                              "etp": 1 if moe else tp, "vp": vp, "shard_group": dp, "micro_batch": mb,
                              "global_batch": self.global_batch, "seq_len": self.seq_len},
                   "breakdown": dict(zip(exact.parts, values[4:])),
                   "stage_layers": -(-self.layers // (pp * vp)) * vp}  # the even split's bottleneck stage
        est.update(recompute=combo[0], zero=combo[1], sequence_parallel=combo[2])
        return est


def _ranked(rows: _Rows, ds, top: int, fold: bool, done: dict) -> tuple[list, bool]:
    """Exact estimates of the search's rows in rank order, until the ``top``-th distinct row's exact step time
    is passed by ``MARGIN``: ``(evaluated, complete)``, ``evaluated`` holding ``(rank, estimate)`` of the rows
    that fit; ``complete`` False when the rows ran out first (a longer search may hold more). ``done``: the
    coordinates -> estimate of rows already evaluated (a longer search repeats the shorter one's rows first)."""
    dims = [d for d in ds.data_vars if d not in ("step_time", "n_valid", "n_feasible")]
    values = {d: ds[d].values for d in dims}
    steps = ds["step_time"].values
    evaluated, seen, heap = [], set(), []  # heap: the `top` smallest exact step times of distinct rows, negated
    shown = time.perf_counter()
    for n in range(steps.size):
        if len(heap) == top and float(steps[n]) > -heap[0] * (1 + MARGIN):
            return evaluated, True  # every later layout is slower than the top-th row by more than the rounding
        if time.perf_counter() - shown > 0.2:
            note(f"exact values of the fastest layouts: {n:,} of {steps.size:,}")
            shown = time.perf_counter()
        row = {d: values[d][n].item() for d in dims}
        at = tuple(row.values())
        if at not in done:
            done[at] = rows.estimate(row)
        est = done[at]
        if not est["fits"]:
            continue  # the float64 peak was at the device's memory, the exact one is past it
        evaluated.append((n, est))
        lay = est["layout"]
        key = ((est["step_time"], est["tokens_per_s"], est["mfu"], est["hfu"], est["mem_peak"],
                tuple(est["breakdown"].values()), tuple(v for k, v in lay.items() if k not in KNOBS))
               if fold else n)
        if key not in seen:
            seen.add(key)
            if len(heap) < top:
                heapq.heappush(heap, -est["step_time"])
            elif est["step_time"] < -heap[0]:
                heapq.heapreplace(heap, -est["step_time"])
    return evaluated, False


def _check_inputs(arch: Architecture, gpus, seq_len, global_batch, top, precision: str, attention: str) -> None:
    """SpecError for a non-positive size or an architecture whose step time or peak is not modelled."""
    for name, value in (("--gpus", gpus), ("--seq-len", seq_len), ("--global-batch", global_batch), ("--top", top)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SpecError(name, str(value), "must be a positive integer")
    probe = estimate_formulas(arch.family, arch.structure, memory_options(memory_model="korthikanti",
                                                                          precision=precision, attention=attention))
    for name in ("step_time", "mem_peak"):
        if name in probe.absent:  # e.g. the training memory of Mamba-2 layers
            raise SpecError(arch.label, "plan", probe.absent[name])


def _check_named(arch: Architecture) -> None:
    """SpecError unless the spec's ``arch`` (the preset, family or config.json ``arch`` came from) is ``arch``."""
    named = architecture(arch.name or arch.source)
    if (named.family, named.structure, named.values) != (arch.family, arch.structure, arch.values):
        raise SpecError(arch.label, "plan", "plan searches a preset, family or config.json architecture as it reads "
                                            "(its spec names it); this one was changed after reading: write the "
                                            "change into a config.json")


def _search_ranked(request, rows: "_Rows", top: int, fold: bool) -> tuple[Any, list, float, float]:
    """``(ds, evaluated, seconds, exact_seconds)``: the search's top-k cube and its rows evaluated exactly in rank
    order, asking for more rows (8x) while the top-k runs out before the ``top``-th row is passed."""
    k, done, seconds = min(max(FIRST_K, ROWS_PER_TOP * top), request.points), {}, 0.0
    while True:
        ds, took = _search(request, request.query, k)
        seconds += took
        start = time.perf_counter()
        evaluated, complete = _ranked(rows, ds, top, fold, done)
        exact_seconds = time.perf_counter() - start
        feasible = int(ds["n_feasible"])
        if complete or ds.sizes["rank"] >= feasible:
            return ds, evaluated, seconds, exact_seconds
        k = min(8 * k, feasible)


def plan(arch: Architecture, gpu: str, gpus: int, seq_len: int, global_batch: int, top: int = 10,
         precision: str = "bf16", space: Space | None = None, attention: str | None = None,
         fold: bool = True, stack: str | None = None, overlap: str = "stack", grad_reduce_dtype: str = "stack",
         fp8_recipe: str = "stack", elementwise: str = "stack") -> dict[str, Any]:
    """The ``top`` fastest layouts of ``arch`` on ``gpus`` devices that fit in ``gpu``'s memory.

    The layout spec (``plan_spec``) runs through the one engine with a top-k query; its best rows are then
    evaluated exactly in rank order until the ``top``-th row's exact step time is passed by ``MARGIN`` (so
    every layout equal to a reported row is found; the search asks for more rows while they run out first),
    and the rows are ordered by their exact step time.

    Parameters
    ----------
    arch : Architecture
        The model (a preset, family or config.json architecture).
    gpu : str
        The device: a catalog name or a device TOML file.
    gpus, seq_len, global_batch : int
        Devices, tokens per sequence and sequences per optimizer step (positive).
    top : int
        Rows wanted.
    precision, attention : str
        Memory options of every layout; attention None: the stack's kernel on ``gpu``
        (``engine.options.stacks.Stack.attention_for``).
    space : Space, optional
        The axes searched (default ``default_space``).
    stack, overlap : str
        The training stack (``engine.options.STACKS``; None: the device's default, ``hardware.stack_and_kernel``) whose defaults the
        step time takes, and the communication hidden behind compute (``overlap``: ``stack`` = the stack's).
    grad_reduce_dtype, fp8_recipe, elementwise : str
        The stack's gradient-reduction dtype, fp8 recipe and element-wise kernels, given on their own (``stack``:
        the stack's).
    fold : bool
        Merge layouts whose every prediction is the same and that differ only in knobs that change nothing
        there into one row naming them; False: every layout its own row.

    Returns
    -------
    dict
        ``{"layouts": [...], "searched": n, "valid": n, "evaluated": n, "fit": n, "seconds": s,
        "exact_seconds": s, "configs_per_s": r, "hbm": bytes, "lowest_peak": est | None}``: each layout as
        ``time_estimate`` reports it (exact values) with its structural choices and ``folded`` (knob ->
        {values, reason}: the knob values it stands for; empty when none). No layout fits: ``layouts`` is
        empty and ``lowest_peak`` the valid layout of the lowest peak (None when no layout passes the rules).

    Raises
    ------
    SpecError
        A non-positive size, an unknown device, an architecture whose step time or peak is not modelled.
    """
    stack, attention, overlap = stack_and_kernel(gpu, stack, attention, overlap)
    _check_inputs(arch, gpus, seq_len, global_batch, top, precision, attention)
    _check_named(arch)
    framework = {k: v for k, v in (("grad_reduce_dtype", grad_reduce_dtype), ("fp8_recipe", fp8_recipe),
                                   ("elementwise", elementwise)) if v != "stack"}
    rows = _Rows(arch, gpu, gpus, seq_len, global_batch, precision, attention, stack, overlap, framework)
    space = space or default_space(arch, gpus, global_batch)
    request = parse_spec(plan_spec(arch, gpu, gpus, seq_len, global_batch, space, precision, attention,
                                   rows.dev.hbm_bytes, stack, overlap, framework), source="llm-sweep plan")
    ds, evaluated, seconds, exact_seconds = _search_ranked(request, rows, top, fold)
    start = time.perf_counter()
    knob_order = {"recompute": list(space.recompute), "zero": list(space.zero),
                  "sequence_parallel": list(space.sequence_parallel), "vp": list(space.vp), "ep": list(space.ep)}
    boxes = (_fold(evaluated, knob_order, arch.structure.moe) if fold
             else [(n, {**est, "folded": {}}) for n, est in evaluated])
    boxes.sort(key=lambda b: (b[1]["step_time"], b[0]))
    layouts = [est for _, est in boxes[:top]]
    lowest_peak = None
    if not layouts and int(ds["n_valid"]):
        low, took = _search(request, make_query([], None, "mem_peak", list(request.axes), request.quantities,
                                                list(request.axes)), 1)
        seconds += took
        lowest_peak = {**rows.estimate({d: low[d].values[0] for d in request.axes}), "folded": {}}
    return {"layouts": layouts, "searched": request.points, "valid": int(ds["n_valid"]),
            "evaluated": request.points, "fit": int(ds["n_feasible"]), "seconds": seconds,
            "exact_seconds": exact_seconds + time.perf_counter() - start,
            "configs_per_s": request.points / seconds if seconds else float("inf"), "hbm": rows.dev.hbm_bytes,
            "lowest_peak": lowest_peak}
