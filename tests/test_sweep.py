"""The sweep: alpha and layers chosen on dev only, rollouts sampled once per seed, resumable cells."""

import json
from types import SimpleNamespace

import pytest
import torch

import roast_tl.sweep as sweep
from roast_tl.baselines import MethodContext, SteeringSetup
from roast_tl.sweep import (
    markdown_table,
    run_sweep,
    select_on_dev,
    summarize,
    train_subset,
    tune_alpha,
)
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector
from tests.tiny_model import first_word_parity

PROMPTS = ["the movie was good", "this food was awful", "what is 3 plus 4 ?",
           "the service was great", "a bad movie", "it was awful food"]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_task() -> Task:
    items = [TaskItem(f"q{i}", PROMPTS[i % len(PROMPTS)], "even", "good", "bad") for i in range(12)]
    return Task(name="parity", splits={"train": items[:8], "dev": items[8:10], "test": items[10:]},
                extract_answer=first_word_parity, max_new_tokens=3, few_shot=items[:2])


def _fake_result(accuracy):
    return SimpleNamespace(accuracy=accuracy, ci_low=0.0, ci_high=1.0, n=2)


def test_tune_alpha_reads_dev_only_and_breaks_ties_toward_smaller(monkeypatch):
    task = tiny_task()
    seen = []

    def fake_evaluate(model, task, vector=None, alpha=0.0, *, items, **kwargs):
        seen.append({i.id for i in items})
        return _fake_result({1.0: 0.5, 2.0: 0.75, 4.0: 0.75, 8.0: 0.25}[alpha])

    monkeypatch.setattr(sweep, "evaluate", fake_evaluate)
    setup = SteeringSetup("x", vector=SteeringVector({"blocks.0.hook_resid_post": torch.ones(2)}))
    best, curve = tune_alpha(None, task, setup, [1.0, 2.0, 4.0, 8.0], n_dev=None)
    assert best == 2.0 and curve == {1.0: 0.5, 2.0: 0.75, 4.0: 0.75, 8.0: 0.25}
    assert all(ids == {"q8", "q9"} for ids in seen)


def test_select_on_dev_picks_the_best_layer(tiny_model, monkeypatch):
    task = tiny_task()
    score = {("blocks.1.hook_resid_post", 1.0): 0.5, ("blocks.1.hook_resid_post", 2.0): 0.5,
             ("blocks.2.hook_resid_post", 1.0): 0.0, ("blocks.2.hook_resid_post", 2.0): 1.0}

    def fake_evaluate(model, task, vector=None, alpha=0.0, *, items, **kwargs):
        assert {i.id for i in items} <= {"q8", "q9"}
        return _fake_result(score[(vector.hook_names[0], alpha)])

    monkeypatch.setattr(sweep, "evaluate", fake_evaluate)
    train = task.items("train")
    contexts = {"1": MethodContext(tiny_model, task, train, [1]), "2": MethodContext(tiny_model, task, train, [2])}
    label, setup, alpha, curves = select_on_dev(tiny_model, task, "caa", contexts,
                                                {"add": [1.0, 2.0]}, n_dev=None)
    assert (label, alpha) == ("2", 2.0) and setup.vector.hook_names == ["blocks.2.hook_resid_post"]
    assert set(curves) == {"1", "2"}


def test_summarize_and_table():
    rows = [{"task": "t", "method": "roast", "seed": s, "alpha": 4.0, "layers": "10",
             "test_accuracy": a, "n_test": 10} for s, a in [(42, 0.5), (22, 0.7), (52, 0.6)]]
    (summary,) = summarize(rows)
    assert summary["mean"] == pytest.approx(0.6) and summary["std"] == pytest.approx(0.1)
    assert "| t | roast | 0.600 ± 0.100 | 3 | 4, 4, 4 | 10; 10; 10 | 10 |" in markdown_table([summary])


def test_train_subset_is_seeded_and_disjoint_from_dev_and_test():
    task = tiny_task()
    a, b = train_subset(task, 5, 42), train_subset(task, 5, 22)
    assert a == train_subset(task, 5, 42) and a != b and len(a) == 5
    held_out = {i.id for i in task.items("dev") + task.items("test")}
    assert not held_out & {i.id for i in a + b}


def test_run_sweep_samples_once_per_seed_tunes_on_dev_and_resumes(tiny_model, tmp_path, monkeypatch):
    task = tiny_task()
    sampled, evaluated = [], []
    real_sample, real_evaluate = sweep.sample_rollouts, sweep.evaluate

    def counting_sample(*args, **kwargs):
        sampled.append(kwargs["seed"])
        return real_sample(*args, **kwargs)

    def recording_evaluate(model, task, vector=None, alpha=0.0, *, items, **kwargs):
        evaluated.append((frozenset(i.id for i in items), alpha))
        return real_evaluate(model, task, vector, alpha, items=items, **kwargs)

    monkeypatch.setattr(sweep, "sample_rollouts", counting_sample)
    monkeypatch.setattr(sweep, "evaluate", recording_evaluate)
    methods = ["none", "roast_plain", "roast"]
    kwargs = dict(layers=[1], out_dir=tmp_path, seeds=[42, 22], n_train=4, n_rollouts=3,
                  alphas={"add": [1.0, 4.0]}, progress=False)
    rows = run_sweep(tiny_model, task, methods, **kwargs)
    assert sampled == [42, 22]  # one sampling per seed, shared by both ROAST variants
    test_ids, dev_ids = frozenset({"q10", "q11"}), frozenset({"q8", "q9"})
    assert {ids for ids, _ in evaluated} == {test_ids, dev_ids}
    assert sum(ids == test_ids for ids, _ in evaluated) == 1 + 2 * 2  # none once, then 2 per seed
    assert [(r["method"], r["seed"]) for r in rows] == [(m, s) for m in methods for s in [42, 22]]
    none_22 = next(r for r in rows if r["method"] == "none" and r["seed"] == 22)
    assert none_22["copied_from_seed"] == 42
    roast = next(r for r in rows if r["method"] == "roast" and r["seed"] == 42)
    assert roast["alpha"] in (1.0, 4.0) and set(roast["dev_by_alpha"]) == {"1.0", "4.0"}
    assert roast["vector_metadata"]["hook_names"] == ["blocks.1.hook_resid_post"]
    for name in ["rows.csv", "summary.json", "summary.md", "cells.json",
                 "rollouts_parity_42.jsonl", "rollouts_parity_22.jsonl", "dev_accuracy_vs_alpha.png"]:
        assert (tmp_path / name).exists(), name
    assert len(json.loads((tmp_path / "summary.json").read_text())["summary"]) == len(methods)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished sweep must resume from its cells")

    monkeypatch.setattr(sweep, "evaluate", must_not_run)
    monkeypatch.setattr(sweep, "sample_rollouts", must_not_run)
    assert run_sweep(tiny_model, task, methods, **kwargs) == rows
    with pytest.raises(ValueError, match="other settings"):
        run_sweep(tiny_model, task, methods, **{**kwargs, "n_train": 5})
