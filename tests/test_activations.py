"""Teacher-forced activation capture: what is read, where, in what batches, and the group means."""

import pytest
import torch

from roast_tl.activations import (
    ContrastMeans,
    capture_activations,
    contrast_means,
    iter_activations,
    read_rows,
)
from roast_tl.pairs import ContrastGroup, ContrastSet
from roast_tl.sites import hook_name
from tests.tiny_model import EMBED_HOOK, HOOK, PROMPTS, encode, token_embeddings, unchecked

# (prompt ids, response ids) of different lengths, so batches are left-padded.
SEQUENCES = [([1, 5, 6], [7, 8, 9]), ([1, 5, 6, 10, 11], [12]), ([1, 13], [14, 15])]


def test_read_rows_last_and_response_mean_hand_computed():
    acts = torch.arange(12.0).reshape(2, 3, 2)  # row 0: [0,1] [2,3] [4,5]; row 1: [6,7] ...
    lengths = torch.tensor([2, 0])
    assert read_rows(acts, lengths, "last").tolist() == [[4.0, 5.0], [10.0, 11.0]]
    # Row 0 averages its last 2 positions; an empty response reads the last position.
    assert read_rows(acts, lengths, "response_mean").tolist() == [[3.0, 4.0], [10.0, 11.0]]


def test_response_mean_of_the_embeddings(tiny_model):
    seqs = [([5, 6], [7, 8, 9]), ([5, 6, 10, 11], [12])]
    out = capture_activations(tiny_model, seqs, [EMBED_HOOK], read_at="response_mean")[EMBED_HOOK]
    embed = token_embeddings(tiny_model)
    torch.testing.assert_close(out[0], embed[[7, 8, 9]].mean(0))
    torch.testing.assert_close(out[1], embed[12])


def test_last_position_reading_matches_run_with_cache(tiny_model):
    names = [EMBED_HOOK, HOOK, "blocks.2.mlp.hook_post"]
    got = capture_activations(tiny_model, SEQUENCES, names)
    for i, (prompt, response) in enumerate(SEQUENCES):
        _, cache = tiny_model.run_with_cache(torch.tensor([prompt + response]), names_filter=names)
        for name in names:
            torch.testing.assert_close(got[name][i], cache[name][0, -1], rtol=1e-5, atol=1e-5)
    assert got["blocks.2.mlp.hook_post"].shape == (3, 64)
    assert all(a.dtype == torch.float32 and a.device.type == "cpu" for a in got.values())


@pytest.mark.parametrize("read_at", ["last", "response_mean"])
def test_batched_reading_matches_one_sequence_at_a_time(tiny_model, read_at):
    batched = capture_activations(tiny_model, SEQUENCES, [HOOK], read_at=read_at, batch_size=16)
    single = capture_activations(tiny_model, SEQUENCES, [HOOK], read_at=read_at, batch_size=1)
    torch.testing.assert_close(batched[HOOK], single[HOOK], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "names,expected",
    [
        ([hook_name("resid_post", 0)], [0]),
        ([hook_name("mlp_post", 1), EMBED_HOOK], [0, 1]),
        (["ln_final.hook_normalized"], [0, 1, 2]),  # outside the blocks: the whole model runs
    ],
)
def test_capture_stops_after_the_last_needed_layer(tiny_model, names, expected):
    seen: list[int] = []
    probe = [
        (hook_name("resid_post", layer), lambda a, hook, layer=layer: seen.append(layer))
        for layer in range(tiny_model.cfg.n_layers)
    ]
    with tiny_model.hooks(fwd_hooks=probe):
        capture_activations(tiny_model, SEQUENCES[:1], names)
    assert seen == expected


def test_group_means_equal_the_mean_of_pair_differences(tiny_model):
    seqs = [([*encode(tiny_model, p)], [7 + i]) for i, p in enumerate(PROMPTS[:5])]
    groups = [
        ContrastGroup("a", seqs[:2], seqs[2:5], 1.0, "rollouts"),
        ContrastGroup("b", seqs[4:5], seqs[0:1], 0.5, "gold_fallback"),
    ]
    means = contrast_means(tiny_model, ContrastSet(groups), [HOOK], batch_size=3, progress=False)
    acts = capture_activations(tiny_model, seqs, [HOOK])[HOOK]
    pos, neg = acts[:2], acts[2:5]
    pair_diffs = (pos[:, None, :] - neg[None, :, :]).reshape(-1, acts.shape[-1])
    diffs = means.differences(HOOK)
    torch.testing.assert_close(diffs[0], pair_diffs.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(diffs[1], acts[4] - acts[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(means.positive[HOOK][0], pos.mean(0), rtol=1e-5, atol=1e-5)
    assert means.item_ids == ["a", "b"]
    assert means.weights.tolist() == [1.0, 0.5] and means.n_pairs.tolist() == [6.0, 1.0]


def test_contrast_means_differences_is_positive_minus_negative():
    means = ContrastMeans(
        item_ids=["a"],
        positive={"h": torch.tensor([[3.0, 1.0]])},
        negative={"h": torch.tensor([[1.0, 4.0]])},
        weights=torch.ones(1),
        n_pairs=torch.ones(1),
    )
    assert means.differences("h").tolist() == [[2.0, -3.0]]


def test_bad_inputs_are_clear_errors(tiny_model):
    with pytest.raises(ValueError, match="unknown read_at 'first'.*'response_mean'"):
        next(unchecked(iter_activations)(tiny_model, SEQUENCES, [HOOK], read_at="first"))
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        capture_activations(tiny_model, SEQUENCES, [HOOK], batch_size=0)
    with pytest.raises(ValueError, match="no sequences to read"):
        capture_activations(tiny_model, [], [HOOK])
    with pytest.raises(ValueError, match=r"contrast set is empty.*\{'skipped_strict': 2\}.*strict"):
        contrast_means(tiny_model, ContrastSet([], {"skipped_strict": 2}), [HOOK])
