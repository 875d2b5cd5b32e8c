"""Multiple choice with letter answers.

MMLU / TruthfulQA-style rows: `{"question", "choices", "answer"}`.
"""

import os
import string
from functools import partial
from pathlib import Path
from typing import Any

from roast_tl._io import read_jsonl, require
from roast_tl.tasks.base import Task, TaskItem, drop_repeated_prompts, split_items
from roast_tl.tasks.grading import extract_choice_letter

INSTRUCTION = "Answer with the letter of the correct choice."


def _gold_letter(answer: Any, letters: str, where: str) -> str:
    """The gold letter of a row whose `answer` is a 0-based index or a letter ("B" or "b")."""
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(letters):
        return letters[answer]
    if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in letters:
        return answer.strip().upper()
    raise ValueError(
        f"{where}: 'answer' must be a 0-based index below {len(letters)} or one letter of "
        f"{letters!r}, got {answer!r}"
    )


def multiple_choice_item(item_id: str, row: dict[str, Any], where: str) -> TaskItem:
    """Build one lettered prompt from a row; the wrong completion names the first other letter."""
    question = require(row, "question", where)
    choices = require(row, "choices", where)
    answer = require(row, "answer", where)
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: 'question' must be a non-empty string")
    if (
        not isinstance(choices, list)
        or not 2 <= len(choices) <= 26
        or not all(isinstance(c, str) for c in choices)
    ):
        raise ValueError(f"{where}: 'choices' must be a list of 2 to 26 strings, got {choices!r}")
    letters = string.ascii_uppercase[: len(choices)]
    gold = _gold_letter(answer, letters, where)
    listing = "\n".join(
        f"{letter}. {choice}" for letter, choice in zip(letters, choices, strict=True)
    )
    wrong = next(letter for letter in letters if letter != gold)
    return TaskItem(
        id=item_id,
        prompt=f"{question.strip()}\n{listing}\n{INSTRUCTION}",
        gold=gold,
        gold_completion=f"Answer: {gold}",
        wrong_completion=f"Answer: {wrong}",
    )


def load_multiple_choice(
    path: str | os.PathLike[str] | None = None,
    *,
    n_dev: int = 20,
    n_test: int = 50,
    seed: int = 0,
    name: str = "multiple_choice",
) -> Task:
    """Load letter-answer multiple choice from JSONL; `answer` is a 0-based index or a letter.

    The grader accepts only letters that some question offers, and never a first-character match.
    A question repeated word for word with the same choices is kept once (with a `RoastWarning`).
    """
    if path is None:
        raise ValueError(
            "task 'multiple_choice' has no shipped data; pass path= a JSONL file of "
            '{"question", "choices", "answer"} rows'
        )
    source = Path(path)
    rows = read_jsonl(source)
    items = [multiple_choice_item(f"{name}-{n}", row, f"{source}:{n}") for n, row in rows]
    items = drop_repeated_prompts(items, str(source))
    n_letters = max(len(row["choices"]) for _, row in rows) if rows else 0
    splits = split_items(items, n_dev=n_dev, n_test=n_test, seed=seed)
    extract = partial(extract_choice_letter, letters=string.ascii_uppercase[:n_letters])
    return Task(
        name=name,
        splits=splits,
        extract_answer=extract,
        max_new_tokens=8,
        few_shot=splits["train"][:3],
    )
