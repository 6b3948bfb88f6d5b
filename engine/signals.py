"""Stopping on a signal: SIGINT, SIGTERM and SIGHUP all unwind like Ctrl-C, and none is lost.

Python runs a signal handler between bytecodes of the main thread; an exception the handler
raises can be swallowed where Python ignores exceptions (a weakref callback, an import lock's
clean-up), and the program would then run on. So the handler also records the signal, and long
loops (the chunk pipeline, ``combine``'s copy) call ``check()`` between steps: a recorded
signal is raised there again. Every writer removes its temporary file on the way out.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_pending: int | None = None


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised like Ctrl-C; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


_deferring = 0  # > 0 inside ``deferred()``: native code is running that cannot take a Python exception


def _handler(signum, frame):
    global _pending
    _pending = signum
    if not _deferring:
        raise Interrupted(signum)


@contextmanager
def deferred():
    """Within the block a stop signal is only recorded, and raised when the block ends.

    For native code that calls back into Python (importing JAX's MLIR extension, XLA compilation):
    an exception raised there does not unwind, it aborts the extension's initialisation (an
    ImportError) or the process (``terminate called ... nanobind::python_error``).
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring:
        check()


def check() -> None:
    """Raise ``Interrupted`` if a stop signal arrived (even one whose first exception was swallowed)."""
    if _pending is not None:
        raise Interrupted(_pending)


@contextmanager
def stop_on_signals():
    """Within the block, SIGINT/SIGTERM/SIGHUP raise ``Interrupted`` (main thread only; restored after)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # a signal the parent set to be ignored (nohup's SIGHUP, a background job's SIGINT) stays ignored
    old = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig, handler in old.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, _handler)
    _pending = None
    hook = sys.unraisablehook

    def quiet(unraisable):  # recorded above and raised again by check(): no traceback for it
        if not isinstance(unraisable.exc_value, Interrupted):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for sig, handler in old.items():
            if handler is not None:
                signal.signal(sig, handler)
        _pending = None
