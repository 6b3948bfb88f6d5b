"""Model families: one ``Family`` record per Hugging Face ``model_type``, and the config.json importer.

A record holds everything the engine knows about a model type: the ``Structure`` its default
configuration builds, transformers' configuration defaults and field spellings, the reader that
turns a config into (structure, sizes) (``engine.catalog.readers``), its source, its ``d_ff``
default and whether Narayanan's FLOP forms apply. The records are data,
``engine/catalog/data/families.json``; ``FAMILIES`` is the registry read from it, and
``from_hf_config`` is one lookup in it (a multimodal wrapper, ``engine.catalog.wrappers``, is read as
its text model). Adding a model type is one record there (and a reader, unless one fits) plus one row
in ``tests/data/transformers_param_counts.json`` (README, "Adding a model type").

Configs are local files or mappings (never the network), in their complete form or the minimal one
that omits fields equal to the model type's defaults: omitted fields are filled with the defaults of
transformers' configuration class (``hf_defaults``, read off transformers 5.24), and derived fields
are derived as transformers derives them (``num_key_value_heads`` = ``num_attention_heads`` when
null, ``head_dim`` = ``hidden_size // num_attention_heads`` when null, GPT-2's ``n_inner`` =
4 ``n_embd``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import sympy

from engine.catalog import readers
from engine.catalog.config_reader import ConfigReader, Reader
from engine.catalog.wrappers import WRAPPERS, Wrapper
from engine.errors import SpecError, check_keys, closest, did_you_mean, read_package_json, read_user_file
from engine.symbolic.expr import ExpressionError, parse_expression
from engine.symbolic.formulas.architectures import Structure
from engine.symbolic.symbols import symbol

d_model = symbol("d_model")


@dataclass(frozen=True)
class Family:
    """Everything about one Hugging Face ``model_type``.

    Parameters
    ----------
    model_type : str
        The config's ``model_type`` (also the family's name and formula set name).
    structure : Structure
        The structure transformers builds for the default configuration.
    hf_defaults : Mapping
        transformers' configuration defaults of the fields that decide parameter counts.
    reader : Reader
        ``(ConfigReader, structure) -> (structure, sizes)`` for one config (``engine.catalog.readers``).
    source : str
        Where the structure comes from (paper; transformers class).
    aliases : Mapping, optional
        Other spellings transformers accepts for a field (``{"n_embed": "hidden_size"}``).
    d_ff_default : sympy.Expr or None, optional
        The MLP width when the config does not give one (``4*d_model``), or None.
    narayanan : bool, optional
        Whether Narayanan et al.'s 72/96 B s L h^2 FLOP forms apply (the GPT block).
    architecture : str, optional
        The class transformers' AutoModelForCausalLM builds for this type, as a config.json's
        ``architectures`` names it (a ``model_type`` the catalog lacks is read through it: Kimi K2's
        ``kimi_k2`` is ``DeepseekV3ForCausalLM``).
    """

    model_type: str
    structure: Structure
    hf_defaults: Mapping[str, Any]
    reader: Reader
    source: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    d_ff_default: sympy.Expr | None = None
    narayanan: bool = False
    architecture: str = ""

    def __post_init__(self):
        object.__setattr__(self, "hf_defaults", MappingProxyType(dict(self.hf_defaults)))
        object.__setattr__(self, "aliases", MappingProxyType(dict(self.aliases)))

    def read(self, config: Mapping[str, Any], source: str) -> "tuple[Structure, dict[str, int]]":
        """(structure, sizes) of a config of this type: defaults filled, aliases resolved.

        Parameters
        ----------
        config : Mapping
            config.json fields (complete, or minimal: fields equal to ``hf_defaults`` left out).
        source : str
            How errors name the config.

        Returns
        -------
        tuple
            The ``Structure`` the config builds and its sizes (input name -> value).

        Raises
        ------
        SpecError
            A field is missing, of the wrong type, or a combination transformers rejects; names the field.
        """
        cfg = dict(self.hf_defaults)
        for key, value in config.items():
            cfg[self.aliases.get(key, key)] = value
        return self.reader(ConfigReader(source, cfg), self.structure)


@dataclass(frozen=True)
class Architecture:
    """An architecture read from a config: its family, structure and sizes (input symbol values).

    Parameters
    ----------
    family : str
        The model type whose ``Family`` record reads it (``"llama"``).
    structure : Structure
        Its structural options.
    values : dict
        The sizes the config states (input name -> value); derived sizes stay out.
    source : str
        Where it comes from (a file path, a preset's source).
    name : str, optional
        The preset or family name the user gave, if any.
    """

    family: str
    structure: Structure
    values: dict[str, int]
    source: str
    name: str = ""

    @property
    def label(self) -> str:
        """How errors name it: the preset, family or file the user gave."""
        return self.name or self.source


# -- the registry: engine/catalog/data/families.json ------------------------------------------------

DATA = "data/families.json"  # inside the engine.catalog package
_WHERE = f"engine/catalog/{DATA}"
_FIELDS = ("structure", "hf_defaults", "reader", "reader_options", "source", "aliases", "d_ff_default", "narayanan",
           "architecture")


def load_families(data: Any, where: str = _WHERE) -> dict[str, Family]:
    """The ``Family`` records of the parsed data file (``{"about": TEXT, "families": {TYPE: RECORD}}``).

    Parameters
    ----------
    data : Any
        The parsed JSON. A record holds ``structure`` (``Structure`` options), ``hf_defaults``,
        ``reader`` (a name of ``readers.READERS``, or of ``readers.READER_FACTORIES`` with its
        ``reader_options``), ``source``, ``architecture`` and optionally ``aliases``, ``d_ff_default`` (an
        expression over ``d_model``) and ``narayanan``.
    where : str, optional
        How errors name the file.

    Returns
    -------
    dict
        Model type -> ``Family``, in the file's order.

    Raises
    ------
    SpecError
        A malformed file: names the model type and field, and what would be valid.
    """
    if not isinstance(data, dict) or not isinstance(data.get("families"), dict):
        raise SpecError(where, "families", 'a JSON object with a "families" object is required')
    check_keys(where, "", data, ("about", "families"), "top-level key")
    return {t: _family(where, f"families.{t}", t, entry) for t, entry in data["families"].items()}


def _family(where: str, key: str, model_type: str, entry: Any) -> Family:
    """One record of the data file as a ``Family``; SpecError naming ``key.FIELD`` when malformed."""
    if not isinstance(entry, dict):
        raise SpecError(where, key, "must be an object")
    check_keys(where, key, entry, _FIELDS, "field")
    for name in ("structure", "hf_defaults", "reader", "source", "architecture"):
        if name not in entry:
            raise SpecError(where, f"{key}.{name}", "missing")
    for name in ("structure", "hf_defaults", "reader_options", "aliases"):
        if not isinstance(entry.get(name, {}), dict):
            raise SpecError(where, f"{key}.{name}", "must be an object")
    for name in ("source", "architecture"):
        if not isinstance(entry[name], str) or not entry[name]:
            raise SpecError(where, f"{key}.{name}", "must be a non-empty text")
    if not isinstance(entry.get("narayanan", False), bool):
        raise SpecError(where, f"{key}.narayanan", "must be true or false")
    try:
        structure = Structure().with_options(**entry["structure"])
    except ValueError as exc:
        raise SpecError(where, f"{key}.structure", str(exc)) from None
    return Family(model_type, structure, entry["hf_defaults"], _reader(where, key, entry), entry["source"],
                  aliases=entry.get("aliases", {}), d_ff_default=_d_ff_default(where, key, entry),
                  narayanan=entry.get("narayanan", False), architecture=entry["architecture"])


def _reader(where: str, key: str, entry: dict) -> Reader:
    """The record's reader: a reader by name, or one a factory builds from ``reader_options``."""
    name, options = entry["reader"], entry.get("reader_options", {})
    if name in readers.READER_FACTORIES:
        try:
            return readers.READER_FACTORIES[name](**options)
        except TypeError as exc:
            raise SpecError(where, f"{key}.reader_options", str(exc)) from None
    if name not in readers.READERS:
        valid = [*readers.READERS, *readers.READER_FACTORIES]
        raise SpecError(where, f"{key}.reader", f"unknown reader {name!r}; valid: {', '.join(valid)}"
                                                f"{did_you_mean(name, valid)}")
    if options:
        raise SpecError(where, f"{key}.reader_options", f"reader {name!r} takes no options; only "
                                                        f"{', '.join(readers.READER_FACTORIES)} do")
    return readers.READERS[name]


def _d_ff_default(where: str, key: str, entry: dict) -> sympy.Expr | None:
    """The record's ``d_ff_default``, an expression over ``d_model`` (``"4*d_model"``), or None."""
    text = entry.get("d_ff_default")
    if text is None:
        return None
    if not isinstance(text, str):
        raise SpecError(where, f"{key}.d_ff_default", f"must be an expression over d_model, got {text!r}")
    try:
        return parse_expression(text, {"d_model": d_model})
    except ExpressionError as exc:
        raise SpecError(where, f"{key}.d_ff_default", f"must be an expression over d_model: {exc}") from None


#: model type -> its ``Family`` record (``engine/catalog/data/families.json``), in the order README lists them
FAMILIES: dict[str, Family] = load_families(read_package_json(__package__, DATA, "the model families"))

# transformers' configuration defaults per model type (a wrapper's text config falls back on them)
_HF_DEFAULTS = MappingProxyType({t: f.hf_defaults for t, f in FAMILIES.items()})
# config.json's ``architectures`` -> the model_type it stands for (a model_type the catalog lacks is read through it)
ARCHITECTURES: dict[str, str] = {**{f.architecture: t for t, f in FAMILIES.items()},
                                 **{w.architecture: t for t, w in WRAPPERS.items()}}
#: every model type ``from_hf_config`` reads: the families, then the multimodal wrappers
SUPPORTED: tuple[str, ...] = (*FAMILIES, *WRAPPERS)


# -- the importer ------------------------------------------------------------------------------


def from_hf_config(config: Mapping[str, Any], source: str = "<config>") -> Architecture:
    """An ``Architecture`` from a config.json mapping.

    The config may be complete or minimal (fields equal to the type's defaults left out); a multimodal
    wrapper of a supported text model is read as its text model, and a ``model_type`` the catalog lacks
    is read through an ``architectures`` class the catalog has.

    Parameters
    ----------
    config : Mapping
        The parsed config.json.
    source : str, optional
        How errors (and the architecture) name it: a file path, ``"preset llama-2-7b"``.

    Returns
    -------
    Architecture
        Its family, structure and sizes.

    Raises
    ------
    SpecError
        Not a JSON object, an unsupported ``model_type`` (naming the closest supported one), or a field
        missing, of the wrong type or in a combination transformers rejects (naming the field;
        ``text_config.FIELD`` inside a wrapper).
    """
    if not isinstance(config, Mapping):
        raise SpecError(source, "", "a config.json holds a JSON object")
    model_type = _model_type(config, source)
    if model_type in WRAPPERS:
        return _from_text_config(WRAPPERS[model_type], config, source)
    structure, values = FAMILIES[model_type].read(config, source)
    return Architecture(model_type, structure, values, source, source)


def _from_text_config(wrapper: Wrapper, config: Mapping[str, Any], source: str) -> Architecture:
    """The architecture of a wrapper's text model; errors name the field under ``text_config``."""
    text = wrapper.text_config(config, source, _HF_DEFAULTS)
    try:
        model_type = _model_type(text, source)
        if model_type in WRAPPERS:
            raise SpecError(source, "model_type", f"{model_type!r} is a multimodal wrapper, not a text model")
        structure, values = FAMILIES[model_type].read(text, source)
    except SpecError as exc:
        raise SpecError(exc.source, f"text_config.{exc.key}" if exc.key else "text_config", exc.message) from None
    return Architecture(model_type, structure, values, source, source)


def _model_type(config: Mapping[str, Any], source: str) -> str:
    """The catalog's model type of a config: its ``model_type``, else the first ``architectures`` class the
    catalog has (Kimi K2: ``kimi_k2`` with ``DeepseekV3ForCausalLM``); SpecError naming the closest type."""
    model_type = config.get("model_type")
    if model_type is None:
        raise SpecError(source, "model_type", f"missing; supported model types: {', '.join(SUPPORTED)}")
    if isinstance(model_type, str) and (model_type in FAMILIES or model_type in WRAPPERS):
        return model_type
    classes = config.get("architectures")
    for name in classes if isinstance(classes, list) else []:
        if isinstance(name, str) and name in ARCHITECTURES:
            return ARCHITECTURES[name]
    raise SpecError(source, "model_type", _unsupported(model_type, classes))


def _unsupported(model_type: Any, classes: Any) -> str:
    """One line: the type, the closest supported type, and every supported type."""
    close = closest(str(model_type), SUPPORTED)
    named = f" (architectures {classes!r} names no class the catalog has)" if classes else ""
    hint = f"; the closest supported type is {close!r}" if close else ""
    return f"unsupported model type {model_type!r}{named}{hint}; supported: {', '.join(SUPPORTED)}"


def load_hf_config(path: str | Path) -> Architecture:
    """Read a local ``config.json``, or the ``config.json`` of a model folder (a Hugging Face snapshot).

    Parameters
    ----------
    path : str or Path
        The file, or the folder that holds it. Nothing is downloaded.

    Returns
    -------
    Architecture
        As ``from_hf_config`` reads the file's contents.

    Raises
    ------
    SpecError
        A missing or unreadable file, a folder without config.json, malformed JSON, or what
        ``from_hf_config`` refuses; names the file and field.
    """
    folder = Path(path)
    if folder.is_dir():
        path = folder / "config.json"
        if not path.is_file():
            raise SpecError(str(folder), "", "a folder without config.json; give a config.json or the model folder "
                                             "that holds it")
    _, data = read_user_file(path, "JSON")
    return from_hf_config(data, str(path))
