"""What a long command is doing now: one status line on stderr, rewritten in place (pure Python).

A command turns it on around its work (``with reporting(enabled)``); the layers below say which phase
they are in (``note("compiling kernel 3 of 24")``) without knowing who listens: with nothing turned on,
or when stderr is not a terminal, ``note`` does nothing. A run's chunk progress (``engine.runtime.sweep.Progress``:
chunk i of N, the share of the points done, the ETA) goes on the same line after the phase (``detail``).

    >>> with reporting(True):                                   # doctest: +SKIP
    ...     note("building formulas 1 of 24 (recompute = 'none')")
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

_active: "_Status | None" = None


class _Status:
    def __init__(self, stream):
        self.stream = stream
        self.shown = False
        self.start = time.perf_counter()
        self.phase = ""

    def write(self, text: str) -> None:
        self.phase = text
        self._show(text)

    def detail(self, text: str) -> None:
        self._show(f"{self.phase}: {text}" if self.phase else text)

    def _show(self, text: str) -> None:
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r{text} [{elapsed:.0f} s]\x1b[K")  # \x1b[K: clear what a longer line left
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


@contextmanager
def reporting(enabled: bool, stream=None):
    """Show ``note``s on ``stream`` (stderr) while the block runs, when ``enabled`` and it is a terminal; the
    line is cleared when the block ends, so what the command prints next starts on a clean line."""
    global _active
    stream = stream or sys.stderr
    if not enabled or not getattr(stream, "isatty", lambda: False)() or _active is not None:
        yield
        return
    _active = _Status(stream)
    try:
        yield
    finally:
        _active.clear()
        _active = None


def note(text: str) -> None:
    """Say which phase the command is in (``"compiling kernel 3 of 24"``); nothing when no one reports."""
    if _active is not None:
        _active.write(text)


def active() -> bool:
    """Whether a command reports (a status line is on a terminal): then a run's chunk count and ETA go on that
    line (``detail``) instead of a bar of their own."""
    return _active is not None


def eta(start: float, done: int, total: int) -> str:
    """``, ETA 12 s`` after ``done`` of ``total`` equal steps begun at ``start`` (``time.perf_counter``); empty
    before the first is done or when no one reports."""
    if _active is None or done <= 0 or done >= total:
        return ""
    return f", ETA {(time.perf_counter() - start) / done * (total - done):,.0f} s"


def detail(text: str) -> None:
    """Add ``text`` (``chunk 3 of 96, 41% of 21,307,392 points, ETA 12 s``) after the current phase on the line;
    nothing when no one reports."""
    if _active is not None:
        _active.detail(text)


def clear() -> None:
    """Clear the status line (before printing something else mid-command)."""
    if _active is not None:
        _active.clear()
