"""Formulas as text, LaTeX or Markdown, with sources and a symbol table (pure sympy).

Every printed formula is the quantity's own definition (the one the kernel evaluates), so a
printed formula and a computed number cannot disagree.
"""

from __future__ import annotations

import math
import re

import sympy

from engine.options import FORMATS  # the choices of formulas --format, pure data the parser reads
from engine.symbolic.formulas import FormulaSet
from engine.symbolic.formulas.base import show_value
from engine.symbolic.symbols import SYMBOLS


# --- the line width ---------------------------------------------------------------------------------

#: ``\textwidth`` of a plain ``\documentclass{article}`` at 10pt (345pt on A4 and US letter alike).
LINE_WIDTH_PT = 345.0
#: ``--line-width`` names: ``\linewidth`` of ``\documentclass{article}`` at 10pt, one column and ``[twocolumn]``.
LINE_WIDTHS = {"onecolumn": LINE_WIDTH_PT, "twocolumn": 229.5}
#: TeX's units of length, in pt.
TEX_UNITS = {"pt": 1.0, "bp": 72.27 / 72, "in": 72.27, "cm": 72.27 / 2.54, "mm": 72.27 / 25.4, "pc": 12.0}
#: The narrowest line the output is made to fit (ACL's column, the narrowest of the usual ones, is 219pt)
#: and TeX's largest length.
MIN_LINE_WIDTH_PT, MAX_LINE_WIDTH_PT = 200.0, 16383.0


def parse_line_width(text: str) -> float:
    """The width in pt of a ``--line-width``: a name of ``LINE_WIDTHS`` or a TeX length (``345pt``, ``3.25in``,
    ``8.5cm``); ``ValueError`` saying what is valid."""
    name = text.strip().lower()
    if name in LINE_WIDTHS:
        return LINE_WIDTHS[name]
    valid = (f"a length such as 345pt, 3.25in or 8.5cm (units: {', '.join(TEX_UNITS)}) or "
             + " or ".join(f"{k} ({v:g}pt)" for k, v in LINE_WIDTHS.items()))
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)", name)
    if m is None or m.group(2) not in TEX_UNITS:
        raise ValueError(f"expected {valid}")
    pt = float(m.group(1)) * TEX_UNITS[m.group(2)]
    if pt < MIN_LINE_WIDTH_PT:
        raise ValueError(f"narrower than {MIN_LINE_WIDTH_PT:g}pt, the narrowest line the output is made to fit "
                         f"(ACL's column is 219pt, IEEE's 252pt); give {valid}")
    if pt > MAX_LINE_WIDTH_PT:
        raise ValueError(f"wider than {MAX_LINE_WIDTH_PT:g}pt, TeX's largest length; give {valid}")
    return pt



def _latex_names(formulas: FormulaSet | None = None) -> dict[sympy.Symbol, str]:
    names = {info.symbol: info.latex for info in SYMBOLS.values()}
    if formulas is not None:
        names.update({q.symbol: q.latex for q in formulas.quantities.values()})
    return names


def latex_of(expr: sympy.Expr, formulas: FormulaSet | None = None,
             names: dict[sympy.Symbol, str] | None = None) -> str:
    """LaTeX of ``expr`` with registry (and quantity) symbols in their LaTeX spelling (``names``: more of them)."""
    return sympy.latex(expr, symbol_names={**_latex_names(formulas), **(names or {})}, mul_symbol="dot")


def text_of(expr: sympy.Expr) -> str:
    """Plain-text (Python syntax) form of ``expr``."""
    return sympy.sstr(expr)


