"""The yield report: how much real correct-vs-wrong contrast an estimate's rollouts gave.

ROAST's point is the contrast between a prompt's own correct and wrong rollouts. A grader that
marks correct answers wrong, a task the model never (or always) solves, or `n_rollouts=1` leaves
few such prompts, and the fallbacks (a written answer against the model's own text) take over.
`YieldReport` says how it went, in numbers and with example completions as graded, so a broken
grader is visible at a glance; `problems()` lists what `estimate` warns about (`LowYieldWarning`).

Pure: built from rollouts, their items and the `ContrastSet`, without a model.

    contrasts = build_contrast_set(rollouts, items, tokenizer=model.tokenizer)
    report = YieldReport.build(rollouts, items, contrasts, gold_check=check_gold(task, items))
    print(report)                     # the compact block `estimate` prints
    report.problems()                 # the warnings' messages; [] when the yield is fine
    YieldReport.from_dict(vector.metadata["yield_report"])  # the report of a saved vector
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from roast_tl.pairs import ContrastSet
from roast_tl.rollouts import Rollout
from roast_tl.tasks.base import Task, TaskItem

PASS_RATE_BINS = ("0", "(0,.25]", "(.25,.5]", "(.5,.75]", "(.75,1)", "1")
"""Labels of the per-prompt pass-rate histogram: exactly 0 (a gold fallback), quarters in
between (a real contrast is possible), exactly 1 (a wrong-answer fallback)."""

FALLBACK_KINDS = ("gold_fallback", "wrong_fallback")
"""Contrast group kinds that stand in for a missing correct or wrong rollout."""

MAX_EXAMPLE_CHARS = 200
"""Example completions are cut to this many characters (they go into the vector's metadata)."""

N_EXAMPLES = 2
"""Completions shown per grade: the first ones graded correct and wrong, in rollout order."""


@dataclass(frozen=True)
class GradedExample:
    """One completion as the grader saw it: the answer it extracted and the item's gold."""

    item_id: str
    completion: str
    answer: str | None
    gold: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "completion": self.completion,
            "answer": self.answer,
            "gold": self.gold,
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "GradedExample":
        return cls(str(row["item_id"]), str(row["completion"]), row["answer"], str(row["gold"]))

    def line(self, width: int = 48) -> str:
        """`item 'completion' -> 'answer' (gold 'gold')`, the completion cut to `width`
        characters and the answer and gold to 20."""
        return (
            f"{self.item_id} {_cut(self.completion, width)!r} -> "
            f"{_cut(self.answer, 20)!r} (gold {_cut(self.gold, 20)!r})"
        )


def _cut(text: str | None, width: int) -> str | None:
    """`text` on one line, cut to `width` characters with "..." (None stays None)."""
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _example(item: TaskItem, completion: str, answer: str | None) -> GradedExample:
    return GradedExample(item.id, completion[:MAX_EXAMPLE_CHARS], answer, item.gold)


@dataclass(frozen=True)
class GoldCheck:
    """The grader run on each item's own `gold_completion`, before any sampling.

    A grader that marks a gold completion wrong will mark the model's correct answers wrong too.
    `failed` counts the items whose gold completion is graded wrong; `example` is the first.
    """

    n_items: int
    failed: int
    example: GradedExample | None = None

    def problems(self) -> list[str]:
        """The self-check's `LowYieldWarning` message, if any gold completion failed."""
        if not self.failed:
            return []
        shown = self.example.line() if self.example is not None else "?"
        if self.failed == self.n_items:
            return [
                f"the grader marks none of the {self.n_items} items' own gold_completion "
                f"correct (e.g. {shown}), so it will mark the model's correct answers wrong "
                "too; make the grader (or extract_answer) accept the answer in the form "
                "TaskItem.gold has, or pick another grader"
            ]
        return [
            f"the grader marks {self.failed} of {self.n_items} items' own gold_completion "
            f"wrong (e.g. {shown}); the model's correct answers to those items may be graded "
            "wrong too; fix the grader (or extract_answer) or those items' gold"
        ]

    def as_dict(self) -> dict[str, Any]:
        example = self.example.as_dict() if self.example is not None else None
        return {"n_items": self.n_items, "failed": self.failed, "example": example}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "GoldCheck":
        example = row.get("example")
        return cls(
            int(row["n_items"]),
            int(row["failed"]),
            GradedExample.from_dict(example) if example is not None else None,
        )


def check_gold(task: Task, items: Sequence[TaskItem]) -> GoldCheck:
    """Grade every item's `gold_completion` with the task's grader (pure and cheap).

    >>> from roast_tl.tasks.base import Task, TaskItem
    >>> items = [TaskItem("a", "Capital of France?", "Paris", "The capital is Paris.")]
    >>> first_word = Task("capitals", {"train": items}, lambda s: s.split()[0], 8)
    >>> check = check_gold(first_word, items)
    >>> check.failed, check.example.answer
    (1, 'The')
    """
    failed = 0
    example = None
    for item in items:
        answer, correct = task.extract_and_grade(item.gold_completion, item)
        if not correct:
            failed += 1
            example = example or _example(item, item.gold_completion, answer)
    return GoldCheck(len(items), failed, example)


def _pass_rate_bin(correct: int, total: int) -> str:
    if correct == 0:
        return PASS_RATE_BINS[0]
    if correct == total:
        return PASS_RATE_BINS[-1]
    rate = correct / total
    return next(
        label
        for label, edge in zip(PASS_RATE_BINS[1:-1], (0.25, 0.5, 0.75, 1.0), strict=True)
        if rate <= edge
    )


@dataclass(frozen=True)
class YieldReport:
    """How an estimate's rollouts turned into contrast groups; `str()` is a compact block.

    Counts are over `items` (the prompts the estimate was given) and their rollouts; rollouts
    of other item ids are left out here as they are by `build_contrast_set` (counted as
    `group_counts["unknown_item"]`). `group_counts` is `ContrastSet.counts`: prompts per path
    (`rollouts` is the real correct-vs-wrong contrast, `gold_fallback` / `wrong_fallback` the
    fallbacks, `no_rollouts`, `skipped_strict`, `skipped_no_negative`). `pass_rate_histogram`
    counts prompts by their share of correct rollouts (`PASS_RATE_BINS`); `pairs_per_group` is
    the mean pairs per group of each kind. `correct_examples` and `wrong_examples` are the
    first `N_EXAMPLES` rollouts graded correct and wrong, in rollout order. `gold_check` is
    None when the gold self-check did not run (`estimate_from_rollouts` on rollouts alone).
    """

    n_items: int
    n_rollouts: int
    n_correct: int
    rollouts_per_prompt: tuple[int, int]
    pass_rate_histogram: dict[str, int]
    group_counts: dict[str, int]
    n_pairs: int
    pairs_per_group: dict[str, float]
    correct_examples: tuple[GradedExample, ...]
    wrong_examples: tuple[GradedExample, ...]
    gold_check: GoldCheck | None = None

    @classmethod
    def build(
        cls,
        rollouts: Sequence[Rollout],
        items: Sequence[TaskItem],
        contrasts: ContrastSet,
        *,
        gold_check: GoldCheck | None = None,
    ) -> "YieldReport":
        """The report of `rollouts` of `items` and the `ContrastSet` built from them."""
        by_id = {item.id: item for item in items}
        mine = [r for r in rollouts if isinstance(r.item_id, str) and r.item_id in by_id]
        total: Counter[str] = Counter(r.item_id for r in mine)
        correct: Counter[str] = Counter(r.item_id for r in mine if r.correct)
        histogram = dict.fromkeys(PASS_RATE_BINS, 0)
        for item_id, n in total.items():
            histogram[_pass_rate_bin(correct[item_id], n)] += 1
        kinds: Counter[str] = Counter(g.kind for g in contrasts.groups)
        pairs: Counter[str] = Counter()
        for group in contrasts.groups:
            pairs[group.kind] += group.n_pairs
        examples = {
            grade: tuple(
                _example(by_id[r.item_id], r.completion, r.answer)
                for r in [r for r in mine if bool(r.correct) == grade][:N_EXAMPLES]
            )
            for grade in (True, False)
        }
        return cls(
            n_items=len(items),
            n_rollouts=len(mine),
            n_correct=sum(correct.values()),
            rollouts_per_prompt=(min(total.values(), default=0), max(total.values(), default=0)),
            pass_rate_histogram=histogram,
            group_counts=dict(contrasts.counts),
            n_pairs=contrasts.n_pairs,
            pairs_per_group={kind: pairs[kind] / kinds[kind] for kind in sorted(kinds)},
            correct_examples=examples[True],
            wrong_examples=examples[False],
            gold_check=gold_check,
        )

    @property
    def rollout_accuracy(self) -> float | None:
        """Share of the items' rollouts graded correct (None without rollouts)."""
        return self.n_correct / self.n_rollouts if self.n_rollouts else None

    @property
    def n_groups(self) -> int:
        return sum(self.group_counts.get(k, 0) for k in ("rollouts", *FALLBACK_KINDS))

    @property
    def n_fallbacks(self) -> int:
        return sum(self.group_counts.get(k, 0) for k in FALLBACK_KINDS)

    @property
    def shares(self) -> dict[str, float]:
        """Share of the items per path (`group_counts` without `unknown_item`, over n_items)."""
        return {
            kind: n / self.n_items
            for kind, n in self.group_counts.items()
            if kind != "unknown_item" and self.n_items
        }

    def problems(self, *, include_gold: bool = True) -> list[str]:
        """What makes this estimate suspect, one message each (the `LowYieldWarning`s): the
        grader failed gold completions (`gold_check`; left out with `include_gold=False`), no
        prompt has 2 rollouts (`n_rollouts < 2`), rollout accuracy is 0 or 1, and fallbacks
        are more than half the contrast groups."""
        found = []
        if include_gold and self.gold_check is not None:
            found += self.gold_check.problems()
        if self.n_rollouts and self.rollouts_per_prompt[1] < 2:
            found.append(
                "n_rollouts < 2: no prompt has 2 rollouts, so none can contrast a correct with "
                "a wrong rollout and every group is a fallback; sample n_rollouts >= 2 per "
                "prompt (the default is 8)"
            )
        accuracy = self.rollout_accuracy
        if accuracy in (0.0, 1.0):
            graded = "correct" if accuracy == 1.0 else "wrong"
            missing = "wrong" if accuracy == 1.0 else "correct"
            found.append(
                f"rollout accuracy is {accuracy:g}: all {self.n_rollouts} rollouts are graded "
                f"{graded}, so no prompt has a {missing} rollout to contrast with; check the "
                "grader on the examples in the yield report, or pick prompts the model "
                "sometimes gets right and sometimes wrong"
            )
        if self.n_fallbacks * 2 > self.n_groups:
            fallbacks = {k: self.group_counts[k] for k in FALLBACK_KINDS if k in self.group_counts}
            found.append(
                f"{self.n_fallbacks} of {self.n_groups} contrast groups are fallbacks "
                f"{fallbacks}, so the vector mostly contrasts written answers with the model's "
                "own text instead of its correct vs wrong rollouts; check the grader, sample "
                "more rollouts per prompt, or pass strict=True to forbid fallbacks"
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (for vector metadata): the fields, plus `rollout_accuracy` and `shares`."""
        return {
            "n_items": self.n_items,
            "n_rollouts": self.n_rollouts,
            "n_correct": self.n_correct,
            "rollout_accuracy": self.rollout_accuracy,
            "rollouts_per_prompt": list(self.rollouts_per_prompt),
            "pass_rate_histogram": dict(self.pass_rate_histogram),
            "group_counts": dict(self.group_counts),
            "shares": self.shares,
            "n_pairs": self.n_pairs,
            "pairs_per_group": dict(self.pairs_per_group),
            "correct_examples": [e.as_dict() for e in self.correct_examples],
            "wrong_examples": [e.as_dict() for e in self.wrong_examples],
            "gold_check": self.gold_check.as_dict() if self.gold_check is not None else None,
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "YieldReport":
        """The report `as_dict` wrote (e.g. `vector.metadata["yield_report"]` of a loaded file);
        the derived `rollout_accuracy` and `shares` are recomputed."""
        low, high = row["rollouts_per_prompt"]
        check = row.get("gold_check")
        return cls(
            n_items=int(row["n_items"]),
            n_rollouts=int(row["n_rollouts"]),
            n_correct=int(row["n_correct"]),
            rollouts_per_prompt=(int(low), int(high)),
            pass_rate_histogram={str(k): int(v) for k, v in row["pass_rate_histogram"].items()},
            group_counts={str(k): int(v) for k, v in row["group_counts"].items()},
            n_pairs=int(row["n_pairs"]),
            pairs_per_group={str(k): float(v) for k, v in row["pairs_per_group"].items()},
            correct_examples=tuple(GradedExample.from_dict(e) for e in row["correct_examples"]),
            wrong_examples=tuple(GradedExample.from_dict(e) for e in row["wrong_examples"]),
            gold_check=GoldCheck.from_dict(check) if check is not None else None,
        )

    def __str__(self) -> str:
        low, high = self.rollouts_per_prompt
        per_prompt = f"{low}" if low == high else f"{low}-{high}"
        accuracy = self.rollout_accuracy
        shown = f"{accuracy:.3f}" if accuracy is not None else "n/a"
        shares = self.shares
        counts = {"rollouts": 0, **self.group_counts}  # the real contrast first, even at 0
        paths = ", ".join(
            f"{kind} {n} ({shares.get(kind, 0.0):.0%})"
            if kind != "unknown_item"
            else f"rollouts of {n} unknown item id(s) left out"
            for kind, n in counts.items()
        )
        per_group = ", ".join(f"{kind} {n:.1f}" for kind, n in self.pairs_per_group.items())
        lines = [
            f"yield report: {self.n_items} prompts x {per_prompt} rollouts, rollout accuracy "
            f"{shown} ({self.n_correct}/{self.n_rollouts})",
            "  pass rate per prompt: "
            + "  ".join(f"{label}: {n}" for label, n in self.pass_rate_histogram.items()),
            f"  prompts per path: {paths}",
            f"  pairs: {self.n_pairs}" + (f" (per group: {per_group})" if per_group else ""),
        ]
        check = self.gold_check
        if check is not None:
            verdict = f"{check.n_items - check.failed} of {check.n_items} graded correct"
            example = f", e.g. {check.example.line(24)}" if check.example is not None else ""
            lines.append(f"  gold self-check: {verdict}{example}")
        for label, examples in (("correct", self.correct_examples), ("wrong", self.wrong_examples)):
            head = f"  graded {label}:".ljust(18)
            shown_lines = [e.line() for e in examples] or ["(none)"]
            lines += [(head if i == 0 else " " * 18) + s for i, s in enumerate(shown_lines)]
        return "\n".join(lines)
