"""Multimodal wrappers: a ``model_type`` whose language model is one of the catalog's types.

A wrapper's config.json (Llama 4, Gemma 3, Mistral 3, LLaVA, Qwen2-VL) is read as its text model's:
``Wrapper.text_config`` builds the text config as transformers does (its type, its defaults, the tied
head), and ``engine.catalog.families.from_hf_config`` reads that through the text type's ``Family``.
The vision tower and projector are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from engine.errors import SpecError


@dataclass(frozen=True)
class Wrapper:
    """A multimodal ``model_type`` whose language model is one of the catalog's types: its config is read as
    that text model (the vision tower and projector are not counted; ``params`` sizes the text model).

    Attributes:
        model_type: the wrapper's ``model_type`` (``llama4``, ``gemma3``, ...).
        text_type: the text model type transformers builds when ``text_config`` names none.
        architecture: the class ``architectures`` names (``Llama4ForConditionalGeneration``).
        source: the transformers configuration and model classes the reading follows.
        fixed: transformers builds its own text class whatever ``text_config.model_type`` says (Llama4Config,
            Gemma3Config, Qwen2VLConfig); False: AutoConfig resolves ``text_config.model_type`` (Mistral3, LLaVA).
        tie: whose ``tie_word_embeddings`` ties the head: ``"text"`` (the language model is a ForCausalLM of its
            own: Llama 4), ``"top"`` (the wrapper's lm_head follows the wrapper's field: Gemma 3, Mistral 3) or
            ``"either"`` (the wrapper's field, set to true when the text config's is: LLaVA, Qwen2-VL).
        tie_default: the wrapper's own ``tie_word_embeddings`` default.
        text_defaults: defaults of the wrapper's own text class that differ from ``text_type``'s record.
        default_text: the text config transformers builds when the config has no ``text_config``.
        flat: without ``text_config`` the text fields sit at the top level (Qwen2-VL's first releases).
        ignored: text fields the wrapper's text class does not read (Qwen2-VL's attention: hidden_size // heads).
    """

    model_type: str
    text_type: str
    architecture: str
    source: str
    fixed: bool = True
    tie: str = "text"
    tie_default: bool = False
    text_defaults: Mapping[str, Any] = field(default_factory=dict)
    default_text: Mapping[str, Any] = field(default_factory=dict)
    flat: bool = False
    ignored: tuple[str, ...] = ()

    def __post_init__(self):
        if self.tie not in ("text", "top", "either"):
            raise ValueError(f"{self.model_type}: tie must be 'text', 'top' or 'either', got {self.tie!r}")
        object.__setattr__(self, "text_defaults", MappingProxyType(dict(self.text_defaults)))
        object.__setattr__(self, "default_text", MappingProxyType(dict(self.default_text)))

    def text_config(self, config: Mapping[str, Any], source: str,
                    type_defaults: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """The text model's config as transformers builds it: its model type, its defaults, the tied head.

        Parameters
        ----------
        config : Mapping
            The wrapper's config.json.
        source : str
            How errors name the config.
        type_defaults : Mapping
            Text model type -> transformers' configuration defaults (the ``hf_defaults`` of its ``Family``).

        Returns
        -------
        dict
            The text model's config, ``model_type`` set.

        Raises
        ------
        SpecError
            ``text_config`` is not an object or ``tie_word_embeddings`` not a boolean.
        """
        text = config.get("text_config")
        if text is None:
            text = _top_level_text(config) if self.flat else dict(self.default_text)
        if not isinstance(text, Mapping):
            raise SpecError(source, "text_config", f"must be a JSON object, got {text!r}")
        text = {**self.text_defaults, **{k: v for k, v in text.items() if k not in self.ignored}}
        if self.fixed or text.get("model_type") is None:
            text["model_type"] = self.text_type
        if self.tie != "text":
            top = config.get("tie_word_embeddings", self.tie_default)
            if not isinstance(top, bool):
                raise SpecError(source, "tie_word_embeddings", f"must be true or false, got {top!r}")
            if self.tie == "either" and not top:  # the text config's value (checked by its reader), else its default
                top = text.get("tie_word_embeddings",
                               type_defaults.get(text.get("model_type"), {}).get("tie_word_embeddings") or False)
            text["tie_word_embeddings"] = top
        return text


_WRAPPER_FIELDS = ("model_type", "architectures", "text_config", "vision_config", "tie_word_embeddings")


def _top_level_text(config: Mapping[str, Any]) -> dict[str, Any]:
    """Qwen2VLConfig without ``text_config``: the top-level fields are the text config's (its own are not)."""
    return {k: v for k, v in config.items() if k not in _WRAPPER_FIELDS}


_QWEN2_VL_TEXT = {"vocab_size": 152064, "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
                  "num_attention_heads": 64, "num_key_value_heads": 8, "max_position_embeddings": 32768,
                  "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 80,
                  "tie_word_embeddings": False}

WRAPPERS: dict[str, Wrapper] = {w.model_type: w for w in [
    Wrapper("llama4", "llama4_text", "Llama4ForConditionalGeneration",
            "transformers Llama4Config (text_config is a Llama4TextConfig) and Llama4ForConditionalGeneration (its "
            "language_model is a Llama4ForCausalLM: the text config's tie_word_embeddings ties its head)"),
    Wrapper("gemma3", "gemma3_text", "Gemma3ForConditionalGeneration",
            "transformers Gemma3Config (text_config is a Gemma3TextConfig) and Gemma3ForConditionalGeneration (its "
            "lm_head is tied by Gemma3Config.tie_word_embeddings, default true)", tie="top", tie_default=True),
    Wrapper("mistral3", "mistral", "Mistral3ForConditionalGeneration",
            "transformers Mistral3Config (text_config by AutoConfig, default mistral; no text_config: Mistral Small "
            "3.1's sizes) and Mistral3ForConditionalGeneration (lm_head tied by Mistral3Config.tie_word_embeddings, "
            "default true)", fixed=False, tie="top", tie_default=True,
            default_text={"model_type": "mistral", "head_dim": 128, "hidden_size": 5120, "intermediate_size": 32768,
                          "max_position_embeddings": 131072, "num_attention_heads": 32, "num_hidden_layers": 40,
                          "num_key_value_heads": 8, "sliding_window": None, "vocab_size": 131072}),
    Wrapper("llava", "llama", "LlavaForConditionalGeneration",
            "transformers LlavaConfig (text_config by AutoConfig, default llama) and LlavaForConditionalGeneration "
            "(lm_head tied by LlavaConfig.tie_word_embeddings, set when the text config's is)", fixed=False,
            tie="either"),
    Wrapper("llava_next", "llama", "LlavaNextForConditionalGeneration",
            "transformers LlavaNextConfig (text_config by AutoConfig, default llama) and "
            "LlavaNextForConditionalGeneration (lm_head tied by LlavaNextConfig.tie_word_embeddings, set when the "
            "text config's is)", fixed=False, tie="either"),
    Wrapper("qwen2_vl", "qwen2", "Qwen2VLForConditionalGeneration",
            "transformers Qwen2VLConfig (text_config is a Qwen2VLTextConfig: the Qwen2 block with its own defaults, "
            "head_dim = hidden_size // num_attention_heads; without text_config the top-level fields) and "
            "Qwen2VLForConditionalGeneration (lm_head tied by Qwen2VLConfig.tie_word_embeddings, set when the text "
            "config's is)", tie="either", text_defaults=_QWEN2_VL_TEXT, flat=True, ignored=("head_dim",)),
    Wrapper("qwen2_5_vl", "qwen2", "Qwen2_5_VLForConditionalGeneration",
            "transformers Qwen2_5_VLConfig (text_config is a Qwen2_5_VLTextConfig: the Qwen2 block with Qwen2-VL's "
            "defaults; without text_config the top-level fields) and Qwen2_5_VLForConditionalGeneration (lm_head "
            "tied by Qwen2_5_VLConfig.tie_word_embeddings, set when the text config's is)", tie="either",
            text_defaults=_QWEN2_VL_TEXT, flat=True, ignored=("head_dim",)),
]}
