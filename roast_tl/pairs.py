"""ROC contrast groups: per prompt, its correct rollouts against its incorrect ones.

Fallbacks (ROAST authors' code): no correct rollout -> the gold answer is the positive; no
incorrect rollout -> the task's wrong answer is the negative; both fallback groups carry
`fallback_weight`. Neither -> the prompt is skipped. `strict=True` skips every fallback prompt.

Pure over token ids: rollouts carry their own ids, and the tokenizer (not a model) is needed only
for written fallback answers, for rollouts another engine saved without ids, and to check that
every id is in its vocabulary.
"""

import numbers
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from roast_tl._tokens import encode_prompt, encode_text, format_prompt
from roast_tl._types import TokenIds
from roast_tl._warnings import RoastWarning
from roast_tl.rollouts import Rollout
from roast_tl.tasks.base import TaskItem, check_item_ids

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


def _vocab_size(tokenizer: Any) -> int | None:
    """`len(tokenizer)` (the vocabulary with added tokens), or None when it has no length."""
    try:
        return len(tokenizer)
    except TypeError:
        return None


def _checked_ids(ids: Any, rollout: Rollout, field_name: str, vocab_size: int | None) -> TokenIds:
    """`ids` as a list of ints in [0, vocab_size), or a ValueError naming the rollout."""
    where = f"rollout {rollout.sample_index} of item {rollout.item_id!r}"
    if not isinstance(ids, list | tuple) or not all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids
    ):
        raise ValueError(
            f"{where}: {field_name} must be a list of int token ids, got {str(ids)[:60]} "
            f"({type(ids).__name__}); write the ids as a JSON list of integers"
        )
    checked = [int(i) for i in ids]
    bad = [i for i in checked if i < 0 or (vocab_size is not None and i >= vocab_size)]
    if bad:
        allowed = f"[0, {vocab_size})" if vocab_size is not None else "[0, ...)"
        raise ValueError(
            f"{where}: {field_name} holds {len(bad)} token id(s) outside this tokenizer's "
            f"vocabulary {allowed} (e.g. {bad[0]}); were the rollouts made with another "
            "tokenizer? Leave the ids empty to re-tokenize the texts"
        )
    return checked


def rollout_tokens(tokenizer: Any, rollout: Rollout) -> SequenceIds:
    """Return (prompt ids, completion ids), tokenizing the texts when another engine left no ids.

    Ids must be lists of ints inside the tokenizer's vocabulary (`len(tokenizer)`); anything else
    raises a ValueError naming the rollout's item id and sample index.
    """
    return _rollout_tokens(tokenizer, rollout, _vocab_size(tokenizer))


def _rollout_tokens(tokenizer: Any, rollout: Rollout, vocab_size: int | None) -> SequenceIds:
    """`rollout_tokens` with the vocabulary size looked up once by the caller."""
    prompt = _checked_ids(rollout.prompt_token_ids, rollout, "prompt_token_ids", vocab_size)
    completion = _checked_ids(
        rollout.completion_token_ids, rollout, "completion_token_ids", vocab_size
    )
    return (
        prompt or encode_prompt(tokenizer, rollout.prompt_text),
        completion or encode_text(tokenizer, rollout.completion),
    )


