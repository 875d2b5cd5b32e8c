"""Energy and consistency diagnostics on hand-computed examples."""

import math

import pytest
import torch

from roast_tl.diagnostics import (
    cosine,
    magnitude_consistency,
    mask_energy_curve,
    pearson,
    retained_energy,
)


def test_magnitude_consistency_hand_computed():
    diffs = torch.tensor([[2.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
    mags, cos, r = magnitude_consistency(diffs)
    torch.testing.assert_close(mags, torch.tensor([2.0, 1.0, math.sqrt(200)]))
    # consensus = l2(mean of unit rows) = l2([1+0+s, 0+1+s]/3) with s = 1/sqrt(2): the diagonal
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(cos, torch.tensor([s, s, 1.0]))
    assert r == pytest.approx(pearson(mags, cos))
    assert r > 0.9


def test_pearson_edge_cases():
    assert pearson(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 2.0])) == 0.0
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-1.0)


def test_retained_energy_and_cosine_of_masks():
    mu = torch.tensor([3.0, 4.0, 0.0])
    curve = mask_energy_curve(mu, [1, 2, 3])
    assert curve[0] == {"k": 1, "retained_energy": 0.64, "cosine": 0.8}
    assert curve[1]["retained_energy"] == 1.0 and curve[1]["cosine"] == 1.0
    assert retained_energy(torch.zeros(3), torch.ones(3)) == 0.0
    assert cosine(mu, 2 * mu) == pytest.approx(1.0)


def test_needs_two_rows():
    with pytest.raises(ValueError, match="at least two rows"):
        magnitude_consistency(torch.ones(1, 4))
