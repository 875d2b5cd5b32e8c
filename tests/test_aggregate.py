"""Grouped Mean Normalization vs the plain mean: hand-computed values and properties."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from roast_tl.aggregate import group_means, grouped_mean_normalize, plain_mean_normalize
from roast_tl.scaling import l2, max_norm


def test_group_means_hand_computed_with_weights():
    diffs = torch.tensor([[1.0, 0.0], [3.0, 2.0], [10.0, -10.0]])
    ids = torch.tensor([7, 7, 2])
    weights = torch.tensor([1.0, 3.0, 0.5])
    means, unique = group_means(diffs, ids, weights)
    assert unique.tolist() == [2, 7]
    # group 7: (1*[1,0] + 3*[3,2]) / 4 = [2.5, 1.5]; group 2: its only row.
    assert means.tolist() == [[10.0, -10.0], [2.5, 1.5]]


def test_grouped_max_norm_hand_computed():
    # group 0 mean [2, 0] -> S = [1, 0]; group 1 mean [0, -4] -> S = [0, -1]
    # mean of S = [0.5, -0.5] -> S = [1, -1]
    diffs = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, -4.0]])
    out = grouped_mean_normalize(diffs, torch.tensor([0, 0, 1]))
    assert out.tolist() == [1.0, -1.0]


def test_grouped_l2_hand_computed():
    diffs = torch.tensor([[3.0, 4.0], [0.0, 10.0]])
    # S(g0) = [0.6, 0.8], S(g1) = [0, 1]; mean = [0.3, 0.9]; l2 -> [1, 3]/sqrt(10)
    out = grouped_mean_normalize(diffs, torch.tensor([0, 1]), method="l2")
    expected = torch.tensor([1.0, 3.0]) / torch.tensor(10.0).sqrt()
    torch.testing.assert_close(out, expected)


def test_plain_mean_hand_computed():
    diffs = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, -4.0]])
    # weighted mean with weights (1, 1, 2): [4, -8] / 4 = [1, -2] -> max_norm [0.5, -1]
    out = plain_mean_normalize(diffs, torch.tensor([1.0, 1.0, 2.0]))
    assert out.tolist() == [0.5, -1.0]


def test_huge_group_does_not_dominate_grouped_but_dominates_plain():
    small = torch.tensor([[1.0, 0.0]] * 5)  # five prompts agreeing on direction e0
    huge = torch.tensor([[0.0, 1e6]])  # one prompt with a huge difference along e1
    diffs = torch.cat([small, huge])
    ids = torch.arange(6)
    grouped = grouped_mean_normalize(diffs, ids)
    plain = plain_mean_normalize(diffs)
    torch.testing.assert_close(grouped, torch.tensor([1.0, 0.2]))  # one vote each: S([5/6, 1/6])
    assert plain[1] == 1.0 and plain[0] < 1e-5  # the plain mean follows the huge prompt


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="empty contrast set"):
        grouped_mean_normalize(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        grouped_mean_normalize(torch.tensor([[float("inf"), 1.0]]), torch.tensor([0]))


def test_shape_and_dtype_errors_without_runtime_type_checking():
    # Users run without jaxtyping's checker, so the functions validate shapes themselves.
    unchecked = getattr(grouped_mean_normalize, "__wrapped__", grouped_mean_normalize)
    with pytest.raises(ValueError, match="group_ids must have shape"):
        unchecked(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        unchecked(torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        plain_mean_normalize(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="zero total weight"):
        grouped_mean_normalize(torch.ones(2, 2), torch.tensor([0, 1]), torch.tensor([1.0, 0.0]))


def test_matches_a_naive_loop():
    gen = torch.Generator().manual_seed(1)
    diffs = torch.randn(40, 6, generator=gen) * torch.rand(40, 1, generator=gen) * 50
    ids = torch.randint(0, 7, (40,), generator=gen)
    weights = torch.rand(40, generator=gen) + 0.1
    scaled = []
    for g in ids.unique():
        rows = ids == g
        mu = (weights[rows, None] * diffs[rows]).sum(0) / weights[rows].sum()
        scaled.append(max_norm(mu))
    expected = max_norm(torch.stack(scaled).mean(0))
    torch.testing.assert_close(grouped_mean_normalize(diffs, ids, weights), expected)


shapes = st.tuples(st.integers(1, 12), st.integers(1, 16), st.integers(1, 5))


@settings(max_examples=100, deadline=None)
@given(shapes, st.integers(0, 10_000), st.sampled_from(["max_norm", "l2", "softmax"]),
       st.floats(1e-3, 1e3))
def test_grouped_is_invariant_to_rescaling_one_group(shape, seed, method, factor):
    n, d, n_groups = shape
    gen = torch.Generator().manual_seed(seed)
    diffs = torch.randn(n, d, generator=gen, dtype=torch.float64)
    ids = torch.randint(0, n_groups, (n,), generator=gen)
    out = grouped_mean_normalize(diffs, ids, method=method)
    assert torch.isfinite(out).all()
    if method == "softmax":
        return  # softmax weights depend on magnitude, so only max_norm/l2 are scale-free
    rescaled = diffs.clone()
    rescaled[ids == ids[0]] *= factor
    torch.testing.assert_close(grouped_mean_normalize(rescaled, ids, method=method), out)


def test_plain_mean_is_not_invariant_to_rescaling_one_group():
    diffs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ids = torch.tensor([0, 1])
    scaled = diffs.clone()
    scaled[0] *= 1000
    assert torch.equal(grouped_mean_normalize(scaled, ids), grouped_mean_normalize(diffs, ids))
    assert not torch.allclose(plain_mean_normalize(scaled), plain_mean_normalize(diffs))


def test_l2_output_is_unit():
    out = grouped_mean_normalize(torch.randn(10, 4), torch.arange(10) % 3, method="l2")
    assert out.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert l2(out).allclose(out)
