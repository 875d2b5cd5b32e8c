"""Steering hooks and `steer`: exact additions, alpha 0, composition with TL, cleanup, errors."""

import warnings

import pytest
import torch
from transformer_lens.hook_points import HookPoint

import roast_tl
from roast_tl._bridge import forward_step
from roast_tl._tokens import left_pad, position_ids_for
from roast_tl.evaluate import evaluate
from roast_tl.hooks import CURRENT_WINDOW, SteeringHook, check_alpha
from roast_tl.positions import DecodeWindow
from roast_tl.vector import SteeringVector
from tests.tiny_model import (
    BACKEND,
    HOOK,
    PROMPTS,
    construct_unchecked,
    encode,
    make_tiny_model_in,
    random_vector,
    requires_bridge,
    tiny_task,
    unchecked,
)

TEXT = "the movie was good . review sentiment"  # BOS + 7 words = 8 tokens


def _tokens(model):
    return torch.tensor([encode(model, TEXT)])


def test_hook_on_raw_tensors_adds_and_multiplies_at_the_window():
    activation = torch.arange(24.0).reshape(2, 3, 4)
    vector = torch.tensor([1.0, 0.0, -1.0, 2.0])
    token = CURRENT_WINDOW.set(DecodeWindow(offset=0, prompt_len=2))
    try:
        added = SteeringHook(vector, 0.5)(activation, HookPoint())
        multiplied = SteeringHook(vector, 0.5, mode="multiply")(activation, HookPoint())
    finally:
        CURRENT_WINDOW.reset(token)
    expected = activation.clone()
    expected[:, 1:] += 0.5 * vector  # the last prompt token (1) and the generated one (2)
    assert torch.equal(added, expected)
    expected = activation.clone()
    expected[:, 1:] += 0.5 * vector * activation[:, 1:]
    assert torch.equal(multiplied, expected)
    assert torch.equal(activation, torch.arange(24.0).reshape(2, 3, 4))  # input left alone


def test_alpha_zero_is_bit_identical(tiny_model):
    tokens = _tokens(tiny_model)
    ids, mask = left_pad([encode(tiny_model, p) for p in PROMPTS[:3]], 0)
    base = tiny_model(tokens)
    base_logits, _ = forward_step(tiny_model, ids, mask, position_ids_for(mask), use_cache=False)
    for positions in ("last", "all", "prefill"):
        for mode in ("add", "multiply"):
            vector = random_vector(tiny_model)
            with roast_tl.steer(tiny_model, vector, 0.0, positions=positions, mode=mode):
                assert torch.equal(tiny_model(tokens), base)
                logits, _ = forward_step(
                    tiny_model, ids, mask, position_ids_for(mask), use_cache=False
                )
                assert torch.equal(logits, base_logits)


@pytest.mark.parametrize(
    "positions,expected_rows", [("last", [7]), ("prefill", [7]), ("all", list(range(8)))]
)
def test_steer_adds_exactly_alpha_v_at_the_chosen_positions(tiny_model, positions, expected_rows):
    tokens = _tokens(tiny_model)
    assert tokens.shape[1] == 8
    vector = random_vector(tiny_model)
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
    vector = random_vector(tiny_model)
    _, clean = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    with roast_tl.steer(tiny_model, vector, 0.5, mode="multiply"):
        _, steered = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    h = clean[HOOK][0, -1]
    torch.testing.assert_close(steered[HOOK][0, -1], h + 0.5 * vector[HOOK] * h)
    assert torch.equal(steered[HOOK][0, :-1], clean[HOOK][0, :-1])


def test_steering_composes_with_run_with_hooks_and_run_with_cache(tiny_model):
    tokens = _tokens(tiny_model)
    vector = random_vector(tiny_model)
    with roast_tl.steer(tiny_model, vector, 1.5):
        via_context = tiny_model(tokens)
    seen = {}

    def read(activation, hook):
        seen["h"] = activation.detach().clone()

    later = "blocks.2.hook_resid_pre"  # the steered stream, one hook later
    via_list = tiny_model.run_with_hooks(tokens, fwd_hooks=[*vector.fwd_hooks(1.5), (later, read)])
    assert torch.equal(via_context, via_list)
    assert not torch.equal(via_list, tiny_model(tokens))
    with roast_tl.steer(tiny_model, vector, 1.5):
        _, cache = tiny_model.run_with_cache(tokens, names_filter=[later])
    assert torch.equal(cache[later], seen["h"])


