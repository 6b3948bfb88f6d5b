"""What several commands share: exit statuses, the architecture and device flags, ``--option`` and
``--set`` read and checked, the ``time``/``plan`` precision, and the XLA compilation cache.

Pure Python at import (the parser is built from it); sympy and the engine load inside the functions
that need them, when a command runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.errors import SpecError
from engine.options import MEMORY_OPTIONS, check_value
from engine.request.options import canonical_option, flag_of

EXIT_OK, EXIT_CLAIM_WRONG, EXIT_BAD_INPUT = 0, 1, 2
EXIT_NOTHING_FITS = 3  # plan: no layout fits the device's memory (a result, not bad input)

SET_HELP = ("a numeric input symbol, e.g. quant_group=64 or bits_opt=16 (repeatable; VALUE a number or a constant "
            "expression such as 2**10; it overrides the default or the configuration's value)")
# inputs with a flag of their own: --set refuses them and names the flag
DEDICATED_FLAGS = {"batch": "--batch", "seq_len": "--seq-len", "dp": "--dp", "tp": "--tp", "pp": "--pp",
                   "vp": "--vp", "kv_window": "--kv-window", "tokens": "--tokens", "peak_flops": "--peak-flops",
                   "mfu": "--mfu", "n_gpus": "--gpus", "ep": "--ep", "etp": "--etp"}
_ZERO_OK = ("bits_master",)  # inputs where 0 means "none" (bits per master-weight element: no master copy)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (an error is one line on stderr)."""
    return " ".join(str(exc).split())


def gib(n: float) -> str:
    """Bytes in GiB, as the commands print them."""
    return f"{n / 2**30:,.2f} GiB"


def add_arch_source(parser: argparse.ArgumentParser, required: bool, arch_help: str = "preset or family",
                    config_help: str = "a local Hugging Face config.json, or a model folder holding one"):
    """--arch NAME | --hf-config PATH, one of them (params, formulas, memory, flops, time, plan)."""
    src = parser.add_mutually_exclusive_group(required=required)
    src.add_argument("--arch", metavar="NAME", help=arch_help)
    src.add_argument("--hf-config", metavar="PATH", help=config_help)
    return src


def add_device_run(parser: argparse.ArgumentParser, batch_help: str) -> None:
    """The device type, its count and the step's sequences (time, plan)."""
    parser.add_argument("--gpu", required=True, metavar="NAME|FILE.toml", help="a catalog device or a TOML file")
    parser.add_argument("--gpus", type=int, required=True, metavar="N", help="devices")
    parser.add_argument("--seq-len", type=int, required=True, metavar="S", help="tokens per sequence")
    parser.add_argument("--global-batch", type=int, required=True, metavar="B", help=batch_help)


def add_structure_flags(parser: argparse.ArgumentParser, option_help: str, sets: bool = True) -> None:
    """--option NAME=VALUE (structural options) and, with ``sets``, --set NAME=VALUE (numeric inputs)."""
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE", help=option_help)
    if sets:
        parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help=SET_HELP)


def arch_of(args: argparse.Namespace, options: dict | None = None):
    """The architecture --arch names, or the config.json (or model folder holding one) --hf-config names:
    never a preset of the same name."""
    from engine.catalog.model import architecture, config_architecture

    if args.hf_config is not None:
        return config_architecture(args.hf_config, options)
    return architecture(args.arch, options)


def option_value(text: str):
    """An --option value: true/false as booleans, integers as int, anything else the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text


def structure_options(items: list[str], numeric_flag: str = "--set") -> dict:
    """``--option NAME=VALUE`` items as a dict; a numeric input is refused, naming ``numeric_flag``."""
    from engine.symbolic.symbols import SYMBOLS

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SpecError("--option", item, "expected NAME=VALUE, e.g. tied_head=false")
        if key.strip() in SYMBOLS:  # a numeric input, not a structural option
            raise SpecError("--option", item, f"unknown option {key.strip()!r}: --option takes structural options; "
                                              f"{key.strip()} is a numeric input, give it with {numeric_flag} "
                                              f"{key.strip()}=VALUE")
        options[key.strip()] = option_value(value.strip())
    return options


def set_values(items: list[str], dedicated: bool = True) -> dict:
    """``--set NAME=VALUE`` items as input values, validated like a spec's values (positive; integers for
    integer symbols). With ``dedicated``, inputs that have a flag of their own are refused."""
    from engine.request.values import Errors, input_value  # (numpy)
    from engine.symbolic.symbols import SYMBOLS

    out: dict = {}
    for item in items:
        key, sep, text = (x.strip() for x in item.partition("="))
        if not sep or not key or not text:
            raise SpecError("--set", item, "expected NAME=VALUE, e.g. quant_group=64")
        if dedicated and key in DEDICATED_FLAGS:
            raise SpecError("--set", item, f"{key} has its own flag: give {DEDICATED_FLAGS[key]} instead")
        if key not in SYMBOLS:
            valid = [n for n in SYMBOLS if not (dedicated and n in DEDICATED_FLAGS)]
            raise SpecError("--set", item, f"unknown input {key!r}; valid inputs: {', '.join(valid)}")
        if key in out:
            raise SpecError("--set", item, f"{key} is set twice")
        if key in _ZERO_OK and text in ("0", "0.0"):  # bits_master = 0: no master copy (the symbol's meaning)
            out[key] = 0
            continue
        try:
            out[key] = input_value(Errors("--set"), item, key, text)
        except SpecError as exc:
            raise SpecError("--set", item, exc.message) from None
    return out


def check_sets_used(sets: dict, fs, exprs: list, given: set) -> None:
    """SpecError for a ``--set`` input that none of ``exprs`` (expressions over inputs) depends on."""
    from engine.symbolic.symbols import SYMBOLS

    for name, value in sets.items():
        keep = set(given) | {name}  # the input stays a symbol; every other one gets its value or default
        if not any(SYMBOLS[name].symbol in fs.apply(e, keep).free_symbols for e in exprs):
            raise SpecError("--set", f"{name}={value}", f"the chosen formulas do not use {name}: it would be "
                                                        "ignored")


def option_choice(name: str, value):
    """A memory option's flag value (``engine.options.MEMORY_OPTIONS``) as its canonical choice (an alias such as
    bf16-amp read as bf16-mixed); anything else refused in the flag's name, in the record's words (the valid
    choices and the closest one: ``check_value``)."""
    try:
        check_value(MEMORY_OPTIONS, name, value)
    except ValueError as exc:
        raise SpecError(flag_of(MEMORY_OPTIONS[name]), str(value), str(exc)) from None
    return canonical_option(MEMORY_OPTIONS, name, value)


def precision(args: argparse.Namespace) -> str:
    """``--precision`` of time and plan in the memory options' one vocabulary (``option_choice``), the one
    default when not given."""
    if args.precision is None:
        return MEMORY_OPTIONS["precision"].default
    return option_choice("precision", args.precision)


def enable_compilation_cache() -> None:
    """Persist XLA executables between runs (the CLI owns its process; the library never does this).

    Set LLM_SWEEP_CACHE_DIR to move the cache, or to an empty string to turn it off; a cache
    directory configured for JAX already is left as it is.
    """
    import jax

    folder = os.environ.get("LLM_SWEEP_CACHE_DIR", str(Path.home() / ".cache" / "llm-sweep" / "xla"))
    if not folder or jax.config.jax_compilation_cache_dir:
        return
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

