"""Devices: peak FLOP/s per dtype, memory, and links, each from its vendor's published figures.

The catalog is data, ``engine/catalog/data/hardware.json`` (shipped with the package):

    {"about": TEXT,
     "devices": {NAME: {"vendor": TEXT, "description": TEXT,
                        "peak_tflops": {"fp32": X, "tf32": X, "bf16": X, "fp16": X, "fp8": X},
                                                 dense TFLOP/s; null where the device has no such path
                        "mamf_fraction": X,                 optional: maximum achievable matmul FLOP/s over
                                                            the bf16 peak, measured (Bekman's MAMF table)
                        "mamf_fp8": X,                      optional: the same over the fp8 peak, measured with
                                                            fp8 matmuls; absent: fp8 uses mamf_fraction
                        "attention_curve": "a100" | "h100", optional: the silicon whose measured attention
                                                            kernel curves (kernels.py) the device runs
                        "hbm_gb": X  or  "hbm_gib": X,      memory as the vendor states it (10^9 or 2^30 bytes)
                        "hbm_usable_mib": N,                optional: memory as the driver reports it (nvidia-smi's
                                                            total, MiB): what serving engines size their KV pools
                                                            from (vLLM's total_gpu_memory); absent: hbm_gb
                        "hbm_bandwidth_gbps": X,            GB/s (10^9 bytes/s)
                        "intra_node_gbps": X,               scale-up link, GB/s per direction per device
                        "devices_per_node": N,              devices sharing that scale-up domain
                        "inter_node_gbps": X,               scale-out network, GB/s per direction per device
                        "sources": [TEXT, ...],             where the figures come from (vendor URLs first)
                        "notes": TEXT}},
     "aliases": {ALIAS: NAME}}

A custom device is a TOML file with the same fields (``name`` too, defaulting to the file's stem;
``vendor``, ``description``, ``sources`` and ``notes`` optional): ``--gpu my-gpu.toml``. Its
``mamf_fraction`` is optional too; left out it is ``TYPICAL_MAMF``, the median measured matmul ceiling
of the catalog's devices (0.801, Bekman's MAMF table), never 1: a datasheet peak no matmul reaches would
make the device ~20 % faster than the same device in the catalog. ``Device.defaulted`` names the fields
a file left out, and loading it warns (``LlmSweepNote``; the CLI prints it as a note) with the value used.
A custom device without ``attention_curve`` takes the one of the catalog device with its bf16 peak (the same
tensor cores at the same clocks: a file giving the H100 SXM's figures is priced as the H100 SXM), else none.

    name = "h100-400g"
    hbm_gb = 80
    hbm_bandwidth_gbps = 3350
    intra_node_gbps = 450
    devices_per_node = 8
    inter_node_gbps = 50
    [peak_tflops]
    bf16 = 989.4
    fp8 = 1978.9

``Device`` holds the figures in SI units (FLOP/s, bytes, bytes/s); ``Device.values(precision, attention)``
gives the symbol values the step-time formulas take (``engine/symbolic/memory/steptime/``), the attention
kernels' rate curve of the ``attention`` library on the device among them (``attention_curve_of``).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from engine.errors import LlmSweepNote, SpecError, check_keys, closest, read_package_json, read_user_file
from engine.options import canonical_precision
from engine.options.engines import engine as engine_record
from engine.options.memory import ATTENTIONS

DATA = "data/hardware.json"  # inside the engine.catalog package
WHERE = f"engine/catalog/{DATA}"
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")
# llm-sweep precision -> the dtype its matmuls run in. "fp32" is plain FP32, not TF32: PyTorch has left
# torch.backends.cuda.matmul.allow_tf32 off by default since 1.12, so an fp32 run gets the FP32 peak.
PRECISION_DTYPE = MappingProxyType({
    "fp32": "fp32", "tf32": "tf32",
    "bf16": "bf16", "bf16-mixed": "bf16", "bf16-true": "bf16",
    "fp16": "fp16", "fp16-mixed": "fp16", "fp16-true": "fp16",
    "fp8": "fp8",
})
_NUMBERS = ("hbm_bandwidth_gbps", "intra_node_gbps", "inter_node_gbps")
_TEXTS = ("vendor", "description", "notes")
_FIELDS = ("peak_tflops", "mamf_fraction", "mamf_fp8", "attention_curve", "cost_per_hour", "power_kw", "hbm_gb",
           "hbm_gib", "hbm_usable_mib", *_NUMBERS, "devices_per_node", "sources", *_TEXTS)
_TOML_FIELDS = ("name", *_FIELDS)

# Attention kernels' measured rate, forward + backward, as a function of the tokens n of one sequence on one
# device (seq_len / cp): r(n) = r_max n / (n + n_half), fitted to the libraries' published benchmark curves
# (causal, head dim 128, bf16/fp16, 16k tokens per batch: engine/catalog/kernels.py and data/kernels.json, each
# point with its citation). Their FLOPs follow FlashAttention's benchmark convention (Dao-AILab/flash-attention
# benchmarks/benchmark_flash_attention.py: forward 4 s^2 heads head_dim, halved when causal; the backward counts
# 2.5 forwards, for it recomputes the scores: fwd+bwd = 3.5 forwards), which engine/symbolic/memory/steptime/
# compute.py converts to its own passes.
# the attention option -> its kernel library in kernels.json (eager and splash are priced by the ceiling model)
ATTENTION_LIBRARY = MappingProxyType({"flash": "flash", "sdpa": "flash", "flash1": "flash1", "flash3": "flash3",
                                      "cudnn": "cudnn"})
# the silicon of the curves: a device names one with ``attention_curve`` (hardware.json: the A100s; H100 SXM, and
# H200 and H800, the same SM count and clocks), read as the measured device of kernels.json. Every other device
# (TPUs, B200, MI300X, L40S, V100, H100 PCIe) has no published curve and keeps attention_efficiency x
# attention_ceiling x attention_peak_flops.
CURVE_SILICON = MappingProxyType({"a100": "a100-80gb", "h100": "h100-sxm"})
# Transformer Engine runs FlashAttention-2 on Ampere (sm80) rather than its cuDNN backend (TE
# dot_product_attention/utils.py get_attention_backend: FusedAttention is preferred from sm90): cuDNN on an A100 is
# priced on FlashAttention-2's curve
_SM80_CUDNN = "flash"


def fused_attention_share() -> tuple[float, int]:
    """``(share, n_half)``: FlashAttention-2's published H100 curve (causal, head dim 128) as a share of the H100
    SXM's 16-bit matmul ceiling (r_max / (bf16 peak x mamf_fraction), about 0.42) and its n_half: how a fused
    kernel is priced on a device with no published curve of its own (TPU splash, B200, MI300X, ...), the same
    algorithm at the same share of that device's measured 16-bit ceiling."""
    h100 = DEVICES["h100-sxm"]
    r_max, n_half, _ = attention_curve_of("flash", "h100")
    return r_max / (h100.peak("bf16") * h100.matmul_ceiling("bf16")), round(n_half)


