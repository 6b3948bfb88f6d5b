"""Stopping on a signal: SIGINT, SIGTERM and SIGHUP all unwind like Ctrl-C, and none is lost.

Python runs a signal handler between bytecodes of the main thread; an exception the handler
raises can be swallowed where Python ignores exceptions (a weakref callback, an import lock's
clean-up), and the program would then run on. So the handler also records the signal, and long
loops (the chunk pipeline, ``combine``'s copy) call ``check()`` between steps: a recorded
signal is raised there again. Every writer removes its temporary file on the way out.

A signal that arrives while a module is being imported is recorded and raised when the import is
over. Native extensions (jaxlib's, numpy's, netCDF4's, h5py's) run Python code while they
initialise; an exception raised there does not unwind but aborts the process (``terminate called
... nanobind::python_error``, SIGABRT) or leaves a half-initialised module behind (SIGSEGV later).
Every command imports those libraries lazily, in the middle of its work (the parser loads numpy;
``run`` loads xarray and JAX, then netCDF4 and scipy while it writes), so the rule is about imports,
not about one block: the handler looks at the main thread's stack, and while any frame belongs to
the import machinery it only records the signal; a watcher thread raises it, through the handler,
as soon as the import is over (within milliseconds).

The console script takes the signals from its first line (``hold()``), before the command line is
read: a stop in the start-up is answered like any other, in one line with 128 + the signal's number.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_pending: int | None = None


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised like Ctrl-C; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


_deferring = 0  # > 0 inside ``deferred()`` (native code that cannot take a Python exception) or ``hold()``
_held = False  # the console script holds the signals from its first line (``hold``) to its exit
_watching = False  # a watcher thread waits for the main thread to leave an import


def _handler(signum, frame):
    global _pending
    _pending = signum
    if _deferring:
        return
    if _importing(frame):  # raised once the import is over (``_watch``): never inside a native module's start
        _watch()
        return
    raise Interrupted(signum)


def _importing(frame) -> bool:
    """Whether ``frame`` or a caller of it runs in the import machinery (a module is being imported)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _watch() -> None:
    """Raise the recorded signal in the main thread as soon as no import is running there.

    The watcher sends the signal again, to the main thread alone (a real signal, so that a blocking
    call there is interrupted as the first one would have been): ``_handler`` runs again, finds no
    import on the stack, and raises. Nothing is sent once the handler is no longer ours.
    """
    global _watching
    if _watching:
        return
    _watching = True
    main = threading.main_thread().ident

    def wait() -> None:
        global _watching
        while True:
            frame = sys._current_frames().get(main)
            if frame is None or _pending is None:  # the main thread has ended, or the command (stop_on_signals)
                _watching = False
                return
            if not _importing(frame):
                _watching = False
                del frame
                signum = _pending
                if signum is not None and not _deferring and signal.getsignal(signum) is _handler:
                    signal.pthread_kill(main, signum)
                return
            del frame
            time.sleep(0.002)

    threading.Thread(target=wait, name="llm-sweep-signals", daemon=True).start()


def hold() -> None:
    """The console script's first step: SIGINT/SIGTERM/SIGHUP are recorded from here on, and raised once
    ``stop_on_signals`` takes over (main thread only; a signal the parent set to be ignored stays ignored).

    Before it, Python's own handlers answer: a KeyboardInterrupt traceback, a silent death by SIGTERM.
    ``entry`` ends the process, so nothing is restored.
    """
    global _held, _deferring
    if _held or threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _handler)
    _held = True
    _deferring += 1


def is_console_script() -> bool:
    """Whether this process is the ``llm-sweep`` console script or ``python -m engine`` (not a program that
    imports the engine: its own signal handlers are left alone until it calls ``main``)."""
    program = sys.modules.get("__main__")
    spec = getattr(program, "__spec__", None)
    if spec is not None and spec.name == "engine.__main__":
        return True
    name = os.path.basename(getattr(program, "__file__", None) or "")
    return name in ("llm-sweep", "llm-sweep-script.py", "llm-sweep.exe")


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
    if not _deferring and _pending is not None:
        if _importing(sys._getframe()):  # a block inside a module being imported: raised when the import is over
            _watch()
        else:
            check()


def check() -> None:
    """Raise ``Interrupted`` if a stop signal arrived (even one whose first exception was swallowed)."""
    if _pending is not None:
        raise Interrupted(_pending)


@contextmanager
def stop_on_signals():
    """Within the block, SIGINT/SIGTERM/SIGHUP raise ``Interrupted`` (main thread only; restored after)."""
    global _pending, _deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _held:  # the console script: the handlers are in place since its first line; a signal held since is raised
        _deferring -= 1  # by the caller's first ``check()``
        try:
            with _unraisable_quieted():
                yield
        finally:
            _deferring += 1  # the command has answered: a later signal is only recorded (``entry`` exits)
        return
    # a signal the parent set to be ignored (nohup's SIGHUP, a background job's SIGINT) stays ignored
    old = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig, handler in old.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, _handler)
    _pending = None
    try:
        with _unraisable_quieted():
            yield
    finally:
        for sig, handler in old.items():
            if handler is not None:
                signal.signal(sig, handler)
        _pending = None


@contextmanager
def _unraisable_quieted():
    """Within the block, an ``Interrupted`` raised where Python cannot raise it (a finalizer, a callback) is not
    printed: the handler recorded it and ``check()`` raises it again."""
    hook = sys.unraisablehook
    sys.unraisablehook = _quiet(hook)
    try:
        yield
    finally:
        sys.unraisablehook = hook


def _quiet(hook):
    def quiet(unraisable):  # recorded by the handler and raised again by check(): no traceback for it
        if not isinstance(unraisable.exc_value, Interrupted):
            hook(unraisable)

    return quiet