def test_hooks_removed_on_exit_and_on_exception(tiny_model):
    tokens = _tokens(tiny_model)
    base = tiny_model(tokens)
    hook_point = tiny_model.hook_dict[HOOK]
    with roast_tl.steer(tiny_model, random_vector(tiny_model), 4.0):
        assert hook_point.has_hooks()
    assert not hook_point.has_hooks()
    assert torch.equal(tiny_model(tokens), base)
    with pytest.raises(RuntimeError, match="boom"):
        with roast_tl.steer(tiny_model, random_vector(tiny_model), 4.0):
            raise RuntimeError("boom")
    assert not hook_point.has_hooks()
    assert torch.equal(tiny_model(tokens), base)


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_alpha_is_refused_everywhere(tiny_model, alpha):
    vector = random_vector(tiny_model)
    with pytest.raises(ValueError, match="alpha must be finite"):
        check_alpha(alpha)
    with pytest.raises(ValueError, match="alpha must be finite"):
        SteeringHook(torch.ones(3), alpha)
    with pytest.raises(ValueError, match="alpha must be finite"):
        vector.fwd_hooks(alpha)
    with pytest.raises(ValueError, match="alpha must be finite"):
        with roast_tl.steer(tiny_model, vector, alpha):
            pass
    with pytest.raises(ValueError, match="alpha must be finite"):
        evaluate(tiny_model, tiny_task(), vector, alpha, progress=False)


def test_alpha_must_be_a_real_number():
    assert unchecked(check_alpha)(2) == 2.0 and isinstance(unchecked(check_alpha)(2), float)
    with pytest.raises(TypeError, match="alpha must be a real number, got 'big'"):
        unchecked(check_alpha)("big")


def test_wrong_width_is_a_clear_error(tiny_model):
    bad = SteeringVector({HOOK: torch.ones(7)})
    with pytest.raises(ValueError, match="width 7.*width 32"):
        with roast_tl.steer(tiny_model, bad, 1.0):
            pass
    hook = SteeringHook(torch.ones(7), 1.0, name=HOOK)
    with pytest.raises(ValueError, match="width 7 but the activation has width 32"):
        tiny_model.run_with_hooks(_tokens(tiny_model), fwd_hooks=[(HOOK, hook)])


def test_bad_hook_settings_are_refused():
    with pytest.raises(ValueError, match="unknown positions 'first'.*'prefill'"):
        construct_unchecked(SteeringHook, torch.ones(3), 1.0, positions="first")
    with pytest.raises(ValueError, match="unknown steering mode 'scale'.*'multiply'"):
        construct_unchecked(SteeringHook, torch.ones(3), 1.0, mode="scale")
    with pytest.raises(ValueError, match="must be 1-D"):
        construct_unchecked(SteeringHook, torch.ones(2, 3), 1.0)
    with pytest.raises(ValueError, match=r"expected activations of shape \(batch, pos, d_act\)"):
        SteeringHook(torch.ones(3), 1.0)(torch.ones(2, 3), HookPoint())


def test_steer_can_skip_the_model_check(tiny_model):
    other = random_vector(tiny_model)
    other.metadata["model_name"] = "someone/else"
    with pytest.raises(ValueError, match="made for model 'someone/else'"):
        with roast_tl.steer(tiny_model, other, 1.0):
            pass
    tokens = _tokens(tiny_model)
    with roast_tl.steer(tiny_model, other, 1.0, check_model=False):
        steered = tiny_model(tokens)
    assert torch.equal(steered, tiny_model.run_with_hooks(tokens, fwd_hooks=other.fwd_hooks(1.0)))