def attention_curve_of(library: str, silicon: str) -> tuple[float, float, str] | None:
    """``(r_max FLOP/s, n_half tokens, source)`` of the attention option ``library`` on curve silicon ``silicon``
    (``a100``, ``h100``), or None where none is published (engine/catalog/kernels.py)."""
    from engine.catalog.kernels import attention_curve

    kernel = ATTENTION_LIBRARY.get(library)
    if kernel is None or silicon not in CURVE_SILICON:
        return None
    if kernel == "cudnn" and silicon == "a100":
        kernel = _SM80_CUDNN
    curve = attention_curve(kernel, CURVE_SILICON[silicon])
    return None if curve is None else (curve.r_max_flops, curve.n_half, curve.source)


@dataclass(frozen=True)
class Device:
    """One device type, in SI units: FLOP/s, bytes, bytes/s (bandwidths per direction per device).

    Attributes
    ----------
    name, vendor, description : str
        The catalog name (``h100-sxm``), the maker and a line describing the part.
    peak_flops : mapping of str to float or None
        Dense peak FLOP/s per matmul dtype (``fp32``, ``tf32``, ``bf16``, ``fp16``, ``fp8``, ``int8``, ``fp4``); None where the
        device has no such path.
    hbm_bytes, hbm_bandwidth : int, float
        Device memory (bytes) and its bandwidth (bytes/s).
    intra_bandwidth, devices_per_node, inter_bandwidth : float, int, float
        The scale-up link per device and direction (NVLink, Infinity Fabric, ICI), how many devices share it,
        and the scale-out network per device.
    sources, notes : tuple of str, str
        The datasheets each figure comes from, and what is approximate.
    mamf_fraction : float
        Measured maximum achievable matmul FLOP/s over the bf16 peak (1 where none is published).
    mamf_fp8 : float or None
        The same for fp8 matmuls over the fp8 peak; None where none is published, and fp8 then uses
        ``mamf_fraction`` (see ``matmul_ceiling``).
    attention_curve : str or None
        The silicon (``a100``, ``h100``) whose measured attention kernel curves the device runs
        (``attention_curve_of``); None where none is published.
    defaulted : tuple of str
        The fields a custom device file left out, filled with their documented defaults.
    """

    name: str
    vendor: str
    description: str
    peak_flops: Mapping[str, float | None]  # dense FLOP/s per dtype: fp32, tf32, bf16, fp16, fp8
    hbm_bytes: int
    hbm_bandwidth: float
    intra_bandwidth: float  # scale-up link (NVLink, Infinity Fabric, ICI, PCIe)
    devices_per_node: int  # devices sharing the scale-up link
    inter_bandwidth: float  # scale-out network per device
    sources: tuple[str, ...] = ()
    notes: str = ""
    mamf_fraction: float = 1.0  # measured maximum achievable matmul FLOP/s over the peak (1: none published)
    mamf_fp8: float | None = None  # the same over the fp8 peak with fp8 matmuls (None: use mamf_fraction)
    attention_curve: str | None = None  # the silicon of its attention kernels' curves (CURVE_SILICON), or None
    defaulted: tuple[str, ...] = ()  # the fields the entry left out, filled with their documented defaults
    power_kw: float | None = None  # the device's rated power (TDP), kW; None where the vendor publishes none
    hbm_usable_bytes: int | None = None  # memory as the driver reports it (nvidia-smi total); None: hbm_bytes
    # price tier -> {usd, date, source, what} (COST_TIERS)
    cost_per_hour: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def price(self, tier: str | None = None) -> float | None:
        """US dollars per device-hour in ``tier`` (COST_TIERS), or in the first tier of COST_TIERS the catalog has
        a dated, sourced price for; None where it has none."""
        for name in (tier,) if tier else COST_TIERS:
            if name in self.cost_per_hour:
                return float(self.cost_per_hour[name]["usd"])
        return None

    def peak(self, precision: str) -> float:
        """Dense peak FLOP/s of ``precision``'s matmuls (see PRECISION_DTYPE).

        ValueError for an unknown precision; SpecError naming the device when it has no such path
        (fp8 on an A100, bf16 on a V100).
        """
        precision = canonical_precision(precision)
        dtype = PRECISION_DTYPE.get(precision)
        if dtype is None:
            raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISION_DTYPE)}")
        value = self.peak_flops.get(dtype)
        if value is None:
            have = [d for d in DTYPES if self.peak_flops.get(d) is not None]
            raise SpecError("--gpu", self.name, f"has no {dtype} matmul peak (precision {precision}); it has: "
                                                f"{', '.join(have)}")
        return value

    def attention_peak(self, precision: str) -> float:
        """Dense peak FLOP/s of the attention kernels under ``precision``: fp8 training runs only the linear
        layers in fp8 (Transformer Engine's DotProductAttention and FlashAttention stay 16-bit unless fp8
        attention is asked for; torchao's Float8Linear converts nn.Linear only), so fp8 gets the bf16 peak."""
        return self.peak("bf16" if canonical_precision(precision) == "fp8" else precision)

    def matmul_ceiling(self, precision: str) -> float:
        """The measured matmul ceiling of ``precision``'s matmul dtype, over that dtype's dense peak: fp8 runs
        their GEMMs in fp8, so they get ``mamf_fp8`` (H100 SXM 0.709 against 0.801 for bf16), or
        ``mamf_fraction`` where no fp8 figure is published (the device's notes say so); every other
        precision gets ``mamf_fraction``."""
        if canonical_precision(precision) == "fp8" and self.mamf_fp8 is not None:
            return self.mamf_fp8
        return self.mamf_fraction

    def attention_kernel_curve(self, precision: str, attention: str = "flash") -> tuple[float, int] | None:
        """``(r_max, n_half)`` of the ``attention`` kernel library on this device under ``precision``
        (``attention_curve_of``: FLOP/s in FlashAttention's convention, tokens of one sequence on one device), or None
        where none is published: eager and splash attention, fp32 (the curves are 16-bit), a device without a
        curve, FlashAttention-3 off Hopper. ValueError for an unknown ``attention``."""
        if attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {attention!r}; valid: {', '.join(ATTENTIONS)}")
        if canonical_precision(precision) in ("fp32", "tf32"):
            return None
        curve = attention_curve_of(attention, self.attention_curve or "")
        if curve is None:
            return None
        # the kernels are clock-bound: a part of the same silicon at another clock (a power cap) runs them at its
        # bf16 peak over the measured part's (1 for H200 and H800, whose SM count and clocks are the H100 SXM's)
        scale = self.peak("bf16") / DEVICES[CURVE_SILICON[self.attention_curve]].peak("bf16")
        return curve[0] * scale, round(curve[1])

    @property
    def driver_bytes(self) -> int:
        """Memory as the driver reports it (``hbm_usable_bytes``), else as the vendor states it (``hbm_bytes``)."""
        return self.hbm_usable_bytes or self.hbm_bytes

    def serving_values(self, precision: str, attention: str, weight_dtype: str,
                       engine: str) -> dict[str, float | int]:
        """``values`` for serving (mode inference), as ``serve`` and a spec's sweep take them: the GEMMs at the fp8
        rate for fp8 weights, at the fp4 peak for fp4 weights (nvfp4, mxfp4) where the device has one (Blackwell),
        else dequantized into ``precision``'s GEMMs; the memory as the driver reports it (``driver_bytes``: the
        engines' KV pools are shares of it); serving ``engine``'s limits on the device (``Engine.values``); and the
        device's price (``price``) and rated power where the catalog has them."""
        fp4 = weight_dtype in ("nvfp4", "mxfp4") and self.peak_flops.get("fp4")
        gemm = "fp8" if (weight_dtype == "fp8" or fp4) and self.peak_flops.get("fp8") else precision
        out = self.values(gemm, attention)
        if fp4:  # fp4 tensor cores: the fp4 peak at the fp8 ceiling (no fp4 MAMF published)
            out["peak_flops"] = self.peak_flops["fp4"]
        out["hbm_capacity"] = self.driver_bytes  # the engines size their pools from what the driver reports
        out.update(engine_record(engine).values(self.name, self.driver_bytes))
        if self.price() is not None:
            out["cost_per_hour"] = self.price()
        if self.power_kw is not None:
            out["power_kw"] = self.power_kw
        return out

    def values(self, precision: str, attention: str = "flash") -> dict[str, float | int]:
        """The step-time symbols' values for ``precision`` and the ``attention`` kernel: peak_flops,
        attention_peak_flops, matmul_ceiling (of the GEMMs' dtype), attention_ceiling (of the attention kernels'
        dtype, 16-bit under fp8), attention_curve_peak_flops and attention_half_tokens (r_max and n_half of the
        fused kernel library's measured curve r_max n / (n + n_half) on the device, ``attention_curve_of``; where
        none is published, ``fused_attention_share``: FlashAttention-2's H100 curve as a share of this device's
        16-bit ceiling; eager attention does not read them), hbm_bandwidth, link_bandwidth, inter_bandwidth, devices_per_node,
        hbm_capacity. ValueError for an unknown ``attention`` (engine.options ATTENTIONS)."""
        attention_peak = self.attention_peak(precision)
        attention_ceiling = self.matmul_ceiling("bf16" if canonical_precision(precision) == "fp8" else precision)
        curve = self.attention_kernel_curve(precision, attention)
        if curve is None:  # no published curve: FlashAttention-2's on H100, as a share of H100's 16-bit ceiling
            share, half = fused_attention_share()
            curve = (attention_peak * attention_ceiling * share, half)
        rate, half = curve
        # a TPU's GEMMs run at their own in-model efficiency (TPU_MATMUL_EFFICIENCY); a GPU's at the step-time
        # default (engine.symbolic.memory.steptime DEFAULTS matmul_efficiency)
        from engine.options.stacks import device_generation

        tpu = {"matmul_efficiency": TPU_MATMUL_EFFICIENCY} if device_generation(self.name) == "tpu" else {}
        return {**tpu, "peak_flops": self.peak(precision), "attention_peak_flops": attention_peak,
                "matmul_ceiling": self.matmul_ceiling(precision),
                "attention_ceiling": attention_ceiling,
                "attention_curve_peak_flops": rate, "attention_half_tokens": half,
                "hbm_bandwidth": self.hbm_bandwidth,
                "link_bandwidth": self.intra_bandwidth, "inter_bandwidth": self.inter_bandwidth,
                "devices_per_node": self.devices_per_node, "hbm_capacity": self.hbm_bytes}


