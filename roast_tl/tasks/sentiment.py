"""Binary review sentiment (SST-2-style rows `{"sentence": str, "label": 0 | 1}`, 1 = positive)."""

import os
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

from roast_tl._io import read_jsonl, require
from roast_tl.tasks.base import Task, TaskItem, drop_repeated_prompts, split_items
from roast_tl.tasks.grading import extract_label

INSTRUCTION = "Is the sentiment of this review positive or negative? Answer with one word."
LABELS = ("negative", "positive")  # index = SST-2 label


def shipped_reviews_path() -> Path:
    """The review set shipped with roast_tl (generated for this project; CC0)."""
    return Path(str(files("roast_tl") / "data" / "sentiment" / "reviews.jsonl"))


def sentiment_item(item_id: str, sentence: str, label: int) -> TaskItem:
    """Build one sentiment prompt; the wrong answer is the other label."""
    gold = LABELS[label]
    return TaskItem(
        id=item_id,
        prompt=f"Review: {sentence}\n{INSTRUCTION}",
        gold=gold,
        gold_completion=gold.capitalize(),
        wrong_completion=LABELS[1 - label].capitalize(),
    )


def _parse(row: dict[str, Any], where: str) -> tuple[str, int]:
    """Check one row and return (sentence, label); errors name `where` (file:line or rows[i])."""
    sentence = require(row, "sentence", where)
    label = require(row, "label", where)
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(f"{where}: 'sentence' must be a non-empty string")
    if label not in (0, 1) or isinstance(label, bool):
        raise ValueError(f"{where}: 'label' must be 0 (negative) or 1 (positive), got {label!r}")
    return sentence.strip(), int(label)


def load_sentiment(
    path: str | os.PathLike[str] | None = None,
    *,
    rows: Iterable[dict[str, Any]] | None = None,
    n_dev: int = 40,
    n_test: int = 100,
    seed: int = 0,
) -> Task:
    """Load the sentiment task from `path`, from `rows` (e.g. an installed `datasets` SST-2), or
    from the shipped review set; carve disjoint train/dev/test splits with `seed`.

    A review repeated word for word (SST-2 has some) is kept once, its first occurrence, with a
    `RoastWarning` saying how many were dropped, so that no review sits in two splits.
    """
    if rows is not None and path is not None:
        raise TypeError("load_sentiment takes a path or rows=, not both; drop one of them")
    if rows is not None:
        parsed = [_parse(dict(r), f"rows[{i}]") for i, r in enumerate(rows)]
        source = "load_sentiment(rows=...)"
    else:
        path = Path(path) if path is not None else shipped_reviews_path()
        parsed = [_parse(r, f"{path}:{n}") for n, r in read_jsonl(path)]
        source = str(path)
    items = [sentiment_item(f"sentiment-{i}", s, label) for i, (s, label) in enumerate(parsed)]
    items = drop_repeated_prompts(items, source)
    splits = split_items(items, n_dev=n_dev, n_test=n_test, seed=seed)
    positives = [i for i in splits["train"] if i.gold == "positive"][:2]
    negatives = [i for i in splits["train"] if i.gold == "negative"][:2]
    # 8, not 4: small chat models answer "The sentiment of this review is positive." (7 tokens).
    return Task(
        name="sentiment",
        splits=splits,
        extract_answer=extract_label,
        max_new_tokens=8,
        few_shot=[x for pair in zip(positives, negatives, strict=False) for x in pair],
    )
