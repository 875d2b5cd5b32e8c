"""Steering hooks on a tiny random bridge: exact additions, alpha 0, cached vs uncached, cleanup."""

import pytest
import torch

import roast_tl
from roast_tl.generation import encode_prompt, generate_tokens
from roast_tl.hooks import CURRENT_WINDOW, DecodeWindow, SteeringHook, steered_slice
from roast_tl.vector import SteeringVector

HOOK = "blocks.1.hook_resid_post"


def _vector(model, seed=0, scale=3.0, hooks=(HOOK,)):
    gen = torch.Generator().manual_seed(seed)
    vectors = {h: scale * torch.randn(model.cfg.d_model, generator=gen) for h in hooks}
    return SteeringVector(vectors, {"model_name": model.cfg.model_name})


def _tokens(model, text="the movie was good . review sentiment"):
    return torch.tensor([encode_prompt(model, text)])


def test_alpha_zero_is_bit_identical(tiny_model):
    tokens = _tokens(tiny_model)
    base = tiny_model(tokens)
    for positions in ("last", "all", "prefill"):
        for mode in ("add", "multiply"):
            with roast_tl.steer(tiny_model, _vector(tiny_model), 0.0, positions=positions, mode=mode):
                steered = tiny_model(tokens)
            assert torch.equal(base, steered)


