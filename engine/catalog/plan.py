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
``dp`` substituted, lambdified to JAX, evaluated in float32 chunks; the survivors are re-evaluated
exactly (sympy) before they are reported.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.catalog.families import Architecture
from engine.errors import SpecError

RECOMPUTE = ("none", "selective", "full")
ZERO = (0, 1, 2, 3)
AXES = ("tp", "pp", "cp", "batch", "vp", "ep")


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
    layers = arch.values["n_layers"]
    p2 = [2**i for i in range(7) if 2**i <= gpus]
    experts = arch.values.get("n_experts", 1) if arch.structure.moe else 1
    return Space(tp=tuple(p2), pp=tuple(p for p in range(1, layers + 1) if p <= gpus),
                 cp=tuple(c for c in (1, 2, 4, 8) if c <= gpus),
                 micro_batch=tuple(m for m in range(1, global_batch + 1) if global_batch % m == 0),
                 vp=tuple(range(1, 13)),
                 ep=tuple(2**i for i in range(9) if 2**i <= min(gpus, experts) and experts % 2**i == 0))


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


def plan(arch: Architecture, gpu: str, gpus: int, seq_len: int, global_batch: int, top: int = 10,
         precision: str = "bf16", space: Space | None = None, attention: str = "flash",
         chunk: int = 1 << 21, prune: bool = True) -> dict[str, Any]:
    """The ``top`` fastest layouts that fit in ``gpu``'s memory: ``{"layouts": [...], "searched": n,
    "valid": n, "evaluated": n, "fit": n, "seconds": s, "configs_per_s": r}``; each layout as
    ``time_estimate`` reports it (re-evaluated exactly), with its structural choices. With ``prune`` the
    kernels see only the layouts that pass the rules; without it every grid point goes through them and
    the rules mask the results (the same answer; ``benchmarks/plan_speed.py`` measures both)."""
    import jax.numpy as jnp

    from engine.catalog.hardware import device
    from engine.catalog.model import memory_options
    from engine.catalog.timing import Layout, time_estimate

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
    candidates = []
    n_fit = 0
    for recompute, zero, sp in itertools.product(space.recompute, space.zero, space.sequence_parallel):
        options = memory_options(memory_model="korthikanti", precision=precision, recompute=recompute, zero=zero,
                                 sequence_parallel=sp, attention=attention)
        kernel = _kernel(arch, options, fixed)
        for lo in range(0, idx.size, chunk):
            sel = idx[lo:lo + chunk]
            args = [jnp.asarray(g[a][sel], dtype=jnp.float32) for a in AXES]
            step, mem = (np.asarray(x) for x in kernel(*args))
            fit = (mem <= dev.hbm_bytes) & np.isfinite(step) & valid[sel]
            if sp:  # sequence parallelism splits the tensor-parallel regions: it needs tp > 1 (Megatron)
                fit &= g["tp"][sel] > 1
            n_fit += int(fit.sum())
            order = np.flatnonzero(fit)[np.argsort(step[fit])[:top]]
            candidates += [(float(step[i]), int(sel[i]), recompute, zero, sp) for i in order]
    seconds = time.perf_counter() - start
    candidates.sort(key=lambda c: c[0])
    layouts = []
    for _, i, recompute, zero, sp in candidates[:top]:
        tp, pp, cp, mb, vp, ep = (int(g[a][i]) for a in AXES)
        options = memory_options(memory_model="korthikanti", precision=precision, recompute=recompute, zero=zero,
                                 sequence_parallel=sp, attention=attention)
        layout = Layout(gpus, seq_len, global_batch, mb, tp, pp, None, cp, ep, vp,
                        etp=1 if arch.structure.moe else None)
        est = time_estimate(arch, gpu, layout, options)
        est.update(recompute=recompute, zero=zero, sequence_parallel=sp)
        layouts.append(est)
    searched = space.size
    combos = searched // max(g["tp"].size, 1)
    return {"layouts": layouts, "searched": searched, "valid": int(valid.sum()) * combos,
            "evaluated": int(idx.size) * combos, "fit": n_fit, "seconds": seconds,
            "configs_per_s": searched / seconds if seconds else float("inf")}
