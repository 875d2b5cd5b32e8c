"""Batched, left-padded, KV-cached sampling: the equivalences it promises, and its errors."""

import contextlib

import pytest
import torch

import roast_tl
import roast_tl.generation as generation
from roast_tl.generation import complete, generate_tokens, sample_next
from roast_tl.hooks import CURRENT_WINDOW
from tests.tiny_model import HOOK, PROMPTS, encode, random_vector, unchecked


def _encoded(model, prompts=PROMPTS[:6]):
    return [encode(model, p) for p in prompts]


def _sample(model, encoded, seeds, **kwargs):
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    settings = {"max_new_tokens": 8, "temperature": 1.0, "top_p": 0.9} | kwargs
    return generate_tokens(model, encoded, generators=generators, **settings)


@pytest.mark.parametrize("positions", ["last", "prefill", "all"])
def test_steered_generation_is_the_same_with_and_without_kv_cache(tiny_model, positions):
    encoded = _encoded(tiny_model)[:3]
    vector = random_vector(tiny_model, scale=8.0)
    with roast_tl.steer(tiny_model, vector, 1.0, positions=positions):
        cached = generate_tokens(tiny_model, encoded, max_new_tokens=8, use_cache=True)
        uncached = generate_tokens(tiny_model, encoded, max_new_tokens=8, use_cache=False)
    unsteered = generate_tokens(tiny_model, encoded, max_new_tokens=8)
    assert cached.tokens == uncached.tokens
    assert cached.tokens != unsteered.tokens  # the steering is strong enough to matter


def test_batched_left_padded_generation_matches_single_prompts(tiny_model):
    encoded = _encoded(tiny_model)
    assert len({len(e) for e in encoded}) > 1  # the batch really is padded
    batched = generate_tokens(tiny_model, encoded, max_new_tokens=6)
    singles = [generate_tokens(tiny_model, [e], max_new_tokens=6).tokens[0] for e in encoded]
    assert batched.tokens == singles
    sampled = _sample(tiny_model, encoded, range(6))
    sampled_singles = [_sample(tiny_model, [e], [i]).tokens[0] for i, e in enumerate(encoded)]
    assert sampled.tokens == sampled_singles


def test_sampling_is_reproducible_per_seed(tiny_model):
    encoded = _encoded(tiny_model)
    assert (
        _sample(tiny_model, encoded, range(6)).tokens
        == _sample(tiny_model, encoded, range(6)).tokens
    )
    assert (
        _sample(tiny_model, encoded, range(6)).tokens
        != _sample(tiny_model, encoded, range(1, 7)).tokens
    )


