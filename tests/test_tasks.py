"""Tasks: shipped data loads offline, splits are disjoint and seeded, bad rows name their line."""

import json
import re
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roast_tl._warnings import RoastWarning
from roast_tl.tasks import (
    SPLITS,
    Task,
    TaskItem,
    check_item_ids,
    drop_repeated_prompts,
    load_arithmetic,
    load_gsm8k,
    load_multiple_choice,
    load_sentiment,
    load_task,
    split_items,
)
from roast_tl.tasks.gsm8k import wrong_number
from tests.tiny_model import construct_unchecked, finishes_within, first_word_parity, unchecked


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl(path, rows):
    return _write(path, [json.dumps(r) for r in rows])


def _assert_partition(task: Task, n_items: int) -> None:
    ids = {s: [i.id for i in task.items(s)] for s in SPLITS}
    all_ids = [i for s in SPLITS for i in ids[s]]
    assert len(all_ids) == len(set(all_ids)) == n_items


def _assert_grades_its_own_answers(task: Task) -> None:
    for split in SPLITS:
        for item in task.items(split)[:25]:
            assert task.grade(item.gold_completion, item), item
            assert item.wrong_completion is not None
            assert not task.grade(item.wrong_completion, item), item


def _items(n):
    return [TaskItem(id=str(i), prompt=f"p{i}", gold="x", gold_completion="x") for i in range(n)]


@given(st.integers(3, 60), st.integers(0, 10), st.integers(0, 10), st.integers(0, 2**32))
def test_split_items_partitions_and_is_seeded(n, n_dev, n_test, seed):
    if n_dev + n_test >= n:
        with pytest.raises(ValueError, match="leave a train split"):
            split_items(_items(n), n_dev=n_dev, n_test=n_test, seed=seed)
        return
    splits = split_items(_items(n), n_dev=n_dev, n_test=n_test, seed=seed)
    assert (len(splits["dev"]), len(splits["test"])) == (n_dev, n_test)
    assert sorted(i.id for s in SPLITS for i in splits[s]) == sorted(str(i) for i in range(n))
    assert split_items(_items(n), n_dev=n_dev, n_test=n_test, seed=seed) == splits


def test_shipped_sentiment_loads_offline_balanced_and_seeded():
    task = load_sentiment()
    assert task.name == "sentiment" and task.max_new_tokens == 8
    assert [len(task.items(s)) for s in ("train", "dev", "test")] == [340, 40, 100]
    _assert_partition(task, 480)
    golds = [i.gold for s in SPLITS for i in task.items(s)]
    assert golds.count("positive") == golds.count("negative") == 240
    assert [i.id for i in load_sentiment().items("test")] == [i.id for i in task.items("test")]
    assert [i.id for i in load_sentiment(seed=1).items("test")] != [
        i.id for i in task.items("test")
    ]
    _assert_grades_its_own_answers(task)


def test_sentiment_prompt_and_few_shot():
    task = load_sentiment()
    item = task.items("train")[0]
    assert item.prompt.startswith("Review: ")
    assert item.prompt.endswith(
        "\nIs the sentiment of this review positive or negative? Answer with one word."
    )
    assert [i.gold for i in task.few_shot] == ["positive", "negative", "positive", "negative"]
    train_ids = {i.id for i in task.items("train")}
    assert {i.id for i in task.few_shot} <= train_ids


def test_sentiment_from_a_file_and_from_rows(tmp_path):
    rows = [{"sentence": f"Review number {i}.", "label": i % 2, "idx": i} for i in range(10)]
    from_file = load_sentiment(_jsonl(tmp_path / "s.jsonl", rows), n_dev=2, n_test=2)
    from_rows = load_sentiment(rows=iter(rows), n_dev=2, n_test=2)
    assert len(from_file.items("train")) == len(from_rows.items("train")) == 6
    assert [i.prompt for i in from_file.items("test")] == [
        i.prompt for i in from_rows.items("test")
    ]
    with pytest.raises(TypeError, match="not both"):
        load_sentiment(tmp_path / "s.jsonl", rows=rows)
    with pytest.raises(ValueError, match=r"rows\[1\]: 'label' must be 0"):
        load_sentiment(rows=[{"sentence": "ok", "label": 1}, {"sentence": "ok", "label": -1}])


