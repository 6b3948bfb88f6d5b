"""Step time of one layout on one device type: the API behind ``llm-sweep time``.

    >>> from engine.catalog.model import architecture
    >>> from engine.catalog.timing import Layout, time_estimate
    >>> est = time_estimate(architecture("llama-2-7b"), "a100-80gb", Layout(gpus=8, seq_len=4096,
    ...                     global_batch=64, micro_batch=1, tp=2))            # doctest: +SKIP
    >>> est["step_time"], est["mfu"]                                          # doctest: +SKIP

The formulas are ``engine/symbolic/memory/steptime/`` (sources there); memory comes from the
Korthikanti model (tensor, pipeline, sequence parallelism). Serving is ``engine.catalog.serving``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.catalog.families import Architecture
from engine.catalog.hardware import device
from engine.catalog.model import estimate_formulas, memory_estimate, memory_options
from engine.errors import SpecError
from engine.symbolic.memory.steptime import LAYOUT_RULES, divisors_text
from engine.symbolic.memory.steptime.layout import StageSplitError, stage_split

TRAINING_PARTS = ("compute", "tp", "ep", "cp", "bubble", "p2p", "dp", "optimizer")


@dataclass(frozen=True)
class Layout:
    """A parallel layout and batch of a training step (or an inference batch).

    Parameters
    ----------
    gpus : int
        Devices in all.
    seq_len, global_batch : int
        Tokens per sequence; sequences per optimizer step.
    micro_batch : int
        Sequences per micro-batch on one data-parallel rank.
    tp, pp, cp, ep, vp : int
        Tensor, pipeline, context and expert parallelism; virtual pipeline stages per device.
    dp : int, optional
        Data parallelism; None means ``gpus / (tp x pp x cp)``.
    shard_group : int, optional
        Devices a ZeRO/FSDP shard spans (hybrid sharding); None means dp.
    etp : int, optional
        Expert tensor parallelism (MoE); None means tp.
    first_stage_layers, last_stage_layers : int
        Layers of the first and of the last pipeline stage (Megatron-LM --decoder-first-pipeline-num-layers /
        --decoder-last-pipeline-num-layers), the rest split evenly over the middle stages; 0 (default): every
        stage as even as possible, the fullest holding ceiling(n_layers / (pp x vp)) x vp layers.

    The layout rules (``engine.symbolic.memory.steptime.LAYOUT_RULES``) are checked by ``resolved``.
    """

    gpus: int
    seq_len: int
    global_batch: int
    micro_batch: int = 1
    tp: int = 1
    pp: int = 1
    dp: int | None = None
    cp: int = 1
    ep: int = 1
    vp: int = 1
    shard_group: int | None = None
    etp: int | None = None  # expert tensor parallelism (MoE): None means tp
    first_stage_layers: int = 0  # 0: the even split
    last_stage_layers: int = 0

    def resolved(self) -> "Layout":
        """The layout with ``dp``, ``shard_group`` and ``etp`` filled.

        Returns
        -------
        Layout
            The same layout, every field given.

        Raises
        ------
        SpecError
            A field that is not a positive integer, or the first of ``steptime.LAYOUT_RULES`` the layout breaks
            (naming the flag and what would be valid).
        """
        for name in ("gpus", "seq_len", "global_batch", "micro_batch", "tp", "pp", "cp", "ep", "vp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise SpecError(_flag(name), str(value), "must be a positive integer")
        model = self.tp * self.pp * self.cp
        dp = self.gpus // model if self.dp is None else self.dp
        group = dp if self.shard_group is None else self.shard_group
        if isinstance(group, bool) or not isinstance(group, int) or group <= 0:
            raise SpecError("--shard-group", str(group), f"must divide dp = {dp}; valid: {divisors_text(dp)}")
        etp = self.tp if self.etp is None else self.etp
        if isinstance(etp, bool) or not isinstance(etp, int) or etp <= 0:
            raise SpecError("--etp", str(etp), "must be a positive integer")
        for name in ("first_stage_layers", "last_stage_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SpecError(_flag(name), str(value), "must be a non-negative integer (0 or left out: the even split)")
        values = {"n_gpus": self.gpus, "seq_len": self.seq_len, "global_batch": self.global_batch,
                  "batch": self.micro_batch, "tp": self.tp, "pp": self.pp, "dp": dp, "cp": self.cp, "ep": self.ep,
                  "vp": self.vp, "shard_group": group, "etp": etp}
        for rule in LAYOUT_RULES:
            if rule.explain is not None and rule.applies(values) and not rule.holds(values):
                raise SpecError(rule.flag, str(values[_SYMBOL_OF[rule.flag]]), rule.explain(values))
        return Layout(self.gpus, self.seq_len, self.global_batch, self.micro_batch, self.tp, self.pp, dp, self.cp,
                      self.ep, self.vp, group, etp, self.first_stage_layers, self.last_stage_layers)


# the value a rule's flag names, by symbol
_SYMBOL_OF = {"--gpus": "n_gpus", "--dp": "dp", "--global-batch": "global_batch", "--vp": "vp",
              "--shard-group": "shard_group", "--ep": "ep", "--cp": "cp", "--tp": "tp"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_sharding(arch: Architecture, lay: Layout, options: Any) -> None:
    """SpecError for hybrid sharding without ZeRO, or expert tensor parallelism on a model without experts."""
    if lay.shard_group != lay.dp and options.zero == 0:
        raise SpecError("--shard-group", str(lay.shard_group), "hybrid sharding shards the model states: give --zero "
                                                               "1, 2 or 3 (3 = FSDP HYBRID_SHARD)")
    if not arch.structure.moe and lay.etp != lay.tp:
        raise SpecError("--etp", str(lay.etp), f"expert tensor parallelism applies to MoE models; {arch.label} has "
                                               "no experts")


def time_estimate(arch: Architecture, gpu: str, layout: Layout, options: Any = None) -> dict[str, Any]:
    """Step time of training ``arch`` on ``layout`` of ``gpu`` devices (serving: ``engine.catalog.serving``).

    Parameters
    ----------
    arch : Architecture
        The model (``engine.architecture``).
    gpu : str
        A catalog device or a device TOML file (``engine.catalog.hardware.device``).
    layout : Layout
        The parallel layout and batch.
    options : MemoryOptions, optional
        Memory and compute options (``memory_options``); default the Korthikanti model with flash attention.

    Returns
    -------
    dict
        ``{"step_time", "tokens_per_s", "mfu", "hfu", "mem_peak", "hbm", "fits", "gpu", "layout", "stage_layers",
        "breakdown": {compute, tp, ep, cp, bubble, p2p, dp, optimizer}}`` (seconds per step; the breakdown sums
        to step_time).

    Raises
    ------
    SpecError
        A layout that breaks a rule (naming the flag and what is valid), an unknown device, options whose step
        time is not modelled for ``arch``, an input the configuration does not give.
    """
    options = options or memory_options(memory_model="korthikanti", attention="flash")
    if options.mode != "training":
        raise SpecError("mode", options.mode, "serving is priced by engine.catalog.serving.serve_estimate (llm-sweep "
                                              "serve): time to first token and per output token at a concurrency")
    lay = layout.resolved()
    if lay.ep > 1 and not arch.structure.moe:
        raise SpecError("--ep", str(lay.ep), f"expert parallelism applies to MoE models; {arch.label} has no experts")
    dev = device(gpu)
    values = {**dev.values(options.precision, options.attention), "batch": lay.micro_batch, "seq_len": lay.seq_len,
              "global_batch": lay.global_batch, "dp": lay.dp, "tp": lay.tp, "pp": lay.pp, "vp": lay.vp,
              "cp": lay.cp, "shard_group": lay.shard_group}
    try:  # the bottleneck stage and the activations' peak stage (inputs whose defaults are the even split's)
        stage, in_flight = stage_split(arch.values["n_layers"], lay.pp, lay.vp, lay.first_stage_layers,
                                       lay.last_stage_layers)
    except StageSplitError as e:
        raise SpecError(e.flag, str(e.value), str(e)) from None
    if lay.first_stage_layers or lay.last_stage_layers:
        values.update(stage_layers=stage, in_flight_layers=in_flight)
    _check_sharding(arch, lay, options)
    if arch.structure.moe:
        values.update(ep=lay.ep, etp=lay.etp)
    fs = estimate_formulas(arch.family, arch.structure, options)
    if "step_time" in fs.absent:
        raise SpecError(arch.label, "options", fs.absent["step_time"])
    memory = memory_estimate(arch, options, values)  # checks the layout rules (tp | heads, pp | layers, ...)
    given = {**arch.values, **values}

    def ev(name: str) -> float:
        value = fs.evaluate_exact(name, given)
        free = sorted(s.name for s in getattr(value, "free_symbols", ()))
        if free:  # an input neither the configuration nor the layout gives
            raise SpecError(arch.label, name, f"needs {', '.join(free)} (the configuration does not give them; "
                                              "--set is not available here)")
        return float(value)

    breakdown = {k: ev(f"time_{k}") for k in TRAINING_PARTS}
    out: dict[str, Any] = {"step_time": ev("step_time"), "tokens_per_s": ev("tokens_per_s"), "mfu": ev("step_mfu"),
                           "hfu": ev("step_hfu")}
    out.update(mem_peak=memory["peak"], hbm=dev.hbm_bytes, fits=memory["peak"] <= dev.hbm_bytes, gpu=dev.name,
               layout={k: getattr(lay, k) for k in ("gpus", "tp", "pp", "dp", "cp", "ep", "etp", "vp", "shard_group",
                                                     "micro_batch", "global_batch", "seq_len")})
    if lay.first_stage_layers or lay.last_stage_layers:
        out["layout"].update(first_stage_layers=lay.first_stage_layers, last_stage_layers=lay.last_stage_layers)
    out["stage_layers"] = stage  # the bottleneck pipeline stage's layers
    out["breakdown"] = breakdown
    return out
