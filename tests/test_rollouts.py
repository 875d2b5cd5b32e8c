"""Rollouts: graded samples as plain data, JSONL save/load with checked rows, per-rollout seeds,
and an append-only, fingerprinted resume that never loses, deletes or silently reuses work."""

import json
import os
import random
import signal
import threading
import time
import warnings
from dataclasses import asdict, replace

import pytest
import tqdm.auto

import roast_tl
import roast_tl.rollouts as rollouts_module
from roast_tl._fast import HOOKED_TRANSFORMER_ATTENTION, unhooked_attention
from roast_tl._warnings import RoastWarning
from roast_tl.generation import complete
from roast_tl.rollouts import (
    Rollout,
    check_token_ids,
    load_rollouts,
    rollout_seed,
    sample_rollouts,
    save_rollouts,
)
from roast_tl.tasks.base import Task, TaskItem
from tests.tiny_model import (
    HOOK,
    encode,
    first_word_parity,
    make_rollout,
    make_tiny_model,
    random_vector,
    tiny_task,
)

SAMPLING = {"n_rollouts": 3, "temperature": 1.0, "top_p": 0.9, "seed": 1, "progress": False}


def _row(**fields):
    row = {"item_id": "a", "prompt_text": "p", "completion": "c", "correct": True}
    return {**row, **fields}


def _counting_complete(monkeypatch):
    """Patch the sampler so each call's messages are recorded; returns the list of calls."""
    calls: list[list[str]] = []

    def counting(model, messages, **kwargs):
        calls.append(list(messages))
        return complete(model, messages, **kwargs)

    monkeypatch.setattr(rollouts_module, "complete", counting)
    return calls


def _load_mixed(path):
    """load_rollouts on a file that holds rows of two runs: it says so."""
    with pytest.warns(RoastWarning, match="holds rows of several runs"):
        return load_rollouts(path)


def _no_warning():
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("error")
    return context


# --- rows: types checked where they enter --------------------------------------------------


def test_from_dict_defaults_optional_fields_and_ignores_unknown_keys():
    assert Rollout.from_dict(_row(extra=1)) == Rollout("a", 0, "p", [], [], "c", None, True, -1)
    full = asdict(make_rollout("b", False, index=2, source="vllm", fingerprint={"seed": 1}))
    assert Rollout.from_dict(full) == make_rollout(
        "b", False, index=2, source="vllm", fingerprint={"seed": 1}
    )
    with pytest.raises(ValueError, match=r"rollout row lacks \['completion', 'correct'\]"):
        Rollout.from_dict({"item_id": "a", "prompt_text": "p"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"correct": "false"}, r"correct must be true or false \(a JSON boolean\), got str"),
        ({"correct": 0}, "correct must be true or false"),
        ({"item_id": 0}, "item_id must be a string, got int 0"),
        ({"completion": None}, "completion must be a string"),
        ({"answer": 1}, "answer must be a string or null"),
        ({"sample_index": "1"}, "sample_index must be an integer"),
        ({"sample_index": True}, "sample_index must be an integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"completion_token_ids": "5 6"}, "completion_token_ids must be a list of integers"),
        ({"prompt_token_ids": [5, 6.0]}, "prompt_token_ids must be a list of integers"),
        ({"prompt_token_ids": [5, True]}, "prompt_token_ids must be a list of integers"),
        ({"fingerprint": [1]}, "fingerprint must be an object or null"),
    ],
)
def test_from_dict_rejects_fields_of_the_wrong_type(fields, message):
    with pytest.raises(TypeError, match=message):
        Rollout.from_dict(_row(**fields))


