"""The plain-text format of ``format_formulas``: one block per quantity, then the symbols."""

from __future__ import annotations

from engine.symbolic.printing.common import Printer, Row, SizeRow, defaults_line, options_line, text_of
from engine.symbolic.symbols import SYMBOLS


class TextPrinter(Printer):
    """Quantities in Python syntax (``12*d_model**2 + 13*d_model``), aligned columns."""

    def document(self, rows: list[Row], used: list[str], collect: str | None) -> str:
        formulas = self.formulas
        out = [f"Formula set {formulas.name!r}: {formulas.title}", f"Source: {formulas.source}",
               f"Options: {options_line(formulas)}", ""]
        for q, expanded in self.multiplied_out(rows, collect):
            out.append(f"{q.name} [{q.units}]  {q.long_name}")
            out.append(f"  = {text_of(q.definition)}")
            if expanded is not None and expanded != q.definition:
                out.append(f"  = {text_of(expanded)}")
            out.append(f"  source: {q.source}")
            if q.note:
                out.append(f"  note: {q.note}")
        out += ["", "Symbols:"]
        width = max(len(n) for n in used)
        for name in used:
            info = SYMBOLS[name]
            out.append(f"  {name:<{width}}  [{info.units}]  {info.meaning}; {defaults_line(formulas, name, False)}")
        return "\n".join(out) + "\n"

    def sizes(self, values: dict[str, int]) -> str:
        return "Values: " + ", ".join(f"{k} = {v}" for k, v in values.items()) + "\n"

    def at_sizes(self, rows: list[SizeRow]) -> str:
        width = max(len(q.name) for q, _, _ in rows)
        return "\nAt these sizes:\n" + "".join(f"  {q.name:<{width}}  {v} [{q.units}]\n" for q, v, _ in rows)
