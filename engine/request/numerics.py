"""Numerics: how a kernel computes (``exact`` or ``fast``), owning its dtypes and JAX's x64 scope.

    exact   integer quantities in int64, real ones in float64, inside a scoped
            ``jax.enable_x64(True)`` (the user's global JAX config is never changed); integer
            results are exact up to 2**63 - 1 and never silently wrap (see ``compile``).
    fast    everything in float32, integer coordinates in int32 (about 7 significant digits).

Every dtype decision of the runtime asks a ``Numerics`` object instead of comparing strings.
Printing for ``fast`` is a sympy printer subclass (``FastJaxPrinter``): integer constants too
large for int32 print as float literals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.options import NUMERICS as NAMES  # pure data: the parser lists the names without numpy

# What an output holds where it has no value (an invalid grid point, an empty query cell): NaN for
# floats; for int64 netCDF's default int64 fill (netCDF4.default_fillvals["i8"]), never a real
# result since every quantity is >= 0. ``sinks.dataset`` declares them as ``_FillValue``.
INT64_FILL = -(2**63) + 2
FLOAT_FILL = float("nan")


@dataclass(frozen=True)
class Numerics:
    """How a kernel computes: one of ``NAMES``; hashable, so kernels and executables are cached per numerics.

    Attributes:
        name: ``"exact"`` (int64 / float64: every count exact to the last unit) or ``"fast"`` (float32, to a
            stated relative bound). ValueError naming the valid ones for any other.
    """

    name: str = "exact"

    def __post_init__(self):
        if self.name not in NAMES:
            raise ValueError(f"unknown numerics {self.name!r}; valid: {', '.join(NAMES)}")

    @classmethod
    def of(cls, value: "Numerics | str") -> "Numerics":
        """A ``Numerics`` from itself or its name."""
        return value if isinstance(value, Numerics) else cls(value)

    @property
    def exact(self) -> bool:
        return self.name == "exact"

    @property
    def x64(self) -> bool:
        """Whether JAX must run with 64-bit types enabled."""
        return self.exact

    def scope(self):
        """The JAX x64 scope these numerics compute in (a context manager)."""
        import jax

        return jax.enable_x64(self.x64)

    def output_dtype(self, integer: bool) -> np.dtype:
        """dtype of a quantity: int64 / float64 (exact) or float32 (fast)."""
        if not self.exact:
            return np.dtype(np.float32)
        return np.dtype(np.int64 if integer else np.float64)

    def input_dtype(self, integer: bool) -> np.dtype:
        """dtype of a coordinate vector of an integer or real input."""
        if integer:
            return np.dtype(np.int64 if self.exact else np.int32)
        return np.dtype(np.float64 if self.exact else np.float32)

    @property
    def count_dtype(self) -> np.dtype:
        """dtype of on-device counters (the valid length of a padded chunk, feasible points)."""
        return np.dtype(np.int64 if self.exact else np.int32)

    @property
    def float_literal_above(self) -> int:
        """Integer constants of at least this size print as float literals in real-valued code.

        fast: 2**31 (JAX refuses an int32 constant past it); exact: 2**62 (a real quantity may
        take a constant past int64 from huge fixed values as a float64 literal).
        """
        return 2**31 if not self.exact else 2**62

    def __str__(self) -> str:
        return self.name


EXACT, FAST = Numerics("exact"), Numerics("fast")


def float_printer(limit: int):
    """A JAX printer (a subclass of sympy's ``JaxPrinter``) that prints integers with |n| >= ``limit`` as floats."""
    from sympy.printing.numpy import JaxPrinter

    class FloatLiteralJaxPrinter(JaxPrinter):
        def _print_Integer(self, expr):
            if abs(int(expr)) >= limit:
                return repr(float(int(expr)))
            return super()._print_Integer(expr)

    # the settings lambdify gives its own default printer
    return FloatLiteralJaxPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                                   "user_functions": {}})