# The share of a TPU's matmul ceiling (mamf_fraction: XLA's 8192^3 bf16 matmul on v5e, 0.923) its GEMMs reach inside
# a training step, fitted on MaxText's TPU v5e table alone (`python benchmarks/validate_steptime.py --calibrate
# maxtext_tpu_v5e`: the v5e rows' median |log error|, in steps of 0.01); MaxText's v4 and v5p tables are held out.
# A TPU runs the step as one XLA program (the element-wise work fused into the matmuls' epilogues, no kernel launches,
# the MXUs fed by the compiler's schedule), so it keeps more of its ceiling than the GPU stacks' matmul_efficiency
# (0.73, fitted on Megatron and llm-foundry runs) does of theirs
TPU_MATMUL_EFFICIENCY = 0.90


def _scaled(value: float, unit: int) -> float:
    """``value`` x ``unit`` without binary noise (989.4 TFLOP/s -> 989400000000000.0, not ...99.9)."""
    return float(Decimal(str(value)) * unit)


def parse_device(source: str, prefix: str, name: str, entry: Any, catalog: bool,
                 mamf_default: float = 1.0) -> Device:
    """A Device from one entry (catalog JSON or custom TOML); SpecError naming the field when malformed.

    ``prefix`` is the key path of the entry in ``source`` (``devices.h100-sxm`` or ``""``); a catalog
    entry must name its vendor, description and at least one source. ``mamf_default`` is the ceiling of an
    entry without ``mamf_fraction`` (the catalog's: 1, the datasheet peak; a custom file's: TYPICAL_MAMF).
    """
    def key(field: str) -> str:
        return f"{prefix}.{field}" if prefix else field

    def number(field: str, value: Any, integer: bool = False) -> Any:
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) \
                or not math.isfinite(value) or value <= 0:
            raise SpecError(source, key(field), f"must be a positive {'integer' if integer else 'number'}, got "
                                                f"{value!r}")
        return value

    if not isinstance(entry, dict):
        raise SpecError(source, prefix, "must be a table of device fields")
    check_keys(source, prefix, entry, _FIELDS if catalog else _TOML_FIELDS, "field")
    required = ("peak_tflops", *_NUMBERS, "devices_per_node") + (("vendor", "description", "sources") if catalog
                                                                 else ())
    for field in required:
        if field not in entry:
            raise SpecError(source, key(field), f"missing; a device needs {', '.join(required)} and hbm_gb or "
                                                f"hbm_gib")
    peaks = entry["peak_tflops"]
    if not isinstance(peaks, dict):
        raise SpecError(source, key("peak_tflops"), f"must be a table of dense TFLOP/s by dtype ({', '.join(DTYPES)}; "
                                                    "leave out what the device lacks), e.g. [peak_tflops] bf16 = 989.4")
    check_keys(source, key("peak_tflops"), peaks, DTYPES, "dtype")
    flops = {d: None if peaks.get(d) is None else _scaled(number(f"peak_tflops.{d}", peaks[d]), 10**12)
             for d in DTYPES}
    if flops["bf16"] is None and flops["fp16"] is None:
        raise SpecError(source, key("peak_tflops"), "needs bf16 or fp16 (dense TFLOP/s); null marks a dtype the "
                                                    "device lacks")
    memory = [f for f in ("hbm_gb", "hbm_gib") if f in entry]
    if len(memory) != 1:
        raise SpecError(source, key("hbm_gb"), "give exactly one of hbm_gb (10^9 bytes) or hbm_gib (2^30 bytes)")
    unit = 10**9 if memory[0] == "hbm_gb" else 2**30
    hbm = int(Decimal(str(number(memory[0], entry[memory[0]]))) * unit)
    rates = {f: _scaled(number(f, entry[f]), 10**9) for f in _NUMBERS}
    texts = {}
    for field in _TEXTS:
        value = entry.get(field, "")
        if not isinstance(value, str) or (catalog and field != "notes" and not value.strip()):
            raise SpecError(source, key(field), "must be a non-empty text" if catalog else "must be a text")
        texts[field] = value
    sources = entry.get("sources", [])
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources) \
            or (catalog and not any(s.startswith("https://") for s in sources)):
        raise SpecError(source, key("sources"), "must be a list of texts" + (", at least one an https:// URL of "
                                                                             "the vendor's figures" if catalog else ""))
    mamf = entry.get("mamf_fraction", mamf_default)
    if isinstance(mamf, bool) or not isinstance(mamf, (int, float)) or not 0 < mamf <= 1:
        raise SpecError(source, key("mamf_fraction"), f"must be a number in (0, 1] (measured matmul FLOP/s over the "
                                                      f"peak), got {mamf!r}")
    mamf_fp8 = entry.get("mamf_fp8")
    if mamf_fp8 is not None and (isinstance(mamf_fp8, bool) or not isinstance(mamf_fp8, (int, float))
                                 or not 0 < mamf_fp8 <= 1):
        raise SpecError(source, key("mamf_fp8"), f"must be a number in (0, 1] (measured fp8 matmul FLOP/s over the "
                                                 f"fp8 peak), got {mamf_fp8!r}")
    if mamf_fp8 is not None and flops["fp8"] is None:
        raise SpecError(source, key("mamf_fp8"), "given, but the device has no fp8 peak (peak_tflops.fp8)")
    curve = entry.get("attention_curve")
    if curve is not None and curve not in CURVE_SILICON:
        raise SpecError(source, key("attention_curve"), f"must be one of {', '.join(CURVE_SILICON)} (the silicon "
                                                        f"whose attention kernel curves the device runs), got "
                                                        f"{curve!r}")
    return Device(name=name, vendor=texts["vendor"], description=texts["description"],
                  peak_flops=MappingProxyType(flops), hbm_bytes=hbm, hbm_bandwidth=rates["hbm_bandwidth_gbps"],
                  intra_bandwidth=rates["intra_node_gbps"],
                  devices_per_node=number("devices_per_node", entry["devices_per_node"], integer=True),
                  inter_bandwidth=rates["inter_node_gbps"], sources=tuple(sources), notes=texts["notes"],
                  mamf_fraction=float(mamf), mamf_fp8=None if mamf_fp8 is None else float(mamf_fp8),
                  attention_curve=curve, cost_per_hour=_costs(source, key, entry.get("cost_per_hour", {})),
                  power_kw=None if entry.get("power_kw") is None else float(number("power_kw", entry["power_kw"])),
                  hbm_usable_bytes=None if entry.get("hbm_usable_mib") is None
                  else number("hbm_usable_mib", entry["hbm_usable_mib"], integer=True) * 2**20,
                  defaulted=tuple(f for f in ("mamf_fraction",) if f not in entry))


