"""Named models: each is a Hugging Face config (the fields that decide its size) and a source.

Presets go through the same importer as a user's config.json (``engine.hf``), so a preset and
the real model's config agree by construction; ``benchmarks/validate_presets.py`` builds each
one with transformers and ``tests/test_architectures.py`` checks the engine's count against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    config: dict
    source: str
    published_params: int | None = None
    published_source: str = ""
    aliases: tuple[str, ...] = field(default=())


PRESETS: dict[str, Preset] = {}
