"""Formulas as text, LaTeX or Markdown, with sources and a symbol table (pure sympy).

Every printed formula is the quantity's own definition (the one the kernel evaluates), so a
printed formula and a computed number cannot disagree.
"""

from __future__ import annotations

import re

import sympy

from engine.symbolic.formulas import FormulaSet
from engine.symbolic.formulas.base import show_value
from engine.symbolic.symbols import SYMBOLS

FORMATS = ("text", "latex", "markdown")


def _latex_names(formulas: FormulaSet | None = None) -> dict[sympy.Symbol, str]:
    names = {info.symbol: info.latex for info in SYMBOLS.values()}
    if formulas is not None:
        names.update({q.symbol: q.latex for q in formulas.quantities.values()})
    return names


def latex_of(expr: sympy.Expr, formulas: FormulaSet | None = None) -> str:
    """LaTeX of ``expr`` with registry (and quantity) symbols in their LaTeX spelling."""
    return sympy.latex(expr, symbol_names=_latex_names(formulas), mul_symbol="dot")


def text_of(expr: sympy.Expr) -> str:
    """Plain-text (Python syntax) form of ``expr``."""
    return sympy.sstr(expr)


def format_formulas(formulas: FormulaSet, fmt: str = "text", expand: bool = False,
                    substitute: dict[str, sympy.Expr] | None = None, collect: str | None = None,
                    values: dict[str, int] | None = None, with_sizes: bool = False) -> str:
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
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    subs = {SYMBOLS[k].symbol: v for k, v in (substitute or {}).items()}
    rows = []
    for q in formulas.quantities.values():
        expanded = None
        if expand or subs or collect:
            inner = formulas.inline(q.definition).xreplace(subs)
            # inputs the model gives (its sizes) or the caller substitutes stay symbols; defaults fill only the rest
            expanded = sympy.expand(formulas.apply(inner, set(values or {}) | set(substitute or {})))
            if collect:
                expanded = sympy.collect(expanded, SYMBOLS[collect].symbol)
        rows.append((q.__class__(**{**q.__dict__, "definition": q.definition.xreplace(subs)}) if subs else q,
                     expanded))
    used = sorted(
        {s.name for q in formulas.quantities.values() for s in formulas.expanded(q.name).free_symbols},
        key=list(SYMBOLS).index,
    )
    text = {"text": _text, "latex": _latex, "markdown": _markdown}[fmt](formulas, rows, used)
    if values:
        listed = ", ".join(f"{k} = {v}" for k, v in values.items())
        if fmt == "latex":  # visible in the document, not only in a comment
            shown = ", ".join(f"${SYMBOLS[k].latex if k in SYMBOLS else _tex_escape(k)} = {v}$"
                              for k, v in values.items())
            text += _tex_comment(f"values: {listed}") + "\n" + f"\\noindent Sizes: {shown}.\n"
        else:
            prefix = {"text": "Values: ", "markdown": "\nValues: "}[fmt]
            text += f"{prefix}{listed}\n"
        if with_sizes:
            text += _evaluated(formulas, values, fmt)
    return text


def _evaluated(formulas: FormulaSet, values: dict[str, int], fmt: str) -> str:
    """Each quantity evaluated at ``values`` (exact integers with separators); what still lacks an input says so."""
    rows = []
    for q in formulas.quantities.values():
        value = formulas.evaluate_exact(q.name, values)
        if value.free_symbols:
            shown = "needs " + ", ".join(sorted(s.name for s in value.free_symbols))
        elif value.is_Integer:
            shown = f"{int(value):,}"
        else:
            shown = f"{float(value):.6g}"
        rows.append((q, shown))
    if fmt == "text":
        width = max(len(q.name) for q, _ in rows)
        return "\nAt these sizes:\n" + "".join(f"  {q.name:<{width}}  {v} [{q.units}]\n" for q, v in rows)
    if fmt == "markdown":
        return "\n| quantity | value | units |\n|---|---|---|\n" + "".join(
            f"| `{q.name}` | {_md_escape(v)} | {q.units} |\n" for q, v in rows)
    body = "".join(f"  ${q.latex}$ & {_tex_escape(v).replace(',', '{,}')} & {_tex_escape(q.units)} \\\\\n"
                   for q, v in rows)
    return "\n\\noindent\\begin{tabular}{lrl}\n  quantity & value & units \\\\ \\hline\n" + body + \
        "\\end{tabular}\n"


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
#: also loses its two ``\tabcolsep`` paddings, so the table is exactly ``\linewidth`` wide.
TABLE_COLUMNS = (0.18, 0.70, 0.12)


