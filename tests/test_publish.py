"""Publishing outputs (issue 23 items 1, 3 and 8): two runs on one target, a stop while publishing, leftovers of
killed runs, what a name the user did not type may replace, read-only targets, long names, messages naming the
user's path.

The command runs in-process (``main``); orderings that need two runs at once are forced by running the second
run from inside the first (its first chunk), and a signal at a chosen moment by sending it from a patched step.
``benchmarks/adversarial_outputs.py`` is the random campaign (real processes, random signal times).
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from engine import files
from engine.cli import main
from engine.files import TEMP_PREFIX, host_id

pytest.importorskip("zarr")
pytest.importorskip("dask")

SPEC = """
[sweep]
formula_set = "seed"
{extra}
[options]
tied_head = true
[fixed]
vocab = 50000
[axes]
d_model = {{ start = 128, stop = 1024, step = 128 }}
n_layers = {{ start = 1, stop = 6 }}
batch = {batch}
seq_len = [256, 512]
"""


def spec(folder: Path, name="s.toml", batch="[1, 2, 4]", extra="") -> Path:
    path = folder / name
    path.write_text(SPEC.format(batch=batch, extra=extra))
    return path


def cli(capsys, *argv, cwd=None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        code = main([str(a) for a in argv])
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def hidden(folder: Path) -> list[str]:
    """What a run may leave beside its target: temporary files and store folders (none once it is over)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def reference(path: Path) -> xr.Dataset:
    from engine import load_spec, run

    return run(load_spec(path)).dataset


def assert_cube(path: Path, want: xr.Dataset) -> None:
    """The cube at ``path`` is complete and holds ``want``'s values (every variable, every point)."""
    from engine import open_cube

    got = open_cube(path)
    assert set(got.data_vars) == set(want.data_vars)
    assert dict(got.sizes) == dict(want.sizes)
    for v in want.data_vars:
        x = got[v].broadcast_like(want[v]).transpose(*want[v].dims).values
        assert np.array_equal(x.astype(np.float64), want[v].values.astype(np.float64), equal_nan=True), v


# -- 1. two runs, one target -------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["fails", "succeeds"])
def test_a_second_run_on_the_same_store_never_touches_the_first_ones(tmp_path, capsys, monkeypatch, second):
    """Run 2 starts and ends (by a full disk, or complete) while run 1 is between its chunks. Before, both staged in
    .c.zarr.partial: run 2 deleted it at its start and at its failure, and run 1 published what was left (exit 0).
    Now each has its own staging store: run 1's store is complete; the last to finish is at the target."""
    from engine.sinks.zarr_store import ZarrSink

    one, two = spec(tmp_path, "one.toml"), spec(tmp_path, "two.toml", batch="[8]")
    state = {"inner": False, "done": False, "code": None}
    consume, put = ZarrSink.consume, ZarrSink._put_chunk

    def interleaved(self, *args):
        if not state["done"] and not state["inner"]:
            state["done"], state["inner"] = True, True
            try:
                state["code"] = main(["run", str(two), "-o", str(tmp_path / "c.zarr"), "--quiet", "--compression", "0"])
            finally:
                state["inner"] = False
        return consume(self, *args)

    def disk_full(self, path, block):
        if state["inner"] and second == "fails":
            raise OSError(errno.ENOSPC, "No space left on device")
        return put(self, path, block)

    monkeypatch.setattr(ZarrSink, "consume", interleaved)
    monkeypatch.setattr(ZarrSink, "_put_chunk", disk_full)
    code, _, err = cli(capsys, "run", one, "-o", tmp_path / "c.zarr", "--quiet", "--compression", "0")
    assert code == 0, err
    if second == "fails":  # item 8 too: the disk-full message names the user's store
        assert state["code"] == 2 and "is full" in err and "'" + str(tmp_path / "c.zarr") + "'" in err
    else:
        assert state["code"] == 0
    assert_cube(tmp_path / "c.zarr", reference(one))  # run 1 finished last: its store, complete
    assert hidden(tmp_path) == []


