"""Grouped Mean Normalization vs the plain mean: hand-computed values and properties."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from roast_tl.aggregate import group_means, grouped_mean_normalize, plain_mean_normalize
from roast_tl.harness.cli import SCALERS
from roast_tl.scaling import l2_normalize, max_norm, softmax_scale
from tests.tiny_model import unchecked

every_scaler = pytest.mark.parametrize("scaler", list(SCALERS.values()), ids=list(SCALERS))


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
    assert grouped_mean_normalize(diffs, torch.tensor([0, 0, 1])).tolist() == [1.0, -1.0]


def test_grouped_l2_hand_computed():
    # S(g0) = [0.6, 0.8], S(g1) = [0, 1]; mean = [0.3, 0.9]; l2 -> [1, 3] / sqrt(10)
    diffs = torch.tensor([[3.0, 4.0], [0.0, 10.0]])
    out = grouped_mean_normalize(diffs, torch.tensor([0, 1]), scaler=l2_normalize)
    torch.testing.assert_close(out, torch.tensor([1.0, 3.0]) / torch.tensor(10.0).sqrt())


def test_plain_mean_hand_computed():
    # weights (1, 1, 2): ([1, 0] + [3, 0] + 2 [0, -4]) / 4 = [1, -2] -> max_norm [0.5, -1]
    diffs = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, -4.0]])
    assert plain_mean_normalize(diffs, torch.tensor([1.0, 1.0, 2.0])).tolist() == [0.5, -1.0]


def test_huge_group_does_not_dominate_grouped_but_dominates_plain():
    small = torch.tensor([[1.0, 0.0]] * 5)  # five prompts agreeing on direction e0
    huge = torch.tensor([[0.0, 1e6]])  # one prompt with a huge difference along e1
    diffs = torch.cat([small, huge])
    grouped = grouped_mean_normalize(diffs, torch.arange(6))
    plain = plain_mean_normalize(diffs)
    torch.testing.assert_close(grouped, torch.tensor([1.0, 0.2]))  # one vote each: S([5/6, 1/6])
    assert plain[1] == 1.0 and plain[0] < 1e-5  # the plain mean follows the huge prompt


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


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="empty contrast set"):
        grouped_mean_normalize(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        grouped_mean_normalize(torch.tensor([[float("inf"), 1.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="NaN"):
        plain_mean_normalize(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="zero total weight"):
        grouped_mean_normalize(torch.ones(2, 2), torch.tensor([0, 1]), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="weights sum to zero"):
        plain_mean_normalize(torch.ones(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="finite and non-negative"):
        plain_mean_normalize(torch.ones(2, 2), torch.tensor([1.0, -1.0]))


def test_shape_and_dtype_errors_without_runtime_type_checking():
    # Users run without jaxtyping's checker, so the functions validate shapes themselves.
    with pytest.raises(ValueError, match="group_ids must have shape"):
        unchecked(group_means)(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        unchecked(group_means)(torch.zeros(2, 2), torch.zeros(2))


def _case(n, d, n_groups, seed):
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(n, 1, generator=gen, dtype=torch.float64) * 100
    diffs = torch.randn(n, d, generator=gen, dtype=torch.float64) * scale
    ids = torch.randint(0, n_groups, (n,), generator=gen)
    weights = torch.rand(n, generator=gen, dtype=torch.float64) + 0.05
    return gen, diffs, ids, weights


cases = st.tuples(st.integers(1, 12), st.integers(1, 16), st.integers(1, 5), st.integers(0, 10_000))


@every_scaler
@settings(max_examples=60, deadline=None)
@given(case=cases)
def test_grouped_and_plain_ignore_row_order_and_group_labels(scaler, case):
    gen, diffs, ids, weights = _case(*case)
    out = grouped_mean_normalize(diffs, ids, weights, scaler=scaler)
    plain = plain_mean_normalize(diffs, weights, scaler=scaler)
    assert torch.isfinite(out).all() and torch.isfinite(plain).all()
    n, n_groups = case[0], case[2]
    perm = torch.randperm(n, generator=gen)
    relabel = torch.randperm(n_groups, generator=gen) * 7 + 3  # other ids, other group order
    shuffled = grouped_mean_normalize(diffs[perm], relabel[ids[perm]], weights[perm], scaler=scaler)
    torch.testing.assert_close(shuffled, out)
    torch.testing.assert_close(
        plain_mean_normalize(diffs[perm], weights[perm], scaler=scaler), plain
    )


@every_scaler
@settings(max_examples=60, deadline=None)
@given(case=cases)
def test_grouped_ignores_duplicated_rows_and_duplicated_groups(scaler, case):
    _, diffs, ids, weights = _case(*case)
    out = grouped_mean_normalize(diffs, ids, weights, scaler=scaler)
    # Each row twice in its own group: the same group means.
    twice = grouped_mean_normalize(
        diffs.repeat(2, 1), ids.repeat(2), weights.repeat(2), scaler=scaler
    )
    torch.testing.assert_close(twice, out)
    # Every group twice (copies under new ids): each keeps an equal share of the votes.
    copies = grouped_mean_normalize(
        diffs.repeat(2, 1), torch.cat([ids, ids + 1000]), weights.repeat(2), scaler=scaler
    )
    torch.testing.assert_close(copies, out)


@pytest.mark.parametrize("scaler", [max_norm, l2_normalize], ids=lambda f: f.__name__)
@settings(max_examples=100, deadline=None)
@given(
    case=cases,
    factor=st.sampled_from([1e-8, 1e8]) | st.floats(1e-3, 1e3),
)
def test_grouped_is_invariant_to_rescaling_one_group(scaler, case, factor):
    # Activations can differ by many orders of magnitude, hence the extreme factors too.
    # (softmax_scale weights depend on magnitude, so only max_norm and l2 are scale-free.)
    n, d, n_groups, seed = case
    gen = torch.Generator().manual_seed(seed)
    diffs = torch.randn(n, d, generator=gen, dtype=torch.float64)
    ids = torch.randint(0, n_groups, (n,), generator=gen)
    out = grouped_mean_normalize(diffs, ids, scaler=scaler)
    rescaled = diffs.clone()
    rescaled[ids == ids[0]] *= factor
    torch.testing.assert_close(grouped_mean_normalize(rescaled, ids, scaler=scaler), out)


def test_plain_mean_is_not_invariant_to_rescaling_one_group():
    diffs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ids = torch.tensor([0, 1])
    scaled = diffs.clone()
    scaled[0] *= 1000
    assert torch.equal(grouped_mean_normalize(scaled, ids), grouped_mean_normalize(diffs, ids))
    # plain: [1, 1] -> [1, 1], but [1000, 1] -> [1, 0.001]
    assert plain_mean_normalize(diffs).tolist() == [1.0, 1.0]
    torch.testing.assert_close(plain_mean_normalize(scaled), torch.tensor([1.0, 0.001]))


def test_l2_output_is_unit():
    out = grouped_mean_normalize(torch.randn(10, 4), torch.arange(10) % 3, scaler=l2_normalize)
    assert out.norm().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_votes_that_cancel_are_a_tie_in_any_group_order(dtype):
    # Four groups whose softmax_scale votes on coordinate 0 cancel exactly in real arithmetic
    # (v(a) + v(b) - v(a) - v(b)); in floating point the sum's sign depends on the order, and
    # softmax_scale keeps signs. The tie must count as 0 whatever order the groups come in.
    rows = torch.tensor([[0.1, 1.0], [0.7, 1.0], [-0.1, 1.0], [-0.7, 1.0]], dtype=dtype)
    perms = list(itertools.permutations(range(4)))
    grouped = [grouped_mean_normalize(rows, torch.tensor(p), scaler=softmax_scale) for p in perms]
    plain = [plain_mean_normalize(rows[list(p)], scaler=softmax_scale) for p in perms]
    for outs in (grouped, plain):
        for out in outs:
            assert out[0] == 0.0
            torch.testing.assert_close(out, outs[0], rtol=0, atol=0)
        assert outs[0][1] > 0
