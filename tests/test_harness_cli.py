"""The command line: flags spelled as the library's keywords, and `eval`, `sweep` and `demo` end to
end on the tiny model, checked by what they print and write."""

import csv
import json

import pytest
import torch

import roast_tl.harness.demo
import roast_tl.models
import roast_tl.tasks
from roast_tl.harness.cli import SCALERS, build_parser, main
from roast_tl.vector import SteeringVector
from tests.tiny_model import HOOK, tiny_task


@pytest.fixture
def cli_env(tiny_model, monkeypatch):
    """Point the CLI's model and task loaders at the tiny model and the toy task."""
    task = tiny_task(n_train=6, n_dev=2, n_test=2)  # dev q6, q7; test q8, q9
    loaded = []

    def fake_load_task(name, **kwargs):
        loaded.append((name, kwargs))
        return task

    for module in (roast_tl.models, roast_tl.harness.demo):
        monkeypatch.setattr(module, "load_model", lambda name=None: tiny_model)
    for module in (roast_tl.tasks, roast_tl.harness.demo):
        monkeypatch.setattr(module, "load_task", fake_load_task)
    return tiny_model, task, loaded


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _parsed(command_line, *keys):
    args = vars(build_parser().parse_args(command_line.split()))
    return {key: args[key] for key in keys}


def test_parse_eval_sweep_and_demo_flags():
    eval_line = (
        "eval --task gsm8k --method roast --alpha 8 --layers 8,10 --positions prefill "
        "--threads 1 --site mlp_post --read-at response_mean --rollouts-path r.jsonl "
        "--max-items 5 --task-path t"
    )
    assert _parsed(eval_line, "task", "method", "alpha", "layers", "positions", "threads") == {
        "task": "gsm8k",
        "method": "roast",
        "alpha": 8.0,
        "layers": [8, 10],
        "positions": "prefill",
        "threads": 1,
    }
    assert _parsed(eval_line, "site", "read_at", "rollouts_path", "max_items", "task_path") == {
        "site": "mlp_post",
        "read_at": "response_mean",
        "rollouts_path": "r.jsonl",
        "max_items": 5,
        "task_path": "t",
    }
    assert _parsed("eval", "split", "mode", "vector", "read_at") == {
        "split": "test",
        "mode": None,
        "vector": None,
        "read_at": "last",
    }
    sweep_line = (
        "sweep --methods caa,roast --seeds 42,22 --layer-candidates 6;10;6,10 --alphas 4,16 "
        "--multiply-alphas 0.5 --read-at response_mean --max-dev 3 --max-test 7"
    )
    assert _parsed(sweep_line, "layer_candidates", "alphas", "multiply_alphas", "seeds") == {
        "layer_candidates": [[6], [10], [6, 10]],
        "alphas": [4.0, 16.0],
        "multiply_alphas": [0.5],
        "seeds": [42, 22],
    }
    assert _parsed(sweep_line, "read_at", "max_dev", "max_test") == {
        "read_at": "response_mean",
        "max_dev": 3,
        "max_test": 7,
    }
    demo_line = "demo --scaler l2_normalize --max-dev 4"
    assert _parsed(demo_line, "scaler", "max_dev", "max_test", "site") == {
        "scaler": "l2_normalize",
        "max_dev": 4,
        "max_test": None,
        "site": "resid_post",
    }
    for bad in (
        "eval --vector v.safetensors --method caa",
        "eval --split validation",
        "eval --read-at first",
        "demo --scaler top_k",
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad.split())


@pytest.mark.parametrize("name", list(SCALERS))
def test_every_registered_scaler_is_a_demo_choice(name):
    assert build_parser().parse_args(["demo", "--scaler", name]).scaler == name


