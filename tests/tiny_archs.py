"""`tiny_bridge(arch)`: a tiny random TransformerBridge (2 layers, d_model 64) of a named HF family.

The architecture matrix (tests/test_architectures.py) runs on these; reuse them to reproduce a
behaviour on another family. No downloads: the config is built here, the weights are random,
the tokenizer is `tests.tiny_model`'s word-level one.

Booting a bridge from a freshly built config needs `config.architectures = [ClassName]`: TL picks
its adapter from that field, and a config made in code leaves it empty (Gemma 3, OLMo 2 and
others then fail with "Could not determine supported architecture from config").
"""

import torch
import transformers

from tests.tiny_model import make_tiny_tokenizer

D_MODEL = 64
N_LAYERS = 2

_COMMON = {
    "hidden_size": D_MODEL,
    "intermediate_size": 2 * D_MODEL,
    "num_hidden_layers": N_LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}

ARCHS: dict[str, tuple[str, str, dict]] = {
    # name: (HF config class, HF model class, config fields beyond the vocabulary and token ids)
    "gpt2": (
        "GPT2Config",
        "GPT2LMHeadModel",
        {"n_embd": D_MODEL, "n_layer": N_LAYERS, "n_head": 4, "n_positions": 256},
    ),
    "gpt_neox": (
        "GPTNeoXConfig",
        "GPTNeoXForCausalLM",
        {
            "hidden_size": D_MODEL,
            "intermediate_size": 2 * D_MODEL,
            "num_hidden_layers": N_LAYERS,
            "num_attention_heads": 4,
            "max_position_embeddings": 256,
            "use_parallel_residual": True,
        },
    ),
    "llama": ("LlamaConfig", "LlamaForCausalLM", _COMMON),
    "mistral": ("MistralConfig", "MistralForCausalLM", {**_COMMON, "sliding_window": 8}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", _COMMON),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {**_COMMON, "head_dim": 16}),
    "gemma2": (
        "Gemma2Config",
        "Gemma2ForCausalLM",
        {**_COMMON, "head_dim": 16, "sliding_window": 8, "query_pre_attn_scalar": 16},
    ),
    "gemma3": (
        "Gemma3TextConfig",
        "Gemma3ForCausalLM",
        {**_COMMON, "head_dim": 16, "sliding_window": 8, "query_pre_attn_scalar": 16},
    ),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", _COMMON),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", _COMMON),
}
"""The families of the matrix; GPT-NeoX runs attention and MLP in parallel (no resid_mid)."""

PARALLEL_BLOCKS = frozenset({"gpt_neox"})
"""Families whose blocks have no resid_mid."""


def tiny_hf_model(arch: str, seed: int = 0):
    """The random HF `(model, tokenizer)` of `arch` (a key of `ARCHS`) that `tiny_bridge` wraps."""
    config_name, model_name, fields = ARCHS[arch]
    tokenizer = make_tiny_tokenizer()
    config = getattr(transformers, config_name)(
        vocab_size=len(tokenizer), bos_token_id=1, eos_token_id=2, pad_token_id=0, **fields
    )
    config.architectures = [model_name]  # TL chooses its adapter from this field
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    return model, tokenizer


def tiny_bridge(arch: str, seed: int = 0):
    """A random TransformerBridge of `arch` (2 layers, d_model 64) with the tiny tokenizer."""
    from transformer_lens.model_bridge import TransformerBridge

    hf_model, tokenizer = tiny_hf_model(arch, seed)
    model = TransformerBridge.boot_transformers(
        tokenizer.name_or_path, hf_model=hf_model, tokenizer=tokenizer
    )
    model.cfg.default_prepend_bos = False
    model.eval()
    return model
