"""`evaluate` on the tiny model (accuracy, interval, records, prompt prefix, alpha 0), the Wilson
interval and `pick_alpha`."""

import json

import pytest
import torch

import roast_tl
from roast_tl._warnings import RoastWarning
from roast_tl.evaluate import evaluate, pick_alpha, wilson_interval
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector
from tests.tiny_model import HOOK, PROMPTS, make_tiny_model_in, random_vector, tiny_task, unchecked


def _scripted_task(golds):
    """A task whose grader ignores the model: the answer is always "x", so an item is correct
    exactly when its gold is "x", and the accuracy is known before the model runs."""
    items = [
        TaskItem(f"i{k}", PROMPTS[k % len(PROMPTS)], gold, "x") for k, gold in enumerate(golds)
    ]
    return Task("scripted", {"test": items}, extract_answer=lambda s: "x", max_new_tokens=2)


def test_wilson_interval_hand_computed():
    # 0 of 4, z = 1.96: denominator 1 + z^2/4 = 1.9604, centre (z^2/8) / 1.9604 = 0.24495,
    # half-width z * sqrt(z^2/64) / 1.9604 = 0.24495: [0, 0.4899].
    low, high = wilson_interval(0, 4)
    assert low == 0.0 and high == pytest.approx(0.4899, abs=1e-4)
    # 5 of 10: centre 0.5, half-width 1.96 sqrt(0.025 + 0.0096) / 1.38416 = 0.2634.
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(4, 4) == pytest.approx((1 - 0.4899, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_pick_alpha_takes_the_best_and_breaks_ties_toward_the_smaller_alpha():
    assert pick_alpha({8.0: 0.5, 2.0: 0.75, 4.0: 0.75, 1.0: 0.25}) == 2.0
    assert pick_alpha({-1.0: 0.5, 1.0: 0.5}) == -1.0
    assert pick_alpha({16.0: 0.1}) == 16.0
    with pytest.raises(ValueError, match="empty dev curve"):
        pick_alpha({})


def test_accuracy_interval_and_records_file(tiny_model, tmp_path):
    task = _scripted_task(["x", "x", "y", "x"])
    records_path = tmp_path / "out" / "records.jsonl"
    result = evaluate(tiny_model, task, records_path=records_path, batch_size=3, progress=False)
    assert (result.accuracy, result.n) == (0.75, 4)
    assert (result.ci_low, result.ci_high) == wilson_interval(3, 4)
    rows = [json.loads(line) for line in records_path.read_text().splitlines()]
    assert [(r["item_id"], r["gold"], r["answer"], r["correct"]) for r in rows] == [
        ("i0", "x", "x", True),
        ("i1", "x", "x", True),
        ("i2", "y", "x", False),
        ("i3", "x", "x", True),
    ]
    assert [r["prompt"] for r in rows] == list(PROMPTS[:4])
    assert [r["completion"] for r in rows] == [r.completion for r in result.records]
    assert result.summary() == {
        "accuracy": 0.75,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "n": 4,
        "task": "scripted",
        "alpha": 0.0,
        "positions": "last",
        "mode": "add",
        "steered": False,
        "chat": False,  # the tiny tokenizer has no chat template
    }


def test_completions_are_the_greedy_generations_whatever_the_batch_size(tiny_model):
    task = tiny_task()
    result = evaluate(tiny_model, task, items=task.items("train"), batch_size=4, progress=False)
    texts = roast_tl.generate(
        tiny_model, [i.prompt for i in task.items("train")], max_new_tokens=task.max_new_tokens
    )
    assert [r.completion for r in result.records] == texts
    assert [r.correct for r in result.records] == [
        task.grade(text, item) for text, item in zip(texts, task.items("train"), strict=True)
    ]
    assert result.accuracy == sum(r.correct for r in result.records) / 6
    one_by_one = evaluate(tiny_model, task, items=task.items("train"), batch_size=1, progress=False)
    assert one_by_one.records == result.records


def test_default_items_are_the_test_split_and_none_is_an_error(tiny_model):
    task = tiny_task()
    result = evaluate(tiny_model, task, progress=False)
    assert [r.item_id for r in result.records] == [i.id for i in task.items("test")]
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(tiny_model, task, items=[], progress=False)


def test_prompt_prefix_is_what_the_model_sees_but_not_what_is_recorded(tiny_model):
    task = tiny_task()
    prefix = "review : the movie was great .\n"
    result = evaluate(tiny_model, task, prompt_prefix=prefix, progress=False)
    texts = roast_tl.generate(
        tiny_model, [prefix + i.prompt for i in task.items("test")], max_new_tokens=3
    )
    assert [r.completion for r in result.records] == texts
    assert [r.prompt for r in result.records] == [i.prompt for i in task.items("test")]
    assert texts != [r.completion for r in evaluate(tiny_model, task, progress=False).records]


def test_alpha_zero_is_unsteered_and_alpha_steers_as_steer_does(tiny_model):
    task = tiny_task()
    items = task.items("train")
    vector = random_vector(tiny_model, scale=8.0)
    unsteered = evaluate(tiny_model, task, items=items, progress=False)
    zero = evaluate(tiny_model, task, vector, 0.0, items=items, progress=False)
    assert zero.records == unsteered.records and zero.settings["steered"] is False
    steered = evaluate(tiny_model, task, vector, 1.0, items=items, positions="all", progress=False)
    with roast_tl.steer(tiny_model, vector, 1.0, positions="all"):
        texts = roast_tl.generate(tiny_model, [i.prompt for i in items], max_new_tokens=3)
    assert [r.completion for r in steered.records] == texts
    assert texts != [r.completion for r in unsteered.records]
    assert steered.settings == {
        "task": "parity",
        "alpha": 1.0,
        "positions": "all",
        "mode": "add",
        "steered": True,
        "chat": False,
    }


def test_a_vector_for_another_model_is_refused(tiny_model):
    vector = random_vector(tiny_model)
    vector.metadata["model_name"] = "someone/else"
    with pytest.raises(ValueError, match="made for model 'someone/else'"):
        evaluate(tiny_model, tiny_task(), vector, 1.0, progress=False)


def test_allow_other_model_is_taken_here_or_remembered_from_load(tiny_model, tmp_path):
    task = tiny_task()
    vector = random_vector(tiny_model)
    vector.metadata["model_name"] = "/old/path"
    expected = evaluate(
        tiny_model, task, vector, 1.0, progress=False, allow_other_model=True
    ).records
    loaded = SteeringVector.load(
        vector.save(tmp_path / "f7.safetensors"), tiny_model, allow_other_model=True
    )
    assert evaluate(tiny_model, task, loaded, 1.0, progress=False).records == expected
    with pytest.raises(ValueError, match="--allow-other-model"):
        evaluate(tiny_model, task, SteeringVector.load(tmp_path / "f7.safetensors"), 1.0)


def test_evaluate_inside_a_steer_block_warns_and_records_it(tiny_model):
    task = tiny_task()
    items = task.items("train")
    vector = random_vector(tiny_model, scale=8.0)
    plain = evaluate(tiny_model, task, items=items, progress=False)
    assert "other_hooks_attached" not in plain.settings
    with roast_tl.steer(tiny_model, vector, 1.0, positions="all"):
        with pytest.warns(RoastWarning, match="forward hooks already attached.*hook_resid_post"):
            inside = evaluate(tiny_model, task, items=items, progress=False)
        texts = roast_tl.generate(tiny_model, [i.prompt for i in items], max_new_tokens=3)
    assert [r.completion for r in inside.records] == texts  # the enclosing hooks did act
    assert texts != [r.completion for r in plain.records]
    assert inside.settings["other_hooks_attached"] is True and inside.settings["steered"] is False
    # Its own vector's hooks are attached after the check, so they never count:
    own = evaluate(tiny_model, task, vector, 1.0, items=items, positions="all", progress=False)
    assert "other_hooks_attached" not in own.settings and own.settings["steered"] is True


@pytest.mark.parametrize("batch_size", [0, -4])
def test_batch_size_below_one_is_refused(tiny_model, batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be at least 1, got {batch_size}"):
        evaluate(tiny_model, tiny_task(), batch_size=batch_size, progress=False)


@pytest.mark.parametrize("batch_size", [2.0, True, "8"])
def test_batch_size_must_be_an_int(tiny_model, batch_size):
    with pytest.raises(TypeError, match="batch_size must be a positive int"):
        unchecked(evaluate)(tiny_model, tiny_task(), batch_size=batch_size, progress=False)


def test_a_raw_tensor_instead_of_a_vector_says_to_wrap_it(tiny_model):
    with pytest.raises(TypeError, match="evaluate needs a SteeringVector, got dict; wrap"):
        unchecked(evaluate)(tiny_model, tiny_task(), {HOOK: torch.ones(32)}, 1.0)


def test_evaluate_a_bfloat16_model():
    model = make_tiny_model_in(torch.bfloat16)
    task = tiny_task()
    vector = random_vector(model, scale=8.0)
    unsteered = evaluate(model, task, items=task.items("train"), progress=False)
    zero = evaluate(model, task, vector, 0.0, items=task.items("train"), progress=False)
    assert zero.records == unsteered.records
    steered = evaluate(
        model, task, vector, 1.0, items=task.items("train"), positions="all", progress=False
    )
    with roast_tl.steer(model, vector, 1.0, positions="all"):
        texts = roast_tl.generate(model, [i.prompt for i in task.items("train")], max_new_tokens=3)
    assert (
        [r.completion for r in steered.records]
        == texts
        != [r.completion for r in unsteered.records]
    )
