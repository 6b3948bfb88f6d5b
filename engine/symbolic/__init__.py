"""Pure sympy: the symbol registry, the safe expression parser, formula sets, memory models, printing, claims."""