COST_TIERS = ("on_demand", "capacity_block", "rental_1yr", "rental_3yr", "tco_owned")
"""Price tiers a device's cost_per_hour may hold, in the order ``Device.price`` prefers them: a cloud's on-demand
rate, a short-term reservation (AWS Capacity Blocks), 1- and 3-year commitments, the owner's total cost."""


def _costs(source: str, key, table: Any) -> Mapping[str, Mapping[str, Any]]:
    """A device entry's cost_per_hour: tier -> {usd, date (YYYY-MM), source, what}; SpecError naming what is wrong."""
    if not isinstance(table, dict):
        raise SpecError(source, key("cost_per_hour"), f"must be a table of price tiers ({', '.join(COST_TIERS)})")
    out = {}
    for tier, rec in table.items():
        if tier not in COST_TIERS:
            raise SpecError(source, key(f"cost_per_hour.{tier}"), f"unknown tier; valid: {', '.join(COST_TIERS)}")
        usd = rec.get("usd") if isinstance(rec, dict) else None
        if isinstance(usd, bool) or not isinstance(usd, (int, float)) or usd <= 0 \
                or not str(rec.get("date", "")).strip() or not str(rec.get("source", "")).strip():
            raise SpecError(source, key(f"cost_per_hour.{tier}"), "needs usd (a positive number of US dollars per "
                                                                  "device-hour), date and source")
        out[tier] = MappingProxyType(dict(rec))
    return MappingProxyType(out)


