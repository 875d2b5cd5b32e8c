"""The command line: argument parsing, and `eval` / `sweep` end to end on the tiny model."""

import json

import pytest
import torch

import roast_tl.models
import roast_tl.tasks
from roast_tl.cli import build_parser, main
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector
from tests.tiny_model import first_word_parity

PROMPTS = ["the movie was good", "this food was awful", "what is 3 plus 4 ?", "a bad movie"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cli_env(tiny_model, monkeypatch):
    """Point the CLI's model and task loaders at the tiny model and a tiny in-test task."""
    items = [TaskItem(f"q{i}", PROMPTS[i % 4], "even", "good", "bad") for i in range(10)]
    task = Task(name="parity", splits={"train": items[:6], "dev": items[6:8], "test": items[8:]},
                extract_answer=first_word_parity, max_new_tokens=3, few_shot=items[:2])
    loaded = {}

    def fake_load_task(name, **kwargs):
        loaded["task"] = (name, kwargs)
        return task

    monkeypatch.setattr(roast_tl.models, "load_model", lambda name=None: tiny_model)
    monkeypatch.setattr(roast_tl.tasks, "load_task", fake_load_task)
    return tiny_model, task, loaded


def test_parse_eval_and_sweep_arguments():
    parser = build_parser()
    args = parser.parse_args(["eval", "--task", "gsm8k", "--method", "roast", "--alpha", "8",
                              "--layers", "8,10", "--positions", "prefill", "--threads", "1"])
    assert (args.command, args.task, args.method, args.alpha, args.layers, args.positions,
            args.threads) == ("eval", "gsm8k", "roast", 8.0, [8, 10], "prefill", 1)
    assert args.split == "test" and args.mode is None and args.vector is None
    args = parser.parse_args(["sweep", "--methods", "caa,roast", "--seeds", "42,22",
                              "--layer-candidates", "6;10;6,10", "--alphas", "4,16",
                              "--multiply-alphas", "0.5", "--read-position", "response_mean"])
    assert args.layer_candidates == [[6], [10], [6, 10]] and args.alphas == [4.0, 16.0]
    assert args.seeds == [42, 22] and args.multiply_alphas == [0.5]
    assert args.read_position == "response_mean"
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--vector", "v.safetensors", "--method", "caa"])
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--split", "validation"])


def test_eval_unsteered_with_records(cli_env, tmp_path, capsys):
    _, _, loaded = cli_env
    records = tmp_path / "records.jsonl"
    assert main(["eval", "--task", "parity", "--split", "dev", "--records", str(records), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "parity/dev [none, alpha=0]: accuracy" in out and "n=2)" in out
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    assert [r["item_id"] for r in rows] == ["q6", "q7"] and loaded["task"] == ("parity", {})


def test_eval_with_saved_vector_and_with_a_method(cli_env, tmp_path, capsys):
    model, _, _ = cli_env
    path = SteeringVector({"blocks.1.hook_resid_post": torch.ones(model.cfg.d_model)},
                          {"model_name": model.cfg.model_name}).save(tmp_path / "v.safetensors")
    assert main(["eval", "--vector", str(path), "--alpha", "2", "--quiet"]) == 0
    assert "[vector, alpha=2]" in capsys.readouterr().out
    saved = tmp_path / "caa.safetensors"
    assert main(["eval", "--method", "caa", "--layers", "1", "--alpha", "1", "--n-train", "4",
                 "--save-vector", str(saved), "--quiet"]) == 0
    assert "[caa, alpha=1]" in capsys.readouterr().out
    assert SteeringVector.load(saved).metadata["method"] == "caa"
    assert main(["eval", "--method", "caa", "--layers", "1", "--quiet"]) == 2  # steering needs --alpha
    assert "needs --alpha" in capsys.readouterr().err


def test_sweep_writes_tables_and_plot(cli_env, tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "--methods", "none,roast", "--layers", "1", "--seeds", "42",
                 "--n-train", "3", "--n-rollouts", "2", "--alphas", "1,2", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| parity | roast |" in printed and "| parity | none |" in printed
    for name in ["rows.csv", "summary.json", "summary.md", "dev_accuracy_vs_alpha.png"]:
        assert (out / name).exists(), name