def test_token_ids_outside_the_vocabulary_are_refused_when_the_vocabulary_is_known(tmp_path):
    assert Rollout.from_dict(_row(completion_token_ids=[0, 62]), vocab_size=63)
    with pytest.raises(ValueError, match=r"holds 63, outside the vocabulary \[0, 63\)"):
        Rollout.from_dict(_row(completion_token_ids=[5, 63]), vocab_size=63)
    with pytest.raises(ValueError, match=r"'q0' #0: prompt_token_ids holds -1"):
        check_token_ids([make_rollout("q0", True, prompt_token_ids=[-1, 5])], 63)
    with pytest.raises(ValueError, match="sample_index must be >= 0"):
        Rollout.from_dict(_row(sample_index=-2))
    path = tmp_path / "r.jsonl"
    save_rollouts([make_rollout("q0", True), make_rollout("q1", True, prompt_token_ids=[99])], path)
    assert len(load_rollouts(path)) == 2  # no vocabulary given: ids are only type-checked
    with pytest.raises(ValueError, match=r"r\.jsonl:2: rollout 'q1' #0: prompt_token_ids holds 99"):
        load_rollouts(path, vocab_size=63)


def test_load_names_the_file_and_line_of_a_row_with_a_wrong_type(tmp_path):
    path = tmp_path / "r.jsonl"
    save_rollouts([make_rollout("q0", True)], path)
    with open(path, "a") as handle:
        handle.write(json.dumps({**asdict(make_rollout("q1", True)), "correct": "false"}) + "\n")
    with pytest.raises(ValueError, match=r"r\.jsonl:2: bad rollout row \(correct must be true"):
        load_rollouts(path)


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


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [make_rollout("q0", True), make_rollout("q1", False)]
    text = "".join(json.dumps(asdict(r)) + "\r\n" for r in rows)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_rollouts(path) == rows


def test_a_non_utf8_file_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    save_rollouts([make_rollout("q0", True)], path)
    path.write_bytes(path.read_bytes() + b'{"item_id": "\xff"}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl:2: not UTF-8 text \(byte 0xff"):
        load_rollouts(path)


# --- seeds --------------------------------------------------------------------------------


def test_rollout_seeds_depend_on_seed_item_id_and_index_only():
    seeds = {rollout_seed(s, f"q{i}", k) for s in range(5) for i in range(40) for k in range(8)}
    assert len(seeds) == 5 * 40 * 8  # distinct for every (seed, id, k) here
    assert all(0 <= s < 2**63 for s in seeds)
    assert rollout_seed(3, "q7", 2) == rollout_seed(3, "q7", 2)
    # A stable hash, not Python's per-process salted hash(): this value is the same everywhere.
    assert rollout_seed(0, "q1", 3) == 6136312087246050460


# --- sampling -----------------------------------------------------------------------------


def test_sample_rollouts_grades_every_sample_and_records_its_provenance(tiny_model):
    task = tiny_task()
    items = task.items("train")
    rollouts = sample_rollouts(tiny_model, task, items, **SAMPLING)
    assert [(r.item_id, r.sample_index) for r in rollouts] == [
        (item.id, k) for item in items for k in range(3)
    ]
    for r, item in zip(rollouts, [item for item in items for _ in range(3)], strict=True):
        assert r.prompt_text == item.prompt
        assert r.prompt_token_ids == encode(tiny_model, item.prompt)
        assert r.completion == tiny_model.tokenizer.decode(
            r.completion_token_ids, skip_special_tokens=True
        )
        assert (r.answer, r.correct) == task.extract_and_grade(r.completion, item)
        assert r.seed == rollout_seed(1, item.id, r.sample_index) and r.source == "roast_tl"
        fingerprint = r.fingerprint
        assert fingerprint is not None
        assert {k: fingerprint[k] for k in ("temperature", "top_p", "max_new_tokens", "seed")} == {
            "temperature": 1.0,
            "top_p": 0.9,
            "max_new_tokens": 3,
            "seed": 1,
        }
    assert len({r.fingerprint["prompt"] for r in rollouts}) == len({i.prompt for i in items})
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
    assert run(3, 4) == first  # batches that split an item's samples: the same draws
    other = run(4, 3)
    assert [r.completion_token_ids for r in other] != [r.completion_token_ids for r in first]


def test_a_subset_or_reordering_of_the_items_gives_each_item_the_same_rollouts(tiny_model):
    task = tiny_task()
    items = task.items("train")
    full = sample_rollouts(tiny_model, task, items, **SAMPLING)
    by_item = {item.id: full[3 * i : 3 * i + 3] for i, item in enumerate(items)}
    picked = [items[4], items[1]]
    assert sample_rollouts(tiny_model, task, picked, **SAMPLING) == by_item["q4"] + by_item["q1"]


def test_bad_arguments_are_clear_errors(tiny_model):
    task = tiny_task()
    with pytest.raises(ValueError, match="empty item list"):
        sample_rollouts(tiny_model, task, [], progress=False)
    with pytest.raises(ValueError, match="n_rollouts must be at least 1"):
        sample_rollouts(tiny_model, task, task.items("train"), n_rollouts=0, progress=False)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        sample_rollouts(tiny_model, task, task.items("train"), batch_size=0, progress=False)


def test_duplicate_item_ids_are_refused_before_any_sampling(tiny_model, monkeypatch):
    calls = _counting_complete(monkeypatch)
    items = [
        TaskItem("dup", "the movie was good", "even", "good", "bad"),
        TaskItem("dup", "this food was awful", "odd", "bad", "good"),
    ]
    task = Task("t", {"train": items[:1]}, first_word_parity, max_new_tokens=3)
    with pytest.raises(ValueError, match=r"item ids repeat: 'dup' \(2 times\)"):
        sample_rollouts(tiny_model, task, items, **SAMPLING)
    assert calls == []


# --- resume: append-only, fingerprinted ------------------------------------------------------


def test_resume_drops_the_torn_line_and_the_partial_prompt(tiny_model, tmp_path):
    task = tiny_task()
    items = task.items("train")
    path = tmp_path / "rollouts.jsonl"
    full = sample_rollouts(tiny_model, task, items, **SAMPLING, batch_size=6, rollouts_path=path)
    assert load_rollouts(path) == full
    reference = path.read_bytes()
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])  # 7 rows, then a torn one
    resumed = sample_rollouts(tiny_model, task, items, **SAMPLING, batch_size=6, rollouts_path=path)
    assert resumed == full
    assert path.read_bytes() == reference  # the torn fragment cut, the rest appended in order