def load_catalog(data: Any, where: str = WHERE) -> tuple[dict[str, Device], dict[str, str]]:
    """(devices, aliases) from the parsed catalog; SpecError naming the device and field when malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
        raise SpecError(where, "devices", 'a JSON object with a "devices" object is required')
    check_keys(where, "", data, ("about", "devices", "aliases"), "top-level key")
    devices = {}
    for name, entry in data["devices"].items():
        if name != name.lower() or not name.strip():
            raise SpecError(where, f"devices.{name}", "device names are lower case")
        devices[name] = parse_device(where, f"devices.{name}", name, entry, catalog=True)
    aliases = data.get("aliases", {})
    if not isinstance(aliases, dict):
        raise SpecError(where, "aliases", "must map alias names to device names")
    for alias, target in aliases.items():
        if target not in devices or alias in devices or alias != alias.lower():
            raise SpecError(where, f"aliases.{alias}", f"must be a new lower-case name for one of: "
                                                       f"{', '.join(sorted(devices))}, got {target!r}")
    return devices, dict(aliases)


def _read() -> tuple[dict[str, Device], dict[str, str]]:
    return load_catalog(read_package_json(__package__, DATA, "the hardware catalog"))


_DEVICES, _ALIASES = _read()
DEVICES: Mapping[str, Device] = MappingProxyType(_DEVICES)
ALIASES: Mapping[str, str] = MappingProxyType(_ALIASES)


# catalog devices whose mamf_fraction is another device's, assumed (their notes say so), not a measurement
_BORROWED_MAMF = ("h100-sxm-500w", "tpu-v4", "tpu-v5p", "tpu-v6e")


def _measured_mamf() -> list[float]:
    """The measured matmul ceilings (``mamf_fraction``) of the catalog's devices that publish one."""
    return [d.mamf_fraction for n, d in DEVICES.items() if "mamf_fraction" not in d.defaulted
            and n not in _BORROWED_MAMF]


