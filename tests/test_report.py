"""The yield report: hand-computed numbers and block, its warnings' exact conditions, the gold
self-check, and a JSON round trip (it lives in the vector's metadata)."""

import json

import pytest

from roast_tl._warnings import LowYieldWarning, RoastWarning
from roast_tl.pairs import build_contrast_set
from roast_tl.report import GoldCheck, GradedExample, YieldReport, check_gold
from roast_tl.tasks.base import Task, TaskItem
from tests.tiny_model import make_rollout, make_tiny_tokenizer, tiny_task

# Grades of each item's rollouts, in rollout order; q6 has none.
GRADES = {
    "q0": [True, False, False, False],  # pass rate 1/4: a real contrast, 1 x 3 pairs
    "q1": [True, True, False, False],  # 1/2: 2 x 2 pairs
    "q2": [True, True, True, False],  # 3/4: 3 x 1 pairs
    "q3": [False, False, False, False],  # 0: gold fallback, the written gold x 4 wrong
    "q4": [True, True, True, True],  # 1: wrong fallback, 4 correct x the written wrong
    "q5": [True] * 7 + [False],  # 7/8: 7 x 1 pairs
}


@pytest.fixture(scope="module")
def tokenizer():
    return make_tiny_tokenizer()


def _rollouts(grades):
    """Rollouts in item order; completion "<item> <k>", answer "even"/"odd" by grade."""
    return [
        make_rollout(
            item_id,
            ok,
            index=k,
            completion=f"{item_id} answer {k}",
            answer="even" if ok else "odd",
        )
        for item_id, oks in grades.items()
        for k, ok in enumerate(oks)
    ]


def _report(tokenizer, grades, *, n_items=None, strict=False, gold_check=None):
    items = tiny_task(n_train=n_items or len(grades)).items("train")
    rollouts = _rollouts(grades)
    contrasts = build_contrast_set(rollouts, items, tokenizer=tokenizer, strict=strict)
    return YieldReport.build(rollouts, items, contrasts, gold_check=gold_check)


def test_report_of_a_fixed_rollout_list_is_hand_computed(tokenizer):
    report = _report(tokenizer, GRADES, n_items=7)
    assert (report.n_items, report.n_rollouts, report.n_correct) == (7, 28, 17)
    assert report.rollout_accuracy == 17 / 28
    assert report.rollouts_per_prompt == (4, 8)
    assert report.pass_rate_histogram == {
        "0": 1,  # q3
        "(0,.25]": 1,  # q0
        "(.25,.5]": 1,  # q1
        "(.5,.75]": 1,  # q2
        "(.75,1)": 1,  # q5
        "1": 1,  # q4
    }
    assert report.group_counts == {
        "gold_fallback": 1,
        "no_rollouts": 1,
        "rollouts": 4,
        "wrong_fallback": 1,
    }
    assert report.shares == {k: n / 7 for k, n in report.group_counts.items()}
    assert (report.n_groups, report.n_fallbacks) == (6, 2)
    assert report.n_pairs == 3 + 4 + 3 + 4 + 4 + 7
    assert report.pairs_per_group == {
        "gold_fallback": 4.0,
        "rollouts": (3 + 4 + 3 + 7) / 4,
        "wrong_fallback": 4.0,
    }
    # The first two rollouts graded correct and wrong, in rollout order.
    assert report.correct_examples == (
        GradedExample("q0", "q0 answer 0", "even", "even"),
        GradedExample("q1", "q1 answer 0", "even", "even"),
    )
    assert report.wrong_examples == (
        GradedExample("q0", "q0 answer 1", "odd", "even"),
        GradedExample("q0", "q0 answer 2", "odd", "even"),
    )
    assert report.gold_check is None and report.problems() == []


def test_the_printed_block_is_compact_and_shows_the_grader_at_work(tokenizer):
    gold_check = GoldCheck(7, 0)
    report = _report(tokenizer, GRADES, n_items=7, gold_check=gold_check)
    assert str(report) == "\n".join(
        [
            "yield report: 7 prompts x 4-8 rollouts, rollout accuracy 0.607 (17/28)",
            "  pass rate per prompt: 0: 1  (0,.25]: 1  (.25,.5]: 1  (.5,.75]: 1  (.75,1): 1  1: 1",
            "  prompts per path: rollouts 4 (57%), gold_fallback 1 (14%), no_rollouts 1 (14%), "
            "wrong_fallback 1 (14%)",
            "  pairs: 25 (per group: gold_fallback 4.0, rollouts 4.2, wrong_fallback 4.0)",
            "  gold self-check: 7 of 7 graded correct",
            "  graded correct: q0 'q0 answer 0' -> 'even' (gold 'even')",
            "                  q1 'q1 answer 0' -> 'even' (gold 'even')",
            "  graded wrong:   q0 'q0 answer 1' -> 'odd' (gold 'even')",
            "                  q0 'q0 answer 2' -> 'odd' (gold 'even')",
        ]
    )


def test_long_completions_are_cut_in_the_block_and_the_metadata(tokenizer):
    long = "word " * 100
    items = tiny_task(n_train=1).items("train")
    rollouts = [make_rollout("q0", False, completion=long), make_rollout("q0", True, index=1)]
    contrasts = build_contrast_set(rollouts, items, tokenizer=tokenizer)
    report = YieldReport.build(rollouts, items, contrasts)
    assert len(report.wrong_examples[0].completion) == 200
    assert max(len(line) for line in str(report).splitlines()) <= 100


