"""The memory options, read from here as before: ``MemoryOptions`` and its records live in ``engine.options``.

Each option is one field of ``engine.options.memory.MemoryOptions`` and its rules are data there
(``RULES``), checked by ``MemoryOptions.with_options``; this module only re-exports them for the sympy side.
"""

from __future__ import annotations

from engine.options import (ATTENTIONS, DEFAULT_PRECISION, MEMORY_OPTIONS, MODES, OFFLOADS, OPTIMIZERS,  # noqa: F401
                            PRECISION_ALIASES, PRECISIONS, RECOMPUTE, MemoryOptions)

OPTIONS = MEMORY_OPTIONS
