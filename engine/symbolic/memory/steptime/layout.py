"""The rules a training layout obeys, once, as data (``LAYOUT_RULES``): a sweep's validity mask and
``llm-sweep time``'s point errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import sympy

from engine.symbolic.formulas.base import Validity
from engine.symbolic.memory.base import b, dp, ep, pp, s, tp, vp
from engine.symbolic.memory.steptime.common import cp, global_batch
from engine.symbolic.symbols import symbol

@dataclass(frozen=True)
class LayoutRule:
    """One rule a training layout obeys: once, for every caller.

    Attributes:
        name: a short identifier.
        condition: a sympy boolean over input symbols (tp, pp, dp, cp, batch, vp, ep, etp, n_gpus, ...).
        flag: the flag a point error blames (``llm-sweep time``).
        message: what must hold, in words: the sweep's validity message.
        explain: the point error of a layout that breaks it, from the layout's values by symbol name (what
            was wrong and what would be valid); None where the formula set's check reports it (it needs a
            size of the architecture).
        only_if_given: the rule holds once this input is fixed or swept: ``global_batch`` for a training
            step, ``n_gpus`` for a search over the layouts of a device count.
    """

    name: str
    condition: sympy.Basic
    flag: str
    message: str
    explain: Callable[[Mapping[str, int]], str] | None = None
    only_if_given: str = "global_batch"

    def holds(self, values: Mapping[str, int]) -> bool:
        """Whether the layout of ``values`` (every symbol of the condition given) obeys the rule."""
        return bool(self.condition.xreplace({symbol(k): sympy.Integer(v) for k, v in values.items()}))

    def applies(self, values: Mapping[str, int]) -> bool:
        """Whether ``values`` give every input of the condition (a point check can decide it)."""
        return all(x.name in values for x in self.condition.free_symbols)


def _valid_gpus(v: Mapping[str, int]) -> str:
    model = v["tp"] * v["pp"] * v["cp"]
    valid = [g for g in range(model, 4 * model + 1, model)]
    return f"is not a multiple of tp x pp x cp = {model}; valid: {', '.join(map(str, valid))}, ..."


def divisors_text(n: int) -> str:
    """``1, 2, 3, 4, 6, 12``: the divisors of ``n`` as a list of valid values (the first 12, then ``...``)."""
    divisors = [g for g in range(1, n + 1) if n % g == 0]
    return f"{', '.join(map(str, divisors[:12]))}{', ...' if len(divisors) > 12 else ''}"


_g, _sg, _etp, _kv = symbol("n_gpus"), symbol("shard_group"), symbol("etp"), symbol("n_kv_heads")


class StageSplitError(ValueError):
    """A first/last stage count that cannot be: ``flag`` (the option to blame) and what is valid."""

    def __init__(self, flag: str, value: int, message: str):
        super().__init__(message)
        self.flag, self.value = flag, value


def stage_split(n_layers: int, pp: int, vp: int = 1, first: int = 0, last: int = 0) -> tuple[int, int]:
    """``(stage_layers, in_flight_layers)`` of a pipeline (the inputs of ``common.stage_layers`` and
    ``common.in_flight_layers``): the fullest stage's layers, and the largest layers x micro-batches in flight
    of a stage under 1F1B (stage i holds pp - i). ``first`` / ``last``: the first and last stages' layers
    (Megatron-LM --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers; 0: not given), the
    rest split as evenly as possible over the middle stages; neither given: every stage as even as possible in
    whole layers per virtual chunk, the fuller ones first.

    Raises
    ------
    StageSplitError
        A count given without a pipeline or with interleaving, or first + last leaving a middle stage no layer.
    """
    if not (first or last):
        stage = -(-n_layers // (pp * vp)) * vp
        return stage, pp * stage
    flag, value = ("--first-stage-layers", first) if first else ("--last-stage-layers", last)
    if pp == 1:
        raise StageSplitError(flag, value, f"sets the {'first' if first else 'last'} pipeline stage's layers: give "
                                           "--pp > 1")
    if vp != 1:
        raise StageSplitError("--vp", vp, "first/last stage layers are modelled without interleaving: give --vp 1")
    mid = pp - (1 if first else 0) - (1 if last else 0)
    rest = n_layers - first - last
    given = " + ".join(x for x in (f"first {first}" if first else "", f"last {last}" if last else "") if x)
    if mid == 0 and rest != 0:
        raise StageSplitError(flag, value, f"{given} layers must add up to the {n_layers} layers: pp {pp} has no "
                                           f"middle stage" + (f" (valid: --first-stage-layers {first} "
                                                              f"--last-stage-layers {n_layers - first}, or --pp > 2)"
                                                              if 0 < first < n_layers else ""))
    if mid > 0 and rest < mid:
        raise StageSplitError(flag, value, f"{given} layers leave {rest} for {mid} middle stage"
                                           f"{'s' if mid > 1 else ''} of the {n_layers} layers: first + last may be "
                                           f"at most {n_layers - mid}")
    middle = -(-rest // mid) if mid else 0
    stage = max(first, last, middle)
    in_flight = max(pp * (first or middle), (pp - 1) * middle, last)
    return stage, in_flight


_sp_rule = LayoutRule(
    "sequence_parallel_tp", sympy.Gt(tp, 1), "--sequence-parallel",
    "sequence parallelism splits the tensor-parallel regions: it needs tp > 1 (Megatron turns it off at tp 1, "
    "the same layout without it)", only_if_given="n_gpus")

# The layout rules, in the order a point is checked (``timing.Layout.resolved`` reports the first it breaks). The
# same records are a sweep's validity (``validity``): ``llm-sweep plan`` and sweeps/plan-gpt3-175b.toml mask the
# layouts that break them. Rules of the architecture's sizes (tp | n_heads, pp | n_layers, ep | n_experts) are
# the memory formulas' (``engine.symbolic.memory``).
LAYOUT_RULES = (
    LayoutRule("devices", sympy.Eq(sympy.Mod(_g, tp * pp * cp), 0), "--gpus", "tp x pp x cp must divide n_gpus",
               _valid_gpus),
    LayoutRule("data_parallel", sympy.Eq(dp * tp * pp * cp, _g), "--dp", "dp x tp x pp x cp must equal n_gpus",
               lambda v: f"tp x pp x cp x dp = {v['dp'] * v['tp'] * v['pp'] * v['cp']} devices, but --gpus is "
                         f"{v['n_gpus']}; --dp {v['n_gpus'] // (v['tp'] * v['pp'] * v['cp'])} uses them all"),
    LayoutRule("micro_batches", sympy.Eq(sympy.Mod(global_batch, dp * b), 0), "--global-batch",
               "global_batch must be whole micro-batches (batch) on every data-parallel rank",
               lambda v: f"must be a multiple of dp x micro-batch = {v['dp']} x {v['batch']} = {v['dp'] * v['batch']} "
                         "(whole micro-batches on every data-parallel rank)"),
    LayoutRule("interleaving", sympy.Or(sympy.Eq(vp, 1), sympy.Gt(pp, 1)), "--vp",
               "virtual pipeline stages (vp > 1) interleave a pipeline: they need pp > 1",
               lambda v: "virtual pipeline stages interleave a pipeline: give --pp > 1"),
    # uneven pipeline stages need no rule: the bottleneck stage holds ceiling(n_layers / (pp vp)) vp layers
    # (common.stage_layers); Megatron's first/last stage counts are checked by ``stage_split``
    LayoutRule("context", sympy.Eq(sympy.Mod(s, cp), 0), "--cp", "cp must divide seq_len"),
    LayoutRule("shard_group", sympy.Eq(sympy.Mod(dp, _sg), 0), "--shard-group", "shard_group must divide dp",
               lambda v: f"must divide dp = {v['dp']}; valid: {divisors_text(v['dp'])}"),
    LayoutRule("expert_stage", sympy.Eq(sympy.Mod(dp * tp * cp, ep * _etp), 0), "--ep",
               "ep x etp must divide dp x tp x cp (the devices of a pipeline stage)",
               lambda v: f"ep x etp = {v['ep'] * v['etp']} must divide dp x tp x cp = {v['dp'] * v['tp'] * v['cp']} "
                         "(the devices of a pipeline stage)"),
    LayoutRule("kv_heads", sympy.Eq(sympy.Mod(_kv, tp), 0), "--tp",
               "tp must divide n_kv_heads (Megatron splits the key/value heads over tp)", only_if_given="n_gpus"),
)


def layout_rules(o) -> tuple[LayoutRule, ...]:
    """The layout rules of a training step with options ``o`` (sequence parallelism adds its own)."""
    if o.mode != "training":
        return ()
    return LAYOUT_RULES + ((_sp_rule,) if o.sequence_parallel else ())


def validity(o) -> list[Validity]:
    """A training step's layout rules (``LAYOUT_RULES``) as validity conditions, each once what it needs is
    given (so a sweep over tp, pp, dp, batch with n_gpus and global_batch fixed masks the layouts that do not
    use every device or split the batch)."""
    return [Validity(r.message, r.condition, only_if_given=r.only_if_given) for r in layout_rules(o)]