# a custom device's matmul ceiling when its file gives none: typical, not the datasheet peak (module docstring)
TYPICAL_MAMF = statistics.median(_measured_mamf())
TYPICAL_MAMF_SOURCE = (f"the median of the {len(_measured_mamf())} "
                       f"measured matmul ceilings in {WHERE} (Bekman, ml-engineering, 'Maximum Achievable Matmul "
                       "FLOPS comparison table')")


def device_names() -> list[str]:
    """The catalog's device names.

    Returns
    -------
    list of str
        Every name ``device`` and ``--gpu`` accept, sorted (aliases such as ``h100`` not included).
    """
    return sorted(DEVICES)


def load_device_file(path: str | Path) -> Device:
    """A custom device from a TOML file (SpecError naming the file and the field when malformed)."""
    source = str(path)
    _, data = read_user_file(path, "TOML")
    name = data.get("name", Path(path).stem)
    if not isinstance(name, str) or not name.strip():
        raise SpecError(source, "name", f"must be a non-empty text, got {name!r}")
    dev = parse_device(source, "", name, {k: v for k, v in data.items() if k != "name"}, catalog=False,
                       mamf_default=TYPICAL_MAMF)
    if dev.attention_curve is None and "attention_curve" not in data:  # the catalog silicon with its bf16 peak
        same = {d.attention_curve for d in DEVICES.values()
                if d.attention_curve is not None and d.peak_flops["bf16"] == dev.peak_flops["bf16"]}
        if len(same) == 1:
            dev = dataclasses.replace(dev, attention_curve=same.pop())
    if dev.defaulted:
        warnings.warn(f"{source}: mamf_fraction not given: {TYPICAL_MAMF:g} used, {TYPICAL_MAMF_SOURCE}; give "
                      "mamf_fraction = the device's measured maximum achievable matmul FLOP/s over its bf16 peak",
                      LlmSweepNote, stacklevel=2)
    return dev


