"""Stop signals at the worst moments (issue 23): while a native module is being imported, and before the
command line is read. Each answer is one line and exit 128 + the signal's number, never a C++ abort, a
segmentation fault, a traceback or a half-imported module.

The child processes trip the signal themselves, deterministically: a finder at the head of
``sys.meta_path`` sends it to its own process when the import of the named module begins, so the
handler runs inside the import machinery (where an exception used to abort jaxlib's start-up).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TRIP = """
import json, os, signal, sys
TARGET, SIG, MARK = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3]

class Trip:  # sends the signal when the import of TARGET begins: the handler runs inside the import machinery
    fired = False
    def find_spec(self, name, path=None, target=None):
        if not Trip.fired and name == TARGET:
            Trip.fired = True
            os.kill(os.getpid(), SIG)
        return None

sys.meta_path.insert(0, Trip())
real_exit = os._exit
def _exit(code):  # entry() ends a stopped process with os._exit: say first whether TARGET was imported whole
    with open(MARK, "w") as f:
        json.dump({"fired": Trip.fired, "imported": TARGET in sys.modules}, f)
    real_exit(code)
os._exit = _exit
sys.argv = ["llm-sweep", *sys.argv[4:]]
from engine.cli import entry
entry()
"""

TINY = """[sweep]
formula_set = "seed"
quantities = ["params_total", "mem_peak"]
[fixed]
vocab = 50000
batch = 2
[axes]
d_model = [256, 512]
n_layers = [2, 4]
seq_len = [128, 256]
"""


def _child(script: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LLM_SWEEP_CACHE_DIR": ""}
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def _assert_stopped(r: subprocess.CompletedProcess, sig: signal.Signals, command: str) -> None:
    """Exit 128 + N and one line, 'llm-sweep: stopped by ...' before the command line is read, else
    'llm-sweep COMMAND: stopped by ...'."""
    assert r.returncode == 128 + sig, (r.returncode, r.stderr)  # not -6 (SIGABRT), -11 (SIGSEGV), 1 (traceback)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert re.match(rf"llm-sweep( {command})?: stopped by {sig.name}; ", lines[0]), lines[0]


@pytest.mark.parametrize("module,sig,argv", [
    ("numpy", signal.SIGINT, ["run", "{spec}", "-o", "{out}"]),  # every command's first native library
    ("jaxlib", signal.SIGTERM, ["run", "{spec}", "-o", "{out}"]),  # run's JAX, once the spec is read
    ("netCDF4", signal.SIGHUP, ["run", "{spec}", "-o", "{out}"]),  # while the cube is written
    ("jaxlib", signal.SIGINT, ["plan", "--arch", "gpt2", "--gpu", "h100", "--gpus", "2", "--seq-len", "8",
                               "--global-batch", "2", "--top", "1"]),
    ("xarray", signal.SIGTERM, ["open", "{spec}"]),
], ids=["numpy-SIGINT-parser", "jaxlib-SIGTERM-run", "netCDF4-SIGHUP-run-writing", "jaxlib-SIGINT-plan",
        "xarray-SIGTERM-open"])
def test_a_signal_during_a_native_import_waits_for_it_then_stops_in_one_line(tmp_path, module, sig, argv):
    script = tmp_path / "child.py"
    script.write_text(TRIP)
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    out = tmp_path / "out.nc"
    mark = tmp_path / "mark.json"
    args = [a.format(spec=spec, out=out) for a in argv]
    r = _child(script, module, sig.name, mark, *args, cwd=tmp_path)
    state = json.loads(mark.read_text())
    assert state == {"fired": True, "imported": True}, state  # the import ran to its end before the stop
    _assert_stopped(r, sig, argv[0])
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "mark.json", "tiny.toml"]


CONSOLE = """
import os, signal, sys
SIG = getattr(signal, sys.argv[1])

class Trip:  # the console script's imports: argparse is read after engine.cli's first line
    fired = False
    def find_spec(self, name, path=None, target=None):
        if not Trip.fired and name == "argparse":
            Trip.fired = True
            os.kill(os.getpid(), SIG)
        return None

sys.meta_path.insert(0, Trip())
sys.argv = ["llm-sweep", *sys.argv[2:]]
from engine.cli import entry
entry()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_console_script_holds_a_signal_from_its_first_line(tmp_path, sig):
    """A stop while engine.cli itself loads (argparse, json, pathlib): Python's own handlers would die silently
    (SIGTERM) or print a KeyboardInterrupt traceback (SIGINT); the console script answers in one line."""
    script = tmp_path / "llm-sweep"  # the launcher pip writes has this name: engine.cli holds the signals
    script.write_text(CONSOLE)
    r = _child(script, sig.name, "memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", cwd=tmp_path)
    _assert_stopped(r, sig, "memory")
    assert r.stdout == ""


def test_a_program_that_imports_the_cli_keeps_its_own_handlers():
    """Only the console script holds the signals when engine.cli loads; a program (this test run) keeps its own
    until it calls main, and gets them back after."""
    code = ("import signal, engine.cli as c, sys\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n"
            "assert c.main(['params', '--arch', 'gpt2', '--json']) == 0\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert r.returncode == 0, r.stderr


def test_a_signal_in_a_deferred_block_inside_an_import_is_raised_after_the_import(tmp_path):
    """``deferred()`` ending inside a module being imported does not raise there: it waits for the import."""
    (tmp_path / "slow_mod.py").write_text(
        "import os, signal\n"
        "from engine import signals\n"
        "with signals.deferred():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    for _ in range(100000): pass\n"
        "DONE = True\n")
    code = ("import sys\n"
            "from engine import signals\n"
            "try:\n"
            "    with signals.stop_on_signals():\n"
            "        try:\n"
            "            import slow_mod\n"
            "            import time\n"
            "            for _ in range(2000): time.sleep(0.001)\n"
            "            print('not stopped')\n"
            "        except KeyboardInterrupt as exc:\n"
            "            print('stopped', type(exc).__name__, sys.modules['slow_mod'].DONE)\n"
            "except KeyboardInterrupt:\n"
            "    print('escaped')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stopped Interrupted True", r.stdout + r.stderr
