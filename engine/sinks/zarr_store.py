"""The zarr sink: a cube streamed into a zarr v3 store, one region per compute chunk, by one or many processes.

``llm-sweep run SPEC -o cube.zarr`` writes a zarr v3 store (needs ``pip install 'llm-sweep[zarr]'``:
zarr and dask) instead of netCDF. Every variable is a zarr array on its natural dims
(``engine.runtime.dims``), chunked like the compute chunks (the netCDF sink's file chunk restricted to
its dims), so each chunk of the run lands in whole zarr chunks and no two writers touch one.

One process, one store. A single-process run builds its store under a name of its own beside the target
(``.llm-sweep.<host>.<pid>.<random>.partial``, ``engine.files.temp_path``: short whatever the target's
length), so two runs writing one target never touch each other's store: the last to finish wins, as with
netCDF files. Publishing is one rename where the target is new, else one atomic swap of the two folders
(``renameat2(RENAME_EXCHANGE)``; where the file system cannot, the earlier store is renamed away just
before), then the earlier store is deleted; a stop signal during it is answered once the new store is in
place, and the command then says the target was written (``files.stop_outcome``). A run killed outright
(SIGKILL, a lost node) leaves its ``.partial`` (or ``.template``, ``.old``) folder; the next run into the
folder removes those of dead processes of this host, as it does temporary files (``files.remove_leftovers``).

Many processes, one store. With ``--part I/N`` or ``--distributed`` every process writes its own share
of the first axis straight into the same store -- no part files, no ``combine``. The store is built
under a staging name every process of the run derives from the target's name
(``.llm-sweep.shares.<digest>.partial``): the first process to finish its template (metadata,
coordinates, attributes of the whole cube, written in a private ``.template`` folder and renamed into
place, so a half-written template is never seen) wins, the others check it describes the same run
(request and number of shares) and use it. Each process holds a lock on its share while it writes it
(``writing-I-of-N`` in the store: a second live process of this host writing the same share is refused;
a lock whose process is gone, or of another host, is taken over: that is how a stopped share is rerun),
and marks its share done; the one that finds every share done claims the staging store (renames it to a
name of its own: of two finishing at once, one publishes) and publishes it, signals deferred throughout. A
reader never sees a store at the target before it is complete; an interrupted share leaves the staging
store (other processes may still be writing; it is never removed as a leftover) and withdraws its mark,
and a rerun of that share completes it.

A variable that lacks the split or walked dims of a chunk is written once, by the chunk at the start of
the dims it lacks (``dims.writes``; with shares, by the process whose share starts the first axis). With
shares, a store chunk's length along the first axis divides every share's start, so no chunk spans two
shares: two processes never write one chunk (zarr writes a partial chunk by reading, merging and writing it
back, and of two such writers one would lose its values).

Categorical dims are written as CF wants them (``engine.sinks.categorical``): a dim of strings is a coordinate
of integer codes with ``flag_values``/``flag_meanings`` beside ``<dim>_label``, its labels as zarr v3's
variable-length UTF-8 ``string`` (not ``FixedLengthUTF32``, which has no zarr v3 specification).

Compression: level 0 stores raw chunks; 1-9 use zstd at that level (zarr's default codec). A raw chunk that
a compute chunk covers whole is written straight to its file: in zarr v3 an array whose only codec is
``bytes`` (little-endian) stores each chunk as its C-order bytes under the key its chunk key encoding
gives, so the sink writes the block's bytes there with one ``write`` (zarr's own path copies each chunk
into a fresh buffer, scans it for fill values and writes it through a temporary file: twice the CPU, the
difference between 0.4x and 0.8x of the disk's raw write on 2 cores). Every other chunk (compressed, or
cut by the array's edge or by the block) goes through zarr.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xarray as xr

import numpy as np

from engine import signals
from engine.errors import ResourceError
from engine.files import (_alive, check_place, file_mode, host_id, refuse_inputs, refuse_read_only, replace_folder,
                          temp_path, write_error, written)
from engine.request.spec import SweepRequest
from engine.runtime.dims import own_index
from engine.runtime.plan import ChunkPlan, share_bounds
from engine.sinks.attrs import coordinate_attrs, dataset_attrs, fill_value, request_record, variable_attrs
from engine.sinks.base import check_disk
from engine.sinks.categorical import LABELS, coordinate_variables, encode_categories
from engine.sinks.result import Extremes, SweepResult

PARTS = "llm-sweep-parts"  # the shares' done marks and locks, an attribute-free folder inside the staging store
MARK = "zarr.json"  # what makes a folder a zarr v3 store (its root group's metadata)
SHARES = ".llm-sweep.shares."  # the staging store of a run's shares: this, a digest of the target's name, .partial


def staging_path(target: Path, count: int = 1) -> Path:
    """Where a store is built before it is published at ``target``: a name of this process's own
    (``files.temp_path``) for a single-process run; for ``count`` shares of one run, the name every one of
    them derives from the target's name. Either is short, whatever the target's length."""
    if count <= 1:
        return temp_path(Path(target).parent, "partial")
    return Path(target).with_name(f"{SHARES}{hashlib.sha256(os.fsencode(Path(target).name)).hexdigest()[:16]}.partial")


def check_store_target(target: Path, inputs=()) -> Path:
    """Refuse a target that is not a zarr store (a file, a folder that holds something else), a read-only store,
    one of the inputs, or a folder that cannot be written (``ResourceError``, nothing touched)."""
    target = Path(target)
    if str(target) in ("", "."):
        raise ResourceError("the output path is empty; give a store name such as cube.zarr")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ResourceError(f"output {str(target)!r} exists and is not a zarr store (a file or link); it is left "
                            "untouched: give a new path or an existing store to replace")
    if target.is_dir() and any(target.iterdir()) and not (target / MARK).is_file():
        raise ResourceError(f"output {str(target)!r} is a folder that is not a zarr store (no {MARK}); it is left "
                            "untouched: give a new path or an existing store to replace")
    if target.exists():
        refuse_read_only(target, os.lstat(target))  # its files could not be deleted once it is replaced
        refuse_inputs(target, inputs)
    return check_place(target)


class ZarrSink:
    """Stream the cube of ``request`` into a zarr v3 store at ``path`` (see the module docstring).

    Parameters
    ----------
    path : str or path-like
        The store: a folder whose name ends ``.zarr``.
    inputs : sequence of path-like, optional
        Files the run reads (the spec, a config.json): refused as the target.
    track : list of str, optional
        The quantities whose min/max the result's report shows (default: the spec's headline).
    whole : SweepRequest, optional
        The whole run's request when the run is one process's share (``sweep.process_share``).
    part : (int, int), optional
        (index, count) of that share: every share writes its region of the one store.
    """

    kind = "zarr"
    description = "a path ending .zarr: a zarr v3 store (needs llm-sweep[zarr])"

    def __init__(self, path, inputs=(), track: list[str] | None = None, whole: SweepRequest | None = None,
                 part: tuple[int, int] | None = None):
        self.target, self.inputs, self.track = Path(path), tuple(inputs), track
        self.whole, self.part, self.shared = whole, part or (0, 1), part is not None
        self.staging = staging_path(self.target, self.part[1])
        self._own: Path | None = None  # a template folder this process is building
        self._locked = False  # whether this process holds its share's lock

    # -- the sink protocol ------------------------------------------------------------------------

    @classmethod
    def can_write(cls, target: Any) -> bool:
        return isinstance(target, (str, os.PathLike)) and is_store(target)

    def check(self) -> None:
        """Refuse a target that is not a store, or zarr missing (``check_store_target``, ``_require_zarr``)."""
        check_store_target(self.target, self.inputs)
        _require_zarr()

    def prepare(self, request: SweepRequest, kernel) -> None:
        self.check()
        check_disk(request, kernel, self.target.parent, "enable compression, free space, or shrink the axes")

    def device_function(self, request, kernel, plan):
        return None

    def start(self, request: SweepRequest, kernel, plan: ChunkPlan) -> None:

        self.request, self.kernel, self.plan = request, kernel, plan
        whole = self.whole or request
        self.axes = list(whole.axes)
        self.dims = dict(kernel.dims)  # each output's own dims (engine.runtime.dims)
        first = self.axes[0]
        # where this share starts along the first axis (labels of a categorical first axis are not sorted)
        self.offset = int(np.flatnonzero(whole.axes[first] == request.axes[first][0])[0]) if self.axes else 0
        self.extremes = Extremes(self._headline(), request.axes, kernel.dims)
        try:
            self._template(whole, kernel.dtypes, plan.file_chunk)
            if self.part[1] > 1:
                self._lock()
            import zarr

            group = zarr.open_group(str(self.staging), mode="r+")
            self.arrays = {q: group[q] for q in kernel.dtypes}
        except BaseException as exc:  # the pipeline aborts a sink only once it has started
            self.abort()
            raise self._failure(exc) from None
        self.direct = {q: _raw_chunks(a) for q, a in self.arrays.items()}
        self._folders: set[str] = set()
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future = None
        self.write_busy = 0.0
        self.current = None

    def _failure(self, exc: BaseException) -> BaseException:
        """A write error (a full disk, permissions) as one line naming the target; anything else as it is."""
        return write_error(exc, self.target) if isinstance(exc, OSError) else exc

    def slab(self, part) -> None:
        """The next combination of labels (``categories.Slab``; a plain cube is one): its kernel's chunks come
        as blocks of the cube, with the cube's indices."""
        self.current = part

    def consume(self, index, n_valid, device_out) -> None:
        """One chunk: the outputs it writes (each over its own dims), put in the store by the writer thread."""
        block = self.current.to_host(device_out, self.plan.split_axis, n_valid, self.kernel.dtypes, index)
        if self.future is not None:
            self.future.result()
        self.extremes.add(index, block)
        self.future = self.pool.submit(self._write, index, block)

    def finish(self, timing):

        f0 = time.perf_counter()
        try:
            if self.future is not None:
                self.future.result()
            self.pool.shutdown(wait=True)
            if self.part[1] > 1:
                self._mark_done()
                self._unlock()
            committed = self._commit_if_complete()
        except OSError as exc:
            raise self._failure(exc) from None
        total = timing.loop_seconds + (time.perf_counter() - f0)
        busy = min(self.write_busy, total)
        return SweepResult(None, self.request.points, timing.compile_seconds, total - busy, busy,
                           path=self.target if committed else self.staging, plan=timing.plan,
                           n_devices=timing.n_devices, extremes=self.extremes, complete=committed,
                           headline=self._headline(), share=self._share_line(committed))

    def _headline(self) -> list[str]:
        return list(self.track if self.track is not None else self.request.headline)

    def _share_line(self, committed: bool) -> str:
        """What a share's run reports instead of a summary (its extremes are not the cube's); "" for a whole run."""
        if not self.shared:
            return ""
        where = (f"{self.target}; every share is done: the store is complete" if committed else
                 f"{self.staging}; the store appears at {self.target} when every share is done")
        return f"llm-sweep run: share {self.part[0]} of {self.part[1]} written into {where}"

    def write(self, dataset: xr.Dataset, request: SweepRequest) -> Path:
        """``dataset`` (a query's answer) as a zarr v3 store at the target, atomically (``write_store``)."""
        return write_store(dataset, self.target, request.compression, self.inputs)

    def abort(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=True)
        if self._own is not None:
            shutil.rmtree(self._own, ignore_errors=True)
        if self.part[1] == 1:
            shutil.rmtree(self.staging, ignore_errors=True)  # this run's own (once published, the earlier store)
        elif self._locked:  # other processes may still be writing the staging store: withdraw this share alone
            try:
                (self.staging / PARTS / self._mark_name()).unlink()
            except OSError:
                pass
            self._unlock()

    # -- the store --------------------------------------------------------------------------------

    def _template(self, whole: SweepRequest, dtypes, file_chunk) -> None:
        """The whole cube's metadata, coordinates and attributes at the staging path: built privately and
        renamed into place, or the one another process of the run put there (checked to be this run's)."""
        count = self.part[1]
        if count > 1 and (self.staging / MARK).is_file():
            return self._check_same(whole)
        file_chunk = share_aligned(whole, file_chunk, count)
        # a single run's staging store is its own: the template is built in place
        self._own = own = self.staging if count == 1 else temp_path(self.target.parent, "template")
        template_dataset(whole, dtypes, self.dims, file_chunk).to_zarr(
            str(own), mode="w-", compute=False, zarr_format=3, consolidated=False,
            encoding=_encoding(whole, dtypes, self.dims, file_chunk))
        if count == 1:
            return
        (own / PARTS).mkdir()
        (own / PARTS / f"count-{count}").write_text("")
        try:
            os.rename(own, self.staging)
        except OSError:  # another process of the run was first
            shutil.rmtree(own, ignore_errors=True)
            self._own = None
            self._check_same(whole)
        else:
            self._own = None

    def _check_same(self, whole: SweepRequest) -> None:
        meta = json.loads((self.staging / MARK).read_text())
        found = meta.get("attributes", {}).get("request")
        counts = sorted(p.name[len("count-"):] for p in (self.staging / PARTS).glob("count-*"))
        if found != json.dumps(whole.record or request_record(whole)) or counts != [str(self.part[1])]:
            split = f" split {counts[0]} ways" if found == json.dumps(whole.record or request_record(whole)) and \
                counts else ""
            raise ResourceError(f"{str(self.staging)!r} holds a partial store of another run{split} into "
                                f"{str(self.target)!r}; remove it (or let that run finish) before writing "
                                f"{str(self.target)!r}")

    def _lock(self) -> None:
        """Hold this share's lock (``PARTS/writing-I-of-N``: host and process id): refused while a live process of
        this host holds it; a lock of a process that is gone, or of another host, is taken over."""
        lock = self.staging / PARTS / f"writing-{self._mark_name()}"
        me = f"{host_id()} {os.getpid()}"
        mine = temp_path(lock.parent)
        mine.write_text(me)
        try:
            try:
                os.link(mine, lock)  # atomic: a lock file is never seen half-written
            except FileExistsError:
                owner = _read_lock(lock)
                if owner is not None and owner[0] == host_id() and owner[1] != os.getpid() and _alive(owner[1]):
                    raise ResourceError(f"another run (process {owner[1]}) is writing share {self.part[0]} of "
                                        f"{self.part[1]} of {str(self.target)!r}; let it finish or stop it") from None
                os.replace(mine, lock)  # its process is gone (or runs on another host): a rerun of the share
            if _read_lock(lock) != (host_id(), os.getpid()):
                raise ResourceError(f"another run took share {self.part[0]} of {self.part[1]} of "
                                    f"{str(self.target)!r} at the same moment; let it finish or stop it")
            self._locked = True
        finally:
            try:
                mine.unlink()
            except FileNotFoundError:
                pass

    def _unlock(self) -> None:
        if self._locked:
            try:
                (self.staging / PARTS / f"writing-{self._mark_name()}").unlink()
            except OSError:
                pass
            self._locked = False

    def _write(self, index: tuple, block: dict) -> None:
        w0 = time.perf_counter()
        index = self._global(index)
        try:
            for q, values in block.items():
                if self.offset and self.axes[0] not in self.dims[q]:
                    continue  # the share that starts the first axis writes the outputs that lack it
                self._put(q, own_index(index, self.axes, self.dims[q]), np.asarray(values))
        except OSError as exc:  # a full disk: one line naming the target
            raise self._failure(exc) from None
        self.write_busy += time.perf_counter() - w0

    def _put(self, q: str, region: tuple, values: np.ndarray) -> None:
        """``values`` into ``region`` of array ``q``: each store chunk the region covers whole straight to its file
        (when the array stores raw chunks), the others through zarr."""
        array = self.arrays[q]
        if not self.direct[q] or not values.ndim or not all(isinstance(sl, slice) for sl in region):
            array[region] = values
            return
        key = array.metadata.chunk_key_encoding.encode_chunk_key
        spans = [(sl.start or 0, n if sl.stop is None else sl.stop) for sl, n in zip(region, array.shape)]
        cells = [range(lo // c, -(-hi // c)) for (lo, hi), c in zip(spans, array.chunks)]
        for cell in itertools.product(*cells):
            bounds = [(i * c, (i + 1) * c) for i, c in zip(cell, array.chunks)]
            whole = all(a >= lo and b <= hi for (a, b), (lo, hi) in zip(bounds, spans))  # hi <= the array's edge
            if whole:
                block = values[tuple(slice(a - lo, b - lo) for (a, b), (lo, _) in zip(bounds, spans))]
                self._put_chunk(self.staging / array.path / key(cell), block)
            else:  # the array's edge or the block's cuts this chunk: zarr merges it (padding the edge)
                cut = [(max(a, lo), min(b, hi)) for (a, b), (lo, hi) in zip(bounds, spans)]
                array[tuple(slice(a, b) for a, b in cut)] = values[
                    tuple(slice(a - lo, b - lo) for (a, b), (lo, _) in zip(cut, spans))]

    def _put_chunk(self, path: Path, block: np.ndarray) -> None:
        folder = str(path.parent)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        data = memoryview(np.ascontiguousarray(block)).cast("B")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)

    def _global(self, index: tuple) -> tuple:
        """A chunk's index in this share -> its index in the whole cube (the share starts at ``offset``)."""
        if not index:
            return index
        first = index[0]
        start = (first.start or 0) + self.offset
        stop = None if first.stop is None else first.stop + self.offset
        return (slice(start, stop),) + tuple(index[1:])

    def _mark_name(self) -> str:
        return f"{self.part[0]}-of-{self.part[1]}"

    def _mark_done(self) -> None:
        (self.staging / PARTS / self._mark_name()).write_text(str(os.getpid()))

    def _commit_if_complete(self) -> bool:
        """Publish the staging store at the target once every share is done; True when this process did (or a
        peer already had). A single run's store is finished (consolidated, its modes set) before signals are
        deferred; the shares' store is claimed first (renamed to this process's own name), so of two processes
        finishing together one publishes, and a stop or error after the claim puts it back or publishes it."""
        count = self.part[1]
        if count == 1:
            _finish_store(self.staging)
            _publish(self.staging, self.target)
            return True
        marks = [f"{i}-of-{count}" for i in range(count)]
        try:
            done = {p.name for p in (self.staging / PARTS).iterdir()}
        except FileNotFoundError:  # a peer committed already
            return self.target.is_dir()
        if not all(m in done for m in marks):
            return False
        signals.check()
        claim = temp_path(self.target.parent, "partial")
        trash: list[Path] = []
        try:
            with signals.deferred():  # every share's work: once claimed, published or put back, never lost to a stop
                try:
                    os.rename(self.staging, claim)
                except FileNotFoundError:  # a peer claimed it first
                    return self.target.is_dir()
                try:
                    _finish_store(claim)
                    shutil.rmtree(claim / PARTS)
                    trash = replace_folder(claim, self.target, check_store_target)
                except BaseException:
                    (claim / PARTS).mkdir(exist_ok=True)  # as it was: a rerun of any share publishes it
                    (claim / PARTS / f"count-{count}").write_text("")
                    for m in marks:
                        (claim / PARTS / m).write_text("")
                    try:
                        os.rename(claim, self.staging)
                    except OSError:
                        pass
                    raise
                written.append(self.target)
        finally:
            for old in trash:
                shutil.rmtree(old, ignore_errors=True)
        return True


def write_store(ds, target: Path, compression: int = 4, inputs=()) -> Path:
    """Write a small in-memory dataset (a query's answer) as a zarr v3 store at ``target``, atomically; labels as
    codes beside their labels (``categorical.encode_categories``)."""
    from zarr.codecs import ZstdCodec

    _require_zarr()
    ds = encode_categories(ds)
    target = check_store_target(Path(target), inputs)
    staging = staging_path(target)
    codecs = [ZstdCodec(level=compression)] if compression else None
    try:
        ds.to_zarr(str(staging), mode="w-", zarr_format=3, consolidated=False,
                   encoding={v: {**_label_fill(ds[v]), "compressors": codecs} for v in ds.data_vars})
        _finish_store(staging)
        _publish(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(exc, target) from None
        raise
    return target


def _label_fill(var) -> dict:
    """The ``_FillValue`` of a variable of label codes (``categorical.coded_labels``), kept where the store's
    encoding replaces the variable's own; {} for any other variable."""
    return {"_FillValue": var.encoding["_FillValue"]} if LABELS in var.attrs and "_FillValue" in var.encoding else {}


def share_aligned(request: SweepRequest, file_chunk, count: int):
    """``file_chunk`` (over the numeric axes) with its first-axis length cut to divide every share's start when
    ``count`` processes share the first axis (``sweep.process_share``): no store chunk spans two shares."""
    if count <= 1 or not file_chunk:
        return file_chunk
    first = next(iter(request.axes))
    if first in request.categories:  # chunks are 1 along a categorical dim
        return file_chunk
    starts = [start for start, _ in share_bounds(len(request.axes[first]), count)]
    return (math.gcd(int(file_chunk[0]), *starts),) + tuple(file_chunk[1:])


def _raw_chunks(array) -> bool:
    """Whether ``array`` stores each chunk as its raw C-order bytes, laid out as numpy holds them here: zarr v3,
    its only codec ``bytes`` (little-endian, this machine's order), a regular chunk grid."""
    from zarr.codecs import BytesCodec
    from zarr.core.chunk_grids import RegularChunkGrid

    meta = array.metadata
    codecs = getattr(meta, "codecs", ())
    if len(codecs) != 1 or not isinstance(codecs[0], BytesCodec) or sys.byteorder != "little":
        return False
    endian = getattr(codecs[0].endian, "value", codecs[0].endian)
    return endian in ("little", None) and isinstance(meta.chunk_grid, RegularChunkGrid)


def template_dataset(request: SweepRequest, dtypes, dims: dict, file_chunk) -> Any:
    """The whole cube as lazy (dask) zeros with its coordinates and attributes: what ``to_zarr(compute=False)``
    turns into the store's metadata."""
    import dask.array as da

    coords = {}
    for a, v in request.axes.items():  # a coded categorical dim: codes and <a>_label (variable-length UTF-8)
        coords.update(coordinate_variables(a, v, coordinate_attrs(a), a in request.categories))
    sizes = {a: len(v) for a, v in request.axes.items()}
    chunk = _chunks(request, file_chunk)
    data = {}
    for q, dtype in dtypes.items():
        shape = tuple(sizes[d] for d in dims[q])
        lazy = da.zeros(shape, dtype=dtype, chunks=tuple(chunk[d] for d in dims[q]) or ())
        data[q] = xr.Variable(dims[q], lazy, attrs=variable_attrs(request, request.formulas, q))
    return xr.Dataset(data, coords=coords, attrs=dataset_attrs(request, request.formulas))


def _chunks(request: SweepRequest, file_chunk) -> dict[str, int]:
    """Dim -> zarr chunk length: the compute plan's file chunk (over the numeric axes), 1 along categorical dims."""
    numeric = [a for a in request.axes if a not in request.categories]
    sizes = dict(zip(numeric, file_chunk)) if file_chunk else {a: len(request.axes[a]) for a in numeric}
    return {a: 1 if a in request.categories else max(1, int(sizes[a])) for a in request.axes}


def _encoding(request: SweepRequest, dtypes, dims: dict, file_chunk) -> dict:
    from zarr.codecs import ZstdCodec

    chunk = _chunks(request, file_chunk)
    level = request.compression
    masked = "valid" in dtypes
    out = {}
    for q, dtype in dtypes.items():
        enc: dict[str, Any] = {"chunks": tuple(chunk[d] for d in dims[q]),
                               "compressors": [ZstdCodec(level=level)] if level else None}
        if masked and q != "valid":
            enc["_FillValue"] = fill_value(dtype)
        out[q] = enc
    return out


def _read_lock(lock: Path) -> tuple[str, int] | None:
    """(host, pid) of a share's lock file; None if it is unreadable."""
    try:
        host, pid = lock.read_text().split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


def _finish_store(store: Path) -> None:
    """A staging store made ready to publish: metadata consolidated, the umask's modes."""
    _consolidate(store)
    _chmod_tree(store)


def _publish(store: Path, target: Path) -> None:
    """A finished store at ``target`` (``files.replace_folder``), with stop signals deferred until it is there
    (and recorded as written); the store it replaced is deleted after, whatever comes."""
    trash: list[Path] = []
    try:
        with signals.deferred():
            trash = replace_folder(store, target, check_store_target)
            written.append(target)
    finally:
        for old in trash:
            shutil.rmtree(old, ignore_errors=True)


def _consolidate(store: Path) -> None:
    """One metadata document for the whole store, so readers open it with one read (xarray's default)."""
    import zarr

    with warnings.catch_warnings():  # zarr 3 notes that consolidated metadata is not yet in the v3 spec
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(store), zarr_format=3)


def _chmod_tree(root: Path) -> None:
    """The umask's modes on a finished store (its files were created by several processes)."""
    mode = file_mode()
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                os.chmod(os.path.join(folder, name), mode)
            except OSError:
                pass


def _require_zarr() -> None:
    try:
        import dask.array  # noqa: F401
        import zarr
    except ImportError:
        raise ResourceError("a .zarr output needs zarr and dask: pip install 'llm-sweep[zarr]'") from None
    if int(zarr.__version__.split(".")[0]) < 3:
        raise ResourceError(f"a .zarr output needs zarr 3 (zarr v3 stores), found {zarr.__version__}: "
                            "pip install 'llm-sweep[zarr]'")


def is_store(path: str | os.PathLike) -> bool:
    return Path(path).suffix == ".zarr"


__all__ = ["ZarrSink", "check_store_target", "is_store", "staging_path", "template_dataset", "write_store"]
