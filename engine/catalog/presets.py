"""Named models: each is a Hugging Face config (the fields that decide its size) and a source.

The presets are data, ``engine/catalog/data/presets.json`` (shipped with the package):

    {"shared": {KEY: TEXT, ...},               texts several presets use, written once
     "presets": {NAME: {"config": {"model_type": ..., ...},   config.json fields
                        "source": TEXT,                       where they come from
                        "published_params": INT,              optional: the published count
                        "published_source": TEXT,             optional: where it is published
                        "notes": TEXT}}}                      optional

where any TEXT may be ``{"shared": KEY}``. Presets go through the same importer as a user's
config.json (``engine.catalog.families``), so a preset is read exactly as its real config.json would be;
``benchmarks/validate_presets.py`` builds each one with transformers on the meta device and
``tests/test_architectures.py`` checks the engine's count against that fixture, and against the
published count where one is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from engine.errors import SpecError, did_you_mean, read_package_json

DATA = "data/presets.json"  # inside the engine.catalog package
_TEXTS = ("source", "published_source", "notes")
_FIELDS = ("config", "published_params", *_TEXTS)


@dataclass(frozen=True)
class Preset:
    """A named model: config.json fields, where they come from, the published exact count if any.

    Parameters
    ----------
    config : dict
        config.json fields (``model_type`` and those that differ from its defaults), read by
        ``engine.catalog.families.from_hf_config`` as the real file would be.
    source : str
        Where the fields come from (the model's config.json on its hub page, a paper).
    published_params : int or None, optional
        The exact parameter count its authors publish, when they publish one.
    published_source : str, optional
        Where that count is published.
    notes : str, optional
        What else a user should know (a tied head the checkpoint stores apart, ...).
    """

    config: dict
    source: str
    published_params: int | None = None
    published_source: str = ""
    notes: str = ""


def load_presets(data: Any, where: str = f"engine/catalog/{DATA}") -> dict[str, Preset]:
    """Presets from the parsed data file (the format of the module docstring).

    Parameters
    ----------
    data : Any
        The parsed JSON.
    where : str, optional
        How errors name the file.

    Returns
    -------
    dict
        Preset name -> ``Preset``, in the file's order.

    Raises
    ------
    SpecError
        A malformed file: names the preset and field, and what would be valid.
    """
    if not isinstance(data, dict) or not isinstance(data.get("presets"), dict):
        raise SpecError(where, "presets", "a JSON object with a \"presets\" object is required")
    unknown = set(data) - {"about", "shared", "presets"}
    if unknown:
        raise SpecError(where, ", ".join(sorted(unknown)), "unknown top-level keys; valid: about, shared, presets")
    shared = data.get("shared", {})
    if not isinstance(shared, dict) or not all(isinstance(v, str) and v for v in shared.values()):
        raise SpecError(where, "shared", "must map keys to non-empty texts")

    def text(name: str, field: str, value: Any) -> str:
        if isinstance(value, dict) and set(value) == {"shared"}:
            key = value["shared"]
            if key not in shared:
                raise SpecError(where, f"presets.{name}.{field}", f"unknown shared text {key!r}; defined: "
                                                                  f"{', '.join(shared) or 'none'}"
                                                                  f"{did_you_mean(key, shared)}")
            return shared[key]
        if not isinstance(value, str):
            raise SpecError(where, f"presets.{name}.{field}", 'must be a text or {"shared": KEY}')
        return value

    presets = {}
    for name, entry in data["presets"].items():
        if not isinstance(entry, dict):
            raise SpecError(where, f"presets.{name}", "must be an object")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise SpecError(where, f"presets.{name}", f"unknown fields {', '.join(unknown)}; valid: "
                                                      f"{', '.join(_FIELDS)}{did_you_mean(unknown[0], _FIELDS)}")
        config = entry.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
            raise SpecError(where, f"presets.{name}.config", "must be a config.json object with a model_type")
        published = entry.get("published_params")
        if published is not None and (isinstance(published, bool) or not isinstance(published, int)
                                      or published <= 0):
            raise SpecError(where, f"presets.{name}.published_params", f"must be a positive integer, got "
                                                                       f"{published!r}")
        texts = {field: text(name, field, entry.get(field, "")) for field in _TEXTS}
        if not texts["source"]:
            raise SpecError(where, f"presets.{name}.source", "missing; every preset names where its values come from")
        presets[name] = Preset(config, published_params=published, **texts)
    return presets


#: preset name -> ``Preset``, read once from ``engine/catalog/data/presets.json`` (read-only)
PRESETS: Mapping[str, Preset] = MappingProxyType(load_presets(read_package_json(__package__, DATA, "the presets")))