def test_alpha_zero_generates_exactly_the_unsteered_tokens(tiny_model):
    encoded = _encoded(tiny_model)
    greedy = generate_tokens(tiny_model, encoded, max_new_tokens=6)
    sampled = _sample(tiny_model, encoded, range(6), max_new_tokens=6)
    for positions in ("last", "all", "prefill"):
        for mode in ("add", "multiply"):
            with roast_tl.steer(
                tiny_model, random_vector(tiny_model), 0.0, positions=positions, mode=mode
            ):
                assert generate_tokens(tiny_model, encoded, max_new_tokens=6) == greedy
                assert _sample(tiny_model, encoded, range(6), max_new_tokens=6) == sampled


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rows_that_stop_early_do_not_change_the_others(tiny_model, temperature):
    """Stopping (and dropping finished rows from the batch) leaves each row's tokens as without
    stops. Rows share generators in pairs, as `sample_rollouts` shares one per prompt."""
    encoded = _encoded(tiny_model)

    def run(stops):
        shared = [torch.Generator().manual_seed(i) for i in range(3)]
        generators = [shared[i // 2] for i in range(len(encoded))] if temperature else None
        return generate_tokens(
            tiny_model,
            encoded,
            max_new_tokens=10,
            temperature=temperature,
            top_p=0.95,
            generators=generators,
            stop_token_ids=stops,
        )

    free = run(())
    assert all(len(t) == 10 for t in free.tokens) and not any(free.finished)
    # Stop on tokens some rows make early: most rows finish at different steps.
    early = {t[1] for t in free.tokens[:3]} | {free.tokens[3][4]}
    stopped = run(early)
    n_finished = 0
    for full, row, finished in zip(free.tokens, stopped.tokens, stopped.finished, strict=True):
        cut = next((i + 1 for i, t in enumerate(full) if t in early), len(full))
        assert row == full[:cut]  # the stop token is kept
        assert finished == (cut < len(full) or full[-1] in early)
        n_finished += finished
    assert n_finished >= 3


def _nucleus_by_full_sort(logits, temperature, top_p, uniforms):
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    kept = sorted_probs * ((sorted_probs.cumsum(-1) - sorted_probs) < top_p)
    cdf = kept.cumsum(-1)
    choice = torch.searchsorted(cdf, uniforms[:, None] * cdf[:, -1:]).clamp_max(cdf.shape[-1] - 1)
    return order.gather(-1, choice).squeeze(-1)


@pytest.mark.parametrize("sharpness", [0.1, 1.0, 3.0, 10.0])
def test_nucleus_sampling_shortcut_matches_a_full_sort(sharpness):
    # A flat distribution needs thousands of tokens for top_p (the full-sort path), a sharp one few.
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5000, generator=gen) * sharpness
    uniforms = torch.rand(64, generator=gen)
    for top_p in (0.5, 0.9, 0.99, 1.0):
        expected = _nucleus_by_full_sort(logits, 0.8, top_p, uniforms)
        chosen = sample_next(logits, temperature=0.8, top_p=top_p, uniforms=uniforms)
        assert torch.equal(chosen, expected)


def test_sample_next_is_argmax_at_temperature_zero_and_needs_uniforms_otherwise():
    logits = torch.tensor([[0.1, 3.0, -1.0], [2.0, 0.0, 1.9]])
    assert sample_next(logits, temperature=0.0, top_p=1.0, uniforms=None).tolist() == [1, 0]
    with pytest.raises(ValueError, match="one uniform draw per row"):
        sample_next(logits, temperature=1.0, top_p=1.0, uniforms=None)


def test_bad_settings_and_empty_inputs_are_clear_errors(tiny_model):
    encoded = _encoded(tiny_model)[:2]
    with pytest.raises(ValueError, match="one torch.Generator per prompt row"):
        generate_tokens(tiny_model, encoded, max_new_tokens=2, temperature=1.0)
    with pytest.raises(ValueError, match="0 < top_p <= 1"):
        generate_tokens(tiny_model, encoded, max_new_tokens=2, top_p=0.0)
    with pytest.raises(ValueError, match="temperature >= 0"):
        generate_tokens(tiny_model, encoded, max_new_tokens=2, temperature=-1.0)
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        generate_tokens(tiny_model, encoded, max_new_tokens=0)
    with pytest.raises(ValueError, match="empty prompt list"):
        generate_tokens(tiny_model, [], max_new_tokens=2)
    with pytest.raises(ValueError, match="every prompt needs at least one token"):
        generate_tokens(tiny_model, [[5, 6], []], max_new_tokens=2)
    with pytest.raises(ValueError, match="empty prompt list"):
        roast_tl.generate(tiny_model, [])
    with pytest.raises(ValueError, match="n must be at least 1"):
        complete(tiny_model, ["the movie"], n=0, max_new_tokens=2)
    with pytest.raises(ValueError, match="one seed per user message"):
        complete(tiny_model, ["the movie"], max_new_tokens=2, temperature=1.0)


def test_the_decode_window_is_reset_after_generation_and_after_an_error(tiny_model):
    generate_tokens(tiny_model, _encoded(tiny_model)[:1], max_new_tokens=2)
    assert CURRENT_WINDOW.get() is None

    def boom(activation, hook):
        raise RuntimeError("boom")

    with tiny_model.hooks(fwd_hooks=[(HOOK, boom)]):
        with pytest.raises(RuntimeError, match="boom"):
            generate_tokens(tiny_model, _encoded(tiny_model)[:1], max_new_tokens=2)
    assert CURRENT_WINDOW.get() is None


def test_complete_formats_encodes_and_decodes_n_samples_per_message(tiny_model):
    messages = list(PROMPTS[:2])
    out = complete(tiny_model, messages, n=3, max_new_tokens=4, temperature=1.0, seeds=[5, 9])
    assert [len(row) for row in out] == [3, 3]
    for message, row, seed in zip(messages, out, [5, 9], strict=True):
        for c in row:
            # The tiny tokenizer has no chat template: the prompt is the message itself.
            assert c.prompt_text == message and c.prompt_token_ids == encode(tiny_model, message)
            assert c.text == tiny_model.tokenizer.decode(c.token_ids, skip_special_tokens=True)
        # All n samples of a message draw, in turn, from that message's one generator.
        shared = torch.Generator().manual_seed(seed)
        alone = generate_tokens(
            tiny_model,
            [encode(tiny_model, message)] * 3,
            max_new_tokens=4,
            temperature=1.0,
            generators=[shared] * 3,
        )
        assert [c.token_ids for c in row] == alone.tokens


def test_generate_returns_texts_and_seeds_prompt_i_with_seed_plus_i(tiny_model):
    prompts = list(PROMPTS[:3])
    texts = roast_tl.generate(tiny_model, prompts, max_new_tokens=5, temperature=1.0, seed=10)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    alone = roast_tl.generate(tiny_model, prompts[2:], max_new_tokens=5, temperature=1.0, seed=12)
    assert alone == texts[2:]
    greedy = roast_tl.generate(tiny_model, prompts, max_new_tokens=5)
    assert greedy == [row[0].text for row in complete(tiny_model, prompts, max_new_tokens=5)]


def test_complete_takes_one_seed_per_sample_so_each_sample_depends_on_its_own_seed(tiny_model):
    messages = list(PROMPTS[:2])
    seeds = [11, 12, 13, 21, 22, 23]  # message-major: seeds[i * n + k]
    out = complete(tiny_model, messages, n=3, max_new_tokens=4, temperature=1.0, seeds=seeds)
    for i, message in enumerate(messages):
        for k in range(3):
            alone = complete(
                tiny_model, [message], max_new_tokens=4, temperature=1.0, seeds=[seeds[3 * i + k]]
            )
            assert out[i][k] == alone[0][0]
    # One seed per message instead: the n samples share its generator, drawing in turn.
    shared = complete(tiny_model, messages, n=3, max_new_tokens=4, temperature=1.0, seeds=[11, 21])
    assert shared != out
    with pytest.raises(ValueError, match="one seed per user message or one per sample"):
        complete(tiny_model, messages, n=3, max_new_tokens=4, temperature=1.0, seeds=[1, 2, 3])


def test_a_bare_string_or_a_non_string_prompt_is_a_type_error(tiny_model):
    """S6, U3: a str would be generated one character at a time; None reached the tokenizer."""
    with pytest.raises(TypeError, match=r"must be a list of strings, got a single str; wrap"):
        unchecked(roast_tl.generate)(tiny_model, "the movie", max_new_tokens=2)
    with pytest.raises(TypeError, match="user_messages must be a list of strings"):
        unchecked(complete)(tiny_model, "the movie", max_new_tokens=2)
    with pytest.raises(TypeError, match=r"prompts\[1\] is NoneType, not str"):
        unchecked(roast_tl.generate)(tiny_model, ["the movie", None], max_new_tokens=2)


def test_a_nan_temperature_is_a_clear_error_everywhere(tiny_model):
    nan = float("nan")
    with pytest.raises(ValueError, match="need temperature >= 0"):
        roast_tl.generate(tiny_model, ["the movie"], max_new_tokens=2, temperature=nan)
    with pytest.raises(ValueError, match="need temperature >= 0"):
        generate_tokens(tiny_model, _encoded(tiny_model)[:1], max_new_tokens=2, temperature=nan)
    with pytest.raises(ValueError, match="need temperature >= 0"):
        sample_next(torch.zeros(1, 3), temperature=nan, top_p=1.0, uniforms=torch.zeros(1))


def test_a_prompt_past_the_models_context_is_refused(tiny_model):
    """S10: the tiny model's context is 256 tokens (cfg.n_ctx); prompt + new tokens must fit."""
    assert tiny_model.cfg.n_ctx == 256
    fits = [[1] + [5] * 245]  # 246 tokens + 10 new = 256
    assert (
        len(generate_tokens(tiny_model, fits, max_new_tokens=10, stop_token_ids=()).tokens[0]) == 10
    )
    with pytest.raises(ValueError, match=r"247 tokens plus max_new_tokens=10 exceeds the model's "):
        generate_tokens(tiny_model, [[1] + [5] * 246, [1, 5]], max_new_tokens=10)
    with pytest.raises(ValueError, match="context of 256 tokens"):
        roast_tl.generate(tiny_model, ["the movie"], max_new_tokens=300)


def _blow_up(activation, hook):
    return activation * float("inf")


def test_non_finite_logits_raise_instead_of_emitting_padding(tiny_model, monkeypatch):
    """S7: an overflowing steering hook made NaN logits, and greedy decoding emitted pad tokens."""
    with tiny_model.hooks(fwd_hooks=[(HOOK, _blow_up)]):
        with pytest.raises(
            ValueError,
            match=r"non-finite .* at decoding step 0 in 1 of 1 rows; "
            r"the steering hooks .* use a smaller alpha",
        ):
            roast_tl.generate(tiny_model, ["the movie"], max_new_tokens=3)
    assert CURRENT_WINDOW.get() is None
    real_forward = generation.sampling_forward
    calls = [0]

    @contextlib.contextmanager
    def nan_on_third_step(model):
        with real_forward(model) as (name, real_step):

            def step(*args, **kwargs):
                logits, past = real_step(*args, **kwargs)
                calls[0] += 1
                if calls[0] == 3:
                    logits = logits.clone()
                    logits[1, 4] = float("nan")
                return logits, past

            yield name, step

    monkeypatch.setattr(generation, "sampling_forward", nan_on_third_step)
    with pytest.raises(ValueError, match=r"step 2 in 1 of 2 rows; no hook is attached"):
        generate_tokens(tiny_model, _encoded(tiny_model)[:2], max_new_tokens=5, stop_token_ids=())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sample_next_takes_uniforms_from_another_device():
    """U6: the per-prompt generators draw on the CPU; the logits may live on a GPU."""
    gen = torch.Generator().manual_seed(0)
    logits, uniforms = torch.randn(8, 300, generator=gen), torch.rand(8, generator=gen)
    expected = sample_next(logits, temperature=0.8, top_p=0.9, uniforms=uniforms)
    on_gpu = sample_next(logits.cuda(), temperature=0.8, top_p=0.9, uniforms=uniforms)
    assert torch.equal(on_gpu.cpu(), expected)


@pytest.mark.parametrize("positions", ["last", "prefill", "all"])
def test_steered_rows_of_a_shared_prefill_equal_their_own_prefills(tiny_model, positions):
    """Repeated prompts are prefilled once, steered too: each row is what its own prefill gives."""
    a, b = _encoded(tiny_model)[:2]
    rows = [a, b, a, a]
    vector = random_vector(tiny_model, scale=8.0)
    with roast_tl.steer(tiny_model, vector, 1.0, positions=positions):
        shared = _sample(tiny_model, rows, [0, 1, 2, 3])
        alone = _sample(tiny_model, rows, [0, 1, 2, 3], use_cache=False)
    assert shared.tokens == alone.tokens
