"""The width of LaTeX math as TeX would set it, estimated without TeX (Computer Modern at 10pt).

``parse`` reads sympy's LaTeX into a list of items (characters, commands, groups, ``\\left ...
\\right`` pairs, environments) with their spans; ``tex_width`` adds up their glyph widths and the
spaces TeX puts around operators and relations; ``text_width`` does the same for upright text in a
table cell. Good to a few percent for sympy's output: enough to cut lines (``linebreak``) and size
table columns (``latex``) so that pdflatex reports no overfull box.
"""

from __future__ import annotations

import re

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


class Node:
    """An item of a math list: a ``char``, a ``cmd``, a ``{...}`` ``group``, a ``\\left ... \\right``
    ``pair`` or an ``env`` (``\\begin{cases} ... \\end{cases}``: its rows, never cut)."""

    __slots__ = ("kind", "text", "start", "end", "children", "inner")

    def __init__(self, kind: str, text, start: int, end: int, children=(), inner=(0, 0)):
        self.kind, self.text, self.start, self.end = kind, text, start, end
        self.children, self.inner = list(children), inner  # inner: the span inside the braces or delimiters


def parse(tex: str) -> list[Node]:
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

    def items(closer: str | None) -> list[Node]:
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
                out.append(Node("group", "{}", start, tokens[pos - 1][2], kids, (end, tokens[pos - 1][1])))
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
                out.append(Node("env", m.group(1), start, m_end.end(), kids, (m.end(), body_end)))
            elif tok == r"\left":
                opening = delimiter()
                inner_start = tokens[pos - 1][2]
                kids = items(r"\right")
                inner_end = tokens[pos][1]
                pos += 1
                closing = delimiter()
                out.append(Node("pair", (opening, closing), start, tokens[pos - 1][2], kids,
                                 (inner_start, inner_end)))
            else:
                out.append(Node("char" if len(tok) == 1 else "cmd", tok, start, end))
        if closer is not None:
            raise ValueError(f"missing {closer} in {tex!r}")
        return out

    return items(None)


def argument(nodes: list[Node], i: int) -> tuple[Node | None, int]:
    """The argument of a command at ``nodes[i]`` on (spaces skipped) and the index after it; None at the end."""
    while i < len(nodes) and nodes[i].kind == "char" and nodes[i].text.isspace():
        i += 1
    return (nodes[i], i + 1) if i < len(nodes) else (None, i)


def _glyph(node: Node, roman: bool) -> float:
    if node.kind == "cmd":
        return _SPACE.get(node.text, 6.0)  # Greek letters, \infty, ...: about 6pt
    if node.text.isalpha():
        return (_ROMAN if roman else _ITALIC).get(node.text, 7.0)
    return 5.0 if node.text.isdigit() else _CHAR.get(node.text, 5.0)


def _node_width(node: Node | None, scale: float, roman: bool) -> float:
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


def _env_width(node: Node, scale: float, roman: bool) -> float:
    """Width of a ``cases`` (or other array) block: its columns, each as wide as its widest cell, a ``\\quad``
    between them, and the brace."""
    columns: list[float] = []
    cells: list[list[Node]] = [[]]
    for child in node.children + [Node("cmd", "\\\\", 0, 0)]:
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


def _has_fraction(nodes: list[Node]) -> bool:
    """Whether a math list holds a fraction outside any script (or a ``cases`` block): a tall one."""
    i = 0
    while i < len(nodes):
        node = nodes[i]
        i += 1
        if node.kind == "char" and node.text in "^_":
            _, i = argument(nodes, i)  # a script's fraction is small
        elif node.kind == "env" or node.text in _FRACS:
            return True
        elif node.kind in ("group", "pair") and _has_fraction(node.children):
            return True
    return False


def _script(scale: float) -> float:
    """The size of a script (or of a fraction's parts in a script) relative to 10pt."""
    return 0.8 if scale == 1.0 else 0.65


def _width(nodes: list[Node], scale: float = 1.0, roman: bool = False) -> float:
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
            arg, i = argument(nodes, i)
            w = _node_width(arg, _script(scale), roman) + 0.5  # plus \scriptspace
            total += w if script is None else max(0.0, w - script)  # a sub- and a superscript stack
            script = w if script is None else max(w, script)
            continue
        script, atom = None, True
        if node.kind in ("group", "pair"):
            w = _node_width(node, scale, roman)
        elif text in _FONTS:
            arg, i = argument(nodes, i)
            w = _node_width(arg, scale, _FONTS[text])
        elif text in _FRACS:
            num, i = argument(nodes, i)
            den, i = argument(nodes, i)
            inner = scale if display and text != r"\tfrac" else _script(scale)
            w = max(_node_width(num, inner, roman), _node_width(den, inner, roman)) + 2.4 * scale
        elif text in (r"\vphantom", r"\phantom", r"\hphantom"):  # a box: an atom (a - after it is binary)
            arg, i = argument(nodes, i)
            w = 0.0 if text == r"\vphantom" else _node_width(arg, scale, roman)
        elif text == r"\sqrt":
            arg, i = argument(nodes, i)
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
    return _width(parse(tex))


def text_width(text: str) -> float:
    """Rough width in pt of plain ``text`` in upright Computer Modern at 10pt (cmr10), as a table cell sets it."""
    return sum(_ROMAN.get(c, 5.0) if c.isalpha() else 3.3 if c == " " else 5.0 if c.isdigit() else _CHAR.get(c, 5.0)
               for c in text)
