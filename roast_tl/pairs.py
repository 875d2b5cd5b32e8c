"""ROC contrast groups: per prompt, its correct rollouts against its incorrect ones.

Fallbacks (ROAST authors' code): no correct rollout -> the gold answer is the positive; no
incorrect rollout -> the task's wrong answer is the negative; both fallback groups carry
`fallback_weight`. Neither -> the prompt is skipped. `strict=True` skips every fallback prompt.

Pure over token ids: rollouts carry their own ids, and the tokenizer (not a model) is needed only
for written fallback answers and for rollouts another engine saved without ids.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from roast_tl._tokens import encode_prompt, encode_text, format_prompt
from roast_tl._types import TokenIds
from roast_tl.rollouts import Rollout
from roast_tl.tasks.base import TaskItem

GroupKind = Literal["rollouts", "gold_fallback", "wrong_fallback", "teacher_forced"]
SequenceIds = tuple[TokenIds, TokenIds]
"""One teacher-forced sequence: (prompt ids, response ids)."""


@dataclass
class ContrastGroup:
    """One prompt's contrast: sequences (prompt ids, response ids) on each side.

    Every positive × negative pair has weight `weight`; with uniform weights the group's mean
    pair difference is mean(h over positives) - mean(h over negatives).
    """

    item_id: str
    positives: list[SequenceIds]
    negatives: list[SequenceIds]
    weight: float
    kind: GroupKind

    @property
    def n_pairs(self) -> int:
        return len(self.positives) * len(self.negatives)


@dataclass
class ContrastSet:
    """All contrast groups of a task split, with how many prompts took each path."""

    groups: list[ContrastGroup]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        return sum(g.n_pairs for g in self.groups)


def rollout_tokens(tokenizer: Any, rollout: Rollout) -> SequenceIds:
    """Return (prompt ids, completion ids), tokenizing the texts when another engine left no ids."""
    prompt = rollout.prompt_token_ids or encode_prompt(tokenizer, rollout.prompt_text)
    completion = rollout.completion_token_ids or encode_text(tokenizer, rollout.completion)
    return list(prompt), list(completion)


def written_answer_tokens(tokenizer: Any, item: TaskItem, text: str) -> SequenceIds:
    """Return (prompt ids, answer ids + end-of-turn) for a teacher-forced written answer."""
    prompt = encode_prompt(tokenizer, format_prompt(tokenizer, item.prompt))
    answer = encode_text(tokenizer, text)
    if tokenizer.eos_token_id is not None:
        answer.append(int(tokenizer.eos_token_id))
    return prompt, answer


def build_contrast_set(
    rollouts: Sequence[Rollout],
    items: Sequence[TaskItem],
    *,
    tokenizer: Any,
    strict: bool = False,
    fallback_weight: float = 0.5,
) -> ContrastSet:
    """Group rollouts by prompt into correct-vs-incorrect contrasts, applying the fallbacks.

    `tokenizer` is the model's (`model.tokenizer`); it only encodes written fallback answers.
    """
    if not 0 < fallback_weight <= 1:
        raise ValueError(f"fallback_weight must be in (0, 1], got {fallback_weight}")
    by_item: dict[str, list[Rollout]] = {}
    for rollout in rollouts:
        by_item.setdefault(rollout.item_id, []).append(rollout)
    counts: Counter[str] = Counter()
    groups = []
    for item in items:
        mine = by_item.get(item.id, [])
        if not mine:
            counts["no_rollouts"] += 1
            continue
        correct = [rollout_tokens(tokenizer, r) for r in mine if r.correct]
        wrong = [rollout_tokens(tokenizer, r) for r in mine if not r.correct]
        if correct and wrong:
            group = ContrastGroup(item.id, correct, wrong, 1.0, "rollouts")
        elif strict:
            counts["skipped_strict"] += 1
            continue
        elif wrong:
            gold = written_answer_tokens(tokenizer, item, item.gold_completion)
            group = ContrastGroup(item.id, [gold], wrong, fallback_weight, "gold_fallback")
        elif item.wrong_completion is not None:
            negative = written_answer_tokens(tokenizer, item, item.wrong_completion)
            group = ContrastGroup(item.id, correct, [negative], fallback_weight, "wrong_fallback")
        else:
            counts["skipped_no_negative"] += 1
            continue
        groups.append(group)
        counts[group.kind] += 1
    return ContrastSet(groups=groups, counts={k: counts[k] for k in sorted(counts)})


def teacher_forced_contrast(tokenizer: Any, items: Sequence[TaskItem]) -> ContrastSet:
    """CAA's off-distribution contrast: each item's written gold answer vs its written wrong one."""
    groups = [
        ContrastGroup(
            item.id,
            [written_answer_tokens(tokenizer, item, item.gold_completion)],
            [written_answer_tokens(tokenizer, item, item.wrong_completion)],
            1.0,
            "teacher_forced",
        )
        for item in items
        if item.wrong_completion is not None
    ]
    return ContrastSet(groups=groups, counts={"teacher_forced": len(groups)})
