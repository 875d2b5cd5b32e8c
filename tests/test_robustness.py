"""Bad inputs and interruptions: clear errors, intact files, resumable and bit-reproducible runs.

Complements test_vector/test_steering/test_estimate/test_aggregate/test_scaling (not repeated here).
"""

import json
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roast_tl
from roast_tl import rollouts as rollouts_module
from roast_tl import vector as vector_module
from roast_tl.aggregate import grouped_mean_normalize, plain_mean_normalize
from roast_tl.evaluate import evaluate
from roast_tl.generation import (
    encode_prompt,
    forward_step,
    generate_tokens,
    left_pad,
    position_ids_for,
    sample_next,
)
from roast_tl.pairs import build_contrast_set
from roast_tl.scaling import continuous_soft_scale
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import FORMAT_VERSION, SteeringVector
from tests.test_estimate import parity_task

HOOK = "blocks.1.hook_resid_post"
PROMPTS = ["the movie was good .", "this food was awful", "what is 3 plus 4 ?", "a bad movie",
           "the service was great", "review : loved it"]


def _vector(model, scale=3.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return SteeringVector({HOOK: scale * torch.randn(model.cfg.d_model, generator=gen)},
                          {"model_name": model.cfg.model_name})


def _encoded(model, prompts=PROMPTS):
    return [encode_prompt(model, p) for p in prompts]


# --- hook names and layers ------------------------------------------------------------------


def test_estimate_with_unknown_hook_name_suggests_the_close_one(tiny_model):
    with pytest.raises(ValueError, match=r"unknown hook name 'blocks\.1\.hook_resid_pots'.*did you mean.*"
                                         r"blocks\.1\.hook_resid_post"):
        roast_tl.estimate(tiny_model, parity_task(), hook_names=["blocks.1.hook_resid_pots"],
                          progress=False)


def test_loading_a_vector_with_an_unknown_hook_name_suggests_the_close_one(tiny_model, tmp_path):
    path = SteeringVector({"blocks.2.hook_resid_psot": torch.ones(tiny_model.cfg.d_model)},
                          {"model_name": tiny_model.cfg.model_name}).save(tmp_path / "v.safetensors")
    assert SteeringVector.load(path).hook_names == ["blocks.2.hook_resid_psot"]  # fine without a model
    with pytest.raises(ValueError, match=r"unknown hook name.*did you mean.*blocks\.2\.hook_resid_post"):
        SteeringVector.load(path, tiny_model)


@pytest.mark.parametrize("layer", [3, 100, -4, -100])
def test_layer_out_of_range_both_signs(tiny_model, layer):
    with pytest.raises(ValueError, match=f"layer {layer} is out of range.*3 layers"):
        roast_tl.estimate(tiny_model, parity_task(), layers=[layer], progress=False)


def test_negative_layers_count_from_the_end(tiny_model):
    names = roast_tl.resolve_hook_names(tiny_model, layers=[-1, -3])
    assert names == ["blocks.2.hook_resid_post", "blocks.0.hook_resid_post"]
    with pytest.raises(ValueError, match="hook names repeat"):
        roast_tl.resolve_hook_names(tiny_model, layers=[2, -1])


# --- alpha ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_alpha_through_evaluate_and_fwd_hooks(tiny_model, alpha):
    task = parity_task()
    with pytest.raises(ValueError, match="alpha must be finite"):
        evaluate(tiny_model, task, _vector(tiny_model), alpha, split="test",
                                   progress=False)
    with pytest.raises(ValueError, match="alpha must be finite"):
        _vector(tiny_model).fwd_hooks(alpha)
    with pytest.raises(ValueError, match="alpha must be finite"):
        roast_tl.steering_hooks({HOOK: torch.ones(32)}, alpha)


# --- empty inputs ---------------------------------------------------------------------------


def test_empty_prompt_lists(tiny_model):
    with pytest.raises(ValueError, match="empty prompt list"):
        roast_tl.generate(tiny_model, [])
    with pytest.raises(ValueError, match="empty prompt list"):
        generate_tokens(tiny_model, [], max_new_tokens=2)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(tiny_model, parity_task(), items=[], progress=False)
    with pytest.raises(ValueError, match="every prompt needs at least one token"):
        generate_tokens(tiny_model, [[5, 6], []], max_new_tokens=2)
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        generate_tokens(tiny_model, [[5, 6]], max_new_tokens=0)


def test_strict_estimate_with_no_contrast_pair_is_a_clear_error(tiny_model):
    # Every rollout is graded correct, so strict mode leaves no prompt with a pair.
    items = [TaskItem(id=f"q{i}", prompt=p, gold="yes", gold_completion="yes", wrong_completion="no")
             for i, p in enumerate(PROMPTS[:3])]
    task = Task(name="always_right", splits={"train": items}, extract_answer=lambda s: "yes",
                max_new_tokens=2)
    with pytest.raises(ValueError, match=r"contrast set is empty.*skipped_strict.: 3"):
        roast_tl.estimate(tiny_model, task, layers=[1], n_rollouts=2, strict=True, progress=False)


# --- vector files ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "1", 1.0, FORMAT_VERSION + 1])
def test_missing_non_integer_or_newer_format_version_is_refused(tmp_path, version):
    from safetensors.torch import save_file

    meta = {"model_name": "m"} if version is None else {"format_version": version, "model_name": "m"}
    path = tmp_path / "v.safetensors"
    save_file({HOOK: torch.ones(4)}, str(path), metadata={"roast_tl": json.dumps(meta)})
    with pytest.raises(ValueError, match="format_version"):
        SteeringVector.load(path)


@pytest.fixture(scope="module")
def saved_vector_bytes(tmp_path_factory):
    gen = torch.Generator().manual_seed(0)
    vector = SteeringVector({HOOK: torch.randn(32, generator=gen),
                             "blocks.0.hook_resid_post": torch.randn(32, generator=gen)},
                            {"model_name": "tiny", "note": "x" * 50})
    return vector.save(tmp_path_factory.mktemp("vec") / "v.safetensors").read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_file_truncated_anywhere_is_a_clear_error(tmp_path, saved_vector_bytes, data):
    cut = data.draw(st.integers(0, len(saved_vector_bytes) - 1))
    path = tmp_path / "cut.safetensors"
    path.write_bytes(saved_vector_bytes[:cut])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        SteeringVector.load(path)


def test_keyboard_interrupt_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    old = SteeringVector({HOOK: torch.ones(32)}, {"model_name": "old"})
    path = old.save(tmp_path / "v.safetensors")
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes half of what it is given to the temp file, then is interrupted."""

        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

        def write(self, payload):
            self.handle.write(payload[: len(payload) // 2])
            self.handle.flush()
            raise KeyboardInterrupt

    monkeypatch.setattr(vector_module.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        SteeringVector({HOOK: torch.zeros(32)}, {"model_name": "new"}).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.safetensors"]  # the half-written temp is gone
    assert torch.equal(SteeringVector.load(path)[HOOK], old[HOOK])


def test_interrupt_before_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = SteeringVector({HOOK: torch.ones(32)}).save(tmp_path / "v.safetensors")
    before = path.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(vector_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        SteeringVector({HOOK: torch.zeros(32)}).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.safetensors"]


# --- interruption, resume and determinism ---------------------------------------------------

ESTIMATE = dict(layers=[1, 2], n_rollouts=4, temperature=1.0, top_p=0.9, seed=5, batch_size=8,
                progress=False)


def test_interrupted_estimate_resumes_without_resampling_finished_prompts(tiny_model, tmp_path, monkeypatch):
    task = parity_task()
    reference = roast_tl.estimate(tiny_model, task, **ESTIMATE)
    path = tmp_path / "rollouts.jsonl"
    real = rollouts_module.generate_tokens
    calls: list[int] = []
    interrupt = [True]

    def interrupt_on_second_batch(*args, **kwargs):
        calls.append(len(args[1]))
        if interrupt[0] and len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(rollouts_module, "generate_tokens", interrupt_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        roast_tl.estimate(tiny_model, task, rollouts_path=path, **ESTIMATE)
    assert len(rollouts_module.load_rollouts(path)) == 8  # the first batch: 2 prompts x 4 rollouts

    calls.clear()
    interrupt[0] = False
    resumed = roast_tl.estimate(tiny_model, task, rollouts_path=path, **ESTIMATE)
    assert calls == [8, 8]  # only the 4 prompts left were sampled, in 2 batches of 2 prompts
    assert len(rollouts_module.load_rollouts(path)) == 6 * 4
    for name in reference:
        assert torch.equal(resumed[name], reference[name])


def test_same_seed_same_rollouts_pairs_and_vector_bit_for_bit(tiny_model):
    task = parity_task()
    items = task.items("train")

    def run(seed, batch_size):
        rollouts = rollouts_module.sample_rollouts(tiny_model, task, items, n_rollouts=4, seed=seed,
                                                   batch_size=batch_size, progress=False)
        contrasts = build_contrast_set(tiny_model, rollouts, items)
        vector = roast_tl.estimate_from_rollouts(tiny_model, task, rollouts, items=items,
                                                 layers=[1], progress=False)
        return rollouts, contrasts, vector

    first, again, rebatched, other = run(3, 8), run(3, 8), run(3, 24), run(4, 8)
    for rollouts, contrasts, vector in (again, rebatched):  # batching does not change a seed's draws
        assert rollouts == first[0]
        assert contrasts == first[1]
        assert torch.equal(vector[HOOK], first[2][HOOK])
    assert [r.completion_token_ids for r in other[0]] != [r.completion_token_ids for r in first[0]]


# --- generation -----------------------------------------------------------------------------


def test_alpha_zero_is_bit_identical_for_generation_and_forward_step_logits(tiny_model):
    encoded = _encoded(tiny_model)

    def sample():
        gens = [torch.Generator().manual_seed(i) for i in range(len(encoded))]
        return generate_tokens(tiny_model, encoded, max_new_tokens=6, temperature=1.0, top_p=0.9,
                               generators=gens)

    ids, mask = left_pad(encoded, 0)
    base_logits, _ = forward_step(tiny_model, ids, mask, position_ids_for(mask), use_cache=False)
    base_greedy = generate_tokens(tiny_model, encoded, max_new_tokens=6)
    base_sampled = sample()
    for positions in ("last", "all", "prefill"):
        for mode in ("add", "multiply"):
            with roast_tl.steer(tiny_model, _vector(tiny_model), 0.0, positions=positions, mode=mode):
                logits, _ = forward_step(tiny_model, ids, mask, position_ids_for(mask), use_cache=False)
                assert torch.equal(logits, base_logits)
                assert generate_tokens(tiny_model, encoded, max_new_tokens=6) == base_greedy
                assert sample() == base_sampled


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_rows_that_stop_early_do_not_change_the_others(tiny_model, temperature):
    """Stopping (and dropping finished rows from the batch) leaves each row's tokens as without stops.

    Rows share generators in pairs, as `sample_rollouts` shares one per prompt.
    """
    encoded = _encoded(tiny_model)

    def run(stops):
        shared = [torch.Generator().manual_seed(i) for i in range(3)]
        gens = [shared[i // 2] for i in range(len(encoded))]
        return generate_tokens(tiny_model, encoded, max_new_tokens=10, temperature=temperature,
                               top_p=0.95, generators=gens if temperature else None,
                               stop_token_ids=stops)

    free = run(())
    assert all(len(t) == 10 for t in free.tokens) and not any(free.finished)
    # Stop on tokens some rows make early: most rows finish at different steps.
    early = {t[1] for t in free.tokens[:3]} | {free.tokens[3][4]}
    stopped = run(early)
    n_finished = 0
    for full, row, finished in zip(free.tokens, stopped.tokens, stopped.finished, strict=True):
        cut = next((i + 1 for i, t in enumerate(full) if t in early), len(full))
        assert row == full[:cut]
        assert finished == (cut < len(full) or full[-1] in early)
        n_finished += finished
    assert n_finished >= 3


def _nucleus_by_full_sort(logits, temperature, top_p, uniforms):
    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    kept = sorted_probs * ((sorted_probs.cumsum(-1) - sorted_probs) < top_p)
    cdf = kept.cumsum(-1)
    choice = torch.searchsorted(cdf, uniforms[:, None] * cdf[:, -1:]).clamp_max(cdf.shape[-1] - 1)
    return order.gather(-1, choice).squeeze(-1)


@pytest.mark.parametrize("sharpness", [0.1, 1.0, 3.0, 10.0])
def test_nucleus_sampling_shortcut_matches_a_full_sort(sharpness):
    # A flat distribution needs thousands of tokens for top_p (the full-sort path), a sharp one few.
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5000, generator=gen) * sharpness
    uniforms = torch.rand(64, generator=gen)
    for top_p in (0.5, 0.9, 0.99, 1.0):
        expected = _nucleus_by_full_sort(logits, 0.8, top_p, uniforms)
        assert torch.equal(sample_next(logits, temperature=0.8, top_p=top_p, uniforms=uniforms), expected)


def test_bad_sampling_settings_are_clear_errors(tiny_model):
    encoded = _encoded(tiny_model)[:2]
    with pytest.raises(ValueError, match="one torch.Generator per prompt row"):
        generate_tokens(tiny_model, encoded, max_new_tokens=2, temperature=1.0)
    with pytest.raises(ValueError, match="0 < top_p <= 1"):
        generate_tokens(tiny_model, encoded, max_new_tokens=2, top_p=0.0)
    with pytest.raises(ValueError, match="temperature >= 0"):
        generate_tokens(tiny_model, encoded, max_new_tokens=2, temperature=-1.0)


# --- aggregation properties not covered by test_aggregate / test_scaling --------------------

cases = st.tuples(st.integers(1, 12), st.integers(1, 16), st.integers(1, 5), st.integers(0, 10_000),
                  st.sampled_from(["max_norm", "l2", "softmax"]))


def _case(n, d, n_groups, seed):
    gen = torch.Generator().manual_seed(seed)
    diffs = torch.randn(n, d, generator=gen, dtype=torch.float64) * torch.rand(n, 1, generator=gen,
                                                                               dtype=torch.float64) * 100
    ids = torch.randint(0, n_groups, (n,), generator=gen)
    weights = torch.rand(n, generator=gen, dtype=torch.float64) + 0.05
    return gen, diffs, ids, weights


@settings(max_examples=100, deadline=None)
@given(cases)
def test_grouped_and_plain_ignore_row_order_and_group_labels(case):
    n, d, n_groups, seed, method = case
    gen, diffs, ids, weights = _case(n, d, n_groups, seed)
    out = grouped_mean_normalize(diffs, ids, weights, method=method)
    plain = plain_mean_normalize(diffs, weights, method=method)
    assert torch.isfinite(out).all() and torch.isfinite(plain).all()
    perm = torch.randperm(n, generator=gen)
    relabel = torch.randperm(n_groups, generator=gen) * 7 + 3  # other ids, other group order
    torch.testing.assert_close(grouped_mean_normalize(diffs[perm], relabel[ids[perm]], weights[perm],
                                                      method=method), out)
    torch.testing.assert_close(plain_mean_normalize(diffs[perm], weights[perm], method=method), plain)


@settings(max_examples=100, deadline=None)
@given(cases)
def test_grouped_ignores_duplicated_rows_and_duplicated_groups(case):
    n, d, n_groups, seed, method = case
    _, diffs, ids, weights = _case(n, d, n_groups, seed)
    out = grouped_mean_normalize(diffs, ids, weights, method=method)
    # Each row twice in its own group: the same group means.
    twice = grouped_mean_normalize(diffs.repeat(2, 1), ids.repeat(2), weights.repeat(2), method=method)
    torch.testing.assert_close(twice, out)
    # Every group twice (copies under new ids): each keeps an equal share of the votes.
    copies = grouped_mean_normalize(diffs.repeat(2, 1), torch.cat([ids, ids + 1000]), weights.repeat(2),
                                    method=method)
    torch.testing.assert_close(copies, out)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=3), st.integers(1, 24), st.integers(0, 10_000),
       st.sampled_from(["max_norm", "l2", "softmax"]))
def test_css_on_batches_equals_css_per_row(batch_shape, d, seed, method):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch_shape, d, generator=gen) * 10 ** torch.randint(-3, 4, (*batch_shape, 1),
                                                                            generator=gen)
    out = continuous_soft_scale(x, method)
    assert out.shape == x.shape and torch.isfinite(out).all()
    rows = x.reshape(-1, d)
    per_row = torch.stack([continuous_soft_scale(r, method) for r in rows]) if len(rows) else rows
    torch.testing.assert_close(out.reshape(-1, d), per_row)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 16), st.integers(0, 10_000))
def test_grouped_is_invariant_to_scaling_one_group_by_a_tiny_factor_with_max_norm_and_l2(d, seed):
    # test_aggregate covers factors 1e-3..1e3; activations can differ by many more orders.
    gen = torch.Generator().manual_seed(seed)
    diffs = torch.randn(6, d, generator=gen, dtype=torch.float64)
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    for method in ("max_norm", "l2"):
        out = grouped_mean_normalize(diffs, ids, method=method)
        for factor in (1e-8, 1e8):
            scaled = diffs.clone()
            scaled[ids == 1] *= factor
            torch.testing.assert_close(grouped_mean_normalize(scaled, ids, method=method), out)
