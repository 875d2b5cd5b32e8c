"""Rollouts: sample n graded completions per prompt, as plain data saved to and read from JSONL.

A rollout is what any engine produced (roast_tl, HF `generate`, vLLM): a prompt, the completion's
token ids and text, and its grade. Activations are read later through TransformerLens.

Resuming (`sample_rollouts(..., rollouts_path=...)`): the JSONL file is an append-only store.

- Every row roast_tl writes carries its provenance in `fingerprint`: the model's and the
  tokenizer's fingerprints (`roast_tl._fingerprint`: what they compute, not how their path was
  spelled), `temperature`, `top_p`, `max_new_tokens`, the run's `seed`, `chat` (whether the chat
  template was applied; rows written before it was recorded count as made with the template
  whenever the tokenizer has one, as they were), a hash of the prompt's token ids, the sampler
  (roast_tl's `SAMPLER_VERSION`, or HF's for `engine="hf"`; the row's `source` names its
  engine), the `attention` the sampler computed with (`roast_tl._fast.unhooked_attention`:
  "sdpa" on a bridge's fast model, "eager" for the bridge's own, "hooked_transformer"; their
  logits differ in the last bits, so a near-tie can pick another token; rows written before it
  was recorded count as the eager ones they were), and the hook points that had hooks attached
  (an enclosing `steer`; rows sampled that way are never reused, since what the hooks did is
  unknown).
  Its `seed` field is the rollout's own seed, `rollout_seed(seed, item id, k)`: a stable
  hash, not the item's position in the list.
- A saved row is reused only when all of that equals what this run would produce for the same
  (item, k). Reused rows are graded again with the current task (grading is pure and cheap), so
  a corrected gold answer or grader never leaves stale grades.
- Nothing on disk is rewritten or deleted. Rows for other items, other tasks, other settings or
  `k >= n_rollouts` stay in the file and are filtered out in memory; what is missing is sampled
  under this run's settings and appended, batch by batch, in one locked, fsynced write each.
  The only bytes ever cut are a torn last line left by a killed write (it is not a row).
- When rows for this run's items were made under other settings (or are 0.1 rows without
  provenance), one `RoastWarning` says what differed, e.g. "rollouts.jsonl: 512 saved rows for
  these items were made with seed 0 (this run: seed 1); sampling anew (old rows kept)".
- Because rollout k is seeded by (seed, item id, k) and a row's tokens do not depend on the
  batch it was sampled in, growing `n_rollouts` from 4 to 8 samples only k = 4..7 (the first
  4 are the old 4), and a subset or a reordering of the items reuses their rows.
"""

import hashlib
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, get_args

from tqdm.auto import tqdm

from roast_tl._fast import hooked_attention, unhooked_attention
from roast_tl._fingerprint import model_fingerprint, token_ids_hash, tokenizer_fingerprint
from roast_tl._io import append_jsonl, atomic_write_text, read_jsonl
from roast_tl._tokens import encode_prompt, format_prompt, resolve_chat, tokenizer_of
from roast_tl._types import HookedModel, TokenIds
from roast_tl._warnings import RoastWarning
from roast_tl.engines import HF_SAMPLER, Engine, hf_generate, hf_model_for
from roast_tl.generation import Completion, complete
from roast_tl.hooks import hooked_points
from roast_tl.tasks.base import Task, TaskItem, check_item_ids

SAMPLER_VERSION = 2
"""Bumped whenever the sampling algorithm changes, so rows made by the old one stop matching."""

_REQUIRED = ("item_id", "prompt_text", "completion", "correct")


