"""The LaTeX format of ``format_formulas``: an ``align`` block, a symbol ``tabular`` and the sources.

Every line fits the page or column (``line_width`` pt): long right-hand sides are cut into lines
(``linebreak``), each ``Piecewise`` and each over-wide part is a named sub-quantity
(``subquantities``), tables are as wide as ``\\linewidth`` with columns sized from their widest
entry (``texwidth``), and every text is escaped for plain LaTeX2e (``article`` + ``amsmath``).
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import sympy

from engine.symbolic.formulas import FormulaSet
from engine.symbolic.printing.common import (Printer, Row, SizeRow, defaults_line, identically_zero, multiplied_out,
                                             options_line)
from engine.symbolic.printing.linebreak import break_latex
from engine.symbolic.printing.subquantities import SUB_LETTER, SubQuantities
from engine.symbolic.printing.texwidth import tex_width, text_width
from engine.symbolic.symbols import SYMBOLS

#: Room kept on each ``align`` row for its equation number ``(99)`` and the gap before it.
TAG_ROOM_PT = 30.0


class LatexPrinter(Printer):
    """LaTeX for a paper: quantities that are identically 0 for this model are left out (0 where others use
    them), and every line fits ``line_width`` pt."""

    def __init__(self, formulas: FormulaSet, line_width: float):
        super().__init__(formulas, line_width)
        self.omitted = frozenset(identically_zero(formulas))

    def document(self, rows: list[Row], used: list[str], collect: str | None) -> str:
        return _latex(self.formulas, rows, used, collect, self.line_width, self.omitted)

    def sizes(self, values: dict[str, int]) -> str:
        listed = ", ".join(f"{k} = {v}" for k, v in values.items())
        # visible in the document, not only in a comment
        shown = ", ".join(f"${SYMBOLS[k].latex if k in SYMBOLS else tex_escape(k)} = {v}$" for k, v in values.items())
        return tex_comment(f"values: {listed}") + "\n" + f"{{\\raggedright\\noindent Sizes: {shown}.\\par}}\n"

    def needs(self, missing: Iterable[str]) -> str:
        return "needs " + ", ".join(f"${SYMBOLS[n].latex}$" if n in SYMBOLS else tex_escape(n) for n in missing)

    def at_sizes(self, rows: list[SizeRow]) -> str:
        body = [f"${q.latex}$ & {_value_cell(v, needs)} & {tex_escape(q.units)}" for q, v, needs in rows]
        # a value that needs inputs wraps; the quantity and units columns are as wide as their widest entry
        spec = _columns((max([text_width("quantity")] + [tex_width(q.latex) for q, _, _ in rows]), None,
                         max([text_width("units")] + [text_width(q.units) for q, _, _ in rows])), (0.0, 0.0, 0.0),
                        self.line_width)
        return "\n" + "\n".join(_tabular(spec, "quantity & value & units", body, 8)) + "\n"


def _latex(formulas: FormulaSet, rows, used, collect: str | None, line_width: float, omitted: set[str]) -> str:
    """The LaTeX output: an ``align`` block, the symbol table and the sources, every line within ``line_width`` pt.

    Quantities in ``omitted`` (identically 0) are left out, and 0 put in their place where others use
    them; each ``Piecewise`` is a named sub-quantity (``SubQuantities``).
    """
    rows = [(q, e) for q, e in rows if q.name not in omitted]
    out = [tex_comment(f"llm-sweep formulas: {formulas.name} -- {formulas.title}"),
           tex_comment(f"source: {formulas.source}; options: {options_line(formulas)}"),
           r"% needs \usepackage{amsmath} (align); otherwise plain LaTeX: \documentclass{article} compiles it"]
    if omitted:
        out.append(tex_comment("identically 0 for this model, left out: " +
                                ", ".join(n for n in formulas.quantities if n in omitted)))
    out += [tex_comment(f"lines fit {line_width:g}pt"),
            r"\begingroup\allowdisplaybreaks  % a long align may break across pages", r"\begin{align}"]
    # the align's left column is as wide as its widest left-hand side, on every row
    lhs = max(tex_width(x) for x in [q.latex for q, _ in rows] + [rf"{SUB_LETTER}_{{99}}"])
    room = line_width - lhs - TAG_ROOM_PT
    first, rest = room - tex_width("{}={}"), room - tex_width(r"\quad")
    subs = SubQuantities(formulas, first, rest)
    zeros = {formulas.quantities[name].symbol: sympy.Integer(0) for name in omitted}
    out += _align(_equations(formulas, rows, zeros, collect, subs), first, rest)
    out += [r"\end{align}\endgroup", "", *_symbol_table(formulas, used, line_width), ""]
    out += [r"\begin{description}\raggedright", *_descriptions(rows, subs), r"\end{description}"]
    return "\n".join(out) + "\n"


def _equations(formulas: FormulaSet, rows, zeros: dict, collect: str | None, subs: "SubQuantities"):
    """(left-hand side, its right-hand sides, the comment with its source) of each equation: a quantity's
    definition and its expanded line, then the sub-quantities they name, each after the first that uses it."""
    equations = []
    for q, over_inputs in rows:
        subs.parent = q
        definition = subs.hoist(q.definition.xreplace(zeros))
        if isinstance(definition, sympy.Piecewise):  # the same cases elsewhere are this quantity
            subs.name_as(definition, q.symbol)
        sides = [subs.latex(definition)]
        if over_inputs is not None:
            expanded = subs.hoist(over_inputs, lambda e: multiplied_out(e, collect))
            if not isinstance(expanded, sympy.Piecewise):  # its cases are multiplied out already
                expanded = multiplied_out(expanded, collect)
            if expanded != definition:
                sides.append(subs.latex(expanded))
        equations.append((q.latex, sides, f"{q.name}: {q.source}"))
        while subs.pending:
            symbol = subs.pending.pop(0)
            name = subs.symbol_latex(symbol)
            equations.append((name, [subs.latex(subs.definitions[symbol])], f"{name[1:]} (in {q.name}): {q.source}"))
    return equations


def _align(equations, first: float, rest: float) -> list[str]:
    """The rows of the ``align`` block: long right-hand sides cut into lines that fit (``lhs &= ...``, then
    ``&\\quad + ...``), one equation number per equation, on its last line (where multline puts it)."""
    out = []
    for i, (left, sides, comment) in enumerate(equations):
        rendered = []
        for k, rhs in enumerate(sides):
            pieces = break_latex(rhs, first, rest)
            for j, piece in enumerate(pieces):
                head = (f"{left} &= " if k == 0 else "&= ") if j == 0 else r"&\quad "
                rendered.append("  " + head + piece + ("" if j == len(pieces) - 1 else r" \notag"))
        for k, line in enumerate(rendered):
            last = k == len(rendered) - 1
            end = r" \\" if not last or i < len(equations) - 1 else ""
            out.append(line + end + ("  " + tex_comment(comment) if last else ""))
    return out


def _symbol_table(formulas: FormulaSet, used: list[str], line_width: float) -> list[str]:
    """Symbol, meaning (with the default) and units of each input, a ``tabular`` per row (``_tabular``)."""
    rows = []
    for name in used:
        info = SYMBOLS[name]
        meaning = tex_prose(info.meaning) + "; " + defaults_line(formulas, name, True)
        rows.append(rf"${info.latex}$ & \raggedright {meaning} & {tex_escape(info.units)}")
    return _tabular(_table_spec(used, line_width), "symbol & meaning & units", rows, 1)


def _descriptions(rows, subs: "SubQuantities") -> list[str]:
    """A ``description`` item per quantity (its name, source and note) and per sub-quantity (what it is part of)."""
    out = []
    for q, _ in rows:
        note = f" Note: {tex_prose(q.note)}." if q.note else ""
        out.append(rf"  \item[{{${q.latex}$}}] {tex_prose(q.long_name)}. Source: {tex_prose(q.source)}.{note}")
    for symbol in subs.numbers:
        parent = subs.parents[symbol]
        out.append(rf"  \item[{{${subs.symbol_latex(symbol)}$}}] {subs.kinds[symbol]} within ${parent.latex}$ "
                   rf"({tex_escape(parent.name)}), named to fit the line; source as there.")
    return out


def _value_cell(shown: str, needs: bool) -> str:
    """A cell of the sizes table: a number flush right, with ``{,}`` (no space after its commas); else
    what it needs, wrapped."""
    return r"\raggedright " + shown if needs else r"\raggedleft " + shown.replace(",", "{,}")


#: The symbol table's columns (symbol, meaning, units) as fractions of ``\linewidth``; each column
#: also loses its two ``\tabcolsep`` paddings, so the table is exactly ``\linewidth`` wide. These are
#: the least the symbol and units columns get: one whose widest entry needs more (a long symbol, or
#: ``bytes/s`` in a two-column page) widens, and the meaning column gives up what it takes.
TABLE_COLUMNS = (0.18, 0.70, 0.12)
#: ``\tabcolsep`` of ``article`` at 10pt: each column's padding on either side.
TABCOLSEP_PT = 6.0


def _columns(widths: tuple[float | None, ...], least: tuple[float, ...], line_width: float) -> str:
    """A tabular spec of ``p`` columns exactly ``\\linewidth`` wide, as fractions of it.

    A column with a width (pt, its widest entry) gets that and its paddings, at least its ``least``
    fraction, in hundredths rounded up; the one column given ``None`` takes the rest.
    """
    fractions = [None if w is None else max(f, math.ceil((w + 2 * TABCOLSEP_PT) / line_width * 100) / 100)
                 for w, f in zip(widths, least)]
    rest = round(1.0 - sum(f for f in fractions if f is not None), 2)
    cols = "".join(rf"p{{\dimexpr {rest if f is None else f:g}\linewidth-2\tabcolsep\relax}}" for f in fractions)
    return "{" + cols + "}"


def _table_spec(used: list[str], line_width: float) -> str:
    """The symbol table's columns for ``used`` on a line ``line_width`` pt wide (``TABLE_COLUMNS`` at least)."""
    symbols = max([text_width("symbol")] + [tex_width(SYMBOLS[n].latex) for n in used])
    units = max([text_width("units")] + [text_width(SYMBOLS[n].units) for n in used])
    return _columns((symbols, None, units), (TABLE_COLUMNS[0], 0.0, TABLE_COLUMNS[2]), line_width)


