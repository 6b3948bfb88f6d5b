"""Errors a user can cause. Each says what was wrong, where, and what would be valid."""

from __future__ import annotations


class LlmSweepError(Exception):
    """Base class of every error the engine raises for bad input."""


class SpecError(LlmSweepError, ValueError):
    """A spec (file or Python dict) is invalid.

    Attributes:
        source: the spec file path, or ``"<spec>"`` for an in-memory spec.
        key: the dotted key that is wrong (``"axes.d_model"``), or ``""`` for the whole file.
        message: what is wrong and what is valid.
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

    Attributes:
        prog: the command the parser was reading (``"llm-sweep memory"``).
        message: argparse's message.
    """

    def __init__(self, prog: str, message: str):
        self.prog = prog
        self.message = message
        super().__init__(f"{message} (see {prog} --help)")


class PrecisionError(LlmSweepError, OverflowError):
    """An exact integer result does not fit the exact range (never silently rounded)."""


class ResourceError(LlmSweepError):
    """A run would not fit the machine (memory, disk); refused before anything is written."""


def check_keys(source: str, prefix: str, mapping, valid, what: str = "key", valid_what: str | None = None) -> None:
    """Refuse the first key of ``mapping`` not in ``valid``: ``SpecError(source, prefix.key, "unknown ...")``.

    The one "unknown key; valid keys: ..." check of every user file (spec tables, ranges, claims).
    """
    for key in mapping:
        if key not in valid:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise SpecError(source, where, f"unknown {what}; valid {valid_what or what + 's'}: "
                                           f"{', '.join(valid) or 'none'}")


def read_user_file(path, what: str = "TOML") -> tuple[str, object]:
    """Read a user's TOML or JSON file: (text, parsed data), or SpecError naming the file.

    ``what`` is "TOML" or "JSON". Missing, unreadable, non-UTF-8 and malformed files each get
    one clear message.
    """
    import json
    import tomllib
    from pathlib import Path

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
