"""Memory and compute on top of an architecture: model states, activations, KV cache, FLOPs.

``extend(formulas, structure, options)`` adds memory and compute quantities to an architecture's
formula set (pure sympy). Structural options (``MemoryOptions``) choose the expressions; numeric
knobs (bits per tensor class, parallel degrees, batch, sequence length) are symbols, so every
quantity can be swept. All memory quantities are bytes per device; they are real-valued
(quantized weights have fractional bytes per parameter) and evaluated in float64, exact for
integers below 2^53 bytes (8 PiB).

A training memory model is a backend (``MemoryModel``): one module that says which options it
refuses, its activation and logits terms, and the moments of a step whose largest is the peak.
A new model is one module here and its name in ``engine.options.MEMORY_MODEL_NAMES`` (the registry:
``models.py``). The rest is shared: model states (``states.py``), inference (``inference.py``), FLOPs and
time (``compute.py``).

Sources: ZeRO (Rajbhandari et al. 2020, §3.1, §5, Fig. 1); activations (Korthikanti et al. 2022,
§4.1, Table 2, §4.2.3; Megatron-LM ``theoretical_memory_usage.py``); FlashAttention (Dao et al.
2022, §3.1); KV cache (kipply, "Transformer Inference Arithmetic"); FLOPs (Kaplan et al. 2020
§2.1; PaLM App. B; Narayanan et al. 2021 §5.1 Eq. 3); scaling laws (Kaplan Eq. 1.1-1.5;
Hoffmann et al. 2022 Eq. 2, 4; Besiroglu et al. 2024).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from functools import lru_cache

import sympy

from engine.symbolic.formulas import components as C
from engine.options.structure import ATTENTION_KINDS
from engine.symbolic.formulas.base import FormulaSet, Quantity, Validity
from engine.symbolic.memory.base import FP8_PARTS, STATES, L, Moment, Term, a, dp, ep, etp, mfu, pp, q, quantity, s, tp


from engine.symbolic.memory import compute, inference, serving, states, steptime
from engine.symbolic.memory.models import MEMORY_MODELS, MemoryModel
from engine.symbolic.symbols import symbol
from engine.options import MemoryOptions

__all__ = ["MEMORY_MODELS", "MemoryModel", "MemoryOptions", "Moment", "Term", "extend", "moments"]


@lru_cache(maxsize=512)
def moments(structure, options: MemoryOptions) -> tuple[Moment, ...]:
    """The moments of a step (training) or the prefill (inference) for ``options``."""
    if options.mode == "inference":
        return (inference.moment(structure),)
    return tuple(MEMORY_MODELS[options.memory_model].moments(structure, options))


def refusals(structure, o: MemoryOptions) -> list[str]:
    """What the memory models cannot express for this architecture (empty: everything)."""
    problems = []
    kinds = set(structure.mixer_kinds)
    if o.kv_layout != "latent" and not structure.mla:
        problems.append(f"kv_layout {o.kv_layout} applies to models with multi-head latent attention (MLA)")
    if o.mode != "training":
        return problems
    if kinds & inference.STATE_KINDS:
        problems.append("training memory of Mamba-2 and linear-attention layers is not modelled (their inference "
                        "memory is: --mode inference)")
    # every layer an attention layer (full, sliding or chunked) with the same MLP: the per-layer models apply
    irregular = structure.mla or structure.separate_mlp or structure.dense_layers or bool(kinds - set(ATTENTION_KINDS))
    if irregular and o.memory_model in ("pytorch", "seed") and not problems:
        what = "multi-head latent attention" if structure.mla else "layers of different kinds"
        problems.append(f"memory_model {o.memory_model} describes uniform GPT-2/LLaMA blocks, not {what}; use "
                        "memory_model korthikanti")
    if irregular and o.optimizer == "adafactor":
        problems.append("optimizer adafactor is modelled for uniform attention and MLP layers (not MLA or mixed "
                        "layer kinds)")
    if o.finetune != "none" and irregular:
        problems.append(f"finetune {o.finetune} is modelled for uniform attention and MLP layers")
    return problems


def extend(fs: FormulaSet, structure, options: MemoryOptions) -> FormulaSet:
    """``fs`` (an architecture) plus memory and compute quantities for ``options`` (ValueError naming what the
    memory models cannot express for this architecture)."""
    o = options
    problems = refusals(structure, o)
    if problems and o.mode != "training":
        raise ValueError("; ".join(problems))
    qs = states.quantities(o, structure)
    validity = [*fs.validity, *_validity(structure, o), *steptime.validity(o)]
    if o.mode != "training":  # training splits uneven layer counts (steptime.common.stage_layers); inference's
        # KV cache and weights per stage are n_layers / pp
        validity.append(Validity("pp must divide n_layers", sympy.Eq(sympy.Mod(L, pp), 0)))
    if problems:  # model states and FLOPs still hold; the activations, hence the peak and time, are not modelled
        why = "; ".join(problems)
        qs += compute.quantities(structure, o)
        return replace(fs, quantities={**fs.quantities, **{x.name: x for x in qs}},
                       defaults={**fs.defaults, **states.defaults(o)}, validity=validity,
                       options={**fs.options, **asdict(o)}, title=f"{fs.title}; {o.mode} model states and compute",
                       absent={n: why for n in ("mem_activations", "mem_logits", "mem_peak", "step_time")})
    if o.mode == "training":
        model = MEMORY_MODELS[o.memory_model]
        act, logits = model.activations(structure, o), model.logits(structure, o)
        qs += [quantity("mem_activations", act.expr, "saved activations per device at the start of the backward pass",
                        r"M_{\mathrm{act}}", act.source, note=act.note),
               quantity("mem_logits", logits.expr, "logits, loss and their gradients at the start of the backward pass",
                        r"M_{\mathrm{logits}}", logits.source)]
        validity += model.validity(o)
    else:
        qs += inference.quantities(structure, o)
    qs += _peak(moments(structure, o)) + compute.quantities(structure, o)
    qs += steptime.quantities(structure, o) if o.mode == "training" else serving.quantities(structure, o)
    serving_defaults = serving.defaults(o) if o.mode != "training" else {}
    return replace(fs, quantities={**fs.quantities, **{x.name: x for x in qs}},
                   defaults={**fs.defaults, **states.defaults(o), **steptime.defaults(), **serving_defaults}, validity=validity,
                   options={**fs.options, **asdict(o)}, title=f"{fs.title}; {o.mode} memory and compute")


def _peak(ms: tuple[Moment, ...]) -> list[Quantity]:
    """``mem_peak``: a lone moment is the peak (all model states written as M_states); else one quantity per
    moment and their maximum."""
    if len(ms) == 1:
        m = ms[0]
        total = m.total
        if set(STATES) <= set(m.parts):  # mem_model_states also holds fp8's parts (states.fp8_quantities)
            total = q("mem_model_states") + sympy.Add(*(v for k, v in m.parts.items()
                                                        if k not in (*STATES, *FP8_PARTS)))
        return [quantity("mem_peak", total, m.long_name, m.latex, m.source)]
    return [quantity(f"mem_peak_{m.name}", m.total, m.long_name, m.latex, m.source) for m in ms] + [
        quantity("mem_peak", sympy.Max(*(q(f"mem_peak_{m.name}") for m in ms)),
                 "peak memory per device during a training step", r"M_{\mathrm{peak}}",
                 "the largest of the step's moments")]


def _validity(structure, o: MemoryOptions) -> list[Validity]:
    out = [
        Validity("tp must divide n_heads", sympy.Eq(sympy.Mod(a, tp), 0)),
        Validity("mfu must be at most 1", sympy.Le(mfu, 1)),
    ]
    if structure.moe:  # Megatron-Core's MoE parallel folding: the expert layout folds into the devices of a
        # pipeline stage, dp x tp (x cp in training, as the step time's layout rule expert_stage words it for time
        # and plan; this condition is the memory estimate's, which reads no layout rules)
        out.append(Validity("ep must divide n_experts", sympy.Eq(sympy.Mod(C.n_experts, ep), 0)))
        if o.mode == "training":
            out.append(Validity("ep x etp must divide dp x tp x cp (the expert layout folds into the same devices)",
                                sympy.Eq(sympy.Mod(dp * tp * symbol("cp"), ep * etp), 0)))
        else:
            out.append(Validity("ep x etp must divide dp x tp (the expert layout folds into the same devices)",
                                sympy.Eq(sympy.Mod(dp * tp, ep * etp), 0)))
    if structure.positions == "learned":
        out.append(Validity("seq_len must not exceed n_positions (learned position table)",
                            sympy.Le(s, C.n_positions)))
    if o.mode == "inference" and o.serving == "aggregated":  # an input no aggregated quantity reads
        out.append(Validity("prefill_replicas applies to serving disaggregated (option serving = "
                            "\"disaggregated\"; serve: --prefill-replicas)", sympy.false,
                            only_if_given="prefill_replicas"))
    return out
