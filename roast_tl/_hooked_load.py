"""Wrap a loaded Hugging Face model as a TransformerLens 3.x `HookedTransformer`, offline.

`HookedTransformer.from_pretrained` accepts only names on TL's official list and may reach the
hub; here the config is built from the HF model's own config and the weights are converted by
TL's own converters (`transformer_lens.pretrained.weight_conversions`) from the model in memory.
The Llama family is mapped here directly (it covers SmolLM2, Llama 2/3 and Mistral-style
checkpoints); Gemma 2 too (TL maps it by model name only); other architectures go through TL's
`convert_hf_model_config`, which reads a `config.json` by its `architectures` entry.
"""

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

_LLAMA_FAMILY = ("LlamaForCausalLM", "MistralForCausalLM")
HOOKED_ARCHITECTURES = (
    *_LLAMA_FAMILY,
    "Gemma2ForCausalLM",
    "GPT2LMHeadModel",
    "GPTNeoXForCausalLM",
    "Qwen2ForCausalLM",
)
"""HF architectures `load_model(backend="hooked")` converts (and tests or documents)."""


def _rope_theta(hf_config: Any) -> float:
    params = getattr(hf_config, "rope_parameters", None) or {}
    theta = params.get("rope_theta") if isinstance(params, dict) else None
    return float(theta or getattr(hf_config, "rope_theta", None) or 10000.0)


