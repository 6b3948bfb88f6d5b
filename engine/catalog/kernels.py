"""Published kernel throughput figures: attention curves, grouped-GEMM knees, matmul ceilings, collectives.

The figures are data, ``engine/catalog/data/kernels.json`` (shipped with the package), each copied with
its citation; this module reads it once and answers the step-time model's questions:

- ``attention_curve(library, device, head_dim, causal)``: fwd+bwd attention throughput against tokens
  per sequence (or per context-parallel chunk), ``r(n) = r_max * n / (n + n_half)``, fitted to the
  published points; ``None`` where nothing is published (TPUs, B200, MI300X, ``"splash"``), so the
  caller falls back to its own efficiency model.
- ``grouped_gemm_half(kind)``: rows per expert (``"grouped"``) or rows (``"dense"``) at which DeepGEMM's
  fp8 GEMM reaches half its plateau.
- ``mamf(device, dtype)``: the maximum achievable matmul FLOP/s over the dense peak.
- ``bus_fraction(algorithm, link)``: NCCL bus bandwidth over the link's one-direction bandwidth.
- ``alpha_per_step(where)``: the fixed latency per collective step, fitted to payload sweeps.

Pure Python: no sympy or jax import, so the CLI can price kernels without the heavy stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.errors import read_package_json

# catalog device -> the measured device whose attention curve it reads, and why
_ATTENTION_STAND_IN = {
    "a100-40gb": ("a100-80gb", "the A100 80GB curve (same SXM4 silicon and clocks; only memory differs)"),
    "h200": ("h100-sxm", "the H100 SXM curve (same Hopper SM and clocks; H200's faster HBM is not in it)"),
    "h800": ("h100-sxm", "the H100 SXM curve (same Hopper SM and clocks; H800 differs in NVLink only)"),
    "h100-pcie": ("h100-sxm", "the H100 SXM curve (Hopper; the PCIe card's lower clocks and power make it optimistic)"),
}
_LINK_ALIASES = {"efa": "nic", "ib": "nic", "infiniband": "nic"}


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    return read_package_json(__package__, "data/kernels.json", "the published kernel figures")


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """The hardware catalog's device aliases, read with the package's reader (not imported from hardware.py,
    which imports this module: an import cycle)."""
    return read_package_json(__package__, "data/hardware.json", "the hardware catalog").get("aliases", {})


def _device(name: str) -> str:
    key = name.strip().lower()
    return _aliases().get(key, key)


@dataclass(frozen=True)
class Curve:
    """A saturating throughput curve ``r(n) = r_max_flops * n / (n + n_half)``.

    Attributes
    ----------
    r_max_flops : float
        Plateau throughput, FLOP/s (FlashAttention FLOP convention for attention).
    n_half : float
        Tokens per sequence (chunk) at which the rate is half the plateau.
    source : str
        Citation, and any stand-in device, head dim or derivation used.
    fitted_on : str
        The stored points the fit was made on, with its largest relative residual.
    """

    r_max_flops: float
    n_half: float
    source: str
    fitted_on: str

    def rate(self, n: float) -> float:
        """Throughput at ``n`` tokens per sequence (chunk).

        Parameters
        ----------
        n : float
            Tokens per sequence, or per context-parallel chunk.

        Returns
        -------
        float
            FLOP/s.
        """
        return self.r_max_flops * n / (n + self.n_half)


@dataclass(frozen=True)
class GemmHalf:
    """DeepGEMM fp8 throughput knee: ``r(M) = r_max_flops * M / (M + m_half)``.

    Attributes
    ----------
    m_half : float
        Rows (tokens per expert for grouped GEMMs) at half the plateau.
    r_max_flops : float
        Plateau throughput, FLOP/s, on H800 SXM5.
    peak_fraction : float
        ``r_max_flops`` over the H800's dense fp8 peak (1979 TFLOP/s).
    source : str
        Citation, shape and fit residual.
    """

    m_half: float
    r_max_flops: float
    peak_fraction: float
    source: str


def _citation(source_id: str) -> str:
    s = _data()["sources"][source_id]
    where = "/".join(x for x in (s.get("repo"), s.get("path")) if x)
    commit = f"@{s['commit']}" if s.get("commit") else ""
    return s["citation"] + (f" [{where}{commit}]" if where else "")


def attention_libraries() -> tuple[str, ...]:
    """The library names ``attention_curve`` accepts.

    Returns
    -------
    tuple of str
        Sorted names (``"flash"`` is FlashAttention-2).
    """
    return tuple(sorted(_data()["attention"]["libraries"]))


def attention_curve(library: str, device: str, head_dim: int = 128, causal: bool = True) -> Curve | None:
    """Published fwd+bwd attention throughput against tokens per sequence, fitted.

    Parameters
    ----------
    library : str
        ``"flash"`` (FlashAttention-2), ``"flash1"``, ``"flash3"``, ``"cudnn"``, ``"eager"`` (PyTorch
        standard attention) or ``"splash"`` (TPU).
    device : str
        llm-sweep catalog name or alias (``"h100-sxm"``, ``"a100-40gb"``, ``"h200"``, ...). A device
        without its own figures reads the nearest measured one by architecture (H200/H800/H100 PCIe the
        H100 SXM curve, A100 40GB the A100 80GB one), and ``source`` says so.
    head_dim : int, default 128
        Attention head dimension; 64 and 128 are measured, others read the nearest (ties: the larger).
    causal : bool, default True
        Causal masking (FLOPs halved by the convention, so the rate is per useful FLOP).

    Returns
    -------
    Curve or None
        ``None`` for ``"splash"`` and for devices or libraries with no published figures (TPUs, B200,
        MI300X; FlashAttention-3 and cuDNN on A100): the caller falls back to its own model.

    Raises
    ------
    ValueError
        ``library`` is not one of the known names (listed in the message).
    """
    lib = library.strip().lower()
    valid = attention_libraries()
    if lib not in valid:
        raise ValueError(f"unknown attention library {library!r}; valid: {', '.join(valid)}")
    if lib == "splash":
        return None
    att = _data()["attention"]
    dev = _device(device)
    notes = []
    if dev in _ATTENTION_STAND_IN:
        measured, why = _ATTENTION_STAND_IN[dev]
        notes.append(f"{dev} has no published curve: reads {why}")
    elif dev in att["devices_measured"]:
        measured = dev
    else:
        return None
    curves = [c for c in att["curves"] if c["library"] == lib and c["device"] == measured and c["causal"] == causal]
    if not curves:
        return None
    best = min(curves, key=lambda c: (abs(c["head_dim"] - head_dim), -c["head_dim"]))
    if best["head_dim"] != head_dim:
        notes.append(f"head_dim {head_dim} not measured: reads head_dim {best['head_dim']}")
    ids = sorted({p[k] for p in best["points"] for k in ("source", "fwd_source", "bwd_source") if k in p})
    text = "; ".join(_citation(i) for i in ids)
    if best["derived"]:
        text += f"; derived from separate forward and backward figures: {best['formula']}"
    if best.get("caveat"):
        text += f"; caveat: {best['caveat']}"
    if notes:
        text += "; " + "; ".join(notes)
    fit = best["fit"]
    seqs = [p["seq_len"] for p in best["points"]]
    fitted_on = (f"{lib} {measured} {'causal' if causal else 'non-causal'} head_dim {best['head_dim']}: "
                 f"{len(seqs)} points, seq_len {min(seqs)}-{max(seqs)}, max relative residual "
                 f"{fit['max_rel_residual']:.1%}")
    return Curve(fit["r_max_tflops"] * 1e12, fit["n_half"], text, fitted_on)


def grouped_gemm_half(kind: str = "grouped") -> GemmHalf:
    """Rows at which DeepGEMM's fp8 GEMM on H800 reaches half its plateau.

    Parameters
    ----------
    kind : {"grouped", "dense"}
        Grouped (MoE experts; M = tokens per expert) or dense GEMM (M = rows).

    Returns
    -------
    GemmHalf
        The fit on the shape n=4096, k=7168 (in both tables), DeepGEMM's initial README figures.

    Raises
    ------
    ValueError
        ``kind`` is neither.
    """
    head = _data()["grouped_gemm"]["headline"]
    if kind not in ("grouped", "dense"):
        raise ValueError(f"unknown GEMM kind {kind!r}; valid: dense, grouped")
    f = head[kind]
    text = (f"{_citation(f['source'])}; {kind} fp8 GEMM, {head['shape']}, README commit {f['readme_commit']}: "
            f"{f['points']} points, max relative residual {f['max_rel_residual']:.1%}")
    return GemmHalf(f["m_half"], f["r_max_tflops"] * 1e12, f["fraction_of_fp8_dense_peak"], text)


def mamf(device: str, dtype: str) -> float | None:
    """Maximum achievable matmul FLOP/s over the dense datasheet peak (Bekman's MAMF table; TPU v5e: JAX).

    Parameters
    ----------
    device : str
        Catalog name or alias (``"h100-sxm"``, ``"tpu-v5e"``, ``"mi300x"``, ...).
    dtype : str
        ``"bf16"``, ``"fp16"`` (reads the bf16 figure) or ``"fp8"``.

    Returns
    -------
    float or None
        The fraction, or ``None`` where none is published for that device and dtype.
    """
    entry = _data()["matmul_ceilings"]["by_device"].get(_device(device))
    if entry is None:
        return None
    d = dtype.strip().lower()
    key = "fp8" if d.startswith("fp8") else "bf16" if d.startswith(("bf16", "fp16")) else None
    return entry.get(key) if key else None


def bus_fraction(algorithm: str, link: str) -> float:
    """NCCL bus bandwidth over the link's one-direction bandwidth, large payloads.

    Parameters
    ----------
    algorithm : str
        ``"ring_all_reduce"``, ``"ring_all_gather"``, ``"ring_reduce_scatter"`` or ``"nvls_all_reduce"``.
    link : str
        ``"nvlink3"``, ``"nvlink4"``, ``"nvlink5"`` or ``"nic"`` (scale-out NIC; ``"efa"``, ``"ib"`` and
        ``"infiniband"`` read the one measurement stored, on EFA v4).

    Returns
    -------
    float
        The fraction (above 1 for NVLS, which reduces in the switch).

    Raises
    ------
    ValueError
        No figure for that pair; the message lists the pairs there are.
    """
    table = _data()["collectives"]["bus_fraction"]
    key = link.strip().lower()
    key = _LINK_ALIASES.get(key, key)
    entry = table.get(algorithm.strip().lower(), {}).get(key)
    if entry is None:
        pairs = ", ".join(f"{a}/{lk}" for a in sorted(table) for lk in sorted(table[a]))
        raise ValueError(f"no bus-bandwidth figure for {algorithm!r} on {link!r}; there are: {pairs}")
    return entry["fraction"]


def alpha_per_step(where: str) -> float:
    """Fixed latency per collective step, seconds, fitted to published all-reduce payload sweeps.

    Parameters
    ----------
    where : {"intra_node_nvlink4", "intra_node_nvlink5", "inter_node_efa"}
        The fit: 8x H200 in a node, 8x B200 in a node, or 4 nodes of 8x B200 over EFA.

    Returns
    -------
    float
        Seconds per ring step (the all-reduce's alpha over its 2(n-1) steps).

    Raises
    ------
    ValueError
        ``where`` is not one of them.
    """
    table = _data()["collectives"]["alpha"]
    if where not in table:
        raise ValueError(f"unknown alpha fit {where!r}; valid: {', '.join(sorted(table))}")
    return table[where]["alpha_per_step_us"] * 1e-6