def format_formulas(formulas: FormulaSet, fmt: str = "text", expand: bool = False,
                    substitute: dict[str, sympy.Expr] | None = None, collect: str | None = None,
                    values: dict[str, int] | None = None, with_sizes: bool = False,
                    line_width: float | None = None) -> str:
    """Every quantity of ``formulas`` with its definition, source and a symbol table.

    Args:
        formulas: the formula set to print.
        fmt: one of ``FORMATS``.
        expand: also print each quantity over the inputs alone, defaults applied
            (``d_ff = 4 d_model``, quantities inlined) and multiplied out.
        substitute: input name -> expression put in its place everywhere (e.g. ``d_ff`` ->
            ``4 d_model``); implies the expanded line.
        collect: an input name to collect the expanded line by (implies the expanded line).
        values: sizes of a named model, listed under the symbol table (visibly in LaTeX too).
        with_sizes: with ``values``, also print each quantity evaluated at them.
        line_width: LaTeX only: the width in pt every line must fit (``parse_line_width``; default
            ``LINE_WIDTH_PT``, one column of ``article``). LaTeX also leaves out the quantities that
            are identically 0 for this model and names each ``Piecewise`` (see ``_latex``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    subs = {SYMBOLS[k].symbol: v for k, v in (substitute or {}).items()}
    rows = []  # (quantity, its expression over the inputs before it is multiplied out, or None)
    for q in formulas.quantities.values():
        over_inputs = None
        if expand or subs or collect:
            inner = formulas.inline(q.definition).xreplace(subs)
            # inputs the model gives (its sizes) or the caller substitutes stay symbols; defaults fill only the rest
            over_inputs = formulas.apply(inner, set(values or {}) | set(substitute or {}))
        rows.append((q.__class__(**{**q.__dict__, "definition": q.definition.xreplace(subs)}) if subs else q,
                     over_inputs))
    used = sorted(
        {s.name for q in formulas.quantities.values() for s in formulas.expanded(q.name).free_symbols},
        key=list(SYMBOLS).index,
    )
    omitted, width = set(), LINE_WIDTH_PT if line_width is None else line_width
    if fmt == "latex":
        omitted = identically_zero(formulas)
        text = _latex(formulas, rows, used, collect, width, omitted)
    else:
        rows = [(q, None if e is None else _multiplied_out(e, collect)) for q, e in rows]
        text = {"text": _text, "markdown": _markdown}[fmt](formulas, rows, used)
    if values:
        listed = ", ".join(f"{k} = {v}" for k, v in values.items())
        if fmt == "latex":  # visible in the document, not only in a comment
            shown = ", ".join(f"${SYMBOLS[k].latex if k in SYMBOLS else _tex_escape(k)} = {v}$"
                              for k, v in values.items())
            text += _tex_comment(f"values: {listed}") + "\n" + f"{{\\raggedright\\noindent Sizes: {shown}.\\par}}\n"
        else:
            prefix = {"text": "Values: ", "markdown": "\nValues: "}[fmt]
            text += f"{prefix}{listed}\n"
        if with_sizes:
            text += _evaluated(formulas, values, fmt, omitted, width)
    return text


def _multiplied_out(expr: sympy.Expr, collect: str | None) -> sympy.Expr:
    """The expanded line: ``expr`` multiplied out, collected by the input ``collect`` if given."""
    expanded = sympy.expand(expr)
    return sympy.collect(expanded, SYMBOLS[collect].symbol) if collect else expanded


def identically_zero(formulas: FormulaSet) -> set[str]:
    """The quantities that are 0 for this model whatever the inputs (inlined, their definition is 0): the
    router and experts of a dense model, the master copy without mixed precision, ..."""
    return {name for name in formulas.quantities if formulas.expanded(name) == 0}


def _evaluated(formulas: FormulaSet, values: dict[str, int], fmt: str, omitted: set[str] = frozenset(),
               line_width: float = LINE_WIDTH_PT) -> str:
    """Each quantity evaluated at ``values`` (exact integers with separators); what still lacks an input says so.

    LaTeX leaves out the ``omitted`` quantities (identically 0) and names a missing input by its symbol.
    """
    rows = []
    for q in formulas.quantities.values():
        if q.name in omitted:
            continue
        value = formulas.evaluate_exact(q.name, values)
        missing = sorted(s.name for s in value.free_symbols)
        if missing and fmt == "latex":
            shown = "needs " + ", ".join(f"${SYMBOLS[n].latex}$" if n in SYMBOLS else _tex_escape(n) for n in missing)
        elif missing:
            shown = "needs " + ", ".join(missing)
        elif value.is_Integer:
            shown = f"{int(value):,}"
        else:
            shown = f"{float(value):.6g}"
        rows.append((q, shown, bool(missing)))
    if fmt == "text":
        width = max(len(q.name) for q, _, _ in rows)
        return "\nAt these sizes:\n" + "".join(f"  {q.name:<{width}}  {v} [{q.units}]\n" for q, v, _ in rows)
    if fmt == "markdown":
        return "\n| quantity | value | units |\n|---|---|---|\n" + "".join(
            f"| `{q.name}` | {_md_escape(v)} | {q.units} |\n" for q, v, _ in rows)
    body = [f"${q.latex}$ & {_value_cell(v, needs)} & {_tex_escape(q.units)}" for q, v, needs in rows]
    # a value that needs inputs wraps; the quantity and units columns are as wide as their widest entry
    spec = _columns((max([_text_width("quantity")] + [tex_width(q.latex) for q, _, _ in rows]), None,
                     max([_text_width("units")] + [_text_width(q.units) for q, _, _ in rows])), (0.0, 0.0, 0.0),
                    line_width)
    return "\n" + "\n".join(_tabular(spec, "quantity & value & units", body, 8)) + "\n"


def _value_cell(shown: str, needs: bool) -> str:
    """A cell of the sizes table: a number flush right, with ``{,}`` (no space after its commas); else
    what it needs, wrapped."""
    return r"\raggedright " + shown if needs else r"\raggedleft " + shown.replace(",", "{,}")


def _defaults_line(formulas: FormulaSet, name: str, style: str) -> str:
    if name not in formulas.defaults:
        return "required"
    value = formulas.defaults[name]
    if style == "latex":
        return f"${latex_of(value, formulas)}$ if not given"
    return f"{text_of(value)} if not given"


def _text(formulas: FormulaSet, rows, used) -> str:
    out = [f"Formula set {formulas.name!r}: {formulas.title}", f"Source: {formulas.source}",
           f"Options: {_options(formulas)}", ""]
    for q, expanded in rows:
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
        out.append(f"  {name:<{width}}  [{info.units}]  {info.meaning}; {_defaults_line(formulas, name, 'text')}")
    return "\n".join(out) + "\n"


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
    symbols = max([_text_width("symbol")] + [tex_width(SYMBOLS[n].latex) for n in used])
    units = max([_text_width("units")] + [_text_width(SYMBOLS[n].units) for n in used])
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


#: The letter of the named sub-quantities of a LaTeX output: kappa_1, kappa_2, ... in order of appearance.
SUB_LETTER = r"\kappa"
_PLACEHOLDER = re.compile(r"\\kappa_\{@(\d+)@\}")  # a sub-quantity before it has its number


class _SubQuantities:
    """The named sub-quantities of one LaTeX output, so that every line of it can be broken to fit.

    Each ``Piecewise`` inside a formula becomes a symbol (``SUB_LETTER`` with a number) defined in an
    equation of its own, right after the first equation that uses it; a formula that is itself a
    ``Piecewise`` keeps its ``cases``. A case's value or condition too wide for its ``cases`` block (a
    ``cases`` block is never cut) becomes a sub-quantity too, and so does a sum in a denominator wider than half a line
    (a fraction is never cut between its numerator and denominator). The same expression gets the
    same name everywhere. Numbers follow the order in which the names first appear in the output.
    """

    def __init__(self, formulas: FormulaSet, first: float, rest: float):
        self.formulas, self.first, self.rest = formulas, first, rest
        self.definitions: dict[sympy.Symbol, sympy.Expr] = {}  # in the order they were named
        self.kinds: dict[sympy.Symbol, str] = {}  # what each is: cases, a case's value or condition, a denominator
        self._by_definition: dict[sympy.Expr, sympy.Symbol] = {}
        self.numbers: dict[sympy.Symbol, int] = {}  # the printed number, once printed
        self.parents: dict[sympy.Symbol, object] = {}  # the quantity whose equations first print it
        self.pending: list[sympy.Symbol] = []  # printed in an equation, not yet defined
        self.parent = None  # the quantity being printed

    def hoist(self, expr: sympy.Expr, multiply_out=None) -> sympy.Expr:
        """``expr`` with each ``Piecewise`` in it named (a top-level one stays, its parts named);
        ``multiply_out`` is applied to each case (the expanded line)."""
        if isinstance(expr, sympy.Piecewise):
            return self._cases(expr, multiply_out)
        return self._replace(expr, multiply_out)

    def _replace(self, expr, multiply_out):
        if not isinstance(expr, sympy.Basic) or not expr.has(sympy.Piecewise):
            return expr
        if isinstance(expr, sympy.Piecewise):
            return self._name(self._cases(expr, multiply_out), "Cases")
        return expr.func(*(self._replace(arg, multiply_out) for arg in expr.args))

    def _cases(self, piecewise: sympy.Piecewise, multiply_out) -> sympy.Piecewise:
        """``piecewise`` with what is inside it named and each case narrow enough for its ``cases`` block."""
        cases = []
        for value, condition in piecewise.args:
            value = self._replace(value, multiply_out)
            cases.append([multiply_out(value) if multiply_out else value, self._replace(condition, multiply_out)])
        kinds = ("A case's value", "A condition")
        while self._width(sympy.Piecewise(*cases, evaluate=False)) > self.first:
            wide = [(c, k) for c in cases for k in (0, 1) if not (c[k].is_Atom or c[k] in self.definitions)]
            if not wide:
                break  # every value and condition a symbol already
            case, k = max(wide, key=lambda ck: self._width(ck[0][ck[1]]))
            case[k] = self._name(case[k], kinds[k])
        return sympy.Piecewise(*(tuple(c) for c in cases), evaluate=False)

    def name_as(self, definition: sympy.Expr, symbol: sympy.Symbol) -> None:
        """Name ``definition`` ``symbol`` (a quantity's) wherever it appears later, unless it has a name."""
        self._by_definition.setdefault(definition, symbol)

    def _name(self, definition: sympy.Expr, kind: str) -> sympy.Symbol:
        """The symbol of ``definition`` (a new one unless it has one); ``kind`` says what it is, for the reader."""
        if definition not in self._by_definition:
            symbol = sympy.Symbol(f"_sub_quantity_{len(self.definitions)}")
            self.definitions[symbol], self.kinds[symbol] = definition, kind
            self._by_definition[definition] = symbol
        return self._by_definition[definition]

    def _width(self, expr: sympy.Expr) -> float:
        return _line_width(_PLACEHOLDER.sub(r"\\kappa_{\1}", self._placeholders(expr)))

    def _placeholders(self, expr: sympy.Expr) -> str:
        names = {s: rf"{SUB_LETTER}_{{@{k}@}}" for k, s in enumerate(self.definitions)}
        return latex_of(expr, self.formulas, names)

    def _narrow(self, expr):
        """``expr`` with each sum in a denominator wider than half a line named (a fraction's denominator is never
        cut; a product's is split by ``break_latex``)."""
        if not isinstance(expr, sympy.Basic) or expr.is_Atom or not expr.has(sympy.Pow):
            return expr
        if isinstance(expr, sympy.Piecewise):
            return sympy.Piecewise(*((self._narrow(v), c) for v, c in expr.args), evaluate=False)
        args = [self._narrow(arg) for arg in expr.args]
        if expr.is_Pow and expr.exp.is_negative and args[0].is_Add and self._width(args[0]) > self.rest / 2:
            args[0] = self._name(args[0], "A denominator")
        return expr.func(*args)

    def latex(self, expr: sympy.Expr) -> str:
        """LaTeX of ``expr``: a sub-quantity seen for the first time gets the next number and waits in ``pending``."""
        expr = self._narrow(expr)
        symbols = list(self.definitions)

        def number(match: re.Match) -> str:
            symbol = symbols[int(match.group(1))]
            if symbol not in self.numbers:
                self.numbers[symbol] = len(self.numbers) + 1
                self.parents[symbol] = self.parent
                self.pending.append(symbol)
            return self.symbol_latex(symbol)

        return _PLACEHOLDER.sub(number, self._placeholders(expr))

    def symbol_latex(self, symbol: sympy.Symbol) -> str:
        return f"{SUB_LETTER}_{{{self.numbers[symbol]}}}"


def _latex(formulas: FormulaSet, rows, used, collect: str | None, line_width: float, omitted: set[str]) -> str:
    """The LaTeX output: an ``align`` block, the symbol table and the sources, every line within ``line_width`` pt.

    Quantities in ``omitted`` (identically 0) are left out, and 0 put in their place where others use
    them; each ``Piecewise`` is a named sub-quantity (``_SubQuantities``).
    """
    rows = [(q, e) for q, e in rows if q.name not in omitted]
    out = [_tex_comment(f"llm-sweep formulas: {formulas.name} -- {formulas.title}"),
           _tex_comment(f"source: {formulas.source}; options: {_options(formulas)}"),
           r"% needs \usepackage{amsmath} (align); otherwise plain LaTeX: \documentclass{article} compiles it"]
    if omitted:
        out.append(_tex_comment("identically 0 for this model, left out: " +
                                ", ".join(n for n in formulas.quantities if n in omitted)))
    out += [_tex_comment(f"lines fit {line_width:g}pt"),
            r"\begingroup\allowdisplaybreaks  % a long align may break across pages", r"\begin{align}"]
    # the align's left column is as wide as its widest left-hand side, on every row
    lhs = max(tex_width(x) for x in [q.latex for q, _ in rows] + [rf"{SUB_LETTER}_{{99}}"])
    room = line_width - lhs - TAG_ROOM_PT
    first, rest = room - tex_width("{}={}"), room - tex_width(r"\quad")
    subs = _SubQuantities(formulas, first, rest)
    zeros = {formulas.quantities[name].symbol: sympy.Integer(0) for name in omitted}
    out += _align(_equations(formulas, rows, zeros, collect, subs), first, rest)
    out += [r"\end{align}\endgroup", "", *_symbol_table(formulas, used, line_width), ""]
    out += [r"\begin{description}\raggedright", *_descriptions(rows, subs), r"\end{description}"]
    return "\n".join(out) + "\n"


def _equations(formulas: FormulaSet, rows, zeros: dict, collect: str | None, subs: "_SubQuantities"):
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
            expanded = subs.hoist(over_inputs, lambda e: _multiplied_out(e, collect))
            if not isinstance(expanded, sympy.Piecewise):  # its cases are multiplied out already
                expanded = _multiplied_out(expanded, collect)
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
            out.append(line + end + ("  " + _tex_comment(comment) if last else ""))
    return out


def _symbol_table(formulas: FormulaSet, used: list[str], line_width: float) -> list[str]:
    """Symbol, meaning (with the default) and units of each input, a ``tabular`` per row (``_tabular``)."""
    rows = []
    for name in used:
        info = SYMBOLS[name]
        meaning = _tex_prose(info.meaning) + "; " + _defaults_line(formulas, name, "latex")
        rows.append(rf"${info.latex}$ & \raggedright {meaning} & {_tex_escape(info.units)}")
    return _tabular(_table_spec(used, line_width), "symbol & meaning & units", rows, 1)


def _descriptions(rows, subs: "_SubQuantities") -> list[str]:
    """A ``description`` item per quantity (its name, source and note) and per sub-quantity (what it is part of)."""
    out = []
    for q, _ in rows:
        note = f" Note: {_tex_prose(q.note)}." if q.note else ""
        out.append(rf"  \item[{{${q.latex}$}}] {_tex_prose(q.long_name)}. Source: {_tex_prose(q.source)}.{note}")
    for symbol in subs.numbers:
        parent = subs.parents[symbol]
        out.append(rf"  \item[{{${subs.symbol_latex(symbol)}$}}] {subs.kinds[symbol]} within ${parent.latex}$ "
                   rf"({_tex_escape(parent.name)}), named to fit the line; source as there.")
    return out


# --- long equations: an estimate of the rendered width, and line breaks --------------------------

#: Room kept on each ``align`` row for its equation number ``(99)`` and the gap before it.
TAG_ROOM_PT = 30.0

# Advance widths in pt of Computer Modern at 10pt as TeX sets them in math: italic letters (cmmi10,
# with their italic correction) and upright ones (cmr10). Scripts are set at about 80% of these.
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ITALIC = dict(zip(_LETTERS, (
    5.3, 4.3, 4.3, 5.2, 4.7, 6.0, 5.1, 5.8, 3.4, 4.7, 5.5, 3.2, 8.8, 6.0, 4.8, 5.0, 4.8, 4.8, 4.7, 3.6,
    5.7, 5.2, 7.4, 5.7, 5.3, 5.1, 7.5, 8.1, 7.9, 8.6, 8.0, 7.8, 7.9, 9.1, 5.2, 6.5, 9.2, 6.8, 10.8, 9.1,
    7.9, 7.8, 7.9, 7.7, 6.7, 7.2, 7.9, 8.1, 10.8, 9.1, 8.0, 7.5)))
_ROMAN = dict(zip(_LETTERS, (
    5.0, 5.6, 4.4, 5.6, 4.4, 3.8, 5.1, 5.6, 2.8, 3.1, 5.3, 2.8, 8.3, 5.6, 5.0, 5.6, 5.3, 3.9, 3.9, 3.9,
    5.6, 5.4, 7.4, 5.3, 5.4, 4.4, 7.5, 7.1, 7.2, 7.6, 6.8, 6.5, 7.8, 7.5, 3.6, 5.1, 7.8, 6.3, 9.2, 7.5,
    7.8, 6.8, 7.8, 7.4, 5.6, 7.2, 7.5, 7.6, 10.4, 7.5, 7.8, 6.1)))
_CHAR = {"+": 7.8, "-": 7.8, "=": 7.8, "<": 7.8, ">": 7.8, "(": 3.9, ")": 3.9, "[": 2.8, "]": 2.8,
         "|": 2.8, ",": 2.8, ".": 2.8, ";": 2.8, ":": 2.8, "/": 5.0, "!": 2.8, "'": 2.8, "*": 5.0}
_SPACE = {r"\ ": 3.3, r"\,": 1.7, r"\:": 2.2, r"\;": 2.8, r"\!": -1.7, r"\quad": 10.0, r"\qquad": 20.0,
          r"\notag": 0.0, r"\nonumber": 0.0, r"\displaystyle": 0.0}
_DELIM = {"(": 3.9, ")": 3.9, "[": 2.8, "]": 2.8, ".": 1.2, "|": 2.8, r"\{": 5.0, r"\}": 5.0}
_FONTS = {r"\mathrm": True, r"\text": True, r"\operatorname": True, r"\mathbf": True, r"\mathit": False}
_FRACS = (r"\frac", r"\dfrac", r"\tfrac", r"\binom")
#: ``\max``, ``\log``, ...: their name in upright letters; a thin space follows before ``\left(``
_OPERATORS = {rf"\{name}": sum(_ROMAN[c] for c in name) for name in (
    "max", "min", "log", "ln", "exp", "sin", "cos", "tan", "sup", "inf", "lim", "det", "gcd", "deg", "dim", "arg")}
_RELATIONS = (r"\geq", r"\leq", r"\neq", r"\approx", r"\sim", r"\equiv", r"\ll", r"\gg", r"\ge", r"\le")
#: ``\left( ... \right)`` around a display fraction: TeX picks a taller, wider parenthesis (``\bigg``)
_TALL_DELIM = {"(": 7.4, ")": 7.4, "[": 5.4, "]": 5.4, r"\{": 8.1, r"\}": 8.1, "|": 3.3}
_BIN, _REL, _PUNCT = 2 * 2.2, 2 * 2.8, 1.7  # medmuskip, thickmuskip (both sides), thinmuskip (after)
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|.", re.S)


class _Node:
    """An item of a math list: a ``char``, a ``cmd``, a ``{...}`` ``group``, a ``\\left ... \\right``
    ``pair`` or an ``env`` (``\\begin{cases} ... \\end{cases}``: its rows, never cut)."""

    __slots__ = ("kind", "text", "start", "end", "children", "inner")

    def __init__(self, kind: str, text, start: int, end: int, children=(), inner=(0, 0)):
        self.kind, self.text, self.start, self.end = kind, text, start, end
        self.children, self.inner = list(children), inner  # inner: the span inside the braces or delimiters


def _parse(tex: str) -> list[_Node]:
    """The top-level items of ``tex`` (their spans index into ``tex``); ``ValueError`` when unbalanced."""
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(tex)]
    pos = 0

    def delimiter() -> str:
        nonlocal pos
        while pos < len(tokens) and tokens[pos][0].isspace():
            pos += 1
        if pos >= len(tokens):
            raise ValueError(f"\\left or \\right without a delimiter in {tex!r}")
        pos += 1
        return tokens[pos - 1][0]

    def items(closer: str | None) -> list[_Node]:
        nonlocal pos
        out = []
        while pos < len(tokens):
            tok, start, end = tokens[pos]
            if tok == closer:
                return out
            if tok in ("}", r"\right", r"\end"):
                raise ValueError(f"unbalanced {tok} in {tex!r}")
            pos += 1
            if tok == "{":
                kids = items("}")
                pos += 1
                out.append(_Node("group", "{}", start, tokens[pos - 1][2], kids, (end, tokens[pos - 1][1])))
            elif tok == r"\begin":  # an environment (sympy: cases for Piecewise): one unbreakable item
                m = re.compile(r"\\begin\s*\{([^{}]*)\}").match(tex, start)
                if m is None:
                    raise ValueError(f"\\begin without a name in {tex!r}")
                while pos < len(tokens) and tokens[pos][1] < m.end():
                    pos += 1
                kids = items(r"\end")
                body_end = tokens[pos][1]
                m_end = re.compile(r"\\end\s*\{" + re.escape(m.group(1)) + r"\}").match(tex, body_end)
                if m_end is None:
                    raise ValueError(f"\\begin{{{m.group(1)}}} without its \\end in {tex!r}")
                while pos < len(tokens) and tokens[pos][1] < m_end.end():
                    pos += 1
                out.append(_Node("env", m.group(1), start, m_end.end(), kids, (m.end(), body_end)))
            elif tok == r"\left":
                opening = delimiter()
                inner_start = tokens[pos - 1][2]
                kids = items(r"\right")
                inner_end = tokens[pos][1]
                pos += 1
                closing = delimiter()
                out.append(_Node("pair", (opening, closing), start, tokens[pos - 1][2], kids,
                                 (inner_start, inner_end)))
            else:
                out.append(_Node("char" if len(tok) == 1 else "cmd", tok, start, end))
        if closer is not None:
            raise ValueError(f"missing {closer} in {tex!r}")
        return out

    return items(None)


