"""ROC contrast groups: per prompt, its correct rollouts against its incorrect ones.

Fallbacks (ROAST authors' code): no correct rollout -> the gold answer is the positive; no
incorrect rollout -> the task's wrong answer is the negative; both fallback groups carry
`fallback_weight`. Neither -> the prompt is skipped. `strict=True` skips every fallback prompt.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from roast_tl.generation import encode_prompt, format_prompt, tokenizer_of
from roast_tl.rollouts import Rollout
from roast_tl.tasks.base import TaskItem

TokenIds = list[int]


@dataclass
class ContrastGroup:
    """One prompt's contrast: sequences (prompt ⊕ response token ids) on each side.

    Every positive × negative pair has weight `weight`; with uniform weights the group's mean
    pair difference is mean(h over positives) - mean(h over negatives).
    """

    item_id: str
    positives: list[tuple[TokenIds, TokenIds]]
    negatives: list[tuple[TokenIds, TokenIds]]
    weight: float
    kind: str  # "rollouts", "gold_fallback", "wrong_fallback"

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


def rollout_tokens(model: Any, rollout: Rollout) -> tuple[TokenIds, TokenIds]:
    """Return (prompt ids, completion ids), tokenizing the texts when another engine left no ids."""
    prompt = rollout.prompt_token_ids or encode_prompt(model, rollout.prompt_text)
    completion = rollout.completion_token_ids or list(
        tokenizer_of(model)(rollout.completion, add_special_tokens=False)["input_ids"]
    )
    return list(prompt), list(completion)


def written_answer_tokens(model: Any, item: TaskItem, text: str) -> tuple[TokenIds, TokenIds]:
    """Return (prompt ids, answer ids + end-of-turn) for a teacher-forced written answer."""
    tokenizer = tokenizer_of(model)
    prompt = encode_prompt(model, format_prompt(model, item.prompt))
    answer = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        answer.append(int(tokenizer.eos_token_id))
    return prompt, answer


def build_contrast_set(
    model: Any,
    rollouts: Sequence[Rollout],
    items: Sequence[TaskItem],
    *,
    strict: bool = False,
    fallback_weight: float = 0.5,
) -> ContrastSet:
    """Group rollouts by prompt into correct-vs-incorrect contrasts, applying the fallbacks."""
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
        correct = [rollout_tokens(model, r) for r in mine if r.correct]
        wrong = [rollout_tokens(model, r) for r in mine if not r.correct]
        if correct and wrong:
            groups.append(ContrastGroup(item.id, correct, wrong, 1.0, "rollouts"))
        elif strict:
            counts["skipped_strict"] += 1
            continue
        elif wrong:
            gold = written_answer_tokens(model, item, item.gold_completion)
            groups.append(ContrastGroup(item.id, [gold], wrong, fallback_weight, "gold_fallback"))
        elif item.wrong_completion is not None:
            negative = written_answer_tokens(model, item, item.wrong_completion)
            groups.append(ContrastGroup(item.id, correct, [negative], fallback_weight, "wrong_fallback"))
        else:
            counts["skipped_no_negative"] += 1
            continue
        counts[groups[-1].kind] += 1
    return ContrastSet(groups=groups, counts={k: counts[k] for k in sorted(counts)})