def test_two_runs_get_different_staging_stores_and_shares_one(tmp_path):
    from engine.sinks.zarr_store import ZarrSink

    a, b = ZarrSink(tmp_path / "c.zarr"), ZarrSink(tmp_path / "c.zarr")
    assert a.staging != b.staging and a.staging.parent == tmp_path
    assert files.leftovers(tmp_path) == []  # names of this (live) process
    s0, s1 = ZarrSink(tmp_path / "c.zarr", part=(0, 3)), ZarrSink(tmp_path / "c.zarr", part=(1, 3))
    assert s0.staging == s1.staging != a.staging
    assert ZarrSink(tmp_path / "d.zarr", part=(0, 3)).staging != s0.staging


def test_the_last_publisher_wins_and_the_replaced_store_is_deleted(tmp_path):
    """files.replace_folder: onto nothing, onto a store (swapped in one step, or renamed away without the swap)."""
    def store(name, text):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "zarr.json").write_text(text)
        return folder

    target = tmp_path / "c.zarr"
    assert files.replace_folder(store("a", "1"), target) == []
    trash = files.replace_folder(store("b", "2"), target)
    assert (target / "zarr.json").read_text() == "2" and [(t / "zarr.json").read_text() for t in trash] == ["1"]
    for t in trash:
        import shutil

        shutil.rmtree(t)
    works = files._exchange_works
    files._exchange_works = False  # a file system without renameat2's swap
    try:
        trash = files.replace_folder(store("c", "3"), target)
    finally:
        files._exchange_works = works
    assert (target / "zarr.json").read_text() == "3" and len(trash) == 1 and trash[0].name.endswith(".old")


# -- 2. a stop while publishing; leftovers of killed runs ---------------------------------------------


def _old_and_new(tmp_path, capsys):
    old, new = spec(tmp_path, "old.toml", batch="[8]"), spec(tmp_path, "new.toml")
    assert cli(capsys, "run", old, "-o", tmp_path / "c.zarr", "--quiet")[0] == 0
    return old, new


@pytest.mark.parametrize("swap", [True, False], ids=["exchange", "two-renames"])
def test_a_signal_during_publish_leaves_the_new_store_and_says_so(tmp_path, capsys, monkeypatch, swap):
    """SIGTERM between the renames of the publish: held until the new store is in place; exit 143 and a message
    that says the target was written (it said 'no output was written', and could leave no store at all)."""
    old, new = _old_and_new(tmp_path, capsys)
    if swap:
        real = files._exchange

        def exchange(a, b):
            os.kill(os.getpid(), signal.SIGTERM)
            return real(a, b)

        monkeypatch.setattr(files, "_exchange", exchange)
    else:
        real = files.temp_path
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)

        def temp(folder, kind="tmp"):
            if kind == "old":  # the earlier store is about to be renamed away
                os.kill(os.getpid(), signal.SIGTERM)
            return real(folder, kind)

        monkeypatch.setattr(files, "temp_path", temp)
    code, _, err = cli(capsys, "run", new, "-o", tmp_path / "c.zarr")
    assert code == 143
    assert one_line(err).endswith(f"stopped by SIGTERM; '{tmp_path / 'c.zarr'}' had already been written in full")
    assert_cube(tmp_path / "c.zarr", reference(new))
    assert hidden(tmp_path) == []


def test_a_signal_just_before_publish_keeps_the_old_store(tmp_path, capsys, monkeypatch):
    from engine.sinks import zarr_store

    old, new = _old_and_new(tmp_path, capsys)
    real = zarr_store._consolidate

    def consolidate(store):
        os.kill(os.getpid(), signal.SIGINT)
        return real(store)

    monkeypatch.setattr(zarr_store, "_consolidate", consolidate)
    code, _, err = cli(capsys, "run", new, "-o", tmp_path / "c.zarr")
    assert code == 130 and one_line(err).endswith("stopped by SIGINT; no output was written")
    assert_cube(tmp_path / "c.zarr", reference(old))
    assert hidden(tmp_path) == []