def device(name: str) -> Device:
    """A catalog device or a custom device from a TOML file.

    Parameters
    ----------
    name : str
        A catalog name (case-insensitive; ``_`` read as ``-``; aliases such as ``h100`` and ``a100``
        allowed), or a TOML file describing a device (a name ending in ``.toml``, or any existing file).

    Returns
    -------
    Device
        The device: peak FLOP/s per precision, memory, bandwidths.

    Raises
    ------
    SpecError
        An unknown name (listing the valid ones, with "did you mean" for a close one), or a malformed file.
    """
    if not isinstance(name, str):
        raise SpecError("--gpu", repr(name), "must be a device name or a TOML file")
    if name.lower().endswith(".toml") or Path(name).is_file():
        return load_device_file(name)
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in DEVICES:
        near = closest(key, [*DEVICES, *ALIASES])
        guess = f"; did you mean {ALIASES.get(near, near)}?" if near is not None else ""
        raise SpecError("--gpu", name, f"unknown device; valid: {', '.join(device_names())} (aliases: "
                                       f"{', '.join(sorted(ALIASES))}), or a TOML file describing a custom "
                                       f"device{guess}")
    return DEVICES[key]


def generation_name(gpu: str) -> str:
    """The catalog name whose device generation ``gpu`` has (what a stack's per-generation defaults read): a catalog
    device's own name; a device file's, the catalog device of its attention silicon (a file with the H100 SXM's
    figures is Hopper), else its name.

    Parameters
    ----------
    gpu : str
        A catalog name or alias, or a device TOML file.

    Returns
    -------
    str
    """
    dev = device(gpu)
    return dev.name if dev.name in DEVICES else CURVE_SILICON.get(dev.attention_curve or "", dev.name)


