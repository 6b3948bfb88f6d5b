"""Categorical dims: structural choices (recompute, ZeRO stage, sequence parallelism, gpu, ...) as dims of one cube.

A request with categorical dims (``SweepRequest.categories``; the spec side is in
``engine.request.spec``) is cut into slabs, one per combination of labels. A ``Slab`` is a plain
request over the numeric axes with that combination's options, formula set and fixed values
(``SweepRequest.variants``), so it compiles into its own kernel through ``sweep.kernel_for`` (cached:
one compile per combination) and runs through the one pipeline like any request. Its chunks land in
the combination's slab of the cube: ``Slab.index`` puts a length-1 slice at every categorical dim of
a chunk's index, ``Slab.to_host`` gives its values that shape and the cube's dtypes (the one dtype
every combination's kernel gives a quantity; int64 in one and float64 in another make float64, the
integer fill becoming NaN). Natural dims (``engine.runtime.dims``): every output of the cube spans
every categorical dim and the union of its numeric dims over the combinations, so each combination's
kernel is compiled over those numeric dims (``Slab.dims``; a ``valid`` of ones where the combination
has no validity condition while another has). A plain request is one slab that places nothing and
whose kernel takes its natural dims. Slabs come in grid order of the categorical dims (the first
categorical dim slowest).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from engine.request.spec import DEVICE_DIM, SweepRequest, combination_text as describe, option_specs
from engine.request.numerics import INT64_FILL
from engine.runtime.dims import combinations, natural_dims, plain_request, writes
from engine.symbolic.formulas import FORMULA_SETS

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
        dims: output -> the numeric dims its kernel computes it over (the cube's); None: its natural dims.
    """

    labels: dict[str, Any]
    at: tuple[int | None, ...]
    request: SweepRequest
    kernel: "Kernel | None" = None
    dims: dict[str, tuple[str, ...]] | None = None

    @property
    def axes(self) -> tuple[str, ...]:
        """The cube's dims: the categorical ones where ``at`` places them, the numeric axes between."""
        categorical, numeric = iter(self.labels), iter(self.request.axes)
        return tuple(next(numeric) if p is None else next(categorical) for p in self.at)

    def own_dims(self, q: str) -> tuple[str, ...]:
        """The cube's dims of output ``q``: every categorical dim and the numeric dims its kernel computes."""
        return tuple(a for a in self.axes if a in self.labels or a in self.kernel.dims[q])

    def index(self, index: tuple) -> tuple:
        """A chunk's index over the numeric axes -> its index in the cube."""
        numeric = iter(index)
        return tuple(next(numeric) if p is None else slice(p, p + 1) for p in self.at)

    def to_host(self, device_out, split_axis: int, n_valid: int, dtypes: Mapping[str, np.dtype],
                index: tuple | None = None) -> dict:
        """One chunk of this combination on the host, in the cube's ``dtypes``: each output as a block of the cube
        over its own dims (length 1 along the categorical ones). With the chunk's ``index`` in the cube, only the
        outputs that chunk writes (``dims.writes``); without, every output."""
        names = [q for q in dtypes if index is None or writes(index, self.axes, self.own_dims(q))]
        host = self.kernel.to_host(device_out, split_axis, n_valid, names)
        return {q: _as(host[q], dtypes[q]).reshape(self._block_shape(q, host[q].shape)) for q in names}

    def _block_shape(self, q: str, shape: Sequence[int]) -> tuple[int, ...]:
        """A block of ``q`` over its numeric dims -> over its dims in the cube (1 along the categorical ones)."""
        numeric = iter(shape)
        return tuple(1 if a in self.labels else next(numeric) for a in self.own_dims(q))


def slabs(request: SweepRequest) -> list[Slab]:
    """The slabs of ``request`` in grid order: one per combination of the labels it holds."""
    if not request.categories:
        return [Slab({}, (None,) * len(request.axes), request)]
    dims = numeric_dims(request)
    out = []
    for position in itertools.product(*(range(len(request.axes[c])) for c in request.categories)):
        labels = {c: request.axes[c][i].item() for c, i in zip(request.categories, position)}
        at = dict(zip(request.categories, position))
        out.append(Slab(labels, tuple(at.get(a) for a in request.axes), plain_request(request, labels), dims=dims))
    return out


def numeric_dims(request: SweepRequest) -> dict[str, tuple[str, ...]]:
    """Each output's numeric dims in the cube of ``request``: what every combination's kernel computes it over."""
    return {q: tuple(a for a in d if a not in request.categories) for q, d in natural_dims(request).items()}


class Stack:
    """What sinks see of a categorical cube's kernels together: the cube's axes, outputs, their dtypes and dims
    (``dims.natural_dims``), its numerics."""

    def __init__(self, request: SweepRequest):
        self.numerics = request.numerics
        self.axes = tuple(request.axes)
        self.dtypes = cube_dtypes(request)
        self.dims = natural_dims(request)

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(self.dtypes)

    @property
    def bytes_per_point(self) -> int:
        """Bytes per grid point if every output spanned every dim: an upper bound (see ``Kernel.bytes_per_point``)."""
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


def _as(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` in the cube's ``dtype``; an integer fill that becomes a float becomes NaN."""
    if values.dtype == dtype:
        return values
    out = values.astype(dtype)
    if values.dtype.kind == "i" and out.dtype.kind == "f":
        out[values == INT64_FILL] = np.nan
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
