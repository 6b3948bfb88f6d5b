"""Output targets: what run and combine may write to (regular files inside reach, never an input), the
temporary names and modes of new files, and full disks, each refused in one line leaving nothing."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from engine.errors import ResourceError, SpecError
from engine.files import check_target, inside_folder, temp_path
from engine.request.spec import parse_spec


@pytest.mark.parametrize("kind", ["fifo", "symlink", "folder", "device"])
def test_a_target_that_is_not_a_regular_file_is_refused_and_untouched(tmp_path, kind, run_cli, tiny, temps,
                                                                      one_line_error):
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
    result = run_cli("run", spec, "-o", target)
    code, err = result.returncode, result.stderr
    assert code == 2
    assert "left untouched" in one_line_error(err)
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_size) == (before.st_mode, before.st_ino, before.st_size)
    assert temps(tmp_path) == []
    if kind == "symlink":
        assert (tmp_path / "real.nc").read_text() == "keep"


def test_a_target_that_is_an_input_is_refused(tmp_path, run_cli, tiny, one_line_error):
    spec = tiny(tmp_path)
    text = spec.read_text()
    result = run_cli("run", spec, "-o", spec)
    code, err = result.returncode, result.stderr
    assert code == 2 and "one of this command's inputs" in one_line_error(err)
    assert spec.read_text() == text
    # by another spelling and by a hard link too
    os.link(spec, tmp_path / "hard.toml")
    result = run_cli("run", spec, "-o", tmp_path / "hard.toml")
    code, err = result.returncode, result.stderr
    assert code == 2 and spec.read_text() == text
    (tmp_path / "sub").mkdir()
    result = run_cli("run", spec, "-o", tmp_path / "sub" / ".." / "spec.toml")
    code, err = result.returncode, result.stderr
    assert code == 2 and spec.read_text() == text


@pytest.mark.parametrize("output", ["/tmp/elsewhere.nc", "../up.nc", "sub/../../up.nc"])
def test_a_spec_output_must_stay_inside_the_current_folder(tmp_path, output):
    with pytest.raises(SpecError, match="leaves the current folder"):
        parse_spec({"sweep": {"formula_set": "seed", "output": output}, "fixed": {"vocab": 5, "batch": 1, "seq_len": 2},
                    "axes": {"d_model": [8], "n_layers": [1]}})


def test_inside_folder():
    assert inside_folder("out.nc") and inside_folder("a/b/../c.nc")
    assert not inside_folder("/abs.nc") and not inside_folder("../x.nc")


def test_new_files_get_the_umask_mode(tmp_path, run_cli, tiny):
    spec = tiny(tmp_path)
    old = os.umask(0o027)
    try:
        assert run_cli("run", spec, "-o", tmp_path / "out.nc", "--quiet").returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.nc").stat().st_mode) == 0o640


def test_temp_names_stay_short_for_a_long_target(tmp_path, run_cli, tiny, one_line_error):
    spec = tiny(tmp_path)
    name = "a" * 252 + ".nc"  # 255 bytes: the longest legal name
    assert run_cli("run", spec, "-o", tmp_path / name, "--quiet").returncode == 0
    assert (tmp_path / name).is_file()
    assert len(temp_path(tmp_path).name) < 50
    result = run_cli("run", spec, "-o", tmp_path / ("b" * 253 + ".nc"))
    code, err = result.returncode, result.stderr
    assert code == 2 and "allows at most 255" in one_line_error(err)


def test_empty_output_is_refused(tmp_path, run_cli, tiny, one_line_error):
    spec = tiny(tmp_path)
    result = run_cli("run", spec, "-o", "")
    code, err = result.returncode, result.stderr
    assert code == 2 and "empty" in one_line_error(err)


def test_missing_and_read_only_folders(tmp_path, monkeypatch, run_cli, tiny, one_line_error):
    spec = tiny(tmp_path)
    result = run_cli("run", spec, "-o", tmp_path / "nope" / "out.nc")
    code, err = result.returncode, result.stderr
    assert code == 2 and "does not exist" in one_line_error(err)
    real = os.access
    monkeypatch.setattr("engine.files.os.access", lambda p, m: False if Path(p) == tmp_path / "ro" else real(p, m))
    (tmp_path / "ro").mkdir()
    result = run_cli("run", spec, "-o", tmp_path / "ro" / "out.nc")
    code, err = result.returncode, result.stderr
    assert code == 2 and "permission denied" in one_line_error(err)


def test_check_target_api():
    with pytest.raises(ResourceError, match="is a device"):
        check_target("/dev/null")
    with pytest.raises(ResourceError, match="empty"):
        check_target("")


def test_a_full_disk_mid_write_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, run_cli, tiny, temps,
                                                              one_line_error):
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
    result = run_cli("run", spec, "-o", tmp_path / "out.nc")
    code, err = result.returncode, result.stderr
    assert code == 2 and "is full" in one_line_error(err)
    assert not (tmp_path / "out.nc").exists() and temps(tmp_path) == []


def _tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True).returncode == 0
    except OSError:
        return False


def test_a_really_full_disk(tmp_path, run_cli, tiny, one_line_error, run_parts):
    """On a 1 MiB tmpfs (where this machine lets root mount one): run and combine say the disk is full."""
    small = tmp_path / "small"
    if not _tmpfs(small, "1M"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        parts = run_parts("a")
        (small / "filler").write_bytes(b"\0" * (1024 * 1024 - 4096))
        result = run_cli("combine", *parts, "-o", small / "x.nc")
        code, err = result.returncode, result.stderr
        assert code == 2 and "is full" in one_line_error(err)
        result = run_cli("run", tiny(tmp_path), "-o", small / "y.nc")
        code, err = result.returncode, result.stderr
        assert code == 2 and "is full" in one_line_error(err)
        assert sorted(p.name for p in small.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
