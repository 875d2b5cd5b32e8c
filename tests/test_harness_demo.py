"""The demo: estimate, pick alpha on dev, compare unsteered and steered on test, save everything."""

import json

import pytest

import roast_tl.harness.demo as demo
from roast_tl.evaluate import EvalResult, pick_alpha
from roast_tl.harness.demo import DemoConfig, result_table, run_demo
from roast_tl.rollouts import load_rollouts
from roast_tl.vector import SteeringVector
from tests.tiny_model import tiny_task


@pytest.fixture
def demo_env(tiny_model, monkeypatch):
    """Point the demo's model and task loaders at the tiny model and the toy task."""
    task = tiny_task(n_train=4, n_dev=2, n_test=3)
    monkeypatch.setattr(demo, "load_model", lambda name=None: tiny_model)
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


def test_result_table_lines_up_accuracy_interval_and_n():
    table = result_table({"unsteered": EvalResult(0.25, 0.1, 0.5, 40)})
    assert table.splitlines()[-1] == (
        "| unsteered                    |    0.250 | [0.100, 0.500] |   40 |"
    )
