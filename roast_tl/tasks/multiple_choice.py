"""Multiple choice with letter answers (MMLU / TruthfulQA-style rows `{"question", "choices", "answer"}`)."""

import os
import string
from functools import partial
from pathlib import Path

from roast_tl.tasks.base import Task, TaskItem, split_items
from roast_tl.tasks.grading import extract_choice_letter
from roast_tl.tasks.jsonl import read_jsonl_rows, require


def load_multiple_choice(
    path: str | os.PathLike[str],
    *,
    n_dev: int = 20,
    n_test: int = 50,
    seed: int = 0,
    name: str = "multiple_choice",
) -> Task:
    """Load letter-answer multiple choice; `answer` is a 0-based index or a letter."""
    source = Path(path)
    items: list[TaskItem] = []
    max_choices = 0
    for number, row in read_jsonl_rows(source):
        where = f"{source}:{number}"
        question = require(row, "question", where)
        choices = require(row, "choices", where)
        answer = require(row, "answer", where)
        if not isinstance(choices, list) or not 2 <= len(choices) <= 26:
            raise ValueError(f"{where}: 'choices' must be a list of 2 to 26 strings")
        letters = string.ascii_uppercase[: len(choices)]
        if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
            gold = letters[answer]
        elif isinstance(answer, str) and answer.strip().upper() in letters and answer.strip():
            gold = answer.strip().upper()
        else:
            raise ValueError(f"{where}: 'answer' must be an index < {len(choices)} or a letter in {letters}, got {answer!r}")
        max_choices = max(max_choices, len(choices))
        listing = "\n".join(f"{letter}. {choice}" for letter, choice in zip(letters, choices, strict=True))
        wrong = next(letter for letter in letters if letter != gold)
        items.append(TaskItem(
            id=f"{name}-{number}",
            prompt=f"{question}\n{listing}\nAnswer with the letter of the correct choice.",
            gold=gold, gold_completion=f"Answer: {gold}", wrong_completion=f"Answer: {wrong}",
        ))
    splits = split_items(items, n_dev=n_dev, n_test=n_test, seed=seed)
    extract = partial(extract_choice_letter, letters=string.ascii_uppercase[:max_choices])
    return Task(name=name, splits=splits, extract_answer=extract, max_new_tokens=8,
                few_shot=splits["train"][:3])
