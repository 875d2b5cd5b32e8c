"""The task protocol: prompts, gold answers, a strict grader and optional wrong answers.

A task is data plus one pure function: a strict `extract_answer(completion)` compared with the
gold, or a `grader(completion, item) -> bool` that sees the item (`roast_tl.tasks.graders`);
everything model-side lives elsewhere. Items are checked where they enter: `TaskItem` checks
its field types, `Task` its splits and refuses repeated item ids, and warns (`RoastWarning`)
when one prompt sits in two splits.
"""

import hashlib
import random
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roast_tl._warnings import RoastWarning

SPLITS = ("train", "dev", "test")

Grader = Callable[[str, "TaskItem"], bool]
"""`grader(completion, item) -> bool`: whether a completion answers the item correctly."""


class _Derived:
    """The default of a TaskItem field that is derived from the others when not given."""

    def __repr__(self) -> str:
        return "<derived>"


_DERIVED: Any = _Derived()


@dataclass(frozen=True)
class TaskItem:
    """One prompt of a task.

    `prompt` is the user message (no chat template); `gold` the canonical answer the grader
    compares with; `gold_completion` a correct answer written out (ROC's fallback positive and
    CAA's teacher-forced positive); `wrong_completion` a wrong one (fallback negative, CAA
    negative), or None when the task cannot supply it. A field of the wrong type raises a
    TypeError here, not an accuracy of 0 later (an int `gold` never equals a str answer).

    Only `prompt` and `gold` are needed: `TaskItem(prompt="2 + 3 =", gold="5")` derives the id
    from the prompt's text (`"item-"` and 10 hex digits of its SHA-256) and uses the gold as
    the gold completion. Positional construction `TaskItem(id, prompt, gold, gold_completion)`
    works as before.

    >>> item = TaskItem(prompt="2 + 3 =", gold="5")
    >>> item.id, item.gold_completion
    ('item-115f6226f1', '5')
    """

    id: str = _DERIVED
    prompt: str = _DERIVED
    gold: str = _DERIVED
    gold_completion: str = _DERIVED
    wrong_completion: str | None = None

    def __post_init__(self) -> None:
        missing = [name for name in ("prompt", "gold") if getattr(self, name) is _DERIVED]
        if missing:
            where = f"TaskItem {self.id!r}" if isinstance(self.id, str) else "TaskItem"
            raise TypeError(
                f"{where}: {missing[0]} must be a string, got nothing; a TaskItem needs a prompt "
                "and a gold answer: TaskItem(prompt=..., gold=...), or build a whole task with "
                "Task.from_pairs([(prompt, answer), ...])"
            )
        if self.id is _DERIVED and isinstance(self.prompt, str):
            digest = hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()[:10]
            object.__setattr__(self, "id", f"item-{digest}")
        if self.gold_completion is _DERIVED:
            object.__setattr__(self, "gold_completion", self.gold)
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
    """A named task with disjoint train/dev/test splits and a strict grader.

    Grade with either `extract_answer(completion) -> str | None`, strict: it returns the
    model's final answer in the same canonical form as `TaskItem.gold` (correct when equal), or
    with `grader(completion, item) -> bool`, which sees the item (aliases, per-item labels);
    give exactly one. The shipped graders (`roast_tl.tasks.graders`) also record the answer
    they extracted. `few_shot` holds worked examples (taken from train) for the few-shot
    baseline. `Task.from_pairs` builds a task from a list of (prompt, answer) pairs.

    Construction checks that `splits` is a dict of item lists keyed by "train", "dev" and
    "test" (any subset), refuses an item id used twice (in one split or across splits) and
    warns (`RoastWarning`) when the same prompt text sits in two splits (held-out accuracy
    would then be measured on prompts the vector was estimated on).
    """

    name: str
    splits: dict[str, list[TaskItem]]
    extract_answer: Callable[[str], str | None] | None = None
    max_new_tokens: int = 32
    few_shot: list[TaskItem] = field(default_factory=list)
    grader: Grader | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Task name must be a non-empty string, got {self.name!r}")
        if (self.extract_answer is None) == (self.grader is None):
            raise TypeError(
                f"task {self.name!r}: give exactly one of extract_answer (completion -> answer "
                "or None) and grader ((completion, item) -> bool, or a name like 'exact' via "
                "Task.from_pairs)"
            )
        for what, function in (("extract_answer", self.extract_answer), ("grader", self.grader)):
            if function is not None and not callable(function):
                kind = (
                    "str -> str | None" if what == "extract_answer" else "(str, TaskItem) -> bool"
                )
                raise TypeError(
                    f"task {self.name!r}: {what} must be a function {kind}, "
                    f"got {type(function).__name__}"
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
        self._check_splits()
        for split, items in {**self.splits, "few_shot": self.few_shot}.items():
            for index, item in enumerate(items):
                if not isinstance(item, TaskItem):
                    raise TypeError(
                        f"task {self.name!r}: {split}[{index}] is a {type(item).__name__}, "
                        "not a TaskItem; build items with TaskItem(prompt=..., gold=...) or "
                        "the whole task with Task.from_pairs"
                    )
        every = [item for items in self.splits.values() for item in items]
        check_item_ids(every, f"task {self.name!r}")
        self._warn_on_shared_prompts()

    def _check_splits(self) -> None:
        """Refuse splits that are not a dict of item lists keyed by names from `SPLITS`."""
        if not isinstance(self.splits, Mapping):
            raise TypeError(
                f"task {self.name!r}: splits must be a dict like {{'train': [...], 'dev': [...], "
                f"'test': [...]}}, got a {type(self.splits).__name__}; cut one with "
                "split_items(items, n_dev=..., n_test=..., seed=...) or use Task.from_pairs"
            )
        unknown = sorted(str(name) for name in self.splits if name not in SPLITS)
        if unknown:
            raise ValueError(
                f"task {self.name!r}: unknown split name(s) {unknown}; splits are named "
                f"{list(SPLITS)}"
            )
        for name, items in self.splits.items():
            if not isinstance(items, list | tuple):
                raise TypeError(
                    f"task {self.name!r}: split {name!r} must be a list of TaskItems, got a "
                    f"{type(items).__name__}"
                )
        self.splits = {name: list(items) for name, items in self.splits.items()}

    @classmethod
    def from_pairs(
        cls,
        pairs: Sequence[Sequence[Any] | Mapping[str, Any]],
        *,
        grader: "str | Grader" = "exact",
        name: str = "custom",
        n_dev: int | None = None,
        n_test: int | None = None,
        seed: int = 0,
        max_new_tokens: int = 32,
    ) -> "Task":
        """Build a task from `(prompt, answer)` pairs, `(prompt, answer, wrong answer)` triples or
        dicts with keys `prompt`, `answer` and optionally `id`, `gold_completion`,
        `wrong_completion`.

        `grader` is a name (`"exact"`, `"number"`, `"label"`, `"choice"`, `"contains"`,
        `"regex:PATTERN"`; see `roast_tl.tasks.graders`) or a function `(completion, item) ->
        bool`. Ids default to `f"{name}-{index}"`, gold completions to the answer. Numbers are
        accepted as answers and written as strings. The items are shuffled with `seed` and cut
        into test (`n_test`), dev (`n_dev`) and train (the rest); by default dev and test each
        take a fifth of the items (at least 1; at most 50 and 100), so at least 3 pairs are
        needed. A prompt given twice is kept once (with a `RoastWarning`).

        >>> task = Task.from_pairs([(f"{a} + 2 =", a + 2) for a in range(10)], grader="number")
        >>> {split: len(task.items(split)) for split in ("train", "dev", "test")}
        {'train': 6, 'dev': 2, 'test': 2}
        >>> task.grade("It is 5.", TaskItem(prompt="3 + 2 =", gold="5"))
        True
        """
        from roast_tl.tasks.graders import resolve_grader

        if isinstance(pairs, str | bytes | Mapping) or not isinstance(pairs, Sequence):
            raise TypeError(
                "Task.from_pairs takes a list of (prompt, answer) pairs or dicts, got a "
                f"{type(pairs).__name__}"
            )
        items = [
            pair_item(pair, f"{name}-{index}", f"pairs[{index}]")
            for index, pair in enumerate(pairs)
        ]
        items = drop_repeated_prompts(items, f"Task.from_pairs({name!r})")
        n = len(items)
        n_dev = min(max(1, n // 5), 50) if n_dev is None else n_dev
        n_test = min(max(1, n // 5), 100) if n_test is None else n_test
        if n < n_dev + n_test + 1:
            raise ValueError(
                f"Task.from_pairs got {n} distinct pair(s), too few for n_dev={n_dev}, "
                f"n_test={n_test} and at least one training pair; give at least "
                f"{n_dev + n_test + 1} pairs or smaller n_dev / n_test"
            )
        splits = split_items(items, n_dev=n_dev, n_test=n_test, seed=seed)
        return cls(
            name=name,
            splits=splits,
            max_new_tokens=max_new_tokens,
            few_shot=splits["train"][:2],
            grader=resolve_grader(grader, items),
        )

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
        """True when the completion answers `item` correctly (by the grader or extractor)."""
        return self.extract_and_grade(completion, item)[1]

    def extract_and_grade(self, completion: str, item: TaskItem) -> tuple[str | None, bool]:
        """Return (extracted answer or None, whether the completion is correct), grading once.

        With `extract_answer`: correct when the answer equals the gold. With `grader`: its
        verdict, and the answer it extracted when it records one (`AnswerGrader`), else None.
        An extractor returning anything but a str or None, or a grader returning anything but
        a bool, raises a TypeError naming the task.
        """
        if self.grader is not None:
            return self._grade_with_grader(completion, item)
        assert self.extract_answer is not None  # __post_init__: exactly one is set
        answer = self.extract_answer(completion)
        if answer is not None and not isinstance(answer, str):
            raise TypeError(
                f"task {self.name!r}: extract_answer returned {answer!r} "
                f"({type(answer).__name__}) for {completion[:40]!r}; it must return the answer "
                "as a str in the same form as TaskItem.gold, or None"
            )
        return answer, answer is not None and answer == item.gold

    def _grade_with_grader(self, completion: str, item: TaskItem) -> tuple[str | None, bool]:
        assert self.grader is not None
        both = getattr(self.grader, "extract_and_grade", None)
        answer, correct = both(completion, item) if both else (None, self.grader(completion, item))
        if not isinstance(correct, bool):
            raise TypeError(
                f"task {self.name!r}: the grader returned {correct!r} "
                f"({type(correct).__name__}) for {completion[:40]!r}; it must return True or False"
            )
        if answer is not None and not isinstance(answer, str):
            raise TypeError(
                f"task {self.name!r}: the grader extracted {answer!r} "
                f"({type(answer).__name__}); the recorded answer must be a str or None"
            )
        return answer, correct


_PAIR_KEYS = ("prompt", "answer", "id", "gold_completion", "wrong_completion")


def _as_text(value: Any, what: str, where: str) -> str:
    """A string field of a pair: strings as they are, ints and floats written out."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{where}: {what} must be a string (or a number), got {value!r:.60}")


def pair_item(pair: Sequence[Any] | Mapping[str, Any], default_id: str, where: str) -> TaskItem:
    """One TaskItem from a `(prompt, answer[, wrong])` tuple or a dict with `_PAIR_KEYS`.

    >>> pair_item(("2 + 3 =", 5), "add-0", "pairs[0]")
    TaskItem(id='add-0', prompt='2 + 3 =', gold='5', gold_completion='5', wrong_completion=None)
    """
    if isinstance(pair, Mapping):
        unknown = sorted(str(k) for k in pair if k not in _PAIR_KEYS)
        if unknown or "prompt" not in pair or "answer" not in pair:
            raise ValueError(
                f"{where}: a pair dict needs keys 'prompt' and 'answer' (optional: 'id', "
                f"'gold_completion', 'wrong_completion'); got {sorted(map(str, pair))}"
            )
        fields = dict(pair)
    elif isinstance(pair, Sequence) and not isinstance(pair, str | bytes) and len(pair) in (2, 3):
        fields = dict(zip(("prompt", "answer", "wrong_completion"), pair, strict=False))
    else:
        raise TypeError(
            f"{where}: expected a (prompt, answer) pair, a (prompt, answer, wrong answer) "
            f"triple or a dict, got {pair!r:.60}"
        )
    answer = _as_text(fields["answer"], "the answer", where)
    wrong = fields.get("wrong_completion")
    return TaskItem(
        id=_as_text(fields.get("id", default_id), "the id", where),
        prompt=_as_text(fields["prompt"], "the prompt", where),
        gold=answer,
        gold_completion=_as_text(fields.get("gold_completion", answer), "gold_completion", where),
        wrong_completion=None if wrong is None else _as_text(wrong, "wrong_completion", where),
    )


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