def test_an_interrupted_run_resumes_without_resampling_finished_rollouts(
    tiny_model, tmp_path, monkeypatch
):
    task = tiny_task()
    items = task.items("train")
    settings = {**SAMPLING, "n_rollouts": 4, "batch_size": 8}  # 2 prompts x 4 per batch
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
    assert calls == [[i.prompt for i in items[2:4] for _ in range(4)]] + [
        [i.prompt for i in items[4:6] for _ in range(4)]
    ]
    assert resumed == reference
    assert load_rollouts(path) == reference


def test_a_rerun_of_a_finished_file_neither_samples_nor_touches_it(
    tiny_model, tmp_path, monkeypatch
):
    """D1: the file is never rewritten, so no interrupt of a rerun can truncate it."""
    task = tiny_task()
    items = task.items("train")
    path = tmp_path / "rollouts.jsonl"
    first = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
    before = (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)
    calls = _counting_complete(monkeypatch)
    context = _no_warning()
    try:
        assert sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path) == first
    finally:
        context.__exit__(None, None, None)
    assert calls == []
    assert (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns) == before


@pytest.mark.parametrize(
    "rerun",
    ["fewer_items", "fewer_rollouts", "another_task_in_the_file", "other_settings"],
)
def test_nothing_saved_is_ever_deleted(tiny_model, tmp_path, monkeypatch, rerun):
    """D2: whatever the rerun needs, the old file is a prefix of the new one."""
    task = tiny_task()
    items = task.items("train")
    path = tmp_path / "rollouts.jsonl"
    first = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
    other = tiny_task(name="other")
    if rerun == "another_task_in_the_file":
        sample_rollouts(tiny_model, other, other.items("dev"), **SAMPLING, rollouts_path=path)
    before = path.read_bytes()
    kwargs = {**SAMPLING, "rollouts_path": path}
    if rerun == "fewer_items":
        assert sample_rollouts(tiny_model, task, items[:1], **kwargs) == first[:3]
    elif rerun == "fewer_rollouts":
        out = sample_rollouts(tiny_model, task, items, **{**kwargs, "n_rollouts": 2})
        assert out == [r for r in first if r.sample_index < 2]
    elif rerun == "another_task_in_the_file":
        assert sample_rollouts(tiny_model, task, items, **kwargs) == first
    else:
        with pytest.warns(RoastWarning, match="seed 1 \\(this run: seed 2\\)"):
            sample_rollouts(tiny_model, task, items, **{**kwargs, "seed": 2})
    after = path.read_bytes()
    assert after.startswith(before)
    loaded = _load_mixed(path) if rerun == "other_settings" else load_rollouts(path)
    assert loaded[: len(first)] == first


