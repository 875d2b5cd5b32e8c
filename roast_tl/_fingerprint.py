"""Fingerprints: short hashes that say whether saved work was made by the same model, tokenizer,
task data and prompts, however their paths were spelled.

- `model_fingerprint`: the model's config (minus names, paths and devices), every parameter's
  name, shape and dtype, and 64 evenly spaced values of each parameter. A few milliseconds for a
  135M model; `./m` and `/abs/m`, or a copied folder, give the same fingerprint, other weights
  another one. The device is left out on purpose: rollouts made on a GPU are reused on a CPU.
- `tokenizer_fingerprint`: vocabulary size, special tokens and their ids, the chat template and
  the strings of 256 evenly spaced token ids.
- `task_fingerprint`: the task's name, max_new_tokens, and every item's fields, split by split;
  for a task graded by a `grader` (not `extract_answer`), the grader's name too.
- `token_ids_hash`: a prompt's token ids (the formatted prompt the model sees).

They are recomputed on every call (never cached): weights edited in place change the fingerprint.
"""

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch

from roast_tl._types import HookedModel
from roast_tl.tasks.base import Task

_HEX = 16  # hex digits kept: 64 bits, plenty to tell settings apart
_SAMPLES_PER_PARAMETER = 64
_SAMPLED_TOKENS = 256

# Config keys that name, place or initialize a model without changing what it computes.
_CONFIG_IGNORED = frozenset(
    {
        "model_name",
        "tokenizer_name",
        "device",
        "n_devices",
        "default_padding_side",
        "seed",
        "from_checkpoint",
        "checkpoint_index",
        "checkpoint_label_type",
        "checkpoint_value",
        "n_params",
        "init_mode",
        "init_weights",
        "initializer_range",
        "trust_remote_code",
        "_name_or_path",
    }
)


def digest(value: Any) -> str:
    """A short, stable hash of a JSON-able value (dict keys sorted; other objects by `str`).

    >>> digest({"b": 1, "a": [2]}) == digest({"a": [2], "b": 1})
    True
    >>> len(digest("x"))
    16
    """
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:_HEX]


def token_ids_hash(token_ids: Sequence[int]) -> str:
    """A short hash of a token id sequence.

    >>> token_ids_hash([1, 2, 3]) == token_ids_hash([1, 2, 3]) != token_ids_hash([1, 2])
    True
    """
    return digest([int(t) for t in token_ids])


def _config_dict(cfg: Any) -> dict[str, Any]:
    raw = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))
    return {str(k): v for k, v in raw.items() if str(k) not in _CONFIG_IGNORED}


def model_fingerprint(model: HookedModel) -> str:
    """Identify a model by what it computes: config, parameter layout and sampled weights."""
    header = []
    samples = []
    named: Any = model.named_parameters  # type: ignore[attr-defined]
    for name, parameter in named():
        header.append([name, list(parameter.shape), str(parameter.dtype)])
        if parameter.device.type == "meta" or parameter.numel() == 0:
            continue
        flat = parameter.detach().reshape(-1)
        step = max(1, flat.numel() // _SAMPLES_PER_PARAMETER)
        samples.append(flat[::step][:_SAMPLES_PER_PARAMETER].to(torch.float64).cpu())
    values = torch.cat(samples).numpy().tobytes() if samples else b""
    config = digest(_config_dict(model.cfg))
    return digest([config, header, hashlib.sha256(values).hexdigest()])


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Identify a tokenizer by its vocabulary size, special tokens, chat template and sampled
    token strings."""
    size = len(tokenizer)
    step = max(1, size // _SAMPLED_TOKENS)
    sampled = tokenizer.convert_ids_to_tokens(list(range(0, size, step))) if size else []
    return digest(
        {
            "size": size,
            "special": sorted(
                zip(
                    map(str, getattr(tokenizer, "all_special_tokens", [])),
                    map(int, getattr(tokenizer, "all_special_ids", [])),
                    strict=False,
                )
            ),
            "ids": [getattr(tokenizer, f"{k}_token_id", None) for k in ("bos", "eos", "pad")],
            "chat_template": getattr(tokenizer, "chat_template", None),
            "sampled": [str(t) for t in sampled],
        }
    )


def task_fingerprint(task: Task) -> str:
    """Identify a task's data: its name, max_new_tokens, splits and every item's fields (and the
    name of its `grader`, when it has one)."""
    grader = {} if task.grader is None else {"grader": _grader_name(task.grader)}
    return digest(
        {
            **grader,
            "name": task.name,
            "max_new_tokens": task.max_new_tokens,
            "splits": {
                split: [dataclasses.asdict(item) for item in items]
                for split, items in sorted(task.splits.items())
            },
            "few_shot": [dataclasses.asdict(item) for item in task.few_shot],
        }
    )


def _grader_name(grader: Any) -> str:
    """A grader's `name` (the shipped ones, e.g. "regex:..."), else its qualified name."""
    name = getattr(grader, "name", None)
    if isinstance(name, str):
        return name
    return str(getattr(grader, "__qualname__", type(grader).__qualname__))


def run_fingerprints(model: HookedModel, task: Task) -> dict[str, str]:
    """The fingerprints a cached result depends on: model, tokenizer and task data, and the
    attention its generations compute with (`roast_tl._fast.unhooked_attention`: SDPA and eager
    logits differ in the last bits, so a greedy answer can too)."""
    from roast_tl._fast import unhooked_attention  # _fast drives the model; keep this module pure

    return {
        "model": model_fingerprint(model),
        "tokenizer": tokenizer_fingerprint(model.tokenizer),
        "task_data": task_fingerprint(task),
        "attention": unhooked_attention(model),
    }
