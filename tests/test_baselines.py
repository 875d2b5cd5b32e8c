"""Baselines: CAA/SADI construction, where ROAST must win, where CAA and ROAST must agree."""

import pytest
import torch

from roast_tl.baselines import (
    METHODS,
    MethodContext,
    build_method,
    few_shot_prefix,
    teacher_forced_contrast,
    top_k_mask,
)
from roast_tl.rollouts import Rollout
from roast_tl.tasks.base import Task, TaskItem


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def _rollout(item, tokens, ok, k):
    return Rollout(item_id=item.id, sample_index=k, prompt_text=item.prompt, prompt_token_ids=[],
                   completion_token_ids=tokens, completion="", answer=None, correct=ok, seed=0)


@pytest.fixture(scope="module")
def planted_model():
    """Tiny model whose embeddings make two directions: u separates the model's own right/wrong
    answer tokens, w separates the written gold/wrong answer texts that CAA teacher-forces."""
    from tests.tiny_model import make_tiny_model

    model = make_tiny_model(seed=2)
    tok = model.tokenizer
    gen = torch.Generator().manual_seed(11)
    d = model.cfg.d_model
    u = torch.nn.functional.normalize(torch.randn(d, generator=gen), dim=0)
    w = torch.nn.functional.normalize(torch.randn(d, generator=gen), dim=0)
    embed = model.original_model.get_input_embeddings().weight
    eos = tok.eos_token_id
    with torch.no_grad():
        embed[tok.convert_tokens_to_ids("yes")] = 3 * u
        embed[tok.convert_tokens_to_ids("no")] = -3 * u
        embed[tok.convert_tokens_to_ids("positive")] = 3 * w
        embed[tok.convert_tokens_to_ids("negative")] = -3 * w
        embed[eos] = 0.0  # written answers end in EOS: make the read position carry the answer
    return model, u, w


def _items(n=6):
    return [TaskItem(f"i{i}", "the movie was good", "yes", "positive", "negative") for i in range(n)]


def test_roast_wins_where_only_on_distribution_contrast_carries_the_signal(planted_model):
    model, u, w = planted_model
    tok = model.tokenizer
    items = _items()
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    rollouts = [_rollout(it, [yes], True, 0) for it in items] + [_rollout(it, [no], False, 1) for it in items]
    task = Task("planted", {"train": items, "dev": items, "test": items}, lambda s: s, 2)
    ctx = MethodContext(model, task, items, layers=[0], rollouts=rollouts)
    roast = build_method("roast", ctx).vector
    caa = build_method("caa", ctx).vector
    # Read at the final token of block 0's output: the model's own answers end on yes/no (along
    # u); the written answers end on EOS after positive/negative, which reach it only through w.
    roast_dir = roast["blocks.0.hook_resid_post"]
    caa_dir = caa["blocks.0.hook_resid_post"]
    assert _cos(roast_dir, caa_dir) < 0.9  # the two contrasts point in different directions
    # ROAST's direction separates the model's own right/wrong answers at that site; CAA's less so.
    from roast_tl.activations import capture_activations

    acts = capture_activations(model, [([1, 5, 6], [yes]), ([1, 5, 6], [no])],
                               ["blocks.0.hook_resid_post"])["blocks.0.hook_resid_post"]
    own = acts[0] - acts[1]
    assert _cos(roast_dir, own) > 0.95
    assert _cos(caa_dir, own) < _cos(roast_dir, own) - 0.1


def test_caa_and_roast_agree_when_rollouts_are_the_written_answers(planted_model):
    model, _, _ = planted_model
    tok = model.tokenizer
    items = _items()
    pos = tok("positive", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    neg = tok("negative", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    rollouts = [_rollout(it, pos, True, 0) for it in items] + [_rollout(it, neg, False, 1) for it in items]
    task = Task("agree", {"train": items, "dev": items, "test": items}, lambda s: s, 2)
    ctx = MethodContext(model, task, items, layers=[1], rollouts=rollouts)
    roast = build_method("roast", ctx).vector
    caa = build_method("caa", ctx).vector
    name = "blocks.1.hook_resid_post"
    torch.testing.assert_close(roast[name], caa[name], rtol=1e-4, atol=1e-5)


def test_sadi_vector_is_a_top_k_mask_applied_multiplicatively(planted_model):
    model, _, _ = planted_model
    items = _items()
    task = Task("t", {"train": items, "dev": items, "test": items}, lambda s: s, 2)
    setup = build_method("sadi", MethodContext(model, task, items, layers=[1], top_k_fraction=0.25))
    mask = setup.vector["blocks.1.hook_resid_post"]
    assert setup.mode == "multiply"
    assert set(mask.unique().tolist()) == {0.0, 1.0} and int(mask.sum()) == 8  # 25% of 32


def test_top_k_mask_and_errors():
    assert top_k_mask(torch.tensor([1.0, -5.0, 3.0]), 1).tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="k must be in 1..3"):
        top_k_mask(torch.ones(3), 0)


def test_few_shot_prefix_and_none():
    items = _items(3)
    task = Task("t", {"train": items, "dev": items, "test": items}, lambda s: s, 2, few_shot=items[:2])
    prefix = few_shot_prefix(task, 2)
    assert prefix.count("the movie was good\npositive\n\n") == 2
    assert build_method("none", MethodContext(None, task, items, [0])).vector is None


def test_teacher_forced_contrast_skips_items_without_wrong_answer(tiny_model):
    items = [TaskItem("a", "the movie", "x", "good", "bad"), TaskItem("b", "the movie", "x", "good", None)]
    contrast = teacher_forced_contrast(tiny_model, items)
    assert [g.item_id for g in contrast.groups] == ["a"]


def test_unknown_method_and_missing_rollouts(tiny_model):
    items = _items(2)
    task = Task("t", {"train": items}, lambda s: s, 2)
    with pytest.raises(ValueError, match="unknown method 'steer_harder'"):
        build_method("steer_harder", MethodContext(tiny_model, task, items, [0]))
    with pytest.raises(ValueError, match="need rollouts"):
        build_method("roast", MethodContext(tiny_model, task, items, [0]))
    assert {"none", "few_shot", "caa", "sadi", "roast", "roast_plain"} <= set(METHODS)
