"""GSM8K-format math word problems (`{"question", "answer"}` rows, answers end with `#### N`)."""

import os
import re
from decimal import Decimal, localcontext
from importlib.resources import files
from pathlib import Path

from roast_tl._io import read_jsonl, require
from roast_tl.tasks.base import Task, TaskItem, drop_repeated_prompts, split_items
from roast_tl.tasks.grading import (
    MAX_NUMBER_DIGITS,
    extract_final_number,
    gsm8k_gold,
    normalize_number,
)

INSTRUCTION = (
    "Solve the problem step by step, then give the final answer on its own line as '#### <number>'."
)
_CALCULATOR = re.compile(r"<<[^>]*>>")


def shipped_gsm8k_path() -> Path:
    """The GSM8K train split shipped with roast_tl (MIT licence, see data/gsm8k/LICENSE)."""
    return Path(str(files("roast_tl") / "data" / "gsm8k" / "train.jsonl"))


def wrong_number(gold: str) -> str:
    """A deterministic wrong answer: the gold number plus one ("72" -> "73", "2.5" -> "3.5").

    Exact for every gold `normalize_number` accepts (the default 28-digit decimal precision
    would round "1e400" + 1 back to "1e400").

    >>> wrong_number("72"), wrong_number("2.5"), wrong_number("-1")
    ('73', '3.5', '0')
    """
    with localcontext() as context:
        context.prec = 2 * MAX_NUMBER_DIGITS + 4  # more digits than any accepted gold has
        wrong = normalize_number(str(Decimal(gold) + 1))
    if wrong is None or wrong == gold:
        raise ValueError(
            f"cannot write a wrong answer for gold {gold[:40]!r}: gold + 1 is not a plain "
            f"number of at most {MAX_NUMBER_DIGITS} digits; use a shorter gold number"
        )
    return wrong


def load_gsm8k(
    path: str | os.PathLike[str] | None = None,
    *,
    n_dev: int = 50,
    n_test: int = 200,
    seed: int = 0,
    n_items: int | None = None,
) -> Task:
    """Load GSM8K-format JSONL (default: the shipped train split) into disjoint splits.

    `n_items` reads only the first that many problems; a question repeated word for word is
    kept once (with a `RoastWarning`), so that no prompt sits in two splits. A final number
    that is not a plain number of at most `MAX_NUMBER_DIGITS` digits is refused with its
    file:line. The gold completion is the worked
    answer without `<<...>>` calculator notes; the wrong completion is the same worked answer
    with a final number off by one.
    """
    if n_items is not None and n_items < 1:
        raise ValueError(
            f"n_items must be a positive number of problems or None (all), got {n_items}"
        )
    source = Path(path) if path is not None else shipped_gsm8k_path()
    items: list[TaskItem] = []
    for number, row in read_jsonl(source):
        where = f"{source}:{number}"
        question = require(row, "question", where)
        answer = require(row, "answer", where)
        if not isinstance(question, str) or not isinstance(answer, str):
            raise ValueError(f"{where}: 'question' and 'answer' must be strings")
        try:
            gold = gsm8k_gold(answer)
            wrong = wrong_number(gold)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        worked = _CALCULATOR.sub("", answer).strip()
        body = worked.rsplit("####", 1)[0].rstrip()
        items.append(
            TaskItem(
                id=f"gsm8k-{number}",
                prompt=f"{question.strip()}\n{INSTRUCTION}",
                gold=gold,
                gold_completion=worked,
                wrong_completion=f"{body}\n#### {wrong}",
            )
        )
        if n_items is not None and len(items) >= n_items:
            break
    items = drop_repeated_prompts(items, str(source))
    splits = split_items(items, n_dev=n_dev, n_test=n_test, seed=seed)
    return Task(
        name="gsm8k",
        splits=splits,
        extract_answer=extract_final_number,
        max_new_tokens=256,
        few_shot=splits["train"][:3],
    )
