"""The task protocol: prompts, gold answers, a strict grader and optional wrong answers.

A task is data plus one pure function (`extract_answer`); everything model-side lives elsewhere.
Items are checked where they enter: `TaskItem` checks its field types, `Task` refuses repeated
item ids and warns (`RoastWarning`) when one prompt sits in two splits.
"""

import random
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from roast_tl._warnings import RoastWarning

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class TaskItem:
    """One prompt of a task.

    `prompt` is the user message (no chat template); `gold` the canonical answer the grader
    compares with; `gold_completion` a correct answer written out (ROC's fallback positive and
    CAA's teacher-forced positive); `wrong_completion` a wrong one (fallback negative, CAA
    negative), or None when the task cannot supply it. A field of the wrong type raises a
    TypeError here, not an accuracy of 0 later (an int `gold` never equals a str answer).
    """

    id: str
    prompt: str
    gold: str
    gold_completion: str
    wrong_completion: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise TypeError(
                f"TaskItem id must be a non-empty string, got {self.id!r:.60} "
                f"({type(self.id).__name__}); write ids as strings, e.g. str(n)"
            )
        for name in ("prompt", "gold", "gold_completion"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(
                    f"TaskItem {self.id!r}: {name} must be a string, got {value!r:.60} "
                    f"({type(value).__name__}); convert it with str(...)"
                )
        if self.wrong_completion is not None and not isinstance(self.wrong_completion, str):
            raise TypeError(
                f"TaskItem {self.id!r}: wrong_completion must be a string or None, got "
                f"{self.wrong_completion!r} ({type(self.wrong_completion).__name__})"
            )


def check_item_ids(items: Sequence[TaskItem], where: str) -> None:
    """Raise a ValueError naming the item ids that occur more than once in `items`.

    Rollouts, seeds and contrast groups are keyed by item id, so two prompts under one id
    would share one prompt's rollouts. `where` names the collection in the message.

    >>> check_item_ids([TaskItem("a", "p", "x", "x"), TaskItem("a", "q", "y", "y")], "my items")
    Traceback (most recent call last):
    ...
    ValueError: my items: item ids repeat: 'a' (2 times); give every item its own id
    """
    counts = Counter(item.id for item in items)
    repeated = [item_id for item_id, n in counts.items() if n > 1]
    if repeated:
        shown = ", ".join(f"{i!r} ({counts[i]} times)" for i in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise ValueError(f"{where}: item ids repeat: {shown}{more}; give every item its own id")


@dataclass
class Task:
    """A named task with disjoint train/dev/test splits and a strict answer extractor.

    `extract_answer(completion) -> str | None` must be strict: it returns the model's final
    answer in the same canonical form as `TaskItem.gold`, or None when there is none.
    `few_shot` holds worked examples (taken from train) for the few-shot baseline.

    Construction refuses an item id used twice (in one split or across splits) and warns
    (`RoastWarning`) when the same prompt text sits in two splits (held-out accuracy would then
    be measured on prompts the vector was estimated on).
    """

    name: str
    splits: dict[str, list[TaskItem]]
    extract_answer: Callable[[str], str | None]
    max_new_tokens: int
    few_shot: list[TaskItem] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Task name must be a non-empty string, got {self.name!r}")
        if not callable(self.extract_answer):
            raise TypeError(
                f"task {self.name!r}: extract_answer must be a function str -> str | None, "
                f"got {type(self.extract_answer).__name__}"
            )
        if (
            not isinstance(self.max_new_tokens, int)
            or isinstance(self.max_new_tokens, bool)
            or self.max_new_tokens < 1
        ):
            raise ValueError(
                f"task {self.name!r}: max_new_tokens must be a positive int, "
                f"got {self.max_new_tokens!r}"
            )
        for split, items in {**self.splits, "few_shot": self.few_shot}.items():
            for index, item in enumerate(items):
                if not isinstance(item, TaskItem):
                    raise TypeError(
                        f"task {self.name!r}: {split}[{index}] is a {type(item).__name__}, "
                        "not a TaskItem; build items with TaskItem(id, prompt, gold, ...)"
                    )
        every = [item for items in self.splits.values() for item in items]
        check_item_ids(every, f"task {self.name!r}")
        self._warn_on_shared_prompts()

    def _warn_on_shared_prompts(self) -> None:
        """Warn once per pair of splits that share prompt texts, naming how many."""
        prompts = {split: {item.prompt for item in items} for split, items in self.splits.items()}
        names = list(prompts)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                shared = sorted(prompts[first] & prompts[second])
                if shared:
                    warnings.warn(
                        f"task {self.name!r}: {len(shared)} prompt(s) appear in both {first!r} "
                        f"and {second!r} (e.g. {shared[0][:60]!r}); accuracy on {second!r} is "
                        "then partly measured on seen prompts; remove the duplicates",
                        RoastWarning,
                        stacklevel=4,
                    )

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
        """Return (extracted answer or None, whether it equals the gold answer), extracting once.

        An extractor that returns anything but a str or None raises a TypeError naming the task.
        """
        answer = self.extract_answer(completion)
        if answer is not None and not isinstance(answer, str):
            raise TypeError(
                f"task {self.name!r}: extract_answer returned {answer!r} "
                f"({type(answer).__name__}) for {completion[:40]!r}; it must return the answer "
                "as a str in the same form as TaskItem.gold, or None"
            )
        return answer, answer is not None and answer == item.gold


def drop_repeated_prompts(items: Sequence[TaskItem], source: str) -> list[TaskItem]:
    """Keep the first item of each prompt text, so that no prompt lands in two splits.

    Warns (`RoastWarning`) with how many were dropped and how many of those had another gold
    answer than the kept one. The shipped loaders call it before `split_items`.
    """
    kept: dict[str, TaskItem] = {}
    dropped = conflicting = 0
    for item in items:
        first = kept.setdefault(item.prompt, item)
        if first is not item:
            dropped += 1
            conflicting += first.gold != item.gold
    if dropped:
        conflict = (
            f"; {conflicting} of them had another gold answer than the kept one"
            if conflicting
            else ""
        )
        warnings.warn(
            f"{source}: dropped {dropped} item(s) whose prompt repeats an earlier one (kept the "
            f"first of each, so no prompt sits in two splits){conflict}",
            RoastWarning,
            stacklevel=3,
        )
    return list(kept.values())


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
