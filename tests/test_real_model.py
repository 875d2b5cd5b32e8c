"""Integration on the embedded SmolLM2-135M-Instruct (slow: loads the real model; `-m slow`).

Guards the transformers 5.24 breakage: bridge greedy decoding, cached and uncached, must equal
HF `generate` on an unwrapped copy token for token (../shared/MODELS.md).
"""

import pytest
import torch

import roast_tl
from roast_tl._tokens import encode_prompt, format_prompt
from roast_tl.generation import generate_tokens
from roast_tl.models import load_hf

pytestmark = pytest.mark.slow

LAYER = 10
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
def unwrapped_hf(model):
    """A second, never-wrapped HF copy of the same weights (from the cache `model` filled)."""
    hf_model, _ = load_hf()
    return hf_model


def _encoded(model, prompt):
    return encode_prompt(model.tokenizer, format_prompt(model.tokenizer, prompt))


def test_loads_offline_with_expected_shape(model):
    assert model.cfg.n_layers == 30 and model.cfg.d_model == 576
    assert model.cfg.default_prepend_bos is False
    assert f"blocks.{LAYER}.hook_resid_post" in model.hook_dict


def test_greedy_matches_unwrapped_hf_cached_and_uncached(model, unwrapped_hf):
    tokenizer = model.tokenizer
    for prompt in PROMPTS:
        ids = _encoded(model, prompt)
        ref = unwrapped_hf.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=24,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(ids) :].tolist()
        cached = generate_tokens(model, [ids], max_new_tokens=24, use_cache=True).tokens[0]
        uncached = generate_tokens(model, [ids], max_new_tokens=24, use_cache=False).tokens[0]
        assert cached == ref[: len(cached)] and len(cached) == len(ref), (prompt, cached, ref)
        assert uncached == cached
    # The bridge's own cached generate must agree too (this is what 5.24 broke).
    ids = _encoded(model, PROMPTS[0])
    bridge = model.generate(
        torch.tensor([ids]),
        max_new_tokens=8,
        do_sample=False,
        use_past_kv_cache=True,
        verbose=False,
    )
    ours = generate_tokens(model, [ids], max_new_tokens=8).tokens[0]
    assert bridge[0, len(ids) :].tolist()[:8] == ours[:8]


def test_batched_generation_matches_single(model):
    encoded = [_encoded(model, p) for p in PROMPTS]
    batched = generate_tokens(model, encoded, max_new_tokens=16).tokens
    singles = [generate_tokens(model, [e], max_new_tokens=16).tokens[0] for e in encoded]
    assert batched == singles


def test_small_estimate_and_steering_run(model, tmp_path):
    task = roast_tl.load_task("sentiment")
    vector = roast_tl.estimate(
        model,
        task,
        items=task.items("train")[:6],
        layers=[LAYER],
        n_rollouts=4,
        batch_size=24,
        rollouts_path=tmp_path / "r.jsonl",
        progress=False,
    )
    assert vector[f"blocks.{LAYER}.hook_resid_post"].shape == (model.cfg.d_model,)
    assert vector.metadata["n_rollouts_total"] == 24
    path = vector.save(tmp_path / "v.safetensors")
    loaded = roast_tl.SteeringVector.load(path, model)
    tokens = torch.tensor([_encoded(model, PROMPTS[1])])
    base = model(tokens)
    with roast_tl.steer(model, loaded, 0.0):
        assert torch.equal(model(tokens), base)
    with roast_tl.steer(model, loaded, 8.0):
        assert not torch.equal(model(tokens), base)


def test_steered_generation_means_the_same_in_roast_tl_and_tl_cached_generate(model):
    from roast_tl._warnings import UncachedGenerateWarning

    hook = f"blocks.{LAYER}.hook_resid_post"
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    ids = _encoded(model, PROMPTS[1])
    tokens = torch.tensor([ids])
    kwargs = {"max_new_tokens": 6, "do_sample": False, "verbose": False}
    with roast_tl.steer(model, direction, 16.0, hook_name=hook):
        ours = generate_tokens(model, [ids], max_new_tokens=6, stop_token_ids=()).tokens[0]
        tl_cached = model.generate(tokens, use_past_kv_cache=True, **kwargs)[0, len(ids) :]
        with pytest.warns(UncachedGenerateWarning):
            model.generate(tokens, use_past_kv_cache=False, **kwargs)
    assert tl_cached.tolist() == ours


def test_the_same_rollouts_give_the_same_vector_on_both_backends(model):
    """The bridge (TL 4.x) and the HookedTransformer (TL 3.x) live in different environments, so
    they meet through files in $ROAST_TL_BACKEND_EXCHANGE: the first backend to run samples and
    saves the rollouts; each estimates a vector from those rollouts and saves it; the second
    compares its vector with the first's (.ci/run runs both). Without the variable it skips."""
    import os
    from pathlib import Path

    from roast_tl.rollouts import load_rollouts, save_rollouts
    from tests.tiny_model import BACKEND

    folder = os.environ.get("ROAST_TL_BACKEND_EXCHANGE")
    if not folder:
        pytest.skip("set ROAST_TL_BACKEND_EXCHANGE and run -m slow in both environments")
    exchange = Path(folder)
    exchange.mkdir(parents=True, exist_ok=True)
    task = roast_tl.load_task("sentiment")
    items = task.items("train")[:8]
    rollouts_file = exchange / "rollouts.jsonl"
    if not rollouts_file.is_file():
        rollouts = roast_tl.sample_rollouts(model, task, items, n_rollouts=4, progress=False)
        save_rollouts(rollouts, rollouts_file)
    rollouts = load_rollouts(rollouts_file)
    vector = roast_tl.estimate_from_rollouts(
        model, task, rollouts, items=items, layers=[LAYER], progress=False
    )
    vector.save(exchange / f"vector-{BACKEND}.safetensors")
    other = exchange / f"vector-{'hooked' if BACKEND == 'bridge' else 'bridge'}.safetensors"
    if not other.is_file():
        pytest.skip(f"no {other.name} yet: run -m slow in the other backend's environment")
    theirs = roast_tl.SteeringVector.load(other, model)  # one model_name on both backends
    name = f"blocks.{LAYER}.hook_resid_post"
    torch.testing.assert_close(vector[name], theirs[name], rtol=1e-3, atol=1e-4)