def _argument(nodes: list[_Node], i: int) -> tuple[_Node | None, int]:
    while i < len(nodes) and nodes[i].kind == "char" and nodes[i].text.isspace():
        i += 1
    return (nodes[i], i + 1) if i < len(nodes) else (None, i)


def _glyph(node: _Node, roman: bool) -> float:
    if node.kind == "cmd":
        return _SPACE.get(node.text, 6.0)  # Greek letters, \infty, ...: about 6pt
    if node.text.isalpha():
        return (_ROMAN if roman else _ITALIC).get(node.text, 7.0)
    return 5.0 if node.text.isdigit() else _CHAR.get(node.text, 5.0)


def _node_width(node: _Node | None, scale: float, roman: bool) -> float:
    if node is None:
        return 0.0
    if node.kind == "group":
        return _width(node.children, scale, roman)
    if node.kind == "pair":
        sizes = _TALL_DELIM if scale == 1.0 and _has_fraction(node.children) else _DELIM
        delims = sum(sizes.get(d, _DELIM.get(d, 4.0)) for d in node.text)
        return scale * delims + _width(node.children, scale, roman)
    if node.kind == "env":  # its columns, each as wide as its widest cell (rows end at \\, cells at &), a brace
        return _env_width(node, scale, roman)
    return scale * _glyph(node, roman)