def test_steer_accepts_another_models_vector_when_allowed_here_or_at_load(tiny_model, tmp_path):
    other = random_vector(tiny_model)
    other.metadata["model_name"] = "/old/path"
    tokens = _tokens(tiny_model)
    expected = tiny_model.run_with_hooks(tokens, fwd_hooks=other.fwd_hooks(1.0))
    with roast_tl.steer(tiny_model, other, 1.0, allow_other_model=True):
        assert torch.equal(tiny_model(tokens), expected)
    loaded = SteeringVector.load(
        other.save(tmp_path / "v.safetensors"), tiny_model, allow_other_model=True
    )
    with roast_tl.steer(tiny_model, loaded, 1.0):  # remembered from load
        assert torch.equal(tiny_model(tokens), expected)


@pytest.mark.parametrize("raw", ["tensor", "dict"])
def test_steer_takes_a_raw_tensor_or_dict_as_a_max_normed_direction(tiny_model, raw):
    direction = torch.linspace(-2.0, 1.0, tiny_model.cfg.d_model)  # max |d| = 2
    vector = direction if raw == "tensor" else {HOOK: direction}
    kwargs = {"hook_name": HOOK} if raw == "tensor" else {}
    tokens = _tokens(tiny_model)
    _, clean = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    with roast_tl.steer(tiny_model, vector, 3.0, **kwargs):
        _, steered = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    delta = steered[HOOK][0] - clean[HOOK][0]
    torch.testing.assert_close(delta[-1], 3.0 * direction / 2.0)
    assert torch.equal(delta[:-1], torch.zeros_like(delta[:-1]))


def test_steer_says_what_a_raw_tensor_needs(tiny_model):
    direction = torch.ones(tiny_model.cfg.d_model)
    with pytest.raises(TypeError, match="raw tensor but no hook_name; pass hook_name="):
        with roast_tl.steer(tiny_model, direction, 1.0):
            pass
    with pytest.raises(TypeError, match="hook_name= is for a raw tensor"):
        with roast_tl.steer(tiny_model, random_vector(tiny_model), 1.0, hook_name=HOOK):
            pass
    with pytest.raises(ValueError, match="unknown hook name 'blocks.9.hook_resid_post'"):
        with roast_tl.steer(tiny_model, direction, 1.0, hook_name="blocks.9.hook_resid_post"):
            pass
    with pytest.raises(TypeError, match=r"evaluate needs a SteeringVector, got dict; wrap"):
        unchecked(evaluate)(tiny_model, tiny_task(), {HOOK: direction}, 1.0, progress=False)


def test_alpha_times_the_vector_must_fit_in_float32(tiny_model):
    vector = SteeringVector({HOOK: torch.full((32,), 2.0)}, {"model_name": "x"})
    # 2e38 * 2 = 4e38 > 3.4e38 (float32 max): refused before any pass runs.
    with pytest.raises(
        ValueError, match=r"alpha·max\|v\| for blocks\.1\.hook_resid_post is 4e\+38"
    ):
        vector.fwd_hooks(2e38)
    with pytest.raises(ValueError, match="beyond the float32 range"):
        with roast_tl.steer(tiny_model, vector, -1e300, check_model=False):
            pass
    with pytest.raises(ValueError, match="beyond the float32 range"):
        SteeringHook(torch.ones(3), 1e39)
    assert SteeringHook(torch.full((3,), 2.0), 1.5e38).alpha == 1.5e38  # 3e38 still fits


def test_a_float16_activation_checks_its_own_range():
    hook = SteeringHook(torch.full((4,), 2.0), 4e4)  # 8e4 fits float32, not float16 (65504)
    activation = torch.zeros(1, 2, 4)
    assert torch.equal(hook(activation, HookPoint())[0, -1], torch.full((4,), 8e4))
    with pytest.raises(ValueError, match=r"is 8e\+04, beyond the float16 range"):
        hook(activation.half(), HookPoint())
    bf16 = hook(activation.bfloat16(), HookPoint())  # bfloat16 has float32's range
    assert bf16.dtype == torch.bfloat16 and torch.isfinite(bf16).all()


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_a_hook_refuses_an_integer_vector(dtype):
    with pytest.raises(TypeError, match=f"has dtype {dtype}; steering vectors must be floating"):
        construct_unchecked(SteeringHook, torch.ones(3, dtype=dtype), 1.0)


