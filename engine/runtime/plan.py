"""Chunk planning: split a grid along its leading axes so every chunk's outputs fit the device.

A chunk is ``(1, ..., 1, k, n_{s+1}, ..., n_last)``: the axes before the split axis ``s`` are
walked one coordinate at a time, axis ``s`` in blocks of ``k``, and every later axis whole. ``s``
is the first axis for which one block of the trailing axes fits the budget; ``k`` is as large as
the budget allows, a multiple of the device count (so the block shards evenly) and of the
netCDF chunk length along ``s`` (so every compute chunk covers whole file chunks). The last block
along ``s`` is padded to ``k`` (its coordinates repeat the last value; the padding is dropped),
so one compiled executable serves every chunk. The file chunk length along ``s`` is balanced (125
coordinates in chunks of at most 75 are cut 63 + 62), so little is padded.

Sizes: each output spans only its natural dims (``engine.runtime.dims``), so a chunk's outputs take
``Footprint.bytes(chunk_shape)``: per output, its itemsize times the chunk's length along each of its
dims. An output without the split axis takes the same bytes whatever ``k`` is (on every device,
unsharded), one with it grows with ``k`` (sharded); ``k`` is the largest block whose bytes fit. A
plain ``bytes_per_point`` (an int) is a footprint of one output over every axis.

Budget: ``DEVICE_MEMORY_FRACTION`` of the device's free memory (its ``memory_stats``), per
device, halved because two chunks are alive at once (one evaluated, one being copied out). On a
CPU the device's memory is host memory, so the budget is the same fraction of the available host
memory capped at ``CPU_BUDGET_CAP`` (64 MiB): a chunk of at most 32 MiB of outputs, whose buffers the
allocator reuses from chunk to chunk, where larger ones are fresh memory every chunk (a 2 GB cube: no page
faults after the first run at 64 MiB, 2.0 GB of them every run at 256 MiB, each costing the kernel a zeroed
page; ``python benchmarks/end_to_end.py --gigabytes 2 --max-device-mem 256MiB``). A streamed run holds at
most: two chunks on the device, one chunk being copied out and one being written (each at most budget / 2)
— about 2 x budget, whatever the cube's size (the netCDF writer keeps no chunk cache).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

DEVICE_MEMORY_FRACTION = 0.25
CPU_BUDGET_CAP = 64 << 20  # on a CPU the "device" is host memory: small chunks keep RSS and page faults low
FILE_CHUNK_ELEMENTS = 1 << 20  # about 8 MiB of int64 per netCDF chunk
MAX_INNER_ELEMENTS = 1 << 26  # one file chunk row at most 512 MiB of int64 (HDF5 chunks must stay < 4 GiB)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str | int) -> int:
    """``"80GiB"``, ``"512 MB"``, ``"1e9"`` or an int -> bytes (ValueError naming valid units)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"cannot read {text!r} as a size; write e.g. 80GiB, 512MB or 1e9 "
                             f"(units: {', '.join(u for u in _UNITS if u)})")
        value, unit = float(m.group(1)), m.group(2).lower()
    if not math.isfinite(value * _UNITS[unit]):  # 1e400B reads as inf: an OverflowError traceback in int()
        raise ValueError(f"a size must be finite, got {text!r}")
    size = int(value * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"a size must be positive, got {text!r}")
    return size


