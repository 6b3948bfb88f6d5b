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

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import sympy

from engine.symbolic.formulas.base import exact_number

if TYPE_CHECKING:
    from engine.request.spec import SweepRequest


def natural_dims(request: "SweepRequest") -> dict[str, tuple[str, ...]]:
    """Output name -> its dims, in axes order: every requested quantity, and ``valid`` when some validity
    condition depends on a swept input."""
    if request.categories:
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
    """The numeric dims of each output of a request without categorical dims, from the dependency graph
    (``FormulaSet.reaches``): no expression is inlined or resolved."""
    fs = request.formulas
    out = _folded_dims(request)
    # conditions are small expressions over inputs: applied exactly (a condition the fixed values make true
    # drops out, e.g. n_dense_layers <= n_layers at n_dense_layers = 0, and adds no dim to ``valid``)
    conditions = [cond for _, cond in fs.conditions({**{a: None for a in request.axes}, **request.fixed})]
    if conditions:
        out["valid"] = set().union(*(set(expression_dims(c, request.axes)) for c in conditions))
    return out


def _folded_dims(request: "SweepRequest") -> dict[str, set[str]]:
    """Each requested quantity's swept inputs, from the dependency graph with the fixed values folded in, no
    definition inlined into another whole: a sum-and-product part is rebuilt with the defaults and values applied
    and the sub-quantities of that kind put in (cheap, and what cancels there goes: ``params_active -
    params_embedding``, ``head_dim * n_kv_heads`` at their defaults), a part with ``Max`` or ``Piecewise`` is
    walked without rebuilding it (``_Walker``: a branch the constants decide, ``time_p2p`` at ``pp = 1`` is 0). A
    superset of the free symbols of the resolved expression only where terms cancel across such a part."""
    fs, axes = request.formulas, set(request.axes)
    given = {**{a: None for a in request.axes}, **request.fixed}
    by_symbol = {q.symbol: q.name for q in fs.quantities.values()}
    folded: dict[str, tuple] = {}  # quantity -> (its folded definition or constant, its dims)

    def visit(name: str) -> tuple:
        if name not in folded:
            definition = fs.quantities[name].definition
            if _cheap(definition):
                folded[name] = fold(definition)
            else:  # not rebuilt (a Max or Piecewise costs sympy tens of ms): walked as it is
                value, dims = walk(definition)
                folded[name] = (definition if value is None else value, dims)
        return folded[name]

    def fold(expr) -> tuple:
        """A sum-and-product expression with defaults and values applied and its cheap sub-quantities put in."""
        inlined = {}
        for s in expr.free_symbols:
            if s in by_symbol:
                value, _ = visit(by_symbol[s])
                if value.is_number or _cheap(value):
                    inlined[s] = value
        expr = fs.apply(expr.xreplace(inlined) if inlined else expr, given)
        dims = set()
        for s in expr.free_symbols:
            dims |= visit(by_symbol[s])[1] if s in by_symbol else ({s.name} & axes)
        return expr, dims

    def leaf(s) -> tuple:
        """A symbol's constant value (or None) and dims: a quantity's folded ones, a fixed input's value, a swept
        input itself, an input neither given nor defaulted nothing, a defaulted one its default's."""
        if s in by_symbol:
            value, dims = visit(by_symbol[s])
            return (value if value.is_number else None), dims
        if s.name in axes:
            return None, {s.name}
        if s.name in request.fixed:
            return exact_number(request.fixed[s.name]), set()
        if s.name in fs.defaults:
            return walk(sympy.sympify(fs.defaults[s.name]))
        return None, set()

    def folded_part(expr) -> tuple:
        value, dims = fold(expr)
        return (value if value.is_number or value in (sympy.true, sympy.false) else None), dims

    walk = _Walker(leaf, folded_part)
    return {q: visit(q)[1] for q in request.quantities}


class _Walker:
    """The swept dims of an expression without rebuilding its ``Max`` and ``Piecewise`` parts: the tree is walked,
    leaves answered by ``leaf`` and sum-and-product parts by ``fold`` (each: constant value or None, dims). In a
    sum or product the sum-and-product arguments are folded together (so ``head_dim * n_kv_heads`` cancels
    ``n_heads`` beside a ``Piecewise`` factor); a node whose arguments are all constants is evaluated (numbers
    only: cheap), a product with a zero factor is 0, and a ``Piecewise`` keeps only the branches whose conditions
    the constants do not decide False, up to the first they decide True."""

    def __init__(self, leaf, fold):
        self.leaf, self.fold = leaf, fold

    def __call__(self, expr) -> tuple:
        if expr.is_Number or expr in (sympy.true, sympy.false):
            return expr, set()
        if expr.is_Symbol:
            return self.leaf(expr)
        if _cheap(expr):
            return self.fold(expr)
        if isinstance(expr, sympy.Piecewise):
            return self._piecewise(expr)
        if expr.is_Mul or expr.is_Add:
            cheap = [a for a in expr.args if _cheap(a)]
            parts = ([self.fold(expr.func(*cheap))] if cheap else []) + [self(a) for a in expr.args if not _cheap(a)]
        else:
            parts = [self(a) for a in expr.args]
        if all(v is not None for v, _ in parts):
            return expr.func(*(v for v, _ in parts)), set()
        if expr.is_Mul and any(v is not None and v.is_zero for v, _ in parts):
            return sympy.Integer(0), set()
        return None, set().union(*(d for _, d in parts))

    def _piecewise(self, expr) -> tuple:
        dims, live = set(), []
        for branch, cond in expr.args:
            decided, cond_dims = self(cond)
            if decided is sympy.false:
                continue
            value, branch_dims = self(branch)
            live.append(value)
            dims |= branch_dims
            if decided is sympy.true:
                break
            dims |= cond_dims
        if len(live) == 1 and live[0] is not None and not dims:
            return live[0], set()
        return None, dims


def _cheap(expr) -> bool:
    """A folded definition built from sums and products alone (no ``Max``, ``Piecewise``, ``floor``, ...): put in
    its parents it costs nothing to rebuild, and terms that cancel there (``params_active - params_embedding``)
    take their inputs with them. What has functions stays a symbol: rebuilding those is what made resolving slow."""
    return not expr.has(sympy.Piecewise, sympy.Max, sympy.Min) and not expr.atoms(sympy.Function)


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


def combinations(request: "SweepRequest") -> list[tuple[dict[str, Any], "SweepRequest"]]:
    """Every combination of the spec's labels, in grid order, with its plain request: also those a share
    (``sweep.process_share``) leaves out, so every part of a run describes the whole run alike."""
    out = []
    for chosen in request.variants:
        labels = dict(zip(request.categories, chosen))
        out.append((labels, plain_request(request, labels)))
    return out


def plain_request(request: "SweepRequest", labels: Mapping[str, Any]) -> "SweepRequest":
    """The combination ``labels`` of a categorical request as a plain request over the numeric axes."""
    variant = request.variants[tuple(labels.values())]
    numeric = {a: v for a, v in request.axes.items() if a not in request.categories}
    return replace(request, axes=numeric, categories=(), variants={}, options=variant.options, fixed=variant.fixed,
                   formulas=variant.formulas)