def test_a_signal_as_a_netcdf_file_is_renamed_says_it_was_written(tmp_path, capsys, monkeypatch):
    new = spec(tmp_path, "new.toml")
    real = os.replace

    def replace(src, dst):
        real(src, dst)
        os.kill(os.getpid(), signal.SIGHUP)

    monkeypatch.setattr(files.os, "replace", replace)
    code, _, err = cli(capsys, "run", new, "-o", tmp_path / "c.nc")
    assert code == 129 and one_line(err).endswith("had already been written in full")
    assert_cube(tmp_path / "c.nc", reference(new))
    assert hidden(tmp_path) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_store_folders_of_dead_processes_are_removed_by_the_next_run(tmp_path, capsys):
    dead = _dead_pid()
    stale = []
    for kind in ("partial", "template", "old"):
        folder = tmp_path / f"{TEMP_PREFIX}{host_id()}.{dead}.0123abcd.{kind}"
        (folder / "v" / "c").mkdir(parents=True)
        (folder / "zarr.json").write_text("{}")
        (folder / "v" / "c" / "0").write_bytes(b"x" * 1000)
        stale.append(folder)
    legacy = [tmp_path / f".c.zarr.{dead}.old", tmp_path / f".c.zarr.{dead}.template"]  # earlier versions' names
    for folder in legacy:
        folder.mkdir()
        (folder / "zarr.json").write_text("{}")
    alive = tmp_path / f"{TEMP_PREFIX}{host_id()}.{os.getppid()}.0123abcd.partial"
    alive.mkdir()
    other_host = tmp_path / f"{TEMP_PREFIX}00000000.{dead}.0123abcd.old"
    other_host.mkdir()
    code, _, err = cli(capsys, "run", spec(tmp_path), "-o", tmp_path / "c.zarr", "--quiet")
    assert code == 0, err
    assert "removed 5 temporary store folder(s) of stopped runs" in one_line(err)
    assert not any(p.exists() for p in stale + legacy)
    assert alive.exists() and other_host.exists() and (tmp_path / "c.zarr" / "zarr.json").is_file()


