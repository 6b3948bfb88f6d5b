"""Long equations cut into ``align`` lines that fit a page or a column (``break_latex``).

Widths come from ``texwidth``; the cuts keep every line balanced (a ``\\left ... \\right`` pair
cut is closed with ``\\right.`` and reopened with ``\\left.``), and rewrite a wide fraction or root
into a product that can be cut.
"""

from __future__ import annotations

from engine.symbolic.printing.texwidth import Node, argument, parse, tex_width

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


def align_width(line: str) -> float:
    """The width of ``line`` as a row of ``align`` sets it, after the ``{}`` that makes a leading sign binary."""
    return tex_width("{}" + line)  # a leading + or - is binary after the ``{}`` that align puts first


def _break(tex: str, first: float, rest: float, mid_line: bool = False) -> list[str]:
    """``break_latex``'s cuts; ``mid_line``: ``tex`` would follow other text on its first line, and may rather
    start on the next (a pair whose first term fits there is then not cut)."""
    if align_width(tex) <= first:
        return [tex]
    nodes = parse(tex)
    # the arguments of \max( ... ): cut after each comma but a last one
    commas = [n.end for n in nodes if n.kind == "char" and n.text == "," and tex[n.end:].strip()]
    for cuts in (commas, operator_cuts(nodes, (r"\vee", r"\wedge")), operator_cuts(nodes, ("+", "-")),
                 operator_cuts(nodes, (r"\cdot", r"\times"))):
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


def operator_cuts(nodes: list[Node], ops: tuple[str, ...]) -> list[int]:
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
        if align_width(joined) <= budget:
            line = joined
            continue
        if line and align_width(piece) <= rest:  # fits on a line of its own
            lines.append(line)
            line, budget = piece, rest
            continue
        # too wide for any line: break it, starting on this line if its first part fits there
        room = budget - align_width(line) - 3.3
        sub = _break(piece, room, rest, mid_line=True) if line and room > 0.25 * rest else None
        if sub is not None and len(sub) > 1 and align_width(sub[0]) <= room:
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
    return align_width(lines[0]) <= first and all(align_width(line) <= rest for line in lines[1:])


def _break_pair(tex: str, nodes: list[Node], first: float, rest: float, mid_line: bool = False) -> list[str] | None:
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
    open_width = align_width(head + r" \right.")
    close_width = align_width(r"\left. " + tail)
    if open_width > 0.75 * first:
        return None
    cuts = operator_cuts(parse(inner), ("+", "-"))
    if mid_line and cuts and first < align_width(head + inner[:cuts[0]].strip() + r" \right.") <= rest:
        return None  # its first term would be cut, but fits on a new line: start the pair there
    binary = ("+", "-", r"\cdot", r"\vee", r"\wedge")  # a line that starts with one: binary after a {}
    # the closers and reopeners of nested pairs add up on a line: when the lines come out too wide, cut again
    # with that much less room
    for slack in (0, 4, 8, 16):
        lines = _break(inner, first - open_width - slack, rest - close_width - slack)
        if len(lines) < 2:
            return None
        reopen = [r"\left. " + strut + ("{} " if line.startswith(binary) else "") + line
                  for line in lines[1:]]
        out = ([head + lines[0] + r" \right."] + [line + r" \right." for line in reopen[:-1]]
               + [reopen[-1] + " " + tail.lstrip()])
        if _fits(out, first, rest):
            break
    return out


def _split_fraction(tex: str, nodes: list[Node]) -> str | None:
    """``tex`` with its widest top-level ``\\frac{A}{B}`` set as ``\\frac{1}{B} (A)``; None if none."""
    best = None
    for i, node in enumerate(nodes):
        if node.kind == "cmd" and node.text in (r"\frac", r"\dfrac"):
            num, j = argument(nodes, i + 1)
            den, j = argument(nodes, j)
            if num is None or den is None or num.kind != "group" or tex[num.inner[0]:num.inner[1]].strip() == "1":
                continue
            if best is None or den.end - node.start > best[2].end - best[0].start:
                best = (node, num, den)
    if best is None:
        return None
    node, num, den = best
    numerator = tex[num.inner[0]:num.inner[1]].strip()
    factor = (rf"\left({numerator}\right)" if operator_cuts(parse(numerator), ("+", "-"))
              else rf"\cdot {numerator}")
    return f"{tex[:node.start]}\\frac{{1}}{{{tex[den.inner[0]:den.inner[1]]}}} {factor}{tex[den.end:]}"


def _split_denominator(tex: str, nodes: list[Node]) -> str | None:
    """``tex`` with the widest top-level ``\\frac{A}{B C}`` whose denominator is a product set as
    ``\\frac{A}{B} \\cdot \\frac{1}{C}`` (cut where the two halves are about as wide); None if none."""
    best = None
    for i, node in enumerate(nodes):
        if node.kind == "cmd" and node.text in (r"\frac", r"\dfrac"):
            num, j = argument(nodes, i + 1)
            den, j = argument(nodes, j)
            if num is None or den is None or den.kind != "group":
                continue
            cuts = operator_cuts(den.children, (r"\cdot",))
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


def _split_root(tex: str, nodes: list[Node]) -> str | None:
    """``tex`` with its widest top-level ``\\sqrt{A}`` set as ``\\left(A\\right)^{\\frac{1}{2}}``; None if none."""
    roots = []
    for i, node in enumerate(nodes):
        arg, _ = argument(nodes, i + 1)
        if node.kind == "cmd" and node.text == r"\sqrt" and arg is not None and arg.kind == "group":
            roots.append((node, arg))
    if not roots:
        return None
    node, arg = max(roots, key=lambda r: r[1].end - r[0].start)
    inner = tex[arg.inner[0]:arg.inner[1]].strip()
    return f"{tex[:node.start]}\\left({inner}\\right)^{{\\frac{{1}}{{2}}}}{tex[arg.end:]}"