def _table_spec() -> str:
    cols = "".join(rf"p{{\dimexpr {f:g}\linewidth-2\tabcolsep\relax}}" for f in TABLE_COLUMNS)
    return "{" + cols + "}"


def _latex(formulas: FormulaSet, rows, used) -> str:
    out = [_tex_comment(f"llm-sweep formulas: {formulas.name} -- {formulas.title}"),
           _tex_comment(f"source: {formulas.source}; options: {_options(formulas)}"),
           r"% needs \usepackage{amsmath} (align); otherwise plain LaTeX: \documentclass{article} compiles it",
           r"\begingroup\allowdisplaybreaks  % a long align may break across pages",
           r"\begin{align}"]
    # the align's left column is as wide as its widest left-hand side, on every row
    room = LINE_WIDTH_PT - max((tex_width(q.latex) for q, _ in rows), default=0.0) - TAG_ROOM_PT
    first, rest = room - tex_width("{}={}"), room - tex_width(r"\quad")
    for i, (q, expanded) in enumerate(rows):
        equations = [(q.latex, latex_of(q.definition, formulas))]
        if expanded is not None and expanded != q.definition:
            equations.append(("", latex_of(expanded, formulas)))
        rendered = []  # long right-hand sides cut into lines that fit: `lhs &= ...`, then `&\quad + ...`
        for lhs, rhs in equations:
            pieces = break_latex(rhs, first, rest)
            for k, piece in enumerate(pieces):
                head = (f"{lhs} &= " if lhs else "&= ") if k == 0 else r"&\quad "
                # one equation number per equation, on its last line (where multline puts it)
                rendered.append("  " + head + piece + ("" if k == len(pieces) - 1 else r" \notag"))
        for k, line in enumerate(rendered):
            last = k == len(rendered) - 1
            end = r" \\" if not last or i < len(rows) - 1 else ""
            out.append(line + end + ("  " + _tex_comment(f"{q.name}: {q.source}") if last else ""))
    out.append(r"\end{align}\endgroup")
    out += ["", r"\noindent\begin{tabular}" + _table_spec(), r"  symbol & meaning & units \\ \hline"]
    for name in used:
        info = SYMBOLS[name]
        meaning = _tex_escape(info.meaning) + "; " + _defaults_line(formulas, name, "latex")
        out.append(rf"  ${info.latex}$ & \raggedright {meaning} & {_tex_escape(info.units)} \\")
    out += [r"\end{tabular}", "", r"\begin{description}\raggedright"]
    for q, _ in rows:
        note = f" Note: {_tex_escape(q.note)}." if q.note else ""
        out.append(rf"  \item[{{${q.latex}$}}] {_tex_escape(q.long_name)}. Source: {_tex_escape(q.source)}.{note}")
    out.append(r"\end{description}")
    return "\n".join(out) + "\n"


# --- long equations: an estimate of the rendered width, and line breaks --------------------------

#: ``\textwidth`` of a plain ``\documentclass{article}`` at 10pt (345pt on A4 and US letter alike).
LINE_WIDTH_PT = 345.0
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
        delims = sum(_DELIM.get(d, 4.0) for d in node.text)
        return scale * delims + _width(node.children, scale, roman)
    if node.kind == "env":  # the widest row (rows end at \\, cells at &), a brace, gaps between cells
        rows, row = [], []
        for child in node.children + [_Node("cmd", "\\\\", 0, 0)]:
            if child.kind == "cmd" and child.text == "\\\\":
                rows.append(row)
                row = []
            else:
                row.append(child)
        def row_width(items):
            cells = [[]]
            for child in items:
                if child.kind == "char" and child.text == "&":
                    cells.append([])
                else:
                    cells[-1].append(child)
            return sum(_width(cell, scale, roman) for cell in cells) + 10.0 * scale * (len(cells) - 1)
        return max(map(row_width, rows)) + 12.0 * scale
    return scale * _glyph(node, roman)