@pytest.mark.parametrize(
    "bad_line,message",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"sentence": "fine"}), "missing key 'label'"),
        (json.dumps({"label": 1}), "missing key 'sentence'"),
        (json.dumps({"sentence": "fine", "label": 2}), "'label' must be 0"),
        (json.dumps({"sentence": "fine", "label": "positive"}), "'label' must be 0"),
        (json.dumps({"sentence": "fine", "label": True}), "'label' must be 0"),
        (json.dumps({"sentence": "", "label": 1}), "non-empty"),
    ],
)
def test_bad_sentiment_rows_name_file_and_line(tmp_path, bad_line, message):
    good = json.dumps({"sentence": "Great.", "label": 1})
    path = _write(tmp_path / "s.jsonl", [good, good, "", bad_line])
    with pytest.raises(ValueError, match=rf"s\.jsonl:4: .*{message}"):
        load_sentiment(path, n_dev=0, n_test=0)


def test_shipped_gsm8k_loads_offline_and_grades_its_own_answers():
    task = load_gsm8k(n_items=120, n_dev=10, n_test=20)
    assert task.name == "gsm8k" and task.max_new_tokens == 256
    assert len(task.items("train")) == 90 and len(task.few_shot) == 3
    _assert_partition(task, 120)
    _assert_grades_its_own_answers(task)
    for item in task.items("train"):
        assert "<<" not in item.gold_completion and "####" in item.prompt
        assert item.wrong_completion.splitlines()[:-1] == item.gold_completion.splitlines()[:-1]


def test_gsm8k_full_shipped_split_and_seed():
    task = load_gsm8k()
    assert [len(task.items(s)) for s in ("train", "dev", "test")] == [7473 - 250, 50, 200]
    assert [i.id for i in load_gsm8k().items("test")] == [i.id for i in task.items("test")]
    assert [i.id for i in load_gsm8k(seed=1).items("test")] != [i.id for i in task.items("test")]


def test_gsm8k_from_a_file(tmp_path):
    rows = [
        {
            "question": f"What is {i} + 1?",
            "answer": f"{i} + 1 = <<{i}+1={i + 1}>>{i + 1}\n#### {i + 1:,}",
        }
        for i in range(998, 1008)
    ]
    task = load_gsm8k(_jsonl(tmp_path / "g.jsonl", rows), n_dev=2, n_test=2)
    _assert_partition(task, 10)
    item = next(
        i
        for i in task.items("train") + task.items("dev") + task.items("test")
        if i.prompt.startswith("What is 999 + 1?")
    )
    assert item.gold == "1000"
    assert item.gold_completion == "999 + 1 = 1000\n#### 1,000"
    assert item.wrong_completion == "999 + 1 = 1000\n#### 1001"


@pytest.mark.parametrize(
    "bad_row,message",
    [
        ({"question": "q"}, "missing key 'answer'"),
        ({"answer": "4\n#### 4"}, "missing key 'question'"),
        ({"question": "q", "answer": "no final"}, "####"),
        ({"question": "q", "answer": 4}, "must be strings"),
    ],
)
def test_bad_gsm8k_rows_name_file_and_line(tmp_path, bad_row, message):
    good = json.dumps({"question": "q", "answer": "4\n#### 4"})
    path = _write(tmp_path / "g.jsonl", [good, json.dumps(bad_row)])
    with pytest.raises(ValueError, match=rf"g\.jsonl:2: .*{message}"):
        load_gsm8k(path, n_dev=0, n_test=0)


def test_gsm8k_n_items_must_be_positive():
    with pytest.raises(ValueError, match="n_items must be a positive"):
        load_gsm8k(n_items=0)


def test_multiple_choice_prompt_answers_and_grading(tmp_path):
    rows = [
        {
            "question": f"q{i}?",
            "choices": ["x", "y", "z"],
            "answer": i % 3 if i % 2 else "ABC"[i % 3],
        }
        for i in range(12)
    ]
    task = load_multiple_choice(_jsonl(tmp_path / "mc.jsonl", rows), n_dev=2, n_test=2, name="toy")
    assert task.name == "toy" and task.max_new_tokens == 8 and len(task.few_shot) == 3
    _assert_partition(task, 12)
    _assert_grades_its_own_answers(task)
    item = next(i for s in SPLITS for i in task.items(s) if i.prompt.startswith("q4?"))
    assert item.prompt == "q4?\nA. x\nB. y\nC. z\nAnswer with the letter of the correct choice."
    assert (item.gold, item.gold_completion, item.wrong_completion) == (
        "B",
        "Answer: B",
        "Answer: A",
    )


