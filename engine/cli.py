"""The ``llm-sweep`` command line: the parser built from the command registry (``engine.commands``), one
command run, and its errors told in one line.

Exit status: 0 success; 1 ``check`` found a wrong claim; 2 bad input (spec, option, path,
precision), reported as one line naming the file, the key and what is valid; 3 ``plan`` found no
layout that fits (one line saying the lowest peak).
"""

from __future__ import annotations

from engine import signals as _signals

if _signals.is_console_script():  # llm-sweep itself: a stop signal from here on is answered in one line, not by
    _signals.hold()                # Python's start-up handlers (a KeyboardInterrupt traceback, a silent SIGTERM)

import argparse  # noqa: E402 -- after the signals are held
import os
import signal
import sys
import warnings

from engine.commands import COMMANDS, command
from engine.commands.common import EXIT_BAD_INPUT, one_line
from engine.commands.parsing import Parser, Version, unrecognized
from engine.errors import LlmSweepDeprecation, LlmSweepError, LlmSweepNote, SpecError
from engine.signals import stop_on_signals

# library terms (what ``engine.catalog.model`` and ``engine.request.spec`` name) -> the flag a user typed;
# ``--micro-batch``: engine.catalog.timing names time's --batch by its old spelling
_FLAGS = {"arch": "--arch", "hf_config": "--hf-config", "structure": "--option", "--micro-batch": "--batch"}


def _parser() -> argparse.ArgumentParser:
    """``llm-sweep`` and one subparser per command of ``engine.commands.COMMANDS``, from pure data only: building
    it, and so every --help, loads no sympy, numpy or JAX."""
    p = Parser(prog="llm-sweep", description="Symbolic and vectorized sizing of transformer language models.")
    p.add_argument("--version", action=Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        command(name).add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0, 1, 2, 3; 128 + signal number when stopped by a signal)."""
    files = sys.modules.get("engine.files")  # imported by the commands that write, not for --help (ctypes, ...)
    if files is not None:  # not imported: nothing was written in this process
        files.written.clear()  # what this command publishes: a stop says whether its target changed
    name = "llm-sweep"
    with stop_on_signals(), warnings.catch_warnings():  # SIGTERM and SIGHUP clean up like Ctrl-C
        notes: list[str] = []
        warnings.showwarning = lambda message, *rest, **kw: notes.append(str(message))
        warnings.simplefilter("always", LlmSweepDeprecation)
        warnings.simplefilter("always", LlmSweepNote)  # a default the user did not choose, named after the answer
        try:
            _signals.check()  # a signal held since the console script's first line (engine.signals.hold)
            parser = _parser()  # (a signal while a module is imported, numpy here, JAX later, is raised after it)
            args, extra = parser.parse_known_args(argv)
            if extra:  # an unknown flag after the command: named with the command, not the top-level usage
                raise unrecognized(parser, args, extra)
            name = f"llm-sweep {args.command}"
            code = command(args.command).main(args)
            _signals.check()  # a signal whose exception was swallowed on the way still stops the command
            for message in dict.fromkeys(notes):  # old spellings still read: one line each, after success
                print(f"{name}: note: {message}", file=sys.stderr)
            return code
        except LlmSweepError as exc:  # a UsageError names the (sub)command the parser was reading
            print(f"{getattr(exc, 'prog', name)}: error: {one_line(_in_flag_terms(exc))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt as exc:
            from engine.files import stop_outcome  # pure Python; what is on disk

            signum = getattr(exc, "signum", signal.SIGINT)
            print(f"{name}: stopped by {signal.Signals(signum).name}; {stop_outcome()}", file=sys.stderr)
            return 128 + signum
        except MemoryError:
            print(f"{name}: error: out of host memory; shrink the axes or stream the cube to a file", file=sys.stderr)
            return EXIT_BAD_INPUT
        except BrokenPipeError:  # `llm-sweep ... | head`: the reader left; say nothing more
            try:
                sys.stdout = open(os.devnull, "w")
            except OSError:
                pass
            return 128 + signal.SIGPIPE
        except OSError as exc:  # a file the command was given or writes: permissions, a full disk, ...
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            print(f"{name}: error: {where}{exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT


def entry() -> None:
    """The console script: ``main``, with a stop signal at any moment answered in one line.

    The signals are held from the first line of this module (``engine.signals.hold``). After a stop
    signal the process ends with ``os._exit`` once its files are cleaned up, so no runtime thread
    (XLA's, a writer's) can outlive the interpreter's teardown.
    """
    try:
        code = main()
    except KeyboardInterrupt as exc:
        from engine.files import stop_outcome  # pure Python; what is on disk, as main's own stop line says

        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"llm-sweep: stopped by {signal.Signals(signum).name}; {stop_outcome()}", file=sys.stderr)
        code = 128 + signum
    if code >= 128:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the work is done: a late signal must not
        signal.signal(sig, signal.SIG_IGN)                     # print a traceback from the interpreter's exit
    sys.exit(code)


def _in_flag_terms(exc: BaseException) -> BaseException:
    """A library ``SpecError`` about an input the user gave as a flag, told in the flag's name."""
    if isinstance(exc, SpecError) and exc.source in _FLAGS:
        return SpecError(_FLAGS[exc.source], exc.key, exc.message)
    return exc


if __name__ == "__main__":
    sys.exit(main())
