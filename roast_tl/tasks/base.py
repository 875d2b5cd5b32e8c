"""The task protocol: prompts, gold answers, a strict grader and optional wrong answers.

A task is data plus one pure function (`extract_answer`); everything model-side lives elsewhere.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class TaskItem:
    """One prompt of a task.

    `prompt` is the user message (no chat template); `gold` the canonical answer the grader
    compares with; `gold_completion` a correct answer written out (ROC's fallback positive and
    CAA's teacher-forced positive); `wrong_completion` a wrong one (fallback negative, CAA
    negative), or None when the task cannot supply it.
    """

    id: str
    prompt: str
    gold: str
    gold_completion: str
    wrong_completion: str | None = None


@dataclass
class Task:
    """A named task with disjoint train/dev/test splits and a strict answer extractor.

    `extract_answer(completion) -> str | None` must be strict: it returns the model's final
    answer in the same canonical form as `TaskItem.gold`, or None when there is none.
    `few_shot` holds worked examples (taken from train) for the few-shot baseline.
    """

    name: str
    splits: dict[str, list[TaskItem]]
    extract_answer: Callable[[str], str | None]
    max_new_tokens: int
    few_shot: list[TaskItem] = field(default_factory=list)

    def items(self, split: str) -> list[TaskItem]:
        """Return the items of `split` ("train", "dev" or "test")."""
        if split not in self.splits:
            raise ValueError(
                f"task {self.name!r} has no split {split!r}; it has {sorted(self.splits)}"
            )
        return self.splits[split]

    def grade(self, completion: str, item: TaskItem) -> bool:
        """True when the completion's extracted answer equals the gold answer."""
        return self.extract_and_grade(completion, item)[1]

    def extract_and_grade(self, completion: str, item: TaskItem) -> tuple[str | None, bool]:
        """Return (extracted answer or None, whether it equals the gold answer), extracting once."""
        answer = self.extract_answer(completion)
        return answer, answer is not None and answer == item.gold


def split_items(
    items: Sequence[TaskItem], *, n_dev: int, n_test: int, seed: int
) -> dict[str, list[TaskItem]]:
    """Shuffle `items` with `seed`, cut disjoint test, dev and train splits (train: the rest)."""
    if n_dev < 0 or n_test < 0 or n_dev + n_test >= len(items):
        raise ValueError(
            f"cannot carve n_dev={n_dev} and n_test={n_test} from {len(items)} items "
            "and leave a train split; ask for fewer held-out items"
        )
    order = list(items)
    random.Random(seed).shuffle(order)
    return {
        "test": order[:n_test],
        "dev": order[n_test : n_test + n_dev],
        "train": order[n_test + n_dev :],
    }
