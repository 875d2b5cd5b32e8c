"""The sweep: alpha and layers chosen on dev only, rollouts sampled once per seed, resumable cells,
and tables that hold what was measured."""

import csv
import dataclasses
import json
import os
import sys
from types import SimpleNamespace

import pytest
import torch

import roast_tl.harness.sweep as sweep
from roast_tl.evaluate import pick_alpha
from roast_tl.harness.baselines import MethodContext, SteeringSetup
from roast_tl.harness.sweep import (
    CellCache,
    file_safe,
    markdown_table,
    run_cell,
    run_sweep,
    summarize,
    train_subset,
    tune_alpha,
    write_tables,
)
from roast_tl.tasks.base import Task
from roast_tl.vector import SteeringVector
from tests.tiny_model import make_tiny_model, tiny_task

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _task():
    return tiny_task(n_train=8, n_dev=2, n_test=2)  # dev q8, q9; test q10, q11


def _fake_result(accuracy):
    return SimpleNamespace(accuracy=accuracy, ci_low=0.0, ci_high=1.0, n=2)


def test_tune_alpha_reads_dev_only_and_breaks_ties_toward_the_smaller_alpha(
    tiny_model, monkeypatch
):
    task = _task()
    seen = []

    def fake_evaluate(model, task, vector=None, alpha=0.0, *, items, **kwargs):
        seen.append({i.id for i in items})
        return _fake_result({1.0: 0.5, 2.0: 0.75, 4.0: 0.75, 8.0: 0.25}[alpha])

    monkeypatch.setattr(sweep, "evaluate", fake_evaluate)
    setup = SteeringSetup("x", vector=SteeringVector({"blocks.0.hook_resid_post": torch.ones(2)}))
    best, curve = tune_alpha(tiny_model, task, setup, [8.0, 4.0, 2.0, 1.0], task.items("dev"))
    assert best == 2.0 and curve == {1.0: 0.5, 2.0: 0.75, 4.0: 0.75, 8.0: 0.25}
    assert seen == [{"q8", "q9"}] * 4


def test_run_cell_picks_layers_and_alpha_on_dev_then_evaluates_test_once(tiny_model, monkeypatch):
    task = _task()
    score = {
        ("blocks.1.hook_resid_post", 1.0): 0.5,
        ("blocks.1.hook_resid_post", 2.0): 0.5,
        ("blocks.2.hook_resid_post", 1.0): 0.0,
        ("blocks.2.hook_resid_post", 2.0): 1.0,
    }
    test_calls = []

    def fake_evaluate(model, task, vector=None, alpha=0.0, *, items, **kwargs):
        ids = {i.id for i in items}
        if ids == {"q10", "q11"}:
            test_calls.append((vector.hook_names, alpha))
            return _fake_result(0.25)
        assert ids == {"q8", "q9"}
        return _fake_result(score[(vector.hook_names[0], alpha)])

    monkeypatch.setattr(sweep, "evaluate", fake_evaluate)
    train = task.items("train")
    contexts = {
        "1": MethodContext(tiny_model, task, train, [1]),
        "2": MethodContext(tiny_model, task, train, [2]),
    }
    cell = run_cell(
        tiny_model,
        task,
        "caa",
        contexts,
        dev=task.items("dev"),
        test=task.items("test"),
        alphas={"add": [1.0, 2.0]},
    )
    assert (cell["layers"], cell["alpha"], cell["test_accuracy"]) == ("2", 2.0, 0.25)
    assert test_calls == [(["blocks.2.hook_resid_post"], 2.0)]
    assert cell["dev_by_alpha"] == {"1.0": 0.0, "2.0": 1.0}
    assert cell["dev_by_layers"] == {"1": {"1.0": 0.5, "2.0": 0.5}, "2": {"1.0": 0.0, "2.0": 1.0}}
    assert cell["mode"] == "add" and cell["vector_metadata"]["hook_names"] == [
        "blocks.2.hook_resid_post"
    ]


def test_summarize_and_markdown_table():
    row = {"task": "t", "method": "roast", "alpha": 4.0, "layers": "10", "n_test": 10}
    rows = [{**row, "seed": s, "test_accuracy": a} for s, a in [(42, 0.5), (22, 0.7), (52, 0.6)]]
    (summary,) = summarize(rows)
    assert summary["mean"] == pytest.approx(0.6) and summary["std"] == pytest.approx(0.1)
    assert summary["n_seeds"] == 3 and summary["alphas"] == [4.0, 4.0, 4.0]
    table = markdown_table([summary])
    assert "| t | roast | 0.600 ± 0.100 | 3 | 4, 4, 4 | 10; 10; 10 | 10 |" in table


def test_train_subset_is_seeded_and_disjoint_from_dev_and_test():
    task = _task()
    a, b = train_subset(task, 5, 42), train_subset(task, 5, 22)
    assert a == train_subset(task, 5, 42) and a != b and len(a) == 5
    held_out = {i.id for i in task.items("dev") + task.items("test")}
    assert not held_out & {i.id for i in a + b}


