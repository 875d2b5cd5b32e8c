"""The fast path: weight sharing, SDPA against the hooked path (bounded logits, equal tokens),
steering on it, caching, moves."""

import contextlib
import gc

import pytest
import torch

import roast_tl
from roast_tl import _fast
from roast_tl._bridge import forward_step
from roast_tl._fast import (
    FORWARD_FAST,
    FORWARD_HOOKED,
    fast_forward_step,
    fast_model,
    sampling_forward,
    unhooked_attention,
)
from roast_tl._tokens import left_pad, position_ids_for
from roast_tl.generation import generate_tokens
from tests.tiny_model import (
    HOOK,
    PROMPTS,
    encode,
    make_tiny_model,
    make_tiny_model_in,
    random_vector,
    requires_bridge,
)

# The fast path rebuilds a bridge's HF model; a HookedTransformer always takes the hooked driver.
pytestmark = requires_bridge


def _identity(activation, hook):
    return None


def _path(model):
    with sampling_forward(model) as (name, _):
        return name


def _hooked(model):
    """Attach a hook that changes nothing: sampling then takes the hooked path."""
    return model.hooks(fwd_hooks=[(HOOK, _identity)])


def _encoded(model, prompts=PROMPTS[:6]):
    return [encode(model, p) for p in prompts]


def _bridge_ptrs(model):
    wrapped = model.original_model
    return {t.data_ptr() for t in [*wrapped.parameters(), *wrapped.buffers()]}


def test_the_fast_model_shares_every_tensor_with_the_bridge(tiny_model):
    fast = fast_model(tiny_model)
    assert fast is not None and fast is fast_model(tiny_model)  # cached
    tensors = [*fast.parameters(), *fast.buffers()]
    assert tensors and {t.data_ptr() for t in tensors} <= _bridge_ptrs(tiny_model)
    assert all(t.device.type == "cpu" for t in tensors)
    assert fast.config._attn_implementation == "sdpa" == unhooked_attention(tiny_model)
    assert tiny_model.original_model.config._attn_implementation == "eager"  # left alone


def test_sampling_takes_the_fast_path_unless_a_hook_it_cannot_run_is_attached(tiny_model):
    assert _path(tiny_model) == FORWARD_FAST
    with _hooked(tiny_model):
        assert _path(tiny_model) == FORWARD_HOOKED
    assert _path(tiny_model) == FORWARD_FAST
    vector = random_vector(tiny_model)
    with roast_tl.steer(tiny_model, vector, 2.0):
        assert _path(tiny_model) == FORWARD_FAST  # a resid_post steering hook runs on it
        with _hooked(tiny_model):  # plus a hook of your own: every hook must fire
            assert _path(tiny_model) == FORWARD_HOOKED
    pick_first = lambda activation, hook: [0]  # noqa: E731
    with roast_tl.steer(tiny_model, vector, 2.0, positions=pick_first):
        assert _path(tiny_model) == FORWARD_HOOKED  # a callable may read the hook itself
    mlp = roast_tl.SteeringVector.from_direction(
        "blocks.0.hook_mlp_out", torch.ones(tiny_model.cfg.d_model), model=tiny_model
    )
    with roast_tl.steer(tiny_model, mlp, 2.0):
        assert _path(tiny_model) == FORWARD_HOOKED  # not a block's input or output
    assert not any(
        m._forward_hooks or m._forward_pre_hooks for m in fast_model(tiny_model).modules()
    )  # translated hooks go away with the run
    handle = tiny_model.blocks[0].register_forward_hook(lambda module, args, output: None)
    try:
        assert _path(tiny_model) == FORWARD_HOOKED  # a plain PyTorch hook fires only there
    finally:
        handle.remove()
    assert _path(tiny_model) == FORWARD_FAST


class _NotABridge(torch.nn.Module):
    """A hooked model without a wrapped HF model (as a HookedTransformer): no hook points."""

    cfg = None
    tokenizer = None
    hook_dict: dict = {}

    def hooks(self, fwd_hooks=(), *args, **kwargs):
        raise NotImplementedError


def test_a_model_without_a_wrapped_hf_model_gets_no_fast_model():
    other = _NotABridge()
    assert fast_model(other) is None
    assert _path(other) == FORWARD_HOOKED


