"""Plots and frontiers of a cube: the ``llm`` accessor of ``xarray.Dataset``.

    import engine.plot                    # registers ds.llm (matplotlib is not needed for this)
    ds = xr.open_dataset("seed.nc")       # or engine.run(request).dataset
    ds.llm.frontier("mem_peak <= 80GiB", maximize="seq_len", over="batch")    # a DataArray, NaN where nothing fits
    ds.llm.pareto("mem_peak", "params_total", maximize="params_total")         # a Dataset over dim "point"
    ds.llm.heatmap("mem_peak", x="d_model", y="n_layers", budget="80GiB", at={"batch": 8, "seq_len": 1024})
    ds.llm.line("mem_peak", x="seq_len", hue="batch", at={...}, budget="80GiB")
    ds.llm.plot_frontier("mem_peak <= 80GiB", x="batch", maximize="seq_len", at={...})
    ds.llm.label("mem_peak")              # "mem_peak [GiB]"

``frontier`` and ``pareto`` need only numpy and xarray; the drawing methods load matplotlib when
called (ImportError "pip install 'llm-sweep[plot]'" when it is missing) and return the Axes.
Constraints are the engine's query constraints (``engine.runtime.query``). Modules: ``units``
(labels in human units, budgets), ``select`` (the ``at`` selection), ``fronts`` (frontier,
Pareto front), ``draw`` (matplotlib), ``command`` (``llm-sweep plot``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import xarray as xr

from engine.plot.draw import frontier_lines, heatmap, line, pareto
from engine.plot.fronts import frontier, nondominated, pareto_front
from engine.plot.units import Scale, parse_budget, scale_for, scale_of

__all__ = ["LlmAccessor", "Scale", "frontier", "nondominated", "pareto_front", "parse_budget", "scale_for",
           "scale_of"]


@xr.register_dataset_accessor("llm")
class LlmAccessor:
    """``ds.llm``: frontiers, Pareto fronts and figures of an llm-sweep cube (see the module docstring)."""

    def __init__(self, ds: xr.Dataset):
        from engine.sinks.categorical import decode_categories

        self._ds = decode_categories(ds)  # a cube read back from a file draws its labels, not their codes

    def frontier(self, where: str | Sequence[str], maximize: str | None = None, minimize: str | None = None,
                 over: str | Sequence[str] | None = None, across: str | Sequence[str] | None = None) -> xr.DataArray:
        """The largest (smallest) objective that satisfies ``where``; see ``engine.plot.fronts.frontier``."""
        return frontier(self._ds, where, maximize, minimize, over, across)

    def pareto(self, x: str, y: str, maximize: str | Sequence[str] = (), where: str | Sequence[str] | None = None,
               plot: bool = False, ax=None) -> xr.Dataset:
        """The Pareto front of ``x`` and ``y`` (minimized unless named in ``maximize``) as a Dataset over ``point``.

        With ``plot=True`` or an ``ax`` it is also drawn (every candidate in grey, the front as a
        line) on ``ax`` or a new figure. See ``engine.plot.fronts.pareto_front``.
        """
        if plot or ax is not None:
            return pareto(self._ds, x, y, maximize, where, ax)[0]
        return pareto_front(self._ds, x, y, maximize, where)

    def heatmap(self, name: str, x: str, y: str, budget=None, at: Mapping[str, object] | None = None, ax=None):
        """Heatmap of ``name`` over ``x`` and ``y`` with the ``budget`` contour; see ``engine.plot.draw.heatmap``."""
        return heatmap(self._ds, name, x, y, budget, at, ax)

    def line(self, name: str, x: str, hue: str | None = None, at: Mapping[str, object] | None = None, budget=None,
             ax=None):
        """``name`` against ``x``, one line per ``hue`` coordinate; see ``engine.plot.draw.line``."""
        return line(self._ds, name, x, hue, budget, at, ax)

    def plot_frontier(self, where: str | Sequence[str], x: str, maximize: str | None = None,
                      minimize: str | None = None, hue: str | None = None, at: Mapping[str, object] | None = None,
                      ax=None):
        """The frontier drawn against ``x`` (one line per ``hue``); see ``engine.plot.draw.frontier_lines``."""
        return frontier_lines(self._ds, where, x, maximize, minimize, hue, at, ax)

    def label(self, name: str) -> str:
        """The axis label of a variable or dim: ``mem_peak [GiB]``, ``d_model``, ``seq_len [k tokens]``."""
        return scale_for(self._ds[name], name).label
