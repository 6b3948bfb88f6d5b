"""The Markdown format of ``format_formulas``: a table of quantities (formulas in ``$...$``), a table of symbols."""

from __future__ import annotations

from engine.symbolic.printing.common import Printer, Row, SizeRow, defaults_line, latex_of, options_line
from engine.symbolic.symbols import SYMBOLS


def md_escape(text: str) -> str:
    """``text`` for a Markdown table cell: ``|`` escaped, newlines (which would end the row) as spaces."""
    return " ".join(str(text).splitlines()).replace("|", r"\|")


class MarkdownPrinter(Printer):
    """Tables a Markdown renderer with math (GitHub, Jupyter) shows as they are."""

    def document(self, rows: list[Row], used: list[str], collect: str | None) -> str:
        formulas = self.formulas
        out = [f"## Formula set `{formulas.name}`: {formulas.title}", "", f"Source: {formulas.source}. "
               f"Options: {options_line(formulas)}.", "", "| quantity | formula | units | source |",
               "|---|---|---|---|"]
        for q, expanded in self.multiplied_out(rows, collect):
            formula = f"${q.latex} = {latex_of(q.definition, formulas)}$"
            if expanded is not None and expanded != q.definition:
                formula += f" $= {latex_of(expanded, formulas)}$"
            source = q.source + (f" (note: {q.note})" if q.note else "")
            out.append(f"| `{q.name}` | {md_escape(formula)} | {md_escape(q.units)} | {md_escape(source)} |")
        out += ["", "| symbol | name | meaning | units |", "|---|---|---|---|"]
        for name in used:
            info = SYMBOLS[name]
            meaning = f"{info.meaning}; {defaults_line(formulas, name, True)}"
            out.append(f"| ${info.latex}$ | `{name}` | {md_escape(meaning)} | {md_escape(info.units)} |")
        return "\n".join(out) + "\n"

    def sizes(self, values: dict[str, int]) -> str:
        return "\nValues: " + ", ".join(f"{k} = {v}" for k, v in values.items()) + "\n"

    def at_sizes(self, rows: list[SizeRow]) -> str:
        return "\n| quantity | value | units |\n|---|---|---|\n" + "".join(
            f"| `{q.name}` | {md_escape(v)} | {q.units} |\n" for q, v, _ in rows)
