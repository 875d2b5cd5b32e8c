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


def test_magnitude_consistency_hand_computed():
    diffs = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    magnitudes, cosines, r = magnitude_consistency(diffs)
    torch.testing.assert_close(magnitudes, torch.tensor([3.0, 1.0, math.sqrt(8)]))
    # unit rows: (1,0), (0,1), (s,s) with s = 1/sqrt(2); their mean (1+s, 1+s)/3 points along (1,1)
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(cosines, torch.tensor([s, s, 1.0]))
    expected = pearson(torch.tensor([3.0, 1.0, math.sqrt(8)]), torch.tensor([s, s, 1.0]))
    assert r == pytest.approx(expected)


def test_consensus_ignores_magnitude():
    """The consensus is a mean of unit vectors: scaling one row by 1000 leaves the cosines alone."""
    diffs = torch.tensor([[1.0, 0.2], [0.5, -0.3], [0.9, 0.9]])
    _, cos_a, _ = magnitude_consistency(diffs)
    scaled = diffs.clone()
    scaled[0] *= 1000
    _, cos_b, _ = magnitude_consistency(scaled)
    torch.testing.assert_close(cos_a, cos_b)


def test_pearson_matches_hand_value_and_constant_input():
    # x = (1,2,3), y = (1,3,2): centered (-1,0,1)·(-1,1,0) = 1, norms sqrt2·sqrt2 -> r = 0.5
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 3.0, 2.0])) == pytest.approx(0.5)
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


def test_css_keeps_energy_and_direction():
    mu = torch.tensor([0.5, -3.0, 0.01, 2.0])
    for method in ("max_norm", "l2"):
        assert css_energy(mu, method) == {"retained_energy": 1.0, "cosine": 1.0}
    soft = css_energy(mu, "softmax")
    assert soft["retained_energy"] == 1.0 and 0 < soft["cosine"] < 1  # reweights, keeps signs
    rows = energy_table(mu, [1, 2])
    assert [r["method"] for r in rows] == ["top_k", "top_k", "css_max_norm", "css_l2", "css_softmax"]
    assert all(r["retained_energy"] < 1 for r in rows[:2])


def test_consistency_report_from_contrast_means():
    positive = torch.tensor([[4.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    means = ContrastMeans(item_ids=["a", "b", "c"], positive={"h": positive},
                          negative={"h": torch.zeros(3, 2)}, weights=torch.ones(3),
                          n_pairs=torch.ones(3))
    report = consistency_report(means, "h")
    assert report["item_ids"] == ["a", "b", "c"]
    assert report["magnitudes"] == pytest.approx([4.0, 1.0, math.sqrt(2)])
    assert report["top10pct_magnitude_share"] == pytest.approx(4.0 / (5.0 + math.sqrt(2)))
    assert -1.0 <= report["pearson_r"] <= 1.0


def test_diagnostic_plots_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from roast_tl.plots import plot_magnitude_consistency, plot_mask_energy

    magnitudes, cosines, r = magnitude_consistency(torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 2.0]]))
    a = plot_magnitude_consistency(magnitudes, cosines, tmp_path / "scatter.png", r)
    b = plot_mask_energy(mask_energy_curve(torch.tensor([1.0, -2.0, 2.0, 4.0]), [1, 2, 4]),
                         tmp_path / "energy.png")
    assert a.stat().st_size > 1000 and b.stat().st_size > 1000