def test_lenient_first_character_trap_is_graded_wrong(tmp_path):
    # The authors' lenient matcher graded "Answer: B" as correct for gold "A" (first character).
    rows = [{"question": f"q{i}", "choices": ["x", "y", "z"], "answer": 0} for i in range(10)]
    task = load_multiple_choice(_jsonl(tmp_path / "mc.jsonl", rows), n_dev=2, n_test=2)
    item = task.items("train")[0]
    assert item.gold == "A"
    assert not task.grade("Answer: B", item)
    assert task.grade("Answer: A", item)


@pytest.mark.parametrize(
    "bad_row,message",
    [
        ({"question": "q", "choices": ["a", "b"], "answer": 5}, "'answer' must be"),
        ({"question": "q", "choices": ["a", "b"], "answer": -1}, "'answer' must be"),
        ({"question": "q", "choices": ["a", "b"], "answer": "C"}, "'answer' must be"),
        ({"question": "q", "choices": ["a", "b"], "answer": "AB"}, "'answer' must be"),
        ({"question": "q", "choices": ["a", "b"], "answer": True}, "'answer' must be"),
        ({"question": "q", "choices": "ab", "answer": 0}, "'choices' must be"),
        ({"question": "q", "choices": ["a"], "answer": 0}, "'choices' must be"),
        ({"question": "q", "choices": ["a", 2], "answer": 0}, "'choices' must be"),
        ({"question": "", "choices": ["a", "b"], "answer": 0}, "'question' must be"),
        ({"question": "q", "answer": 0}, "missing key 'choices'"),
    ],
)
def test_bad_multiple_choice_rows_name_file_and_line(tmp_path, bad_row, message):
    good = json.dumps({"question": "q", "choices": ["a", "b"], "answer": "B"})
    path = _write(tmp_path / "mc.jsonl", [good, json.dumps(bad_row)])
    with pytest.raises(ValueError, match=rf"mc\.jsonl:2: {message}"):
        load_multiple_choice(path, n_dev=0, n_test=0)


def test_arithmetic_is_seeded_distinct_and_correct():
    task = load_arithmetic(seed=3)
    assert task.name == "arithmetic1" and task.max_new_tokens == 8
    assert [i.prompt for i in task.items("test")] == [
        i.prompt for i in load_arithmetic(seed=3).items("test")
    ]
    assert [i.prompt for i in task.items("test")] != [
        i.prompt for i in load_arithmetic(seed=4).items("test")
    ]
    _assert_partition(task, 200)  # every distinct one-digit + and - problem
    prompts = [i.prompt for s in SPLITS for i in task.items(s)]
    assert len(set(prompts)) == len(prompts)
    for item in task.items("train"):
        a, op, b = item.prompt.removeprefix("What is ").split("?")[0].split()
        assert int(item.gold) == (int(a) + int(b) if op == "+" else int(a) - int(b))
        assert item.prompt.endswith("? Reply with the number only.")
        assert item.wrong_completion == str(int(item.gold) + 1)
    _assert_grades_its_own_answers(task)


def test_arithmetic_sizes_and_errors():
    task = load_arithmetic(n_items=300, digits=2, ops="*", n_dev=20, n_test=40)
    _assert_partition(task, 300)
    assert all(" * " in i.prompt for i in task.items("train"))
    with pytest.raises(ValueError, match="distinct problems"):
        load_arithmetic(n_items=500)
    with pytest.raises(ValueError, match="ops must be"):
        load_arithmetic(ops="/")
    with pytest.raises(ValueError, match="digits must be"):
        load_arithmetic(digits=0)


def test_load_task_maps_names_to_loaders(tmp_path):
    assert load_task("sentiment").name == "sentiment"
    assert load_task("arithmetic", n_items=50, n_dev=5, n_test=5).name == "arithmetic1"
    assert load_task("gsm8k", n_items=40, n_dev=5, n_test=5).name == "gsm8k"
    rows = [{"question": f"q{i}", "choices": ["x", "y"], "answer": 1} for i in range(6)]
    path = _jsonl(tmp_path / "mc.jsonl", rows)
    assert load_task("multiple_choice", path=path, n_dev=1, n_test=1).name == "multiple_choice"


