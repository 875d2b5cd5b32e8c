"""Sampling engines: HF `generate` behind `sample_rollouts(engine="hf")`, and grading rollouts
made by any engine with `grade_rollouts`."""

import json

import pytest
import torch

import roast_tl
import roast_tl.rollouts as rollouts_module
from roast_tl.engines import HF_SAMPLER, hf_generate
from roast_tl.generation import generate_tokens
from roast_tl.rollouts import Rollout, grade_rollouts, load_rollouts, sample_rollouts
from tests.tiny_model import PROMPTS, encode, random_vector, requires_bridge, tiny_task, unchecked

# The "hf" engine runs HF generate on a bridge's fast model.
pytestmark = requires_bridge

SAMPLING = {"n_rollouts": 3, "temperature": 1.0, "top_p": 0.9, "seed": 1, "progress": False}


def test_hf_greedy_completions_equal_roast_tls(tiny_model):
    prompt = encode(tiny_model, PROMPTS[0])
    ours = generate_tokens(tiny_model, [prompt], max_new_tokens=6).tokens[0]
    theirs = hf_generate(
        tiny_model, prompt, n=2, max_new_tokens=6, temperature=0.0, top_p=1.0, seed=0
    )
    assert theirs == [ours, ours]


def test_hf_sampling_is_seeded_and_leaves_the_global_rng_alone(tiny_model):
    prompt = encode(tiny_model, PROMPTS[1])
    settings = {"n": 4, "max_new_tokens": 6, "temperature": 1.0, "top_p": 0.9}
    state = torch.random.get_rng_state()
    first = hf_generate(tiny_model, prompt, seed=3, **settings)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert hf_generate(tiny_model, prompt, seed=3, **settings) == first
    assert hf_generate(tiny_model, prompt, seed=4, **settings) != first
    stops = {2}
    for row in first:  # ends at its first stop token, or runs to max_new_tokens
        assert 1 <= len(row) <= 6 and not stops & set(row[:-1])


def test_the_hf_engine_records_itself_and_resumes(tiny_model, tmp_path):
    task = tiny_task()
    items = task.items("train")[:3]
    path = tmp_path / "rollouts.jsonl"
    rows = sample_rollouts(tiny_model, task, items, **SAMPLING, engine="hf", rollouts_path=path)
    assert [(r.item_id, r.sample_index) for r in rows] == [
        (item.id, k) for item in items for k in range(3)
    ]
    assert {r.source for r in rows} == {"hf"}
    assert {r.fingerprint["sampler"] for r in rows} == {HF_SAMPLER}
    for r, item in zip(rows, [i for i in items for _ in range(3)], strict=True):
        assert (r.answer, r.correct) == task.extract_and_grade(r.completion, item)
    again = sample_rollouts(tiny_model, task, items, **SAMPLING, engine="hf", rollouts_path=path)
    assert again == rows and len(load_rollouts(path)) == len(rows)  # reused, nothing sampled
    ours = sample_rollouts(tiny_model, task, items, **SAMPLING, rollouts_path=tmp_path / "o.jsonl")
    assert {r.source for r in ours} == {"roast_tl"}
    assert {r.fingerprint["sampler"] for r in ours} == {rollouts_module.SAMPLER_VERSION}


def test_the_hf_engine_refuses_hooks_and_unknown_engines(tiny_model):
    task = tiny_task()
    items = task.items("train")[:1]
    with roast_tl.steer(tiny_model, random_vector(tiny_model), 1.0):
        with pytest.raises(ValueError, match="engine='hf' samples on the unhooked HF model"):
            sample_rollouts(tiny_model, task, items, **SAMPLING, engine="hf")
    with pytest.raises(ValueError, match=r"engine must be one of \('roast_tl', 'hf'\), got 'vllm'"):
        unchecked(sample_rollouts)(tiny_model, task, items, **SAMPLING, engine="vllm")


def test_grade_rollouts_grades_rows_of_any_engine_as_roast_tls_own(tiny_model):
    task = tiny_task()
    items = task.items("train")[:2]
    ours = sample_rollouts(tiny_model, task, items, **SAMPLING)
    # As a vLLM run would write them: no grades, no provenance beyond ids and settings.
    external = [
        {
            "item_id": r.item_id,
            "sample_index": r.sample_index,
            "prompt_token_ids": r.prompt_token_ids,
            "completion_token_ids": r.completion_token_ids,
            "completion": r.completion,
            "seed": r.seed,
            "source": "vllm",
        }
        for r in ours
    ]
    graded = grade_rollouts(task, items, json.loads(json.dumps(external)))
    assert [(r.answer, r.correct) for r in graded] == [(r.answer, r.correct) for r in ours]
    assert {r.source for r in graded} == {"vllm"}
    assert all(isinstance(r, Rollout) for r in graded)
    # A stale grade is replaced; a Rollout passes through with fresh grades.
    flipped = [Rollout(**{**r.__dict__, "correct": not r.correct}) for r in ours]
    assert grade_rollouts(task, items, flipped) == ours


def test_grade_rollouts_names_what_is_wrong(tiny_model):
    task = tiny_task()
    items = task.items("train")[:1]
    with pytest.raises(ValueError, match=r"completions\[0\] lacks 'completion'"):
        grade_rollouts(task, items, [{"item_id": items[0].id}])
    with pytest.raises(ValueError, match=r"answers item 'nope', which is not in items"):
        grade_rollouts(task, items, [{"item_id": "nope", "completion": "x"}])
    with pytest.raises(TypeError, match="completion_token_ids must be a list of integers"):
        grade_rollouts(
            task, items, [{"item_id": items[0].id, "completion": "x", "completion_token_ids": "1"}]
        )


def test_the_hf_engine_needs_a_bridge():
    class NotABridge(torch.nn.Module):
        cfg = None
        tokenizer = None
        hook_dict: dict = {}

        def hooks(self, fwd_hooks=(), *args, **kwargs):
            raise NotImplementedError

    with pytest.raises(ValueError, match="engine='hf' needs a TransformerBridge .* NotABridge"):
        hf_generate(NotABridge(), [1, 2], n=1, max_new_tokens=1, temperature=0.0, top_p=1.0, seed=0)