@dataclass
class Rollout:
    """One sampled completion of one prompt, with its grade.

    `seed` is this rollout's own sampling seed; `fingerprint` records the settings it was made
    under (None for rows from another engine or roast_tl 0.1: never reused by a resume).
    """

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
    fingerprint: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, row: dict[str, Any], *, vocab_size: int | None = None) -> "Rollout":
        """Build a rollout from a JSONL row, checking every field's type.

        Unknown keys are ignored, optional ones defaulted. `correct` must be a JSON boolean
        (the string "false" would count as correct), `item_id` a string, token ids lists of
        non-negative integers (below `vocab_size` when given).
        """
        missing = [key for key in _REQUIRED if key not in row]
        if missing:
            raise ValueError(f"rollout row lacks {sorted(missing)}")
        kwargs = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        kwargs.setdefault("sample_index", 0)
        kwargs.setdefault("prompt_token_ids", [])
        kwargs.setdefault("completion_token_ids", [])
        kwargs.setdefault("answer", None)
        kwargs.setdefault("seed", -1)
        _check_types(kwargs)
        rollout = cls(**kwargs)
        if vocab_size is not None:
            check_token_ids([rollout], vocab_size)
        return rollout


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_types(fields: dict[str, Any]) -> None:
    """Raise a TypeError naming the first field of a rollout row with the wrong type."""
    for key in ("item_id", "prompt_text", "completion", "source"):
        if key in fields and not isinstance(fields[key], str):
            raise TypeError(f"{key} must be a string, got {_kind(fields[key])}")
    if not isinstance(fields["correct"], bool):
        raise TypeError(
            f"correct must be true or false (a JSON boolean), got {_kind(fields['correct'])}"
        )
    if fields["answer"] is not None and not isinstance(fields["answer"], str):
        raise TypeError(f"answer must be a string or null, got {_kind(fields['answer'])}")
    for key in ("sample_index", "seed"):
        if not _is_int(fields[key]):
            raise TypeError(f"{key} must be an integer, got {_kind(fields[key])}")
    if fields["sample_index"] < 0:
        raise ValueError(f"sample_index must be >= 0, got {fields['sample_index']}")
    for key in ("prompt_token_ids", "completion_token_ids"):
        ids = fields[key]
        if not isinstance(ids, list) or not all(_is_int(t) for t in ids):
            raise TypeError(f"{key} must be a list of integers, got {_kind(ids)}")
    fingerprint = fields.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, dict):
        raise TypeError(f"fingerprint must be an object or null, got {_kind(fingerprint)}")


def check_token_ids(rollouts: Sequence[Rollout], vocab_size: int) -> None:
    """Raise a ValueError when a rollout's token ids fall outside [0, vocab_size).

    Call it before reading activations from rollouts another engine made: an id outside the
    model's vocabulary means they were tokenized for another model.
    """
    for r in rollouts:
        for key in ("prompt_token_ids", "completion_token_ids"):
            bad = [t for t in getattr(r, key) if not 0 <= t < vocab_size]
            if bad:
                raise ValueError(
                    f"rollout {r.item_id!r} #{r.sample_index}: {key} holds {bad[0]}, outside "
                    f"the vocabulary [0, {vocab_size}); these rollouts were tokenized for "
                    "another model or tokenizer"
                )


def vocab_size_of(model: HookedModel) -> int:
    """The number of token ids the model accepts: `cfg.d_vocab`, else the tokenizer's length."""
    d_vocab = getattr(model.cfg, "d_vocab", None)
    if isinstance(d_vocab, int) and d_vocab > 0:
        return d_vocab
    return len(tokenizer_of(model))


def grade_rollouts(
    task: Task,
    items: Sequence[TaskItem],
    completions: Sequence[Rollout | Mapping[str, Any]],
) -> list[Rollout]:
    """Grade completions made by any engine (vLLM, HF, roast_tl) into rollouts, in input order.

    Each completion is a `Rollout` or a JSONL row (see README, "Rollouts JSONL schema") with at
    least `item_id` and `completion`; its `answer` and `correct` are (re)computed with
    `task.extract_and_grade(completion, item)`, so every engine's rows are graded the same
    way. A row without `prompt_text` gets the item's prompt, without `source` "external".
    """
    item_of = {item.id: item for item in items}
    graded = []
    for i, completion in enumerate(completions):
        row = asdict(completion) if isinstance(completion, Rollout) else dict(completion)
        for key in ("item_id", "completion"):
            if key not in row:
                raise ValueError(f"completions[{i}] lacks {key!r}; see the rollouts JSONL schema")
        item = item_of.get(row["item_id"])
        if item is None:
            raise ValueError(
                f"completions[{i}] answers item {row['item_id']!r}, which is not in items; "
                "pass the items the completions were sampled for"
            )
        if not isinstance(row["completion"], str):
            raise TypeError(f"completions[{i}]: completion must be a string")
        answer, correct = task.extract_and_grade(row["completion"], item)
        row.setdefault("prompt_text", item.prompt)
        row.setdefault("source", "external")
        graded.append(Rollout.from_dict({**row, "answer": answer, "correct": correct}))
    return graded