@pytest.fixture(scope="module")
def bf16_model():
    return make_tiny_model_in(torch.bfloat16)


def test_steering_a_bfloat16_model(bf16_model):
    model = bf16_model
    assert next(model.parameters()).dtype == torch.bfloat16
    tokens = _tokens(model)
    vector = random_vector(model)  # float32: the hook casts it to the activation's dtype
    base = model(tokens)
    with roast_tl.steer(model, vector, 0.0, positions="all"):
        assert torch.equal(model(tokens), base)  # alpha 0 is the unsteered model, bit for bit
    _, clean = model.run_with_cache(tokens, names_filter=[HOOK])
    with roast_tl.steer(model, vector, 2.5):
        _, steered = model.run_with_cache(tokens, names_filter=[HOOK])
    assert steered[HOOK].dtype == torch.bfloat16
    expected = clean[HOOK][0, -1] + 2.5 * vector[HOOK].to(torch.bfloat16)
    assert torch.equal(steered[HOOK][0, -1], expected)
    assert torch.equal(steered[HOOK][0, :-1], clean[HOOK][0, :-1])
    prompts = list(PROMPTS[:3])
    unsteered = roast_tl.generate(model, prompts, max_new_tokens=4)
    with roast_tl.steer(model, vector, 0.0):
        assert roast_tl.generate(model, prompts, max_new_tokens=4) == unsteered
    with roast_tl.steer(model, vector, 4.0, positions="all"):
        assert roast_tl.generate(model, prompts, max_new_tokens=4) != unsteered
    assert not any(hp.has_hooks() for hp in model.hook_dict.values())


def test_a_steering_hook_shows_its_hook_alpha_positions_and_mode():
    hook = SteeringHook(torch.ones(4), 2.5, positions="prefill", mode="add", name=HOOK)
    assert repr(hook) == (
        f"SteeringHook({HOOK}, alpha=2.5, positions='prefill', mode='add', d_act=4)"
    )


def _delta(model, tokens, fwd_hooks):
    """Steered minus clean activation at HOOK, (batch, pos, d_act)."""
    _, clean = model.run_with_cache(tokens, names_filter=[HOOK])
    with model.hooks(fwd_hooks=fwd_hooks):
        _, steered = model.run_with_cache(tokens, names_filter=[HOOK])
    return steered[HOOK] - clean[HOOK]


def _steered_positions(delta):
    """[(row, pos)] where the delta is non-zero."""
    return [tuple(i) for i in (delta.abs().sum(-1) > 0).nonzero().tolist()]


@pytest.mark.parametrize(
    "positions,expected",
    [
        (-1, [7]),
        (0, [0]),
        ([1, 3, -2], [1, 3, 6]),
        ([3, 3, -5], [3]),  # one token named twice is steered once
        (torch.tensor([2, 4]), [2, 4]),
        ([99, -99], []),  # out of range: nothing
    ],
)
def test_int_and_list_positions_index_the_tokens(tiny_model, positions, expected):
    tokens = _tokens(tiny_model)
    vector = random_vector(tiny_model)
    delta = _delta(tiny_model, tokens, vector.fwd_hooks(2.0, positions=positions))
    assert _steered_positions(delta) == [(0, p) for p in expected]
    for p in expected:
        torch.testing.assert_close(delta[0, p], 2.0 * vector[HOOK], rtol=1e-5, atol=1e-5)