def stack_and_kernel(gpu: str, stack: str | None, attention: str | None,
                     overlap: str | None = None) -> tuple[str, str, str]:
    """The training stack, attention kernel and overlap a step on ``gpu`` runs: ``stack`` (None: the device's
    default, ``engine.options.stacks.default_stack``), ``attention`` (None: the stack's kernel on the device's
    generation, ``generation_name``) and ``overlap`` (None or ``"stack"``: ``"stack"``, the stack's defaults, or
    where the stack overlaps other communication on a TPU than on a GPU, its list for this device's kind,
    ``engine.options.stacks.device_overlap``); what ``llm-sweep time`` and ``plan`` take when the flags leave
    them out (spec sweeps resolve the overlap the same way, ``engine.request.variants``).

    Parameters
    ----------
    gpu : str
        A catalog name or alias, or a device TOML file.
    stack, attention, overlap : str or None
        The flags' values, None where not given.

    Returns
    -------
    tuple of str
        ``(stack, attention, overlap)``.

    Raises
    ------
    SpecError
        A stack that does not run on the device (a GPU stack on a TPU), blaming ``--stack``.
    """
    from engine.options.stacks import default_stack, device_overlap, stack_attention

    generation = generation_name(gpu)
    name = stack or default_stack(generation)
    try:
        kernel = attention or stack_attention(name, generation)
        if overlap in (None, "stack"):
            overlap = device_overlap(name, generation)
        return name, kernel, overlap
    except ValueError as exc:
        raise SpecError("--stack", name, str(exc)) from None
