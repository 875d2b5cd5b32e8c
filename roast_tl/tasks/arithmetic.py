"""Generated arithmetic problems ("What is 7 + 5? Reply with the number only."), seeded."""

import random

from roast_tl.tasks.base import Task, TaskItem, split_items
from roast_tl.tasks.grading import extract_final_number


def load_arithmetic(
    *,
    n_items: int | None = None,
    digits: int = 1,
    ops: str = "+-",
    n_dev: int = 30,
    n_test: int = 60,
    seed: int = 0,
) -> Task:
    """Generate `n_items` distinct problems (default: all that exist, at most 300) with
    `digits`-digit operands and operators from `ops`.

    Distinct, so that no problem sits in two splits; one-digit `+-` has only 200.
    """
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    if not ops or set(ops) - set("+-*"):
        raise ValueError(
            f"ops must be a non-empty string of '+', '-', '*' (e.g. '+-'), got {ops!r}"
        )
    rng = random.Random(seed)
    low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1
    possible = (high - low + 1) ** 2 * len(ops)
    n_items = min(300, possible) if n_items is None else n_items
    if not 1 <= n_items <= possible:
        raise ValueError(
            f"n_items={n_items}, but only {possible} distinct problems exist for digits={digits}, "
            f"ops={ops!r}; ask for fewer items, more digits or more ops"
        )
    seen: set[tuple[int, str, int]] = set()
    items: list[TaskItem] = []
    while len(items) < n_items:
        a, b, op = rng.randint(low, high), rng.randint(low, high), rng.choice(ops)
        if (a, op, b) in seen:
            continue
        seen.add((a, op, b))
        value = a + b if op == "+" else a - b if op == "-" else a * b
        items.append(
            TaskItem(
                id=f"arith-{a}{op}{b}",
                prompt=f"What is {a} {op} {b}? Reply with the number only.",
                gold=str(value),
                gold_completion=str(value),
                wrong_completion=str(value + 1),
            )
        )
    splits = split_items(items, n_dev=n_dev, n_test=n_test, seed=seed)
    return Task(
        name=f"arithmetic{digits}",
        splits=splits,
        extract_answer=extract_final_number,
        max_new_tokens=8,
        few_shot=splits["train"][:3],
    )