def _env_width(node: _Node, scale: float, roman: bool) -> float:
    """Width of a ``cases`` (or other array) block: its columns, each as wide as its widest cell, a ``\\quad``
    between them, and the brace."""
    columns: list[float] = []
    cells: list[list[_Node]] = [[]]
    for child in node.children + [_Node("cmd", "\\\\", 0, 0)]:
        if child.kind == "char" and child.text == "&":
            cells.append([])
        elif child.kind == "cmd" and child.text == "\\\\":
            for k, cell in enumerate(cells):
                w = _width(cell, scale, roman)
                columns[k:k + 1] = [max(columns[k], w) if k < len(columns) else w]
            cells = [[]]
        else:
            cells[-1].append(child)
    return sum(columns) + 10.0 * scale * (len(columns) - 1) + 12.0 * scale


def _has_fraction(nodes: list[_Node]) -> bool:
    """Whether a math list holds a fraction outside any script (or a ``cases`` block): a tall one."""
    i = 0
    while i < len(nodes):
        node = nodes[i]
        i += 1
        if node.kind == "char" and node.text in "^_":
            _, i = _argument(nodes, i)  # a script's fraction is small
        elif node.kind == "env" or node.text in _FRACS:
            return True
        elif node.kind in ("group", "pair") and _has_fraction(node.children):
            return True
    return False


