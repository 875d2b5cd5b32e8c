"""The architecture matrix: every check on a tiny random bridge of each family researchers use.

GPT-2, GPT-NeoX (Pythia), Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3, Phi-3 and OLMo 2, each
2 layers and d_model 64 (`tests.tiny_archs.tiny_bridge`), built once for this module.
"""

import pytest
import torch

import roast_tl
from roast_tl._fast import FORWARD_FAST, FORWARD_HOOKED, sampling_forward
from roast_tl.generation import generate_tokens
from roast_tl.sites import SITE_TEMPLATES, resolve_hook_names
from roast_tl.vector import SteeringVector
from tests.tiny_archs import ARCHS, PARALLEL_BLOCKS, tiny_bridge
from tests.tiny_model import PROMPTS, encode, requires_bridge, tiny_task

# The matrix boots TransformerBridges (TL 4.x); TL 3.x's HookedTransformer is tested in test_hooked.
pytestmark = requires_bridge

HOOK = "blocks.0.hook_resid_post"
LONG = " ".join(["the movie was good . it was great"] * 4)  # 33 tokens: past a window of 8


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch(request):
    """(family name, its tiny bridge), one bridge per family for the whole module."""
    return request.param, tiny_bridge(request.param)


@pytest.fixture(scope="module")
def vectors(arch):
    """A seeded random vector at HOOK for the family's model."""
    name, model = arch
    gen = torch.Generator().manual_seed(1)
    return SteeringVector(
        {HOOK: 4.0 * torch.randn(model.cfg.d_model, generator=gen)},
        {"model_name": model.cfg.model_name},
    )


@pytest.fixture(autouse=True)
def no_hooks_left(arch):
    """After each test, no hook may be left on the family's model."""
    yield
    leftover = [name for name, hp in arch[1].hook_dict.items() if hp.has_hooks()]
    assert not leftover, f"hooks left attached after the test: {leftover[:5]}"


def _tokens(model, text="the movie was good . review sentiment"):
    return torch.tensor([encode(model, text)])


def test_hook_names_per_site(arch):
    name, model = arch
    for site in SITE_TEMPLATES:
        if site == "resid_mid" and name in PARALLEL_BLOCKS:
            with pytest.raises(ValueError, match="in parallel .* has no resid_mid; use resid_pre"):
                resolve_hook_names(model, layers=[1], site=site)
            continue
        (hook,) = resolve_hook_names(model, layers=[1], site=site)
        _, cache = model.run_with_cache(_tokens(model), names_filter=[hook])
        width = model.cfg.d_mlp if site == "mlp_post" else model.cfg.d_model
        assert cache[hook].shape == (1, 8, width), (site, hook)
    assert resolve_hook_names(model, layers=[1], site="post") == ["blocks.1.mlp.hook_post"]


def test_estimate_from_rollouts(arch):
    name, model = arch
    task = tiny_task(n_train=6)
    items = task.items("train")
    rollouts = roast_tl.sample_rollouts(
        model, task, items, n_rollouts=4, max_new_tokens=3, seed=0, progress=False
    )
    assert len(rollouts) == 24
    vector = roast_tl.estimate_from_rollouts(
        model, task, rollouts, items=items, layers=[0], progress=False
    )
    (v,) = vector.vectors.values()
    assert v.shape == (model.cfg.d_model,) and torch.isfinite(v).all()
    assert float(v.abs().max()) == pytest.approx(1.0)  # max_norm
    assert vector.metadata["n_layers"] == 2 and vector.metadata["d_model"] == 64
    neurons = roast_tl.estimate_from_rollouts(  # TL's short name for mlp_post
        model, task, rollouts, items=items, layers=[1], site="post", progress=False
    )
    assert neurons.hook_names == ["blocks.1.mlp.hook_post"]
    assert neurons.metadata["site"] == "mlp_post"
    assert neurons["blocks.1.mlp.hook_post"].shape == (model.cfg.d_mlp,)


def test_alpha_zero_is_the_unsteered_model_bit_for_bit(arch, vectors):
    _, model = arch
    tokens = _tokens(model)
    base = model(tokens)
    for positions in ("last", "all", [0, -1]):
        with roast_tl.steer(model, vectors, 0.0, positions=positions):
            assert torch.equal(model(tokens), base)


