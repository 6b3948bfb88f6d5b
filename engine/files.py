"""Output files: what may be a target, atomic writes, and temporary files that outlive their writer.

Every file the tool writes goes through ``AtomicFile``: it is created under a short temporary
name beside the target (``.llm-sweep.<host>.<pid>.<random>.tmp``, whatever the target's
length), and renamed onto the target only when complete. The temporary name carries the
writer's host and process id, so the next run into the same folder can remove what a killed
run (SIGKILL, a node that died) left behind: ``remove_leftovers`` deletes the temporary files
of this host whose process is gone, and says so. A zarr store (a folder) is built the same way
under ``.llm-sweep.<host>.<pid>.<random>.partial`` (``.template`` while its metadata is written,
``.old`` for the store it replaced on its way out), and the same rule removes those folders.

``check_target`` refuses, before any work is done, a target that exists and is not a regular
file (a device such as /dev/null, a FIFO, a socket, a folder, a symbolic link), a read-only
file (no write bit, or one this user may not write: an immutable file), a target that is one of
the command's own inputs, a folder that is missing or not writable, and a name longer than the
file system allows. New files get the mode the umask allows (as ``open`` would).
``check_cube`` refuses a target that exists and is not an llm-sweep cube of the kind about to be
written: what a name the user did not type (a spec's ``output``) may replace.

A stop signal during the rename that publishes an output is held until the rename is done
(``signals.deferred``); ``written`` records what this process published, so a stopped command
can say whether its target changed (``stop_outcome``).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
from pathlib import Path
from typing import Iterable

from engine import signals
from engine.errors import ResourceError

TEMP_PREFIX = ".llm-sweep."
TEMP_KINDS = ("tmp", "partial", "template", "old")  # a file; a zarr store being built, its metadata, the replaced one
_TEMP = re.compile(r"^\.llm-sweep\.([0-9a-f]{8})\.(\d+)\.[0-9a-f]{8}\.(tmp|partial|template|old)$")
# what earlier versions left beside a store NAME.zarr: .NAME.zarr.<pid>.old / .template (no host in the name)
_LEGACY = re.compile(r"^\.(.+\.zarr)\.(\d+)\.(old|template)$")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # a netCDF-4 file is an HDF5 file
ENGINE = "llm-sweep"  # every cube's global attribute ``engine`` (``dataset.dataset_attrs``)


def host_id() -> str:
    """Eight hex digits naming this host (temporary files of other hosts are never touched)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def file_mode() -> int:
    """The mode a new file gets under the current umask (0o666 & ~umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_target(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), what: str = "output") -> Path:
    """Refuse a target that cannot or must not be written (``ResourceError``, nothing touched).

    Refused: an existing target that is not a regular file (device, FIFO, socket, folder,
    symbolic link); a target that is one of ``inputs`` (the same file, by any spelling or hard
    link); a missing or read-only folder; a name longer than the folder's file system allows.
    An existing regular file is replaced atomically when the run succeeds.
    """
    target = Path(path)
    if str(path) == "":
        raise ResourceError(f"the {what} path is empty; give a file name such as out.nc")
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise ResourceError(f"{what} {str(target)!r}: {_reason(exc)}") from None
        st = None  # said below, with the limit
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ResourceError(f"{what} {str(target)!r} exists and is {_kind(st.st_mode)}; it is left untouched: "
                            "give the path of a regular file (new or to replace)")
    if st is not None:
        refuse_read_only(target, st, what)
        refuse_inputs(target, inputs, what)
    return check_place(target, what)


def refuse_read_only(target: Path, st: os.stat_result, what: str = "output") -> None:
    """ResourceError when existing ``target`` is read-only: no write bit for anyone (root included), or not
    writable by this user (another user's file, an immutable file)."""
    if st.st_mode & 0o222 and os.access(target, os.W_OK, follow_symlinks=False):
        return
    mode = f"mode {stat.S_IMODE(st.st_mode):04o}"
    if not st.st_mode & 0o222:
        raise ResourceError(f"{what} {str(target)!r} exists and is read-only ({mode}); it is left untouched: make it "
                            "writable (chmod u+w) to replace it, or give another path")
    raise ResourceError(f"{what} {str(target)!r} exists and this user may not write it ({mode}: another user's, or "
                        "immutable); it is left untouched: give another path")


def check_cube(path: str | os.PathLike, kind: str, what: str = "output", hint: str = "") -> None:
    """ResourceError unless ``path`` is absent or an llm-sweep cube of ``kind`` ("netcdf": an HDF5 file whose
    global attribute ``engine`` is llm-sweep; "zarr": a folder whose ``zarr.json`` says so, or an empty folder):
    what a name the user did not type may replace. ``hint`` ends the message (how to replace it anyway)."""
    target = Path(path)
    try:
        st = os.lstat(target)
    except OSError:
        return  # absent (other problems are check_target's)
    if kind == "zarr":
        cube = stat.S_ISDIR(st.st_mode) and (not any(target.iterdir()) or _zarr_engine(target) == ENGINE)
        name = "zarr store"
    else:
        cube = stat.S_ISREG(st.st_mode) and _netcdf_engine(target) == ENGINE
        name = "netCDF cube"
    if not cube:
        raise ResourceError(f"{what} {str(target)!r} exists and is not an llm-sweep {name}; it is left untouched"
                            + (f": {hint}" if hint else ""))


def _zarr_engine(store: Path) -> str | None:
    try:
        meta = json.loads((store / "zarr.json").read_text())
        return meta.get("attributes", {}).get("engine")
    except (OSError, ValueError, AttributeError):
        return None


def _netcdf_engine(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                return None
    except OSError:
        return None
    try:
        import netCDF4

        with netCDF4.Dataset(str(path)) as nc:
            return nc.getncattr("engine") if "engine" in nc.ncattrs() else None
    except Exception:  # an HDF5 file netCDF cannot read: not a cube
        return None


def refuse_inputs(target: Path, inputs: Iterable[str | os.PathLike], what: str = "output") -> None:
    """ResourceError when ``target`` is one of ``inputs`` (the same file or folder, by any spelling or hard link)."""
    for source in inputs:
        try:
            same = os.path.samefile(source, target)
        except OSError:
            same = False
        if same:
            raise ResourceError(f"{what} {str(target)!r} is one of this command's inputs ({source}); "
                                "writing it would destroy the input: give another output path")


def check_place(target: Path, what: str = "output") -> Path:
    """ResourceError unless ``target``'s folder exists, is writable and takes a name that long."""
    folder = target.parent
    try:
        folder_exists = folder.exists()
    except OSError as exc:
        raise ResourceError(f"{what} folder {str(folder)!r}: {_reason(exc)}") from None
    if not folder_exists:
        raise ResourceError(f"{what} folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ResourceError(f"{what} folder {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ResourceError(f"cannot write into {str(folder)!r}: permission denied")
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(target.name)) > name_max:
        raise ResourceError(f"{what} file name is {len(os.fsencode(target.name))} bytes long; this file system "
                            f"allows at most {name_max}")
    return target


def inside_folder(path: str, folder: str | os.PathLike = ".") -> bool:
    """Whether relative ``path`` stays inside ``folder`` (no absolute path, no way out by ``..``)."""
    p = Path(path)
    if p.is_absolute() or p.drive:
        return False
    base = Path(folder).resolve()
    try:
        (base / p).resolve().relative_to(base)
    except ValueError:
        return False
    return True


def disk_bytes(path: str | os.PathLike) -> int:
    """Bytes a file, or every file of a folder (a zarr store), takes on disk."""
    path = Path(path)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def temp_path(folder: Path, kind: str = "tmp") -> Path:
    """A fresh, short temporary name in ``folder`` carrying this host and process id (``kind``: one of
    ``TEMP_KINDS``; the name is under 50 bytes whatever the target's)."""
    assert kind in TEMP_KINDS, kind
    return folder / f"{TEMP_PREFIX}{host_id()}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def leftovers(folder: str | os.PathLike) -> list[Path]:
    """Temporary files and store folders in ``folder`` written on this host by processes that no longer run
    (``TEMP_KINDS``; and the ``.NAME.zarr.<pid>.old``/``.template`` store folders of earlier versions)."""
    here = host_id()
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m and m.group(1) == here and int(m.group(2)) != os.getpid() and not _alive(int(m.group(2))):
            found.append(Path(entry.path))
            continue
        m = _LEGACY.match(entry.name)
        if m and entry.is_dir(follow_symlinks=False) and int(m.group(2)) != os.getpid() \
                and not _alive(int(m.group(2))):
            found.append(Path(entry.path))
    return sorted(found)


def remove_leftovers(folder: str | os.PathLike, say=None) -> list[Path]:
    """Delete ``leftovers(folder)``; ``say(message)`` is told what was removed."""
    removed, size, folders = [], 0, 0
    for path in leftovers(folder):
        try:
            if path.is_dir() and not path.is_symlink():
                size += disk_bytes(path)
                shutil.rmtree(path)
                folders += 1
            else:
                size += path.lstat().st_size
                path.unlink()
            removed.append(path)
        except OSError:
            continue
    if removed and say is not None:
        names = ", ".join(p.name for p in removed[:3]) + (", ..." if len(removed) > 3 else "")
        what = " and ".join(([f"{len(removed) - folders} temporary file(s)"] if len(removed) > folders else [])
                            + ([f"{folders} temporary store folder(s)"] if folders else []))
        say(f"removed {what} of stopped runs ({size:,} bytes) from {str(Path(folder))!r}: {names}")
    return removed


# -- what this process published (for the message of a command stopped by a signal) ------------------

written: list[Path] = []


def stop_outcome() -> str:
    """What a command stopped by a signal says of its outputs: none was written, or which ones were already
    in place when it stopped (the stop came after their publishing rename). Forgets them."""
    done = list(dict.fromkeys(written))
    written.clear()
    if not done:
        return "no output was written"
    return f"{', '.join(repr(str(p)) for p in done)} had already been written in full"


# -- replacing a folder (a zarr store) ---------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # renameat2(2): swap two paths atomically (Linux 3.15+, most local file systems)
_exchange_works: bool | None = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap paths ``a`` and ``b`` in one step; False where the system or file system cannot (OSError otherwise)."""
    global _exchange_works
    if _exchange_works is False:
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        _exchange_works = False
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        _exchange_works = True
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        _exchange_works = False
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(folder: Path, target: Path, check=None) -> list[Path]:
    """Put finished ``folder`` at ``target`` (absent, an empty folder, or a folder to replace), in one step
    where the file system can swap two paths; returns what to delete: the folder(s) it replaced.

    Call it with signals deferred. A target that appears while this runs (another run publishing the same
    name) is replaced too: the last to publish wins, as with files. ``check(target)`` is called before each
    attempt (re-checking the target is still one to replace). Without an atomic swap the earlier folder is
    renamed away (``temp_path(..., "old")``) just before ``folder`` is renamed in.
    """
    trash: list[Path] = []
    for _ in range(100):
        if check is not None:
            check(target)
        try:
            os.rename(folder, target)  # no target, or an empty folder: one atomic step
            return trash
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        try:
            if _exchange(folder, target):
                return trash + [folder]  # ``folder`` now names the earlier store
        except FileNotFoundError:
            continue  # the target went away in between: rename again
        old = temp_path(target.parent, "old")
        try:
            os.rename(target, old)
        except FileNotFoundError:
            continue
        trash.append(old)
    raise ResourceError(f"cannot put the finished store at {str(target)!r}: other runs keep replacing it")


class AtomicFile:
    """A file written under a temporary name and renamed onto ``target`` when complete.

    ``path`` is the temporary path to write; ``commit()`` gives it the umask's mode and renames
    it onto the target (re-checking that the target is still a regular file or absent);
    ``abort()`` (or leaving a ``with`` block by an exception, Ctrl-C included) deletes it.
    Write errors (``OSError``, and the netCDF library's ``RuntimeError``) leave a ``with`` block as
    one-line ``ResourceError``s (``failure``); writers that outlive a block call ``failure`` themselves.
    """

    def __init__(self, target: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()):
        self.target = check_target(target, inputs)
        self.path = temp_path(self.target.parent)
        self.done = False
        try:
            with signals.deferred():  # created and closed as one step; a stop held meanwhile is raised below
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
        except OSError as exc:
            raise ResourceError(f"cannot create a file in {str(self.target.parent)!r}: {_reason(exc)}") from None
        except BaseException:  # the stop, raised as the file came to be: the caller never holds it, so remove it
            self.abort()
            raise

    def commit(self) -> Path:
        signals.check()  # a stop signal that arrived while writing: the target stays as it was
        check_target(self.target)  # the target may have changed while the run went on
        with signals.deferred():  # a signal from here on is answered once the file is in place, and says so
            try:
                os.chmod(self.path, file_mode())
                os.replace(self.path, self.target)
            except OSError as exc:  # an immutable file, a folder whose permissions changed: name the target
                self.abort()
                raise ResourceError(f"cannot replace {str(self.target)!r}: {_reason(exc)}; it is left as it "
                                    "was") from None
            self.done = True
            written.append(self.target)
        return self.target

    def abort(self) -> None:
        if not self.done:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "AtomicFile":
        return self

    def failure(self, exc: BaseException) -> BaseException:
        """What to raise for ``exc`` while writing: a write error as ``write_error`` says it, else ``exc``."""
        return write_error(exc, self.target) if isinstance(exc, (RuntimeError, OSError)) else exc

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
            failure = self.failure(exc)
            if failure is not exc:
                raise failure from None
        return False


def write_error(exc: BaseException, target: Path) -> ResourceError:
    """One line for a failed write into ``target``'s folder: disk full, permissions, or the library's message.

    The netCDF library reports a full disk as ``RuntimeError: NetCDF: HDF error``; the free space
    of the folder tells that case apart.
    """
    folder = target.parent
    left = f"{str(target)!r} is as it was" if os.path.lexists(target) else f"nothing was left at {str(target)!r}"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceError(f"the disk holding {str(folder)!r} is full; {left}")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None and free < (1 << 20):
        return ResourceError(f"the disk holding {str(folder)!r} is full ({free:,} bytes free); {left}")
    reason = _reason(exc) if isinstance(exc, OSError) else str(exc).strip().splitlines()[0] if str(exc) else \
        type(exc).__name__
    return ResourceError(f"writing {str(target)!r} failed: {reason}; " + (
        left if os.path.lexists(target) else "nothing was left there"))


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)
