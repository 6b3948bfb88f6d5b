"""llm-sweep: symbolic and vectorized sizing of transformer language models.

The public API, re-exported here. Importing ``engine`` stays light (sympy only); JAX and
xarray are imported on first use of the sweep functions.

    >>> import engine
    >>> fs = engine.build_formula_set("seed")
    >>> int(fs.evaluate("params_total", {"d_model": 768, "n_layers": 12, "vocab": 50000}))
    123417600
    >>> req = engine.load_spec("sweeps/seed.toml")       # doctest: +SKIP
    >>> ds = engine.run_sweep(req).dataset                 # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module


def _version() -> str:
    # importlib.metadata costs ~70 ms: read on first use, so the CLI starts (and answers Ctrl-C) fast
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llm-sweep")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.1.0+src"

# name -> module that defines it; imported lazily so one-off questions never pay for JAX.
_LAZY = {
    "SYMBOLS": "symbols",
    "SymbolInfo": "symbols",
    "FORMULA_SETS": "formulas",
    "FormulaSet": "formulas",
    "Quantity": "formulas",
    "build_formula_set": "formulas",
    "LlmSweepError": "errors",
    "SpecError": "errors",
    "PrecisionError": "errors",
    "ResourceError": "errors",
    "SweepRequest": "spec",
    "load_spec": "spec",
    "parse_spec": "spec",
    "format_formulas": "printing",
    "Claim": "claims",
    "check_claims": "claims",
    "load_claims": "claims",
    "architecture": "model",
    "param_counts": "model",
    "arch_names": "model",
    "load_hf_config": "hf",
    "from_hf_config": "hf",
    "PRESETS": "presets",
    "Kernel": "compile",
    "compile_kernel": "compile",
    "build_dataset": "dataset",
    "write_netcdf": "dataset",
    "SweepResult": "sweep",
    "kernel_for": "sweep",
    "run_sweep": "sweep",
    "run_to_netcdf": "sweep",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name == "__version__":
        globals()["__version__"] = value = _version()
        return value
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
