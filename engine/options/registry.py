"""The registry's machinery: an option is a dataclass field; its record, its checks and its rules derive from it.

An option is declared once, as a field of an options dataclass (``MemoryOptions``, ``Structure``)::

    precision: str = option(DEFAULT_PRECISION, PRECISION_NAMES, "bits per tensor class ...",
                            aliases=PRECISION_ALIASES, source="Megatron-LM --bf16; ...")

as Megatron-Core's ``TransformerConfig`` and nanoGPT's ``GPTConfig`` declare theirs. ``specs_of(cls)``
derives the ``OptionSpec`` records every reader takes (the command line's flags, spec validation, the
JSON Schema, the README table); ``check_value`` validates one value and ``Rule`` records say which
combinations are refused, all checked by ``broken_rules``. Pure Python: the parser reads it without sympy.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Iterable, Mapping

from engine.errors import closest

_KEY = "llm_sweep.option"  # the dataclasses.field metadata key of an option's record


def show_value(value: Any, quote: bool = True) -> str:
    """A value as a spec writes it: TOML booleans true/false, strings quoted (unless ``quote`` is
    false), numbers and expressions as they print. The one formatter of option and fixed values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if quote else value
    return str(value)


def did_you_mean(name: Any, valid: Iterable[Any]) -> str:
    """``" (did you mean 'bf16'?)"`` for the closest valid spelling of ``name`` (``engine.errors.closest``), else
    ``""``: the parenthesized form option errors end their sentence with."""
    if not isinstance(name, str):
        return ""
    near = closest(name, valid)
    return f" (did you mean {show_value(near)}?)" if near is not None else ""


@dataclass(frozen=True)
class OptionSpec:
    """A structural option: it chooses which expressions are built (derived from its field: ``specs_of``).

    Attributes:
        name: the field's name, the spec key and (with dashes) the command-line flag.
        default: the field's default.
        choices: the values it takes (booleans: true, false).
        meaning: one line for the help, the README table and the JSON Schema.
        flag: the command-line spelling when not ``--name-with-dashes``.
        aliases: (alias, canonical choice) pairs accepted everywhere and normalized on input.
        units: the unit of a numeric value, or "".
        source: where the choices come from (a paper, a framework's flag).
        words: for a list option, the values that stand alone (``stack``, ``none``, ``all``): its value is one of
            them or a comma list of ``choices`` (``dp,tp``), kept in the order of ``choices``. Empty: one choice.
    """

    name: str
    default: Any
    choices: tuple
    meaning: str
    flag: str | None = None
    aliases: tuple = ()
    units: str = ""
    source: str = ""
    words: tuple = ()

    @property
    def listed(self) -> bool:
        """Whether the value is a comma list of choices (or one of ``words``)."""
        return bool(self.words)

    def values_text(self) -> str:
        """The values in words: the choices (and aliases), or a list option's form."""
        if self.listed:
            return (f"a comma list of {', '.join(self.choices)}, or "
                    + ", ".join(show_value(w, quote=False) for w in self.words))
        return ", ".join(show_value(c) for c in self.choices)

    @property
    def command_flag(self) -> str:
        """The command-line spelling: ``flag``, else ``--name-with-dashes``."""
        return self.flag or "--" + self.name.replace("_", "-")

    def canonical(self, value: Any) -> Any:
        """The choice an alias stands for (``bf16-amp`` -> ``bf16-mixed``); a list option's parts in the order of
        its choices (``tp, dp`` -> ``dp,tp``); any other value unchanged."""
        if not isinstance(value, str):
            return value
        if self.listed and value.strip() not in self.words:
            parts = [p.strip() for p in value.split(",")]
            if set(parts) <= set(self.choices) and len(set(parts)) == len(parts):
                return ",".join(c for c in self.choices if c in parts)
            return value
        return dict(self.aliases).get(value, value)

    def check(self, value: Any) -> None:
        """ValueError naming the valid choices (and the closest one) when ``value`` is not one of them."""
        value = self.canonical(value)
        if self.listed:
            if not isinstance(value, str):
                raise ValueError(f"option {self.name!r} must be {self.values_text()}, got {show_value(value)}")
            if value.strip() in self.words:
                return
            parts = [p.strip() for p in value.split(",")]
            bad = [p for p in parts if p not in self.choices]
            if bad:
                near = did_you_mean(bad[0], [*self.choices, *self.words])
                raise ValueError(f"option {self.name!r} must be {self.values_text()}, got {show_value(bad[0])}"
                                 f"{near}")
            if len(set(parts)) < len(parts):
                raise ValueError(f"option {self.name!r} names {', '.join(sorted({p for p in parts if parts.count(p) > 1}))} "
                                 f"twice in {show_value(value)}")
            return
        if type(value) is type(self.default) and (not self.choices or value in self.choices):
            return
        choices = ", ".join(show_value(c) for c in self.choices) if self.choices else \
            f"a {type(self.default).__name__}"
        if self.aliases:
            choices += " (aliases: " + ", ".join(f"{show_value(a)} = {show_value(c)}" for a, c in self.aliases) + ")"
        near = did_you_mean(value, [*self.choices, *(a for a, _ in self.aliases)])
        raise ValueError(f"option {self.name!r} must be one of {choices}, got {show_value(value)}{near}")


