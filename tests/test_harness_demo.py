"""The demo: estimate, pick alpha on dev, compare unsteered and steered on test, save everything."""

import importlib
import json
from dataclasses import replace

import pytest

import roast_tl.harness.demo as demo
import roast_tl.rollouts as rollouts_module
from roast_tl.evaluate import pick_alpha
from roast_tl.harness.demo import DemoConfig, run_demo
from roast_tl.report import YieldReport
from roast_tl.rollouts import load_rollouts
from roast_tl.vector import SteeringVector
from tests.tiny_model import make_tiny_model, tiny_task


@pytest.fixture
def demo_env(tiny_model, monkeypatch):
    """Point the demo's model and task loaders at the tiny model and the toy task."""
    task = tiny_task(n_train=4, n_dev=2, n_test=3)
    monkeypatch.setattr(demo, "load_model", lambda name=None, backend=None: tiny_model)
    monkeypatch.setattr(demo, "load_task", lambda name, **kwargs: task)
    return tiny_model, task


def _accuracy(records_path):
    rows = [json.loads(line) for line in records_path.read_text().splitlines()]
    return sum(r["correct"] for r in rows) / len(rows), len(rows)


def test_run_demo_writes_what_it_measured(demo_env, tmp_path):
    model, task = demo_env
    config = DemoConfig(
        layers=[1],
        n_train=4,
        n_rollouts=2,
        alphas=[1.0, 4.0],
        batch_size=8,
        out=str(tmp_path),
        progress=False,
    )
    results = run_demo(config)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(
        json.dumps(results, default=str)
    )
    curve = {float(a): acc for a, acc in results["dev_accuracy_by_alpha"].items()}
    assert set(curve) == {0.0, 1.0, 4.0}
    assert results["chosen_alpha"] == pick_alpha(curve)
    for label in ("unsteered", "steered"):
        accuracy, n = _accuracy(tmp_path / f"test_{label}.jsonl")
        assert (results["test"][label]["accuracy"], results["test"][label]["n"]) == (accuracy, n)
        assert n == 3
    assert results["test"]["steered"]["alpha"] == results["chosen_alpha"]
    assert results["test"]["unsteered"]["steered"] is False
    vector = SteeringVector.load(tmp_path / "vector.safetensors", model)
    assert vector.hook_names == ["blocks.1.hook_resid_post"]
    assert vector.metadata["scaler"] == "max_norm" and vector.metadata["n_items"] == 4
    assert results["vector_metadata"]["n_rollouts_total"] == 8
    assert len(load_rollouts(tmp_path / "rollouts.jsonl")) == 4 * 2
    assert results["config"]["scaler"] == "max_norm"
    assert set(results["timings"]) == {
        "load_model_s",
        "estimate_s",
        "alpha_selection_s",
        "test_eval_s",
        "total_s",
    }
    steered_row = f"ROAST steered (alpha={results['chosen_alpha']:g})"
    assert steered_row in results["table"]


def test_the_demo_table_shows_the_yield_report_and_results_json_carries_it(demo_env, tmp_path):
    model, _ = demo_env
    results = run_demo(_small(tmp_path))
    row = results["vector_metadata"]["yield_report"]
    assert (
        row == SteeringVector.load(tmp_path / "vector.safetensors", model).metadata["yield_report"]
    )
    assert json.loads((tmp_path / "results.json").read_text())["vector_metadata"][
        "yield_report"
    ] == json.loads(json.dumps(row))
    report = YieldReport.from_dict(row)
    assert (report.n_items, report.n_rollouts) == (4, 4 * 2)
    assert report.gold_check is not None and report.gold_check.failed == 0
    lines = results["table"].splitlines()
    block = str(report).splitlines()
    assert lines[0].startswith("ROAST demo: ") and lines[1 : 1 + len(block)] == block
    assert lines[1].startswith("yield report: 4 prompts x 2 rollouts, rollout accuracy ")
    assert lines[1 + len(block)].startswith("dev accuracy by alpha: ")


