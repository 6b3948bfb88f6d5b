"""Stopping a run: SIGINT, SIGTERM and SIGHUP stop run and combine within a second in one line and leave
no temporary file; the next run removes what dead processes left. A few cases start the console
script itself, where a signal at a start-up moment is what is tested."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine.files import TEMP_PREFIX, host_id, leftovers


def _signal_at_first_call(monkeypatch, owner, attr: str, signum: int):
    """Patch ``owner.attr`` (a function) to send ``signum`` to this process on its first call: mid-run."""
    real = getattr(owner, attr)
    sent = []

    def wrapper(*args, **kwargs):
        if not sent:
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, attr, wrapper)
    return sent


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_combine_stops_within_a_second_on_a_signal(tmp_path, monkeypatch, signum, run_cli, temps, one_line_error,
                                                   run_parts):
    parts = run_parts("a")
    from engine.sinks import dataset

    sent = _signal_at_first_call(monkeypatch, dataset, "_blocks", signum)
    result = run_cli("combine", *parts, "-o", tmp_path / "x.nc")
    code, err = result.returncode, result.stderr
    assert sent and time.perf_counter() - sent[0] < 1.0
    assert code == 128 + signum
    assert f"stopped by {signal.Signals(signum).name}" in one_line_error(err)
    assert not (tmp_path / "x.nc").exists() and temps(tmp_path) == []


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_run_cleans_up_on_sigterm_sighup_and_sigint(tmp_path, monkeypatch, signum, code, run_cli, tiny, temps,
                                                    one_line_error):
    spec = tiny(tmp_path)
    from engine.runtime.compile import Kernel

    _signal_at_first_call(monkeypatch, Kernel, "to_host", signum)
    result = run_cli("run", spec, "-o", tmp_path / "out.nc", "--max-device-mem", "4KiB")
    got, err = result.returncode, result.stderr
    assert got == code
    assert one_line_error(err).endswith("no output was written")
    assert not (tmp_path / "out.nc").exists() and temps(tmp_path) == []


def test_a_swallowed_signal_still_stops_the_run(tmp_path, monkeypatch, run_cli, tiny, temps):
    """A handler's exception can be swallowed (a weakref callback); the recorded signal stops the run anyway."""
    import engine.signals as signals

    spec = tiny(tmp_path)
    from engine.runtime import sweep

    real = sweep.Progress.update

    def swallow(self, n):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
        except KeyboardInterrupt:
            pass  # as Python does in a callback
        real(self, n)

    monkeypatch.setattr(sweep.Progress, "update", swallow)
    result = run_cli("run", spec, "-o", tmp_path / "out.nc", "--max-device-mem", "4KiB")
    got = result.returncode
    assert got == 143 and not (tmp_path / "out.nc").exists() and temps(tmp_path) == []
    assert signals._pending is None  # reset once main returns


def _console(*argv, cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "engine", *map(str, argv)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("delay", [0.15, 0.6])
def test_ctrl_c_during_start_up_prints_one_line(tmp_path, delay, tiny, temps):
    """SIGINT while the console script imports (sympy, JAX, xarray): one line, exit 130, no file."""
    spec = tiny(tmp_path)
    proc = _console("run", spec, "-o", tmp_path / "out.nc", cwd=tmp_path)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip(f"the run finished within {delay} s")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out.nc").exists() and temps(tmp_path) == []


def test_sigterm_to_the_console_script(tmp_path, temps, tiny):
    spec = tiny(tmp_path, "big.toml", extra="compression = 9")
    spec.write_text(spec.read_text().replace(
        "d_model = [256, 512, 768, 1024]", "d_model = { start = 64, stop = 8192, step = 64 }").replace(
        "n_layers = [2, 4]", "n_layers = { start = 1, stop = 96 }").replace(
        "batch = [1, 2]", "batch = { start = 1, stop = 64 }").replace(
        "seq_len = [128, 256]", "seq_len = [128, 256, 512, 1024, 2048, 4096, 8192, 16384]"))
    proc = _console("run", spec, "-o", tmp_path / "out.nc", "--max-device-mem", "8MiB", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not temps(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the run writes its temporary file: mid-run, whatever the machine's speed
    assert temps(tmp_path), "the run never started writing"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip() .endswith("no output was written") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out.nc").exists() and temps(tmp_path) == []


def test_the_next_run_removes_leftovers_of_dead_processes(tmp_path, run_cli, tiny):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{TEMP_PREFIX}{host_id()}.{dead.pid}.0123abcd.tmp"
    stale.write_bytes(b"x" * 1000)
    alive = tmp_path / f"{TEMP_PREFIX}{host_id()}.{os.getppid()}.0123abcd.tmp"
    alive.write_bytes(b"y")
    other_host = tmp_path / f"{TEMP_PREFIX}00000000.{dead.pid}.0123abcd.tmp"
    other_host.write_bytes(b"z")
    assert leftovers(tmp_path) == [stale]
    spec = tiny(tmp_path)
    result = run_cli("run", spec, "-o", tmp_path / "out.nc", "--quiet")
    code, err = result.returncode, result.stderr
    assert code == 0
    assert "removed 1 temporary file(s) of stopped runs (1,000 bytes)" in err and stale.name in err
    assert not stale.exists() and alive.exists() and other_host.exists()


def test_a_signal_during_native_code_is_raised_when_it_ends():
    """Importing JAX's MLIR extension or compiling with XLA cannot take a Python exception: deferred."""
    from engine import signals

    reached = []
    with signals.stop_on_signals():
        with pytest.raises(signals.Interrupted) as info:
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)  # the handler has run by now, and raised nothing
                reached.append(True)
    assert reached and info.value.signum == signal.SIGTERM