def test_growing_n_rollouts_extends_and_keeps_the_first_ones(tiny_model, tmp_path, monkeypatch):
    task = tiny_task()
    items = task.items("train")[:3]
    path = tmp_path / "rollouts.jsonl"
    four = sample_rollouts(
        tiny_model, task, items, **{**SAMPLING, "n_rollouts": 4}, rollouts_path=path
    )
    calls = _counting_complete(monkeypatch)
    eight = sample_rollouts(
        tiny_model, task, items, **{**SAMPLING, "n_rollouts": 8}, rollouts_path=path
    )
    assert sum(len(c) for c in calls) == 3 * 4  # only k = 4..7 were sampled
    assert [r for r in eight if r.sample_index < 4] == four
    fresh = sample_rollouts(tiny_model, task, items, **{**SAMPLING, "n_rollouts": 8})
    assert eight == fresh  # the same as sampling 8 from scratch


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"seed": 9}, r"seed 1 \(this run: seed 9\)"),
        ({"temperature": 0.5}, r"temperature 1\.0 \(this run: temperature 0\.5\)"),
        ({"top_p": 0.5}, r"top_p 0\.9 \(this run: top_p 0\.5\)"),
        ({"max_new_tokens": 2}, r"max_new_tokens 3 \(this run: max_new_tokens 2\)"),
        ({"model": "seed 5"}, "another model"),
        ({"prompt": "a bad movie"}, "other prompt text"),
    ],
)
def test_rows_made_under_other_settings_are_kept_but_never_reused(
    tiny_model, tmp_path, change, words
):
    """S1: a resume reuses a row only when model, tokenizer, sampling settings, seed and prompt
    all match; otherwise it warns once, samples anew as a fresh run would, and appends."""
    task = tiny_task()
    items = task.items("train")[:2]
    path = tmp_path / "rollouts.jsonl"
    old = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
    before = path.read_bytes()
    model, settings = tiny_model, dict(SAMPLING)
    if "model" in change:
        model = make_tiny_model(seed=5)
    elif "prompt" in change:
        items = [replace(item, prompt=change["prompt"]) for item in items]
    else:
        settings.update(change)
    fresh = sample_rollouts(model, task, items, **settings)
    with pytest.warns(RoastWarning, match=f"6 saved rows for these items were made with {words}"):
        resumed = sample_rollouts(model, task, items, **settings, rollouts_path=path)
    assert resumed == fresh and resumed != old
    assert path.read_bytes().startswith(before)
    assert _load_mixed(path) == old + fresh
    context = _no_warning()  # the new rows now satisfy the run: no second warning
    try:
        assert sample_rollouts(model, task, items, **settings, rollouts_path=path) == fresh
    finally:
        context.__exit__(None, None, None)
    assert _load_mixed(path) == old + fresh


def test_old_rows_without_provenance_are_kept_but_not_reused(tiny_model, tmp_path):
    task = tiny_task()
    items = task.items("train")[:2]
    path = tmp_path / "rollouts.jsonl"
    fresh = sample_rollouts(tiny_model, task, items, **SAMPLING)
    old = [replace(r, fingerprint=None) for r in fresh]  # as roast_tl 0.1 wrote them
    save_rollouts(old, path)
    with pytest.warns(RoastWarning, match=r"no provenance \(roast_tl 0\.1 or another engine\)"):
        assert sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path) == fresh
    assert _load_mixed(path) == old + fresh


def test_reused_rows_are_graded_again_with_the_current_task(tiny_model, tmp_path, monkeypatch):
    task = tiny_task()
    items = task.items("train")[:2]
    path = tmp_path / "rollouts.jsonl"
    first = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
    calls = _counting_complete(monkeypatch)
    regold = [replace(item, gold="odd") for item in items]  # the gold answer was corrected
    again = sample_rollouts(tiny_model, task, regold, **SAMPLING, rollouts_path=path)
    assert calls == []  # same prompts, same settings: reused, not resampled
    assert [r.completion for r in again] == [r.completion for r in first]
    assert [r.correct for r in again] == [r.answer == "odd" for r in first]
    assert load_rollouts(path) == first  # regrading happens in memory only