def _script(scale: float) -> float:
    """The size of a script (or of a fraction's parts in a script) relative to 10pt."""
    return 0.8 if scale == 1.0 else 0.65


def _width(nodes: list[_Node], scale: float = 1.0, roman: bool = False) -> float:
    """Estimated width in pt of a math list in display style at 10pt (``scale`` < 1: in a script)."""
    display = scale == 1.0  # TeX drops the spaces around operators in scripts
    total, atom_before, script = 0.0, False, None  # script: width of the sub/superscript just set
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
        elif text in (r"\vphantom", r"\phantom", r"\hphantom"):
            arg, i = _argument(nodes, i)
            w, atom = (0.0 if text == r"\vphantom" else _node_width(arg, scale, roman)), atom_before
        elif text == r"\sqrt":
            arg, i = _argument(nodes, i)
            w = _node_width(arg, scale, roman) + 8.3 * scale
        elif text in (r"\cdot", r"\times", r"\pm", r"\mp") or (node.kind == "char" and text in "+-"):
            w = scale * ((2.8 if text == r"\cdot" else 7.8) + (_BIN if display and atom_before else 0.0))
            atom = False
        elif node.kind == "char" and text in "=<>":
            w, atom = scale * (7.8 + (_REL if display else 0.0)), False
        elif node.kind == "char" and text in ",;":
            w = scale * (2.8 + (_PUNCT if display else 0.0))
        elif text in _SPACE:
            w, atom = scale * _SPACE[text], atom_before
        else:
            w = _node_width(node, scale, roman)
        total += w
        atom_before = atom
    return total


def tex_width(tex: str) -> float:
    """Rough width in pt of the math ``tex`` in display style at 10pt (Computer Modern).

    Counts letters, digits and operators with their glyph widths and the spaces TeX puts around
    binary operators and relations; sub- and superscripts at 80% (65% in second-level scripts),
    fractions as their wider part. Good to a few percent for sympy's output.
    """
    return _width(_parse(tex))


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


def _break(tex: str, first: float, rest: float) -> list[str]:
    if _line_width(tex) <= first:
        return [tex]
    nodes = _parse(tex)
    for ops in (("+", "-"), (r"\cdot", r"\times")):
        cuts = _cuts(nodes, ops)
        if cuts:
            bounds = [0, *cuts, len(tex)]
            return _pack([tex[a:b].strip() for a, b in zip(bounds, bounds[1:])], first, rest)
    lines = _break_pair(tex, nodes, first, rest)
    if lines is not None:
        return lines
    rewritten = _split_fraction(tex, nodes) or _split_root(tex, nodes)
    if rewritten is not None:
        return _break(rewritten, first, rest)
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
        sub = _break(piece, room, rest) if line and room > 0.25 * rest else None
        if sub is not None and len(sub) > 1 and _line_width(sub[0]) <= room:
            sub[0] = f"{line} {sub[0]}"
        else:
            if line:
                lines.append(line)
                budget = rest
            sub = _break(piece, budget, rest)
        lines.extend(sub[:-1])
        line = sub[-1]
        budget = budget if len(sub) == 1 else rest
    lines.append(line)
    return lines


def _break_pair(tex: str, nodes: list[_Node], first: float, rest: float) -> list[str] | None:
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
    if cuts and first < _line_width(head + inner[:cuts[0]].strip() + r" \right.") <= rest:
        return None  # its first term would be cut, but fits on a new line: start the pair there
    lines = _break(inner, first - open_width, rest - close_width)
    if len(lines) < 2:
        return None
    reopen = [r"\left. " + strut + ("{} " if line[:1] in "+-" or line.startswith("\\cdot") else "") + line
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


def _tex_comment(text: str) -> str:
    """``text`` as one LaTeX comment line: a newline in it would end the comment early."""
    return "% " + " ".join(str(text).splitlines())


def _md_escape(text: str) -> str:
    """``text`` for a Markdown table cell: ``|`` escaped, newlines (which would end the row) as spaces."""
    return " ".join(str(text).splitlines()).replace("|", r"\|")