def option(default: Any, choices: tuple = (), meaning: str = "", *, flag: str | None = None, aliases: tuple = (),
           units: str = "", source: str = "", words: tuple = ()) -> Any:
    """A dataclass field that is a structural option: its default and its record (``OptionSpec``) in one.

    Parameters
    ----------
    default : Any
        The value when the option is not given (its type is the option's type).
    choices : tuple
        The values it takes; booleans take (True, False) when left empty.
    meaning, flag, aliases, units, source, words :
        The record's fields (see ``OptionSpec``); ``words`` makes a list option.

    Returns
    -------
    dataclasses.Field
        The field, its record under the metadata key ``llm_sweep.option``.
    """
    if isinstance(default, bool) and not choices:
        choices = (True, False)
    record = dict(choices=tuple(choices), meaning=meaning, flag=flag, aliases=tuple(aliases), units=units,
                  source=source, words=tuple(words))
    return field(default=default, metadata={_KEY: record})


def specs_of(cls: type) -> dict[str, OptionSpec]:
    """The option records of an options dataclass, in field order (fields declared with ``option``).

    Parameters
    ----------
    cls : type
        A dataclass whose options are declared with ``option``.

    Returns
    -------
    dict of str to OptionSpec
    """
    out = {}
    for f in fields(cls):
        if _KEY in f.metadata and f.default is not MISSING:
            out[f.name] = OptionSpec(f.name, f.default, **f.metadata[_KEY])
    return out


def check_value(specs: Mapping[str, OptionSpec], key: str, value: Any, where: str = "") -> None:
    """ValueError naming the valid options (and the closest) or choices when ``key = value`` is not one of ``specs``.

    Parameters
    ----------
    specs : mapping of str to OptionSpec
    key, value :
        The option and the value given.
    where : str
        Appended to the unknown-option message (e.g. `` for formula set 'seed'``).

    Raises
    ------
    ValueError
        An unknown option, or a value it does not take.
    """
    if key not in specs:
        raise ValueError(f"unknown option {key!r}{where}{did_you_mean(key, specs)}; valid options: "
                         f"{', '.join(specs) or 'none'}")
    specs[key].check(value)


@dataclass(frozen=True)
class Not:
    """Any value but these, in a ``Rule``'s conditions: ``Not("none")``."""

    values: tuple

    def __init__(self, *values: Any):
        object.__setattr__(self, "values", values)


def _holds(condition: Mapping[str, Any], chosen: Mapping[str, Any]) -> bool:
    """Every ``name: values`` of ``condition`` holds: the chosen value is one of ``values`` (a value, a tuple, or
    ``Not(...)`` for any other)."""
    for name, want in condition.items():
        value = chosen[name]
        if isinstance(want, Not):
            if any(_same(value, w) for w in want.values):
                return False
        elif not any(_same(value, w) for w in (want if isinstance(want, tuple) else (want,))):
            return False
    return True


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Rule:
    """A rule between options, as data: when ``when`` holds, ``requires`` must hold and ``refuses`` must not.

    Each condition maps option names to a value, a tuple of values or ``Not(...)``; ``requires`` fails when any of
    its names is off, ``refuses`` when all of its names match. ``message`` is formatted with the chosen options
    (``{zero}``); ``source`` says where the rule comes from. ``model`` names the memory model whose limit it is
    (that model's ``refuses`` reports it), or is empty for a rule between options.
    """

    when: Mapping[str, Any]
    message: str
    source: str
    requires: Mapping[str, Any] = field(default_factory=dict)
    refuses: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""

    def broken(self, chosen: Mapping[str, Any]) -> bool:
        """Whether options ``chosen`` (name -> value) break the rule."""
        if not _holds(self.when, chosen):
            return False
        return (bool(self.requires) and not _holds(self.requires, chosen)) or \
            (bool(self.refuses) and _holds(self.refuses, chosen))


def broken_rules(rules: Iterable[Rule], options: Any) -> list[str]:
    """The messages of the rules that ``options`` (an options dataclass) break, in the rules' order.

    Parameters
    ----------
    rules : iterable of Rule
    options : dataclass instance

    Returns
    -------
    list of str
        One message per broken rule (empty: every rule holds).
    """
    chosen = asdict(options)
    return [r.message.format(**chosen) for r in rules if r.broken(chosen)]