def _script(scale: float) -> float:
    """The size of a script (or of a fraction's parts in a script) relative to 10pt."""
    return 0.8 if scale == 1.0 else 0.65


def _width(nodes: list[_Node], scale: float = 1.0, roman: bool = False) -> float:
    """Estimated width in pt of a math list in display style at 10pt (``scale`` < 1: in a script)."""
    display = scale == 1.0  # TeX drops the spaces around operators in scripts
    total, atom_before, script = 0.0, False, None  # script: width of the sub/superscript just set
    inner_before = False  # a fraction or \left ... \right just set: a thin space between it and an atom
    i = 0
    while i < len(nodes):
        node, text = nodes[i], nodes[i].text
        i += 1
        if node.kind == "char" and text.isspace():
            continue
        if node.kind == "char" and text in "^_":
            arg, i = _argument(nodes, i)
            w = _node_width(arg, _script(scale), roman) + 0.5  # plus \scriptspace
            total += w if script is None else max(0.0, w - script)  # a sub- and a superscript stack
            script = w if script is None else max(w, script)
            continue
        script, atom = None, True
        if node.kind in ("group", "pair"):
            w = _node_width(node, scale, roman)
        elif text in _FONTS:
            arg, i = _argument(nodes, i)
            w = _node_width(arg, scale, _FONTS[text])
        elif text in _FRACS:
            num, i = _argument(nodes, i)
            den, i = _argument(nodes, i)
            inner = scale if display and text != r"\tfrac" else _script(scale)
            w = max(_node_width(num, inner, roman), _node_width(den, inner, roman)) + 2.4 * scale
        elif text in (r"\vphantom", r"\phantom", r"\hphantom"):  # a box: an atom (a - after it is binary)
            arg, i = _argument(nodes, i)
            w = 0.0 if text == r"\vphantom" else _node_width(arg, scale, roman)
        elif text == r"\sqrt":
            arg, i = _argument(nodes, i)
            w = _node_width(arg, scale, roman) + 8.3 * scale
        elif text == r"\bmod":  # "mod" with 5mu on either side and the spaces of a binary operator
            w, atom = scale * 24.7, False
        elif text in (r"\vee", r"\wedge", r"\cup", r"\cap"):
            w, atom = scale * (6.7 + (_BIN if display and atom_before else 0.0)), False
        elif text in (r"\cdot", r"\times", r"\pm", r"\mp") or (node.kind == "char" and text in "+-"):
            w = scale * ((2.8 if text == r"\cdot" else 7.8) + (_BIN if display and atom_before else 0.0))
            atom = False
        elif text in _OPERATORS:
            w = scale * (_OPERATORS[text] + (1.7 if display else 0.0))
        elif text in _RELATIONS:
            w, atom = scale * (7.8 + (_REL if display else 0.0)), False
        elif node.kind == "char" and text in "=<>":
            w, atom = scale * (7.8 + (_REL if display else 0.0)), False
        elif node.kind == "char" and text in ",;":
            w, atom = scale * (2.8 + (_PUNCT if display else 0.0)), False
        elif text in _SPACE:
            w, atom = scale * _SPACE[text], atom_before
        else:
            w = _node_width(node, scale, roman)
        inner = node.kind == "pair" or text in _FRACS
        if display and atom and atom_before and (inner or inner_before):
            w += 1.7  # TeX's thin space between an Inner atom and an Ord, Op or Inner one
        total += w
        atom_before, inner_before = atom, inner
    return total