def test_last_changes_only_the_last_position(arch, vectors):
    _, model = arch
    tokens = _tokens(model)
    later = "blocks.1.hook_resid_post"
    _, clean = model.run_with_cache(tokens, names_filter=[HOOK, later])
    with roast_tl.steer(model, vectors, 3.0):
        _, steered = model.run_with_cache(tokens, names_filter=[HOOK, later])
    delta = steered[HOOK][0] - clean[HOOK][0]
    torch.testing.assert_close(delta[-1], 3.0 * vectors[HOOK], rtol=1e-5, atol=1e-5)
    assert torch.equal(delta[:-1], torch.zeros_like(delta[:-1]))
    assert torch.equal(steered[later][0, :-1], clean[later][0, :-1])  # causal: nothing earlier


@pytest.mark.parametrize("positions", ["last", "prefill", "all", [1, -1]])
def test_cached_equals_uncached_steered_greedy_generation(arch, vectors, positions):
    _, model = arch
    prompts = [encode(model, p) for p in (*PROMPTS[:4], LONG)]  # left-padded, one long
    with roast_tl.steer(model, vectors, 6.0, positions=positions):
        cached = generate_tokens(model, prompts, max_new_tokens=6, stop_token_ids=())
        uncached = generate_tokens(
            model, prompts, max_new_tokens=6, use_cache=False, stop_token_ids=()
        )
    assert cached.tokens == uncached.tokens


# Their bridges keep split q/k/v (and gate/up) copies of the fused HF weights, which the HF
# class lacks: a user editing those would change the bridge and not an HF model, so they take
# the hooked path.
FUSED_WEIGHTS = {"gpt2", "gpt_neox", "phi3"}


def test_the_fast_path_samples_what_the_hooked_path_samples(arch, vectors):
    """A family samples on its fast model (SDPA, steering as PyTorch hooks) unless its bridge
    holds tensors the HF class lacks, and its greedy tokens, steered and not, are the hooked
    bridge's (eager attention, TL hooks)."""
    name, model = arch
    prompts = [encode(model, p) for p in (*PROMPTS[:4], LONG)]
    noop = [("blocks.1.hook_resid_pre", lambda activation, hook: None)]
    expected = FORWARD_HOOKED if name in FUSED_WEIGHTS else FORWARD_FAST

    def both():
        with sampling_forward(model) as (path, _):
            assert path == expected
        fast = generate_tokens(model, prompts, max_new_tokens=6, stop_token_ids=()).tokens
        with model.hooks(fwd_hooks=noop):
            with sampling_forward(model) as (path, _):
                assert path == FORWARD_HOOKED
            hooked = generate_tokens(model, prompts, max_new_tokens=6, stop_token_ids=()).tokens
        assert fast == hooked

    both()
    with roast_tl.steer(model, vectors, 6.0):
        both()


def test_batched_equals_single(arch, vectors):
    _, model = arch
    prompts = [encode(model, p) for p in PROMPTS[:4]]
    with roast_tl.steer(model, vectors, 6.0):
        batched = generate_tokens(model, prompts, max_new_tokens=5, stop_token_ids=()).tokens
        single = [
            generate_tokens(model, [p], max_new_tokens=5, stop_token_ids=()).tokens[0]
            for p in prompts
        ]
    assert batched == single
    unsteered = generate_tokens(model, prompts, max_new_tokens=5, stop_token_ids=()).tokens
    assert batched != unsteered  # the vector does something on every family


def test_save_and_load(arch, vectors, tmp_path):
    _, model = arch
    loaded = SteeringVector.load(vectors.save(tmp_path / "v.safetensors"), model)
    assert loaded.hook_names == [HOOK] and torch.equal(loaded[HOOK], vectors[HOOK])
    tokens = _tokens(model)
    with roast_tl.steer(model, vectors, 3.0):
        expected = model(tokens)
    with roast_tl.steer(model, loaded, 3.0):
        assert torch.equal(model(tokens), expected)
