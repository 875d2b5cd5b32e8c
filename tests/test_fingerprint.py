"""Fingerprints: the same model, tokenizer or task data however it was spelled or loaded; a
different one as soon as what it computes or holds differs."""

import dataclasses
import hashlib

import torch

from roast_tl._fingerprint import (
    digest,
    model_fingerprint,
    task_fingerprint,
    token_ids_hash,
    tokenizer_fingerprint,
)
from roast_tl.tasks.base import Task
from tests.tiny_model import make_tiny_model, make_tiny_tokenizer, tiny_task


def test_digest_is_sha256_of_sorted_compact_json():
    assert digest({"b": 1, "a": [2]}) == hashlib.sha256(b'{"a": [2], "b": 1}').hexdigest()[:16]
    assert token_ids_hash([1, 2]) == hashlib.sha256(b"[1, 2]").hexdigest()[:16]


def test_the_model_fingerprint_ignores_the_path_and_follows_the_weights(tiny_model):
    again = make_tiny_model()  # the same weights, booted from another temp folder
    assert again.cfg.model_name != tiny_model.cfg.model_name
    assert model_fingerprint(again) == model_fingerprint(tiny_model)
    assert model_fingerprint(make_tiny_model(seed=5)) != model_fingerprint(tiny_model)
    assert model_fingerprint(make_tiny_model(n_layers=2)) != model_fingerprint(tiny_model)
    name, parameter = next(iter(again.named_parameters()))
    with torch.no_grad():
        parameter.mul_(1.001)  # weights edited in place: recomputed, never cached
    assert model_fingerprint(again) != model_fingerprint(tiny_model), name
    third = make_tiny_model()
    third.cfg.rotary_base = 500_000  # not in the weights, yet it changes every position
    assert model_fingerprint(third) != model_fingerprint(tiny_model)


def test_the_tokenizer_fingerprint_follows_vocabulary_specials_and_chat_template():
    first, second = make_tiny_tokenizer(), make_tiny_tokenizer()
    assert first.name_or_path != second.name_or_path
    assert tokenizer_fingerprint(first) == tokenizer_fingerprint(second)
    second.chat_template = "{{ messages[0]['content'] }}"
    assert tokenizer_fingerprint(first) != tokenizer_fingerprint(second)
    third = make_tiny_tokenizer()
    third.add_tokens(["newword"])
    assert tokenizer_fingerprint(first) != tokenizer_fingerprint(third)


def test_the_task_fingerprint_follows_names_items_and_splits():
    task = tiny_task()
    assert task_fingerprint(tiny_task()) == task_fingerprint(task)
    assert task_fingerprint(tiny_task(name="other")) != task_fingerprint(task)
    changed = dict(task.splits)
    changed["test"] = [dataclasses.replace(task.splits["test"][0], gold="odd")] + changed["test"][
        1:
    ]
    regold = Task(task.name, changed, task.extract_answer, task.max_new_tokens, task.few_shot)
    assert task_fingerprint(regold) != task_fingerprint(task)
    moved = {
        "train": task.splits["train"][:-1],
        "dev": task.splits["train"][-1:] + task.splits["dev"],
        "test": task.splits["test"],
    }
    reshuffled = Task(task.name, moved, task.extract_answer, task.max_new_tokens, task.few_shot)
    assert task_fingerprint(reshuffled) != task_fingerprint(task)


def test_a_tasks_grader_enters_its_fingerprint():
    """Same data, another grader: sweep and demo caches must not mix their results."""
    pairs = [(f"question {i}", str(i)) for i in range(5)]
    exact = Task.from_pairs(pairs, grader="exact")
    number = Task.from_pairs(pairs, grader="number")
    assert task_fingerprint(exact) == task_fingerprint(Task.from_pairs(pairs, grader="exact"))
    assert task_fingerprint(exact) != task_fingerprint(number)
    assert task_fingerprint(Task.from_pairs(pairs, grader="regex:(\\d)")) != task_fingerprint(
        Task.from_pairs(pairs, grader="regex:(\\d+)")
    )