def _head_dim(hf_config: Any) -> int:
    head_dim = getattr(hf_config, "head_dim", None)
    return int(head_dim or hf_config.hidden_size // hf_config.num_attention_heads)


def _kv_heads(hf_config: Any) -> int | None:
    kv = getattr(hf_config, "num_key_value_heads", None)
    return None if kv is None or kv == hf_config.num_attention_heads else int(kv)


def _rotary_rms_fields(hf_config: Any) -> dict[str, Any]:
    """The HookedTransformerConfig fields Llama-family and Gemma 2 configs share: widths, heads,
    RMS norm and rotary positions."""
    return {
        "d_model": hf_config.hidden_size,
        "d_head": _head_dim(hf_config),
        "n_heads": hf_config.num_attention_heads,
        "n_key_value_heads": _kv_heads(hf_config),
        "d_mlp": hf_config.intermediate_size,
        "n_layers": hf_config.num_hidden_layers,
        "n_ctx": hf_config.max_position_embeddings,
        "eps": hf_config.rms_norm_eps,
        "d_vocab": hf_config.vocab_size,
        "normalization_type": "RMS",
        "positional_embedding_type": "rotary",
        "rotary_dim": _head_dim(hf_config),
        "rotary_base": _rope_theta(hf_config),
    }


def _llama_config(hf_config: Any) -> dict[str, Any]:
    """HookedTransformerConfig fields of a Llama-family HF config (RMS norm, rotary, gated SiLU)."""
    scaling = getattr(hf_config, "rope_parameters", None) or getattr(
        hf_config, "rope_scaling", None
    )
    rope_type = scaling.get("rope_type", "default") if isinstance(scaling, dict) else "default"
    if rope_type not in ("default", "llama3"):
        raise ValueError(
            f"this Llama-family model uses {rope_type!r} RoPE scaling, which roast_tl's hooked "
            'loader does not map; load it with backend="bridge" (transformer-lens 4.3)'
        )
    fields = {
        **_rotary_rms_fields(hf_config),
        "act_fn": hf_config.hidden_act,
        "rotary_adjacent_pairs": False,
        "final_rms": True,
        "gated_mlp": True,
        "original_architecture": "LlamaForCausalLM",
    }
    if rope_type == "llama3":
        from transformer_lens.loading_from_pretrained import _apply_llama3_rope_scaling

        _apply_llama3_rope_scaling(fields, hf_config)
    return fields


def _gemma2_config(hf_config: Any) -> dict[str, Any]:
    """HookedTransformerConfig fields of a Gemma 2 HF config (local/global attention, soft caps)."""
    layer_types = getattr(hf_config, "layer_types", None) or [
        "sliding_attention" if i % 2 == 0 else "full_attention"
        for i in range(hf_config.num_hidden_layers)
    ]
    return {
        **_rotary_rms_fields(hf_config),
        "act_fn": hf_config.hidden_activation,
        "use_attn_scale": True,
        "attn_scale": float(hf_config.query_pre_attn_scalar) ** 0.5,
        "window_size": hf_config.sliding_window,
        "use_local_attn": True,
        "attn_types": ["local" if t == "sliding_attention" else "global" for t in layer_types],
        "attn_scores_soft_cap": hf_config.attn_logit_softcapping,
        "output_logits_soft_cap": hf_config.final_logit_softcapping,
        "gated_mlp": True,
        "final_rms": True,
        "use_normalization_before_and_after": True,
        "original_architecture": "Gemma2ForCausalLM",
    }


def _tl_config(hf_config: Any) -> dict[str, Any]:
    """TL's own mapping, by `architectures`: its config.json copied into a neutrally named
    folder, because TL picks some architectures by substrings of the model's name."""
    from transformer_lens.loading_from_pretrained import convert_hf_model_config

    fields = hf_config.to_dict()
    if "n_positions" in fields:
        fields.setdefault("n_ctx", fields["n_positions"])  # TL reads GPT-2's older name
    with tempfile.TemporaryDirectory(prefix="roast_tl_cfg_") as folder:
        (Path(folder) / "config.json").write_text(json.dumps(fields))
        return dict(convert_hf_model_config(folder, local_files_only=True))


def hooked_config(hf_model: Any, model_name: str, dtype: torch.dtype) -> Any:
    """The `HookedTransformerConfig` of a loaded HF causal LM; a ValueError for one not mapped."""
    from transformer_lens import HookedTransformerConfig

    hf_config = hf_model.config
    architecture = (getattr(hf_config, "architectures", None) or [type(hf_model).__name__])[0]
    if architecture not in HOOKED_ARCHITECTURES:
        raise ValueError(
            f"roast_tl's hooked backend does not load {architecture} models (it loads "
            f'{", ".join(HOOKED_ARCHITECTURES)}); load it with backend="bridge" '
            "(transformer-lens 4.3)"
        )
    if architecture in _LLAMA_FAMILY:
        fields = _llama_config(hf_config)
    elif architecture == "Gemma2ForCausalLM":
        fields = _gemma2_config(hf_config)
    else:
        fields = _tl_config(hf_config)
    fields.update(model_name=model_name, dtype=dtype, init_weights=False, device="cpu")
    fields["tokenizer_prepends_bos"] = False
    # `hook_tokens` sees the token ids of each pass, so steering hooks find right padding (as
    # the bridge's `embed.hook_in` lets them).
    fields["use_hook_tokens"] = True
    return HookedTransformerConfig.from_dict(fields)


def hooked_from_hf(hf_model: Any, tokenizer: Any, model_name: str) -> Any:
    """A `HookedTransformer` with `hf_model`'s weights (converted in memory) and `tokenizer`.

    `cfg.default_prepend_bos` is False (chat prompts carry their own BOS) and the tokenizer pads
    on the left, as for the bridge.
    """
    from transformer_lens import HookedTransformer
    from transformer_lens.loading_from_pretrained import get_pretrained_state_dict

    dtype = next(hf_model.parameters()).dtype
    cfg = hooked_config(hf_model, model_name, dtype)
    if cfg.original_architecture == "LlamaForCausalLM":
        from transformer_lens.pretrained.weight_conversions import convert_llama_weights

        state_dict = convert_llama_weights(hf_model, cfg)
    else:
        with tempfile.TemporaryDirectory(prefix="roast_tl_name_") as folder:
            state_dict = get_pretrained_state_dict(folder, cfg, hf_model=hf_model, dtype=dtype)
    with warnings.catch_warnings():
        # TL 3.x announces HookedTransformer's removal in 4.0; choosing it is this backend's point.
        warnings.filterwarnings("ignore", "HookedTransformer is deprecated", DeprecationWarning)
        model = HookedTransformer(cfg, tokenizer=tokenizer, default_padding_side="left")
    model.load_and_process_state_dict(
        state_dict,
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
        refactor_factored_attn_matrices=False,
    )
    model.cfg.default_prepend_bos = False
    model.tokenizer.padding_side = "left"
    return model.eval()