def test_eval_unsteered_prints_the_accuracy_of_its_records(cli_env, tmp_path, capsys):
    _, _, loaded = cli_env
    records = tmp_path / "records.jsonl"
    code = main(
        ["eval", "--task", "parity", "--split", "dev", "--records", str(records), "--quiet"]
    )
    assert code == 0
    rows = _records(records)
    assert [r["item_id"] for r in rows] == ["q6", "q7"]
    accuracy = sum(r["correct"] for r in rows) / 2
    assert f"parity/dev [none, alpha=0]: accuracy {accuracy:.3f}" in capsys.readouterr().out
    assert loaded == [("parity", {})]
    assert main(["eval", "--task", "parity", "--task-path", "p.jsonl", "--quiet"]) == 0
    assert loaded[-1] == ("parity", {"path": "p.jsonl"})


def test_eval_with_a_saved_vector_and_with_a_method(cli_env, tmp_path, capsys):
    model, _, _ = cli_env
    path = SteeringVector(
        {HOOK: torch.ones(model.cfg.d_model)}, {"model_name": model.cfg.model_name}
    ).save(tmp_path / "v.safetensors")
    records = tmp_path / "steered.jsonl"
    assert main(["eval", "--vector", str(path), "--alpha", "2", "--records", str(records)]) == 0
    rows = _records(records)
    assert [r["item_id"] for r in rows] == ["q8", "q9"]  # the test split
    accuracy = sum(r["correct"] for r in rows) / 2
    assert f"[vector, alpha=2]: accuracy {accuracy:.3f}" in capsys.readouterr().out
    saved = tmp_path / "caa.safetensors"
    args = ["eval", "--method", "caa", "--layers", "1", "--alpha", "1", "--n-train", "4"]
    assert main([*args, "--save-vector", str(saved), "--quiet"]) == 0
    assert "[caa, alpha=1]" in capsys.readouterr().out
    caa = SteeringVector.load(saved, model)
    assert caa.metadata["method"] == "caa" and caa.hook_names == [HOOK]


def test_errors_exit_with_code_2_and_a_message(cli_env, capsys):
    assert main(["eval", "--method", "caa", "--layers", "1", "--quiet"]) == 2
    assert "roast-tl eval: error: steering needs --alpha" in capsys.readouterr().err
    assert main(["eval", "--vector", "missing.safetensors", "--alpha", "1", "--quiet"]) == 2
    assert "no steering vector file" in capsys.readouterr().err
    assert main(["eval", "--method", "cca", "--quiet"]) == 2
    assert "unknown method 'cca'" in capsys.readouterr().err


def test_sweep_prints_and_writes_the_rows_it_measured(cli_env, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "--methods", "none,roast", "--layers", "1", "--seeds", "42", "--n-train", "3"]
    args += ["--n-rollouts", "2", "--alphas", "1,2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["rows"]
    assert [(r["method"], r["seed"], r["n_test"]) for r in rows] == [
        ("none", 42, 2),
        ("roast", 42, 2),
    ]
    assert rows[1]["alpha"] in (1.0, 2.0) and set(rows[1]["dev_by_alpha"]) == {"1.0", "2.0"}
    with open(out / "rows.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(t["method"], float(t["test_accuracy"])) for t in table] == [
        (r["method"], r["test_accuracy"]) for r in rows
    ]
    for row in summary["summary"]:
        line = f"| parity | {row['method']} | {row['mean']:.3f} ± 0.000 | 1 |"
        assert line in printed and line in (out / "summary.md").read_text()
    assert len((out / "rollouts_parity_42.jsonl").read_text().splitlines()) == 3 * 2


def test_demo_uses_the_chosen_scaler(cli_env, tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--layers", "1", "--n-train", "4", "--n-rollouts", "2", "--alphas", "1"]
    args += ["--scaler", "l2_normalize", "--out", str(out), "--quiet", "--threads", "1"]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["scaler"] == "l2_normalize"
    assert results["vector_metadata"]["scaler"] == "l2_normalize"
    vector = SteeringVector.load(out / "vector.safetensors")
    assert vector[HOOK].norm().item() == pytest.approx(1.0, abs=1e-5)
    assert results["table"] in capsys.readouterr().out
