"""The README's option table and schema note, generated from the registry (``python -m engine.options --markdown``)."""

from __future__ import annotations

from typing import Mapping

from engine.options.memory import MEMORY_OPTIONS
from engine.options.registry import OptionSpec, show_value
from engine.options.structure import ARCH_OPTIONS

BEGIN, END = "<!-- options:begin -->", "<!-- options:end -->"  # README.md's markers around the table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(specs: Mapping[str, OptionSpec], group: str) -> list[str]:
    out = []
    for spec in specs.values():
        values = ", ".join(f"`{show_value(c, quote=False)}`" for c in spec.choices)
        if spec.listed:
            values = f"comma list of {values}; or " + ", ".join(f"`{w}`" for w in spec.words)
        if spec.aliases:
            values += "; also " + ", ".join(f"`{a}` (= `{c}`)" for a, c in spec.aliases)
        flag = spec.command_flag if group == "memory" else f"--option {spec.name}=..."
        default = show_value(spec.default, quote=False)
        out.append(f"| `{spec.name}` | {group} | `{flag}` | {values} | `{default}` | {_cell(spec.meaning)} |")
    return out


def markdown_table() -> str:
    """Every option a spec's ``[options]`` takes with an ``arch``, as a Markdown table (memory, then architecture).

    Returns
    -------
    str
        The table, one row per option: name, group, flag, values (and aliases), default, meaning.
    """
    head = ["| option | group | flag | values | default | meaning |", "|---|---|---|---|---|---|"]
    return "\n".join(head + _rows(MEMORY_OPTIONS, "memory") + _rows(ARCH_OPTIONS, "architecture")) + "\n"


SCHEMA_NOTE = """Every option, one declaration each (`engine/options/`), with the values a spec's `[options]`, a
categorical `[axes]` key and the flag take (generated: `python -m engine.options --markdown`; specs with
`formula_set` take that set's options instead). Editors validate and complete spec files against the JSON
Schema shipped in the package (`engine/schema/spec.schema.json`; `python -m engine.options --schema`) with
[taplo](https://taplo.tamasfe.dev) or VS Code's Even Better TOML when the spec's first line names it:

```toml
#:schema ./engine/schema/spec.schema.json
```
"""


def readme_block() -> str:
    """What README.md holds between its ``BEGIN`` and ``END`` markers: the schema note and the option table."""
    return SCHEMA_NOTE + "\n" + markdown_table()


def between_markers(text: str) -> str:
    """The text between README.md's ``BEGIN`` and ``END`` markers (ValueError when either is missing)."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the README has no {BEGIN} ... {END} markers around its option table")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
