"""Wrapping HF models as HookedTransformers (roast_tl._hooked_load) and choosing a backend."""

import pytest
import torch
import transformers

from roast_tl._bridge import forward_step
from roast_tl._tokens import left_pad, position_ids_for
from roast_tl.models import check_backend, default_backend, load_model
from tests.tiny_model import BACKEND, make_tiny_tokenizer, requires_hooked

_SMALL = {"vocab_size": 80, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}

# One tiny random config per architecture the hooked backend loads (4 heads, d_model 32).
CONFIGS = {
    "llama-gqa": lambda: transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, **_SMALL,
    ),
    "gpt2": lambda: transformers.GPT2Config(
        n_embd=32, n_layer=2, n_head=4, n_positions=64, **_SMALL
    ),
    "gpt-neox": lambda: transformers.GPTNeoXConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64, rotary_pct=0.5, **_SMALL,
    ),
    "gemma2": lambda: transformers.Gemma2Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=64, sliding_window=4,
        query_pre_attn_scalar=8, **_SMALL,
    ),
    "qwen2": lambda: transformers.Qwen2Config(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, **_SMALL,
    ),
}  # fmt: skip


def _save(tmp_path, config):
    torch.manual_seed(0)
    config.architectures = None
    hf_model = transformers.AutoModelForCausalLM.from_config(config).eval()
    hf_model.config.architectures = [type(hf_model).__name__]
    folder = tmp_path / "model"
    hf_model.save_pretrained(folder)
    make_tiny_tokenizer().save_pretrained(folder)
    return folder, hf_model


@requires_hooked
@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_a_local_folder_loads_as_a_hooked_transformer_with_the_hf_logits(tmp_path, arch):
    folder, hf_model = _save(tmp_path, CONFIGS[arch]())
    model = load_model(folder, backend="hooked")
    assert type(model).__name__ == "HookedTransformer"
    assert model.cfg.model_name == str(folder.resolve()) and not model.cfg.default_prepend_bos
    prompts = [[1, 5, 9, 14, 20, 7, 30], [1, 40, 41]]  # 7 tokens: past Gemma 2's window of 4
    ids, mask = left_pad(prompts, 0)
    ours, _ = forward_step(model, ids, mask, position_ids_for(mask), use_cache=False)
    for row, prompt in enumerate(prompts):
        theirs = hf_model(torch.tensor([prompt])).logits[0, -1]
        torch.testing.assert_close(ours[row], theirs, rtol=0, atol=1e-4)


@requires_hooked
def test_an_architecture_the_hooked_backend_lacks_names_the_bridge(tmp_path):
    config = transformers.OPTConfig(
        hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
        word_embed_proj_dim=32, max_position_embeddings=64, **_SMALL,
    )  # fmt: skip
    folder, _ = _save(tmp_path, config)
    with pytest.raises(ValueError, match=r'does not load OPTForCausalLM.*backend="bridge"'):
        load_model(folder, backend="hooked")


def test_the_default_backend_is_the_installed_tls_and_the_other_is_refused():
    assert default_backend() == BACKEND
    assert check_backend(BACKEND) == BACKEND
    other = "hooked" if BACKEND == "bridge" else "bridge"
    with pytest.raises(ValueError, match=f'backend="{other}" needs transformer-lens'):
        check_backend(other)
    with pytest.raises(ValueError, match='backend must be "bridge" or "hooked"'):
        check_backend("vllm")


def test_the_bridge_is_refused_with_a_transformers_that_breaks_its_cache(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version
    fake = {"transformer-lens": "4.3.0", "transformers": "5.24.0"}
    monkeypatch.setattr(importlib.metadata, "version", lambda name: fake.get(name) or real(name))
    with pytest.raises(ValueError, match=r"transformers 5.24.0 breaks .* transformers<5.24"):
        check_backend("bridge")
