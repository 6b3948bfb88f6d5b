"""Serving engines: what vLLM, SGLang and TensorRT-LLM do by default, as data.

An engine (``--engine vllm``) fixes what the serving model otherwise has to be told: the KV cache's page
size, how much device memory the KV pool may take (vLLM's ``gpu_memory_utilization`` of the whole memory;
TensorRT-LLM's ``free_gpu_memory_fraction`` of what the weights and activations leave), the token budget of
one engine step (chunked prefill), the most requests running at once, and whether a step mixes prefill chunks
with the running decodes (``mixed_chunk``: vLLM and TensorRT-LLM do; SGLang runs a prefill step apart, first).
The records are data, ``engine/options/data/engines.json``, each field with its source; ``engine(name)`` is one
lookup.

Pure Python and json: importing this module loads neither sympy nor jax.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from engine.errors import did_you_mean, read_package_json

DATA = "data/engines.json"  # inside the engine.options package
MEMORY_KINDS = ("total", "free")
"""How an engine sizes its KV pool: a share of the device's whole memory, from which the weights and
activations are taken (``total``: vLLM, SGLang), or a share of the memory they leave free (``free``:
TensorRT-LLM)."""
SMALL_DEVICE_GIB = 70
"""vLLM's larger batch defaults apply on devices of at least 70 GiB other than A100 (EngineArgs.get_batch_defaults)."""


@dataclass(frozen=True)
class Engine:
    """One serving engine's defaults (``engines.json``)."""

    name: str
    description: str
    block_size: int
    memory_kind: str
    memory_fraction: float
    max_num_batched_tokens: int
    max_num_seqs: int
    small_device: Mapping[str, int]
    sources: Mapping[str, str]
    memory_reserve: Mapping | None = None  # SGLang: the share of memory derived from the capacity (reserve_of)
    mixed_chunk: bool = True  # prefill chunks ride in the decode steps (vLLM, TensorRT-LLM); SGLang runs them apart

    def values(self, device_name: str, hbm_bytes: float) -> dict[str, float | int]:
        """The serving symbols' defaults on a device of ``hbm_bytes`` (as the driver reports it): block_size,
        kv_memory_fraction, max_num_batched_tokens, max_num_seqs (the small-device values below 70 GiB and on
        A100, as vLLM chooses them; SGLang's chunk by the capacity, ``reserve_of``, and no share: the serving
        formulas derive it from the capacity and tp x pp)."""
        small = hbm_bytes < SMALL_DEVICE_GIB * 2**30 or "a100" in device_name.lower()
        picked = {"max_num_batched_tokens": self.max_num_batched_tokens, "max_num_seqs": self.max_num_seqs,
                  **(self.small_device if small else {})}
        out = {"block_size": self.block_size, "kv_memory_fraction": self.memory_fraction, **picked}
        if self.memory_reserve is not None:  # the share is a formula of the capacity and tp x pp (the serving
            # formulas' default, serving._reserved_share); the chunk a step takes by capacity
            del out["kv_memory_fraction"]
            out["max_num_batched_tokens"] = self.reserve_of(hbm_bytes)[1]
        return out

    def reserve_of(self, hbm_bytes: float, parallel: int = 1) -> tuple[float, int]:
        """``(memory share, step token budget)`` SGLang derives from a device's capacity: (capacity - reserved)
        / capacity, the reserve a step's activations (1.5 MiB a prefill token), the CUDA graphs (2 MiB a graph
        slot), the parallel groups' buffers and a fixed base, at least ``floor_gib`` on large devices; rounded to
        three digits as SGLang rounds it (``memory_reserve`` in engines.json, its source there)."""
        r = self.memory_reserve
        gib = hbm_bytes / 2**30
        chunk, graph = next((c, g) for top, c, g in r["tiers_gib"] if top is None or gib < top)
        reserved = (r["base_mib"] + r["per_prefill_token_mib"] * chunk + r["per_parallel_gib"] * parallel * 1024
                    + r["per_graph_seq_mib"] * graph)
        if gib > r["floor_above_gib"]:
            reserved = max(reserved, r["floor_gib"] * 1024)
        capacity = hbm_bytes / 2**20
        return round((capacity - reserved) / capacity, 3), int(chunk)


def _load() -> Mapping[str, Engine]:
    data = read_package_json(__package__, DATA, "the serving engines")["engines"]
    out = {}
    for name, rec in data.items():
        if rec["memory_kind"] not in MEMORY_KINDS:
            raise ValueError(f"{DATA}: engine {name!r}: memory_kind {rec['memory_kind']!r} is not one of "
                             f"{', '.join(MEMORY_KINDS)}")
        out[name] = Engine(name, rec["description"], int(rec["block_size"]), rec["memory_kind"],
                           float(rec["memory_fraction"]), int(rec["max_num_batched_tokens"]),
                           int(rec["max_num_seqs"]), MappingProxyType(dict(rec.get("small_device", {}))),
                           MappingProxyType(dict(rec["sources"])), rec.get("memory_reserve"),
                           bool(rec["mixed_chunk"]))
    return MappingProxyType(out)


ENGINES: Mapping[str, Engine] = _load()
ENGINE_NAMES = tuple(ENGINES)


def engine(name: str) -> Engine:
    """The record of serving engine ``name``; ValueError naming the valid ones."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}{did_you_mean(name, ENGINE_NAMES)}; valid: {', '.join(ENGINE_NAMES)}")
    return ENGINES[name]
