"""Sweep (alpha tuned on dev, resumable cells, tables, plot) and the CLI, on the tiny model."""

import json

import pytest

from roast_tl import cli
from roast_tl.sweep import markdown_table, run_sweep, summarize
from tests.test_estimate import parity_task


def test_sweep_runs_resumes_and_writes_tables(tiny_model, tmp_path, monkeypatch):
    task = parity_task()
    kwargs = dict(layers=[1], out_dir=tmp_path, seeds=[1, 2], n_train=6, n_rollouts=3,
                  alphas={"add": [0.5, 2.0], "multiply": [0.5]}, batch_size=8, progress=False)
    rows = run_sweep(tiny_model, task, ["none", "caa", "sadi", "roast"], **kwargs)
    assert len(rows) == 8
    for row in rows:
        if row["method"] == "none":
            assert row["alpha"] == 0.0 and row["dev_by_alpha"] == {}
        else:
            assert row["alpha"] in ({0.5, 2.0} if row["method"] != "sadi" else {0.5})
            best = max(row["dev_by_alpha"].values())
            assert row["dev_by_alpha"][str(row["alpha"])] == best  # chosen on dev
    for name in ("rows.csv", "summary.json", "summary.md", "dev_accuracy_vs_alpha.png", "cells.json"):
        assert (tmp_path / name).is_file()
    summary = summarize(rows)
    assert {s["method"] for s in summary} == {"none", "caa", "sadi", "roast"}
    assert "| parity | roast |" in markdown_table(summary)

    import roast_tl.sweep as sweep_module

    def boom(*a, **k):
        raise AssertionError("finished cells must not be recomputed")

    monkeypatch.setattr(sweep_module, "build_method", boom)
    again = run_sweep(tiny_model, task, ["none", "caa", "sadi", "roast"], **kwargs)
    assert again == rows


def test_cli_parses_and_reports_errors(capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["sweep", "--methods", "none,roast", "--layers", "3,5", "--seeds", "1"])
    assert args.layers == [3, 5] and args.seeds == [1]
    args = parser.parse_args(["eval", "--alpha", "4", "--positions", "prefill"])
    assert args.alpha == 4.0 and args.positions == "prefill"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--positions", "middle"])


def test_cli_eval_on_tiny_model(tiny_model, tmp_path, monkeypatch, capsys):
    import roast_tl.models
    import roast_tl.tasks

    monkeypatch.setattr(roast_tl.models, "load_model", lambda name=None: tiny_model)
    monkeypatch.setattr(roast_tl.tasks, "load_task", lambda name, **kw: parity_task())
    records = tmp_path / "records.jsonl"
    code = cli.main(["eval", "--task", "parity", "--split", "dev", "--records", str(records), "--quiet"])
    assert code == 0
    assert "parity/dev: accuracy" in capsys.readouterr().out
    assert len(records.read_text().splitlines()) == 2
    assert json.loads(records.read_text().splitlines()[0])["gold"] == "even"
    code = cli.main(["eval", "--task", "parity", "--vector", str(tmp_path / "missing.safetensors"), "--quiet"])
    assert code == 2
    assert "no steering vector file" in capsys.readouterr().err
