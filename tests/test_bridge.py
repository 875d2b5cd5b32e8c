"""The forward passes roast_tl runs (roast_tl._bridge): decoding steps, reads that stop early."""

from types import SimpleNamespace

import pytest
import torch

from roast_tl._bridge import forward_step, model_device, read_forward
from roast_tl._tokens import left_pad, position_ids_for
from roast_tl.sites import hook_name
from tests.tiny_model import PROMPTS, encode


def _batch(model, prompts=PROMPTS[:3]):
    ids, mask = left_pad([encode(model, p) for p in prompts], model.tokenizer.pad_token_id)
    return ids, mask, position_ids_for(mask)


def test_forward_step_gives_the_models_last_position_logits(tiny_model):
    tokens = torch.tensor([encode(tiny_model, PROMPTS[0])])
    ones = torch.ones_like(tokens)
    logits, past = forward_step(tiny_model, tokens, ones, position_ids_for(ones))
    torch.testing.assert_close(logits, tiny_model(tokens)[:, -1])
    assert past is not None
    _, no_cache = forward_step(tiny_model, tokens, ones, position_ids_for(ones), use_cache=False)
    assert no_cache is None


def test_a_cached_step_equals_the_uncached_pass_over_the_whole_sequence(tiny_model):
    ids, mask, positions = _batch(tiny_model)
    _, past = forward_step(tiny_model, ids, mask, positions)
    new = torch.tensor([[5], [6], [7]])
    full_ids, full_mask = torch.cat([ids, new], 1), torch.cat([mask, torch.ones_like(new)], 1)
    full_positions = position_ids_for(full_mask)
    cached, _ = forward_step(tiny_model, new, full_mask, full_positions[:, -1:], past)
    uncached, _ = forward_step(tiny_model, full_ids, full_mask, full_positions, use_cache=False)
    torch.testing.assert_close(cached, uncached, rtol=1e-5, atol=1e-5)


def _layer_probe(model, seen):
    return [
        (hook_name("resid_post", layer), lambda a, hook, layer=layer: seen.append(layer))
        for layer in range(model.cfg.n_layers)
    ]


@pytest.mark.parametrize("last_layer,expected", [(0, [0]), (1, [0, 1]), (2, [0, 1, 2])])
def test_read_forward_stops_after_the_last_layer(tiny_model, last_layer, expected):
    seen: list[int] = []
    ids, mask, positions = _batch(tiny_model)
    read_forward(
        tiny_model, ids, mask, positions, _layer_probe(tiny_model, seen), last_layer=last_layer
    )
    assert seen == expected


def test_read_forward_without_a_last_layer_runs_the_whole_model(tiny_model):
    seen: list[int] = []
    final = []
    ids, mask, positions = _batch(tiny_model)
    hooks = [
        *_layer_probe(tiny_model, seen),
        ("ln_final.hook_normalized", lambda a, hook: final.append(a.shape)),
    ]
    read_forward(tiny_model, ids, mask, positions, hooks, last_layer=None)
    assert seen == [0, 1, 2] and final == [(3, ids.shape[1], tiny_model.cfg.d_model)]


class _NotCallable:
    """Has the hooked-model attributes but cannot be called (no forward pass)."""

    cfg = SimpleNamespace(n_layers=1)
    tokenizer = None
    hook_dict: dict = {}

    def hooks(self, fwd_hooks=(), *args, **kwargs):
        raise NotImplementedError

    def parameters(self, recurse=True):
        return iter(())


def test_a_model_must_be_callable_and_its_device_is_its_parameters(tiny_model):
    ids = torch.ones(1, 2, dtype=torch.long)
    with pytest.raises(TypeError, match="needs a callable hooked model, got _NotCallable"):
        forward_step(_NotCallable(), ids, ids, ids)
    assert model_device(_NotCallable()) == torch.device("cpu")
    assert model_device(tiny_model) == torch.device("cpu")
