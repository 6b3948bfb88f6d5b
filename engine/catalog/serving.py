"""Serving of one layout on one device type: the API behind ``llm-sweep serve``.

    >>> from engine.catalog.model import architecture
    >>> from engine.catalog.serving import Deployment, serve_estimate
    >>> est = serve_estimate(architecture("meta-llama-3-70b"), "h100-sxm",
    ...                      Deployment(tp=4, input_len=2048, output_len=256, concurrency=4))   # doctest: +SKIP
    >>> est["ttft"], est["tpot"], est["tokens_per_s_per_gpu"]                                  # doctest: +SKIP

The formulas are ``engine/symbolic/memory/steptime/serving.py`` (sources there); the engine's defaults
``engine/options/data/engines.json``. A concurrency sweep (``--concurrency max``, SLO limits) evaluates the
formulas once, compiled with numpy over every concurrency from 1 to the KV pools' maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from engine.catalog.families import Architecture
from engine.catalog.hardware import device
from engine.catalog.model import estimate_formulas, memory_estimate, memory_options
from engine.errors import SpecError

REPORTED = ("ttft", "tpot", "tokens_per_s", "tokens_per_s_per_gpu", "tokens_per_s_per_user", "time_decode",
            "time_prefill")
"""The quantities of a concurrency, in the order ``serve --json`` gives them (all in seconds or 1/s)."""
ENGINE_LIMITS = ("block_size", "kv_memory_fraction", "max_num_batched_tokens", "max_num_seqs")


@dataclass(frozen=True)
class Deployment:
    """A serving layout and workload.

    Parameters
    ----------
    tp, pp, dp : int
        Tensor and pipeline parallelism of a replica; replicas (with ``prefill_replicas``: the decode replicas).
    ep, etp : int
        A MoE model's experts over ep x etp devices (etp None: tp); ep above tp spreads them over replicas.
    input_len, output_len : int
        Prompt and generated tokens per request (output_len at least 2).
    concurrency : int or None
        Requests in flight; None: the largest the KV pools hold, or with ``ttft_max`` / ``tpot_max`` the largest
        that meets them.
    ttft_max, tpot_max : float or None
        Mean time-to-first-token and time-per-output-token limits, seconds.
    rate : float or None
        Requests per second arriving (an open loop): the concurrency that completes them, by Little's law.
    spec_tokens, acceptance_rate : int, float or None
        Speculative decoding: draft tokens per step and their acceptance probability (None: 0.85).
    prefill_replicas : int
        Disaggregated serving (xPyD): this many prefill replicas of tp x pp devices hand their requests' KV caches
        to the dp decode replicas; 0 (default): aggregated, every replica prefills and decodes.
    """

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    etp: int | None = None
    input_len: int = 1024
    output_len: int = 128
    concurrency: int | None = 1
    ttft_max: float | None = None
    tpot_max: float | None = None
    rate: float | None = None
    spec_tokens: int = 0
    acceptance_rate: float | None = None
    prefill_replicas: int = 0

    @property
    def gpus(self) -> int:
        """Devices in all: tp x pp x (dp + prefill_replicas)."""
        return self.tp * self.pp * (self.dp + self.prefill_replicas)


def _check(arch: Architecture, dep: Deployment) -> None:
    """SpecError for a deployment no engine runs: non-positive sizes, a one-token output, experts on a dense model."""
    for flag in ("tp", "pp", "dp", "ep", "input_len", "output_len"):
        value = getattr(dep, flag)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError("--" + flag.replace("_", "-"), str(value), "must be a positive integer")
    if dep.output_len < 2:
        raise SpecError("--output-len", str(dep.output_len), "must be at least 2: time per output token is the gap "
                                                             "between generated tokens")
    if (dep.ep > 1 or (dep.etp or dep.tp) != dep.tp) and not arch.structure.moe:
        raise SpecError("--ep", str(dep.ep), f"expert parallelism applies to MoE models; {arch.label} has no experts")
    if dep.ep > 1 and (dep.ep * (dep.etp or dep.tp)) % dep.tp and dep.tp % (dep.ep * (dep.etp or dep.tp)):
        raise SpecError("--ep", str(dep.ep), f"ep x etp ({dep.ep * (dep.etp or dep.tp)}) must divide tp ({dep.tp}) or "
                                             "be a multiple of it (experts over a replica's devices, or over several "
                                             "replicas)")
    if (isinstance(dep.prefill_replicas, bool) or not isinstance(dep.prefill_replicas, int)
            or dep.prefill_replicas < 0):
        raise SpecError("--prefill-replicas", str(dep.prefill_replicas), "must be a non-negative integer (0: "
                                                                        "aggregated serving)")
    if isinstance(dep.spec_tokens, bool) or not isinstance(dep.spec_tokens, int) or dep.spec_tokens < 0:
        raise SpecError("--spec-tokens", str(dep.spec_tokens), "must be a non-negative integer (0: no drafts)")
    if dep.acceptance_rate is not None and not 0 < dep.acceptance_rate < 1:
        raise SpecError("--acceptance-rate", str(dep.acceptance_rate), "must be between 0 and 1 (exclusive)")
    if dep.concurrency is not None and (isinstance(dep.concurrency, bool) or not isinstance(dep.concurrency, int)
                                        or dep.concurrency < 1):
        raise SpecError("--concurrency", str(dep.concurrency), "must be a positive integer or 'max'")


def serve_values(arch: Architecture, gpu: str, dep: Deployment, options: Any, limits: dict | None = None,
                 cost_per_hour: float | None = None) -> tuple[Any, dict[str, Any]]:
    """(device, the inputs of the serving formulas but concurrency): the device's rates (the fp8 GEMM rate for fp8
    weights, the fp4 one for fp4 weights, where the device has them), the engine's limits on it (``limits``
    overriding), the layout, the workload and the price."""
    dev = device(gpu)
    values = dev.serving_values(options.precision, options.attention, options.weight_dtype, options.engine)
    for key, value in (limits or {}).items():
        if value is not None:
            values[key] = value
    values.update(tp=dep.tp, pp=dep.pp, dp=dep.dp, input_len=dep.input_len, output_len=dep.output_len,
                  seq_len=dep.input_len + dep.output_len, batch=1, spec_tokens=dep.spec_tokens)
    if dep.prefill_replicas:
        values["prefill_replicas"] = dep.prefill_replicas
    if dep.acceptance_rate is not None:
        values["acceptance_rate"] = dep.acceptance_rate
    if arch.structure.moe:
        values.update(ep=dep.ep, etp=dep.etp or dep.tp)
    if cost_per_hour is not None:
        values["cost_per_hour"] = cost_per_hour
    return dev, values


class Evaluator:
    """The serving quantities of one formula set, numerically, as numpy functions of the ``varying`` inputs (the
    concurrency; the validator's lengths and knobs too): each quantity's own definition (a few terms over inputs
    and other quantities) evaluated in dependency order, the ones that depend on no varying input once, as floats.
    Expanding every quantity into its inputs first (``FormulaSet.expanded``) and compiling that would take seconds:
    the serving quantities refer to each other many times."""

    def __init__(self, fs, given: dict[str, Any], varying: tuple[str, ...] = ("concurrency",)):
        self.fs, self.varying = fs, tuple(varying)
        self.given = {k: v for k, v in given.items() if k not in self.varying}
        self.fixed: dict[str, float | None] = {}
        self.compiled: dict[str, Any] = {}

    def fixed_value(self, name: str) -> float | None:
        """The value of input or quantity ``name`` when it depends on no varying input, else None."""
        if name in self.varying:
            return None
        if name in self.given:
            return self.given[name]
        if name not in self.fixed:
            expr = self._definition(name)
            values = {s: self.fixed_value(s.name) for s in expr.free_symbols}
            if any(v is None for v in values.values()):
                self.fixed[name] = None
            else:
                self.fixed[name] = float(expr.xreplace({s: sympy.Rational(v)
                                                        for s, v in values.items()}))
        return self.fixed[name]

    def at(self, name: str, c: int) -> float:
        """Quantity ``name`` at one concurrency, exactly (no compilation: a scalar answer in milliseconds)."""
        child = Evaluator(self.fs, {**self.given, "concurrency": c}, ())
        child.fixed = {k: v for k, v in self.fixed.items() if v is not None}
        return child.fixed_value(name)

    def _definition(self, name: str) -> sympy.Expr:
        if name in self.fs.quantities:
            return self.fs.quantities[name].definition
        if name in self.fs.defaults:
            return sympy.sympify(self.fs.defaults[name])
        raise SpecError(name, "inputs", f"needs {name} (the configuration does not give it)")

    def __call__(self, name: str, env: dict[str, np.ndarray] | np.ndarray, _memo: dict | None = None) -> np.ndarray:
        """Quantity ``name`` at the varying inputs' values ``env`` (arrays of one shape; an array alone: the
        concurrencies); each quantity evaluated once per call."""
        if not isinstance(env, dict):
            env = {"concurrency": env}
        memo = {} if _memo is None else _memo
        if name in memo:
            return memo[name]
        shape = np.broadcast_shapes(*(np.shape(v) for v in env.values()))
        value = self.fixed_value(name)
        if value is not None:
            out = np.full(shape, value, dtype=float)
        elif name in self.varying:
            out = np.broadcast_to(np.asarray(env[name], dtype=float), shape)
        else:
            expr = self._definition(name)
            inputs = sorted(expr.free_symbols, key=lambda s: s.name)
            if name not in self.compiled:
                self.compiled[name] = sympy.lambdify(inputs, expr, modules="numpy")
            out = np.broadcast_to(self.compiled[name](*(self(s.name, env, memo) for s in inputs)), shape)
        memo[name] = out
        return out


def serve_estimate(arch: Architecture, gpu: str, dep: Deployment, options: Any = None, limits: dict | None = None,
                   cost_per_hour: float | None = None) -> dict[str, Any]:
    """TTFT, TPOT, throughput, capacity and cost of ``arch`` served on ``dep`` of ``gpu`` devices.

    Parameters
    ----------
    arch : Architecture
        The model (``engine.architecture``).
    gpu : str
        A catalog device or a device TOML file.
    dep : Deployment
        The layout and workload.
    options : MemoryOptions, optional
        Inference options (``memory_options(mode="inference", engine=..., weight_dtype=..., kv_dtype=...)``).
    limits : dict, optional
        Engine limits overriding the engine's (block_size, kv_memory_fraction, max_num_batched_tokens,
        max_num_seqs; None values ignored).
    cost_per_hour : float, optional
        US dollars per device-hour (default: the catalog's price, where it has one).

    Returns
    -------
    dict
        ``{"ttft", "tpot" (s), "tokens_per_s" (the deployment's output tokens/s), "tokens_per_s_per_gpu",
        "tokens_per_s_per_user", "time_decode", "time_prefill" (s), "concurrency", "max_concurrency",
        "mem_kv_pool" (bytes per device), "request_rate", "cost_per_mtok" (US dollars per million output tokens,
        None without a price), "cost_per_mtok_input", "cost_per_mtok_output" (the device time split between the
        prompts and the generated tokens), "cost_per_hour", "power_kw", "tokens_per_s_per_mw" (None without a
        rated power), "gpu", "gpus", "engine", "layout", "limits"}``; with SLO limits also ``"meets_slo"``.

    Raises
    ------
    SpecError
        A bad deployment, a model whose weights leave no KV pool, a concurrency above what the pools hold (naming
        the maximum), a rate above what the deployment completes, or limits no concurrency meets.
    """
    options = options or memory_options(mode="inference")
    _check(arch, dep)
    if dep.prefill_replicas:
        options = options.with_options(serving="disaggregated")
    elif options.serving == "disaggregated":
        raise SpecError("--prefill-replicas", "0", "serving disaggregated needs prefill replicas (xPyD: "
                                                   "--prefill-replicas X --dp Y)")
    dev, values = serve_values(arch, gpu, dep, options, limits, cost_per_hour)
    fs = estimate_formulas(arch.family, arch.structure, options)
    memory_estimate(arch, options, values)  # the layout rules: tp | heads, pp | layers, ...
    ev = Evaluator(fs, {**arch.values, **values})
    capacity, most = ev.fixed_value("mem_kv_pool"), int(ev.fixed_value("max_concurrency"))
    if most < 1:
        raise SpecError("--gpus", str(dep.gpus), f"{arch.label} leaves no room for the KV cache of one "
                        f"{dep.input_len + dep.output_len}-token request on {dep.tp * dep.pp} x {dev.name} per "
                        f"replica (KV pool {capacity / 2**30:.2f} GiB per device): add devices (--tp, --pp) or "
                        "quantize (--weight-dtype, --kv-dtype)")
    fns = {name: (lambda c, name=name: ev(name, np.asarray(c))) for name in REPORTED}
    conc, meets = _concurrency(dep, most, fns, values)
    out: dict[str, Any] = {name: ev.at(name, conc) for name in REPORTED}
    out.update(concurrency=conc, max_concurrency=most, mem_kv_pool=capacity)
    price = values.get("cost_per_hour")
    out["cost_per_hour"] = price
    for name in ("cost_per_mtok", "cost_per_mtok_input", "cost_per_mtok_output"):  # all, and split input/output
        out[name] = ev.at(name, conc) if price is not None else None
    out["power_kw"] = values.get("power_kw")
    out["tokens_per_s_per_mw"] = ev.at("tokens_per_s_per_mw", conc) if out["power_kw"] else None
    if meets is not None:
        out["meets_slo"] = meets
    out["request_rate"] = out["tokens_per_s"] / dep.output_len  # completed requests per second
    out.update(gpu=dev.name, gpus=dep.gpus, engine=options.engine,
               layout={"tp": dep.tp, "pp": dep.pp, "dp": dep.dp, "ep": dep.ep, "etp": dep.etp or dep.tp,
                       "input_len": dep.input_len, "output_len": dep.output_len, "spec_tokens": dep.spec_tokens,
                       "prefill_replicas": dep.prefill_replicas},
               limits={k: values[k] if k in values else ev.fixed_value(k) for k in ENGINE_LIMITS})
    return out


def _concurrency(dep: Deployment, most: int, fns: dict, values: dict) -> tuple[int, bool | None]:
    """The concurrency to report, and whether it meets the SLO limits (None without limits): with a rate, the
    smallest that completes it; the one given (at most ``most``); else the largest that meets the limits, else
    the largest that runs at once (``most`` or dp x max_num_seqs, the smaller)."""
    slo = dep.ttft_max is not None or dep.tpot_max is not None
    if dep.rate is not None:  # the concurrency at which the deployment completes rate requests per second
        top = min(most, int(dep.dp * values["max_num_seqs"]))
        grid = np.arange(1, top + 1)
        done = np.broadcast_to(fns["tokens_per_s"](grid), grid.shape) / dep.output_len
        if not (done >= dep.rate).any():
            raise SpecError("--rate", f"{dep.rate:g}", f"above what the deployment completes: at most {done.max():.4g} "
                                                       "requests per second (at its largest concurrency)")
        conc = int(grid[np.argmax(done >= dep.rate)])
        return conc, (bool(_meets(dep, fns, np.array([conc]))[0]) if slo else None)
    if dep.concurrency is not None:
        if dep.concurrency > most:
            raise SpecError("--concurrency", str(dep.concurrency), f"the KV pools hold at most {most} requests of "
                            f"{dep.input_len + dep.output_len} tokens (--concurrency max)")
        if not slo:
            return dep.concurrency, None
        return dep.concurrency, bool(_meets(dep, fns, np.array([dep.concurrency]))[0])
    top = min(most, int(dep.dp * values["max_num_seqs"]))
    if not slo:
        return top, None
    grid = np.arange(1, top + 1)
    ok = _meets(dep, fns, grid)
    if not ok.any():
        ttft, tpot = float(fns["ttft"](1)), float(fns["tpot"](1))
        raise SpecError("--ttft-max/--tpot-max", f"{dep.ttft_max}/{dep.tpot_max}",
                        f"no concurrency meets them: at concurrency 1 ttft is {ttft:.4g} s and tpot {tpot:.4g} s")
    return int(grid[ok][-1]), True


def _meets(dep: Deployment, fns: dict, grid: np.ndarray) -> np.ndarray:
    ok = np.ones(grid.shape, dtype=bool)
    if dep.ttft_max is not None:
        ok &= np.broadcast_to(fns["ttft"](grid), grid.shape) <= dep.ttft_max
    if dep.tpot_max is not None:
        ok &= np.broadcast_to(fns["tpot"](grid), grid.shape) <= dep.tpot_max
    return ok


REFUSALS = ("no concurrency meets them", "leaves no room for the KV cache")
"""Why serve-plan passes a layout by, as its count says (anything else: a layout rule, tp not dividing the heads)."""
SPLITS = ((0, 1), (1, 1), (1, 2), (2, 1), (1, 3), (3, 1))
"""serve-plan's layouts per device and tp: aggregated (one replica), and disaggregated xPyD units of x prefill and
y decode replicas, x + y at most 4."""


def _layouts(arch: Architecture, per_node: int, input_len: int, output_len: int, ttft_max, tpot_max):
    """serve-plan's candidates on one device type: tp 1, 2, 4, 8 (within a node) x SPLITS, a MoE model's experts
    split over each replica's devices (etp = tp, the engines' default); and for a MoE model, a node of attention
    data-parallel ranks with the experts spread over them (tp 1, dp = ep = the node's devices, as wide-EP serving
    runs), aggregated."""
    common = dict(input_len=input_len, output_len=output_len, concurrency=None, ttft_max=ttft_max,
                  tpot_max=tpot_max)
    for tp in (t for t in (1, 2, 4, 8) if t <= max(per_node, 1)):
        for prefill, decode in SPLITS:
            yield Deployment(tp=tp, dp=decode, prefill_replicas=prefill, **common)
    if arch.structure.moe and per_node > 1:
        yield Deployment(tp=1, dp=per_node, ep=per_node, etp=1, **common)


def serve_plan(arch: Architecture, gpus: list[str], input_len: int, output_len: int, options: Any = None,
               ttft_max: float | None = None, tpot_max: float | None = None, users: int | None = None,
               limits: dict | None = None, cost_per_hour: float | None = None, top: int = 5,
               serving: str | None = None) -> dict[str, Any]:
    """The cheapest layouts that meet the limits.

    Parameters
    ----------
    arch : Architecture
        The model.
    gpus : list of str
        Devices to consider (those without a price are passed over unless ``cost_per_hour`` is given).
    input_len, output_len : int
        Prompt and generated tokens per request.
    options, limits, cost_per_hour :
        As ``serve_estimate``'s.
    ttft_max, tpot_max : float, optional
        The limits (at least one).
    users : int, optional
        Requests to serve at once: the replicas each layout needs.
    top : int
        Layouts to return.
    serving : {"aggregated", "disaggregated"}, optional
        Only layouts of this kind (default: both).

    Returns
    -------
    dict
        For each device of ``gpus`` with a price and each layout ``_layouts`` gives (tp in 1, 2, 4, 8 x aggregated
        or xPyD disaggregated; a MoE model also a node of attention data-parallel ranks with the experts across
        them), the largest concurrency per unit (a replica, or x + y replicas, or the node) meeting ``ttft_max`` /
        ``tpot_max``, ranked by $ per million output tokens, with ``users`` the units that serve that many at
        once: ``{"plans": [...], "tried", "refused": {reason: count},
        "gpus"}``, each plan ``serve_estimate``'s dict (its ``concurrency`` per replica) with ``replicas`` and
        ``gpus`` for the users; no plan when no layout meets the limits (``refused`` says why).

    Raises
    ------
    SpecError
        Without a limit, or without a price for any of ``gpus``.
    """
    if ttft_max is None and tpot_max is None:
        raise SpecError("--ttft-max/--tpot-max", "", "serve-plan needs a limit to meet: --ttft-max S, --tpot-max S")
    options = options or memory_options(mode="inference")
    priced = [g for g in gpus if cost_per_hour is not None or device(g).price() is not None]
    if not priced:
        raise SpecError("--gpu", ", ".join(gpus), "no price for these devices in the catalog: give --cost-per-hour")
    plans, refused, tried = [], {}, 0
    for gpu in priced:
        for dep in _layouts(arch, device(gpu).devices_per_node, input_len, output_len, ttft_max, tpot_max):
            if serving is not None and (serving == "disaggregated") != bool(dep.prefill_replicas):
                continue
            tried += 1
            try:
                est = serve_estimate(arch, gpu, dep, options, limits, cost_per_hour)
            except SpecError as exc:
                why = next((w for w in REFUSALS if w in exc.message), "breaks a layout rule")
                refused[why] = refused.get(why, 0) + 1
                continue
            if users is not None:  # copies of the whole unit (a replica, x prefill + y decode replicas, a node)
                est["replicas"] = -(-users // est["concurrency"])
                est["gpus"] = est["replicas"] * dep.gpus
            plans.append(est)
    plans.sort(key=lambda e: (e["cost_per_mtok"], e["gpus"]))
    return {"plans": plans[:top], "tried": tried, "refused": refused, "gpus": priced}