def format_bytes(n: float) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ..., ``2.0 PiB`` (the inverse of ``parse_bytes``'s units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


@dataclass(frozen=True)
class Footprint:
    """Output bytes of a block of the grid: per output, its itemsize and the axes (indices) it spans."""

    outputs: tuple[tuple[int, tuple[int, ...]], ...]

    @classmethod
    def dense(cls, bytes_per_point: int, n_axes: int) -> "Footprint":
        """Every output over every axis: ``bytes_per_point`` bytes per grid point."""
        return cls(((int(bytes_per_point), tuple(range(n_axes))),))

    @classmethod
    def of(cls, dtypes: Mapping[str, object], dims: Mapping[str, Sequence[str]], axes: Sequence[str]) -> "Footprint":
        """Outputs named in ``dtypes`` (numpy dtypes) over their ``dims``; dims not among ``axes`` (a categorical
        cube's, one label per slab) count once."""
        position = {a: i for i, a in enumerate(axes)}
        return cls(tuple((dtypes[q].itemsize, tuple(position[a] for a in dims[q] if a in position)) for q in dtypes))

    def bytes(self, shape: Sequence[int]) -> int:
        """Bytes of every output of a block of ``shape`` (one length per axis)."""
        return sum(size * math.prod(shape[i] for i in axes) for size, axes in self.outputs)

    def split(self, shape: Sequence[int], axis: int) -> tuple[int, int]:
        """``(per_coordinate, fixed)``: a block of ``k`` coordinates of ``axis`` (earlier axes 1, later ones whole)
        takes ``per_coordinate * k + fixed`` bytes; ``fixed`` is what the outputs without ``axis`` take."""
        block = [1] * axis + [0] + list(shape[axis + 1:])
        fixed = self.bytes(block)
        block[axis] = 1
        return self.bytes(block) - fixed, fixed


@dataclass(frozen=True)
class ChunkPlan:
    """How a grid of ``shape`` is cut into equal compute chunks.

    Attributes:
        shape: the grid's shape (one length per axis).
        split_axis: the axis cut into blocks of ``block``; earlier axes go one coordinate at a time.
        block: coordinates of ``split_axis`` per chunk (padded in the last block).
        file_chunk: netCDF/HDF5 chunk shape; every compute chunk covers whole file chunks.
        footprint: the outputs' bytes over their dims (``Footprint``).
        budget: device bytes available to one chunk's outputs.
    """

    shape: tuple[int, ...]
    split_axis: int
    block: int
    file_chunk: tuple[int, ...]
    footprint: Footprint
    budget: int

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        s = self.split_axis
        return (1,) * s + (self.block,) + tuple(self.shape[s + 1:])

    @property
    def chunk_points(self) -> int:
        return math.prod(self.chunk_shape)

    @property
    def chunk_bytes(self) -> int:
        """Output bytes of one chunk (every output over its own dims)."""
        return self.footprint.bytes(self.chunk_shape)

    @property
    def n_chunks(self) -> int:
        s = self.split_axis
        return math.prod(self.shape[:s]) * math.ceil(self.shape[s] / self.block)

    def chunks(self) -> Iterator[tuple[tuple[int, ...], int, int]]:
        """Yield ``(outer_index, lo, hi)``: coordinates of the earlier axes, and the block range."""
        s = self.split_axis
        for flat in range(math.prod(self.shape[:s])):
            outer = _unravel(flat, self.shape[:s])
            for lo in range(0, self.shape[s], self.block):
                yield outer, lo, min(lo + self.block, self.shape[s])


def plan_chunks(shape: Sequence[int], footprint: "Footprint | int", budget: int, n_devices: int = 1) -> ChunkPlan:
    """Plan compute chunks for a grid; see the module docstring for the rules.

    ``footprint``: the outputs' ``Footprint``, or bytes per grid point (every output over every axis).
    """
    shape = tuple(int(n) for n in shape)
    if not isinstance(footprint, Footprint):
        footprint = Footprint.dense(footprint, len(shape))
    if not shape:
        return ChunkPlan((), 0, 1, (), footprint, budget)
    per_chunk = max(budget // 2, 1)
    trailing = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    split = next((i for i in range(len(shape))
                  if sum(footprint.split(shape, i)) <= per_chunk and trailing[i] <= MAX_INNER_ELEMENTS),
                 len(shape) - 1)
    inner = trailing[split]
    # coordinates of the split axis per chunk: the budget is per device, and a sharded chunk
    # puts block / n_devices of them on each device (outputs without the split axis on each whole)
    per_coordinate, fixed = footprint.split(shape, split)
    if per_coordinate:
        fit = max(1, (per_chunk - fixed) // per_coordinate) * n_devices
    else:  # no output spans the split axis: one block holds it all
        fit = _round_up(shape[split], n_devices)
    file_len = _balanced(shape[split], max(1, min(shape[split], FILE_CHUNK_ELEMENTS // max(inner, 1), fit)))
    unit = file_len * n_devices // math.gcd(file_len, n_devices)  # lcm: whole file chunks, even shards
    block = max(unit, (fit // unit) * unit)
    block = min(block, _round_up(shape[split], unit))
    file_chunk = (1,) * split + (file_len,) + tuple(shape[split + 1:])
    return ChunkPlan(shape, split, block, file_chunk, footprint, budget)


def default_budget() -> int:
    """``DEVICE_MEMORY_FRACTION`` of the default device's free memory (host memory on a CPU)."""
    import jax

    stats = None
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # some backends do not report memory
        stats = None
    if stats and stats.get("bytes_limit"):
        free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
        return max(int(free * DEVICE_MEMORY_FRACTION), 1 << 20)
    return max(min(int(available_host_memory() * DEVICE_MEMORY_FRACTION), CPU_BUDGET_CAP), 1 << 20)


def available_host_memory() -> int:
    """Bytes of host memory available now (MemAvailable), else physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _balanced(n: int, at_most: int) -> int:
    """The chunk length that cuts ``n`` into as few chunks of at most ``at_most`` as possible, all nearly equal:
    125 by at most 75 gives 63 (63 + 62), not 75 + 50, so neither the last file chunk (compressed whole) nor
    the last compute block (padded) is mostly padding."""
    return -(-n // -(-n // at_most))


def _round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def _unravel(flat: int, shape: Sequence[int]) -> tuple[int, ...]:
    out = []
    for n in reversed(shape):
        out.append(flat % n)
        flat //= n
    return tuple(reversed(out))


def share_bounds(n: int, count: int) -> list[tuple[int, int]]:
    """Where ``count`` shares cut a first axis of ``n`` coordinates: (start, stop) of each, contiguous and nearly
    equal (the first ``n % count`` one longer; empty shares at the end when ``count > n``)."""
    base, extra = divmod(n, count)
    stops = [(i + 1) * base + min(i + 1, extra) for i in range(count)]
    return list(zip([0] + stops[:-1], stops))
