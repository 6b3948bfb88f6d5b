"""Output files: what may be a target, atomic writes, and temporary files that outlive their writer.

Every file the tool writes goes through ``AtomicFile``: it is created under a short temporary
name beside the target (``.llm-sweep.<host>.<pid>.<random>.tmp``, whatever the target's
length), and renamed onto the target only when complete. The temporary name carries the
writer's host and process id, so the next run into the same folder can remove what a killed
run (SIGKILL, a node that died) left behind: ``remove_leftovers`` deletes the temporary files
of this host whose process is gone, and says so.

``check_target`` refuses, before any work is done, a target that exists and is not a regular
file (a device such as /dev/null, a FIFO, a socket, a folder, a symbolic link), a target that is
one of the command's own inputs, a folder that is missing or not writable, and a name longer
than the file system allows. New files get the mode the umask allows (as ``open`` would).
"""

from __future__ import annotations

import errno
import hashlib
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
TEMP_SUFFIX = ".tmp"
_TEMP = re.compile(r"^\.llm-sweep\.([0-9a-f]{8})\.(\d+)\.[0-9a-f]{8}\.tmp$")


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
        refuse_inputs(target, inputs, what)
    return check_place(target, what)


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


def temp_path(folder: Path) -> Path:
    """A fresh, short temporary name in ``folder`` carrying this host and process id."""
    return folder / f"{TEMP_PREFIX}{host_id()}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def leftovers(folder: str | os.PathLike) -> list[Path]:
    """Temporary files in ``folder`` written on this host by processes that no longer run."""
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
    return sorted(found)


def remove_leftovers(folder: str | os.PathLike, say=None) -> list[Path]:
    """Delete ``leftovers(folder)``; ``say(message)`` is told what was removed."""
    removed, size = [], 0
    for path in leftovers(folder):
        try:
            size += path.stat().st_size
            path.unlink()
            removed.append(path)
        except OSError:
            continue
    if removed and say is not None:
        names = ", ".join(p.name for p in removed[:3]) + (", ..." if len(removed) > 3 else "")
        say(f"removed {len(removed)} temporary file(s) of stopped runs ({size:,} bytes) from "
            f"{str(Path(folder))!r}: {names}")
    return removed


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
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise ResourceError(f"cannot create a file in {str(self.target.parent)!r}: {_reason(exc)}") from None
        os.close(fd)
        self.done = False

    def commit(self) -> Path:
        signals.check()  # a stop signal that arrived while writing: the target stays as it was
        check_target(self.target)  # the target may have changed while the run went on
        os.chmod(self.path, file_mode())
        os.replace(self.path, self.target)
        self.done = True
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
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceError(f"the disk holding {str(folder)!r} is full; nothing was left at {str(target)!r}")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None and free < (1 << 20):
        return ResourceError(f"the disk holding {str(folder)!r} is full ({free:,} bytes free); nothing was left at "
                             f"{str(target)!r}")
    reason = _reason(exc) if isinstance(exc, OSError) else str(exc).strip().splitlines()[0] if str(exc) else \
        type(exc).__name__
    return ResourceError(f"writing {str(target)!r} failed: {reason}; nothing was left there")


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)
