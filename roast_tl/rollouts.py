"""Rollouts: sample n graded completions per prompt, as plain data saved to and read from JSONL.

A rollout is what any engine produced (roast_tl, HF `generate`, vLLM): a prompt, the completion's
token ids and text, and its grade. Activations are read later through TransformerLens.
"""

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from roast_tl._io import append_jsonl, atomic_write_text, read_jsonl
from roast_tl._types import HookedModel, TokenIds
from roast_tl.generation import complete
from roast_tl.tasks.base import Task, TaskItem


@dataclass
class Rollout:
    """One sampled completion of one prompt, with its grade."""

    item_id: str
    sample_index: int
    prompt_text: str
    prompt_token_ids: TokenIds
    completion_token_ids: TokenIds
    completion: str
    answer: str | None
    correct: bool
    seed: int
    source: str = "roast_tl"

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "Rollout":
        """Build a rollout from a JSONL row; unknown keys are ignored, optional ones defaulted."""
        known = set(cls.__dataclass_fields__)
        missing = {"item_id", "prompt_text", "completion", "correct"} - set(row)
        if missing:
            raise ValueError(f"rollout row lacks {sorted(missing)}")
        kwargs = {k: v for k, v in row.items() if k in known}
        kwargs.setdefault("sample_index", 0)
        kwargs.setdefault("prompt_token_ids", [])
        kwargs.setdefault("completion_token_ids", [])
        kwargs.setdefault("answer", None)
        kwargs.setdefault("seed", -1)
        return cls(**kwargs)


def prompt_seed(seed: int, item_index: int) -> int:
    """Return the sampling seed of the prompt at `item_index`: independent of batching.

    >>> prompt_seed(0, 3), prompt_seed(1, 0)
    (3, 1000003)
    """
    return (seed * 1_000_003 + item_index) % (2**63 - 1)


def save_rollouts(
    rollouts: Sequence[Rollout], rollouts_path: str | os.PathLike[str], *, append: bool = False
) -> None:
    """Write rollouts as JSONL (one per line): appended and fsynced, or replacing atomically."""
    rows = [asdict(rollout) for rollout in rollouts]
    if append:
        append_jsonl(rollouts_path, rows)
    else:
        atomic_write_text(rollouts_path, "".join(json.dumps(row) + "\n" for row in rows))


def load_rollouts(rollouts_path: str | os.PathLike[str]) -> list[Rollout]:
    """Read rollouts from JSONL; a torn last line (an interrupted write) is dropped."""
    rollouts = []
    for number, row in read_jsonl(rollouts_path, torn_tail_ok=True):
        try:
            rollouts.append(Rollout.from_dict(row))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{rollouts_path}:{number}: bad rollout row ({err})") from err
    return rollouts


def sample_rollouts(
    model: HookedModel,
    task: Task,
    items: Sequence[TaskItem],
    *,
    n_rollouts: int = 8,
    temperature: float = 0.8,
    top_p: float = 0.9,
    max_new_tokens: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    rollouts_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[Rollout]:
    """Sample `n_rollouts` completions per item, grade them, and return them all.

    `batch_size` counts sequences (prompts × rollouts) per forward batch. With `rollouts_path`,
    rollouts already in that JSONL file are reused (resume) and new ones are appended prompt
    batch by prompt batch, so an interrupted run loses at most one batch.
    """
    if n_rollouts < 1:
        raise ValueError(f"n_rollouts must be at least 1, got {n_rollouts}")
    if not items:
        raise ValueError(f"no prompts to roll out for task {task.name!r} (empty item list)")
    max_new_tokens = max_new_tokens or task.max_new_tokens
    index_of = {item.id: i for i, item in enumerate(items)}
    done: dict[str, list[Rollout]] = {}
    if rollouts_path is not None and Path(rollouts_path).exists():
        for rollout in load_rollouts(rollouts_path):
            done.setdefault(rollout.item_id, []).append(rollout)
        # Keep only complete prompts; a partly written prompt is sampled again from its seed.
        done = {k: v for k, v in done.items() if len(v) >= n_rollouts and k in index_of}
        save_rollouts([r for k in done for r in done[k][:n_rollouts]], rollouts_path)
    todo = [item for item in items if item.id not in done]
    prompts_per_batch = max(1, batch_size // n_rollouts)
    bar = tqdm(
        total=len(items),
        initial=len(items) - len(todo),
        desc=f"rollouts ({task.name})",
        unit="prompt",
        disable=not progress,
    )
    for start in range(0, len(todo), prompts_per_batch):
        chunk = todo[start : start + prompts_per_batch]
        seeds = [prompt_seed(seed, index_of[item.id]) for item in chunk]
        completions = complete(
            model,
            [item.prompt for item in chunk],
            n=n_rollouts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seeds=seeds,
        )
        new: list[Rollout] = []
        for item, item_seed, samples in zip(chunk, seeds, completions, strict=True):
            for k, c in enumerate(samples):
                answer, correct = task.extract_and_grade(c.text, item)
                new.append(
                    Rollout(
                        item_id=item.id,
                        sample_index=k,
                        prompt_text=c.prompt_text,
                        prompt_token_ids=c.prompt_token_ids,
                        completion_token_ids=c.token_ids,
                        completion=c.text,
                        answer=answer,
                        correct=correct,
                        seed=item_seed,
                    )
                )
            done[item.id] = new[-n_rollouts:]
        if rollouts_path is not None:
            save_rollouts(new, rollouts_path, append=True)
        bar.update(len(chunk))
    bar.close()
    return [r for item in items for r in done[item.id][:n_rollouts]]