def test_cell_cache_refuses_a_folder_made_with_other_settings(tmp_path):
    cache = CellCache(tmp_path / "cells.json", {"n_train": 4})
    cache.put("t/none/1", {"test_accuracy": 0.5})
    again = CellCache(tmp_path / "cells.json", {"n_train": 4})
    assert "t/none/1" in again and again["t/none/1"] == {"test_accuracy": 0.5}
    with pytest.raises(ValueError, match=r"other settings \(n_train 4 → 5\); use another"):
        CellCache(tmp_path / "cells.json", {"n_train": 5})


def test_a_truncated_or_foreign_cells_json_is_an_error_naming_the_file(tmp_path):
    """U2: a truncated cells.json gave "Expecting value: line 42 column 11" and no file name."""
    path = tmp_path / "cells.json"
    CellCache(path, {"n_train": 4}).put("t/none/1", {"test_accuracy": 0.5})
    path.write_text(path.read_text()[:30])
    with pytest.raises(ValueError, match=r"cells\.json: invalid JSON .* may be truncated"):
        CellCache(path, {"n_train": 4})
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"cells\.json is not a sweep cache"):
        CellCache(path, {"n_train": 4})


def test_run_sweep_samples_once_per_seed_tunes_on_dev_writes_tables_and_resumes(
    tiny_model, tmp_path, monkeypatch
):
    task = _task()
    sampled, evaluated = [], []
    real_sample, real_evaluate = sweep.sample_rollouts, sweep.evaluate

    def counting_sample(*args, **kwargs):
        sampled.append(kwargs["seed"])
        return real_sample(*args, **kwargs)

    def recording_evaluate(model, task, vector=None, alpha=0.0, *, items, **kwargs):
        result = real_evaluate(model, task, vector, alpha, items=items, **kwargs)
        evaluated.append((frozenset(i.id for i in items), alpha, result.accuracy))
        return result

    monkeypatch.setattr(sweep, "sample_rollouts", counting_sample)
    monkeypatch.setattr(sweep, "evaluate", recording_evaluate)
    methods = ["none", "roast_plain", "roast"]
    kwargs = {
        "layers": [1],
        "out_dir": tmp_path,
        "seeds": [42, 22],
        "n_train": 4,
        "n_rollouts": 3,
        "alphas": {"add": [1.0, 4.0]},
        "progress": False,
    }
    rows = run_sweep(tiny_model, task, methods, **kwargs)
    assert sampled == [42, 22]  # one sampling per seed, shared by both ROAST variants
    test_ids, dev_ids = frozenset({"q10", "q11"}), frozenset({"q8", "q9"})
    assert {ids for ids, _, _ in evaluated} == {test_ids, dev_ids}
    test_runs = [(alpha, acc) for ids, alpha, acc in evaluated if ids == test_ids]
    assert len(test_runs) == 1 + 2 * 2  # none once (copied to seed 22), then 2 methods per seed
    assert [(r["method"], r["seed"]) for r in rows] == [(m, s) for m in methods for s in [42, 22]]
    none_22 = next(r for r in rows if r["method"] == "none" and r["seed"] == 22)
    assert none_22["copied_from_seed"] == 42 and none_22["alpha"] == 0.0
    for row in rows:
        assert (row["alpha"], row["test_accuracy"]) in test_runs
        if row["method"] != "none":
            curve = {float(a): acc for a, acc in row["dev_by_alpha"].items()}
            assert set(curve) == {1.0, 4.0} and row["alpha"] == pick_alpha(curve)
            assert all((dev_ids, a, acc) in evaluated for a, acc in curve.items())
            assert row["vector_metadata"]["hook_names"] == ["blocks.1.hook_resid_post"]

    # The files hold the rows.
    with open(tmp_path / "rows.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    written = [
        (t["method"], int(t["seed"]), float(t["alpha"]), float(t["test_accuracy"])) for t in table
    ]
    assert written == [(r["method"], r["seed"], r["alpha"], r["test_accuracy"]) for r in rows]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows"] == json.loads(json.dumps(rows))
    assert [(s["method"], s["n_seeds"]) for s in summary["summary"]] == [(m, 2) for m in methods]
    assert (tmp_path / "summary.md").read_text() == markdown_table(summarize(rows)) + "\n"
    assert set(json.loads((tmp_path / "cells.json").read_text())["cells"]) == {
        f"parity/{m}/{s}" for m in methods for s in [42, 22]
    }
    for seed in (42, 22):
        lines = (tmp_path / f"rollouts_parity_{seed}.jsonl").read_text().splitlines()
        assert len(lines) == 4 * 3
    assert (tmp_path / "dev_accuracy_vs_alpha.png").read_bytes()[:8] == PNG_SIGNATURE

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished sweep must resume from its cells")

    monkeypatch.setattr(sweep, "evaluate", must_not_run)
    monkeypatch.setattr(sweep, "sample_rollouts", must_not_run)
    assert run_sweep(tiny_model, task, methods, **kwargs) == rows
    with pytest.raises(ValueError, match="other settings"):
        run_sweep(tiny_model, task, methods, **{**kwargs, "n_train": 5})
    with pytest.raises(ValueError, match="unknown method 'rost'"):
        run_sweep(tiny_model, task, ["rost"], **kwargs)