def written_answer_tokens(
    tokenizer: Any,
    item: TaskItem,
    text: str,
    *,
    prompt: TokenIds | None = None,
    chat: bool = True,
) -> SequenceIds:
    """Return (prompt ids, answer ids + end-of-turn) for a teacher-forced written answer.

    `prompt`: the prompt's ids as the model saw them (a fallback reuses its rollouts' ids, so
    it is formatted as they were); else the item's prompt, chat-templated when `chat` and the
    tokenizer has a template.
    """
    if not isinstance(text, str):
        raise TypeError(
            f"item {item.id!r}: the written answer to teacher-force must be a string, got "
            f"{text!r}; set the item's gold_completion / wrong_completion"
        )
    if prompt is None:
        prompt = encode_prompt(tokenizer, format_prompt(tokenizer, item.prompt, chat=chat))
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

    `tokenizer` is the model's (`model.tokenizer`); it encodes written fallback answers and
    rollouts saved without ids, and bounds the token ids (a ValueError names a bad rollout).
    Rollouts whose `item_id` matches no item (another task, an int id) are counted, by distinct
    item id, in `counts["unknown_item"]`, with a `RoastWarning`.
    """
    if not 0 < fallback_weight <= 1:
        raise ValueError(f"fallback_weight must be in (0, 1], got {fallback_weight}")
    check_item_ids(items, "build_contrast_set items")
    known = {item.id for item in items}
    by_item: dict[str, list[Rollout]] = {}
    unknown: dict[str, int] = {}  # repr(item_id) -> how many rollouts
    for rollout in rollouts:
        if isinstance(rollout.item_id, str) and rollout.item_id in known:
            by_item.setdefault(rollout.item_id, []).append(rollout)
        else:
            key = repr(rollout.item_id)
            unknown[key] = unknown.get(key, 0) + 1
    counts: Counter[str] = Counter()
    if unknown:
        counts["unknown_item"] = len(unknown)
        typed = any(not isinstance(r.item_id, str) for r in rollouts)
        hint = "; item ids are strings, and a rollout's int id never matches" if typed else ""
        warnings.warn(
            f"{sum(unknown.values())} rollout(s) of {len(unknown)} item id(s) match none of the "
            f"{len(items)} items (e.g. {next(iter(unknown))}) and are left out{hint}; pass their "
            "items too if they should count",
            RoastWarning,
            stacklevel=2,
        )
    groups = []
    vocab_size = _vocab_size(tokenizer)
    for item in items:
        mine = by_item.get(item.id, [])
        if not mine:
            counts["no_rollouts"] += 1
            continue
        correct = [_rollout_tokens(tokenizer, r, vocab_size) for r in mine if r.correct]
        wrong = [_rollout_tokens(tokenizer, r, vocab_size) for r in mine if not r.correct]
        if correct and wrong:
            group = ContrastGroup(item.id, correct, wrong, 1.0, "rollouts")
        elif strict:
            counts["skipped_strict"] += 1
            continue
        elif wrong:
            # The written answer follows the prompt as the rollouts saw it (chat or plain).
            gold = written_answer_tokens(tokenizer, item, item.gold_completion, prompt=wrong[0][0])
            group = ContrastGroup(item.id, [gold], wrong, fallback_weight, "gold_fallback")
        elif item.wrong_completion is not None:
            negative = written_answer_tokens(
                tokenizer, item, item.wrong_completion, prompt=correct[0][0]
            )
            group = ContrastGroup(item.id, correct, [negative], fallback_weight, "wrong_fallback")
        else:
            counts["skipped_no_negative"] += 1
            continue
        groups.append(group)
        counts[group.kind] += 1
    return ContrastSet(groups=groups, counts={k: counts[k] for k in sorted(counts)})


def teacher_forced_contrast(
    tokenizer: Any, items: Sequence[TaskItem], *, chat: bool = True
) -> ContrastSet:
    """CAA's off-distribution contrast: each item's written gold answer vs its written wrong one.

    Items without a `wrong_completion` are skipped and counted as `skipped_no_negative`.
    `chat=False` teacher-forces after the plain prompt, without the chat template.
    """
    check_item_ids(items, "teacher_forced_contrast items")
    groups = [
        ContrastGroup(
            item.id,
            [written_answer_tokens(tokenizer, item, item.gold_completion, chat=chat)],
            [written_answer_tokens(tokenizer, item, item.wrong_completion, chat=chat)],
            1.0,
            "teacher_forced",
        )
        for item in items
        if item.wrong_completion is not None
    ]
    skipped = len(items) - len(groups)
    counts = {"teacher_forced": len(groups)}
    if skipped:
        counts["skipped_no_negative"] = skipped
    return ContrastSet(groups=groups, counts=counts)