def rollout_seed(seed: int, item_id: str, sample_index: int) -> int:
    """The sampling seed of rollout `sample_index` of item `item_id` in a run seeded `seed`.

    A stable hash (the same in every process and Python version), independent of the item's
    position in the list and of batching; distinct for distinct arguments in practice.

    >>> rollout_seed(0, "q1", 3)
    6136312087246050460
    >>> rollout_seed(0, "q1", 3) != rollout_seed(0, "q1", 4) != rollout_seed(1, "q1", 3)
    True
    """
    key = f"{int(seed)}\x00{item_id}\x00{int(sample_index)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> 1


def save_rollouts(
    rollouts: Sequence[Rollout], rollouts_path: str | os.PathLike[str], *, append: bool = False
) -> None:
    """Write rollouts as JSONL (one per line): appended and fsynced, or replacing atomically."""
    rows = [asdict(rollout) for rollout in rollouts]
    if append:
        append_jsonl(rollouts_path, rows)
    else:
        atomic_write_text(rollouts_path, "".join(json.dumps(row) + "\n" for row in rows))


def _read(rollouts_path: str | os.PathLike[str]) -> list[tuple[int, Rollout]]:
    rollouts = []
    for number, row in read_jsonl(rollouts_path, torn_tail_ok=True):
        try:
            rollouts.append((number, Rollout.from_dict(row)))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{rollouts_path}:{number}: bad rollout row ({err})") from err
    return rollouts


def load_rollouts(
    rollouts_path: str | os.PathLike[str], *, vocab_size: int | None = None
) -> list[Rollout]:
    """Read every rollout in a JSONL file; a torn last line (an interrupted write) is dropped.

    Every row's field types are checked; with `vocab_size`, so are its token ids. Errors name
    the file and line. The file is append-only, so it may hold rows of several runs: a
    `RoastWarning` says so when one (item, k) was sampled under different settings. To get
    exactly one run's rows, call `sample_rollouts` again with that run's settings and
    `rollouts_path`: it reuses them all and samples nothing.
    """
    rollouts = []
    settings: dict[tuple[str, int], set[str]] = {}
    for number, rollout in _read(rollouts_path):
        if vocab_size is not None:
            try:
                check_token_ids([rollout], vocab_size)
            except ValueError as err:
                raise ValueError(f"{rollouts_path}:{number}: {err}") from err
        key = (rollout.item_id, rollout.sample_index)
        settings.setdefault(key, set()).add(json.dumps(rollout.fingerprint, sort_keys=True))
        rollouts.append(rollout)
    mixed = sum(len(s) > 1 for s in settings.values())
    if mixed:
        warnings.warn(
            f"{rollouts_path} holds rows of several runs: {mixed} (item, sample_index) pairs "
            "were sampled under different settings (see each row's fingerprint); to get one "
            "run's rows, call sample_rollouts with its settings and this rollouts_path",
            RoastWarning,
            stacklevel=2,
        )
    return rollouts


_FIELD_WORDS = {
    "hooks": "hooks attached (steered)",
    "model": "another model",
    "tokenizer": "another tokenizer",
    "prompt": "other prompt text",
    "sampler": "an older sampler",
}