def test_load_task_errors():
    with pytest.raises(ValueError, match=r"unknown task 'sst5'.*'arithmetic'.*'sentiment'"):
        load_task("sst5")
    # A ValueError (the CLI's user-error path), not a TypeError traceback (finding C2).
    with pytest.raises(ValueError, match="no shipped data; pass path="):
        load_task("multiple_choice")
    with pytest.raises(ValueError, match="no split 'validation'"):
        load_task("sentiment").items("validation")
    with pytest.raises(ValueError, match="leave a train split"):
        load_sentiment(n_dev=300, n_test=200)


def test_grading_extracts_once_and_never_credits_no_answer():
    calls = []

    def extract(text):
        calls.append(text)
        return text.strip() or None

    task = Task("t", {"train": _items(3)}, extract_answer=extract, max_new_tokens=1)
    item = TaskItem("a", "p", gold="x", gold_completion="x")
    assert task.extract_and_grade(" x ", item) == ("x", True)
    assert task.extract_and_grade("y", item) == ("y", False)
    assert task.extract_and_grade("  ", item) == (None, False)
    assert task.grade("x", item) is True
    assert calls == [" x ", "y", "  ", "x"]


def _no_warnings(function, *args, **kwargs):
    """Call `function`, failing on any warning it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args, **kwargs)


def test_shipped_tasks_have_no_repeated_prompts():
    for task in (_no_warnings(load_sentiment), _no_warnings(load_gsm8k), load_arithmetic()):
        prompts = [i.prompt for s in SPLITS for i in task.items(s)]
        assert len(set(prompts)) == len(prompts), task.name


# S3: item ids key rollouts, seeds and contrast groups, so a repeated id is refused.


@pytest.mark.parametrize(
    "splits,named",
    [
        ({"train": [("dup", "a"), ("dup", "b")]}, r"'dup' \(2 times\)"),
        ({"train": [("x", "a"), ("y", "b")], "test": [("x", "c")]}, r"'x' \(2 times\)"),
        (
            {"train": [("x", "a"), ("y", "b")], "dev": [("y", "c")], "test": [("x", "d")]},
            r"'x' \(2 times\), 'y' \(2 times\)",
        ),
    ],
)
def test_task_refuses_repeated_item_ids_within_and_across_splits(splits, named):
    built = {
        split: [TaskItem(i, p, "even", "good", "bad") for i, p in pairs]
        for split, pairs in splits.items()
    }
    with pytest.raises(ValueError, match=rf"task 't': item ids repeat: {named}; give every item"):
        Task("t", built, first_word_parity, max_new_tokens=3)


def test_check_item_ids_names_at_most_five_repeats():
    items = [TaskItem(str(i % 7), f"p{i}", "x", "x") for i in range(14)]
    with pytest.raises(
        ValueError,
        match=r"here: item ids repeat: '0' \(2 times\), .*'4' "
        r"\(2 times\) and 2 more; give",
    ):
        check_item_ids(items, "here")
    check_item_ids(_items(5), "here")  # distinct: fine


# S11: TaskItem fields are type-checked where they enter, the extractor's answer at grade time.


@pytest.mark.parametrize(
    "fields,message",
    [
        (("q", "p", 7, "7"), r"TaskItem 'q': gold must be a string, got 7 \(int\)"),
        (("q", None, "x", "x"), "TaskItem 'q': prompt must be a string, got None"),
        (("q", "p", "x", None), "TaskItem 'q': gold_completion must be a string, got None"),
        (("q", "p", "x", "x", 3), "TaskItem 'q': wrong_completion must be a string or None"),
        ((5, "p", "x", "x"), r"TaskItem id must be a non-empty string, got 5 \(int\)"),
        (("", "p", "x", "x"), "TaskItem id must be a non-empty string"),
    ],
)
def test_task_item_refuses_fields_of_the_wrong_type(fields, message):
    # Unchecked: users run without the test-time type checker, so TaskItem's own check counts.
    with pytest.raises(TypeError, match=message):
        construct_unchecked(TaskItem, *fields)


def test_task_item_accepts_strings_and_no_wrong_completion():
    item = TaskItem("q", "p", "7", "7")
    assert (item.gold, item.wrong_completion) == ("7", None)


def test_an_extractor_returning_a_non_string_is_an_error_naming_the_task():
    task = Task("counts", {"train": _items(3)}, lambda text: len(text), max_new_tokens=1)
    with pytest.raises(TypeError, match=r"task 'counts': extract_answer returned 3 \(int\)"):
        task.grade("abc", _items(1)[0])
    with pytest.raises(TypeError, match="task 'counts': extract_answer returned"):
        task.extract_and_grade("abc", _items(1)[0])


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens must be a positive int, got 0"),
        ({"max_new_tokens": 2.5}, ValueError, "max_new_tokens must be a positive int"),
        ({"extract_answer": "strict"}, TypeError, "extract_answer must be a function"),
        ({"splits": {"train": ["not an item"]}}, TypeError, r"train\[0\] is a str, not a Task"),
        ({"few_shot": [("q", "a")]}, TypeError, r"few_shot\[0\] is a tuple, not a TaskItem"),
        ({"name": ""}, TypeError, "Task name must be a non-empty string"),
    ],
)
def test_task_checks_its_fields(kwargs, error, message):
    fields = {
        "name": "t",
        "splits": {"train": _items(2)},
        "extract_answer": first_word_parity,
        "max_new_tokens": 3,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        construct_unchecked(Task, **fields)


def test_a_prompt_in_two_splits_warns_with_how_many():
    train = [TaskItem(f"a{i}", f"prompt {i}", "x", "x") for i in range(4)]
    test = [TaskItem(f"b{i}", f"prompt {i}", "x", "x") for i in (1, 3, 7)]
    with pytest.warns(RoastWarning, match=r"2 prompt\(s\) appear in both 'train' and 'test'"):
        Task("t", {"train": train, "test": test}, first_word_parity, max_new_tokens=1)
    # Disjoint prompts: no warning at all.
    _no_warnings(Task, "t", {"train": train, "test": test[2:]}, first_word_parity, 1)


# S3 (loaders): a repeated review, question or problem is kept once, so no prompt is in 2 splits.


def _assert_no_prompt_in_two_splits(task: Task) -> None:
    prompts = [i.prompt for s in SPLITS for i in task.items(s)]
    assert len(set(prompts)) == len(prompts)


def test_sentiment_keeps_one_copy_of_a_repeated_review(tmp_path):
    rows = [{"sentence": "Same review.", "label": 1}] * 20
    rows += [{"sentence": f"Review {i}.", "label": i % 2} for i in range(10)]
    rows += [{"sentence": "Same review.", "label": 0}]  # a conflicting label, as in SST-2
    path = _jsonl(tmp_path / "s.jsonl", rows)
    with pytest.warns(RoastWarning, match=r"s\.jsonl: dropped 20 item\(s\).*1 of them had"):
        task = load_sentiment(path, n_dev=2, n_test=2)
    _assert_no_prompt_in_two_splits(task)
    _assert_partition(task, 11)
    same = [i for s in SPLITS for i in task.items(s) if "Same review." in i.prompt]
    assert [(i.id, i.gold) for i in same] == [("sentiment-0", "positive")]  # the first one
    with pytest.warns(RoastWarning, match=r"load_sentiment\(rows=...\): dropped 20"):
        load_sentiment(rows=rows, n_dev=2, n_test=2)


def test_gsm8k_and_multiple_choice_keep_one_copy_of_a_repeated_question(tmp_path):
    gsm = [{"question": f"q{i % 6}", "answer": f"x\n#### {i % 6}"} for i in range(9)]
    with pytest.warns(RoastWarning, match=r"g\.jsonl: dropped 3 item\(s\)"):
        task = load_gsm8k(_jsonl(tmp_path / "g.jsonl", gsm), n_dev=1, n_test=1)
    _assert_partition(task, 6)
    _assert_no_prompt_in_two_splits(task)
    mc = [{"question": f"q{i % 5}", "choices": ["x", "y"], "answer": i % 2} for i in range(8)]
    with pytest.warns(RoastWarning, match="dropped 3 item.*3 of them had another gold answer"):
        task = load_multiple_choice(_jsonl(tmp_path / "mc.jsonl", mc), n_dev=1, n_test=1)
    _assert_partition(task, 5)
    _assert_no_prompt_in_two_splits(task)


def test_drop_repeated_prompts_keeps_first_occurrences_in_order():
    items = [TaskItem(f"i{n}", f"p{n % 3}", "x", "x") for n in range(7)]
    with pytest.warns(RoastWarning, match="src: dropped 4 item"):
        kept = drop_repeated_prompts(items, "src")
    assert [i.id for i in kept] == ["i0", "i1", "i2"]
    assert _no_warnings(drop_repeated_prompts, items[:3], "src") == items[:3]


# C1: a GSM8K file can neither hang the loader nor trip a bare assert.


def test_gsm8k_number_too_long_to_write_out_is_refused_with_its_line(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"x\n#### {i}"} for i in range(5)]
    rows.insert(2, {"question": "huge", "answer": "x\n#### 1e999999999"})
    path = _jsonl(tmp_path / "g.jsonl", rows)
    assert finishes_within(10, load_gsm8k, path)  # it used to hang (> 10 min)
    with pytest.raises(ValueError, match=r"g\.jsonl:3: no plain number of at most 1000 digits"):
        load_gsm8k(path, n_dev=1, n_test=1)


@pytest.mark.parametrize(
    "gold,wrong",
    [
        ("72", "73"),
        ("2.5", "3.5"),
        ("-1", "0"),
        ("1" + "0" * 400, "1" + "0" * 399 + "1"),
        ("1234567890123456789012345678901", "1234567890123456789012345678902"),
        ("-" + "9" * 40, "-" + "9" * 39 + "8"),
        ("0.1" + "0" * 40 + "7", "1.1" + "0" * 40 + "7"),
    ],
)
def test_wrong_number_is_exact_for_long_golds(gold, wrong):
    # The default 28-digit decimal context rounded gold + 1 back to gold (a bare assert).
    assert wrong_number(gold) == wrong


def test_gsm8k_loads_golds_beyond_28_digits(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"x\n#### {i}"} for i in range(4)]
    rows += [{"question": "big", "answer": "x\n#### 1" + "0" * 400}]
    rows += [{"question": "long", "answer": "x\n#### 1234567890123456789012345678901"}]
    task = load_gsm8k(_jsonl(tmp_path / "g.jsonl", rows), n_dev=1, n_test=1)
    by_prompt = {i.prompt.split("\n")[0]: i for s in SPLITS for i in task.items(s)}
    assert by_prompt["big"].gold == "1" + "0" * 400
    assert by_prompt["big"].wrong_completion == "x\n#### 1" + "0" * 399 + "1"
    assert by_prompt["long"].wrong_completion == "x\n#### 1234567890123456789012345678902"
    _assert_grades_its_own_answers(task)


def test_gsm8k_gold_in_exponent_form_is_refused_with_its_line(tmp_path):
    # "#### 1e400" used to trip a bare assert; the grader reads it as 1, so it is refused.
    rows = [{"question": f"q{i}", "answer": f"x\n#### {i}"} for i in range(4)]
    rows += [{"question": "big", "answer": "x\n#### 1e400"}]
    with pytest.raises(ValueError, match=r"g\.jsonl:5: the grader reads .*'1e400' as '1'"):
        load_gsm8k(_jsonl(tmp_path / "g.jsonl", rows), n_dev=1, n_test=1)


def test_wrong_number_refuses_a_gold_whose_successor_is_too_long():
    with pytest.raises(ValueError, match="cannot write a wrong answer for gold '9999"):
        wrong_number("9" * 1000)


# --- your own data: TaskItem(prompt=, gold=), Task.from_pairs, load_task("jsonl") -------------


def test_task_item_needs_only_a_prompt_and_a_gold():
    item = TaskItem(prompt="2 + 3 =", gold="5")
    # sha256("2 + 3 =") starts with 115f6226f1
    assert (item.id, item.gold_completion, item.wrong_completion) == ("item-115f6226f1", "5", None)
    assert TaskItem(prompt="2 + 3 =", gold="5", id="a", gold_completion="It is 5.").id == "a"
    assert TaskItem("q", "p", "x", "y") == TaskItem(
        id="q", prompt="p", gold="x", gold_completion="y"
    )
    for kwargs, missing in (({"prompt": "p"}, "gold"), ({"gold": "x"}, "prompt")):
        with pytest.raises(TypeError, match=f"TaskItem: {missing} must be a string, got nothing"):
            TaskItem(**kwargs)
    with pytest.raises(TypeError, match=r"TaskItem\(prompt=..., gold=...\), or .*Task.from_pairs"):
        TaskItem("q", "p")


def test_from_pairs_derives_ids_gold_completions_and_seeded_splits():
    pairs = [(f"{a} plus 2", a + 2) for a in range(10)]
    task = Task.from_pairs(pairs, grader="number", name="add", seed=3)
    sizes = {s: len(task.items(s)) for s in SPLITS}
    assert sizes == {"train": 6, "dev": 2, "test": 2}  # a fifth each for dev and test
    _assert_partition(task, 10)
    by_id = {i.id: i for s in SPLITS for i in task.items(s)}
    assert sorted(by_id) == sorted(f"add-{n}" for n in range(10))
    assert by_id["add-7"] == TaskItem("add-7", "7 plus 2", "9", "9", None)
    assert task.splits == split_items(
        list(by_id[f"add-{n}"] for n in range(10)), n_dev=2, n_test=2, seed=3
    )
    assert task.max_new_tokens == 32 and task.few_shot == task.items("train")[:2]
    again = Task.from_pairs(pairs, grader="number", name="add", seed=3)
    assert again.splits == task.splits
    assert Task.from_pairs(pairs, grader="number", seed=4).items("test") != [
        Task.from_pairs(pairs, grader="number", seed=3).items("test")
    ]


@pytest.mark.parametrize(
    ("n", "sizes"),
    [(3, (1, 1, 1)), (9, (1, 1, 7)), (10, (2, 2, 6)), (600, (50, 100, 450))],
)
def test_from_pairs_default_split_sizes(n, sizes):
    task = Task.from_pairs([(f"p{i}", "x") for i in range(n)])
    assert tuple(len(task.items(s)) for s in ("dev", "test", "train")) == sizes


def test_from_pairs_takes_triples_dicts_and_explicit_sizes():
    task = Task.from_pairs(
        [
            ("Capital of France?", "Paris", "London"),
            {"prompt": "Capital of Italy?", "answer": "Rome", "id": "it"},
            {"prompt": "Capital of Spain?", "answer": "Madrid", "gold_completion": "Madrid."},
            {"prompt": "Capital of Peru?", "answer": "Lima", "wrong_completion": "Quito"},
        ],
        grader="contains",
        name="caps",
        n_dev=1,
        n_test=1,
    )
    items = {i.id: i for s in SPLITS for i in task.items(s)}
    assert items["caps-0"].wrong_completion == "London"
    assert items["it"].gold == "Rome" and items["it"].gold_completion == "Rome"
    assert items["caps-2"].gold_completion == "Madrid."
    assert items["caps-3"].wrong_completion == "Quito"
    assert task.grade("The capital is Lima.", items["caps-3"])
    assert sorted(len(task.items(s)) for s in SPLITS) == [1, 1, 2]


@pytest.mark.parametrize(
    ("pairs", "kwargs", "error", "message"),
    [
        ([("a", "1"), ("b", "2")], {}, ValueError, "got 2 distinct pair.*give at least 3 pairs"),
        (
            [(f"p{i}", "x") for i in range(5)],
            {"n_dev": 2, "n_test": 3},
            ValueError,
            "too few for n_dev=2, n_test=3 and at least one training pair",
        ),
        ([("a",), ("b", "2"), ("c", "3")], {}, TypeError, r"pairs\[0\]: expected a \(prompt"),
        ([("a", None), ("b", "2"), ("c", "3")], {}, TypeError, r"pairs\[0\]: the answer must"),
        ([("a", True), ("b", "2"), ("c", "3")], {}, TypeError, r"pairs\[0\]: the answer must"),
        (
            [{"question": "a", "answer": "1"}],
            {},
            ValueError,
            r"pairs\[0\]: a pair dict needs keys 'prompt' and 'answer'.*got \['answer', 'quest",
        ),
        ("a string", {}, TypeError, "takes a list of .* got a str"),
        ([(f"p{i}", "x") for i in range(5)], {"grader": "first"}, ValueError, "unknown grader"),
    ],
)
def test_from_pairs_errors(pairs, kwargs, error, message):
    with pytest.raises(error, match=message):
        unchecked(Task.from_pairs)(Task, pairs, **kwargs)  # unchecked: the classmethod's function


def test_from_pairs_keeps_one_copy_of_a_repeated_prompt():
    pairs = [("same", "1"), ("same", "2"), ("b", "3"), ("c", "4")]
    with pytest.warns(RoastWarning, match="dropped 1 item.*1 of them had another gold answer"):
        task = Task.from_pairs(pairs)
    assert sorted(i.id for s in SPLITS for i in task.items(s)) == [
        "custom-0",
        "custom-2",
        "custom-3",
    ]


@pytest.mark.parametrize(
    ("splits", "error", "message"),
    [
        ([TaskItem("a", "p", "x", "x")], TypeError, "splits must be a dict like .*got a list"),
        ({"val": []}, ValueError, r"unknown split name\(s\) \['val'\]; splits are named"),
        ({"train": TaskItem("a", "p", "x", "x")}, TypeError, "split 'train' must be a list"),
    ],
)
def test_task_checks_its_splits_at_construction(splits, error, message):
    """Friction #16: a list of items used to be accepted and fail later, printing every item."""
    with pytest.raises(error, match=message):
        construct_unchecked(Task, "t", splits, first_word_parity, 3)


