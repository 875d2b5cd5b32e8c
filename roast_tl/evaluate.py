"""Greedy, batched, KV-cached accuracy on a task split, steered or not, with a Wilson interval."""

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from roast_tl.generation import encode_prompt, format_prompt, generate_tokens, tokenizer_of
from roast_tl.hooks import Positions, SteeringMode, check_alpha
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector


@dataclass
class EvalRecord:
    """One evaluated prompt: what the model said and whether it was right."""

    item_id: str
    prompt: str
    completion: str
    answer: str | None
    gold: str
    correct: bool


@dataclass
class EvalResult:
    """Accuracy over a split with its 95% Wilson interval, and the per-item records."""

    accuracy: float
    ci_low: float
    ci_high: float
    n: int
    records: list[EvalRecord] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "n": self.n, **self.settings}


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson score interval for `correct` successes out of `n`.

    >>> [round(x, 3) for x in wilson_interval(5, 10)]
    [0.237, 0.763]
    """
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def evaluate(
    model: Any,
    task: Task,
    vector: SteeringVector | None = None,
    alpha: float = 0.0,
    *,
    split: str = "test",
    items: Sequence[TaskItem] | None = None,
    positions: Positions = "last",
    mode: SteeringMode = "add",
    prompt_prefix: str = "",
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    limit: int | None = None,
    records_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> EvalResult:
    """Return greedy accuracy on `split`, steering with `alpha · vector` when a vector is given.

    `prompt_prefix` is prepended to every prompt (the few-shot baseline uses it).
    """
    alpha = check_alpha(alpha)
    items = list(items) if items is not None else task.items(split)
    items = items[:limit] if limit is not None else items
    if not items:
        raise ValueError(f"nothing to evaluate: split {split!r} of task {task.name!r} is empty")
    tokenizer = tokenizer_of(model)
    max_new_tokens = max_new_tokens or task.max_new_tokens
    hooks = []
    if vector is not None:
        vector.check_model(model)
        hooks = vector.fwd_hooks(alpha, positions=positions, mode=mode)
    records: list[EvalRecord] = []
    bar = tqdm(total=len(items), desc=f"eval ({task.name}, alpha={alpha:g})", unit="prompt",
               disable=not progress)
    with model.hooks(fwd_hooks=hooks):
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            encoded = [encode_prompt(model, format_prompt(model, prompt_prefix + item.prompt))
                       for item in chunk]
            out = generate_tokens(model, encoded, max_new_tokens=max_new_tokens)
            for item, tokens in zip(chunk, out.tokens, strict=True):
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                records.append(EvalRecord(item.id, item.prompt, text, task.extract_answer(text),
                                          item.gold, task.grade(text, item)))
            bar.update(len(chunk))
    bar.close()
    n_correct = sum(r.correct for r in records)
    low, high = wilson_interval(n_correct, len(records))
    result = EvalResult(
        accuracy=n_correct / len(records), ci_low=low, ci_high=high, n=len(records), records=records,
        settings={"task": task.name, "split": split, "alpha": alpha, "positions": positions,
                  "mode": mode, "steered": vector is not None and alpha != 0.0},
    )
    if records_path is not None:
        path = Path(records_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in records), encoding="utf-8")
    return result
