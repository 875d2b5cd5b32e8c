"""The command line: flags spelled as the library's keywords, and `eval`, `sweep` and `demo` end to
end on the tiny model, checked by what they print and write; every bad flag or unwritable output
refused in one line with status 2 before the model loads (review findings S4, S5, U4, C2, U1)."""

import argparse
import csv
import importlib
import json
import os
import re

import pytest
import torch
from safetensors.torch import save_file

import roast_tl.harness.demo
import roast_tl.models
import roast_tl.report
import roast_tl.tasks
from roast_tl.harness.cli import SCALERS, build_parser, check_writable, main
from roast_tl.vector import SteeringVector
from tests.tiny_model import HOOK, tiny_task

EVALUATE_MODULE = importlib.import_module(
    "roast_tl.evaluate"
)  # `roast_tl.evaluate` is the function


@pytest.fixture
def cli_env(tiny_model, monkeypatch):
    """Point the CLI's model and task loaders at the tiny model and the toy task."""
    task = tiny_task(n_train=6, n_dev=2, n_test=2)  # dev q6, q7; test q8, q9
    loaded = []

    def fake_load_task(name, **kwargs):
        loaded.append((name, kwargs))
        return task

    for module in (roast_tl.models, roast_tl.harness.demo):
        monkeypatch.setattr(module, "load_model", lambda name=None, backend=None: tiny_model)
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


# --- every flag is checked where it enters, before the model loads ---------------------------


@pytest.fixture
def no_model(monkeypatch):
    """`load_model` fails loudly: a test using this shows its error comes before the model loads.
    Tasks are the real ones (loading them takes milliseconds)."""

    def refuse(name=None, backend=None):
        raise AssertionError("the model was loaded before the arguments were checked")

    for module in (roast_tl.models, roast_tl.harness.demo):
        monkeypatch.setattr(module, "load_model", refuse)