def _small(tmp_path, **overrides):
    config = DemoConfig(
        layers=[1], n_train=4, n_rollouts=2, alphas=[1.0], out=str(tmp_path), progress=False
    )
    return replace(config, **overrides)


def _folder(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_a_rerun_resumes_and_results_record_the_fingerprints(demo_env, tmp_path, monkeypatch):
    model, task = demo_env
    first = run_demo(_small(tmp_path))
    recorded = set(first["settings"]["fingerprints"])
    assert recorded == {"model", "tokenizer", "task_data", "attention"}
    sampled = []
    real_complete = rollouts_module.complete

    def counting_complete(*args, **kwargs):
        sampled.append(args[1])
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(rollouts_module, "complete", counting_complete)
    # The same settings, another batch size and the same model booted from another path.
    again_model = make_tiny_model()
    monkeypatch.setattr(demo, "load_model", lambda name=None, backend=None: again_model)
    second = run_demo(_small(tmp_path, batch_size=3))
    assert sampled == []  # every rollout reused
    assert second["test"] == first["test"] and second["settings"] == first["settings"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 1}, r"seed 0 → 1"),
        ({"alphas": [2.0]}, r"alphas \[1\.0\] → \[2\.0\]"),
        ({"model": "seed 5"}, r"model \(another\)"),
        ({"task": "regold"}, r"task_data \(another\)"),
    ],
)
def test_a_folder_made_with_other_settings_is_refused_before_any_work(
    demo_env, tmp_path, monkeypatch, change, message
):
    """S1: the demo reused another seed's or model's rollouts and recorded the new settings."""
    model, task = demo_env
    run_demo(_small(tmp_path))
    before = _folder(tmp_path)
    if "model" in change:
        other = make_tiny_model(seed=5)
        monkeypatch.setattr(demo, "load_model", lambda name=None, backend=None: other)
        change = {}
    elif "task" in change:
        regold = {s: [replace(i, gold="odd") for i in items] for s, items in task.splits.items()}
        other_task = type(task)(task.name, regold, task.extract_answer, task.max_new_tokens)
        monkeypatch.setattr(demo, "load_task", lambda name, **kwargs: other_task)
        change = {}

    def must_not_run(*args, **kwargs):
        raise AssertionError("a refused folder must be refused before any work")

    monkeypatch.setattr(demo, "estimate", must_not_run)
    with pytest.raises(
        ValueError,
        match=f"results.json holds results made with other settings "
        f"\\({message}\\); pass a new --out",
    ):
        run_demo(_small(tmp_path, **change))
    assert _folder(tmp_path) == before


def test_a_truncated_results_json_is_an_error_naming_it(demo_env, tmp_path):
    (tmp_path / "results.json").write_text('{"settings": {"seed"')
    with pytest.raises(ValueError, match=r"results\.json: invalid JSON .* may be truncated"):
        run_demo(_small(tmp_path))


def test_an_interrupted_run_leaves_only_its_appended_rollouts(demo_env, tmp_path, monkeypatch):
    """The vector, records and results.json are written together at the end: an interrupted
    run never leaves a vector or records of one run without the results.json that names it."""
    compare_module = importlib.import_module("roast_tl.compare")  # roast_tl.compare: the function
    real_evaluate = compare_module.evaluate

    def interrupted_on_test(model, task, *args, items, **kwargs):
        if {i.id for i in items} == {i.id for i in task.items("test")}:
            raise KeyboardInterrupt
        return real_evaluate(model, task, *args, items=items, **kwargs)

    monkeypatch.setattr(compare_module, "evaluate", interrupted_on_test)
    with pytest.raises(KeyboardInterrupt):
        run_demo(_small(tmp_path))
    assert list(_folder(tmp_path)) == ["rollouts.jsonl"]
