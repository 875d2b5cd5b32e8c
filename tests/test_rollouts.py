"""Rollouts: graded samples as plain data, JSONL save/load, seeding, and resuming a killed run."""

import json
from dataclasses import asdict

import pytest

import roast_tl.rollouts as rollouts_module
from roast_tl.generation import complete
from roast_tl.rollouts import Rollout, load_rollouts, prompt_seed, sample_rollouts, save_rollouts
from tests.tiny_model import encode, make_rollout, tiny_task

SAMPLING = {"n_rollouts": 3, "temperature": 1.0, "top_p": 0.9, "seed": 1, "progress": False}


def test_from_dict_defaults_optional_fields_and_ignores_unknown_keys():
    row = {"item_id": "a", "prompt_text": "p", "completion": "c", "correct": True, "extra": 1}
    assert Rollout.from_dict(row) == Rollout("a", 0, "p", [], [], "c", None, True, -1)
    full = asdict(make_rollout("b", False, index=2, source="vllm"))
    assert Rollout.from_dict(full) == make_rollout("b", False, index=2, source="vllm")
    with pytest.raises(ValueError, match=r"rollout row lacks \['completion', 'correct'\]"):
        Rollout.from_dict({"item_id": "a", "prompt_text": "p"})


def test_save_load_round_trip_append_and_bad_rows(tmp_path):
    path = tmp_path / "r.jsonl"
    first = [make_rollout("q0", True), make_rollout("q0", False, index=1)]
    save_rollouts(first, path)
    save_rollouts([make_rollout("q1", True)], path, append=True)
    assert load_rollouts(path) == [*first, make_rollout("q1", True)]
    save_rollouts(first[:1], path)  # without append: replaced
    assert load_rollouts(path) == first[:1]
    path.write_text(path.read_text() + json.dumps({"item_id": "q2"}) + "\n")
    with pytest.raises(ValueError, match=r"r\.jsonl:2: bad rollout row"):
        load_rollouts(path)


def test_load_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    save_rollouts([make_rollout("q0", True), make_rollout("q1", False)], path)
    text = path.read_text()
    path.write_text(text[: len(text) - 10])  # killed while writing the second row
    assert load_rollouts(path) == [make_rollout("q0", True)]


def test_prompt_seeds_depend_only_on_seed_and_item_index():
    seeds = {prompt_seed(s, i) for s in range(20) for i in range(100)}
    assert len(seeds) == 2000  # distinct for every (seed, index) here
    assert prompt_seed(3, 7) == 3 * 1_000_003 + 7


def test_sample_rollouts_grades_every_sample_of_every_prompt(tiny_model):
    task = tiny_task()
    items = task.items("train")
    rollouts = sample_rollouts(tiny_model, task, items, **SAMPLING)
    assert [(r.item_id, r.sample_index) for r in rollouts] == [
        (item.id, k) for item in items for k in range(3)
    ]
    for r, item in zip(rollouts, [item for item in items for _ in range(3)], strict=True):
        assert r.prompt_text == item.prompt and r.prompt_token_ids == encode(
            tiny_model, item.prompt
        )
        assert r.completion == tiny_model.tokenizer.decode(
            r.completion_token_ids, skip_special_tokens=True
        )
        assert (r.answer, r.correct) == task.extract_and_grade(r.completion, item)
        assert r.seed == prompt_seed(1, items.index(item)) and r.source == "roast_tl"
    assert {r.correct for r in rollouts} == {True, False}  # the toy grader splits them


def test_same_seed_same_rollouts_whatever_the_batch_size(tiny_model):
    task = tiny_task()
    items = task.items("train")

    def run(seed, batch_size):
        return sample_rollouts(
            tiny_model, task, items, **{**SAMPLING, "seed": seed, "batch_size": batch_size}
        )

    first = run(3, 3)
    assert run(3, 3) == first
    assert run(3, 18) == first  # one batch instead of six: the same draws
    other = run(4, 3)
    assert [r.completion_token_ids for r in other] != [r.completion_token_ids for r in first]


def test_bad_arguments_are_clear_errors(tiny_model):
    task = tiny_task()
    with pytest.raises(ValueError, match="empty item list"):
        sample_rollouts(tiny_model, task, [], progress=False)
    with pytest.raises(ValueError, match="n_rollouts must be at least 1"):
        sample_rollouts(tiny_model, task, task.items("train"), n_rollouts=0, progress=False)


def test_resume_drops_the_torn_line_and_the_partial_prompt(tiny_model, tmp_path):
    task = tiny_task()
    items = task.items("train")
    path = tmp_path / "rollouts.jsonl"
    full = sample_rollouts(tiny_model, task, items, **SAMPLING, batch_size=6, rollouts_path=path)
    assert load_rollouts(path) == full
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])  # 2 prompts, 1 partial, torn
    resumed = sample_rollouts(tiny_model, task, items, **SAMPLING, batch_size=6, rollouts_path=path)
    assert resumed == full
    assert load_rollouts(path) == full


def test_an_interrupted_run_resumes_without_resampling_finished_prompts(
    tiny_model, tmp_path, monkeypatch
):
    task = tiny_task()
    items = task.items("train")
    settings = {**SAMPLING, "n_rollouts": 4, "batch_size": 8}  # 2 prompts per batch
    reference = sample_rollouts(tiny_model, task, items, **settings)
    path = tmp_path / "rollouts.jsonl"
    calls: list[list[str]] = []
    interrupt = [True]

    def interrupt_on_second_batch(model, messages, **kwargs):
        calls.append(list(messages))
        if interrupt[0] and len(calls) == 2:
            raise KeyboardInterrupt
        return complete(model, messages, **kwargs)

    monkeypatch.setattr(rollouts_module, "complete", interrupt_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        sample_rollouts(tiny_model, task, items, **settings, rollouts_path=path)
    assert load_rollouts(path) == reference[:8]  # the first batch: 2 prompts x 4 rollouts

    calls.clear()
    interrupt[0] = False
    resumed = sample_rollouts(tiny_model, task, items, **settings, rollouts_path=path)
    assert calls == [[i.prompt for i in items[2:4]], [i.prompt for i in items[4:6]]]
    assert resumed == reference
    assert load_rollouts(path) == reference