def test_a_run_stopped_while_it_builds_its_template_leaves_nothing(tmp_path, capsys, monkeypatch):
    from engine.sinks import zarr_store

    real = zarr_store.template_dataset

    def template(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(zarr_store, "template_dataset", template)
    for argv in ([], ["--part", "0/2"]):
        code, _, err = cli(capsys, "run", spec(tmp_path), "-o", tmp_path / "c.zarr", *argv)
        assert code == 143 and one_line(err).endswith("no output was written")
        assert hidden(tmp_path) == []


# -- shares of one run -------------------------------------------------------------------------------


def _share_lock(tmp_path, index, count, pid):
    from engine.sinks.zarr_store import PARTS, staging_path

    lock = staging_path(tmp_path / "c.zarr", count) / PARTS / f"writing-{index}-of-{count}"
    lock.write_text(f"{host_id()} {pid}")
    return lock


def test_a_share_another_live_process_writes_is_refused_and_a_dead_ones_is_taken_over(tmp_path, capsys):
    s = spec(tmp_path)
    assert cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", "0/2", "--quiet")[0] == 0
    lock = _share_lock(tmp_path, 1, 2, os.getppid())  # a live process of this host
    code, _, err = cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", "1/2")
    assert code == 2 and f"another run (process {os.getppid()}) is writing share 1 of 2" in one_line(err)
    assert lock.read_text() == f"{host_id()} {os.getppid()}"  # still the other run's
    _share_lock(tmp_path, 1, 2, _dead_pid())  # that run was killed: a rerun of the share takes its lock over
    code, _, err = cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", "1/2", "--quiet")
    assert code == 0, err
    assert_cube(tmp_path / "c.zarr", reference(s))
    assert hidden(tmp_path) == []


def test_shares_of_a_run_split_another_way_are_refused(tmp_path, capsys):
    """Marks 0-of-3 and 1-of-3 once counted as two of two shares done, and published a third of the store."""
    s = spec(tmp_path)
    for i in (0, 1):
        assert cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", f"{i}/3", "--quiet")[0] == 0
    code, _, err = cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", "0/2")
    assert code == 2 and "split 3 ways" in one_line(err) and not (tmp_path / "c.zarr").exists()
    assert cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", "2/3", "--quiet")[0] == 0
    assert_cube(tmp_path / "c.zarr", reference(s))


def test_a_stopped_share_leaves_the_others_work_for_its_rerun(tmp_path, capsys, monkeypatch):
    from engine.sinks.zarr_store import ZarrSink

    s = spec(tmp_path)
    assert cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", "0/2", "--quiet")[0] == 0
    with monkeypatch.context() as m:
        def stop(self, *args):
            raise KeyboardInterrupt

        m.setattr(ZarrSink, "_write", stop)
        assert cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", "1/2", "--quiet")[0] == 130
    assert not (tmp_path / "c.zarr").exists() and len(hidden(tmp_path)) == 1  # the shares' staging store
    assert cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--part", "1/2", "--quiet")[0] == 0
    assert_cube(tmp_path / "c.zarr", reference(s))
    assert hidden(tmp_path) == []


# -- 3. what a run may replace -------------------------------------------------------------------------


def _foreign_hdf5(path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(str(path), "w") as nc:
        nc.createDimension("x", 2)
        nc.title = "someone else's data"


@pytest.mark.parametrize("make", ["text", "empty", "hdf5", "zarr-store", "zarr-of-others"])
def test_a_spec_output_replaces_only_a_cube_of_its_kind(tmp_path, capsys, make):
    """A downloaded spec with output = ".bashrc" replaced ~/.bashrc; now the spec's output (or the default name)
    replaces only an llm-sweep cube of the kind it writes; -o still replaces any regular file."""
    name = {"text": ".bashrc", "empty": "x.nc", "hdf5": "x.nc", "zarr-store": "x.zarr", "zarr-of-others": "x.zarr"}[make]
    target = tmp_path / name
    if make == "text":
        target.write_text("alias ll='ls -l'\n")
    elif make == "empty":
        target.write_bytes(b"")
    elif make == "hdf5":
        _foreign_hdf5(target)
    else:
        target.mkdir()
        meta = {"zarr_format": 3, "node_type": "group", "attributes": {"engine": "other"} if make == "zarr-of-others"
                else {}}
        import json

        (target / "zarr.json").write_text(json.dumps(meta))
    before = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in [target, *target.rglob("*")] if p.is_file())
    s = spec(tmp_path, extra=f'output = "{name}"')
    code, _, err = cli(capsys, "run", s, cwd=tmp_path)
    line = one_line(err)
    assert code == 2 and f"sweep.output '{name}' exists and is not an llm-sweep" in line and "-o" in line
    after = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in [target, *target.rglob("*")] if p.is_file())
    assert after == before and hidden(tmp_path) == ([".bashrc"] if make == "text" else [])
    if make in ("text", "empty", "hdf5"):  # the user names it on the command line: replaced, as before
        assert cli(capsys, "run", s, "-o", name, "--quiet", cwd=tmp_path)[0] == 0
        assert target.read_bytes()[:8] == files.HDF5_SIGNATURE


def test_the_default_name_and_a_spec_output_replace_an_earlier_cube(tmp_path, capsys):
    for name in ("out.nc", "out.zarr"):
        s = spec(tmp_path, f"{name}.toml", extra=f'output = "{name}"')
        for _ in range(2):
            assert cli(capsys, "run", s, "--quiet", cwd=tmp_path)[0] == 0
    s = spec(tmp_path, "plain.toml")
    for _ in range(2):
        assert cli(capsys, "run", s, "--quiet", cwd=tmp_path)[0] == 0  # plain.nc
    assert (tmp_path / "plain.nc").is_file()