def tex_width(tex: str) -> float:
    """Rough width in pt of the math ``tex`` in display style at 10pt (Computer Modern).

    Counts letters, digits and operators with their glyph widths and the spaces TeX puts around
    binary operators and relations; sub- and superscripts at 80% (65% in second-level scripts),
    fractions as their wider part. Good to a few percent for sympy's output.
    """
    return _width(_parse(tex))


def _text_width(text: str) -> float:
    """Rough width in pt of plain ``text`` in upright Computer Modern at 10pt (cmr10), as a table cell sets it."""
    return sum(_ROMAN.get(c, 5.0) if c.isalpha() else 3.3 if c == " " else 5.0 if c.isdigit() else _CHAR.get(c, 5.0)
               for c in text)


def break_latex(tex: str, first: float, rest: float) -> list[str]:
    """``tex`` (sympy's LaTeX of one expression) cut into ``align`` lines that fit.

    The first line gets at most ``first`` pt, each later one ``rest`` pt (as estimated by
    ``tex_width``), where the expression allows. Cuts go, in this order of preference:

    * before a top-level ``+`` or ``-`` (a sum term by term, greedily: as many terms on a line as fit);
    * before a top-level ``\\cdot`` (a long product);
    * inside the widest ``\\left( ... \\right)`` of a single long term: its lines closed with
      ``\\right.`` and reopened with ``\\left.``, so every line is balanced;
    * a wide ``\\frac{A}{B}`` is set as ``\\frac{1}{B} \\left(A\\right)`` (or ``\\frac{1}{B} \\cdot A``),
      a wide ``\\sqrt{A}`` as ``\\left(A\\right)^{\\frac{1}{2}}``, and cut as above.

    Cuts of the first two kinds change nothing: the lines joined by single spaces are ``tex``.
    Each later line starts with its operator (``+ x``, ``- x``, ``\\cdot x``), ready for ``&\\quad``.
    An unbreakable piece (one long symbol) stays whole, however wide.
    """
    try:
        return _break(tex, first, rest)
    except ValueError:  # not balanced: not sympy's output; print it whole
        return [tex]