def _tabular(spec: str, header: str, rows: list[str], per_table: int) -> list[str]:
    """A table as ``tabular`` blocks of at most ``per_table`` rows, the first under ``header``, one paragraph each:
    a page or column can end between two of them (a ``tabular`` never breaks, and ``longtable`` refuses two
    columns). Their rows' struts stack them without a gap, as one table."""
    out = []
    for k in range(0, max(len(rows), 1), per_table):
        out += ([""] if k else []) + [r"\noindent\begin{tabular}" + spec]
        out += [rf"  {header} \\ \hline"] if k == 0 else []
        out += [rf"  {row} \\" for row in rows[k:k + per_table]] + [r"\end{tabular}"]
    return out


# Text (not math) special characters and arrows, longest first so ``<->`` wins over ``<-``.
_TEX_TEXT = {
    "<-->": r"$\longleftrightarrow$", "<->": r"$\leftrightarrow$", "<=>": r"$\Leftrightarrow$",
    "-->": r"$\longrightarrow$", "<--": r"$\longleftarrow$", "->": r"$\rightarrow$", "<-": r"$\leftarrow$",
    "=>": r"$\Rightarrow$", "<=": r"$\leq$", ">=": r"$\geq$",
    "--": "-{}-",  # kept as two hyphens, not the en dash ligature
    "\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
    "{": r"\{", "}": r"\}", "^": r"\textasciicircum{}", "~": r"$\sim$", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}",
    # non-ASCII that OT1 fonts lack (or that pull in TS1 bitmap fonts): typeset from math fonts
    "§": r"$\S$", "×": r"$\times$", "→": r"$\rightarrow$", "←": r"$\leftarrow$", "↔": r"$\leftrightarrow$",
    "≈": r"$\approx$", "≤": r"$\leq$", "≥": r"$\geq$", "–": "--", "—": "---", "…": r"\dots{}", "µ": r"$\mu$",
    "\r\n": " ", "\n": " ", "\r": " ",
}
_TEX_TEXT_RE = re.compile("|".join(re.escape(k) for k in sorted(_TEX_TEXT, key=len, reverse=True)))


def tex_escape(text: str) -> str:
    """``text`` as LaTeX text: special characters escaped, ASCII arrows as math arrows, one line.

    Safe under the default OT1 font encoding (where a raw ``<`` prints as an inverted exclamation
    mark) with no packages: every replacement is a LaTeX2e kernel command.
    """
    return _TEX_TEXT_RE.sub(lambda m: _TEX_TEXT[m.group(0)], str(text))


def tex_prose(text: str) -> str:
    """``text`` escaped (``tex_escape``), a line break allowed after each ``_`` and ``/``: a file name such as
    ``megatron/core/transformer/moe/token_dispatcher.py`` is one word, wider than a two-column line."""
    return re.sub(r"(\\_|/)", r"\1\\allowbreak{}", tex_escape(text))


def tex_comment(text: str) -> str:
    """``text`` as one LaTeX comment line: a newline in it would end the comment early."""
    return "% " + " ".join(str(text).splitlines())