def test_a_mask_and_a_callable_steer_exactly_what_they_name(tiny_model):
    tokens = torch.tensor([encode(tiny_model, TEXT)] * 2)
    vector = random_vector(tiny_model)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, 2] = mask[1, 5] = mask[1, 6] = True
    delta = _delta(tiny_model, tokens, vector.fwd_hooks(1.0, positions=mask))
    assert _steered_positions(delta) == [(0, 2), (1, 5), (1, 6)]
    seen = []

    def middle(activation, hook):
        seen.append(hook.name)
        return [activation.shape[1] // 2]

    delta = _delta(tiny_model, tokens, vector.fwd_hooks(1.0, positions=middle))
    assert _steered_positions(delta) == [(0, 4), (1, 4)] and seen
    as_mask = _delta(tiny_model, tokens, vector.fwd_hooks(1.0, positions=lambda a, hook: mask))
    assert _steered_positions(as_mask) == [(0, 2), (1, 5), (1, 6)]
    with pytest.raises(
        ValueError, match=r"mask of shape \(2, 8\) does not fit the pass .* \(1, 8\)"
    ):
        tiny_model.run_with_hooks(tokens[:1], fwd_hooks=vector.fwd_hooks(1.0, positions=mask))


def test_bad_positions_are_refused_with_the_choices():
    for bad, error in [
        (True, "got the bool True"),
        ([], "non-empty list of ints"),
        ([1, 2.5], "non-empty list of ints"),
        (torch.tensor([0.5]), "must be ints or a boolean"),
        (2.5, "an int, a list of ints, a boolean"),
    ]:
        with pytest.raises(TypeError, match=error):
            construct_unchecked(SteeringHook, torch.ones(3), 1.0, positions=bad)
    with pytest.raises(ValueError, match=r"mask must be \(batch, pos\)"):
        SteeringHook(torch.ones(3), 1.0, positions=torch.ones(3, dtype=torch.bool))


RIGHT = ["the movie was good . review sentiment", "a bad movie"]  # 8 and 4 tokens


def _right_padded(model):
    ids = [encode(model, text) for text in RIGHT]
    width = max(map(len, ids))
    batch = torch.tensor([row + [model.tokenizer.pad_token_id] * (width - len(row)) for row in ids])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids])
    return batch, mask


def test_last_steers_each_rows_real_last_token_in_a_right_padded_batch(tiny_model):
    batch, mask = _right_padded(tiny_model)
    vector = random_vector(tiny_model)
    expected = [(0, 7), (1, 3)]  # row 1 is 4 real tokens, then 4 pads
    with_model = vector.fwd_hooks(2.0, model=tiny_model)
    # reads the token ids of each pass: the bridge's token input, or a HookedTransformer's
    assert with_model[0][0] == {"bridge": "embed.hook_in", "hooked": "hook_tokens"}[BACKEND]
    assert _steered_positions(_delta(tiny_model, batch, with_model)) == expected
    with_mask = vector.fwd_hooks(2.0, attention_mask=mask)
    assert _steered_positions(_delta(tiny_model, batch, with_mask)) == expected
    # Without either the hook cannot see the padding: the final column, a pad in row 1.
    blind = vector.fwd_hooks(2.0)
    assert _steered_positions(_delta(tiny_model, batch, blind)) == [(0, 7), (1, 7)]
    # Through steer, the steered real tokens match each prompt run alone (causal: pads after).
    for row, text in enumerate(RIGHT):
        alone = torch.tensor([encode(tiny_model, text)])
        with roast_tl.steer(tiny_model, vector, 2.0):
            batched = tiny_model(batch)[row, : alone.shape[1]]
            single = tiny_model(alone)[0]
        torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
    # Index positions count each row's real tokens: -2 is row 1's third token.
    indexed = vector.fwd_hooks(1.0, positions=[0, -2], model=tiny_model)
    assert _steered_positions(_delta(tiny_model, batch, indexed)) == [
        (0, 0),
        (0, 6),
        (1, 0),
        (1, 2),
    ]


