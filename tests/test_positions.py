"""Pure position math: named positions in a generation window, pad detection, index masks."""

import pytest
import torch

from roast_tl.positions import (
    DecodeWindow,
    as_indices,
    index_mask,
    mask_bounds,
    pass_bounds,
    prompt_bounds,
    real_token_bounds,
    steered_slice,
)


def test_steered_slice_in_absolute_positions():
    window = DecodeWindow(offset=0, prompt_len=5)
    assert steered_slice(5, "last", window) == slice(4, 5)
    assert steered_slice(7, "last", window) == slice(4, 7)  # uncached pass over 2 new tokens
    assert steered_slice(7, "prefill", window) == slice(4, 5)
    decode = DecodeWindow(offset=6, prompt_len=5)
    assert steered_slice(1, "last", decode) == slice(0, 1)
    assert steered_slice(1, "prefill", decode) is None
    assert steered_slice(3, "all", decode) == slice(0, 3)
    # Outside roast_tl.generate: the final position, and "prefill" only on multi-token passes.
    assert steered_slice(4, "last", None) == slice(3, 4)
    assert steered_slice(4, "prefill", None) == slice(3, 4)
    assert steered_slice(1, "prefill", None) is None


def test_pad_detection_from_token_ids():
    right = torch.tensor([[5, 6, 7], [5, 0, 0]])
    assert real_token_bounds(right, 0).tolist() == [[0, 3], [0, 1]]
    left = torch.tensor([[0, 0, 5], [5, 6, 7]])
    assert real_token_bounds(left, 0).tolist() == [[2, 3], [0, 3]]
    # BOS sharing the pad id (GPT-2): the last of a left pad run is the row's BOS.
    assert real_token_bounds(torch.tensor([[9, 9, 5], [9, 6, 7]]), 9, 9).tolist() == [
        [1, 3],
        [0, 3],
    ]
    # Rows padded alike (or one row ending in an EOS that doubles as pad) are not padding.
    assert real_token_bounds(torch.tensor([[5, 0], [6, 0]]), 0) is None
    assert real_token_bounds(torch.tensor([[5, 6, 0]]), 0) is None


def test_mask_bounds_are_the_first_and_one_past_the_last_real_position():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert mask_bounds(mask).tolist() == [[2, 4], [0, 3], [0, 4], [0, 0]]


def test_index_mask_counts_within_each_rows_real_tokens():
    bounds = torch.tensor([[2, 5], [0, 3]])  # row 0 left-padded by 2, row 1 right-padded by 2
    assert index_mask([0], bounds, 5).int().tolist() == [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0]]
    assert index_mask([-1], bounds, 5).int().tolist() == [[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]]
    assert index_mask([1, -2], bounds, 5).int().tolist() == [[0, 0, 0, 1, 0], [0, 1, 0, 0, 0]]
    # Out of a row's real range (index 3 of 3 tokens, -4 of 3) steers nothing in that row.
    assert index_mask([3, -4], bounds, 5).int().tolist() == [[0] * 5, [0] * 5]


def test_index_mask_in_a_later_pass_uses_absolute_positions():
    bounds = torch.tensor([[1, 4]])
    # A decode pass of 1 token at absolute position 3 holds the last real token (-1) only.
    assert index_mask([-1], bounds, 1, offset=3).tolist() == [[True]]
    assert index_mask([0], bounds, 1, offset=3).tolist() == [[False]]
    # A pass of 2 tokens starting at 2 holds indices 1 and 2 of the real tokens.
    assert index_mask([1, 2], bounds, 2, offset=2).int().tolist() == [[1, 1]]


def test_prompt_and_pass_bounds_skip_each_rows_left_pads():
    window = DecodeWindow(offset=0, prompt_len=4, n_pad=torch.tensor([0, 3]))
    assert prompt_bounds(window, 2).tolist() == [[0, 4], [3, 4]]
    assert pass_bounds(window, 2, 4).tolist() == [[0, 4], [3, 4]]
    later = DecodeWindow(offset=4, prompt_len=4, n_pad=torch.tensor([0, 3]))
    assert pass_bounds(later, 2, 1).tolist() == [[0, 1], [0, 1]]
    unknown = DecodeWindow(offset=0, prompt_len=3)  # no n_pad: no padding
    assert prompt_bounds(unknown, 2).tolist() == [[0, 3], [0, 3]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-1, (-1,)), ([0, 2], (0, 2)), (torch.tensor([1, -1]), (1, -1)), ((4,), (4,))],
)
def test_as_indices_takes_ints_lists_and_integer_tensors(value, expected):
    assert as_indices(value, "positions") == expected


@pytest.mark.parametrize("bad", [True, [], [1.5], "first", torch.tensor([0.5]), [True, 1]])
def test_as_indices_refuses_what_is_not_a_token_index(bad):
    with pytest.raises(TypeError, match="positions"):
        as_indices(bad, "positions")
