"""argparse, answered in one line: the parser class, ``--version``, and "did you mean" for an unknown
command, flag or flag value (pure Python: building the parser loads nothing heavy)."""

from __future__ import annotations

import argparse
import re
import warnings

from engine.errors import LlmSweepDeprecation, UsageError, closest


def did_you_mean_choice(message: str) -> str:
    """argparse's "invalid choice: 'memroy' (choose from 'run', ...)" with the closest choice named."""
    m = re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", message)
    if m:
        choices = re.findall(r"'([^']*)'", m.group(2)) or m.group(2).split(", ")
        close = closest(m.group(1), choices)
        if close is not None:
            return f"{message}; did you mean {close}?"
    return message


class Parser(argparse.ArgumentParser):
    """argparse's parser, its errors raised as ``UsageError``: one line naming the command and where its usage is
    (argparse prints the whole usage, then the error, and exits). Subparsers are of this class too."""

    def error(self, message: str):
        raise UsageError(self.prog, did_you_mean_choice(message))


class Version(argparse._VersionAction):
    """argparse's ``--version``, the version read when asked for (importlib.metadata is slow to load)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from engine import __version__  # engine/__init__ loads the API (sympy): only when asked

        self.version = f"llm-sweep {__version__}"
        super().__call__(parser, namespace, values, option_string)


def unrecognized(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> UsageError:
    """The words no flag of the command took, told with the command's name (argparse names the top-level usage),
    and the command's closest flag for each unknown flag."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices.get(getattr(args, "command", None), parser)
    takes = {f: a.nargs != 0 for a in command._actions for f in a.option_strings if f.startswith("--")}

    def closest_flag(word: str) -> str | None:
        flag = word.split("=", 1)[0]
        return closest(flag, takes) if flag.startswith("-") and flag != "-" else None

    groups: list[list[str]] = []  # an unknown flag with the word after it that looks like its value
    for word in extra:
        last = groups[-1] if groups else None
        if (last is not None and len(last) == 1 and last[0].startswith("-") and "=" not in last[0]
                and not word.startswith("-") and takes.get(closest_flag(last[0]), True)):
            last.append(word)
        else:
            groups.append([word])
    words = []
    for group in groups:
        close = closest_flag(group[0])
        words.append(" ".join(group) + (f" (did you mean {close}?)" if close else ""))
    return UsageError(command.prog, f"unrecognized argument{'s' if len(words) > 1 else ''}: {', '.join(words)}")


class OldSpelling(argparse.Action):
    """A flag's old spelling, hidden from --help and still read: it stores into the new flag's dest and says, as
    a note after the answer, which flag to give now (``add_old_spelling``)."""

    def __init__(self, option_strings, dest, new: str, values: str = "", **kwargs):
        self.new, self.values = new, values
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        warnings.warn(f"{' '.join(filter(None, (option_string, self.values)))} is now {self.new} ({option_string} is "
                      "read for now)", LlmSweepDeprecation)
        setattr(namespace, self.dest, values)


def add_old_spelling(parser: argparse.ArgumentParser, old: str, new: str, dest: str, values: str = "",
                     **kwargs) -> None:
    """Accept ``old`` as a hidden spelling of flag ``new`` (same ``dest``, same ``type``/``choices`` in kwargs);
    ``values`` names what it takes in the note (``exact|fast``)."""
    parser.add_argument(old, dest=dest, action=OldSpelling, new=new, values=values, **kwargs)