def _line_width(line: str) -> float:
    return tex_width("{}" + line)  # a leading + or - is binary after the ``{}`` that align puts first


def _break(tex: str, first: float, rest: float, mid_line: bool = False) -> list[str]:
    """``break_latex``'s cuts; ``mid_line``: ``tex`` would follow other text on its first line, and may rather
    start on the next (a pair whose first term fits there is then not cut)."""
    if _line_width(tex) <= first:
        return [tex]
    nodes = _parse(tex)
    # the arguments of \max( ... ): cut after each comma but a last one
    commas = [n.end for n in nodes if n.kind == "char" and n.text == "," and tex[n.end:].strip()]
    for cuts in (commas, _cuts(nodes, (r"\vee", r"\wedge")), _cuts(nodes, ("+", "-")),
                 _cuts(nodes, (r"\cdot", r"\times"))):
        if cuts:
            bounds = [0, *cuts, len(tex)]
            return _pack([tex[a:b].strip() for a, b in zip(bounds, bounds[1:])], first, rest)
    lines = _break_pair(tex, nodes, first, rest, mid_line)
    if lines is not None:
        return lines
    rewritten = _split_fraction(tex, nodes) or _split_denominator(tex, nodes) or _split_root(tex, nodes)
    if rewritten is not None:
        return _break(rewritten, first, rest, mid_line)
    return [tex]


def _cuts(nodes: list[_Node], ops: tuple[str, ...]) -> list[int]:
    """Offsets of the top-level binary operators ``ops`` (not a leading sign)."""
    cuts, operand_before = [], False
    for node in nodes:
        if node.kind == "char" and node.text.isspace():
            continue
        is_op = node.kind in ("char", "cmd") and node.text in ops
        if is_op and operand_before:
            cuts.append(node.start)
        operand_before = not is_op and not (node.kind == "char" and node.text in "+-=")
    return cuts


def _pack(pieces: list[str], first: float, rest: float) -> list[str]:
    """Greedy lines of ``pieces`` (joined by spaces); a piece too wide for a line is broken itself."""
    lines: list[str] = []
    line, budget = "", first
    for piece in pieces:
        joined = f"{line} {piece}" if line else piece
        if _line_width(joined) <= budget:
            line = joined
            continue
        if line and _line_width(piece) <= rest:  # fits on a line of its own
            lines.append(line)
            line, budget = piece, rest
            continue
        # too wide for any line: break it, starting on this line if its first part fits there
        room = budget - _line_width(line) - 3.3
        sub = _break(piece, room, rest, mid_line=True) if line and room > 0.25 * rest else None
        if sub is not None and len(sub) > 1 and _line_width(sub[0]) <= room:
            sub[0] = f"{line} {sub[0]}"
        else:
            if line:
                lines.append(line)
                budget = rest
            sub = _break(piece, budget, rest)
            if budget < rest and not _fits(sub, budget, rest):  # at the start of a short first line: on the next
                lines.append("")
                budget, sub = rest, _break(piece, rest, rest)
        lines.extend(sub[:-1])
        line = sub[-1]
        budget = budget if len(sub) == 1 else rest
    lines.append(line)
    return lines


def _fits(lines: list[str], first: float, rest: float) -> bool:
    return _line_width(lines[0]) <= first and all(_line_width(line) <= rest for line in lines[1:])


def _break_pair(tex: str, nodes: list[_Node], first: float, rest: float, mid_line: bool = False) -> list[str] | None:
    """Lines cut inside the widest top-level ``\\left ... \\right`` of ``tex``; None if that does not help.

    Each line closes what it opened with ``\\right.`` and the next reopens it with ``\\left.``; when
    the content holds a fraction, every line gets a ``\\vphantom`` of one, so that the delimiters of
    all lines come out the same size.
    """
    pairs = [n for n in nodes if n.kind == "pair"]
    if not pairs:
        return None
    pair = max(pairs, key=lambda n: n.end - n.start)
    (a, b), (start, end) = pair.inner, pair.inner
    content = [n for n in pair.children if not (n.kind == "char" and n.text.isspace())]
    if len(content) == 1 and content[0].kind == "group":  # \left\lceil{x + y}\right\rceil: braces dropped
        (a, b), start, end = content[0].inner, content[0].start, content[0].end
    head, inner, tail = tex[:start], tex[a:b].strip(), tex[end:]
    strut = r"\vphantom{\frac{1}{1}} " if r"\frac" in inner else ""
    head += strut
    open_width = _line_width(head + r" \right.")
    close_width = _line_width(r"\left. " + tail)
    if open_width > 0.75 * first:
        return None
    cuts = _cuts(_parse(inner), ("+", "-"))
    if mid_line and cuts and first < _line_width(head + inner[:cuts[0]].strip() + r" \right.") <= rest:
        return None  # its first term would be cut, but fits on a new line: start the pair there
    lines = _break(inner, first - open_width, rest - close_width)
    if len(lines) < 2:
        return None
    binary = ("+", "-", r"\cdot", r"\vee", r"\wedge")  # a line that starts with one: binary after a {}
    reopen = [r"\left. " + strut + ("{} " if line.startswith(binary) else "") + line
              for line in lines[1:]]
    return ([head + lines[0] + r" \right."] + [line + r" \right." for line in reopen[:-1]]
            + [reopen[-1] + " " + tail.lstrip()])