def test_index_positions_mean_the_same_cached_uncached_batched_and_alone(tiny_model):
    vector = random_vector(tiny_model, scale=6.0)
    prompts = [encode(tiny_model, p) for p in PROMPTS[:4]]  # different lengths: left padding
    from roast_tl.generation import generate_tokens

    def run(batch, use_cache, positions):
        with roast_tl.steer(tiny_model, vector, 3.0, positions=positions):
            return generate_tokens(
                tiny_model, batch, max_new_tokens=5, use_cache=use_cache, stop_token_ids=()
            ).tokens

    unsteered = generate_tokens(tiny_model, prompts, max_new_tokens=5, stop_token_ids=()).tokens
    for positions in ([0, -1], 1, [-2]):
        cached = run(prompts, True, positions)
        assert cached == run(prompts, False, positions)
        assert cached == [run([p], True, positions)[0] for p in prompts]
    # -1 in generation is the last prompt token only: the same as "prefill".
    assert run(prompts, True, -1) == run(prompts, True, "prefill")
    assert run(prompts, True, [0, -1]) != unsteered


def test_index_positions_with_a_shared_prefill_equal_each_row_alone(tiny_model):
    """Repeated prompts are prefilled once (generation's shared prefill); index positions must
    still count each row's own left pads in that narrower pass."""
    from roast_tl.generation import generate_tokens

    vector = random_vector(tiny_model, scale=6.0)
    short, long = encode(tiny_model, PROMPTS[4]), encode(tiny_model, PROMPTS[0])
    assert len(short) != len(long)
    batch = [short, long, short, long, long]  # 2 distinct prompts, 5 rows, left-padded

    def run(prompts, positions):
        with roast_tl.steer(tiny_model, vector, 3.0, positions=positions):
            return generate_tokens(tiny_model, prompts, max_new_tokens=4, stop_token_ids=()).tokens

    for positions in ([0, -1], 1, "prefill"):
        assert run(batch, positions) == [run([p], positions)[0] for p in batch]


def test_index_positions_in_generation_count_real_prompt_tokens(tiny_model):
    seen = []

    def record(activation, hook):
        seen.append(activation.detach().clone())

    vector = random_vector(tiny_model)
    prompts = [encode(tiny_model, "a bad movie"), encode(tiny_model, TEXT)]  # 4 and 8 tokens
    from roast_tl.generation import generate_tokens

    later = "blocks.2.hook_resid_pre"
    with tiny_model.hooks(fwd_hooks=[(later, record)]):
        generate_tokens(tiny_model, prompts, max_new_tokens=1, stop_token_ids=())
        with roast_tl.steer(tiny_model, vector, 2.0, positions=[0, 2]):
            generate_tokens(tiny_model, prompts, max_new_tokens=1, stop_token_ids=())
    changed = [tuple(i) for i in ((seen[1] - seen[0]).abs().sum(-1) > 0).nonzero().tolist()]
    # Row 0 has 4 left pads: its tokens 0 and 2 are columns 4 and 6 (and what attends to them).
    assert (0, 4) in changed and (1, 0) in changed
    assert min(p for r, p in changed if r == 0) == 4 and min(p for r, p in changed if r == 1) == 0