@pytest.mark.parametrize("how", ["-o", "spec"])
def test_a_read_only_target_is_refused_and_keeps_its_mode(tmp_path, capsys, how):
    s = spec(tmp_path, extra='output = "ro.nc"')
    assert cli(capsys, "run", s, "--quiet", cwd=tmp_path)[0] == 0
    target = tmp_path / "ro.nc"
    data = target.read_bytes()
    target.chmod(0o444)
    code, _, err = cli(capsys, "run", s, *(["-o", "ro.nc"] if how == "-o" else []), cwd=tmp_path)
    assert code == 2 and "'ro.nc' exists and is read-only (mode 0444)" in one_line(err)
    assert target.read_bytes() == data and stat.S_IMODE(target.stat().st_mode) == 0o444
    assert hidden(tmp_path) == []


def test_a_read_only_store_is_refused(tmp_path, capsys):
    s = spec(tmp_path)
    assert cli(capsys, "run", s, "-o", tmp_path / "c.zarr", "--quiet")[0] == 0
    (tmp_path / "c.zarr").chmod(0o555)
    try:
        code, _, err = cli(capsys, "run", s, "-o", tmp_path / "c.zarr")
        assert code == 2 and "is read-only (mode 0555)" in one_line(err)
    finally:
        (tmp_path / "c.zarr").chmod(0o755)
    assert (tmp_path / "c.zarr" / "zarr.json").is_file() and hidden(tmp_path) == []


def test_an_immutable_target_is_named_not_the_temporary_file(tmp_path, capsys, monkeypatch):
    s = spec(tmp_path)
    target = tmp_path / "c.nc"
    assert cli(capsys, "run", s, "-o", target, "--quiet")[0] == 0
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode == 0:
        try:  # refused before the run: this user may not write it
            code, _, err = cli(capsys, "run", s, "-o", target)
            assert code == 2 and f"'{target}' exists and this user may not write it" in one_line(err)
        finally:
            subprocess.run(["chattr", "-i", str(target)], capture_output=True)

    def refuse(src, dst):  # the target became immutable while the run went on
        raise PermissionError(errno.EPERM, "Operation not permitted", str(src))

    monkeypatch.setattr(files.os, "replace", refuse)
    code, _, err = cli(capsys, "run", s, "-o", target)
    line = one_line(err)
    assert code == 2 and f"cannot replace '{target}': operation not permitted" in line and TEMP_PREFIX not in line
    assert hidden(tmp_path) == []


# -- 8. names and messages ------------------------------------------------------------------------------


def test_a_250_byte_store_name_is_accepted(tmp_path, capsys):
    """The staging name (.NAME.partial, 259 bytes) was refused as too long; staging names are now short."""
    s = spec(tmp_path)
    name = "a" * 245 + ".zarr"
    assert len(name) == 250
    code, _, err = cli(capsys, "run", s, "-o", tmp_path / name, "--quiet")
    assert code == 0, err
    for i in (0, 1):
        code, _, err = cli(capsys, "run", s, "-o", tmp_path / ("b" * 245 + ".zarr"), "--part", f"{i}/2", "--quiet")
        assert code == 0, err
    code, _, err = cli(capsys, "run", s, "-o", tmp_path / ("q" * 245 + ".zarr"), "--maximize", "seq_len",
                       "--where", "mem_peak <= 2GiB", "--over", "seq_len", "--quiet")
    assert code == 0, err
    assert sorted(p.name[0] for p in tmp_path.iterdir() if p.name.endswith(".zarr")) == ["a", "b", "q"]
    assert hidden(tmp_path) == []


def test_a_full_disk_while_writing_a_store_names_it(tmp_path, capsys, monkeypatch):
    from engine.sinks.zarr_store import ZarrSink

    def full(self, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ZarrSink, "_put_chunk", full)
    code, _, err = cli(capsys, "run", spec(tmp_path), "-o", tmp_path / "c.zarr", "--compression", "0")
    assert code == 2
    assert one_line(err).endswith(f"is full; nothing was left at '{tmp_path / 'c.zarr'}'")
    assert hidden(tmp_path) == [] and not (tmp_path / "c.zarr").exists()
