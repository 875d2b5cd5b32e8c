"""The HookedTransformer driver (roast_tl._hooked) on the tiny random Llama, TL 3.x only:
its KV cache, left padding and positions, and the steering equivalences of the bridge."""

import pytest
import torch

from roast_tl._bridge import forward_step
from roast_tl._hooked import HookedKVCache, is_hooked_transformer
from roast_tl._tokens import left_pad, position_ids_for
from roast_tl.generation import generate_tokens
from roast_tl.hooks import steer
from tests.tiny_model import (
    HOOK,
    PROMPTS,
    encode,
    make_tiny_hf_model,
    random_vector,
    requires_hooked,
)

pytestmark = requires_hooked


def test_the_tiny_model_is_a_hooked_transformer_with_the_hf_models_logits(tiny_model):
    hf_model, _ = make_tiny_hf_model()
    tokens = torch.tensor([encode(tiny_model, PROMPTS[2])])
    assert is_hooked_transformer(tiny_model)
    torch.testing.assert_close(tiny_model(tokens), hf_model(tokens).logits, rtol=0, atol=1e-5)


def test_a_left_padded_row_gets_the_logits_it_gets_alone(tiny_model):
    prompts = [encode(tiny_model, p) for p in (PROMPTS[4], PROMPTS[2])]  # 4 and 7 tokens
    ids, mask = left_pad(prompts, tiny_model.tokenizer.pad_token_id)
    assert mask[0].tolist() == [0, 0, 0, 1, 1, 1, 1]
    padded, _ = forward_step(tiny_model, ids, mask, position_ids_for(mask), use_cache=False)
    for row, prompt in enumerate(prompts):
        alone = torch.tensor([prompt])
        ones = torch.ones_like(alone)
        single, _ = forward_step(tiny_model, alone, ones, position_ids_for(ones), use_cache=False)
        torch.testing.assert_close(padded[row], single[0], rtol=0, atol=1e-5)


def test_rotary_positions_of_a_padded_row_start_at_its_first_token(tiny_model):
    """Shifting a row by padding must not change its rotated queries (positions skip pads)."""
    prompt = encode(tiny_model, PROMPTS[0])
    seen = []
    name = "blocks.0.attn.hook_rot_q"
    for pad in (0, 3):
        ids = torch.tensor([[0] * pad + prompt])
        mask = torch.tensor([[0] * pad + [1] * len(prompt)])
        tiny_model.run_with_hooks(
            ids,
            attention_mask=mask,
            fwd_hooks=[(name, lambda q, hook: seen.append(q[0, -len(prompt) :].clone()))],
        )
    torch.testing.assert_close(seen[0], seen[1], rtol=0, atol=1e-6)


def test_positions_that_disagree_with_the_mask_are_refused(tiny_model):
    ids = torch.tensor([encode(tiny_model, PROMPTS[0])])
    ones = torch.ones_like(ids)
    with pytest.raises(ValueError, match="numbers positions from the attention mask"):
        forward_step(tiny_model, ids, ones, position_ids_for(ones) + 1)


def test_a_cache_whose_length_disagrees_with_the_mask_is_refused(tiny_model):
    ids = torch.tensor([encode(tiny_model, PROMPTS[0])])
    ones = torch.ones_like(ids)
    _, past = forward_step(tiny_model, ids, ones, position_ids_for(ones))
    with pytest.raises(ValueError, match="the KV cache holds"):
        forward_step(tiny_model, ids[:, -1:], ones, position_ids_for(ones)[:, -1:], past)


def test_dropping_cache_rows_keeps_the_others_decoding_as_alone(tiny_model):
    prompts = [encode(tiny_model, p) for p in PROMPTS[:4]]
    ids, mask = left_pad(prompts, tiny_model.tokenizer.pad_token_id)
    _, past = forward_step(tiny_model, ids, mask, position_ids_for(mask))
    assert isinstance(past, HookedKVCache) and past.length == ids.shape[1]
    past.batch_select_indices(torch.tensor([3, 1]))
    new = torch.tensor([[5], [6]])
    kept_mask = torch.cat([mask[[3, 1]], torch.ones_like(new)], 1)
    cached, _ = forward_step(tiny_model, new, kept_mask, position_ids_for(kept_mask)[:, -1:], past)
    for row, original in enumerate((3, 1)):
        alone = torch.tensor([prompts[original] + [int(new[row])]])
        ones = torch.ones_like(alone)
        single, _ = forward_step(tiny_model, alone, ones, position_ids_for(ones), use_cache=False)
        torch.testing.assert_close(cached[row], single[0], rtol=0, atol=1e-5)


def _tokens(model, prompts, **kwargs):
    return generate_tokens(model, prompts, max_new_tokens=6, **kwargs).tokens


def test_alpha_zero_is_bitwise_the_unsteered_model(tiny_model):
    prompts = [encode(tiny_model, p) for p in PROMPTS[:3]]
    ids, mask = left_pad(prompts, tiny_model.tokenizer.pad_token_id)
    plain, _ = forward_step(tiny_model, ids, mask, position_ids_for(mask))
    with steer(tiny_model, random_vector(tiny_model), 0.0, positions="all"):
        zero, _ = forward_step(tiny_model, ids, mask, position_ids_for(mask))
    assert torch.equal(plain, zero)


def test_last_position_steering_changes_only_the_last_position(tiny_model):
    ids = torch.tensor([encode(tiny_model, PROMPTS[2])])
    later = "blocks.2.hook_resid_post"
    _, plain = tiny_model.run_with_cache(ids, names_filter=later)
    with steer(tiny_model, random_vector(tiny_model), 4.0, positions="last"):
        _, steered = tiny_model.run_with_cache(ids, names_filter=later)
    assert torch.equal(plain[later][:, :-1], steered[later][:, :-1])
    assert not torch.allclose(plain[later][:, -1], steered[later][:, -1])


def test_steered_greedy_decoding_cached_uncached_batched_and_alone_agree(tiny_model):
    prompts = [encode(tiny_model, p) for p in PROMPTS[:4]]
    vector = random_vector(tiny_model, hooks=(HOOK,))
    with steer(tiny_model, vector, 2.0):
        cached = _tokens(tiny_model, prompts, stop_token_ids=())
        uncached = _tokens(tiny_model, prompts, stop_token_ids=(), use_cache=False)
        alone = [_tokens(tiny_model, [p], stop_token_ids=())[0] for p in prompts]
    plain = _tokens(tiny_model, prompts, stop_token_ids=())
    assert cached == uncached == alone
    assert cached != plain


def test_rows_that_stop_early_leave_the_others_unchanged(tiny_model):
    """Stopping on a common token drops finished rows from the batch (and the cache)."""
    prompts = [encode(tiny_model, p) for p in PROMPTS]
    first = _tokens(tiny_model, prompts, stop_token_ids=())
    stop = {row[1] for row in first[:4]}
    batched = _tokens(tiny_model, prompts, stop_token_ids=stop)
    alone = [_tokens(tiny_model, [p], stop_token_ids=stop)[0] for p in prompts]
    assert batched == alone
    assert any(len(row) < 6 for row in batched)
