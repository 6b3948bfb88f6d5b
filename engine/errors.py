"""Errors a user can cause. Each says what was wrong, where, and what would be valid."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Iterable


class LlmSweepError(Exception):
    """Base class of every error the engine raises for bad input."""


class SpecError(LlmSweepError, ValueError):
    """A user's input (a spec file or dict, a config.json, a claims file, a flag's value) is invalid.

    The text is ``"SOURCE: KEY: MESSAGE"`` (``"SOURCE: MESSAGE"`` without a key).

    Parameters
    ----------
    source : str
        The file path, or what else the input is (``"<spec>"`` for an in-memory spec, ``"--gpu"``).
    key : str
        The dotted key that is wrong (``"axes.d_model"``), or ``""`` for the whole input.
    message : str
        What is wrong and what would be valid.
    """

    def __init__(self, source: str, key: str, message: str):
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {message}")


class LlmSweepDeprecation(FutureWarning):
    """An old spelling that is still read (``sweep.precision`` for ``sweep.numerics``); the CLI shows it as a note."""


class LlmSweepNote(UserWarning):
    """A default the user did not choose, named with the value used (a custom device's matmul ceiling); the CLI
    shows it as a note after the answer."""


class UsageError(LlmSweepError):
    """A command line the argument parser refuses (a missing argument, an unknown flag, a value of the wrong
    type), told in one line that names the command and where its usage is: ``PROG --help``.

    Parameters
    ----------
    prog : str
        The command the parser was reading (``"llm-sweep memory"``).
    message : str
        argparse's message.
    """

    def __init__(self, prog: str, message: str):
        self.prog = prog
        self.message = message
        super().__init__(f"{message} (see {prog} --help)")


class PrecisionError(LlmSweepError, OverflowError):
    """An exact integer result does not fit the exact range (never silently rounded)."""


class ResourceError(LlmSweepError):
    """A run would not fit the machine (memory, disk); refused before anything is written."""


def closest(name: Any, valid: Iterable[Any]) -> Any | None:
    """The valid name closest to ``name`` (difflib, ratio at least 0.6), or None.

    Parameters
    ----------
    name : Any
        What the user wrote (compared as text).
    valid : iterable
        The names that would be accepted.

    Returns
    -------
    Any or None
        The closest valid name, as given in ``valid``.
    """
    texts = {str(v): v for v in valid}
    close = difflib.get_close_matches(str(name), list(texts), n=1, cutoff=0.6)
    return texts[close[0]] if close else None


def did_you_mean(name: Any, valid: Iterable[Any]) -> str:
    """``"; did you mean 'llama-2-7b'?"`` for the valid name closest to ``name``, else ``""``.

    Parameters
    ----------
    name : Any
        What the user wrote.
    valid : iterable
        The names that would be accepted.

    Returns
    -------
    str
        The hint, to append to an "unknown ..." message; empty when nothing is close.
    """
    close = closest(name, valid)
    return "" if close is None else f"; did you mean {str(close)!r}?"


def check_keys(source: str, prefix: str, mapping, valid, what: str = "key", valid_what: str | None = None) -> None:
    """Refuse the first key of ``mapping`` not in ``valid``: ``SpecError(source, prefix.key, "unknown ...")``.

    The one "unknown key; valid keys: ...; did you mean ...?" check of every user file (spec tables,
    ranges, claims).

    Parameters
    ----------
    source : str
        The file (or ``"<spec>"``) errors name.
    prefix : str
        The dotted key of the table ``mapping`` is (``""`` for the top level).
    mapping : Mapping
        The table read from the file.
    valid : sequence of str
        Its valid keys, in the order the message lists them.
    what : str, optional
        What a key is called in the message (``"key"``, ``"field"``, ``"table"``).
    valid_what : str, optional
        The plural in "valid ...: "; ``what + "s"`` by default.

    Raises
    ------
    SpecError
        At the first unknown key, naming it, the valid ones and the closest of them.
    """
    for key in mapping:
        if key not in valid:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise SpecError(source, where, f"unknown {what}; valid {valid_what or what + 's'}: "
                                           f"{', '.join(valid) or 'none'}{did_you_mean(key, valid)}")


def read_user_file(path, what: str = "TOML") -> tuple[str, object]:
    """Read a user's TOML or JSON file.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str, optional
        ``"TOML"`` or ``"JSON"``.

    Returns
    -------
    tuple
        (its text, the parsed data).

    Raises
    ------
    SpecError
        Missing, unreadable, non-UTF-8, malformed, or nested deeper than ``MAX_NESTING`` levels; each
        with one clear message naming the file.
    """
    import tomllib  # stdlib, but 5 ms that no --help needs (this module is on every command's --help path)

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(source, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(source, "", f"cannot read the file: {exc}") from None
    deep = SpecError(source, "", f"tables or lists nested more than {MAX_NESTING} levels deep; llm-sweep reads "
                                 f"at most {MAX_NESTING} (a config.json or a spec needs fewer than 5)")
    try:
        data = tomllib.loads(text) if what == "TOML" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(source, "", f"not valid {what}: {exc}") from None
    except RecursionError:  # the parsers recurse per level: thousands of [[[... overflow the stack
        raise deep from None
    stack = [(data, 0)]  # the rest of the engine walks the data recursively: bound its depth here, once
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth >= MAX_NESTING:
                raise deep
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return text, data


MAX_NESTING = 64  # levels of tables/lists in a user file: config.json and specs need fewer than 5


def read_package_json(package: str, name: str, what: str) -> Any:
    """A JSON data file shipped inside ``package`` (``engine/catalog/data/presets.json``), parsed.

    Parameters
    ----------
    package : str
        The package that holds it (``"engine.catalog"``).
    name : str
        Its path inside the package (``"data/presets.json"``).
    what : str
        What it holds, for the error (``"the presets"``).

    Returns
    -------
    Any
        The parsed JSON.

    Raises
    ------
    SpecError
        The file cannot be read or is not JSON (an installation fault), naming it.
    """
    from importlib import resources  # as tomllib above: 5 ms off the --help path

    try:
        return json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{package.replace('.', '/')}/{name}", "", f"cannot read {what}: {exc}") from None

