"""Tasks and strict graders: golden cases, splits, loaders, and bad rows named by line."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import roast_tl
from roast_tl.tasks import load_arithmetic, load_gsm8k, load_multiple_choice, load_sentiment
from roast_tl.tasks.grading import (
    extract_choice_letter,
    extract_final_number,
    extract_label,
    gsm8k_gold,
)


@pytest.mark.parametrize("text,expected", [
    ("Positive", "positive"), ("negative.", "negative"),
    ("The sentiment of this review is negative.", "negative"),
    ("The sentiment of this review is neutral.", None), ("positive and negative", None),
    ("", None), ("positively", None),
])
def test_extract_label(text, expected):
    assert extract_label(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("#### 1,234", "1234"), ("so 3 + 4 = 7", "7"), ("The answer is $18.00.", "18"),
    ("x = -3", "-3"), ("It is 2.50 dollars", "2.5"), ("#### 5\n#### 6", "6"),
    ("first 10 then\n#### 12 apples", "12"), ("no number", None),
])
def test_extract_final_number(text, expected):
    assert extract_final_number(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("B", "B"), ("(C)", "C"), ("Answer: D", "D"), ("the answer is A.", "A"), ("B. Paris", "B"),
    ("A or B", None), ("Answer: A. No wait, answer: B", None), ("Paris", None),
])
def test_extract_choice_letter(text, expected):
    assert extract_choice_letter(text) == expected


def test_lenient_first_character_trap_is_not_correct(tmp_path):
    # The authors' lenient matcher graded "Answer: B" as correct for gold "A" (first character).
    path = tmp_path / "mc.jsonl"
    rows = [{"question": f"q{i}", "choices": ["x", "y", "z"], "answer": 0} for i in range(10)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = load_multiple_choice(path, n_dev=2, n_test=2)
    item = task.items("train")[0]
    assert item.gold == "A"
    assert not task.grade("Answer: B", item)
    assert task.grade("Answer: A", item)


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_final_number_round_trips_comma_formatted_integers(n):
    assert extract_final_number(f"so the total is\n#### {n:,}") == str(n)


def test_gsm8k_gold():
    assert gsm8k_gold("48/2 = <<48/2=24>>24\n#### 72") == "72"
    with pytest.raises(ValueError, match="####"):
        gsm8k_gold("no final line")


def test_shipped_sentiment_splits_are_disjoint_deterministic_and_complete():
    task = load_sentiment()
    ids = {s: [i.id for i in task.items(s)] for s in ("train", "dev", "test")}
    assert len(ids["test"]) == 100 and len(ids["dev"]) == 40 and len(ids["train"]) == 340
    assert not (set(ids["train"]) & set(ids["dev"]) or set(ids["train"]) & set(ids["test"])
                or set(ids["dev"]) & set(ids["test"]))
    assert [i.id for i in load_sentiment().items("test")] == ids["test"]
    assert [i.id for i in load_sentiment(seed=1).items("test")] != ids["test"]
    golds = [i.gold for s in ids for i in task.items(s)]
    assert golds.count("positive") == golds.count("negative") == 240
    item = task.items("train")[0]
    assert task.grade(item.gold_completion, item) and not task.grade(item.wrong_completion, item)
    assert {i.gold for i in task.few_shot} == {"positive", "negative"}


def test_shipped_gsm8k_loads_offline_and_grades_its_own_gold():
    task = load_gsm8k(limit=120, n_dev=10, n_test=20)
    assert len(task.items("train")) == 90
    for item in task.items("train")[:20]:
        assert task.grade(item.gold_completion, item)
        assert not task.grade(item.wrong_completion, item)
        assert "<<" not in item.gold_completion


def test_arithmetic_is_seeded_and_correct():
    task = load_arithmetic(seed=3)
    again = load_arithmetic(seed=3)
    assert [i.prompt for i in task.items("test")] == [i.prompt for i in again.items("test")]
    for item in task.items("train"):
        a, op, b = item.prompt.removeprefix("What is ").split("?")[0].split()
        assert int(item.gold) == (int(a) + int(b) if op == "+" else int(a) - int(b))
    with pytest.raises(ValueError, match="distinct problems"):
        load_arithmetic(n_items=500)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("bad_line,message", [
    ("{not json", "invalid JSON"),
    (json.dumps({"sentence": "fine"}), "missing key 'label'"),
    (json.dumps({"sentence": "fine", "label": 2}), "'label' must be 0"),
    (json.dumps({"sentence": "", "label": 1}), "non-empty"),
])
def test_bad_sentiment_rows_name_file_and_line(tmp_path, bad_line, message):
    good = json.dumps({"sentence": "Great.", "label": 1})
    path = _write(tmp_path / "s.jsonl", [good, good, "", bad_line])
    with pytest.raises(ValueError, match=rf"s\.jsonl:4: .*{message}"):
        load_sentiment(path, n_dev=0, n_test=0)


@pytest.mark.parametrize("bad_row,message", [
    ({"question": "q", "choices": ["a", "b"], "answer": 5}, "'answer' must be"),
    ({"question": "q", "choices": "ab", "answer": 0}, "'choices' must be"),
    ({"question": "q", "answer": 0}, "missing key 'choices'"),
])
def test_bad_multiple_choice_rows_name_the_line(tmp_path, bad_row, message):
    good = json.dumps({"question": "q", "choices": ["a", "b"], "answer": "B"})
    path = _write(tmp_path / "mc.jsonl", [good, json.dumps(bad_row)])
    with pytest.raises(ValueError, match=rf"mc\.jsonl:2: {message}"):
        load_multiple_choice(path, n_dev=0, n_test=0)


def test_bad_gsm8k_row_names_the_line(tmp_path):
    path = _write(tmp_path / "g.jsonl", [json.dumps({"question": "q", "answer": "4\n#### 4"}),
                                         json.dumps({"question": "q", "answer": "no final"})])
    with pytest.raises(ValueError, match=r"g\.jsonl:2: .*####"):
        load_gsm8k(path, n_dev=0, n_test=0)


def test_rows_from_an_installed_dataset():
    rows = [{"sentence": f"s{i}", "label": i % 2} for i in range(10)]
    task = load_sentiment(rows=rows, n_dev=2, n_test=2)
    assert len(task.items("train")) == 6


def test_load_task_errors():
    with pytest.raises(ValueError, match="unknown task 'sst5'.*sentiment"):
        roast_tl.load_task("sst5")
    with pytest.raises(ValueError, match="no split 'validation'"):
        roast_tl.load_task("sentiment").items("validation")
    with pytest.raises(ValueError, match="leave a train split"):
        load_sentiment(n_dev=300, n_test=200)
