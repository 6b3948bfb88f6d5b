"""llm-sweep: symbolic and vectorized sizing of transformer language models.

The public API is exactly the names below (``__all__``); every other module is internal and may
change. One way to do each thing:

    a model       ``architecture(name_or_config, options)`` (a preset, a family, a config.json or its
                  content) -> ``param_counts``, ``memory_estimate``, ``flops_estimate``, ``time_estimate``
                  (with a ``device`` and a ``Layout``), ``plan`` (the best layouts on N devices)
    a sweep       ``load_spec`` / ``parse_spec`` -> a ``SweepRequest`` -> ``run(request, sink)``: the sink
                  is ``sink_for(target)`` (None: memory, ``"cube.zarr"``, ``"cube.nc"``) or
                  ``sink_for(target, query=make_query(...))`` for an on-device query's answer
    a kernel      ``compile_kernel(exprs, integer, axes)``
    a cube        ``open_cube`` (a spec as a virtual cube, or a written one), ``combine`` (part files)

The package flows symbolic -> catalog -> request -> runtime -> sinks -> CLI:

    engine.symbolic   pure sympy: symbols, the safe expression parser, formula sets, memory
                      models, printing, claims
    engine.catalog    Family records, presets and devices (data), config.json reading, architecture
                      counts, step time, the layout planner
    engine.request    the TOML spec -> a frozen SweepRequest; Numerics; queries; the options layer
    engine.runtime    the JAX kernel, chunk plans, the pipeline ``run(request, sink)``, on-device reductions
    engine.sinks      the sink registry (``SINKS``, ``sink_for``): MemorySink, NetCDFSink, ZarrSink, and
                      QuerySink in front of any of them; the cube's attributes, ``combine``, the result
    engine.backend    the virtual cube: ``open_cube`` (xarray's ``engine="llm-sweep"``; a written cube
                      too, its categorical codes read back as labels)
    engine.plot       the ``ds.llm`` accessor: frontiers, Pareto sets, heatmaps (extra ``[plot]``)

Every name is imported on first use: ``import engine`` costs nothing, so the command line starts
(and answers Ctrl-C) in a tenth of a second; sympy loads with the first formula, JAX and xarray
with the first sweep. Type checkers and IDEs see every name through the imports below.

    >>> import engine
    >>> fs = engine.build_formula_set("seed")
    >>> fs.evaluate("params_total", {"d_model": 768, "n_layers": 12, "vocab": 50000})
    123417600
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the public API, spelled out for type checkers and IDEs (imported lazily at run time)
    from engine.backend import open_cube as open_cube
    from engine.catalog.families import FAMILIES as FAMILIES, Architecture as Architecture, Family as Family
    from engine.catalog.hardware import Device as Device, device as device, device_names as device_names
    from engine.catalog.model import architecture as architecture, flops_estimate as flops_estimate
    from engine.catalog.model import memory_estimate as memory_estimate, memory_options as memory_options
    from engine.catalog.model import param_counts as param_counts
    from engine.catalog.plan import plan as plan
    from engine.catalog.presets import PRESETS as PRESETS, Preset as Preset
    from engine.catalog.serving import Deployment as Deployment, serve_estimate as serve_estimate
    from engine.catalog.serving import serve_plan as serve_plan
    from engine.catalog.timing import Layout as Layout, time_estimate as time_estimate
    from engine.errors import LlmSweepError as LlmSweepError, PrecisionError as PrecisionError
    from engine.errors import ResourceError as ResourceError, SpecError as SpecError
    from engine.request.numerics import EXACT as EXACT, FAST as FAST, Numerics as Numerics
    from engine.request.query import Query as Query, make_query as make_query
    from engine.request.spec import SweepRequest as SweepRequest, load_spec as load_spec, parse_spec as parse_spec
    from engine.runtime.compile import Kernel as Kernel, compile_kernel as compile_kernel
    from engine.runtime.sweep import run as run
    from engine.sinks import SINKS as SINKS, MemorySink as MemorySink, NetCDFSink as NetCDFSink
    from engine.sinks import QuerySink as QuerySink, Sink as Sink, ZarrSink as ZarrSink, sink_for as sink_for
    from engine.sinks.dataset import build_dataset as build_dataset, combine as combine
    from engine.sinks.dataset import write_netcdf as write_netcdf
    from engine.sinks.result import SweepResult as SweepResult
    from engine.symbolic.claims import Claim as Claim, check_claims as check_claims, load_claims as load_claims
    from engine.symbolic.formulas import FORMULA_SETS as FORMULA_SETS, FormulaSet as FormulaSet
    from engine.symbolic.formulas import Quantity as Quantity, build_formula_set as build_formula_set
    from engine.options import MemoryOptions as MemoryOptions
    from engine.symbolic.memory import MEMORY_MODELS as MEMORY_MODELS
    from engine.symbolic.printing import format_formulas as format_formulas
    from engine.symbolic.symbols import SYMBOLS as SYMBOLS, SymbolInfo as SymbolInfo

# name -> the module that defines it (the same table as the imports above; a test keeps them equal)
_PUBLIC = {
    "open_cube": "backend",
    "FAMILIES": "catalog.families", "Architecture": "catalog.families", "Family": "catalog.families",
    "Device": "catalog.hardware", "device": "catalog.hardware", "device_names": "catalog.hardware",
    "architecture": "catalog.model", "flops_estimate": "catalog.model", "memory_estimate": "catalog.model",
    "memory_options": "catalog.model", "param_counts": "catalog.model",
    "plan": "catalog.plan",
    "PRESETS": "catalog.presets", "Preset": "catalog.presets",
    "Deployment": "catalog.serving", "serve_estimate": "catalog.serving", "serve_plan": "catalog.serving",
    "Layout": "catalog.timing", "time_estimate": "catalog.timing",
    "LlmSweepError": "errors", "PrecisionError": "errors", "ResourceError": "errors", "SpecError": "errors",
    "EXACT": "request.numerics", "FAST": "request.numerics", "Numerics": "request.numerics",
    "Query": "request.query", "make_query": "request.query",
    "SweepRequest": "request.spec", "load_spec": "request.spec", "parse_spec": "request.spec",
    "Kernel": "runtime.compile", "compile_kernel": "runtime.compile",
    "run": "runtime.sweep",
    "SINKS": "sinks", "MemorySink": "sinks", "NetCDFSink": "sinks", "QuerySink": "sinks", "Sink": "sinks",
    "ZarrSink": "sinks", "sink_for": "sinks",
    "build_dataset": "sinks.dataset", "combine": "sinks.dataset", "write_netcdf": "sinks.dataset",
    "SweepResult": "sinks.result",
    "Claim": "symbolic.claims", "check_claims": "symbolic.claims", "load_claims": "symbolic.claims",
    "FORMULA_SETS": "symbolic.formulas", "FormulaSet": "symbolic.formulas", "Quantity": "symbolic.formulas",
    "build_formula_set": "symbolic.formulas",
    "MEMORY_MODELS": "symbolic.memory", "MemoryOptions": "options",
    "format_formulas": "symbolic.printing",
    "SYMBOLS": "symbolic.symbols", "SymbolInfo": "symbolic.symbols",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def _version() -> str:
    # importlib.metadata costs ~70 ms: read on first use, so the CLI starts (and answers Ctrl-C) fast
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llm-sweep")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.1.0+src"


def __getattr__(name: str):
    if name == "__version__":
        globals()["__version__"] = value = _version()
        return value
    if name in _PUBLIC:
        value = getattr(import_module(f"engine.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