def _split_fraction(tex: str, nodes: list[_Node]) -> str | None:
    """``tex`` with its widest top-level ``\\frac{A}{B}`` set as ``\\frac{1}{B} (A)``; None if none."""
    best = None
    for i, node in enumerate(nodes):
        if node.kind == "cmd" and node.text in (r"\frac", r"\dfrac"):
            num, j = _argument(nodes, i + 1)
            den, j = _argument(nodes, j)
            if num is None or den is None or num.kind != "group" or tex[num.inner[0]:num.inner[1]].strip() == "1":
                continue
            if best is None or den.end - node.start > best[2].end - best[0].start:
                best = (node, num, den)
    if best is None:
        return None
    node, num, den = best
    numerator = tex[num.inner[0]:num.inner[1]].strip()
    factor = (rf"\left({numerator}\right)" if _cuts(_parse(numerator), ("+", "-"))
              else rf"\cdot {numerator}")
    return f"{tex[:node.start]}\\frac{{1}}{{{tex[den.inner[0]:den.inner[1]]}}} {factor}{tex[den.end:]}"


def _split_denominator(tex: str, nodes: list[_Node]) -> str | None:
    """``tex`` with the widest top-level ``\\frac{A}{B C}`` whose denominator is a product set as
    ``\\frac{A}{B} \\cdot \\frac{1}{C}`` (cut where the two halves are about as wide); None if none."""
    best = None
    for i, node in enumerate(nodes):
        if node.kind == "cmd" and node.text in (r"\frac", r"\dfrac"):
            num, j = _argument(nodes, i + 1)
            den, j = _argument(nodes, j)
            if num is None or den is None or den.kind != "group":
                continue
            cuts = _cuts(den.children, (r"\cdot",))
            if cuts and (best is None or den.end - den.start > best[1].end - best[1].start):
                best = (node, den, cuts)
    if best is None:
        return None
    node, den, cuts = best
    a, b = den.inner
    half = tex_width(tex[a:b]) / 2
    cut = min(cuts, key=lambda c: abs(tex_width(tex[a:c]) - half))
    upper, lower = tex[a:cut].strip(), tex[cut:b].strip().removeprefix(r"\cdot").strip()
    return f"{tex[:den.start]}{{{upper}}} \\cdot \\frac{{1}}{{{lower}}}{tex[den.end:]}"


def _split_root(tex: str, nodes: list[_Node]) -> str | None:
    """``tex`` with its widest top-level ``\\sqrt{A}`` set as ``\\left(A\\right)^{\\frac{1}{2}}``; None if none."""
    roots = []
    for i, node in enumerate(nodes):
        arg, _ = _argument(nodes, i + 1)
        if node.kind == "cmd" and node.text == r"\sqrt" and arg is not None and arg.kind == "group":
            roots.append((node, arg))
    if not roots:
        return None
    node, arg = max(roots, key=lambda r: r[1].end - r[0].start)
    inner = tex[arg.inner[0]:arg.inner[1]].strip()
    return f"{tex[:node.start]}\\left({inner}\\right)^{{\\frac{{1}}{{2}}}}{tex[arg.end:]}"


def _markdown(formulas: FormulaSet, rows, used) -> str:
    out = [f"## Formula set `{formulas.name}`: {formulas.title}", "", f"Source: {formulas.source}. "
           f"Options: {_options(formulas)}.", "", "| quantity | formula | units | source |", "|---|---|---|---|"]
    for q, expanded in rows:
        formula = f"${q.latex} = {latex_of(q.definition, formulas)}$"
        if expanded is not None and expanded != q.definition:
            formula += f" $= {latex_of(expanded, formulas)}$"
        source = q.source + (f" (note: {q.note})" if q.note else "")
        out.append(f"| `{q.name}` | {_md_escape(formula)} | {_md_escape(q.units)} | {_md_escape(source)} |")
    out += ["", "| symbol | name | meaning | units |", "|---|---|---|---|"]
    for name in used:
        info = SYMBOLS[name]
        meaning = f"{info.meaning}; {_defaults_line(formulas, name, 'latex')}"
        out.append(f"| ${info.latex}$ | `{name}` | {_md_escape(meaning)} | {_md_escape(info.units)} |")
    return "\n".join(out) + "\n"


def _options(formulas: FormulaSet) -> str:
    if not formulas.options:
        return "none"
    return ", ".join(f"{k} = {show_value(v, quote=False)}" for k, v in formulas.options.items())


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


def _tex_escape(text: str) -> str:
    """``text`` as LaTeX text: special characters escaped, ASCII arrows as math arrows, one line.

    Safe under the default OT1 font encoding (where a raw ``<`` prints as an inverted exclamation
    mark) with no packages: every replacement is a LaTeX2e kernel command.
    """
    return _TEX_TEXT_RE.sub(lambda m: _TEX_TEXT[m.group(0)], str(text))


def _tex_prose(text: str) -> str:
    """``text`` escaped (``_tex_escape``), a line break allowed after each ``_`` and ``/``: a file name such as
    ``megatron/core/transformer/moe/token_dispatcher.py`` is one word, wider than a two-column line."""
    return re.sub(r"(\\_|/)", r"\1\\allowbreak{}", _tex_escape(text))


def _tex_comment(text: str) -> str:
    """``text`` as one LaTeX comment line: a newline in it would end the comment early."""
    return "% " + " ".join(str(text).splitlines())


def _md_escape(text: str) -> str:
    """``text`` for a Markdown table cell: ``|`` escaped, newlines (which would end the row) as spaces."""
    return " ".join(str(text).splitlines()).replace("|", r"\|")
