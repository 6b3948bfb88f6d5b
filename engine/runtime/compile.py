"""Quantities -> one jit-compiled, vmapped JAX kernel over the swept symbols.

The kernel is written for ONE grid point (a lambdified sympy expression per quantity, with
common subexpressions shared) and then ``jax.vmap``-ed once per swept axis, so inputs are 1-D
coordinate vectors and no meshgrid is ever materialized. Fixed values must already be
substituted (constant folding happens in sympy before lambdify).

Natural dims: each output is computed over its own dims only (``Kernel.dims``; by default the axes its
expression depends on, see ``engine.runtime.dims``). Outputs are grouped by dims; each group is one
point function over its own inputs, vmapped over its own axes, and the one jitted function returns every
output with its own shape -- ``params_total`` over ``(d_model, n_layers)``, a constant as a 0-d array --
so nothing is broadcast or copied to the full grid. ``Kernel.natural`` returns these arrays;
``Kernel.__call__`` broadcasts them (read-only views) to the grid.

Precision:
    ``exact`` (default): integer quantities are evaluated in int64 and real ones in float64,
        inside a scoped ``jax.enable_x64(True)``; the user's global JAX config is never changed.
        Integer results are exact up to 2**63 - 1; if any value would reach 2**63 the call raises
        ``PrecisionError`` instead of returning wrapped values. The check costs nothing on the
        device when a quantity's numerator is a polynomial with positive coefficients (every
        seed quantity): positive inputs make it increasing in every input, and every
        intermediate is bounded by the whole, so its exact value at the largest coordinates,
        computed on the host with Python integers, bounds the grid. Other integer quantities
        carry a float64 shadow, reduced to one maximum on the device.
        Real (float64) quantities: the same two limits, by what the quantity is.
          * Every float64 quantity whose values reach 2**53 gets a ``precision_note`` attribute
            (``dataset.precision_note``): past 2**53 float64 is not exact for integers, so a count
            there is rounded to 53 significant bits.
          * A float64 quantity that counts bytes (units ``"bytes"``: the memory quantities, whole
            bytes or, with sub-byte weights, fractions of one) is refused with ``PrecisionError``
            when a value reaches 2**63, exactly like an int64 quantity: no memory holds 8 EiB, such a
            value means the grid left the range the formula describes, and it could not be
            converted back to an integer byte count. Checked on the device: the quantity is its
            own float64 shadow (one maximum per chunk leaves the device).
          * Other float64 quantities are genuinely real-valued or legitimately huge -- FLOPs
            (1e25 for a frontier training run), seconds, ratios -- and only get the note.
        Which quantities count bytes is the caller's ``counts`` (``sweep.kernel_for`` passes the
        float quantities whose units are ``"bytes"``).
    ``fast``: everything in float32 (about 7 significant digits; see README). Nothing is
        refused; variables whose values reach 2**24 (where float32 integers stop being exact)
        get a ``precision_note``.

Masks: with validity conditions, ``valid`` (uint8, over the union of the conditions' dims) is 0 at grid
points that break one. A quantity holds the fill value -- NaN for floats, ``numerics.INT64_FILL``
(netCDF's default int64 fill) for int64 -- where a condition over its own dims fails (each condition is
evaluated over its own dims and broadcast). A condition on a dim the quantity lacks cannot mask it per
point -- its value is the same at every coordinate of that dim, valid or not -- so it is left alone:
``ds.q.where(ds.valid == 1)`` masks it by every condition. Seen from the full grid: at valid points
every quantity holds the value a dense kernel gives; at invalid ones only those whose dims cover a failed
condition hold the fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy

from engine.errors import PrecisionError
from engine.request.numerics import INT64_FILL, Numerics, float_printer
from engine.runtime.dims import expand, expression_dims
from engine.symbolic.symbols import SYMBOLS

INT64_LIMIT = 2.0**63


@dataclass(frozen=True)
class KernelOutput:
    """How one quantity is computed: numerator (and integer denominator, 1 if none)."""

    name: str
    integer: bool
    numerator: sympy.Expr
    denominator: sympy.Expr
    monotone: bool = False  # numerator: positive integer coefficients only

    def shadowed(self, exact: bool) -> bool:
        """Whether the overflow check needs an on-device float64 shadow."""
        return exact and self.integer and not self.monotone


class Kernel:
    """A compiled evaluator of named quantities over a grid of swept symbols (``compile_kernel`` builds it).

    Call it with one 1-D coordinate vector per axis (keyword arguments named after the axes);
    it returns ``{quantity: array}`` with shape ``(len(axis_0), ..., len(axis_k-1))`` (each output
    broadcast from its own dims); ``natural`` returns each over its own dims (``dims``).

    Attributes
    ----------
    axes : tuple of str
        The swept symbols, in the grid's order.
    quantities : tuple of str
        The outputs (``valid`` last where the kernel checks conditions).
    dtypes : dict of str to numpy.dtype
        Each output's dtype.
    dims : dict of str to tuple of str
        Each output's own dims (the axes it depends on).
    numerics : Numerics
        ``exact`` or ``fast``.
    """

    def __init__(self, exprs: Mapping[str, sympy.Expr], integer: Mapping[str, bool], axes: Sequence[str],
                 numerics: "Numerics | str", conditions: Sequence[sympy.Basic], counts: Sequence[str],
                 dims: Mapping[str, Sequence[str]] | None):
        # built by compile_kernel, which holds the defaults and says what each argument is
        numerics = Numerics.of(numerics)
        unknown = [a for a in axes if a not in SYMBOLS]
        if unknown:
            raise ValueError(f"unknown axis symbol(s) {unknown}; known symbols: {', '.join(SYMBOLS)}")
        self.axes = tuple(axes)
        self.numerics = numerics
        self.quantities = tuple(exprs)
        self.conditions = tuple(c for c in conditions if c is not sympy.true)
        if any(c is sympy.false for c in self.conditions):
            raise ValueError("a validity condition is false for the fixed values; no grid point is valid")
        axis_symbols = {SYMBOLS[a].symbol for a in self.axes}
        for name, expr in exprs.items():
            stray = {s.name for s in expr.free_symbols} - {s.name for s in axis_symbols}
            if stray:
                raise ValueError(
                    f"quantity {name!r} still depends on {sorted(stray)}, which are neither swept "
                    "nor fixed: substitute fixed values before compiling"
                )
        self.outputs = tuple(_split(name, exprs[name], integer[name], numerics) for name in self.quantities)
        if numerics.exact:  # int64 arithmetic cannot even hold such a constant (huge fixed values)
            for o in self.outputs:
                big = [n for e in (o.numerator, o.denominator) for n in e.atoms(sympy.Integer) if abs(n) >= 2**63]
                if o.integer and big:
                    raise PrecisionError(
                        f"exact integer result of {o.name} needs the constant {max(big, key=abs)} (fixed values "
                        "folded in), beyond int64 (2**63); shrink the fixed values (values are never silently "
                        "rounded)")
        # real quantities that count bytes: refused at 2**63 like int64 ones (numerics 'exact' only)
        self.counts = tuple(o.name for o in self.outputs if o.name in set(counts) and not o.integer
                            and numerics.exact)
        self.dtypes = {o.name: numerics.output_dtype(o.integer) for o in self.outputs}
        if self.conditions or "valid" in (dims or {}):
            self.quantities = self.quantities + ("valid",)
            self.dtypes["valid"] = np.dtype(np.uint8)
        self.dims = self._output_dims(exprs, dims or {})
        self._jitted = jax.jit(self._build())
        self._executables: dict[tuple[int, ...], Callable] = {}

    # -- construction --------------------------------------------------------------------------

    def _output_dims(self, exprs: Mapping[str, sympy.Expr], given: Mapping[str, Sequence[str]]) -> dict:
        """Each output's dims: ``given`` where named (a superset of the natural ones, e.g. a categorical cube's
        union over its combinations), else the axes its expression (``valid``: its conditions) depends on."""
        natural = {q: expression_dims(exprs[q], self.axes) for q in exprs}
        if "valid" in self.quantities:
            natural["valid"] = tuple(a for a in self.axes if any(a in expression_dims(c, self.axes)
                                                                 for c in self.conditions))
        unknown = sorted(set(given) - set(natural))
        if unknown:
            raise ValueError(f"dims given for {unknown}, which the kernel does not compute")
        out = {}
        for q, own in natural.items():
            want = set(given.get(q, own))
            if not set(own) <= want <= set(self.axes):
                raise ValueError(f"dims of {q!r} must hold the axes it depends on ({list(own)}) and only axes "
                                 f"({list(self.axes)}); got {sorted(want)}")
            out[q] = tuple(a for a in self.axes if a in want)
        return out

    def _build(self) -> Callable:
        groups: dict[tuple[str, ...], list[KernelOutput]] = {}
        for o in self.outputs:
            groups.setdefault(self.dims[o.name], []).append(o)
        grids = {d: _vmapped(self._point(d, outs), len(d)) for d, outs in groups.items()}
        checks: dict[tuple[str, ...], list[sympy.Basic]] = {}
        for c in self.conditions:
            checks.setdefault(expression_dims(c, self.axes), []).append(c)
        tests = {d: _vmapped(self._test(d, conds), len(d)) for d, conds in checks.items()}

        def evaluate(*coords):
            """Every output over its own dims, and one overflow flag per checked quantity."""
            at = dict(zip(self.axes, coords))
            out: dict[str, jax.Array] = {}
            shadow: dict[str, jax.Array] = {}
            for d, grid in grids.items():
                values, shadows = grid(*(at[a] for a in d))
                out.update(values)
                shadow.update(shadows)
            if "valid" in self.dims:
                ok = {d: test(*(at[a] for a in d)) for d, test in tests.items()}
                self._fill_invalid(out, shadow, ok)
                valid = _mask(ok, self.dims["valid"])
                shape = tuple(at[a].shape[0] for a in self.dims["valid"])
                out["valid"] = jnp.broadcast_to(True if valid is None else valid, shape).astype(jnp.uint8)
            # Reduced on the device: one scalar per checked quantity leaves it.
            overflow = {k: jnp.max(v) >= INT64_LIMIT for k, v in shadow.items()}
            return out, overflow

        self._evaluate = evaluate
        return evaluate

    def _fill_invalid(self, out: dict, shadow: dict, ok: Mapping[tuple[str, ...], jax.Array]) -> None:
        """The fill value in each output where a condition over its own dims fails (``ok``: a condition group's
        dims -> where it holds); its overflow shadow 0 there."""
        for name in list(out):
            mask = _mask(ok, self.dims[name])
            if mask is None:
                continue
            fill = jnp.nan if jnp.issubdtype(out[name].dtype, jnp.floating) else INT64_FILL
            out[name] = jnp.where(mask, out[name], jnp.asarray(fill, out[name].dtype))
            if name in shadow:
                shadow[name] = jnp.where(mask, shadow[name], 0.0)

    def _point(self, dims: tuple[str, ...], outputs: Sequence[KernelOutput]) -> Callable:
        """The outputs over ``dims`` at ONE grid point: scalars of those axes in, scalars out."""
        args = [SYMBOLS[a].symbol for a in dims]
        exact = self.numerics.exact
        int_outs = [o for o in outputs if o.integer and exact]
        real_outs = [o for o in outputs if not (o.integer and exact)]
        int_fn = _lambdify(args, int_outs)
        shadow_outs = [o for o in int_outs if o.shadowed(exact)]
        shadow_fn = _lambdify(args, shadow_outs)
        real_fn = _lambdify(args, real_outs, float_above=self.numerics.float_literal_above)
        int_dtype = jnp.int64 if exact else jnp.float32
        real_dtype = jnp.float64 if exact else jnp.float32
        arg_is_int = [SYMBOLS[a].integer for a in dims]

        def point(*values):
            out: dict[str, jax.Array] = {}
            shadow: dict[str, jax.Array] = {}
            if int_outs:
                ivals = [v.astype(jnp.int64) if is_int else v for v, is_int in zip(values, arg_is_int)]
                results = int_fn(*ivals)
                shadows = shadow_fn(*[v.astype(jnp.float64) for v in values])
                for i, o in enumerate(int_outs):
                    num = jnp.asarray(results[2 * i], int_dtype)
                    den = jnp.asarray(results[2 * i + 1], int_dtype)
                    out[o.name] = num // den if o.denominator != 1 else num
                for i, o in enumerate(shadow_outs):
                    shadow[o.name] = jnp.abs(jnp.asarray(shadows[2 * i], jnp.float64))
            if real_outs:
                results = real_fn(*[v.astype(real_dtype) for v in values])
                for i, o in enumerate(real_outs):
                    num = jnp.asarray(results[2 * i], real_dtype)
                    den = jnp.asarray(results[2 * i + 1], real_dtype)
                    out[o.name] = num / den if o.denominator != 1 else num
                    if o.name in self.counts:  # a byte count: its own float64 shadow
                        shadow[o.name] = jnp.abs(out[o.name])
            return out, shadow

        return point

    def _test(self, dims: tuple[str, ...], conditions: Sequence[sympy.Basic]) -> Callable:
        """Whether ONE grid point of ``dims`` satisfies every one of ``conditions`` (over those dims)."""
        fn = sympy.lambdify([SYMBOLS[a].symbol for a in dims], list(conditions), modules="jax")
        int_dtype = jnp.int64 if self.numerics.exact else jnp.int32
        arg_is_int = [SYMBOLS[a].integer for a in dims]

        def test(*values):
            # invalid grid points (e.g. n_kv_heads not dividing n_heads) are masked, not errors
            ok = jnp.asarray(True)
            for c in fn(*[v.astype(int_dtype) if is_int else v for v, is_int in zip(values, arg_is_int)]):
                ok = jnp.logical_and(ok, c)
            return ok

        return test

    # -- evaluation ----------------------------------------------------------------------------

    @property
    def bytes_per_point(self) -> int:
        """Output bytes per grid point if every output spanned every axis: an upper bound (outputs span their
        own dims; ``plan.Footprint.of(kernel.dtypes, kernel.dims, axes)`` counts them exactly)."""
        return sum(self.dtypes[q].itemsize for q in self.quantities)

    def to_host(self, device_out, split_axis: int, n_valid: int,
                names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """One chunk's outputs (``names``, default all) on the host, each over its own dims, after the
        overflow check; padding on the split axis dropped from those that span it."""
        out, overflow = device_out
        with self.numerics.scope():
            self.check(overflow)
            return {q: self._cut(np.asarray(out[q]), q, split_axis, n_valid)
                    for q in (self.quantities if names is None else names)}

    def _cut(self, values: np.ndarray, q: str, split_axis: int, n_valid: int) -> np.ndarray:
        """``values`` of ``q`` without the padding along the split axis (if ``q`` spans it)."""
        split = self.axes[split_axis] if self.axes else None
        if split not in self.dims[q]:
            return values
        at = self.dims[q].index(split)
        return values[(slice(None),) * at + (slice(0, n_valid),)]

    def coordinate_arrays(self, coords: Mapping[str, Sequence]) -> list[np.ndarray]:
        """Validate and convert coordinate vectors, in axis order."""
        missing = [a for a in self.axes if a not in coords]
        extra = [a for a in coords if a not in self.axes]
        if missing or extra:
            raise ValueError(f"kernel axes are {list(self.axes)}; missing {missing}, unexpected {extra}")
        arrays = []
        for a in self.axes:
            arr = np.asarray(coords[a])
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"coordinates of {a!r} must be a non-empty 1-D vector, got shape {arr.shape}")
            if SYMBOLS[a].integer:
                if not np.issubdtype(arr.dtype, np.integer):
                    raise ValueError(f"coordinates of {a!r} must be integers, got dtype {arr.dtype}")
                arr = arr.astype(np.int64)
            else:
                if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                    raise ValueError(f"coordinates of {a!r} must be numbers, got dtype {arr.dtype}")
                arr = arr.astype(self.numerics.input_dtype(False))
            low = SYMBOLS[a].minimum
            bad = np.flatnonzero(~(arr >= low) if low == 0 else ~(arr > 0))  # sizes positive, counts >= 0 (NaN fails)
            if bad.size:
                raise ValueError(f"coordinates of {a!r} must be {SYMBOLS[a].kind.partition(' ')[2]}s"
                                 f", got {arr[bad[0]].item()!r} at index {int(bad[0])}")
            arrays.append(arr)
        return arrays

    def _host_overflow(self, arrays: list[np.ndarray]) -> set[str]:
        """Monotone integer quantities whose value at the largest coordinates reaches 2**63."""
        if not self.numerics.exact:
            return set()
        top = {SYMBOLS[a].symbol: sympy.Integer(int(arr.max())) for a, arr in zip(self.axes, arrays)
               if SYMBOLS[a].integer}
        return {o.name for o in self.outputs
                if o.integer and o.monotone and int(o.numerator.xreplace(top)) >= 2**63}

    def _input_dtypes(self) -> list[np.dtype]:
        return [self.numerics.input_dtype(SYMBOLS[a].integer) for a in self.axes]

    def prepare(self, coords: Mapping[str, Sequence]) -> list[np.ndarray]:
        """Validated coordinate vectors in axis order, in the dtypes the executable takes."""
        arrays = self.coordinate_arrays(coords)
        if not self.numerics.exact:
            for i, a in enumerate(arrays):
                if a.dtype == np.int64:
                    if not _fits_int32(a):
                        raise PrecisionError(f"coordinates of {self.axes[i]!r} exceed int32, the range of "
                                             "numerics 'fast'; use numerics 'exact'")
                    arrays[i] = a.astype(np.int32)
        return arrays

    def sharding(self, shard_axis: int | None, n: int):
        """Input sharding of axis ``shard_axis`` over all local devices (None: one device)."""
        devices = jax.local_devices()
        if shard_axis is None or len(devices) < 2 or n % len(devices):
            return None
        mesh = jax.sharding.Mesh(np.array(devices), ("grid",))
        return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("grid"))

    def compile_for(self, lengths: Sequence[int], shard_axis: int | None = None, wrap=None) -> Callable:
        """The XLA executable for a grid of ``lengths`` points per axis (compiled once, cached).

        ``shard_axis`` splits that axis's coordinates (and so the outputs) over all local
        devices. ``wrap`` builds another function from the kernel's evaluate function
        (``coords -> (outputs, overflow flags)``) that also takes one scalar (the number of valid
        coordinates on the split axis); on-device queries use it. It must be hashable.
        """
        key = (tuple(int(n) for n in lengths), shard_axis, wrap)
        if key not in self._executables:
            fn = self._jitted if wrap is None else jax.jit(wrap(self._evaluate))
            with self.numerics.scope():
                shapes = []
                for i, (n, d) in enumerate(zip(key[0], self._input_dtypes())):
                    sharding = self.sharding(shard_axis, n) if i == shard_axis else None
                    shapes.append(jax.ShapeDtypeStruct((n,), d, sharding=sharding))
                if wrap is not None:
                    shapes.append(jax.ShapeDtypeStruct((), self.numerics.count_dtype))
                self._executables[key] = fn.lower(*shapes).compile()
        return self._executables[key]

    def dispatch(self, arrays: list[np.ndarray], shard_axis: int | None = None, wrap=None, *extra):
        """Start evaluating on prepared ``arrays`` (asynchronous); returns the device result."""
        host_flagged = self._host_overflow(arrays)
        if host_flagged:
            self._raise_overflow(host_flagged)
        executable = self.compile_for([len(a) for a in arrays], shard_axis, wrap)
        with self.numerics.scope():
            placed = []
            for i, a in enumerate(arrays):
                sharding = self.sharding(shard_axis, len(a)) if i == shard_axis else None
                placed.append(jax.device_put(a, sharding) if sharding is not None else a)
            return executable(*placed, *extra)

    def check(self, overflow: Mapping[str, jax.Array]) -> None:
        """Raise ``PrecisionError`` if the device flagged an overflow."""
        flagged = {k for k, v in overflow.items() if bool(v)}
        if flagged:
            self._raise_overflow(flagged)

    def _raise_overflow(self, names) -> None:
        ints = [k for k in self.quantities if k in names and k not in self.counts]
        counts = [k for k in self.quantities if k in names and k in self.counts]
        said = []
        if ints:
            said.append(f"exact integer result of {', '.join(ints)} reaches 2**63 on this grid and cannot "
                        "be represented in int64")
        if counts:
            said.append(f"byte count{'s' if len(counts) > 1 else ''} {', '.join(counts)} "
                        f"reach{'' if len(counts) > 1 else 'es'} 2**63 (8 EiB) on this grid, past any memory and "
                        "past what an int64 byte count can hold")
        raise PrecisionError("; ".join(said) + "; shrink the axes (values are never silently rounded)")

    def natural(self, **coords) -> dict[str, np.ndarray]:
        """Evaluate on the grid spanned by ``coords`` (one 1-D vector per axis); host arrays, each over its own
        dims (``dims``)."""
        out, overflow = self.dispatch(self.prepare(coords))
        with self.numerics.scope():
            self.check(overflow)
            return {k: np.asarray(out[k]) for k in self.quantities}

    def __call__(self, **coords) -> dict[str, np.ndarray]:
        """Evaluate on the grid spanned by ``coords``; host arrays over every axis (read-only broadcast views of
        ``natural``'s)."""
        natural = self.natural(**coords)
        shape = tuple(len(coords[a]) for a in self.axes)
        return {k: np.broadcast_to(expand(v, self.dims[k], self.axes), shape) for k, v in natural.items()}


def _vmapped(point: Callable, n: int) -> Callable:
    """``point`` (n scalars in) vmapped once per argument: n 1-D vectors in, arrays over them out."""
    grid = point
    for i in reversed(range(n)):
        grid = jax.vmap(grid, in_axes=tuple(0 if j == i else None for j in range(n)))
    return grid


def _mask(ok: Mapping[tuple[str, ...], jax.Array], dims: tuple[str, ...]):
    """Where every condition over a subset of ``dims`` holds (``ok``: dims -> a condition group's results), shaped
    to broadcast over ``dims``; None when no condition lies within them."""
    mask = None
    for own, values in ok.items():
        if set(own) <= set(dims):
            part = expand(values, own, dims)
            mask = part if mask is None else jnp.logical_and(mask, part)
    return mask


def _fits_int32(arr: np.ndarray) -> bool:
    return bool(arr.size == 0 or (arr.max() < 2**31 and arr.min() >= -(2**31)))


def _split(name: str, expr: sympy.Expr, integer: bool, numerics: Numerics) -> KernelOutput:
    """Write an integer quantity as numerator // denominator so int64 evaluation stays exact."""
    expr = sympy.sympify(expr)
    if integer and numerics.exact:
        num, den = sympy.fraction(sympy.together(expr))
        if any(not s.is_integer for s in expr.free_symbols):
            raise ValueError(f"integer quantity {name!r} depends on non-integer symbols")
        if not (num.is_polynomial() and den.is_polynomial()):
            raise ValueError(f"integer quantity {name!r} is not a ratio of polynomials: {expr}")
        # Rational coefficients in the numerator: scale both sides to integers.
        num, den = sympy.expand(num), sympy.expand(den)
        symbols = sorted(num.free_symbols, key=lambda x: x.name)
        if symbols:
            monotone = all(c.is_Integer and c > 0 for c in sympy.Poly(num, *symbols).coeffs())
        else:
            monotone = bool(num.is_Integer and num >= 0)
        return KernelOutput(name, True, num, den, monotone)
    return KernelOutput(name, integer, expr, sympy.Integer(1))


def _lambdify(args: list[sympy.Symbol], outs: Sequence[KernelOutput], float_above: int | None = None) -> Callable:
    """One function for all outputs (numerator and denominator each), common subexpressions shared.

    ``float_above``: integer constants of at least that size print as float literals
    (``numerics.float_printer``): in fast mode a constant past int32 (80 GiB, a vocabulary times a
    width) is a float32 literal rather than an int JAX refuses; a real quantity in exact mode takes
    a constant past int64 (huge fixed values) as a float64 literal rather than an overflow.
    """
    exprs: list[sympy.Expr] = []
    for o in outs:
        exprs.extend([o.numerator, o.denominator])
    if not exprs:
        return lambda *a: ()
    printer = float_printer(float_above) if float_above is not None else None
    return sympy.lambdify(args, exprs, modules="jax", cse=True, printer=printer)


def compile_kernel(
    exprs: Mapping[str, sympy.Expr],
    integer: Mapping[str, bool],
    axes: Sequence[str],
    numerics: "Numerics | str" = "exact",
    conditions: Sequence[sympy.Basic] = (),
    counts: Sequence[str] = (),
    dims: Mapping[str, Sequence[str]] | None = None,
) -> Kernel:
    """Compile ``exprs`` (over the symbols named in ``axes`` only) into a ``Kernel``: the one way to compile.

    Parameters
    ----------
    exprs : mapping of str to sympy.Expr
        Output name -> its formula over the axes' symbols (``FormulaSet.resolve`` gives them).
    integer : mapping of str to bool
        Output name -> whether it is an integer count (int64 in ``exact`` numerics).
    axes : sequence of str
        The swept symbols, in the grid's order: the kernel takes one coordinate vector per axis.
    numerics : Numerics or str, optional
        ``"exact"`` (int64/float64, overflow checked) or ``"fast"`` (float32); default ``"exact"``.
    conditions : sequence of sympy relations, optional
        Validity conditions over the axes: they add a ``valid`` output (uint8), and quantities hold the fill
        value (NaN for floats, ``numerics.INT64_FILL`` for int64) where a condition over their own dims fails.
    counts : sequence of str, optional
        Real outputs that count bytes, refused at 2**63 like int64 ones.
    dims : mapping of str to sequence of str, optional
        Output -> its dims where they should be more than the axes it depends on (a categorical cube's
        union; ``valid`` named here makes a ``valid`` output, all ones without conditions).

    Returns
    -------
    Kernel
        Call it with one 1-D coordinate vector per axis (``kernel(d_model=..., n_layers=...)``).

    Raises
    ------
    ValueError
        When an axis is not a known symbol, a formula uses a symbol that is not an axis, or a condition is false.
    engine.PrecisionError
        When an exact integer result needs a constant beyond int64 (huge fixed values).
    """
    return Kernel(exprs, integer, axes, numerics, conditions, counts, dims)