def _child(model, task, items, kwargs, path):
    try:
        sample_rollouts(model, task, items, **kwargs, rollouts_path=path)
    except BaseException:
        os._exit(1)
    os._exit(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_at_random_moments_never_loses_a_row(tiny_model, tmp_path, monkeypatch):
    """Fault injection: 24 SIGKILLs at random moments (while sampling, and while rereading the
    finished file); the final file equals the uninterrupted run's, byte for byte."""
    # tqdm's default write lock is a multiprocessing semaphore that forked children share: a
    # child killed while creating its (disabled) bar would leave it held and hang this process.
    # A thread lock is copied at fork instead; the kills then test only roast_tl's own writes.
    monkeypatch.setattr(tqdm.auto.tqdm, "_lock", threading.RLock(), raising=False)
    task = tiny_task(n_train=40, n_dev=0, n_test=0)
    items = task.items("train")
    kwargs = {**SAMPLING, "n_rollouts": 2, "seed": 7, "batch_size": 4}
    reference_path, path = tmp_path / "reference.jsonl", tmp_path / "killed.jsonl"
    start = time.perf_counter()
    reference = sample_rollouts(tiny_model, task, items, **kwargs, rollouts_path=reference_path)
    full_s = time.perf_counter() - start
    start = time.perf_counter()
    sample_rollouts(tiny_model, task, items, **kwargs, rollouts_path=reference_path)
    rerun_s = time.perf_counter() - start
    rng = random.Random(0)
    kills, rows, kills_after_done = 0, [], 0
    deadline = time.perf_counter() + 40
    while (kills < 24 or kills_after_done < 4) and time.perf_counter() < deadline:
        complete_before = path.exists() and path.stat().st_size == reference_path.stat().st_size
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _child(tiny_model, task, items, kwargs, path)
        time.sleep(rng.uniform(0.0, 1.2 * rerun_s if complete_before else full_s / 4))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            kills += 1
            kills_after_done += complete_before
        else:
            assert os.WEXITSTATUS(status) == 0, "the child failed"
        rows.append(path.read_bytes().count(b"\n") if path.exists() else 0)
    assert kills >= 20
    assert kills_after_done >= 3  # some kills hit a rerun of the finished file (D1's window)
    assert len(set(rows)) >= 4  # and several hit the sampling: the file grew kill by kill
    assert rows == sorted(rows)  # no kill ever lost a complete row
    assert sample_rollouts(tiny_model, task, items, **kwargs, rollouts_path=path) == reference
    assert path.read_bytes() == reference_path.read_bytes()


def test_loading_a_file_with_rows_of_several_runs_says_so(tiny_model, tmp_path):
    task = tiny_task()
    items = task.items("train")[:2]
    path = tmp_path / "rollouts.jsonl"
    first = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
    context = _no_warning()
    try:
        assert load_rollouts(path) == first  # one run: no warning
    finally:
        context.__exit__(None, None, None)
    with pytest.warns(RoastWarning):
        second = sample_rollouts(
            tiny_model, task, items, **{**SAMPLING, "seed": 5}, rollouts_path=path
        )
    with pytest.warns(RoastWarning, match=r"holds rows of several runs: 6 \(item, sample_index\)"):
        assert load_rollouts(path) == first + second
    # One run's rows, without sampling: the same call again.
    assert sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path) == first


def test_rows_sampled_inside_a_steer_are_marked_and_never_reused(tiny_model, tmp_path):
    task = tiny_task()
    items = task.items("train")[:2]
    path = tmp_path / "rollouts.jsonl"
    vector = random_vector(tiny_model, scale=8.0)
    with roast_tl.steer(tiny_model, vector, 1.0):
        steered = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
        assert all(HOOK in r.fingerprint["hooks"] for r in steered)
        again = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
    assert again == steered and len(load_rollouts(path)) == 2 * len(steered)  # resampled
    plain = sample_rollouts(tiny_model, task, items, **SAMPLING)
    with pytest.warns(RoastWarning, match=r"made with hooks attached \(steered\)"):
        assert sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path) == plain
    assert all(r.fingerprint["hooks"] == [] for r in plain) and plain != steered