KINDS = {
    "gold": "own gold_completion",
    "n_rollouts": "n_rollouts < 2",
    "accuracy": "rollout accuracy is",
    "fallbacks": "contrast groups are fallbacks",
}


def _kinds(problems):
    found = {kind for kind, phrase in KINDS.items() for p in problems if phrase in p}
    assert len(found) == len(problems), problems  # each message is one kind
    return found


T, F = True, False


@pytest.mark.parametrize(
    ("grades", "strict", "expected"),
    [
        pytest.param({"q0": [T, F], "q1": [F, T]}, False, set(), id="healthy"),
        pytest.param({"q0": [T, F], "q1": [F, F]}, False, set(), id="half-fallbacks"),
        pytest.param(
            {"q0": [T, F], "q1": [F, F], "q2": [T, T]}, False, {"fallbacks"}, id="2-of-3-fallbacks"
        ),
        pytest.param({"q0": [T], "q1": [T, F]}, False, set(), id="one-prompt-has-2-rollouts"),
        pytest.param({"q0": [F], "q1": [T]}, False, {"n_rollouts", "fallbacks"}, id="n_rollouts-1"),
        pytest.param({"q0": [F, F], "q1": [F, F]}, False, {"accuracy", "fallbacks"}, id="acc-0"),
        pytest.param({"q0": [T, T], "q1": [T, T]}, False, {"accuracy", "fallbacks"}, id="acc-1"),
        pytest.param({"q0": [F, F], "q1": [F, T]}, True, set(), id="strict-some-contrast"),
        pytest.param({"q0": [F, F], "q1": [F, F]}, True, {"accuracy"}, id="strict-acc-0"),
        pytest.param({"q0": [F], "q1": [F]}, True, {"n_rollouts", "accuracy"}, id="strict-n1"),
    ],
)
def test_each_warning_fires_exactly_on_its_condition(tokenizer, grades, strict, expected):
    assert _kinds(_report(tokenizer, grades, strict=strict).problems()) == expected


def test_the_fallback_message_names_the_counts_and_the_ways_out(tokenizer):
    (message,) = _report(tokenizer, {"q0": [T, F], "q1": [F, F], "q2": [T, T]}).problems()
    assert message.startswith("2 of 3 contrast groups are fallbacks ")
    assert "{'gold_fallback': 1, 'wrong_fallback': 1}" in message
    assert "check the grader" in message and "strict=True" in message


def _capitals(extract):
    items = [
        TaskItem("fr", "Capital of France?", "Paris", "The capital of France is Paris."),
        TaskItem("it", "Capital of Italy?", "Rome", "Rome."),
        TaskItem("de", "Capital of Germany?", "Berlin", "Berlin"),
    ]
    return Task("capitals", {"train": items}, extract, 8), items


def test_gold_self_check_counts_the_gold_completions_the_grader_fails():
    def first_word(text):
        return text.split()[0] if text.split() else None

    task, items = _capitals(first_word)
    check = check_gold(task, items)
    assert (check.n_items, check.failed) == (3, 2)  # "The", "Rome." fail; "Berlin" passes
    assert check.example == GradedExample("fr", "The capital of France is Paris.", "The", "Paris")
    (message,) = check.problems()
    assert message.startswith("the grader marks 2 of 3 items' own gold_completion wrong (e.g. ")
    assert "'The' (gold 'Paris')" in message

    task, items = _capitals(lambda text: text.lower().strip(". "))  # lower-cased: none match
    (message,) = check_gold(task, items).problems()
    assert message.startswith("the grader marks none of the 3 items' own gold_completion correct")

    task, items = _capitals(lambda text: text.rstrip(".").split()[-1])  # the last word
    assert check_gold(task, items) == GoldCheck(3, 0) and check_gold(task, items).problems() == []


def test_a_failed_gold_check_is_a_problem_of_the_report_unless_left_out(tokenizer):
    report = _report(tokenizer, {"q0": [T, F]}, gold_check=GoldCheck(1, 1, None))
    assert _kinds(report.problems()) == {"gold"}
    assert report.problems(include_gold=False) == []


def test_as_dict_is_json_and_from_dict_gives_the_report_back(tokenizer):
    gold = GoldCheck(7, 2, GradedExample("q0", "good", "odd", "even"))
    report = _report(tokenizer, GRADES, n_items=7, gold_check=gold)
    row = report.as_dict()
    assert json.loads(json.dumps(row, allow_nan=False)) == row  # plain JSON, no tuples or NaN
    assert row["rollout_accuracy"] == 17 / 28 and row["shares"]["rollouts"] == 4 / 7
    back = YieldReport.from_dict(json.loads(json.dumps(row)))
    assert back == report and str(back) == str(report)
    no_check = _report(tokenizer, GRADES, n_items=7)
    assert YieldReport.from_dict(json.loads(json.dumps(no_check.as_dict()))) == no_check


def test_a_report_without_rollouts_has_no_accuracy_and_no_problems(tokenizer):
    report = _report(tokenizer, {}, n_items=2)
    assert report.rollout_accuracy is None and report.as_dict()["rollout_accuracy"] is None
    assert report.group_counts == {"no_rollouts": 2} and report.problems() == []
    assert "rollout accuracy n/a (0/0)" in str(report)


def test_low_yield_warning_is_a_roast_warning():
    assert issubclass(LowYieldWarning, RoastWarning)
    assert "fallback" in (LowYieldWarning.__doc__ or "")
