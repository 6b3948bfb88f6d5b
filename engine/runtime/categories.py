"""Categorical dims: structural choices (recompute, ZeRO stage, sequence parallelism, gpu, ...) as dims of one cube.

A request with categorical dims (``SweepRequest.categories``; the spec side is in
``engine.request.spec``) is cut into slabs, one per combination of labels. A ``Slab`` is a plain
request over the numeric axes with that combination's options, formula set and fixed values
(``SweepRequest.variants``), so it compiles into its own kernel through ``sweep.kernel_for`` (cached:
one compile per combination) and runs through the one pipeline like any request. Its chunks land in
the combination's slab of the cube: ``Slab.index`` puts a length-1 slice at every categorical dim of
a chunk's index, ``Slab.to_host`` gives its values that shape and the cube's dtypes (the one dtype
every combination's kernel gives a quantity; int64 in one and float64 in another make float64, the
integer fill becoming NaN), and a ``valid`` of ones where the combination has no validity condition
while another has. A plain request is one slab that places nothing. Slabs come in grid order of the
categorical dims (the first categorical dim slowest).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from engine.request.spec import DEVICE_DIM, SweepRequest, combination_text as describe, option_specs

if TYPE_CHECKING:
    from engine.runtime.compile import Kernel


@dataclass(frozen=True)
class Slab:
    """One combination of a cube's categorical labels: where it sits and the plain request that computes it.

    Attributes:
        labels: categorical dim -> this combination's label (empty for a plain request).
        at: per dim of the cube, the combination's position along a categorical dim, None along a numeric one.
        request: the combination as a plain request over the numeric axes.
        kernel: its compiled kernel, once ``sweep.run`` has built it.
    """

    labels: dict[str, Any]
    at: tuple[int | None, ...]
    request: SweepRequest
    kernel: "Kernel | None" = None

    def index(self, index: tuple) -> tuple:
        """A chunk's index over the numeric axes -> its index in the cube."""
        numeric = iter(index)
        return tuple(next(numeric) if p is None else slice(p, p + 1) for p in self.at)

    def shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """A shape over the numeric axes -> the same block's shape in the cube (1 along the categorical dims)."""
        numeric = iter(shape)
        return tuple(next(numeric) if p is None else 1 for p in self.at)

    def to_host(self, device_out, split_axis: int, n_valid: int, dtypes: Mapping[str, np.dtype]) -> dict:
        """One chunk of this combination on the host as a block of the cube, in the cube's ``dtypes``."""
        host = self.kernel.to_host(device_out, split_axis, n_valid)
        valid = host.get("valid")
        shape = self.shape(next(iter(host.values())).shape)
        out = {}
        for q, dtype in dtypes.items():
            if q in host:
                out[q] = _as(host[q], dtype, valid).reshape(shape)
            else:  # the combination has no validity condition: every point of it is valid
                out[q] = np.ones(shape, dtype)
        return out


def slabs(request: SweepRequest) -> list[Slab]:
    """The slabs of ``request`` in grid order: one per combination of the labels it holds."""
    if not request.categories:
        return [Slab({}, (None,) * len(request.axes), request)]
    out = []
    for position in itertools.product(*(range(len(request.axes[c])) for c in request.categories)):
        labels = {c: request.axes[c][i].item() for c, i in zip(request.categories, position)}
        at = dict(zip(request.categories, position))
        out.append(Slab(labels, tuple(at.get(a) for a in request.axes), _plain(request, labels)))
    return out


def combinations(request: SweepRequest) -> list[tuple[dict[str, Any], SweepRequest]]:
    """Every combination of the spec's labels, in grid order, with its plain request: also those a share
    (``sweep.process_share``) leaves out, so every part of a run describes the whole run alike."""
    out = []
    for chosen in request.variants:
        labels = dict(zip(request.categories, chosen))
        out.append((labels, _plain(request, labels)))
    return out


def _plain(request: SweepRequest, labels: Mapping[str, Any]) -> SweepRequest:
    """The combination ``labels`` of a categorical request as a plain request over the numeric axes."""
    variant = request.variants[tuple(labels.values())]
    numeric = {a: v for a, v in request.axes.items() if a not in request.categories}
    return replace(request, axes=numeric, categories=(), variants={}, options=variant.options, fixed=variant.fixed,
                   formulas=variant.formulas)


class Stack:
    """What sinks see of a categorical cube's kernels together: the cube's outputs, their dtypes, its numerics."""

    def __init__(self, request: SweepRequest):
        self.numerics = request.numerics
        self.dtypes = cube_dtypes(request)

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(self.dtypes)

    @property
    def bytes_per_point(self) -> int:
        return sum(d.itemsize for d in self.dtypes.values())


def cube_dtypes(request: SweepRequest) -> dict[str, np.dtype]:
    """Each output's dtype in the cube, as every combination's kernel gives it (int64 in one and float64 in
    another: float64), and ``valid`` (uint8) when any combination has a validity condition. Read from
    the formulas of every combination of the spec, so the parts of a split run agree."""
    plain = [r for _, r in combinations(request)]
    dtypes = {q: np.result_type(*(request.numerics.output_dtype(r.formulas.quantities[q].integer) for r in plain))
              for q in request.quantities}
    if any(conditions(r) for r in plain):
        dtypes["valid"] = np.dtype(np.uint8)
    return dtypes


def conditions(request: SweepRequest, formulas=None) -> list[tuple[str, Any]]:
    """The validity conditions (message, sympy condition) of a plain request's grid: what ``sweep.kernel_for``
    compiles into ``valid``, what its attrs list. ``formulas`` defaults to the request's."""
    return (formulas or request.formulas).conditions({**{k: None for k in request.axes}, **request.fixed})


def _as(values: np.ndarray, dtype: np.dtype, valid: np.ndarray | None) -> np.ndarray:
    """``values`` in the cube's ``dtype``; an integer fill that becomes a float becomes NaN."""
    if values.dtype == dtype:
        return values
    out = values.astype(dtype)
    if valid is not None and out.dtype.kind == "f":
        out[valid == 0] = np.nan
    return out


def label_attrs(name: str) -> dict[str, str]:
    """Attributes of a categorical dim's coordinate: what the option (or ``gpu``) means, and that it is categorical."""
    if name == DEVICE_DIM:
        return {"long_name": "device: a hardware catalog name (llm-sweep time --gpu) or a device TOML file",
                "categorical": "device"}
    spec = _option_spec(name)
    return {"long_name": spec.meaning if spec else f"structural option {name}", "categorical": "structural option"}


def _option_spec(name: str):
    """The ``OptionSpec`` of option ``name``: of an architecture or the memory model, else of a formula set."""
    from engine.symbolic.formulas import FORMULA_SETS

    for specs in (option_specs(None), *(option_specs(s) for s in FORMULA_SETS)):
        if name in specs:
            return specs[name]
    return None


def by_combination(request: SweepRequest, values: Sequence[str]) -> str:
    """One line per combination of ``request`` (``combinations`` order): ``recompute = 'full', zero = 3: VALUE``."""
    return "\n".join(f"{describe(labels)}: {v}" for (labels, _), v in zip(combinations(request), values))


def cube_shape(request: SweepRequest, shape: Sequence[int]) -> tuple[int, ...]:
    """A block's shape over the numeric axes -> its shape in the cube of ``request`` (1 along the categorical dims)."""
    numeric = iter(shape)
    return tuple(1 if a in request.categories else next(numeric) for a in request.axes)
