"""Rollouts: sample n graded completions per prompt, as plain data saved to and read from JSONL.

A rollout is what any engine produced (roast_tl, HF `generate`, vLLM): a prompt, the completion's
token ids and text, and its grade. Activations are read later through TransformerLens.
"""

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from roast_tl.generation import encode_prompt, format_prompt, generate_tokens, tokenizer_of
from roast_tl.tasks.base import Task, TaskItem


@dataclass
class Rollout:
    """One sampled completion of one prompt, with its grade."""

    item_id: str
    sample_index: int
    prompt_text: str
    prompt_token_ids: list[int]
    completion_token_ids: list[int]
    completion: str
    answer: str | None
    correct: bool
    seed: int
    source: str = "roast_tl"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> "Rollout":
        known = {f for f in cls.__dataclass_fields__}
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
    """Return the sampling seed of the prompt at `item_index`: independent of batching."""
    return (seed * 1_000_003 + item_index) % (2**63 - 1)


def save_rollouts(rollouts: Sequence[Rollout], path: str | os.PathLike[str], *, append: bool = False) -> None:
    """Write rollouts as JSONL (one per line), flushed and fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for rollout in rollouts:
            handle.write(json.dumps(asdict(rollout)) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def load_rollouts(path: str | os.PathLike[str]) -> list[Rollout]:
    """Read rollouts from JSONL; a torn last line (an interrupted write) is dropped, others are errors."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    rollouts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break  # the interrupted final write of a run that was killed
            raise ValueError(f"{path}:{number}: invalid JSON in rollouts file ({err})") from err
        try:
            rollouts.append(Rollout.from_dict(row))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}:{number}: bad rollout row ({err})") from err
    return rollouts


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sample_rollouts(
    model: Any,
    task: Task,
    items: Sequence[TaskItem],
    *,
    n_rollouts: int = 8,
    temperature: float = 0.8,
    top_p: float = 0.9,
    max_new_tokens: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[Rollout]:
    """Sample `n_rollouts` completions per item, grade them, and return them all.

    With `path`, rollouts already in that JSONL file are reused (resume) and new ones are appended
    prompt batch by prompt batch, so an interrupted run loses at most one batch.
    """
    if n_rollouts < 1:
        raise ValueError(f"n_rollouts must be at least 1, got {n_rollouts}")
    if not items:
        raise ValueError(f"no prompts to roll out for task {task.name!r} (empty item list)")
    tokenizer = tokenizer_of(model)
    max_new_tokens = max_new_tokens or task.max_new_tokens
    index_of = {item.id: i for i, item in enumerate(items)}
    done: dict[str, list[Rollout]] = {}
    if path is not None and Path(path).exists():
        for rollout in load_rollouts(path):
            done.setdefault(rollout.item_id, []).append(rollout)
        # Keep only complete prompts; a partly written prompt is sampled again from its seed.
        done = {k: v for k, v in done.items() if len(v) >= n_rollouts and k in index_of}
        save_rollouts([r for k in done for r in done[k][:n_rollouts]], path)
    todo = [item for item in items if item.id not in done]
    prompts_per_batch = max(1, batch_size // n_rollouts)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=f"rollouts ({task.name})",
               unit="prompt", disable=not progress)
    for chunk in _chunks(todo, prompts_per_batch):
        texts = [format_prompt(model, item.prompt) for item in chunk]
        encoded = [encode_prompt(model, text) for text in texts]
        seeds = [prompt_seed(seed, index_of[item.id]) for item in chunk]
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        out = generate_tokens(
            model,
            [ids for ids in encoded for _ in range(n_rollouts)],
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            generators=[g for g in generators for _ in range(n_rollouts)],
        )
        new: list[Rollout] = []
        for p, item in enumerate(chunk):
            for k in range(n_rollouts):
                tokens = out.tokens[p * n_rollouts + k]
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                new.append(Rollout(
                    item_id=item.id, sample_index=k, prompt_text=texts[p],
                    prompt_token_ids=encoded[p], completion_token_ids=tokens, completion=text,
                    answer=task.extract_answer(text), correct=task.grade(text, item), seed=seeds[p],
                ))
            done[item.id] = new[-n_rollouts:]
        if path is not None:
            save_rollouts(new, path, append=True)
        bar.update(len(chunk))
    bar.close()
    return [r for item in items for r in done[item.id][:n_rollouts]]


def accuracy_by_item(rollouts: Sequence[Rollout]) -> dict[str, float]:
    """Return the fraction of correct rollouts per item id."""
    totals: dict[str, list[int]] = {}
    for r in rollouts:
        totals.setdefault(r.item_id, []).append(int(r.correct))
    return {k: sum(v) / len(v) for k, v in totals.items()}
