"""Where a run's chunks go: one ``Sink`` per kind of output, chosen from a registry by its target.

``engine.run(request, sink)`` is the one pipeline (``engine.runtime.sweep``); what a sink is and does is
in ``engine.sinks.base``. ``SINKS`` lists the sinks that write a target, and ``sink_for(target)`` asks
each in turn whether it can (``can_write``, as xarray's backends answer ``guess_can_open``), the first
that can writing it. A query is a reducer in front of any of them: ``sink_for(target, query=q)`` is a
``QuerySink`` whose answer the sink of ``target`` writes.

Sinks: ``MemorySink`` (None: an ``xarray.Dataset`` in host memory), ``ZarrSink`` (a ``.zarr`` store,
by one or many processes), ``NetCDFSink`` (any other path: a streamed, atomic netCDF file);
``QuerySink`` (on-device reduction, in front of one of them). Adding a sink is one module holding its
class and one line in ``SINKS``, before the sinks whose targets it narrows.
"""

from __future__ import annotations

import inspect
from typing import Any

from engine.request.query import Query
from engine.sinks.base import Sink
from engine.sinks.memory import MemorySink
from engine.sinks.netcdf import NetCDFSink
from engine.sinks.query import QuerySink
from engine.sinks.zarr_store import ZarrSink

SINKS: tuple[type, ...] = (  # asked in this order: the first that can write a target writes it
    MemorySink,
    ZarrSink,
    NetCDFSink,
)


def sink_for(target: Any = None, query: Query | None = None, **options: Any) -> Sink:
    """The sink that writes ``target``: the first of ``SINKS`` whose ``can_write(target)`` is true.

    Parameters
    ----------
    target : None, str or path-like, optional
        None: the cube (or the query's answer) in host memory; a path ending ``.zarr``: a zarr v3 store;
        any other path: a netCDF4 file.
    query : Query, optional
        A reduction in front of the sink (``engine.make_query``): the sink writes its answer, not the cube.
    **options
        Passed to the sink's class: ``inputs`` (files never to overwrite), ``track`` (quantities the report
        shows), and for one process's share of a run ``whole`` (the whole request) and ``part``
        ((index, count)); see each sink's class.

    Returns
    -------
    Sink
        A ``MemorySink``, ``ZarrSink`` or ``NetCDFSink``; a ``QuerySink`` in front of it with ``query``.

    Raises
    ------
    TypeError
        When no sink writes ``target`` (naming what each takes), or an option the sink does not take.
    """
    for cls in SINKS:
        if cls.can_write(target):
            sink = cls(target, **_options(cls, options))
            return QuerySink(query, sink) if query is not None else sink
    valid = "; ".join(cls.description for cls in SINKS)
    raise TypeError(f"no sink writes {target!r} ({type(target).__name__}); a target is {valid}")


def _options(cls: type, options: dict) -> dict:
    """``options`` if ``cls`` takes each of them; TypeError naming the ones it does not, and those it takes."""
    taken = [p for p in inspect.signature(cls).parameters if p not in ("self", "path", "target")]
    unknown = [k for k in options if k not in taken]
    if unknown:
        raise TypeError(f"{cls.__name__} takes no option {', '.join(map(repr, unknown))}; its options: "
                        f"{', '.join(taken) or 'none'}")
    return options


__all__ = ["SINKS", "MemorySink", "NetCDFSink", "QuerySink", "Sink", "ZarrSink", "sink_for"]