def _difference(stale: Sequence[Rollout], expected: dict[str, dict[str, Any]], seed: int) -> str:
    """One phrase per setting that differs between `stale` rows and this run."""
    old: dict[str, Counter[str]] = {}
    for r in stale:
        fingerprint = r.fingerprint
        if fingerprint is None:
            old.setdefault("provenance", Counter())["none"] += 1
            continue
        want = expected[r.item_id]
        for key in sorted(set(fingerprint) | set(want)):
            if fingerprint.get(key) != want.get(key):
                old.setdefault(key, Counter())[repr(fingerprint.get(key))] += 1
        if fingerprint == want:
            old.setdefault("rollout seed", Counter())[str(r.seed)] += 1
    some = next(iter(expected.values()))
    parts = []
    for key, values in old.items():
        if key == "provenance":
            parts.append("no provenance (roast_tl 0.1 or another engine)")
        elif key in _FIELD_WORDS:
            parts.append(_FIELD_WORDS[key])
        elif key == "rollout seed":
            parts.append(f"other per-rollout seeds than rollout_seed({seed}, item, k)")
        else:
            shown = " or ".join(v for v, _ in values.most_common(3))
            parts.append(f"{key} {shown} (this run: {key} {some.get(key)!r})")
    return ", ".join(parts)


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
    chat: bool | None = None,
    engine: Engine = "roast_tl",
) -> list[Rollout]:
    """Sample `n_rollouts` completions per item, grade them, and return them all (item-major).

    `chat`: None applies the tokenizer's chat template when it has one, False feeds the prompts
    as plain text (base-model style), True requires a template; it is part of each row's
    fingerprint, so rows sampled under another setting are never reused.

    Rollout k of an item samples from `rollout_seed(seed, item.id, k)`, so results do not
    depend on `batch_size` (sequences per forward batch), on the order of `items`, or on what
    else is in the list. With `rollouts_path`, matching rows already in that JSONL file are
    reused and new ones are appended batch by batch (an interrupted run loses at most one
    batch); the file is never rewritten. See the module docstring for the exact policy.

    `engine` picks the sampler (`roast_tl.engines`): `"roast_tl"` (above), or `"hf"`: HF
    `generate(num_return_sequences=...)` once per item on the unhooked HF model, seeded with
    the item's first missing rollout's seed (rows record it; `batch_size` is not used).
    """
    if engine not in get_args(Engine):
        raise ValueError(f"engine must be one of {get_args(Engine)}, got {engine!r}")
    if engine == "hf":
        hf_model_for(model)  # refuse hooks, or a model without an HF model, before any work
    if n_rollouts < 1:
        raise ValueError(f"n_rollouts must be at least 1, got {n_rollouts}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not items:
        raise ValueError(f"no prompts to roll out for task {task.name!r} (empty item list)")
    check_item_ids(items, f"sample_rollouts on task {task.name!r}")
    max_new_tokens = max_new_tokens or task.max_new_tokens
    tokenizer = tokenizer_of(model)
    chat = resolve_chat(tokenizer, chat)
    settings = {
        "sampler": SAMPLER_VERSION if engine == "roast_tl" else HF_SAMPLER,
        "model": model_fingerprint(model),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "temperature": float(temperature),
        "top_p": float(top_p),
        "max_new_tokens": int(max_new_tokens),
        "seed": int(seed),
        "chat": chat,
        "attention": unhooked_attention(model),
        "hooks": hooked_points(model),
    }
    item_of = {item.id: item for item in items}
    expected = {
        item.id: {
            **settings,
            "prompt": token_ids_hash(
                encode_prompt(tokenizer, format_prompt(tokenizer, item.prompt, chat=chat))
            ),
        }
        for item in items
    }
    done: dict[tuple[str, int], Rollout] = {}
    # Rows sampled with hooks attached (inside a `steer`) record where; what the hooks did is
    # unknown, so such rows are never reused.
    if rollouts_path is not None and Path(rollouts_path).exists() and not settings["hooks"]:
        done = _reusable(model, task, item_of, expected, n_rollouts, int(seed), rollouts_path)
    todo = [(item, k) for item in items for k in range(n_rollouts) if (item.id, k) not in done]
    bar = tqdm(
        total=len(items) * n_rollouts,
        initial=len(items) * n_rollouts - len(todo),
        desc=f"rollouts ({task.name})",
        unit="rollout",
        disable=not progress,
    )
    sampling = {
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "chat": chat,
    }
    if engine == "hf":
        missing: dict[str, list[tuple[TaskItem, int]]] = {}
        for item, k in todo:
            missing.setdefault(item.id, []).append((item, k))
        jobs = [_hf_job(model, chunk, seed, sampling) for chunk in missing.values()]
    else:
        jobs = [
            _roast_tl_job(model, todo[i : i + batch_size], seed, sampling)
            for i in range(0, len(todo), batch_size)
        ]
    for job in jobs:
        chunk, seeds, completions = job()
        new: list[Rollout] = []
        for (item, k), job_seed, c in zip(chunk, seeds, completions, strict=True):
            answer, correct = task.extract_and_grade(c.text, item)
            rollout = Rollout(
                item_id=item.id,
                sample_index=k,
                prompt_text=c.prompt_text,
                prompt_token_ids=c.prompt_token_ids,
                completion_token_ids=c.token_ids,
                completion=c.text,
                answer=answer,
                correct=correct,
                seed=job_seed,
                source=engine,
                fingerprint=expected[item.id],
            )
            done[(item.id, k)] = rollout
            new.append(rollout)
        if rollouts_path is not None:
            save_rollouts(new, rollouts_path, append=True)
        bar.update(len(chunk))
    bar.close()
    return [done[(item.id, k)] for item in items for k in range(n_rollouts)]


_Job = Callable[[], tuple[list[tuple[TaskItem, int]], list[int], list[Completion]]]


def _roast_tl_job(
    model: HookedModel, chunk: list[tuple[TaskItem, int]], seed: int, sampling: dict[str, Any]
) -> _Job:
    """One batch of roast_tl's sampler: rollout k of an item draws from its own seed."""

    def run() -> tuple[list[tuple[TaskItem, int]], list[int], list[Completion]]:
        seeds = [rollout_seed(seed, item.id, k) for item, k in chunk]
        out = complete(model, [item.prompt for item, _ in chunk], seeds=seeds, **sampling)
        return chunk, seeds, [c for (c,) in out]

    return run


def _hf_job(
    model: HookedModel, chunk: list[tuple[TaskItem, int]], seed: int, sampling: dict[str, Any]
) -> _Job:
    """One HF `generate` call for an item's missing rollouts (`chunk`, all of one item),
    seeded by the first one's seed."""

    def run() -> tuple[list[tuple[TaskItem, int]], list[int], list[Completion]]:
        item = chunk[0][0]
        call_seed = rollout_seed(seed, item.id, chunk[0][1])
        tokenizer = tokenizer_of(model)
        generation = {key: value for key, value in sampling.items() if key != "chat"}
        text = format_prompt(tokenizer, item.prompt, chat=sampling["chat"])
        prompt = encode_prompt(tokenizer, text)
        rows = hf_generate(model, prompt, n=len(chunk), seed=call_seed, **generation)
        completions = [
            Completion(text, prompt, row, tokenizer.decode(row, skip_special_tokens=True))
            for row in rows
        ]
        return chunk, [call_seed] * len(chunk), completions

    return run


def _reusable(
    model: HookedModel,
    task: Task,
    item_of: dict[str, TaskItem],
    expected: dict[str, dict[str, Any]],
    n_rollouts: int,
    seed: int,
    rollouts_path: str | os.PathLike[str],
) -> dict[tuple[str, int], Rollout]:
    """The saved rows this run may reuse, keyed (item id, k), regraded; warn about the rest."""
    vocab_size = vocab_size_of(model)
    templated = bool(getattr(tokenizer_of(model), "chat_template", None))
    # Rows written before `attention` was recorded were sampled with the hooked path's attention
    # (on a bridge, eager: its fast model used eager too before it used SDPA).
    legacy_attention = hooked_attention(model)
    done: dict[tuple[str, int], Rollout] = {}
    stale: list[Rollout] = []
    for number, r in _read(rollouts_path):
        key = (r.item_id, r.sample_index)
        if r.item_id not in item_of or r.sample_index >= n_rollouts or key in done:
            continue
        if r.fingerprint is not None and "chat" not in r.fingerprint:
            # Written before `chat` was recorded: the template was applied when there was one.
            r = replace(r, fingerprint={**r.fingerprint, "chat": templated})
        if r.fingerprint is not None and "attention" not in r.fingerprint:
            r = replace(r, fingerprint={**r.fingerprint, "attention": legacy_attention})
        # An "hf" row's seed is its generate call's (shared by the rollouts sampled with it).
        own_seed = r.source == "hf" or r.seed == rollout_seed(seed, *key)
        if r.fingerprint != expected[r.item_id] or not own_seed:
            stale.append(r)
            continue
        try:
            check_token_ids([r], vocab_size)
        except ValueError as err:
            raise ValueError(f"{rollouts_path}:{number}: {err}") from err
        answer, correct = task.extract_and_grade(r.completion, item_of[r.item_id])
        if (answer, correct) != (r.answer, r.correct):
            r = replace(r, answer=answer, correct=correct)
        done[key] = r
    stale = [r for r in stale if (r.item_id, r.sample_index) not in done]
    if stale:
        warnings.warn(
            f"{rollouts_path}: {len(stale)} saved rows for these items were made with "
            f"{_difference(stale, expected, seed)}; sampling anew (old rows kept)",
            RoastWarning,
            stacklevel=3,
        )
    return done