def test_tables_are_written_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    row = {"task": "t", "method": "caa", "seed": 1, "alpha": 2.0, "layers": "1"}
    write_tables(
        [{**row, "test_accuracy": 0.5, "n_test": 4, "dev_by_alpha": {"2.0": 1.0}}], tmp_path
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "summary.json", "summary.md"]
    assert (tmp_path / "rows.csv").read_text().splitlines()[1] == "t,caa,1,2.0,1,0.5,4"


def _none_sweep(model, task, out, **overrides):
    kwargs = {"layers": [1], "out_dir": out, "seeds": [1], "n_train": 2, "progress": False}
    return run_sweep(model, task, ["none"], **{**kwargs, **overrides})


def test_a_folder_made_with_another_model_or_task_data_is_refused(
    tiny_model, tmp_path, monkeypatch
):
    """S1: cells.json's config ignored the model and the task data, so a second sweep with
    another model or task file printed the first one's table."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # a "none"-only sweep has no curves
    task = _task()
    rows = _none_sweep(tiny_model, task, tmp_path)
    config = json.loads((tmp_path / "cells.json").read_text())["config"]
    assert {"model", "tokenizer", "task_data"} <= set(config)
    with pytest.raises(ValueError, match=r"other settings \(model \(another\)\)"):
        _none_sweep(make_tiny_model(seed=5), task, tmp_path)
    regold = {
        split: [dataclasses.replace(item, gold="odd") for item in items]
        for split, items in task.splits.items()
    }
    other_data = Task(task.name, regold, task.extract_answer, task.max_new_tokens)
    with pytest.raises(ValueError, match=r"other settings \(task_data \(another\)\)"):
        _none_sweep(tiny_model, other_data, tmp_path)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the same model, booted from another path, must resume")

    monkeypatch.setattr(sweep, "evaluate", must_not_run)
    again = make_tiny_model()
    assert again.cfg.model_name != tiny_model.cfg.model_name
    assert _none_sweep(again, task, tmp_path) == rows


def test_empty_or_repeated_methods_and_seeds_are_refused(tiny_model, tmp_path):
    """S5: `--seeds 1,1,1` reported one seed as three with std 0; empty lists wrote empty tables."""
    task = _task()
    for overrides, message in [
        ({"seeds": [1, 1, 1]}, "seeds repeat 1; list each once"),
        ({"seeds": []}, "at least one entry in seeds"),
    ]:
        with pytest.raises(ValueError, match=message):
            _none_sweep(tiny_model, task, tmp_path, **overrides)
    with pytest.raises(ValueError, match="methods repeat roast; list each once"):
        run_sweep(tiny_model, task, ["roast", "roast"], layers=[1], out_dir=tmp_path)
    with pytest.raises(ValueError, match="at least one entry in methods"):
        run_sweep(tiny_model, task, [], layers=[1], out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_no_task_name_makes_the_sweep_write_outside_its_folder(tiny_model, tmp_path):
    """L3: a task named "x/../../../../escaped" wrote its rollouts outside out_dir."""
    out = tmp_path / "a" / "b" / "out"
    task = tiny_task(n_train=2, n_dev=1, n_test=1, name="x/../../escaped")
    run_sweep(
        tiny_model,
        task,
        ["roast"],
        layers=[1],
        out_dir=out,
        seeds=[1],
        n_train=2,
        n_rollouts=2,
        alphas={"add": [1.0]},
        progress=False,
    )
    written = [os.path.join(root, f) for root, _, files in os.walk(tmp_path) for f in files]
    assert written and all(path.startswith(str(out) + os.sep) for path in written)
    assert (out / f"rollouts_{file_safe(task.name)}_1.jsonl").exists()
    assert file_safe("x/../../escaped").startswith("x_.._.._escaped-")
    assert file_safe("a/b") != file_safe("a_b") == "a_b"  # sanitized names do not collide
    assert file_safe("..").startswith("task-") and "/" not in file_safe("../..")


def test_tables_are_replaced_atomically(tmp_path, monkeypatch):
    """L5: an interrupted write_tables leaves the previous rows.csv and summary files whole."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the tables only
    row = {"task": "t", "method": "caa", "seed": 1, "alpha": 2.0, "layers": "1", "n_test": 4}
    write_tables([{**row, "test_accuracy": 0.5}], tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupt(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_tables([{**row, "test_accuracy": 0.75}], tmp_path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
