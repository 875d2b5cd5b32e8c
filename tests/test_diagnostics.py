"""Energy and consistency diagnostics on hand-computed examples."""

import math

import pytest
import torch

from roast_tl.activations import ContrastMeans
from roast_tl.diagnostics import (
    consistency_report,
    cosine,
    css_energy,
    energy_table,
    magnitude_consistency,
    mask_energy_curve,
    pearson,
    retained_energy,
)
from roast_tl.scaling import l2_normalize, max_norm, softmax_scale

S = 1 / math.sqrt(2)


def test_magnitude_consistency_hand_computed():
    diffs = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    magnitudes, cosines, r = magnitude_consistency(diffs)
    torch.testing.assert_close(magnitudes, torch.tensor([3.0, 1.0, math.sqrt(8)]))
    # Unit rows (1,0), (0,1), (s,s) with s = 1/sqrt(2); their mean (1+s, 1+s)/3 points along (1,1).
    torch.testing.assert_close(cosines, torch.tensor([S, S, 1.0]))
    # Cosines centred: (1-s)/3 * (-1, -1, 2), so r = x.(-1,-1,2) / (|x - mean x| sqrt 6), with
    # x.(-1,-1,2) = -3 - 1 + 2 sqrt 8 = 4 sqrt 2 - 4 and |x - mean x|^2 = 18 - (4 + 2 sqrt 2)^2/3.
    assert r == pytest.approx((4 * math.sqrt(2) - 4) / math.sqrt(60 - 32 * math.sqrt(2)), rel=1e-6)
    assert r == pytest.approx(0.431479, abs=1e-6)


def test_consensus_ignores_magnitude():
    """The consensus is a mean of unit vectors: scaling one row by 1000 leaves the cosines alone."""
    diffs = torch.tensor([[1.0, 0.2], [0.5, -0.3], [0.9, 0.9]])
    _, before, _ = magnitude_consistency(diffs)
    scaled = diffs.clone()
    scaled[0] *= 1000
    _, after, _ = magnitude_consistency(scaled)
    torch.testing.assert_close(before, after)


def test_pearson_hand_computed_and_constant_input():
    # x = (1,2,3), y = (1,3,2): centred (-1,0,1).(-1,1,0) = 1, norms sqrt 2 . sqrt 2 -> r = 0.5
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 3.0, 2.0])) == pytest.approx(
        0.5
    )
    assert pearson(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, 2.0, 3.0])) == 0.0


def test_magnitude_consistency_needs_two_rows():
    with pytest.raises(ValueError, match="at least two rows"):
        magnitude_consistency(torch.ones(1, 3))


def test_retained_energy_and_cosine_of_top_k():
    mu = torch.tensor([1.0, -2.0, 2.0, 4.0])  # energy 1 + 4 + 4 + 16 = 25
    curve = mask_energy_curve(mu, [1, 3, 4])
    assert [row["k"] for row in curve] == [1, 3, 4]
    assert curve[0]["retained_energy"] == pytest.approx(16 / 25)
    assert curve[0]["cosine"] == pytest.approx(4 / 5)  # (M⊙μ)·μ / (|M⊙μ||μ|) = 16 / (4·5)
    assert curve[1]["retained_energy"] == pytest.approx(24 / 25)
    assert curve[1]["cosine"] == pytest.approx(24 / (math.sqrt(24) * 5))
    assert curve[2] == {"k": 4, "retained_energy": 1.0, "cosine": 1.0}
    assert retained_energy(torch.zeros(3), torch.ones(3)) == 0.0
    assert cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == pytest.approx(0.0)


def test_css_keeps_energy_and_direction_except_softmax_direction():
    mu = torch.tensor([math.log(2.0), -math.log(3.0)])
    for scaler in (max_norm, l2_normalize):
        assert css_energy(mu, scaler) == {"retained_energy": 1.0, "cosine": 1.0}
    # softmax_scale: |mu| = (ln 2, ln 3) -> weights (2/5, 3/5) -> v = (0.8, -1.2), so
    # cos(v, mu) = (0.8 ln 2 + 1.2 ln 3) / (|v| |mu|) = (4 ln 2 + 6 ln 3) / (sqrt 52 |mu|).
    norm = math.hypot(math.log(2.0), math.log(3.0))
    expected = (4 * math.log(2.0) + 6 * math.log(3.0)) / (math.sqrt(52) * norm)
    soft = css_energy(mu, softmax_scale)
    assert soft == {"retained_energy": 1.0, "cosine": pytest.approx(expected, abs=1e-6)}
    assert soft["cosine"] == pytest.approx(0.999684, abs=1e-6)


def test_energy_table_compares_top_k_masks_with_each_scaler():
    mu = torch.tensor([0.5, -3.0, 0.01, 2.0])
    rows = energy_table(mu, [1, 2])
    assert [(r["scaler"], r["k"]) for r in rows] == [
        ("top_k", 1),
        ("top_k", 2),
        ("max_norm", 4),
        ("l2_normalize", 4),
        ("softmax_scale", 4),
    ]
    # Top-1 keeps 9 of the 13.2501 energy, top-2 keeps 13 of it; CSS keeps all of it.
    assert [r["retained_energy"] for r in rows] == [
        round(9 / 13.2501, 6),
        round(13 / 13.2501, 6),
        1.0,
        1.0,
        1.0,
    ]
    assert [r["scaler"] for r in energy_table(mu, [], scalers=(l2_normalize,))] == ["l2_normalize"]


def test_consistency_report_hand_computed():
    positive = torch.tensor([[4.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    means = ContrastMeans(
        item_ids=["a", "b", "c"],
        positive={"h": positive},
        negative={"h": torch.zeros(3, 2)},
        weights=torch.ones(3),
        n_pairs=torch.ones(3),
    )
    report = consistency_report(means, "h")
    assert report["hook_name"] == "h" and report["item_ids"] == ["a", "b", "c"]
    assert report["magnitudes"] == pytest.approx([4.0, 1.0, math.sqrt(2)])
    assert report["cosines"] == pytest.approx([S, S, 1.0])
    # As above, x = (4, 1, sqrt 2): x.(-1,-1,2) = 2 sqrt 2 - 5, |x - mean x|^2 = (30 - 10 sqrt 2)/3.
    expected_r = (2 * math.sqrt(2) - 5) / math.sqrt(60 - 20 * math.sqrt(2))
    assert report["pearson_r"] == pytest.approx(expected_r, rel=1e-6)
    assert report["pearson_r"] == pytest.approx(-0.385600, abs=1e-6)
    # The largest 10% of 3 groups is one group: 4 of 5 + sqrt 2.
    assert report["top10pct_magnitude_share"] == pytest.approx(4.0 / (5.0 + math.sqrt(2)))
