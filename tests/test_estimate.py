"""The ROAST pipeline on tiny random models: planted direction, fallbacks, resume, determinism."""

import pytest
import torch

import roast_tl
from roast_tl import rollouts as rollouts_module
from roast_tl.pairs import build_contrast_set
from roast_tl.rollouts import Rollout, load_rollouts
from roast_tl.tasks.base import Task, TaskItem
from tests.tiny_model import first_word_parity, make_tiny_model

READ_HOOK = "blocks.0.hook_resid_pre"  # the token embedding itself: the planted signal is exact


def parity_task(n_items=6) -> Task:
    prompts = ["the movie was good", "this food was awful", "what is 3 plus 4 ?",
               "the service was great", "a bad movie", "it was awful food", "review : loved it",
               "the answer is yes"]
    items = [TaskItem(id=f"q{i}", prompt=prompts[i % len(prompts)], gold="even",
                      gold_completion="good", wrong_completion="bad") for i in range(n_items)]
    return Task(name="parity", splits={"train": items, "dev": items[:2], "test": items[:2]},
                extract_answer=first_word_parity, max_new_tokens=3)


@pytest.fixture(scope="module")
def planted():
    """A tiny model whose embeddings plant direction u between each group's right and wrong token.

    Eight groups differ along u with skewed magnitudes (0.5 to 4); a ninth, inconsistent group
    differs by 200 along a random direction z. ROAST's grouped mean must find u; a plain mean
    follows z.
    """
    model = make_tiny_model(seed=1)
    tokenizer = model.tokenizer
    gen = torch.Generator().manual_seed(7)
    d = model.cfg.d_model
    u = torch.nn.functional.normalize(torch.randn(d, generator=gen), dim=0)
    z = torch.nn.functional.normalize(torch.randn(d, generator=gen), dim=0)
    embed = model.original_model.get_input_embeddings().weight
    magnitudes = [0.5, 1.0, 2.0, 4.0, 0.5, 1.0, 2.0, 4.0]
    rollouts, items = [], []
    prompt_ids = [tokenizer.convert_tokens_to_ids(w) for w in ["review", ":", "the", "movie"]]
    with torch.no_grad():
        for g in range(9):
            right = tokenizer.convert_tokens_to_ids(str(g))
            wrong = tokenizer.convert_tokens_to_ids(str(g + 9))
            base = torch.randn(d, generator=gen)
            noise = 0.05 * torch.randn(d, generator=gen)
            diff = magnitudes[g] * u if g < 8 else 200.0 * z
            embed[right] = base + diff / 2 + noise
            embed[wrong] = base - diff / 2
            item = TaskItem(id=f"g{g}", prompt="review : the movie", gold=str(g), gold_completion=str(g))
            items.append(item)
            for k, (tok, ok) in enumerate([(right, True), (right, True), (wrong, False),
                                           (wrong, False), (wrong, False)]):
                rollouts.append(Rollout(
                    item_id=item.id, sample_index=k, prompt_text="review : the movie",
                    prompt_token_ids=prompt_ids, completion_token_ids=[tok],
                    completion=tokenizer.decode([tok]), answer=None, correct=ok, seed=0))
    task = Task(name="planted", splits={"train": items}, extract_answer=lambda s: s.strip(),
                max_new_tokens=1)
    return model, task, rollouts, u, z


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


@pytest.mark.parametrize("scaling", ["max_norm", "l2"])
def test_grouped_estimate_recovers_planted_direction(planted, scaling):
    model, task, rollouts, u, z = planted
    vector = roast_tl.estimate_from_rollouts(model, task, rollouts, hook_names=[READ_HOOK],
                                             scaling=scaling, progress=False)
    plain = roast_tl.estimate_from_rollouts(model, task, rollouts, hook_names=[READ_HOOK],
                                            scaling=scaling, grouped=False, progress=False)
    assert _cos(vector[READ_HOOK], u) > 0.95
    assert _cos(plain[READ_HOOK], u) < 0.5  # the one huge, inconsistent prompt takes over
    assert _cos(plain[READ_HOOK], z) > 0.9
    assert vector.metadata["n_prompts"] == 9 and vector.metadata["n_pairs"] == 9 * 6


def test_group_means_equal_mean_of_pair_differences(planted):
    model, task, rollouts, _, _ = planted
    contrasts = build_contrast_set(model, rollouts, task.items("train"))
    means = roast_tl.contrast_means(model, contrasts, [READ_HOOK], progress=False)
    acts = roast_tl.capture_activations(
        model, contrasts.groups[0].positives + contrasts.groups[0].negatives, [READ_HOOK])[READ_HOOK]
    pos, neg = acts[:2], acts[2:]
    pair_diffs = (pos[:, None, :] - neg[None, :, :]).reshape(-1, acts.shape[-1])
    torch.testing.assert_close(means.differences(READ_HOOK)[0], pair_diffs.mean(0), rtol=1e-5, atol=1e-5)


def test_capture_stops_after_last_needed_layer(planted):
    model, task, rollouts, _, _ = planted
    seen = []
    probe = [(f"blocks.{layer}.hook_resid_post", lambda a, hook, layer=layer: seen.append(layer))
             for layer in range(model.cfg.n_layers)]
    seqs = [([1, 5, 6], [7])]
    with model.hooks(fwd_hooks=probe):
        roast_tl.capture_activations(model, seqs, ["blocks.0.hook_resid_post"])
    assert seen == [0]


