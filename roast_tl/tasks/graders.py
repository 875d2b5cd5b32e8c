"""Graders that see the item: `grader(completion, item) -> bool`, and the common ones shipped.

Every shipped grader is an `AnswerGrader`: it extracts an answer from the completion (recorded
with each rollout and evaluation record) and compares it with the item's gold in the same
canonical form. Any plain function `(completion, item) -> bool` is a grader too; its records
then carry no extracted answer. `GRADERS` maps names to graders for `load_task("jsonl",
grader=...)` and the command line (`--grader`); `grader_named` resolves a name.
"""

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from roast_tl.tasks.base import Grader, TaskItem
from roast_tl.tasks.grading import (
    extract_choice_letter,
    extract_final_number,
    extract_label,
    normalize_number,
)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_text(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace (SQuAD-style).

    >>> normalize_text("  The Eiffel   Tower!")
    'eiffel tower'
    >>> normalize_text("Paris.") == normalize_text("paris")
    True
    """
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def first_line(text: str) -> str:
    """The first line of `text` that is not blank ("" when there is none).

    >>> first_line("\\n  Paris.\\nThe capital of France.")
    '  Paris.'
    """
    return next((line for line in text.splitlines() if line.strip()), "")


@dataclass(frozen=True)
class AnswerGrader:
    """A grader that extracts an answer and compares it with the item's gold, both canonical.

    `extract(completion, item)` returns the answer in canonical form, or None when there is
    none; `canonical_gold(gold)` puts the gold in the same form. A gold the grader cannot put in
    that form (a label outside the label set, a gold that is no number) raises a ValueError
    naming the item, so a mismatched grader fails at once, not as an accuracy of 0.
    """

    name: str
    extract: Callable[[str, TaskItem], str | None]
    canonical_gold: Callable[[str], str | None]

    def extract_and_grade(self, completion: str, item: TaskItem) -> tuple[str | None, bool]:
        """Return (the extracted answer or None, whether it equals the canonical gold)."""
        gold = self.canonical_gold(item.gold)
        if gold is None:
            raise ValueError(
                f"item {item.id!r}: grader {self.name!r} cannot read its gold {item.gold!r}; "
                "pick a grader that fits the answers (see roast_tl.tasks.graders.GRADERS)"
            )
        answer = self.extract(completion, item)
        return answer, answer is not None and answer == gold

    def __call__(self, completion: str, item: TaskItem) -> bool:
        return self.extract_and_grade(completion, item)[1]

    def __repr__(self) -> str:
        return f"AnswerGrader({self.name!r})"


def exact_match() -> AnswerGrader:
    """The completion's first non-blank line equals the gold after `normalize_text`.

    >>> grade = exact_match()
    >>> item = TaskItem(prompt="Capital of France?", gold="Paris")
    >>> grade("Paris.\\nIt is on the Seine.", item), grade("The capital is Paris.", item)
    (True, False)
    """
    return AnswerGrader(
        "exact",
        lambda completion, item: normalize_text(first_line(completion)) or None,
        lambda gold: normalize_text(gold) or None,
    )


def final_number() -> AnswerGrader:
    """The number after the last `####`, else the last number in the completion, equals the gold
    number (both normalized: "1,000.0" is "1000").

    >>> grade = final_number()
    >>> item = TaskItem(prompt="2 + 3 =", gold="5")
    >>> grade("2 + 3 = 5.", item), grade("5 or 6", item), grade("five", item)
    (True, False, False)
    """
    return AnswerGrader(
        "number",
        lambda completion, item: extract_final_number(completion),
        normalize_number,
    )


def one_of_labels(labels: Sequence[str]) -> AnswerGrader:
    """The one label the completion names as a whole word (case-insensitive) equals the gold.

    A completion naming two labels, or none, is wrong. Golds must be among `labels`.

    >>> grade = one_of_labels(["positive", "negative"])
    >>> item = TaskItem(prompt="Great film!", gold="positive")
    >>> grade("Positive.", item), grade("positive or negative", item), grade("neutral", item)
    (True, False, False)
    """
    canon = tuple(dict.fromkeys(label.strip().lower() for label in labels))
    if len(canon) < 2 or not all(canon):
        raise ValueError(f"one_of_labels needs at least 2 distinct non-empty labels, got {labels}")
    return AnswerGrader(
        "label",
        lambda completion, item: extract_label(completion, canon),
        lambda gold: gold.strip().lower() if gold.strip().lower() in canon else None,
    )


def choice_letter(letters: str = "ABCD") -> AnswerGrader:
    """The one answer letter the completion commits to ("Answer: B", "(B)", "B. ...") equals the
    gold letter; never a first-character match.

    >>> grade = choice_letter("ABCD")
    >>> item = TaskItem(prompt="Which? A. x B. y", gold="B")
    >>> grade("Answer: B", item), grade("A or B", item), grade("Because", item)
    (True, False, False)
    """
    if not letters or not all(c in string.ascii_uppercase for c in letters):
        raise ValueError(f"choice_letter needs capital letters, e.g. 'ABCD', got {letters!r}")
    return AnswerGrader(
        "choice",
        lambda completion, item: extract_choice_letter(completion, letters),
        lambda gold: gold.strip().upper() if gold.strip().upper() in letters else None,
    )


def regex(pattern: str, *, flags: int = re.IGNORECASE) -> AnswerGrader:
    """The first match of `pattern` (its first group when it has one) equals the gold after
    `normalize_text`.

    >>> grade = regex(r"answer:\\s*(\\w+)")
    >>> item = TaskItem(prompt="Capital of France?", gold="Paris")
    >>> grade("Answer: paris, I think", item), grade("Paris", item)
    (True, False)
    """
    try:
        compiled = re.compile(pattern, flags)
    except re.error as err:
        raise ValueError(f"regex grader: bad pattern {pattern!r} ({err})") from err

    def extract(completion: str, item: TaskItem) -> str | None:
        match = compiled.search(completion)
        if match is None:
            return None
        found = match.group(1) if compiled.groups else match.group(0)
        return normalize_text(found or "") or None

    return AnswerGrader(f"regex:{pattern}", extract, lambda gold: normalize_text(gold) or None)


def contains() -> AnswerGrader:
    """The gold appears in the completion as whole words, after `normalize_text` on both.

    Lenient: "Paris or London" contains "Paris". The recorded answer is the gold when found.

    >>> grade = contains()
    >>> item = TaskItem(prompt="Capital of France?", gold="Paris")
    >>> grade("The capital of France is Paris.", item), grade("Parisian food", item)
    (True, False)
    """

    def extract(completion: str, item: TaskItem) -> str | None:
        gold = normalize_text(item.gold)
        return gold if gold and f" {gold} " in f" {normalize_text(completion)} " else None

    return AnswerGrader("contains", extract, lambda gold: normalize_text(gold) or None)


def _labels_of(items: Sequence[TaskItem]) -> AnswerGrader:
    return one_of_labels(sorted({item.gold.strip().lower() for item in items}))


def _letters_of(items: Sequence[TaskItem]) -> AnswerGrader:
    golds = [item.gold.strip().upper() for item in items]
    last = max((g for g in golds if len(g) == 1 and g.isalpha()), default="D")
    return choice_letter(string.ascii_uppercase[: max(4, ord(last) - ord("A") + 1)])


GRADERS: dict[str, Callable[[Sequence[TaskItem]], AnswerGrader]] = {
    "exact": lambda items: exact_match(),
    "number": lambda items: final_number(),
    "label": _labels_of,
    "choice": _letters_of,
    "contains": lambda items: contains(),
}
"""Graders by name, each built from the task's items: `label` takes the set of gold answers as
its labels, `choice` the letters A.. up to the last gold letter (at least ABCD). The name
`regex:PATTERN` (not listed) builds `regex(PATTERN)`."""


def grader_named(name: str, items: Sequence[TaskItem]) -> AnswerGrader:
    """The grader called `name` (a key of `GRADERS`, or `regex:PATTERN`) for these items.

    >>> grader_named("label", [TaskItem(prompt="a", gold="yes"), TaskItem(prompt="b", gold="no")])
    AnswerGrader('label')
    """
    check_grader_name(name)
    if name.startswith("regex:"):
        return regex(name.removeprefix("regex:"))
    return GRADERS[name](items)


def check_grader_name(name: str) -> None:
    """Raise a ValueError unless `name` is a key of `GRADERS` or `regex:PATTERN`."""
    if name not in GRADERS and not name.startswith("regex:"):
        raise ValueError(
            f"unknown grader {name!r}; choose one of {sorted(GRADERS)} or regex:PATTERN"
        )


def resolve_grader(grader: str | Grader, items: Sequence[TaskItem]) -> Grader:
    """A grader given by name (`grader_named`) or as a function `(completion, item) -> bool`."""
    if isinstance(grader, str):
        return grader_named(grader, items)
    _check_callable(grader)
    return grader


def _check_callable(grader: object) -> None:
    if not callable(grader):
        raise TypeError(
            f"grader must be a name ({sorted(GRADERS)} or regex:PATTERN) or a function "
            f"(completion, item) -> bool, got {type(grader).__name__}"
        )
