"""The width a LaTeX output's lines must fit: ``--line-width`` names and TeX lengths, in pt (pure Python)."""

from __future__ import annotations

import re

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
    """The width in pt of a ``--line-width``.

    Parameters
    ----------
    text : str
        A name of ``LINE_WIDTHS`` (``onecolumn``, ``twocolumn``) or a TeX length (``345pt``, ``3.25in``,
        ``8.5cm``; units ``TEX_UNITS``).

    Returns
    -------
    float
        The width in pt.

    Raises
    ------
    ValueError
        Not a name or a length, or narrower than ``MIN_LINE_WIDTH_PT`` or wider than ``MAX_LINE_WIDTH_PT``;
        the message says what is valid.
    """
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