def _one_line_error(capsys, command):
    """The single stderr line of a refused `roast-tl <command>`, with its prefix checked."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"roast-tl {command}: error: ")
    assert captured.out == ""
    return lines[0]


UNWRITABLE = "/proc/roast_tl_no_such_folder"
"""A folder nobody can create, root included (root ignores permission bits, not /proc)."""

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")

POSITIVE_COUNTS = [
    (command, flag)
    for command, flags in {
        "demo": ["--n-train", "--n-rollouts", "--batch-size", "--threads", "--max-dev"],
        "eval": ["--n-train", "--n-rollouts", "--batch-size", "--threads", "--max-items"],
        "sweep": ["--n-train", "--n-rollouts", "--max-dev", "--max-test", "--max-new-tokens"],
        "estimate": ["--n-train", "--n-rollouts", "--batch-size", "--threads"],
    }.items()
    for flag in flags
] + [("demo", "--max-test"), ("sweep", "--batch-size"), ("sweep", "--threads")]


@pytest.mark.parametrize(("command", "flag"), POSITIVE_COUNTS)
def test_counts_are_positive_integers(command, flag, no_model, capsys):
    """S4, U4, C2 (--threads -2, --batch-size -4): a count below 1 used to be a Python slice
    (`train[:-5]`), a silently ignored 0 (--threads) or a late traceback."""
    dest = flag.removeprefix("--").replace("-", "_")
    assert getattr(build_parser().parse_args([command, flag, "3"]), dest) == 3
    for bad in ("0", "-5", "2.5", "x"):
        assert main([command, flag, bad]) == 2
        assert _one_line_error(capsys, command) == (
            f"roast-tl {command}: error: argument {flag}: must be a positive integer, "
            f"got '{bad}' (see roast-tl {command} --help)"
        )


def test_few_shot_takes_zero_but_not_a_negative_count(no_model, capsys):
    """S4: `--few-shot -3` used to prepend `few_shot[:-3]`, one example."""
    assert build_parser().parse_args(["eval", "--few-shot", "0"]).few_shot == 0
    assert build_parser().parse_args(["eval", "--few-shot", "2"]).few_shot == 2
    for bad in ("-3", "-1"):
        assert main(["eval", "--few-shot", bad]) == 2
        assert f"argument --few-shot: must be an integer >= 0, got '{bad}'" in _one_line_error(
            capsys, "eval"
        )


def test_seeds_are_any_integers():
    assert build_parser().parse_args(["demo", "--seed", "-1"]).seed == -1
    assert build_parser().parse_args(["eval", "--seed", "0"]).seed == 0
    assert build_parser().parse_args(["sweep", "--seeds", "-1,2"]).seeds == [-1, 2]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--seed", "1.5"])


@pytest.mark.parametrize(
    ("command", "flag", "text", "repeated", "noun"),
    [
        ("sweep", "--seeds", "1,1,1", "1", "seed"),
        ("sweep", "--methods", "roast,none,roast", "roast", "method"),
        ("sweep", "--layers", "1,2,1", "1", "layer"),
        ("demo", "--layers", "1,1", "1", "layer"),
        ("sweep", "--alphas", "4,8,4.0", "4.0", "alpha"),
        ("demo", "--alphas", "-4,-4", "-4", "alpha"),
        ("sweep", "--multiply-alphas", "0.5,0.5", "0.5", "alpha"),
    ],
)
def test_lists_refuse_repeats(command, flag, text, repeated, noun, no_model, capsys):
    """S5: `--seeds 1,1,1` used to report one seed as 3 seeds with std 0."""
    assert main([command, flag, text]) == 2
    assert f"argument {flag}: '{text}' repeats {repeated}; give each {noun} once" in (
        _one_line_error(capsys, command)
    )


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        ("sweep", "--seeds"),
        ("sweep", "--methods"),
        ("sweep", "--layers"),
        ("eval", "--layers"),
        ("demo", "--alphas"),
        ("sweep", "--alphas"),
        ("sweep", "--multiply-alphas"),
        ("sweep", "--layer-candidates"),
    ],
)
def test_lists_refuse_empty(command, flag, no_model, capsys):
    """S5: `--seeds ""` used to write an empty table with exit status 0."""
    for empty in ("", " , ", ";" if flag == "--layer-candidates" else ","):
        assert main([command, flag, empty]) == 2
        assert f"argument {flag}: is empty; give at least one" in _one_line_error(capsys, command)


def test_lists_keep_their_order():
    args = build_parser().parse_args(
        ["sweep", "--seeds", "52,42,22", "--methods", "roast,none", "--layers", "10,8"]
        + ["--alphas", "8,-4", "--layer-candidates", "10;6,10;6"]
    )
    assert args.seeds == [52, 42, 22]
    assert args.methods == ["roast", "none"]
    assert args.layers == [10, 8]
    assert args.alphas == [8.0, -4.0]
    assert args.layer_candidates == [[10], [6, 10], [6]]


def test_layer_candidates_refuse_a_repeated_set_in_any_order(no_model, capsys):
    for text, message in (
        ("6;6", "'6;6' repeats the layer set 6; give each set once"),
        ("6,10;4;10,6", "'6,10;4;10,6' repeats the layer set 10,6; give each set once"),
        ("4;6,6", "'6,6' repeats 6; give each layer once"),
    ):
        assert main(["sweep", "--layer-candidates", text]) == 2
        assert f"argument --layer-candidates: {message}" in _one_line_error(capsys, "sweep")


def test_methods_are_checked_at_parse_time(no_model, capsys):
    assert main(["sweep", "--methods", "none,bogus"]) == 2
    assert "argument --methods: unknown method 'bogus'" in _one_line_error(capsys, "sweep")


@pytest.mark.parametrize("flag", ["--alphas", "--multiply-alphas", "--alpha"])
def test_alphas_are_finite(flag, no_model, capsys):
    """U4: `--alphas nan` used to fail only after the model loaded and estimated."""
    command = "eval" if flag == "--alpha" else "sweep"
    for bad in ("nan", "inf", "-inf", "1e400", "abc"):
        assert main([command, flag, bad]) == 2
        line = _one_line_error(capsys, command)
        assert f"argument {flag}: must be a" in line and f"number, got '{bad}'" in line


def test_negative_alphas_follow_their_flag_or_join_it():
    """U4: argparse read `--alphas -4,8` as an unknown flag `-4,8`."""
    parse = build_parser().parse_args
    assert parse(["sweep", "--alphas", "-4,8"]).alphas == [-4.0, 8.0]
    assert parse(["sweep", "--alphas=-4,8"]).alphas == [-4.0, 8.0]
    assert parse(["demo", "--alphas", "-.5,2"]).alphas == [-0.5, 2.0]
    assert parse(["sweep", "--multiply-alphas", "-0.5,1", "--quiet"]).multiply_alphas == [-0.5, 1]
    args = parse(["eval", "--alpha", "-4", "--seed", "-7", "--layers", "1"])
    assert (args.alpha, args.seed, args.layers) == (-4.0, -7, [1])
    with pytest.raises(SystemExit):  # a value that is a flag is still not taken as a number
        parse(["sweep", "--alphas", "--quiet"])


def test_a_negative_alpha_steers_end_to_end(cli_env, tmp_path, capsys):
    model, _, _ = cli_env
    path = SteeringVector(
        {HOOK: torch.ones(model.cfg.d_model)}, {"model_name": model.cfg.model_name}
    ).save(tmp_path / "v.safetensors")
    assert main(["eval", "--vector", str(path), "--alpha", "-2", "--quiet"]) == 0
    assert "[vector, alpha=-2]: accuracy" in capsys.readouterr().out


def test_every_option_has_a_help_string():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(commands.choices) == ["demo", "estimate", "eval", "sweep"]
    for name, sub in [("roast-tl", parser), *commands.choices.items()]:
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


# --- output paths are checked writable before any compute (C2) ---------------------------------


def test_check_writable_accepts_what_a_run_can_create_and_leaves_nothing(tmp_path):
    check_writable("--out", tmp_path / "new" / "deeper", folder=True)
    check_writable("--out", tmp_path, folder=True)
    check_writable("--records", tmp_path / "missing" / "records.jsonl")
    (tmp_path / "old.jsonl").write_text("kept\n")
    check_writable("--records", tmp_path / "old.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jsonl"]  # no probe, no folders
    assert (tmp_path / "old.jsonl").read_text() == "kept\n"


def test_check_writable_refuses_with_the_flag_and_the_path(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (("--out", a_file), {"folder": True}, f"--out {a_file} is an existing file, not a folder"),
        (("--out", a_file / "sub"), {"folder": True}, f"{a_file} is a file, not a folder"),
        (("--records", tmp_path), {}, f"--records {tmp_path} is a folder; give a file path"),
        (("--save-vector", a_file / "v.safetensors"), {}, f"{a_file} is a file, not a folder"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            check_writable(*args, **kwargs)
    assert a_file.read_text() == ""


@needs_proc
def test_check_writable_tries_a_real_file_since_root_ignores_modes():
    with pytest.raises(ValueError, match=r"--out /proc/roast_tl_no_such_folder/x: cannot write"):
        check_writable("--out", f"{UNWRITABLE}/x", folder=True)


@pytest.mark.parametrize("command", ["demo", "sweep"])
def test_out_that_is_a_file_is_refused_before_the_model_loads(command, no_model, tmp_path, capsys):
    """C2: `demo --out some_existing_file` used to end in a FileExistsError traceback."""
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine\n")
    assert main([command, "--out", str(a_file), "--quiet"]) == 2
    assert f"--out {a_file} is an existing file, not a folder" in _one_line_error(capsys, command)
    assert a_file.read_text() == "mine\n"


@needs_proc
@pytest.mark.parametrize("command", ["demo", "sweep"])
def test_unwritable_out_is_refused_before_the_model_loads(command, no_model, capsys):
    """C2: an unwritable `--out` used to be a PermissionError traceback at mkdir."""
    assert main([command, "--out", f"{UNWRITABLE}/run", "--quiet"]) == 2
    assert f"--out {UNWRITABLE}/run: cannot write in /proc" in _one_line_error(capsys, command)


@needs_proc
@pytest.mark.parametrize(
    ("flag", "extra"),
    [
        ("--records", []),
        ("--rollouts-path", ["--method", "roast", "--alpha", "1"]),
        ("--save-vector", ["--method", "caa", "--alpha", "1"]),
    ],
)
def test_unwritable_eval_outputs_are_refused_before_the_model_loads(
    flag, extra, no_model, tmp_path, capsys
):
    """C2: an unwritable `--records` used to fail after the whole evaluation, losing its result;
    `--save-vector` named the temp file, not the target."""
    target = f"{UNWRITABLE}/out.file"
    assert main(["eval", *extra, flag, target, "--quiet"]) == 2
    assert f"{flag} {target}: cannot write in /proc" in _one_line_error(capsys, "eval")
    assert main(["eval", *extra, flag, str(tmp_path), "--quiet"]) == 2
    assert f"{flag} {tmp_path} is a folder; give a file path" in _one_line_error(capsys, "eval")


@pytest.mark.parametrize("command", ["demo", "estimate", "eval", "sweep"])
def test_multiple_choice_without_a_path_is_one_line(command, no_model, tmp_path, capsys):
    """C2: `eval --task multiple_choice` used to be a TypeError traceback, and `demo` only failed
    after loading the model."""
    out = ["--out", str(tmp_path / "run")] if command in ("demo", "sweep") else []
    assert main([command, "--task", "multiple_choice", *out, "--quiet"]) == 2
    assert "--task multiple_choice has no shipped data; give --task-path FILE" in (
        _one_line_error(capsys, command)
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["demo", "estimate", "eval", "sweep"])
def test_a_missing_task_path_is_one_line(command, no_model, tmp_path, capsys):
    out = ["--out", str(tmp_path / "run")] if command in ("demo", "sweep") else []
    missing = tmp_path / "nope.jsonl"
    assert main([command, "--task", "sentiment", "--task-path", str(missing), *out]) == 2
    assert str(missing) in _one_line_error(capsys, command)


@pytest.mark.parametrize("metadata", ["[1]", "null", '"text"', "{oops"])
def test_a_vector_with_bad_metadata_is_one_line_naming_the_file(
    metadata, no_model, tmp_path, capsys
):
    """C2: metadata `[1]` or `null` used to be `AttributeError: 'list' object has no attribute
    'get'`, after the model loaded."""
    path = tmp_path / "v.safetensors"
    save_file({HOOK: torch.ones(4)}, str(path), metadata={"roast_tl": metadata})
    assert main(["eval", "--vector", str(path), "--alpha", "1", "--quiet"]) == 2
    assert str(path) in _one_line_error(capsys, "eval")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PermissionError(13, "Permission denied", "/ro/rec.jsonl"), "Permission denied: /ro/rec"),
        (IsADirectoryError(21, "Is a directory", "/tmp/d"), "Is a directory: /tmp/d"),
        (FileExistsError(17, "File exists", "/tmp/f"), "File exists: /tmp/f"),
        (OSError(28, "No space left on device", "/tmp/g"), "No space left on device: /tmp/g"),
        (TypeError("items must be TaskItems"), "items must be TaskItems"),
        (ImportError("matplotlib is needed for the plots"), "matplotlib is needed"),
    ],
)
def test_user_errors_raised_while_running_are_one_line_with_status_2(
    error, message, cli_env, monkeypatch, capsys
):
    """C2: `main` used to catch only ValueError, ImportError and FileNotFoundError."""

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(EVALUATE_MODULE, "evaluate", fail)
    assert main(["eval", "--quiet"]) == 2
    assert message in _one_line_error(capsys, "eval")


def test_ctrl_c_is_not_swallowed(cli_env, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(EVALUATE_MODULE, "evaluate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        main(["eval", "--quiet"])


def test_eval_refuses_flags_that_would_do_nothing(no_model, tmp_path, capsys):
    """`--alpha` without a vector printed `[none, alpha=8]`: a steered-looking unsteered run."""
    for line, message in [
        (["--alpha", "8"], "--alpha 8 steers nothing: give --vector or a steering --method"),
        (["--method", "few_shot", "--alpha", "8"], "--alpha 8 steers nothing"),
        (["--method", "sadi"], "steering needs --alpha"),
        (["--save-vector", str(tmp_path / "v.safetensors")], "--save-vector needs a steering"),
        (["--allow-other-model"], "--allow-other-model applies to a --vector file"),
    ]:
        assert main(["eval", *line, "--quiet"]) == 2
        assert message in _one_line_error(capsys, "eval")


def test_a_good_command_does_reach_the_model(no_model):
    """The control for the tests above: with valid flags `load_model` is called (and refuses)."""
    with pytest.raises(AssertionError, match="the model was loaded"):
        main(["eval", "--quiet"])


@pytest.mark.parametrize("command", ["demo", "eval", "sweep", "estimate"])
def test_backend_reaches_load_model(monkeypatch, tmp_path, command):
    seen = []

    def record(name=None, backend=None):
        seen.append(backend)
        raise AssertionError("the model was loaded")

    for module in (roast_tl.models, roast_tl.harness.demo, EVALUATE_MODULE):
        monkeypatch.setattr(module, "load_model", record, raising=False)
    out = {"eval": [], "estimate": ["--save-vector", str(tmp_path / "v.safetensors")]}.get(
        command, ["--out", str(tmp_path / "out")]
    )
    with pytest.raises(AssertionError, match="the model was loaded"):
        main([command, "--backend", "hooked", "--quiet", *out])
    assert seen == ["hooked"]
    assert build_parser().parse_args([command]).backend is None


# --- U1: --allow-other-model -------------------------------------------------------------------


def test_allow_other_model_lets_eval_steer_with_a_vector_made_for_another_model(
    cli_env, tmp_path, capsys
):
    """U1: the refusal told users to pass an option the CLI did not have."""
    model, _, _ = cli_env
    path = SteeringVector({HOOK: torch.ones(model.cfg.d_model)}, {"model_name": "/old/path"}).save(
        tmp_path / "v.safetensors"
    )
    line = ["eval", "--vector", str(path), "--alpha", "1", "--quiet"]
    assert main(line) == 2
    assert "--allow-other-model" in _one_line_error(capsys, "eval")
    records = tmp_path / "records.jsonl"
    assert main([*line, "--allow-other-model", "--records", str(records)]) == 0
    rows = _records(records)
    accuracy = sum(r["correct"] for r in rows) / len(rows)
    assert f"[vector, alpha=1]: accuracy {accuracy:.3f}" in capsys.readouterr().out


# --- your own task: --task jsonl, --grader, --chat, and `roast-tl estimate` -------------------

COMMANDS = ["demo", "estimate", "eval", "sweep"]


def _yes_no_rows(path, n=10):
    """A JSONL file of n prompts in the tiny model's vocabulary with answers yes / no."""
    words = ("good", "bad", "great", "awful", "loved")
    rows = [
        {"question": f"the movie was {words[i % 5]} {i} ?", "label": "yes" if i % 2 else "no"}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def tiny_model_only(tiny_model, monkeypatch):
    """`load_model` gives the tiny model; tasks are loaded for real (from the test's files)."""
    for module in (roast_tl.models, roast_tl.harness.demo):
        monkeypatch.setattr(module, "load_model", lambda name=None, backend=None: tiny_model)
    return tiny_model


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_takes_a_jsonl_task_a_grader_and_chat(command):
    line = f"{command} --task jsonl --task-path f.jsonl --grader number --prompt-field q"
    args = build_parser().parse_args([*line.split(), "--answer-field", "a", "--no-chat"])
    assert (args.task, args.task_path, args.grader) == ("jsonl", "f.jsonl", "number")
    assert (args.prompt_field, args.answer_field, args.chat) == ("q", "a", False)
    assert build_parser().parse_args([command, "--chat"]).chat is True
    assert build_parser().parse_args([command]).chat is None  # the template when there is one


# A random tiny model's yield is not the point of these tests (test_estimate checks the warnings).
@pytest.mark.filterwarnings("ignore::roast_tl._warnings.LowYieldWarning")
def test_estimate_saves_the_vector_and_prints_its_yield_report(tiny_model_only, tmp_path, capsys):
    data = _yes_no_rows(tmp_path / "yes_no.jsonl")
    saved = tmp_path / "out" / "v.safetensors"
    args = ["estimate", "--task", "jsonl", "--task-path", str(data), "--grader", "label"]
    args += ["--prompt-field", "question", "--answer-field", "label", "--layers", "1"]
    args += ["--n-rollouts", "2", "--rollouts-path", str(tmp_path / "r.jsonl")]
    assert main([*args, "--save-vector", str(saved), "--quiet"]) == 0
    printed = capsys.readouterr().out
    vector = SteeringVector.load(saved, tiny_model_only)
    meta = vector.metadata
    assert vector.hook_names == [HOOK]
    assert (meta["task"], meta["n_items"], meta["n_rollouts"], meta["chat"]) == (
        "yes_no",
        6,  # 10 rows: 2 dev, 2 test, 6 train
        2,
        False,  # the tiny tokenizer has no chat template
    )
    rows = _records(tmp_path / "r.jsonl")
    assert len(rows) == 6 * 2 and all(r["fingerprint"]["chat"] is False for r in rows)
    task = roast_tl.tasks.load_task(
        "jsonl", path=data, prompt_field="question", answer_field="label", grader="label"
    )
    gold = {item.id: item.gold for item in task.items("train")}
    for r in rows:  # the label grader: the one label named as a word, compared with the gold
        named = [w for w in ("no", "yes") if w in r["completion"].replace("?", " ").split()]
        answer = named[0] if len(named) == 1 else None
        assert (r["answer"], r["correct"]) == (answer, answer == gold[r["item_id"]])
    report = roast_tl.report.YieldReport.from_dict(meta["yield_report"])
    assert str(report) in printed
    assert f"saved vector: {saved} (hooks {HOOK})" in printed


@pytest.mark.filterwarnings("ignore::roast_tl._warnings.LowYieldWarning")
def test_estimate_prints_the_report_once_with_progress(tiny_model_only, tmp_path, capsys):
    data = _yes_no_rows(tmp_path / "d.jsonl")
    saved = tmp_path / "v.safetensors"
    args = ["estimate", "--task", "jsonl", "--task-path", str(data), "--grader", "contains"]
    args += ["--prompt-field", "question", "--answer-field", "label"]
    assert main([*args, "--layers", "1", "--n-rollouts", "2", "--save-vector", str(saved)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("yield report: 6 prompts x 2 rollouts") == 1


@pytest.mark.filterwarnings("ignore::roast_tl._warnings.LowYieldWarning")
def test_eval_and_demo_run_on_a_jsonl_task(tiny_model_only, tmp_path, capsys):
    """The one-command route: `roast-tl demo --task jsonl ...` estimates, picks alpha on dev,
    compares on test and saves the vector."""
    data = _yes_no_rows(tmp_path / "yes_no.jsonl")
    task_flags = ["--task", "jsonl", "--task-path", str(data), "--grader", "label"]
    task_flags += ["--prompt-field", "question", "--answer-field", "label"]
    records = tmp_path / "records.jsonl"
    assert main(["eval", *task_flags, "--records", str(records), "--quiet"]) == 0
    rows = _records(records)
    assert len(rows) == 2 and {r["gold"] for r in rows} <= {"yes", "no"}
    assert "yes_no/test [none, alpha=0]: accuracy" in capsys.readouterr().out
    out = tmp_path / "demo"
    demo_flags = ["--layers", "1", "--n-train", "4", "--n-rollouts", "2", "--alphas", "1"]
    assert main(["demo", *task_flags, *demo_flags, "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["task_options"] == {
        "grader": "label",
        "prompt_field": "question",
        "answer_field": "label",
    }
    assert results["table"] in capsys.readouterr().out
    assert "| ROAST steered (alpha=" in results["table"]
    assert SteeringVector.load(out / "vector.safetensors").metadata["task"] == "yes_no"


@pytest.mark.parametrize("command", COMMANDS)
def test_jsonl_task_mistakes_are_one_line_before_the_model_loads(
    command, no_model, tmp_path, capsys
):
    out = ["--out", str(tmp_path / "run")] if command in ("demo", "sweep") else []
    data = _yes_no_rows(tmp_path / "d.jsonl")
    cases = [
        (["--task", "jsonl"], "--task jsonl has no shipped data; give --task-path FILE"),
        (["--task", "sentiment", "--grader", "number"], "--grader applies to --task jsonl"),
        (
            ["--task", "jsonl", "--task-path", str(data), "--grader", "bogus"],
            "unknown grader 'bogus'; choose one of ['choice', 'contains', 'exact', 'label', ",
        ),
        (["--task", "jsonl", "--task-path", str(data)], f"{data}:1: missing key 'prompt'"),
    ]
    for flags, message in cases:
        assert main([command, *flags, *out, "--quiet"]) == 2
        assert message in _one_line_error(capsys, command)
    assert not (tmp_path / "run").exists()


def test_estimate_checks_its_output_before_the_model_loads(no_model, tmp_path, capsys):
    assert main(["estimate", "--save-vector", str(tmp_path), "--quiet"]) == 2
    assert f"--save-vector {tmp_path} is a folder" in _one_line_error(capsys, "estimate")


def test_chat_on_a_tokenizer_without_a_template_is_one_line(tiny_model_only, capsys):
    assert main(["eval", "--task", "sentiment", "--max-items", "1", "--chat", "--quiet"]) == 2
    assert "chat=True, but the tokenizer has no chat template" in _one_line_error(capsys, "eval")
