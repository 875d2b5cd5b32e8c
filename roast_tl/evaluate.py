"""Greedy, batched, KV-cached accuracy on task items, steered or not, with a Wilson interval.

Also `pick_alpha`, the one rule for choosing alpha from a dev curve.
"""

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm.auto import tqdm

from roast_tl._io import atomic_write_text
from roast_tl._tokens import resolve_chat, tokenizer_of
from roast_tl._types import HookedModel, HookFn, PositionSpec, SteeringMode
from roast_tl.generation import complete
from roast_tl.hooks import check_alpha, other_hooks_attached, require_steering_vector
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
        """Accuracy, interval, n and settings as one flat dict (no per-item records)."""
        return {
            "accuracy": self.accuracy,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            **self.settings,
        }

    def __repr__(self) -> str:
        """One line, never the per-item records (they are in `.records`).

        >>> EvalResult(0.5, 0.237, 0.763, 10, settings={"task": "t", "alpha": 4.0})
        EvalResult(accuracy=0.500, 95% CI [0.237, 0.763], n=10, task='t', alpha=4)
        """
        task, alpha = self.settings.get("task", "?"), self.settings.get("alpha", 0.0)
        return (
            f"EvalResult(accuracy={self.accuracy:.3f}, 95% CI [{self.ci_low:.3f}, "
            f"{self.ci_high:.3f}], n={self.n}, task={task!r}, alpha={alpha:g})"
        )


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


def pick_alpha(curve: Mapping[float, float]) -> float:
    """Return the alpha with the best dev accuracy; ties go to the smaller alpha.

    >>> pick_alpha({0.0: 0.2, 4.0: 0.9, 8.0: 0.9, 16.0: 0.5})
    4.0
    """
    if not curve:
        raise ValueError("no alphas to pick from (empty dev curve)")
    return float(max(curve, key=lambda alpha: (curve[alpha], -alpha)))


def evaluate(
    model: HookedModel,
    task: Task,
    vector: SteeringVector | None = None,
    alpha: float = 0.0,
    *,
    items: Sequence[TaskItem] | None = None,
    positions: PositionSpec = "last",
    mode: SteeringMode = "add",
    prompt_prefix: str = "",
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    records_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    allow_other_model: bool = False,
    chat: bool | None = None,
) -> EvalResult:
    """Return greedy accuracy on `items` (default: the test split), steered by `alpha · vector`.

    Slice `items` yourself for a cap (`task.items("dev")[:16]`). `prompt_prefix` is prepended
    to every prompt (the few-shot baseline uses it). `records_path` gets one JSONL row per item.
    `allow_other_model` accepts a vector made for another model (as does a vector loaded with
    it). Hooks already attached to `model` (an enclosing `steer`) still act: a RoastWarning says
    so and `settings["other_hooks_attached"]` is True. `chat`: None applies the chat template
    when the tokenizer has one, False feeds plain-text prompts, True requires a template
    (recorded as `settings["chat"]`).
    """
    alpha = check_alpha(alpha)
    chat = resolve_chat(tokenizer_of(model), chat)
    check_batch_size(batch_size, "batch_size")
    items = list(items) if items is not None else task.items("test")
    if not items:
        raise ValueError(f"nothing to evaluate: no items given for task {task.name!r}")
    max_new_tokens = max_new_tokens or task.max_new_tokens
    other_hooks = other_hooks_attached(model, "evaluate")  # before attaching our own
    hooks: list[tuple[str, HookFn]] = []
    if vector is not None:
        require_steering_vector(vector, "evaluate")
        vector.check_model(model, allow_other_model=allow_other_model)
        hooks = vector.fwd_hooks(alpha, positions=positions, mode=mode)
    records: list[EvalRecord] = []
    bar = tqdm(
        total=len(items),
        desc=f"eval ({task.name}, alpha={alpha:g})",
        unit="prompt",
        disable=not progress,
    )
    with model.hooks(fwd_hooks=hooks):
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            out = complete(
                model,
                [prompt_prefix + item.prompt for item in chunk],
                max_new_tokens=max_new_tokens,
                chat=chat,
            )
            for item, (completion,) in zip(chunk, out, strict=True):
                answer, correct = task.extract_and_grade(completion.text, item)
                records.append(
                    EvalRecord(item.id, item.prompt, completion.text, answer, item.gold, correct)
                )
            bar.update(len(chunk))
    bar.close()
    n_correct = sum(r.correct for r in records)
    low, high = wilson_interval(n_correct, len(records))
    result = EvalResult(
        accuracy=n_correct / len(records),
        ci_low=low,
        ci_high=high,
        n=len(records),
        records=records,
        settings={
            "task": task.name,
            "alpha": alpha,
            "positions": positions,
            "mode": mode,
            "steered": vector is not None and alpha != 0.0,
            "chat": chat,
            **({"other_hooks_attached": True} if other_hooks else {}),
        },
    )
    if records_path is not None:
        atomic_write_text(records_path, "".join(json.dumps(asdict(r)) + "\n" for r in records))
    return result


def check_batch_size(value: object, name: str) -> int:
    """Return `value`, or raise unless it is a positive int (`name` says which argument)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value
