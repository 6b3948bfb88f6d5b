"""Model families: one ``Family`` record per Hugging Face ``model_type``, and the config.json importer.

A record holds everything the engine knows about a model type: the ``Structure`` its default
configuration builds, transformers' configuration defaults and field spellings, the reader that
turns a config into (structure, sizes) (``engine.catalog.readers``), its source, its ``d_ff``
default and whether Narayanan's FLOP forms apply. ``FAMILIES`` is the registry; ``from_hf_config``
is one lookup in it (a multimodal wrapper, ``engine.catalog.wrappers``, is read as its text model).
Adding a model type is one record here plus one row in ``tests/data/transformers_param_counts.json``
(README, "Adding a model type").

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
from engine.errors import SpecError, closest, read_user_file
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


# -- the registry ------------------------------------------------------------------------------

_GPT_NAMES = {"hidden_size": "n_embd", "num_hidden_layers": "n_layer", "num_attention_heads": "n_head",
              "max_position_embeddings": "n_positions"}
_LLAMA_SIZES = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32}

#: model type -> its ``Family`` record, in the order README lists them
FAMILIES: dict[str, Family] = {f.model_type: f for f in [
    Family(
        "gpt2",
        Structure(positions="learned", attn_bias="all", mlp="gelu", mlp_bias=True, norm="layernorm", tied_head=True),
        {"n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None, "vocab_size": 50257, "n_positions": 1024,
         "tie_word_embeddings": True},
        readers.gpt2,
        "Radford et al. 2019; transformers GPT2Model (Conv1D c_attn/c_proj/c_fc with biases, ln_1, ln_2, ln_f)",
        aliases=_GPT_NAMES, d_ff_default=4 * d_model, narayanan=True, architecture="GPT2LMHeadModel"),
    Family(
        "opt",
        Structure(positions="learned", position_offset=2, attn_bias="all", mlp="gelu", mlp_bias=True,
                  norm="layernorm", tied_head=True),
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "ffn_dim": 3072,
         "vocab_size": 50272, "max_position_embeddings": 2048, "word_embed_proj_dim": None,
         "do_layer_norm_before": True, "_remove_final_layer_norm": False, "enable_bias": True,
         "layer_norm_elementwise_affine": True, "tie_word_embeddings": True},
        readers.opt,
        "Zhang et al. 2022; transformers OPTModel (learned positions with offset 2, biased projections)",
        architecture="OPTForCausalLM"),
    Family(
        "bloom",
        Structure(positions="alibi", attn_bias="all", mlp="gelu", mlp_bias=True, norm="layernorm", embed_norm=True,
                  tied_head=True),
        {"hidden_size": 64, "n_layer": 2, "n_head": 8, "vocab_size": 250880, "tie_word_embeddings": True},
        readers.bloom,
        "BigScience 2022; transformers BloomModel (ALiBi, word_embeddings_layernorm, fused biased qkv)",
        aliases={"n_embed": "hidden_size"}, d_ff_default=4 * d_model, architecture="BloomForCausalLM"),
    Family(
        "gpt_neox",
        Structure(attn_bias="all", parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm"),
        {"hidden_size": 6144, "num_hidden_layers": 44, "num_attention_heads": 64, "intermediate_size": 24576,
         "vocab_size": 50432, "attention_bias": True, "tie_word_embeddings": False, "max_position_embeddings": 2048},
        readers.gpt_neox,
        "Black et al. 2022; transformers GPTNeoXModel (parallel residual, two LayerNorms, untied embed_out)",
        architecture="GPTNeoXForCausalLM"),
    Family(
        "gptj",
        Structure(parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm", norms_per_layer=1, head_bias=True),
        {"n_embd": 4096, "n_layer": 28, "n_head": 16, "n_inner": None, "vocab_size": 50400, "n_positions": 2048,
         "tie_word_embeddings": False},
        readers.gptj,
        "Wang & Komatsuzaki 2021; transformers GPTJModel (one LayerNorm, bias-free attention, biased lm_head)",
        aliases=_GPT_NAMES, d_ff_default=4 * d_model, architecture="GPTJForCausalLM"),
    Family(
        "llama",
        Structure(),
        {**_LLAMA_SIZES, "num_key_value_heads": None, "head_dim": None, "intermediate_size": 11008,
         "vocab_size": 32000, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
         "max_position_embeddings": 2048},
        readers.llama_like(attention_bias=True, mlp_bias=True),
        "Touvron et al. 2023 §2.2; transformers LlamaModel (RMSNorm, SwiGLU, RoPE, GQA)",
        architecture="LlamaForCausalLM"),
    Family(
        "mistral",
        Structure(),
        {**_LLAMA_SIZES, "num_key_value_heads": 8, "head_dim": None, "intermediate_size": 14336, "vocab_size": 32000,
         "tie_word_embeddings": False, "max_position_embeddings": 131072, "sliding_window": 4096},
        readers.llama_like(),
        "Jiang et al. 2023; transformers MistralModel (the LLaMA block with GQA)", architecture="MistralForCausalLM"),
    Family(
        "mixtral",
        Structure(moe=True),
        {**_LLAMA_SIZES, "num_key_value_heads": 8, "head_dim": None, "intermediate_size": 14336, "vocab_size": 32000,
         "num_local_experts": 8, "num_experts_per_tok": 2, "tie_word_embeddings": False,
         "max_position_embeddings": 131072},
        readers.llama_like(experts=True),
        "Jiang et al. 2024; transformers MixtralModel (top-2 of 8 SwiGLU experts, router without bias)",
        aliases={"num_experts": "num_local_experts"}, architecture="MixtralForCausalLM"),
    Family(
        "qwen2",
        Structure(attn_bias="qkv"),
        {**_LLAMA_SIZES, "num_key_value_heads": 32, "head_dim": None, "intermediate_size": 22016,
         "vocab_size": 151936, "tie_word_embeddings": False, "max_position_embeddings": 32768},
        readers.llama_like(qwen_window=True),
        "Qwen2 report (Yang et al. 2024); transformers Qwen2Model (q/k/v biases, no o bias)",
        architecture="Qwen2ForCausalLM"),
    Family(
        "qwen3",
        Structure(qk_norm=True),
        {**_LLAMA_SIZES, "num_key_value_heads": 32, "head_dim": 128, "intermediate_size": 22016,
         "vocab_size": 151936, "attention_bias": False, "tie_word_embeddings": False,
         "max_position_embeddings": 32768},
        readers.llama_like(attention_bias=True, qwen_window=True),
        "Qwen3 report (2025); transformers Qwen3Model (q_norm, k_norm RMSNorm per head)",
        architecture="Qwen3ForCausalLM"),
    Family(
        "gemma",
        Structure(tied_head=True),
        {"hidden_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 16,
         "head_dim": 256, "intermediate_size": 24576, "vocab_size": 256000, "attention_bias": False,
         "tie_word_embeddings": True, "max_position_embeddings": 8192},
        readers.llama_like(attention_bias=True),
        "Gemma report (2024); transformers GemmaModel (RMSNorm, GeGLU, head_dim 256, tied)",
        architecture="GemmaForCausalLM"),
    Family(
        "phi",
        Structure(attn_bias="all", parallel=True, mlp="gelu", mlp_bias=True, norm="layernorm", norms_per_layer=1,
                  head_bias=True),
        {"hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": None,
         "intermediate_size": 8192, "vocab_size": 51200, "qk_layernorm": False, "tie_word_embeddings": False,
         "max_position_embeddings": 2048},
        readers.phi,
        "Li et al. 2023 (phi-1.5), phi-2; transformers PhiModel (parallel block, one LayerNorm, biased lm_head)",
        architecture="PhiForCausalLM"),
    Family(
        "phi3",
        Structure(),
        {"hidden_size": 3072, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
         "intermediate_size": 8192, "vocab_size": 32064, "tie_word_embeddings": False,
         "max_position_embeddings": 4096},
        readers.llama_like(),
        "Abdin et al. 2024; transformers Phi3Model (fused qkv and gate_up, RMSNorm)", architecture="Phi3ForCausalLM"),
    Family(
        "falcon",
        Structure(positions="rotary", parallel=True, mlp="gelu", norm="layernorm", norms_per_layer=1, tied_head=True),
        {"hidden_size": 4544, "num_hidden_layers": 32, "num_attention_heads": 71, "num_kv_heads": None,
         "multi_query": True, "new_decoder_architecture": False, "parallel_attn": True, "bias": False,
         "ffn_hidden_size": None, "alibi": False, "vocab_size": 65024, "num_ln_in_parallel_attn": None,
         "tie_word_embeddings": True, "max_position_embeddings": 2048},
        readers.falcon,
        "Almazrouei et al. 2023; transformers FalconModel (parallel attention, MQA/GQA, one or two LNs)",
        d_ff_default=4 * d_model, architecture="FalconForCausalLM"),
    Family(
        "deepseek_v2",
        Structure(mla=True, moe=True, shared_experts=True),
        {"vocab_size": 102400, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": None, "tie_word_embeddings": False, "attention_bias": False,
         "mlp_bias": False, "first_k_dense_replace": 0, "kv_lora_rank": 512, "q_lora_rank": 1536,
         "n_routed_experts": 64, "n_shared_experts": 2, "moe_intermediate_size": 1407, "qk_nope_head_dim": 128,
         "qk_rope_head_dim": 64, "v_head_dim": 128, "num_experts_per_tok": None, "max_position_embeddings": 2048},
        readers.deepseek(v3=False),
        "DeepSeek-V2 report (DeepSeek-AI 2024) §2.1 MLA, §2.2 DeepSeekMoE; transformers DeepseekV2Model "
        "(first_k_dense_replace dense layers, shared experts, router without bias)",
        aliases={"num_experts": "n_routed_experts"}, architecture="DeepseekV2ForCausalLM"),
    Family(
        "deepseek_v3",
        Structure(mla=True, moe=True, shared_experts=True, dense_layers=True, mtp=True),
        {"vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
         "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128, "n_shared_experts": 1,
         "n_routed_experts": 256, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
         "v_head_dim": 128, "qk_nope_head_dim": 128, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
         "tie_word_embeddings": False, "attention_bias": False, "num_nextn_predict_layers": 1,
         "max_position_embeddings": 4096},
        readers.deepseek(v3=True),
        "DeepSeek-V3 report (DeepSeek-AI 2024) §2.1 (MLA, DeepSeekMoE with auxiliary-loss-free balancing: "
        "e_score_correction_bias is a buffer), §2.2 MTP; transformers DeepseekV3Model",
        aliases={"num_local_experts": "n_routed_experts", "num_mtp_layers": "num_nextn_predict_layers"},
        architecture="DeepseekV3ForCausalLM"),
    Family(
        "qwen2_moe",
        Structure(attn_bias="qkv", moe=True, shared_experts=True, shared_expert_gate=True),
        {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24,
         "num_attention_heads": 16, "num_key_value_heads": 16, "tie_word_embeddings": False,
         "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28, "decoder_sparse_step": 1,
         "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts_per_tok": 4,
         "num_experts": 60, "mlp_only_layers": [], "qkv_bias": True, "layer_types": None,
         "max_position_embeddings": 32768},
        readers.qwen2_moe,
        "Qwen1.5-MoE / Qwen2 report (Yang et al. 2024) §2.2.2; transformers Qwen2MoeModel (q/k/v biases, a shared "
        "expert with a sigmoid gate, decoder_sparse_step, mlp_only_layers)", architecture="Qwen2MoeForCausalLM"),
    Family(
        "qwen3_moe",
        Structure(qk_norm=True, moe=True),
        {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 24,
         "num_attention_heads": 32, "num_key_value_heads": 4, "tie_word_embeddings": False, "attention_bias": False,
         "use_sliding_window": False, "sliding_window": 4096, "decoder_sparse_step": 1, "moe_intermediate_size": 768,
         "num_experts_per_tok": 8, "num_experts": 128, "mlp_only_layers": [], "max_position_embeddings": 32768},
        readers.qwen3_moe,
        "Qwen3 report (2025) §2; transformers Qwen3MoeModel (q/k norms per head, 128 experts, no shared expert)",
        aliases={"num_local_experts": "num_experts"}, architecture="Qwen3MoeForCausalLM"),
    Family(
        "qwen3_next",
        Structure(qk_norm=True, attn_output_gate=True, moe=True, shared_experts=True, shared_expert_gate=True,
                  mixers="linear_attention+full_attention"),
        {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 48,
         "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256, "tie_word_embeddings": False,
         "attention_bias": False, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
         "linear_value_head_dim": 128, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
         "decoder_sparse_step": 1, "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512,
         "num_experts_per_tok": 10, "num_experts": 512, "mlp_only_layers": [], "layer_types": None,
         "max_position_embeddings": 32768},
        readers.qwen3_next,
        "Qwen3-Next (Qwen team 2025); transformers Qwen3NextModel (gated DeltaNet in 3 of every 4 layers, gated "
        "attention with a doubled q_proj, 512 experts with a gated shared expert)",
        architecture="Qwen3NextForCausalLM"),
    Family(
        "gpt_oss",
        Structure(attn_bias="all", sinks=True, moe=True, expert_bias=True, router_bias=True,
                  mixers="sliding_attention+full_attention"),
        {"num_hidden_layers": 36, "num_local_experts": 128, "vocab_size": 201088, "hidden_size": 2880,
         "intermediate_size": 2880, "head_dim": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
         "sliding_window": 128, "tie_word_embeddings": False, "attention_bias": True, "num_experts_per_tok": 4,
         "layer_types": None, "max_position_embeddings": 131072},
        readers.gpt_oss,
        "gpt-oss model card (OpenAI 2025) §2; transformers GptOssModel (alternating banded-window and full "
        "attention, attention sinks, router and experts with biases)",
        aliases={"num_experts": "num_local_experts"}, architecture="GptOssForCausalLM"),
    Family(
        "llama4_text",
        Structure(moe=True, shared_experts=True, mixers="chunked_attention+full_attention"),
        {"vocab_size": 202048, "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
         "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
         "tie_word_embeddings": False, "num_experts_per_tok": 1, "num_local_experts": 16, "moe_layers": None,
         "interleave_moe_layer_step": 1, "no_rope_layers": None, "no_rope_layer_interval": 4,
         "attention_chunk_size": 8192, "layer_types": None, "attention_bias": False,
         "max_position_embeddings": 131072},
        readers.llama4_text,
        "Llama 4 (Meta 2025); transformers Llama4TextModel (chunked attention with RoPE, every 4th layer global "
        "without positions, MoE with a shared expert, parameter-free L2 q/k norms)", architecture="Llama4ForCausalLM"),
    Family(
        "gemma2",
        Structure(norms_per_layer=4, tied_head=True, mixers="sliding_attention+full_attention"),
        {"vocab_size": 256000, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
         "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "tie_word_embeddings": True,
         "attention_bias": False, "sliding_window": 4096, "layer_types": None, "max_position_embeddings": 8192},
        readers.gemma2,
        "Gemma 2 report (Gemma Team 2024) §2 (local sliding-window and global attention alternating, pre- and "
        "post-norms); transformers Gemma2Model", architecture="Gemma2ForCausalLM"),
    Family(
        "gemma3_text",
        Structure(norms_per_layer=4, tied_head=True, qk_norm=True, mixers="sliding_attention+full_attention"),
        {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
         "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "tie_word_embeddings": True,
         "attention_bias": False, "sliding_window": 4096, "layer_types": None, "sliding_window_pattern": 6,
         "use_bidirectional_attention": False, "max_position_embeddings": 131072},
        readers.gemma3_text,
        "Gemma 3 report (Gemma Team 2025) §2 (5 local layers per global layer, q/k norms); transformers "
        "Gemma3TextModel", architecture="Gemma3ForCausalLM"),
    Family(
        "olmo2",
        Structure(qk_norm=True, qk_norm_scope="projection"),
        {"vocab_size": 50304, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": None, "tie_word_embeddings": False,
         "attention_bias": False, "max_position_embeddings": 2048},
        readers.olmo2,
        "OLMo 2 (OLMo et al. 2024) §3 (post-norms, q/k RMSNorms over the projections); transformers Olmo2Model",
        architecture="Olmo2ForCausalLM"),
    Family(
        "olmoe",
        Structure(qk_norm=True, qk_norm_scope="projection", moe=True),
        {"vocab_size": 50304, "hidden_size": 2048, "intermediate_size": 2048, "num_hidden_layers": 16,
         "num_attention_heads": 16, "num_key_value_heads": None, "tie_word_embeddings": False,
         "attention_bias": False, "num_experts_per_tok": 8, "num_experts": 64, "max_position_embeddings": 4096},
        readers.olmoe,
        "OLMoE (Muennighoff et al. 2024) §2; transformers OlmoeModel (64 experts, top 8, q/k norms)",
        aliases={"num_local_experts": "num_experts"}, architecture="OlmoeForCausalLM"),
    Family(
        "stablelm",
        Structure(norm="layernorm", qk_norm_scope="projection"),
        {"vocab_size": 50304, "intermediate_size": 6912, "hidden_size": 2560, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": 32, "tie_word_embeddings": False, "use_qkv_bias": False,
         "qk_layernorm": False, "use_parallel_residual": False, "max_position_embeddings": 4096},
        readers.stablelm,
        "StableLM 2 (Bellagente et al. 2024); transformers StableLmModel (LayerNorms with biases, optional q/k/v "
        "biases, per-head q/k LayerNorms, optional parallel residual)", architecture="StableLmForCausalLM"),
    Family(
        "starcoder2",
        Structure(attn_bias="all", mlp="gelu", mlp_bias=True, norm="layernorm", tied_head=True),
        {"vocab_size": 49152, "hidden_size": 3072, "intermediate_size": 12288, "num_hidden_layers": 30,
         "num_attention_heads": 24, "num_key_value_heads": 2, "use_bias": True, "tie_word_embeddings": True,
         "sliding_window": None, "max_position_embeddings": 4096},
        readers.starcoder2,
        "StarCoder 2 (Lozhkov et al. 2024) §6; transformers Starcoder2Model (GQA, biased projections, 2-matrix GELU "
        "MLP, LayerNorms)", architecture="Starcoder2ForCausalLM"),
    Family(
        "cohere",
        Structure(parallel=True, norm="layernorm_nobias", norms_per_layer=1, tied_head=True,
                  qk_norm_scope="projection"),
        {"vocab_size": 256000, "hidden_size": 8192, "intermediate_size": 22528, "num_hidden_layers": 40,
         "num_attention_heads": 64, "num_key_value_heads": None, "tie_word_embeddings": True, "attention_bias": False,
         "use_qk_norm": False, "max_position_embeddings": 8192},
        readers.cohere,
        "Command R (Cohere 2024); transformers CohereModel (parallel attention and MLP after one bias-free LayerNorm, "
        "tied embeddings, optional per-head q/k norms)", architecture="CohereForCausalLM"),
    Family(
        "nemotron_h",
        Structure(mixers="mamba+full_attention", separate_mlp=True, mlp="gelu", norms_per_layer=1),
        {"vocab_size": 131072, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8,
         "head_dim": 128, "intermediate_size": 21504, "mlp_bias": False, "ssm_state_size": 128,
         "mamba_num_heads": 128, "mamba_head_dim": 64, "n_groups": 8, "conv_kernel": 4, "use_conv_bias": True,
         "use_bias": False, "n_routed_experts": 8, "moe_intermediate_size": 7688,
         "moe_shared_expert_intermediate_size": 7688, "moe_latent_size": None, "num_experts_per_tok": 2,
         "tie_word_embeddings": False, "max_position_embeddings": 4096},
        readers.nemotron_h,
        "Nemotron-H (NVIDIA 2025) §2 (Mamba-2 layers with a few self-attention layers and separate squared-ReLU MLP "
        "layers); transformers NemotronHModel (one RMSNorm per block; lm_head never tied)",
        aliases={"num_local_experts": "n_routed_experts", "mamba_n_groups": "n_groups", "mamba_d_conv": "conv_kernel",
                 "mamba_conv_bias": "use_conv_bias"}, architecture="NemotronHForCausalLM"),
    Family(
        "granite",
        Structure(),
        {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
         "num_attention_heads": 32, "num_key_value_heads": None, "tie_word_embeddings": False,
         "attention_bias": False, "mlp_bias": False, "max_position_embeddings": 2048},
        readers.granite,
        "Granite 3.0 (IBM 2024); transformers GraniteModel (the LLaMA block; its multipliers are scalars, not "
        "parameters)", architecture="GraniteForCausalLM"),
    Family(
        "glm4_moe",
        Structure(attn_bias="none", moe=True, shared_experts=True, dense_layers=True, mtp=True),
        {"vocab_size": 151552, "hidden_size": 4096, "intermediate_size": 10944, "num_hidden_layers": 46,
         "num_attention_heads": 96, "num_key_value_heads": 8, "tie_word_embeddings": False, "attention_bias": False,
         "moe_intermediate_size": 1408, "num_experts_per_tok": 8, "n_shared_experts": 1, "n_routed_experts": 128,
         "first_k_dense_replace": 1, "use_qk_norm": False, "num_nextn_predict_layers": 1,
         "max_position_embeddings": 131072},
        readers.glm4_moe,
        "GLM-4.5 report (Zhipu AI 2025) §2; transformers Glm4MoeModel (q/k/v biases without an o bias, "
        "first_k_dense_replace dense layers, a shared expert, MTP layer not built)",
        aliases={"num_local_experts": "n_routed_experts", "num_mtp_layers": "num_nextn_predict_layers"},
        architecture="Glm4MoeForCausalLM"),
]}

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
