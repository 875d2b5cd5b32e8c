"""Tasks: prompts, gold answers, strict graders, disjoint splits; your own via `Task.from_pairs`
or `load_task("jsonl", path=...)`."""

from collections.abc import Callable
from typing import Any

from roast_tl.tasks.arithmetic import load_arithmetic
from roast_tl.tasks.base import (
    SPLITS,
    Task,
    TaskItem,
    check_item_ids,
    drop_repeated_prompts,
    split_items,
)
from roast_tl.tasks.graders import GRADERS, grader_named
from roast_tl.tasks.gsm8k import load_gsm8k
from roast_tl.tasks.jsonl import load_jsonl
from roast_tl.tasks.multiple_choice import load_multiple_choice
from roast_tl.tasks.sentiment import load_sentiment

LOADERS: dict[str, Callable[..., Task]] = {
    "sentiment": load_sentiment,
    "gsm8k": load_gsm8k,
    "multiple_choice": load_multiple_choice,
    "arithmetic": load_arithmetic,
    "jsonl": load_jsonl,
}


def load_task(name: str, /, **kwargs: Any) -> Task:
    """Load a task by name: "sentiment", "gsm8k", "arithmetic", "multiple_choice" (needs path=)
    or "jsonl" (your own prompt/answer rows: path=, prompt_field=, answer_field=, grader=).

    The keyword arguments go to the task's loader (`load_sentiment`, ..., `load_jsonl`).
    """
    if name not in LOADERS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(LOADERS)}")
    return LOADERS[name](**kwargs)


__all__ = [
    "GRADERS",
    "LOADERS",
    "SPLITS",
    "Task",
    "TaskItem",
    "check_item_ids",
    "drop_repeated_prompts",
    "grader_named",
    "load_arithmetic",
    "load_gsm8k",
    "load_jsonl",
    "load_multiple_choice",
    "load_sentiment",
    "load_task",
    "split_items",
]
