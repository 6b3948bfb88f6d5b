"""Formulas as text, LaTeX or Markdown, with sources and a symbol table (pure sympy).

Every printed formula is the quantity's own definition (the one the kernel evaluates), so a
printed formula and a computed number cannot disagree. ``format_formulas`` picks a ``Printer`` by
format (``document.PRINTERS``): ``text``, ``markdown`` and ``latex`` each override the parts that
differ; the LaTeX one fits every line to the page (``linewidth``, ``texwidth``, ``linebreak``,
``subquantities``).
"""

from engine.symbolic.printing.common import identically_zero, latex_of, text_of
from engine.symbolic.printing.document import PRINTERS, format_formulas
from engine.symbolic.printing.linewidth import LINE_WIDTH_PT, LINE_WIDTHS, parse_line_width

__all__ = ["LINE_WIDTHS", "LINE_WIDTH_PT", "PRINTERS", "format_formulas", "identically_zero", "latex_of",
           "parse_line_width", "text_of"]
