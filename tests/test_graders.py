"""Graders that see the item: each shipped grader on hand-written completions, near misses
included, the answer it records, the name map and its errors."""

import re

import pytest

from roast_tl.tasks import GRADERS, Task, TaskItem, grader_named
from roast_tl.tasks.graders import (
    AnswerGrader,
    choice_letter,
    contains,
    exact_match,
    final_number,
    normalize_text,
    one_of_labels,
    regex,
    resolve_grader,
)
from tests.tiny_model import unchecked


def _item(gold: str) -> TaskItem:
    return TaskItem(prompt="q", gold=gold)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Paris", "paris"),
        ("  The   Eiffel Tower!  ", "eiffel tower"),
        ("an apple, a pear.", "apple pear"),
        ("Theatre", "theatre"),  # an article only as a whole word
        ("", ""),
    ],
)
def test_normalize_text(text, normal):
    assert normalize_text(text) == normal


@pytest.mark.parametrize(
    ("completion", "gold", "answer", "correct"),
    [
        ("Paris", "Paris", "paris", True),
        ("paris.\n\nIt is the capital.", "Paris", "paris", True),  # first line only
        ("\n  The Hague  ", "the hague", "hague", True),
        ("The capital is Paris.", "Paris", "capital is paris", False),
        ("Paris, France", "Paris", "paris france", False),
        ("", "Paris", None, False),
    ],
)
def test_exact_match(completion, gold, answer, correct):
    assert exact_match().extract_and_grade(completion, _item(gold)) == (answer, correct)


@pytest.mark.parametrize(
    ("completion", "gold", "answer", "correct"),
    [
        ("3 + 4 = 7", "7", "7", True),
        ("It costs $1,000.00 in total.", "1000", "1000", True),
        ("7 apples\n#### 8", "8", "8", True),
        ("7 or 8", "7", "8", False),  # the last number counts
        ("seven", "7", None, False),
        ("-3", "-3", "-3", True),
    ],
)
def test_final_number(completion, gold, answer, correct):
    assert final_number().extract_and_grade(completion, _item(gold)) == (answer, correct)


def test_final_number_reads_the_gold_as_a_number_too():
    assert final_number()("1000", _item("1,000.0"))
    with pytest.raises(ValueError, match="item 'item-.*': grader 'number' cannot read its gold"):
        final_number()("7", _item("seven"))


@pytest.mark.parametrize(
    ("completion", "gold", "answer", "correct"),
    [
        ("Positive.", "positive", "positive", True),
        ("The sentiment is NEGATIVE", "positive", "negative", False),
        ("positive or negative", "positive", None, False),
        ("non-negative", "negative", None, False),
        ("neutral", "negative", None, False),
        ("positive", "Positive", "positive", True),  # gold compared case-insensitively
    ],
)
def test_one_of_labels(completion, gold, answer, correct):
    grader = one_of_labels(["positive", "negative"])
    assert grader.extract_and_grade(completion, _item(gold)) == (answer, correct)


def test_one_of_labels_refuses_a_gold_outside_the_labels_and_too_few_labels():
    with pytest.raises(ValueError, match="grader 'label' cannot read its gold 'maybe'"):
        one_of_labels(["yes", "no"])("yes", _item("maybe"))
    with pytest.raises(ValueError, match="at least 2 distinct non-empty labels"):
        one_of_labels(["yes", "Yes"])


@pytest.mark.parametrize(
    ("completion", "gold", "answer", "correct"),
    [
        ("Answer: B", "B", "B", True),
        ("(c)", "C", None, False),  # letters must be capitals
        ("B. Paris", "b", "B", True),
        ("A or B", "A", None, False),
        ("Answer: A", "B", "A", False),  # never a first-character match for "Answer"
        ("Because", "B", None, False),
    ],
)
def test_choice_letter(completion, gold, answer, correct):
    assert choice_letter("ABCD").extract_and_grade(completion, _item(gold)) == (answer, correct)


def test_choice_letter_checks_its_letters():
    with pytest.raises(ValueError, match="choice_letter needs capital letters"):
        choice_letter("ab")
    with pytest.raises(ValueError, match="grader 'choice' cannot read its gold 'E'"):
        choice_letter("ABCD")("Answer: E", _item("E"))


@pytest.mark.parametrize(
    ("pattern", "completion", "gold", "answer", "correct"),
    [
        (r"answer:\s*(\w+)", "Answer: Paris. No, answer: Rome", "Paris", "paris", True),
        (r"answer:\s*(\w+)", "Paris", "Paris", None, False),
        (r"\d+", "about 12 or 13", "12", "12", True),  # no group: the whole first match
        (r"is (.*)\.", "It is The Hague.", "the hague", "hague", True),
    ],
)
def test_regex(pattern, completion, gold, answer, correct):
    assert regex(pattern).extract_and_grade(completion, _item(gold)) == (answer, correct)


def test_regex_refuses_a_bad_pattern():
    with pytest.raises(ValueError, match=re.escape("regex grader: bad pattern '(unclosed'")):
        regex("(unclosed")


@pytest.mark.parametrize(
    ("completion", "gold", "answer", "correct"),
    [
        ("The capital of France is Paris.", "Paris", "paris", True),
        ("Parisian food", "Paris", None, False),  # whole words only
        ("It is New York City!", "new york", "new york", True),
        ("York", "New York", None, False),
    ],
)
def test_contains(completion, gold, answer, correct):
    assert contains().extract_and_grade(completion, _item(gold)) == (answer, correct)


def test_graders_are_callables_of_completion_and_item():
    item = _item("5")
    for grader in (exact_match(), final_number(), contains(), regex(r"\d")):
        assert grader("5", item) is True and grader("6", item) is False
    assert repr(final_number()) == "AnswerGrader('number')"


def test_the_name_map_builds_graders_from_the_items():
    yes_no = [_item("yes"), TaskItem(prompt="r", gold="No")]
    assert sorted(GRADERS) == ["choice", "contains", "exact", "label", "number"]
    label = grader_named("label", yes_no)
    assert label("no", yes_no[1]) and not label("yes or no", yes_no[1])
    letters = [_item("B"), TaskItem(prompt="r", gold="F")]
    choice = grader_named("choice", letters)
    assert choice("Answer: F", letters[1]) and not choice("Answer: G", letters[1])
    assert grader_named("choice", [_item("A")])("Answer: D", _item("D"))  # at least ABCD
    assert grader_named(r"regex:=\s*(\d+)", [])("2 + 3 = 5", _item("5"))
    with pytest.raises(ValueError, match=r"unknown grader 'first_word'; choose one of \["):
        grader_named("first_word", [])


def test_resolve_grader_takes_a_name_or_a_function():
    def starts_with_gold(completion: str, item: TaskItem) -> bool:
        return completion.startswith(item.gold)

    assert resolve_grader(starts_with_gold, []) is starts_with_gold
    assert isinstance(resolve_grader("exact", []), AnswerGrader)
    with pytest.raises(TypeError, match="grader must be a name .* or a function"):
        unchecked(resolve_grader)(42, [])


def test_a_task_records_the_answer_of_an_answer_grader_and_none_for_a_plain_function():
    item = _item("Paris")
    by_name = Task("caps", {"train": [item]}, grader=contains())
    assert by_name.extract_and_grade("It is Paris.", item) == ("paris", True)

    def alias(completion: str, item: TaskItem) -> bool:
        return any(a in completion for a in (item.gold, "City of Light"))

    plain = Task("caps", {"train": [item]}, grader=alias)
    assert plain.extract_and_grade("the City of Light", item) == (None, True)
    assert plain.grade("London", item) is False