def test_a_task_needs_exactly_one_of_extract_answer_and_grader():
    items = {"train": [TaskItem("a", "p", "x", "x")]}
    for kwargs in ({}, {"extract_answer": str.strip, "grader": lambda c, i: True}):
        with pytest.raises(TypeError, match="give exactly one of extract_answer .* and grader"):
            Task("t", items, **kwargs)
    with pytest.raises(TypeError, match="grader must be a function"):
        construct_unchecked(Task, "t", items, grader="exact")


def test_a_grader_returning_a_non_bool_is_an_error_naming_the_task():
    item = TaskItem("a", "p", "x", "x")
    task = Task("fuzzy", {"train": [item]}, grader=lambda completion, item: 0.5)
    with pytest.raises(TypeError, match=r"task 'fuzzy': the grader returned 0.5 \(float\)"):
        task.grade("x", item)


def test_load_task_jsonl_reads_the_named_fields(tmp_path):
    rows = [{"q": f"question {i}", "a": i, "source": "mine"} for i in range(5)]
    rows[1].update(id="own-id", wrong_completion="-1")
    path = _jsonl(tmp_path / "mine.jsonl", rows)
    task = load_task("jsonl", path=path, prompt_field="q", answer_field="a", grader="number")
    items = {i.id: i for s in SPLITS for i in task.items(s)}
    assert task.name == "mine" and sorted(items) == [
        "mine-0",
        "mine-2",
        "mine-3",
        "mine-4",
        "own-id",
    ]
    assert items["own-id"] == TaskItem("own-id", "question 1", "1", "1", "-1")
    assert task.grade("so it is 3", items["mine-3"])
    named = load_task("jsonl", path=path, prompt_field="q", answer_field="a", name="x", n_dev=2)
    assert named.name == "x" and len(named.items("dev")) == 2
    assert named.grade("3", items["mine-3"]) and not named.grade(
        "it is 3", items["mine-3"]
    )  # exact


@pytest.mark.parametrize(
    ("lines", "kwargs", "message"),
    [
        (['{"prompt": "a", "answer": "1"}', '{"prompt": "b"}'], {}, ":2: missing key 'answer'"),
        (['{"text": "a", "answer": "1"}'], {}, ":1: missing key 'prompt'"),
        (['{"prompt": "a", "answer": "1"}', "{oops"], {}, ":2"),
        (['{"prompt": "a", "answer": "1"}'], {"grader": "bogus"}, "unknown grader 'bogus'"),
    ],
)
def test_load_task_jsonl_errors_name_the_file_and_line(tmp_path, lines, kwargs, message):
    path = _write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_task("jsonl", path=path, **kwargs)


def test_load_task_jsonl_needs_a_path():
    with pytest.raises(ValueError, match="task 'jsonl' needs path="):
        load_task("jsonl")