def test_a_bridge_computing_other_logits_than_its_hf_model_gets_no_fast_model():
    """Compatibility mode folds and centres the weights the bridge computes with."""
    model = make_tiny_model(seed=7)
    model.enable_compatibility_mode()
    fast = fast_model(model)
    if fast is not None:  # then it must compute what the bridge computes
        ids = torch.tensor([encode(model, PROMPTS[0])])
        ones = torch.ones_like(ids)
        with torch.inference_mode():
            ours, _ = fast_forward_step(fast, ids, ones, position_ids_for(ones), use_cache=False)
            theirs, _ = forward_step(model, ids, ones, position_ids_for(ones), use_cache=False)
        assert (ours - theirs).abs().max() <= 1e-4 * theirs.abs().max()


def test_fast_logits_are_within_rounding_of_the_hooked_ones_on_left_padded_batches(tiny_model):
    ids, mask = left_pad(_encoded(tiny_model), 0)
    positions = position_ids_for(mask)
    fast = fast_model(tiny_model)
    with torch.inference_mode():
        ours, _ = fast_forward_step(fast, ids, mask, positions, use_cache=False)
        theirs, _ = forward_step(tiny_model, ids, mask, positions, use_cache=False)
    # SDPA vs the bridge's eager attention: not bit-equal, within 1e-5 of the largest logit.
    assert (ours - theirs).abs().max() <= 1e-5 * theirs.abs().max()
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))


def test_greedy_and_sampled_tokens_equal_the_hooked_paths(tiny_model):
    encoded = _encoded(tiny_model)
    assert len({len(e) for e in encoded}) > 1  # the batch really is padded
    fast_greedy = generate_tokens(tiny_model, encoded, max_new_tokens=8, stop_token_ids=())
    with _hooked(tiny_model):
        hooked_greedy = generate_tokens(tiny_model, encoded, max_new_tokens=8, stop_token_ids=())
    assert fast_greedy.tokens == hooked_greedy.tokens

    def sample():
        gens = [torch.Generator().manual_seed(s) for s in range(len(encoded))]
        settings = {"temperature": 1.0, "top_p": 0.9, "generators": gens}
        return generate_tokens(tiny_model, encoded, max_new_tokens=8, **settings).tokens

    fast_sampled = sample()
    with _hooked(tiny_model):
        assert sample() == fast_sampled


def test_steered_generation_on_the_fast_path_equals_the_hooked_paths(tiny_model):
    encoded = _encoded(tiny_model)
    vector = random_vector(tiny_model)
    plain = generate_tokens(tiny_model, encoded, max_new_tokens=8, stop_token_ids=()).tokens
    for positions in ("last", "prefill", "all", [0, -2]):
        with roast_tl.steer(tiny_model, vector, 8.0, positions=positions):
            fast = generate_tokens(tiny_model, encoded, max_new_tokens=8, stop_token_ids=())
            with _hooked(tiny_model):
                hooked = generate_tokens(tiny_model, encoded, max_new_tokens=8, stop_token_ids=())
        assert fast.tokens == hooked.tokens, positions
        assert fast.tokens != plain, positions  # the steering did act
    with roast_tl.steer(tiny_model, vector, 0.0):
        zero = generate_tokens(tiny_model, encoded, max_new_tokens=8, stop_token_ids=()).tokens
    assert zero == plain  # alpha 0 on the fast path is the unsteered run, bit for bit


def test_steering_a_block_input_on_the_fast_path_equals_the_hooked_path(tiny_model):
    encoded = _encoded(tiny_model)
    vector = roast_tl.SteeringVector.from_direction(
        "blocks.1.hook_resid_pre", torch.randn(tiny_model.cfg.d_model), model=tiny_model
    )
    with roast_tl.steer(tiny_model, vector, 8.0, positions="all"):
        assert _path(tiny_model) == FORWARD_FAST
        fast = generate_tokens(tiny_model, encoded, max_new_tokens=6, stop_token_ids=())
        with _hooked(tiny_model):
            hooked = generate_tokens(tiny_model, encoded, max_new_tokens=6, stop_token_ids=())
    assert fast.tokens == hooked.tokens