def test_response_mean_position(planted):
    model, _, _, _, _ = planted
    seqs = [([5, 6], [7, 8, 9]), ([5, 6, 10, 11], [12])]
    full = roast_tl.capture_activations(model, seqs, [READ_HOOK], position="response_mean")[READ_HOOK]
    embed = model.original_model.get_input_embeddings().weight
    torch.testing.assert_close(full[0], embed[[7, 8, 9]].mean(0))
    torch.testing.assert_close(full[1], embed[12])


def _rollout(item_id, ok, k=0):
    return Rollout(item_id=item_id, sample_index=k, prompt_text="the movie", prompt_token_ids=[5, 6],
                   completion_token_ids=[7 if ok else 8], completion="x", answer=None, correct=ok, seed=0)


def test_fallbacks_weights_and_strict_mode(tiny_model):
    items = [TaskItem("both", "the movie", "a", "good", "bad"),
             TaskItem("none_right", "the movie", "a", "good", "bad"),
             TaskItem("none_wrong", "the movie", "a", "good", "bad"),
             TaskItem("none_wrong_no_fallback", "the movie", "a", "good", None),
             TaskItem("no_rollouts", "the movie", "a", "good", "bad")]
    rollouts = [_rollout("both", True), _rollout("both", False, 1), _rollout("none_right", False),
                _rollout("none_wrong", True), _rollout("none_wrong_no_fallback", True)]
    lenient = build_contrast_set(tiny_model, rollouts, items)
    assert lenient.counts == {"gold_fallback": 1, "no_rollouts": 1, "rollouts": 1,
                              "skipped_no_negative": 1, "wrong_fallback": 1}
    weights = {g.item_id: g.weight for g in lenient.groups}
    assert weights == {"both": 1.0, "none_right": 0.5, "none_wrong": 0.5}
    gold_group = next(g for g in lenient.groups if g.item_id == "none_right")
    good = tiny_model.tokenizer.convert_tokens_to_ids("good")
    assert gold_group.positives[0][1] == [good, tiny_model.tokenizer.eos_token_id]
    strict = build_contrast_set(tiny_model, rollouts, items, strict=True)
    assert [g.item_id for g in strict.groups] == ["both"]
    assert strict.counts["skipped_strict"] == 3


def test_empty_contrast_set_is_a_clear_error(tiny_model):
    items = [TaskItem("a", "the movie", "x", "good", None)]
    rollouts = [_rollout("a", True), _rollout("a", True, 1)]
    with pytest.raises(ValueError, match="contrast set is empty.*strict"):
        roast_tl.estimate_from_rollouts(tiny_model, parity_task(), rollouts, items=items,
                                        layers=[1], progress=False)


def test_estimate_end_to_end_resumes_and_is_deterministic(tiny_model, tmp_path, monkeypatch):
    task = parity_task()
    path = tmp_path / "rollouts.jsonl"
    kwargs = dict(layers=[1, 2], n_rollouts=4, temperature=1.0, top_p=1.0, seed=3,
                  batch_size=8, progress=False)
    first = roast_tl.estimate(tiny_model, task, rollouts_path=path, **kwargs)
    saved = load_rollouts(path)
    assert len(saved) == 6 * 4
    assert {r.correct for r in saved} == {True, False}
    assert set(first.hook_names) == {"blocks.1.hook_resid_post", "blocks.2.hook_resid_post"}
    assert first.metadata["seed"] == 3 and first.metadata["model_name"] == tiny_model.cfg.model_name

    def no_sampling(*args, **kwargs):
        raise AssertionError("resumed estimate must not sample again")

    monkeypatch.setattr(rollouts_module, "generate_tokens", no_sampling)
    resumed = roast_tl.estimate(tiny_model, task, rollouts_path=path, **kwargs)
    for name in first:
        assert torch.equal(first[name], resumed[name])
    monkeypatch.undo()
    again = roast_tl.estimate(tiny_model, task, **kwargs)  # fresh sampling, same seed
    for name in first:
        assert torch.equal(first[name], again[name])


def test_resume_after_interruption_drops_torn_line_and_partial_prompt(tiny_model, tmp_path):
    task = parity_task()
    path = tmp_path / "rollouts.jsonl"
    full = rollouts_module.sample_rollouts(tiny_model, task, task.items("train"), n_rollouts=3,
                                           seed=1, batch_size=6, path=path, progress=False)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])  # 2 full prompts, 1 partial, torn
    resumed = rollouts_module.sample_rollouts(tiny_model, task, task.items("train"), n_rollouts=3,
                                              seed=1, batch_size=6, path=path, progress=False)
    assert [(r.item_id, r.completion_token_ids) for r in resumed] == \
        [(r.item_id, r.completion_token_ids) for r in full]
    assert len(load_rollouts(path)) == len(full)


def test_bad_layer_and_site_errors(tiny_model):
    task = parity_task()
    with pytest.raises(ValueError, match="layer 7 is out of range.*3 layers"):
        roast_tl.estimate(tiny_model, task, layers=[7], progress=False)
    with pytest.raises(ValueError, match="unknown hook site 'resid'"):
        roast_tl.estimate(tiny_model, task, hook_site="resid", progress=False)
    with pytest.raises(ValueError, match="empty item list"):
        roast_tl.sample_rollouts(tiny_model, task, [], progress=False)
