"""Hostile and unlucky input (issue 8): targets, combine's fingerprint, signals, leftovers, axes, one-line errors.

CLI cases run in-process through ``main([...])``; a few run the real console script in a
subprocess, where a signal or a start-up moment is what is tested.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.errors import ResourceError, SpecError
from engine.files import TEMP_PREFIX, check_target, host_id, inside_folder, leftovers, temp_path
from engine.request.spec import parse_spec

REPO = Path(__file__).resolve().parents[1]

TINY = """
[sweep]
formula_set = "seed"
quantities = ["params_total", "mem_peak"]
{extra}
[fixed]
vocab = {vocab}
[axes]
d_model = [256, 512, 768, 1024]
n_layers = [2, 4]
batch = [1, 2]
seq_len = [128, 256]
"""


def tiny(tmp_path, name="spec.toml", vocab=50000, extra=""):
    path = tmp_path / name
    path.write_text(TINY.format(vocab=vocab, extra=extra))
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- 1. targets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "symlink", "folder", "device"])
def test_a_target_that_is_not_a_regular_file_is_refused_and_untouched(tmp_path, capsys, kind):
    spec = tiny(tmp_path)
    target = tmp_path / "out.nc"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        (tmp_path / "real.nc").write_text("keep")
        target.symlink_to(tmp_path / "real.nc")
    elif kind == "folder":
        target.mkdir()
    else:
        target = Path("/dev/null")
    before = os.lstat(target)
    code, _, err = run_cli(capsys, "run", spec, "-o", target)
    assert code == 2
    assert "left untouched" in one_line_error(err)
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_size) == (before.st_mode, before.st_ino, before.st_size)
    assert temps(tmp_path) == []
    if kind == "symlink":
        assert (tmp_path / "real.nc").read_text() == "keep"


def test_a_target_that_is_an_input_is_refused(tmp_path, capsys):
    spec = tiny(tmp_path)
    text = spec.read_text()
    code, _, err = run_cli(capsys, "run", spec, "-o", spec)
    assert code == 2 and "one of this command's inputs" in one_line_error(err)
    assert spec.read_text() == text
    # by another spelling and by a hard link too
    os.link(spec, tmp_path / "hard.toml")
    code, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "hard.toml")
    assert code == 2 and spec.read_text() == text
    (tmp_path / "sub").mkdir()
    code, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "sub" / ".." / "spec.toml")
    assert code == 2 and spec.read_text() == text


def test_combine_refuses_a_part_as_its_target(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tiny(tmp_path)
    for i in (0, 1):
        assert run_cli(capsys, "run", spec, "--part", f"{i}/2", "--quiet")[0] == 0
    size = Path("spec.part000-of-002.nc").stat().st_size
    code, _, err = run_cli(capsys, "combine", "spec.part000-of-002.nc", "spec.part001-of-002.nc",
                           "-o", "spec.part000-of-002.nc")
    assert code == 2 and "one of this command's inputs" in one_line_error(err)
    assert Path("spec.part000-of-002.nc").stat().st_size == size


@pytest.mark.parametrize("output", ["/tmp/elsewhere.nc", "../up.nc", "sub/../../up.nc"])
def test_a_spec_output_must_stay_inside_the_current_folder(tmp_path, output):
    with pytest.raises(SpecError, match="leaves the current folder"):
        parse_spec({"sweep": {"formula_set": "seed", "output": output}, "fixed": {"vocab": 5, "batch": 1, "seq_len": 2},
                    "axes": {"d_model": [8], "n_layers": [1]}})


def test_inside_folder():
    assert inside_folder("out.nc") and inside_folder("a/b/../c.nc")
    assert not inside_folder("/abs.nc") and not inside_folder("../x.nc")


def test_new_files_get_the_umask_mode(tmp_path, capsys):
    spec = tiny(tmp_path)
    old = os.umask(0o027)
    try:
        assert run_cli(capsys, "run", spec, "-o", tmp_path / "out.nc", "--quiet")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.nc").stat().st_mode) == 0o640


def test_temp_names_stay_short_for_a_long_target(tmp_path, capsys):
    spec = tiny(tmp_path)
    name = "a" * 252 + ".nc"  # 255 bytes: the longest legal name
    assert run_cli(capsys, "run", spec, "-o", tmp_path / name, "--quiet")[0] == 0
    assert (tmp_path / name).is_file()
    assert len(temp_path(tmp_path).name) < 50
    code, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / ("b" * 253 + ".nc"))
    assert code == 2 and "allows at most 255" in one_line_error(err)


def test_empty_output_is_refused(tmp_path, capsys):
    spec = tiny(tmp_path)
    code, _, err = run_cli(capsys, "run", spec, "-o", "")
    assert code == 2 and "empty" in one_line_error(err)


def test_missing_and_read_only_folders(tmp_path, capsys, monkeypatch):
    spec = tiny(tmp_path)
    code, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "nope" / "out.nc")
    assert code == 2 and "does not exist" in one_line_error(err)
    real = os.access
    monkeypatch.setattr("engine.files.os.access", lambda p, m: False if Path(p) == tmp_path / "ro" else real(p, m))
    (tmp_path / "ro").mkdir()
    code, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "ro" / "out.nc")
    assert code == 2 and "permission denied" in one_line_error(err)


# -- 2. combine: one request, or a named difference ---------------------------------------------


def _parts(tmp_path, capsys, name, vocab=50000, precision=None):
    spec = tiny(tmp_path, f"{name}.toml", vocab)
    paths = []
    for i in (0, 1):
        extra = ["--precision", precision] if precision else []
        assert run_cli(capsys, "run", spec, "--part", f"{i}/2", "--quiet", "-o", tmp_path / f"{name}.nc", *extra)[0] == 0
        paths.append(tmp_path / f"{name}.part00{i}-of-002.nc")
    return paths


@pytest.mark.parametrize("other,difference", [
    (dict(vocab=32000), "fixed is 'vocab = 32000' there and 'vocab = 50000'"),
    (dict(precision="fast"), "numerics is 'fast' there and 'exact'"),
])
def test_combine_refuses_parts_of_different_requests(tmp_path, capsys, other, difference):
    a = _parts(tmp_path, capsys, "a")
    b = _parts(tmp_path, capsys, "b", **other)
    code, _, err = run_cli(capsys, "combine", a[0], b[1], "-o", tmp_path / "x.nc")
    assert code == 2 and difference in one_line_error(err)
    assert not (tmp_path / "x.nc").exists() and temps(tmp_path) == []
    assert run_cli(capsys, "combine", a[1], a[0], "-o", tmp_path / "x.nc")[0] == 0


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
def test_combine_stops_within_a_second_on_a_signal(tmp_path, capsys, monkeypatch, signum):
    parts = _parts(tmp_path, capsys, "a")
    from engine.sinks import dataset

    sent = _signal_at_first_call(monkeypatch, dataset, "_blocks", signum)
    code, _, err = run_cli(capsys, "combine", *parts, "-o", tmp_path / "x.nc")
    assert sent and time.perf_counter() - sent[0] < 1.0
    assert code == 128 + signum
    assert f"stopped by {signal.Signals(signum).name}" in one_line_error(err)
    assert not (tmp_path / "x.nc").exists() and temps(tmp_path) == []


def test_combine_copies_in_bounded_blocks():
    from engine.sinks.dataset import COPY_BLOCK_ELEMENTS, _blocks

    shape = (3, 5000, 3000)
    blocks = list(_blocks(shape))
    covered = np.zeros(shape, dtype=np.int8)
    for b in blocks:
        covered[b] += 1
        assert covered[b].size <= COPY_BLOCK_ELEMENTS
    assert covered.min() == 1 and covered.max() == 1


# -- 3. signals and leftovers -------------------------------------------------------------------


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_run_cleans_up_on_sigterm_sighup_and_sigint(tmp_path, capsys, monkeypatch, signum, code):
    spec = tiny(tmp_path)
    from engine.runtime.compile import Kernel

    _signal_at_first_call(monkeypatch, Kernel, "to_host", signum)
    got, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "out.nc", "--max-device-mem", "4KiB")
    assert got == code
    assert one_line_error(err).endswith("no output was written")
    assert not (tmp_path / "out.nc").exists() and temps(tmp_path) == []


def test_a_swallowed_signal_still_stops_the_run(tmp_path, capsys, monkeypatch):
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
    got, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "out.nc", "--max-device-mem", "4KiB")
    assert got == 143 and not (tmp_path / "out.nc").exists() and temps(tmp_path) == []
    assert signals._pending is None  # reset once main returns


def _console(*argv, cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "engine", *map(str, argv)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("delay", [0.15, 0.6])
def test_ctrl_c_during_start_up_prints_one_line(tmp_path, delay):
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


def test_sigterm_to_the_console_script(tmp_path):
    spec = tmp_path / "big.toml"
    spec.write_text(TINY.format(vocab=50000, extra="compression = 9").replace(
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


def test_the_next_run_removes_leftovers_of_dead_processes(tmp_path, capsys):
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
    code, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "out.nc", "--quiet")
    assert code == 0
    assert "removed 1 temporary file(s) of stopped runs (1,000 bytes)" in err and stale.name in err
    assert not stale.exists() and alive.exists() and other_host.exists()


# -- 4. axes: linear checks, strictly increasing -----------------------------------------------


SEED_FIXED = {"vocab": 5, "batch": 1, "seq_len": 2}


def _axes(**axes):
    return parse_spec({"sweep": {"formula_set": "seed"}, "fixed": SEED_FIXED, "axes": axes})


def test_a_ten_million_value_axis_is_accepted():
    req = _axes(d_model={"start": 1, "stop": 10**7}, n_layers=list(range(1, 100_001)))
    assert req.shape == (10**7, 100_000)
    assert req.axes["d_model"][-1] == 10**7 and req.axes["d_model"].dtype == np.int64


@pytest.mark.parametrize("values,message", [
    ([32, 3, 8], "is not in increasing order; coordinates must be distinct and strictly increasing: [3, 8, 32]"),
    ([1, 2, 2, 4], "repeats 2; coordinates must be distinct and strictly increasing: [1, 2, 4]"),
])
def test_unsorted_or_repeated_axes_are_refused_with_the_sorted_list(values, message):
    with pytest.raises(SpecError) as info:
        _axes(d_model=values, n_layers=[1])
    assert message in info.value.message and info.value.key == "axes.d_model"


def test_an_axis_too_large_for_memory_is_refused_before_allocation(monkeypatch):
    monkeypatch.setattr("engine.runtime.plan.available_host_memory", lambda: 1 << 30)
    with pytest.raises(SpecError, match="an axis may take an eighth"):
        _axes(d_model={"start": 1, "stop": 10**8}, n_layers=[1])
    with pytest.raises(SpecError, match="at most 1,000,000,000"):
        _axes(d_model={"start": 1, "stop": 10**12}, n_layers=[1])


def test_the_shipped_specs_have_increasing_axes():
    from engine.request.spec import load_spec

    for path in sorted((REPO / "sweeps").glob("*.toml")):
        if path.name.endswith("-claims.toml"):
            continue
        req = load_spec(path)
        for name, values in req.axes.items():
            if name in req.categories:  # labels: distinct, in the order written
                assert len(set(values.tolist())) == len(values), (path.name, name)
                continue
            assert np.all(np.diff(values) > 0), (path.name, name)


# -- 6. no traceback for anything foreseeable -----------------------------------------------------


def test_a_full_disk_mid_write_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    """The netCDF library reports a full disk as RuntimeError('NetCDF: HDF error')."""
    import shutil

    from engine.sinks.dataset import StreamWriter

    spec = tiny(tmp_path)

    def full(self, q, index, block):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(StreamWriter, "_put", full)
    real = shutil.disk_usage
    monkeypatch.setattr("engine.files.shutil.disk_usage",
                        lambda p: real(p)._replace(free=0))
    code, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "out.nc")
    assert code == 2 and "is full" in one_line_error(err)
    assert not (tmp_path / "out.nc").exists() and temps(tmp_path) == []


def _tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True).returncode == 0
    except OSError:
        return False


def test_a_really_full_disk(tmp_path, capsys):
    """On a 1 MiB tmpfs (where this machine lets root mount one): run and combine say the disk is full."""
    small = tmp_path / "small"
    if not _tmpfs(small, "1M"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        parts = _parts(tmp_path, capsys, "a")
        (small / "filler").write_bytes(b"\0" * (1024 * 1024 - 4096))
        code, _, err = run_cli(capsys, "combine", *parts, "-o", small / "x.nc")
        assert code == 2 and "is full" in one_line_error(err)
        code, _, err = run_cli(capsys, "run", tiny(tmp_path), "-o", small / "y.nc")
        assert code == 2 and "is full" in one_line_error(err)
        assert sorted(p.name for p in small.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_distributed_without_a_cluster_names_what_jax_reads(tmp_path, capsys, monkeypatch):
    for var in [v for v in os.environ if v.startswith(("SLURM_", "OMPI_", "JAX_COORDINATOR", "KUBERNETES_"))]:
        monkeypatch.delenv(var)
    spec = tiny(tmp_path)
    code, _, err = run_cli(capsys, "run", spec, "--distributed")
    line = one_line_error(err)
    assert code == 2 and "cannot join a cluster" in line
    for name in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "JAX_COORDINATOR_ADDRESS", "--coordinator"):
        assert name in line
    assert not (tmp_path / "spec.nc").exists()


@pytest.mark.parametrize("argv,message", [
    (["--distributed", "--part", "0/2"], "give one or the other"),
    (["--coordinator", "10.0.0.1:1234"], "applies only with --distributed"),
    (["--distributed", "--coordinator", "10.0.0.1:1234"], "needs --num-processes N and --process-id I"),
    (["--distributed", "--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "from 0 to 1"),
    (["--max-device-mem", "32"], "below one grid row"),
])
def test_run_flag_combinations_that_are_refused(tmp_path, capsys, argv, message):
    code, _, err = run_cli(capsys, "run", tiny(tmp_path), *argv)
    assert code == 2 and message in one_line_error(err)


def test_check_target_api():
    with pytest.raises(ResourceError, match="is a device"):
        check_target("/dev/null")
    with pytest.raises(ResourceError, match="empty"):
        check_target("")


# -- 11. smaller frictions ------------------------------------------------------------------------


@pytest.mark.parametrize("argv,message", [
    (["formulas", "--arch", "gpt2", "--hf-config", "x.json"], "not allowed with argument --arch"),
    (["formulas", "--arch", "seed", "--with-sizes"], "a formula set with no sizes"),
    (["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--tokens", "1e9"], "needs --peak-flops"),
    (["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--peak-flops", "1e15"], "needs --tokens"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--mode", "inference", "--optimizer", "sgd"],
     "applies to --mode training"),
    (["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--vp", "2"], "give --pp > 1"),
])
def test_options_that_would_be_ignored_are_refused(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)  # argparse's own refusals too: one line (issue 23)
    assert code == 2 and message in one_line_error(err)


def test_formulas_of_a_preset_show_its_sizes_and_evaluate_them(capsys):
    code, out, _ = run_cli(capsys, "formulas", "--arch", "llama-2-7b", "--with-sizes")
    assert code == 0
    assert "Values: d_model = 4096" in out
    assert "params_total            6,738,415,616 [1]" in out
    code, out, _ = run_cli(capsys, "formulas", "--arch", "llama-2-7b", "--format", "latex")
    assert code == 0 and "\\noindent Sizes: $d_{\\mathrm{model}} = 4096$" in out


def test_flops_prints_units(capsys):
    code, out, _ = run_cli(capsys, "flops", "--arch", "gpt2", "--batch", "4", "--seq-len", "1024", "--tokens", "1e9",
                           "--peak-flops", "1e15")
    assert code == 0
    assert "FLOP per token" in out and "FLOP per step" in out
    assert "train_seconds" in out and " s  (28.5 minutes)" in out


def test_evaluate_returns_json_ready_numbers():
    import json

    import engine

    fs = engine.build_formula_set("seed")
    point = {"d_model": 768, "n_layers": 12, "vocab": 50000}
    value = fs.evaluate("params_total", point)
    assert type(value) is int and json.dumps({"n": value}) == '{"n": 123417600}'
    assert isinstance(fs.evaluate("perf_relative", point), float)
    assert fs.evaluate_exact("params_total", point) == 123417600


def test_the_kernel_api_refuses_non_positive_sizes():
    import engine
    from engine.runtime.compile import compile_kernel

    fs = engine.build_formula_set("seed")
    expr = fs.resolve("params_total", {"d_model": None, "n_layers": None, "vocab": 50000})
    kernel = compile_kernel({"params_total": expr}, {"params_total": True}, ["d_model", "n_layers"])
    for bad in ([-5], [0], [768, -1]):
        with pytest.raises(ValueError, match="must be positive integers"):
            kernel(d_model=np.array(bad), n_layers=np.array([2]))
    assert kernel(d_model=np.array([768]), n_layers=np.array([12]))["params_total"].item() == 123417600


def test_a_claim_whose_values_explode_is_refused_at_once(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('formula_set = "seed"\n[values]\nd_model = 1000000000\n'
                    '[[claim]]\nclaim = "x"\nclaimed = 1\nexpr = "d_model**d_model"\n')
    t0 = time.perf_counter()
    code, _, err = run_cli(capsys, "check", path)
    assert code == 2 and "more than 4000 digits" in one_line_error(err)
    assert time.perf_counter() - t0 < 5


def test_a_closed_pipe_is_not_an_error(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m engine formulas --arch llama-2-7b | head -1", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert proc.stderr == "" and proc.stdout.startswith("Formula set")


# -- issue 9: names --------------------------------------------------------------------------------


def test_the_old_precision_key_and_flag_still_work_with_a_note(tmp_path, capsys):
    spec = tiny(tmp_path, extra='precision = "fast"')
    code, _, err = run_cli(capsys, "run", spec, "-o", tmp_path / "a.nc", "--quiet")
    assert code == 0 and err.strip() == (f"llm-sweep run: note: {spec}: sweep.precision is now sweep.numerics "
                                         "(exact or fast); the old key is read for now")
    import xarray as xr

    with xr.open_dataset(tmp_path / "a.nc") as ds:
        assert ds.attrs["numerics"] == "fast" and ds["params_total"].dtype == np.float32
    code, _, err = run_cli(capsys, "run", tiny(tmp_path, "b.toml"), "-o", tmp_path / "b.nc", "--quiet",
                           "--precision", "fast")
    assert code == 0 and "note: --precision exact|fast is now --numerics" in err
    with pytest.raises(SpecError, match="give sweep.numerics only"):
        parse_spec({"sweep": {"formula_set": "seed", "numerics": "fast", "precision": "fast"},
                    "fixed": SEED_FIXED, "axes": {"d_model": [8], "n_layers": [1]}})


def test_an_arch_cube_records_the_preset_it_came_from(tmp_path, capsys):
    spec = tmp_path / "a.toml"
    spec.write_text('[sweep]\narch = "llama-2-7b"\nquantities = ["params_total"]\n[axes]\nn_layers = [16, 32]\n')
    assert run_cli(capsys, "run", spec, "-o", tmp_path / "a.nc", "--quiet")[0] == 0
    import xarray as xr

    with xr.open_dataset(tmp_path / "a.nc") as ds:
        assert ds.attrs["arch"] == "llama-2-7b" and ds.attrs["formula_set"] == "llama"


def test_the_request_is_frozen():
    import dataclasses

    req = _axes(d_model=[8], n_layers=[1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.numerics = "fast"
    assert req.formulas is not None and req.numerics.name == "exact"


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