def test_repeated_prompts_are_prefilled_once_and_decode_as_if_alone(tiny_model, monkeypatch):
    a, b = _encoded(tiny_model)[:2]
    rows = [a, a, b, a, b]
    batches = []
    real = _fast.sampling_forward

    @contextlib.contextmanager
    def spying(model):
        with real(model) as (name, step):

            def spy(ids, *args, **kwargs):
                batches.append(tuple(ids.shape))
                return step(ids, *args, **kwargs)

            yield name, spy

    monkeypatch.setattr(roast_tl.generation, "sampling_forward", spying)
    shared = generate_tokens(tiny_model, rows, max_new_tokens=5, stop_token_ids=())
    width = max(len(a), len(b))
    assert batches[0] == (2, width)  # the prefill: one row per distinct prompt
    assert batches[1:] == [(5, 1)] * 4  # then every row decodes
    monkeypatch.undo()
    alone = generate_tokens(tiny_model, rows, max_new_tokens=5, stop_token_ids=(), use_cache=False)
    assert shared.tokens == alone.tokens
    assert shared.tokens[0] == shared.tokens[1] == shared.tokens[3]  # greedy: same prompt


def test_a_first_use_inside_steer_waits_for_an_unhooked_one_to_build_the_fast_model():
    """The build checks the fast model against the bridge's forward, which steering would
    change: a bridge first used inside `steer` samples on the hooked path and caches nothing."""
    model = make_tiny_model(seed=8)
    vector = random_vector(model)
    encoded = _encoded(model)
    with roast_tl.steer(model, vector, 8.0):
        assert _path(model) == FORWARD_HOOKED and model not in _fast._CACHE
        hooked = generate_tokens(model, encoded, max_new_tokens=5, stop_token_ids=()).tokens
    assert _path(model) == FORWARD_FAST  # built now, unhooked
    with roast_tl.steer(model, vector, 8.0):
        assert _path(model) == FORWARD_FAST
        fast = generate_tokens(model, encoded, max_new_tokens=5, stop_token_ids=()).tokens
    assert fast == hooked


def test_the_cache_dies_with_the_bridge():
    model = make_tiny_model(seed=3)
    assert fast_model(model) is not None
    before = len(_fast._CACHE)
    del model
    gc.collect()
    assert len(_fast._CACHE) == before - 1


def test_the_fast_model_follows_a_dtype_move_on_cpu():
    model = make_tiny_model(seed=4)
    encoded = _encoded(model)
    fast = fast_model(model)
    model.to(torch.bfloat16)
    moved = fast_model(model)
    assert moved is fast
    tensors = [*moved.parameters(), *moved.buffers()]
    assert {t.data_ptr() for t in tensors} <= _bridge_ptrs(model)
    assert {p.dtype for p in moved.parameters()} == {torch.bfloat16}
    fast_greedy = generate_tokens(model, encoded, max_new_tokens=4, stop_token_ids=())
    with _hooked(model):
        hooked_greedy = generate_tokens(model, encoded, max_new_tokens=4, stop_token_ids=())
    assert fast_greedy.tokens == hooked_greedy.tokens


def test_a_bf16_bridge_samples_on_the_fast_path():
    model = make_tiny_model_in(torch.bfloat16, seed=5)
    assert _path(model) == FORWARD_FAST
    assert {p.dtype for p in fast_model(model).parameters()} == {torch.bfloat16}
    out = generate_tokens(model, _encoded(model)[:2], max_new_tokens=3, stop_token_ids=())
    assert [len(t) for t in out.tokens] == [3, 3]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (CI has none)")
def test_the_fast_model_follows_a_move_to_cuda():
    model = make_tiny_model(seed=6)
    encoded = _encoded(model)
    cpu_tokens = generate_tokens(model, encoded, max_new_tokens=4, stop_token_ids=()).tokens
    model.to("cuda")
    fast = fast_model(model)
    assert {t.device.type for t in [*fast.parameters(), *fast.buffers()]} == {"cuda"}
    assert {t.data_ptr() for t in fast.parameters()} <= _bridge_ptrs(model)
    cuda_tokens = generate_tokens(model, encoded, max_new_tokens=4, stop_token_ids=()).tokens
    assert cuda_tokens == cpu_tokens


@pytest.mark.slow
def test_greedy_tokens_of_the_real_model_equal_the_hooked_paths():
    model = roast_tl.load_model()
    tokenizer = model.tokenizer
    prompts = ["What is 12 + 7? Reply with the number only.", "Name a colour.", "Why is ice cold?"]
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in prompts
    ]
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert _path(model) == FORWARD_FAST
    fast = generate_tokens(model, encoded, max_new_tokens=24, stop_token_ids=())
    with _hooked_real(model):
        hooked = generate_tokens(model, encoded, max_new_tokens=24, stop_token_ids=())
    assert fast.tokens == hooked.tokens


def _hooked_real(model):
    return model.hooks(fwd_hooks=[("blocks.10.hook_resid_post", _identity)])
