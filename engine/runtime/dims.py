"""Natural dims: the swept dims each output of a request depends on, and how a chunk maps onto them.

A quantity's natural dims are the swept inputs left in its expression once the fixed values are folded
in (``FormulaSet.resolve``), in the order of the request's axes; ``valid``'s are those of the validity
conditions that depend on a swept input. A cube with categorical dims (``SweepRequest.categories``)
keeps every categorical dim on every output (the formulas differ per combination) and the union of the
combinations' numeric dims. A quantity with no swept input (seed's ``params_output``) has no dims: a
0-d variable.

Every output is computed and stored on its natural dims only: the kernel (``compile.Kernel``) returns
each over its own dims, sinks define and write each on them, and xarray broadcasts them for users
(``ds.params_total * ds.batch`` spans both). A chunk of the run (``plan.ChunkPlan``: one slice per
axis) holds an output's block ``own_index(index, axes, dims)``; only the chunk that starts at 0 along
every dim the output lacks writes it (``writes``), so an output without the split or walked axes is
written once, not once per chunk.

    >>> from engine.request.spec import load_spec
    >>> natural_dims(load_spec("sweeps/seed.toml"))["params_total"]            # doctest: +SKIP
    ('d_model', 'n_layers')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from engine.request.spec import SweepRequest


def natural_dims(request: "SweepRequest") -> dict[str, tuple[str, ...]]:
    """Output name -> its dims, in axes order: every requested quantity, and ``valid`` when some validity
    condition depends on a swept input."""
    if request.categories:
        from engine.runtime.categories import combinations

        plain = [r for _, r in combinations(request)]
    else:
        plain = [request]
    found: dict[str, set[str]] = {}
    for r in plain:
        for name, names in _plain_dims(r).items():
            found.setdefault(name, set()).update(names)
    return {name: tuple(a for a in request.axes if a in names or a in request.categories)
            for name, names in found.items()}


def _plain_dims(request: "SweepRequest") -> dict[str, set[str]]:
    """The numeric dims of each output of a request without categorical dims."""
    given = {**{a: None for a in request.axes}, **request.fixed}
    out = {q: _swept(request.formulas.resolve(q, given), request) for q in request.quantities}
    conditions = [cond for _, cond in request.formulas.conditions(given)]
    if conditions:
        out["valid"] = set().union(*(_swept(c, request) for c in conditions))
    return out


def _swept(expr, request: "SweepRequest") -> set[str]:
    return set(expression_dims(expr, request.axes))


def expression_dims(expr, axes: Sequence[str]) -> tuple[str, ...]:
    """The ``axes`` a sympy expression depends on (its free symbols), in axes order."""
    names = {s.name for s in getattr(expr, "free_symbols", ())}
    return tuple(a for a in axes if a in names)


def writes(index: tuple, axes: Sequence[str], dims: Sequence[str]) -> bool:
    """Whether the chunk at ``index`` (one slice per axis) writes an output over ``dims``: it starts at 0 along
    every axis the output lacks (its values do not change along them)."""
    return all(_start(ix) == 0 for a, ix in zip(axes, index) if a not in dims)


def own_index(index: tuple, axes: Sequence[str], dims: Sequence[str]) -> tuple:
    """A chunk's index (one slice per axis) restricted to an output's ``dims``: where its block goes."""
    return tuple(ix for a, ix in zip(axes, index) if a in dims)


def expand(values, dims: Sequence[str], axes: Sequence[str]):
    """``values`` over ``dims`` reshaped to broadcast against an array over ``axes`` (a superset, both in the same
    order): length 1 along the axes it lacks. numpy or JAX arrays."""
    shape = iter(values.shape)
    return values.reshape(tuple(next(shape) if a in dims else 1 for a in axes))


def _start(index) -> int:
    return (index.start or 0) if isinstance(index, slice) else int(index)