CHAT_TEMPLATE = (
    "{% for m in messages %}review : {{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %} answer :{% endif %}"
)


def test_chat_decides_the_prompt_and_enters_the_fingerprint(tiny_model, tmp_path, monkeypatch):
    """chat=None applies the template when the tokenizer has one; chat=False feeds the plain
    prompt; rows sampled under one setting are never reused under the other."""
    monkeypatch.setattr(tiny_model.tokenizer, "chat_template", CHAT_TEMPLATE, raising=False)
    task = tiny_task()
    items = task.items("train")[:2]
    path = tmp_path / "rollouts.jsonl"
    templated = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
    for r, item in zip(templated, [i for i in items for _ in range(3)], strict=True):
        assert r.prompt_text == f"review : {item.prompt} answer :" and r.fingerprint["chat"]
    plain = sample_rollouts(tiny_model, task, items, **SAMPLING, chat=False)
    for r, item in zip(plain, [i for i in items for _ in range(3)], strict=True):
        assert r.prompt_text == item.prompt and r.fingerprint["chat"] is False
        # a templated tokenizer adds no BOS: the text is encoded as it is
        assert r.prompt_token_ids == tiny_model.tokenizer.convert_tokens_to_ids(item.prompt.split())
    with pytest.warns(RoastWarning, match=r"chat True \(this run: chat False\)"):
        resumed = sample_rollouts(
            tiny_model, task, items, **SAMPLING, chat=False, rollouts_path=path
        )
    assert resumed == plain
    assert sample_rollouts(tiny_model, task, items, **SAMPLING, chat=True) == templated


def test_rows_written_before_chat_was_recorded_are_reused(tiny_model, tmp_path):
    """0.2 rows carry no "chat" key: they were made with the template whenever there was one
    (none for the tiny tokenizer), so they are reused, not resampled."""
    task = tiny_task()
    items = task.items("train")[:2]
    path = tmp_path / "rollouts.jsonl"
    fresh = sample_rollouts(tiny_model, task, items, **SAMPLING)
    legacy = [
        replace(r, fingerprint={k: v for k, v in r.fingerprint.items() if k != "chat"})
        for r in fresh
    ]
    save_rollouts(legacy, path)
    before = path.read_bytes()
    context = _no_warning()
    try:
        assert sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path) == fresh
    finally:
        context.__exit__(None, None, None)
    assert path.read_bytes() == before  # nothing sampled, nothing appended


def test_rows_written_before_attention_was_recorded_count_as_eager(tiny_model, tmp_path):
    """0.3 rows carry no "attention" key. A bridge sampled them with eager attention (its own,
    or its fast model's before SDPA), whose logits differ from SDPA's in the last bits: on a
    bridge they are resampled, with a warning; a HookedTransformer's are its own and reused."""
    task = tiny_task()
    items = task.items("train")[:2]
    path = tmp_path / "rollouts.jsonl"
    fresh = sample_rollouts(tiny_model, task, items, **SAMPLING)
    attention = fresh[0].fingerprint["attention"]
    assert attention == unhooked_attention(tiny_model)
    assert attention in ("sdpa", HOOKED_TRANSFORMER_ATTENTION)
    legacy = [
        replace(r, fingerprint={k: v for k, v in r.fingerprint.items() if k != "attention"})
        for r in fresh
    ]
    save_rollouts(legacy, path)
    before = path.read_bytes()
    if attention == HOOKED_TRANSFORMER_ATTENTION:
        context = _no_warning()
        try:
            assert sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path) == fresh
        finally:
            context.__exit__(None, None, None)
        assert path.read_bytes() == before
        return
    with pytest.warns(RoastWarning, match=r"attention 'eager' \(this run: attention 'sdpa'\)"):
        resumed = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=path)
    assert resumed == fresh
    assert path.read_bytes().startswith(before)  # old rows kept, new ones appended
    assert len(path.read_text().splitlines()) == 2 * len(fresh)