def test_tl_uncached_generate_under_steer_warns_once(tiny_model):
    from roast_tl._warnings import UncachedGenerateWarning

    vector = random_vector(tiny_model)
    tokens = _tokens(tiny_model)
    kwargs = {"max_new_tokens": 4, "do_sample": False, "verbose": False}
    with roast_tl.steer(tiny_model, vector, 2.0):
        with pytest.warns(UncachedGenerateWarning, match="use_past_kv_cache=False") as caught:
            tiny_model.generate(tokens, use_past_kv_cache=False, **kwargs)
    assert len([w for w in caught if w.category is UncachedGenerateWarning]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with roast_tl.steer(tiny_model, vector, 2.0):
            tiny_model.generate(tokens, use_past_kv_cache=True, **kwargs)
            tiny_model(tokens)
            tiny_model(tokens[:, :5])  # unrelated passes, not a re-run plus one token
        with roast_tl.steer(tiny_model, vector, 2.0, positions="all"):
            tiny_model.generate(tokens, use_past_kv_cache=False, **kwargs)  # steers alike


def test_alpha_scale_makes_alpha_a_fraction_of_the_activation_norm(tiny_model):
    tokens = _tokens(tiny_model)
    vector = random_vector(tiny_model)
    _, clean = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    mean_norm = clean[HOOK][0, 1:].norm(dim=-1).mean()  # every position but the first
    hooks = vector.fwd_hooks(0.5, alpha_scale="resid_norm", model=tiny_model, scale_tokens=tokens)
    delta = _delta(tiny_model, tokens, hooks)[0, -1]
    torch.testing.assert_close(delta.norm(), 0.5 * mean_norm, rtol=1e-4, atol=1e-5)
    cosine = torch.nn.functional.cosine_similarity(delta, vector[HOOK], dim=0)
    torch.testing.assert_close(cosine, torch.tensor(1.0), rtol=1e-5, atol=1e-5)
    with roast_tl.steer(tiny_model, vector, 0.5, alpha_scale="resid_norm", scale_tokens=tokens):
        _, steered = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    torch.testing.assert_close(steered[HOOK][0, -1] - clean[HOOK][0, -1], delta)
    with pytest.raises(ValueError, match="needs model= and scale_tokens="):
        vector.fwd_hooks(0.5, alpha_scale="resid_norm")
    with pytest.raises(ValueError, match="unknown alpha_scale 'norm'"):
        unchecked(SteeringVector.fwd_hooks)(
            vector, 0.5, alpha_scale="norm", model=tiny_model, scale_tokens=tokens
        )


def test_a_hook_shows_mask_and_callable_positions():
    mask = torch.zeros(2, 5, dtype=torch.bool)
    assert "positions=mask(2, 5)" in repr(SteeringHook(torch.ones(4), 1.0, positions=mask))

    def subject(activation, hook):
        return [1]

    assert "positions=subject" in repr(SteeringHook(torch.ones(4), 1.0, positions=subject))
    assert "positions=[0, -1]" in repr(SteeringHook(torch.ones(4), 1.0, positions=[0, -1]))


@requires_bridge  # reads the pass's token ids at the bridge's embed.hook_in
def test_the_readme_pitfalls_are_still_transformer_lens_behaviour(tiny_model):
    # If TL changes one of these, the README's "Pitfalls with TransformerLens 4" box must too.
    tokens = _tokens(tiny_model)
    vector = random_vector(tiny_model)
    _, clean = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
    _, ignored = tiny_model.run_with_cache(
        tokens, names_filter=[HOOK], fwd_hooks=vector.fwd_hooks(3.0)
    )
    assert torch.equal(ignored[HOOK], clean[HOOK])  # fwd_hooks= accepted and ignored
    names = []
    tiny_model.run_with_hooks(tokens, fwd_hooks=[(HOOK, lambda a, hook: names.append(hook.name))])
    assert names == ["blocks.1.hook_out"]  # the canonical name, not the alias registered
    _, both = tiny_model.run_with_cache(tokens, names_filter=HOOK)
    assert sorted(both.keys()) == ["blocks.1.hook_out", HOOK]


def test_run_with_hooks_on_right_padded_strings_steers_each_real_last_token(tiny_model):
    vector = random_vector(tiny_model)
    hooks = vector.fwd_hooks(2.0, model=tiny_model)
    batched = tiny_model.run_with_hooks(RIGHT, padding_side="right", fwd_hooks=hooks)
    for row, text in enumerate(RIGHT):
        alone = tiny_model.run_with_hooks(text, fwd_hooks=hooks)[0]
        torch.testing.assert_close(batched[row, : alone.shape[0]], alone, rtol=1e-4, atol=1e-5)


def test_evaluate_takes_index_positions(tiny_model):
    task, vector = tiny_task(), random_vector(tiny_model, scale=6.0)
    items = task.items("test") + task.items("dev")
    by_index = evaluate(tiny_model, task, vector, 4.0, items=items, positions=-1, progress=False)
    prefill = evaluate(
        tiny_model, task, vector, 4.0, items=items, positions="prefill", progress=False
    )
    assert [r.completion for r in by_index.records] == [r.completion for r in prefill.records]
