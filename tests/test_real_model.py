"""Integration on the embedded SmolLM2-135M-Instruct (slow: loads the real model).

Guards the transformers 5.24 breakage: bridge greedy decoding, cached and uncached, must equal
HF `generate` on an unwrapped copy token for token (../shared/MODELS.md).
"""

import pytest
import torch

import roast_tl
from roast_tl.generation import encode_prompt, format_prompt, generate_tokens
from roast_tl.models import _load_hf, cache_dir, default_gguf_path

pytestmark = pytest.mark.slow

PROMPTS = [
    "What is 12 + 7? Reply with the number only.",
    "Review: The pasta was cold and the waiter ignored us.\nIs the sentiment of this review "
    "positive or negative? Answer with one word.",
    "Name a colour.",
]


@pytest.fixture(scope="module")
def model():
    return roast_tl.load_model()


@pytest.fixture(scope="module")
def unwrapped_hf():
    """A second, never-wrapped HF copy of the same weights."""
    folder = next(cache_dir().glob(f"{default_gguf_path().stem}-float32"), None)
    assert folder is not None, "load_model() should have cached the dequantized model"
    hf_model, _ = _load_hf(folder, None, torch.float32)
    return hf_model


def test_loads_offline_with_expected_shape(model):
    assert model.cfg.n_layers == 30 and model.cfg.d_model == 576
    assert model.cfg.default_prepend_bos is False
    assert "blocks.10.hook_resid_post" in model.hook_dict


def test_greedy_matches_unwrapped_hf_cached_and_uncached(model, unwrapped_hf):
    tokenizer = model.tokenizer
    for prompt in PROMPTS:
        ids = encode_prompt(model, format_prompt(model, prompt))
        ref = unwrapped_hf.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id,
        )[0, len(ids):].tolist()
        cached = generate_tokens(model, [ids], max_new_tokens=24, use_cache=True).tokens[0]
        uncached = generate_tokens(model, [ids], max_new_tokens=24, use_cache=False).tokens[0]
        assert cached == ref[: len(cached)] and len(cached) == len(ref), (prompt, cached, ref)
        assert uncached == cached
    # The bridge's own cached generate must agree too (this is what 5.24 broke).
    ids = encode_prompt(model, format_prompt(model, PROMPTS[0]))
    bridge = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                            use_past_kv_cache=True, verbose=False)
    assert bridge[0, len(ids):].tolist()[:8] == generate_tokens(model, [ids], max_new_tokens=8).tokens[0][:8]


def test_batched_generation_matches_single(model):
    encoded = [encode_prompt(model, format_prompt(model, p)) for p in PROMPTS]
    batched = generate_tokens(model, encoded, max_new_tokens=16).tokens
    singles = [generate_tokens(model, [e], max_new_tokens=16).tokens[0] for e in encoded]
    assert batched == singles


def test_small_estimate_and_steering_run(model, tmp_path):
    task = roast_tl.load_task("sentiment")
    vector = roast_tl.estimate(model, task, layers=[10], limit=6, n_rollouts=4, batch_size=24,
                               rollouts_path=tmp_path / "r.jsonl", progress=False)
    assert vector["blocks.10.hook_resid_post"].shape == (576,)
    assert vector.metadata["n_rollouts_total"] == 24
    path = vector.save(tmp_path / "v.safetensors")
    loaded = roast_tl.SteeringVector.load(path, model)
    tokens = torch.tensor([encode_prompt(model, format_prompt(model, PROMPTS[1]))])
    base = model(tokens)
    with roast_tl.steer(model, loaded, 0.0):
        assert torch.equal(model(tokens), base)
    with roast_tl.steer(model, loaded, 8.0):
        assert not torch.equal(model(tokens), base)
