"""ROC contrast groups, built from rollouts and a tokenizer alone (no model runs here)."""

import warnings

import pytest

from roast_tl._tokens import encode_prompt
from roast_tl._warnings import RoastWarning
from roast_tl.pairs import (
    ContrastGroup,
    ContrastSet,
    build_contrast_set,
    rollout_tokens,
    teacher_forced_contrast,
    written_answer_tokens,
)
from roast_tl.tasks.base import TaskItem
from tests.tiny_model import make_rollout, make_tiny_tokenizer, unchecked


def _quietly(function, *args, **kwargs):
    """Call `function`, failing on any warning it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tiny_tokenizer()


def _item(item_id, wrong="bad"):
    return TaskItem(item_id, "the movie", "a", "good", wrong)


ITEMS = [
    _item("both"),
    _item("none_right"),
    _item("none_wrong"),
    _item("none_wrong_no_fallback", wrong=None),
    _item("no_rollouts"),
]
ROLLOUTS = [
    make_rollout("both", True),
    make_rollout("both", True, index=1, completion_token_ids=[9]),
    make_rollout("both", False, index=2),
    make_rollout("none_right", False),
    make_rollout("none_wrong", True),
    make_rollout("none_wrong_no_fallback", True),
]


def test_groups_pair_each_prompts_correct_with_its_incorrect_rollouts(tokenizer):
    contrasts = _quietly(build_contrast_set, ROLLOUTS, ITEMS, tokenizer=tokenizer)
    both = contrasts.groups[0]
    assert (both.item_id, both.kind, both.weight) == ("both", "rollouts", 1.0)
    assert both.positives == [([5, 6], [7]), ([5, 6], [9])]
    assert both.negatives == [([5, 6], [8])]
    assert both.n_pairs == 2


def test_fallbacks_weights_and_counts(tokenizer):
    contrasts = build_contrast_set(ROLLOUTS, ITEMS, tokenizer=tokenizer, fallback_weight=0.25)
    assert contrasts.counts == {
        "gold_fallback": 1,
        "no_rollouts": 1,
        "rollouts": 1,
        "skipped_no_negative": 1,
        "wrong_fallback": 1,
    }
    groups = {g.item_id: g for g in contrasts.groups}
    assert list(groups) == ["both", "none_right", "none_wrong"]  # in item order
    assert {k: g.weight for k, g in groups.items()} == {
        "both": 1.0,
        "none_right": 0.25,
        "none_wrong": 0.25,
    }
    # A written answer follows the prompt ids its rollouts saw ([5, 6] here, not the item's
    # re-encoded prompt), so a fallback is formatted as they were (chat template or plain).
    prompt = [5, 6]
    assert prompt != encode_prompt(tokenizer, "the movie")
    good, bad, eos = (tokenizer.convert_tokens_to_ids(w) for w in ("good", "bad", "</s>"))
    # No correct rollout: the written gold answer (plus end of turn) is the positive.
    assert groups["none_right"].kind == "gold_fallback"
    assert groups["none_right"].positives == [(prompt, [good, eos])]
    assert groups["none_right"].negatives == [([5, 6], [8])]
    # No incorrect rollout: the written wrong answer is the negative.
    assert groups["none_wrong"].kind == "wrong_fallback"
    assert groups["none_wrong"].positives == [([5, 6], [7])]
    assert groups["none_wrong"].negatives == [(prompt, [bad, eos])]
    assert contrasts.n_pairs == 2 + 1 + 1


def test_strict_mode_skips_every_fallback_prompt(tokenizer):
    strict = build_contrast_set(ROLLOUTS, ITEMS, tokenizer=tokenizer, strict=True)
    assert [g.item_id for g in strict.groups] == ["both"]
    assert strict.counts == {"no_rollouts": 1, "rollouts": 1, "skipped_strict": 3}


@pytest.mark.parametrize("weight", [0.0, -0.5, 1.5])
def test_fallback_weight_must_be_in_the_unit_interval(tokenizer, weight):
    with pytest.raises(ValueError, match=r"fallback_weight must be in \(0, 1\]"):
        build_contrast_set(ROLLOUTS, ITEMS, tokenizer=tokenizer, fallback_weight=weight)


def test_rollouts_without_ids_are_tokenized_from_their_texts(tokenizer):
    """Another engine (HF, vLLM) may save only texts: the tokenizer fills in the ids."""
    foreign = make_rollout(
        "q", True, prompt_token_ids=[], completion_token_ids=[], completion="good movie"
    )
    ids = tokenizer.convert_tokens_to_ids
    assert rollout_tokens(tokenizer, foreign) == (
        [tokenizer.bos_token_id, *ids(["the", "movie"])],
        ids(["good", "movie"]),
    )
    assert rollout_tokens(tokenizer, make_rollout("q", True)) == ([5, 6], [7])


def test_written_answers_are_teacher_forced_after_the_formatted_prompt(tokenizer):
    prompt, answer = written_answer_tokens(tokenizer, _item("x"), "good movie")
    ids = tokenizer.convert_tokens_to_ids
    assert prompt == [tokenizer.bos_token_id, *ids(["the", "movie"])]
    assert answer == [*ids(["good", "movie"]), tokenizer.eos_token_id]


def test_teacher_forced_contrast_is_written_gold_vs_written_wrong(tokenizer):
    items = [_item("a"), _item("no_wrong", wrong=None), _item("b")]
    contrasts = teacher_forced_contrast(tokenizer, items)
    assert contrasts.counts == {"teacher_forced": 2, "skipped_no_negative": 1}
    assert [(g.item_id, g.kind, g.weight) for g in contrasts.groups] == [
        ("a", "teacher_forced", 1.0),
        ("b", "teacher_forced", 1.0),
    ]
    group = contrasts.groups[0]
    assert group.positives == [written_answer_tokens(tokenizer, items[0], "good")]
    assert group.negatives == [written_answer_tokens(tokenizer, items[0], "bad")]
    assert teacher_forced_contrast(tokenizer, items[1:2]).groups == []
    assert teacher_forced_contrast(tokenizer, items[::2]).counts == {"teacher_forced": 2}


def test_pair_counts():
    group = ContrastGroup("g", [([1], [2])] * 3, [([1], [3])] * 2, 1.0, "rollouts")
    assert group.n_pairs == 6
    assert ContrastSet([group, group]).n_pairs == 12 and ContrastSet([]).n_pairs == 0


# Rollouts meet the tokenizer here: ids are checked, unknown item ids are counted and warned.


def test_rollouts_of_unknown_items_are_counted_and_warned(tokenizer):
    extra = [make_rollout("not_in_items", False), make_rollout("not_in_items", True, index=1)]
    with pytest.warns(
        RoastWarning, match=r"2 rollout\(s\) of 1 item id\(s\) match none of the 5 items"
    ):
        contrasts = build_contrast_set(ROLLOUTS + extra, ITEMS, tokenizer=tokenizer)
    assert contrasts.counts["unknown_item"] == 1
    assert (
        contrasts.groups
        == _quietly(build_contrast_set, ROLLOUTS, ITEMS, tokenizer=tokenizer).groups
    )


def test_an_int_item_id_never_matches_and_the_warning_says_why(tokenizer):
    # A foreign engine wrote item ids as ints: they match no (string) item id (finding S2).
    items = [TaskItem("5", "the movie", "a", "good", "bad")]
    rollouts = [make_rollout("5", True), make_rollout("5", False)]
    for rollout in rollouts:
        rollout.item_id = 5  # as loaded from {"item_id": 5}
    with pytest.warns(
        RoastWarning, match="match none of the 1 items.*a rollout's int id never matches"
    ):
        contrasts = build_contrast_set(rollouts, items, tokenizer=tokenizer)
    assert contrasts.counts == {"no_rollouts": 1, "unknown_item": 1}
    assert contrasts.groups == []


@pytest.mark.parametrize(
    "field,ids,message",
    [
        (
            "completion_token_ids",
            [7, 10_000],
            r"outside this tokenizer's vocabulary \[0, 63\) \(e\.g\. 10000\)",
        ),
        ("completion_token_ids", [63], r"vocabulary \[0, 63\) \(e\.g\. 63\)"),
        (
            "prompt_token_ids",
            [-1, 5],
            r"prompt_token_ids holds 1 token id\(s\) outside .*e\.g\. -1",
        ),
        ("completion_token_ids", "7 8", "completion_token_ids must be a list of int token ids"),
        ("completion_token_ids", [7.0], "must be a list of int token ids"),
        ("prompt_token_ids", [True, 5], "prompt_token_ids must be a list of int token ids"),
    ],
)
def test_token_ids_outside_the_vocabulary_or_not_ints_name_the_rollout(
    tokenizer, field, ids, message
):
    assert len(tokenizer) == 63  # the tiny word-level vocabulary
    bad = make_rollout("both", False, index=2)
    setattr(bad, field, ids)  # as loaded from another engine's JSONL
    rollouts = [r for r in ROLLOUTS if r.item_id != "both" or r.sample_index != 2] + [bad]
    with pytest.raises(ValueError, match=rf"rollout 2 of item 'both': .*{message}"):
        build_contrast_set(rollouts, ITEMS, tokenizer=tokenizer)
    with pytest.raises(ValueError, match=message):
        rollout_tokens(tokenizer, bad)


def test_the_last_id_of_the_vocabulary_is_accepted(tokenizer):
    rollout = make_rollout("q", True, completion_token_ids=[62, 0])
    assert rollout_tokens(tokenizer, rollout) == ([5, 6], [62, 0])


def test_a_missing_written_answer_is_an_error_naming_the_item(tokenizer):
    # TaskItem refuses gold_completion=None itself; this guards items built around it.
    item = _item("none_right")
    object.__setattr__(item, "gold_completion", None)
    with pytest.raises(TypeError, match="item 'none_right': the written answer .* got None"):
        unchecked(written_answer_tokens)(tokenizer, item, item.gold_completion)
    with pytest.raises(TypeError, match="none_right"):
        build_contrast_set([make_rollout("none_right", False)], [item], tokenizer=tokenizer)


def test_items_with_repeated_ids_are_refused(tokenizer):
    items = [_item("a"), _item("b"), _item("a")]
    with pytest.raises(ValueError, match=r"build_contrast_set items: item ids repeat: 'a' \(2"):
        build_contrast_set(ROLLOUTS, items, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="teacher_forced_contrast items: item ids repeat"):
        teacher_forced_contrast(tokenizer, items)