@pytest.mark.parametrize("positions,expected_rows", [("last", [7]), ("prefill", [7]), ("all", list(range(8)))])
def test_hook_adds_exactly_alpha_v_at_chosen_positions(tiny_model, positions, expected_rows):
    tokens = _tokens(tiny_model)
    assert tokens.shape[1] == 8  # BOS + 7 words
    vector = _vector(tiny_model)
    _, clean = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    with roast_tl.steer(tiny_model, vector, 2.5, positions=positions):
        _, steered = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    delta = (steered[HOOK] - clean[HOOK])[0]
    for pos in range(tokens.shape[1]):
        if pos in expected_rows:
            torch.testing.assert_close(delta[pos], 2.5 * vector[HOOK], rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(delta[pos], torch.zeros_like(delta[pos]))


def test_multiplicative_mode_adds_alpha_v_times_h(tiny_model):
    tokens = _tokens(tiny_model)
    vector = _vector(tiny_model)
    _, clean = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    with roast_tl.steer(tiny_model, vector, 0.5, mode="multiply"):
        _, steered = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    expected = clean[HOOK][0, -1] + 0.5 * vector[HOOK] * clean[HOOK][0, -1]
    torch.testing.assert_close(steered[HOOK][0, -1], expected)
    assert torch.equal(steered[HOOK][0, :-1], clean[HOOK][0, :-1])


def test_fwd_hooks_compose_with_run_with_hooks(tiny_model):
    tokens = _tokens(tiny_model)
    vector = _vector(tiny_model)
    with roast_tl.steer(tiny_model, vector, 1.5):
        via_context = tiny_model(tokens)
    via_list = tiny_model.run_with_hooks(tokens, fwd_hooks=vector.fwd_hooks(1.5))
    assert torch.equal(via_context, via_list)
    assert not torch.equal(via_list, tiny_model(tokens))


def test_hooks_removed_on_exit_and_on_exception(tiny_model):
    tokens = _tokens(tiny_model)
    base = tiny_model(tokens)
    with roast_tl.steer(tiny_model, _vector(tiny_model), 4.0):
        assert tiny_model.hook_dict[HOOK]._forward_hooks
    assert torch.equal(tiny_model(tokens), base)
    with pytest.raises(RuntimeError, match="boom"):
        with roast_tl.steer(tiny_model, _vector(tiny_model), 4.0):
            raise RuntimeError("boom")
    assert not tiny_model.hook_dict[HOOK]._forward_hooks
    assert torch.equal(tiny_model(tokens), base)


PROMPTS = ["the movie was good .", "this food was awful", "what is 3 plus 4 ?"]


@pytest.mark.parametrize("positions", ["last", "prefill", "all"])
def test_greedy_steered_generation_same_with_and_without_kv_cache(tiny_model, positions):
    encoded = [encode_prompt(tiny_model, p) for p in PROMPTS]
    vector = _vector(tiny_model, scale=8.0)
    with roast_tl.steer(tiny_model, vector, 1.0, positions=positions):
        cached = generate_tokens(tiny_model, encoded, max_new_tokens=8, use_cache=True)
        uncached = generate_tokens(tiny_model, encoded, max_new_tokens=8, use_cache=False)
    unsteered = generate_tokens(tiny_model, encoded, max_new_tokens=8)
    assert cached.tokens == uncached.tokens
    assert cached.tokens != unsteered.tokens  # the steering is strong enough to matter


def test_batched_left_padded_generation_matches_single_prompts(tiny_model):
    encoded = [encode_prompt(tiny_model, p) for p in PROMPTS]
    batched = generate_tokens(tiny_model, encoded, max_new_tokens=6)
    singles = [generate_tokens(tiny_model, [e], max_new_tokens=6).tokens[0] for e in encoded]
    assert batched.tokens == singles


def test_sampling_is_reproducible_per_seed(tiny_model):
    encoded = [encode_prompt(tiny_model, p) for p in PROMPTS]

    def run(seed):
        gens = [torch.Generator().manual_seed(seed + i) for i in range(len(encoded))]
        return generate_tokens(tiny_model, encoded, max_new_tokens=8, temperature=1.0, top_p=0.9,
                               generators=gens).tokens

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_steered_slice_absolute_positions():
    window = DecodeWindow(offset=0, prompt_len=5)
    assert steered_slice(5, "last", window) == slice(4, 5)
    assert steered_slice(7, "last", window) == slice(4, 7)  # uncached pass over 2 new tokens
    assert steered_slice(7, "prefill", window) == slice(4, 5)
    decode = DecodeWindow(offset=6, prompt_len=5)
    assert steered_slice(1, "last", decode) == slice(0, 1)
    assert steered_slice(1, "prefill", decode) is None
    assert steered_slice(1, "prefill", None) is None
    assert steered_slice(3, "all", decode) == slice(0, 3)


def test_window_is_reset_after_generation(tiny_model):
    generate_tokens(tiny_model, [encode_prompt(tiny_model, "the movie")], max_new_tokens=2)
    assert CURRENT_WINDOW.get() is None


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_alpha_is_refused(tiny_model, alpha):
    with pytest.raises(ValueError, match="alpha must be finite"):
        with roast_tl.steer(tiny_model, _vector(tiny_model), alpha):
            pass


def test_wrong_width_is_a_clear_error(tiny_model):
    bad = SteeringVector({HOOK: torch.ones(7)})
    with pytest.raises(ValueError, match="width 7.*width 32"):
        with roast_tl.steer(tiny_model, bad, 1.0):
            pass
    hook = SteeringHook(torch.ones(7), 1.0, name=HOOK)
    with pytest.raises(ValueError, match="width 7 but the activation has width 32"):
        tiny_model.run_with_hooks(_tokens(tiny_model), fwd_hooks=[(HOOK, hook)])


def test_unknown_hook_name_suggests_close_names(tiny_model):
    bad = SteeringVector({"blocks.1.hook_resid_pots": torch.ones(32)})
    with pytest.raises(ValueError, match="unknown hook name.*did you mean.*blocks.1.hook_resid_post"):
        with roast_tl.steer(tiny_model, bad, 1.0):
            pass


def test_other_model_vector_refused_unless_overridden(tiny_model):
    other = SteeringVector({HOOK: torch.ones(32)}, {"model_name": "someone/else"})
    with pytest.raises(ValueError, match="made for model 'someone/else'.*allow_other_model"):
        other.check_model(tiny_model)
    other.check_model(tiny_model, allow_other_model=True)


def test_unknown_positions_refused():
    with pytest.raises(ValueError, match="unknown positions 'first'"):
        SteeringHook(torch.ones(3), 1.0, positions="first")  # type: ignore[arg-type]
