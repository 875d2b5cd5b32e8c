"""Continuous Soft Scaling and SADI's top-K mask: hand-computed values, and properties.

Property tests run over `roast_tl.harness.cli.SCALERS`, the one name -> function map, so a new
scaler is tested as soon as it is registered there.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from roast_tl.harness.cli import SCALERS
from roast_tl.scaling import l2_normalize, max_norm, softmax_scale, top_k_mask

every_scaler = pytest.mark.parametrize("scaler", list(SCALERS.values()), ids=list(SCALERS))


def test_scalers_registry_holds_the_three_css_functions():
    assert SCALERS == {
        "max_norm": max_norm,
        "l2_normalize": l2_normalize,
        "softmax_scale": softmax_scale,
    }


def test_max_norm_hand_computed():
    x = torch.tensor([2.0, -4.0, 1.0, 0.0])
    assert max_norm(x).tolist() == [0.5, -1.0, 0.25, 0.0]


def test_l2_normalize_hand_computed():
    x = torch.tensor([3.0, 0.0, -4.0])
    torch.testing.assert_close(l2_normalize(x), torch.tensor([0.6, 0.0, -0.8]))


def test_softmax_scale_hand_computed():
    # d = 2, |x| = (0, ln 3): softmax = (1/4, 3/4), times d = (0.5, 1.5), signs (0, -).
    x = torch.tensor([0.0, -math.log(3.0)])
    torch.testing.assert_close(softmax_scale(x), torch.tensor([0.0, -1.5]))
    # |x| = (ln 2, ln 3): softmax = (2/5, 3/5), times d = (0.8, 1.2), signs (-, +).
    y = torch.tensor([-math.log(2.0), math.log(3.0)])
    torch.testing.assert_close(softmax_scale(y), torch.tensor([-0.8, 1.2]))


def test_batched_rows_are_scaled_independently():
    x = torch.tensor([[1.0, -2.0], [10.0, 5.0]])
    assert max_norm(x).tolist() == [[0.5, -1.0], [1.0, 0.5]]


def test_top_k_mask_hand_computed_and_bounds():
    mu = torch.tensor([1.0, -2.0, 2.5, 4.0])
    assert top_k_mask(mu, 1).tolist() == [0.0, 0.0, 0.0, 1.0]
    assert top_k_mask(mu, 3).tolist() == [0.0, 1.0, 1.0, 1.0]
    assert top_k_mask(mu, 4).tolist() == [1.0, 1.0, 1.0, 1.0]
    for k in (0, 5):
        with pytest.raises(ValueError, match="k must be in 1..4"):
            top_k_mask(mu, k)


@every_scaler
def test_zero_maps_to_zero(scaler):
    assert torch.equal(scaler(torch.zeros(5)), torch.zeros(5))


vectors = st.lists(
    st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=32), min_size=1, max_size=40
).map(lambda xs: torch.tensor(xs, dtype=torch.float32))


@every_scaler
@settings(max_examples=100, deadline=None)
@given(x=vectors)
def test_scaling_is_finite_and_keeps_signs(scaler, x):
    out = scaler(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    nonzero = out != 0
    # CSS never flips a coordinate's sign and never creates a nonzero from a zero.
    assert torch.equal(torch.sign(out)[nonzero], torch.sign(x)[nonzero])
    assert not (out[x == 0] != 0).any()


@every_scaler
@settings(max_examples=50, deadline=None)
@given(
    batch_shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    d=st.integers(1, 24),
    seed=st.integers(0, 10_000),
)
def test_scaling_a_batch_equals_scaling_each_row(scaler, batch_shape, d, seed):
    gen = torch.Generator().manual_seed(seed)
    magnitudes = 10.0 ** torch.randint(-3, 4, (*batch_shape, 1), generator=gen)
    x = torch.randn(*batch_shape, d, generator=gen) * magnitudes
    out = scaler(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    rows = x.reshape(-1, d)
    torch.testing.assert_close(out.reshape(-1, d), torch.stack([scaler(r) for r in rows]))


@settings(max_examples=100, deadline=None)
@given(vectors)
def test_max_norm_peak_is_one(x):
    if x.abs().max() > 1e-6:
        assert max_norm(x).abs().max().item() == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(vectors)
def test_l2_normalize_gives_unit_vectors(x):
    if x.abs().max() > 1e-3:
        assert l2_normalize(x).norm().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("scaler", [max_norm, l2_normalize], ids=lambda f: f.__name__)
@settings(max_examples=100, deadline=None)
@given(x=vectors, c=st.floats(min_value=1e-3, max_value=1e3))
def test_max_norm_and_l2_are_scale_invariant(scaler, x, c):
    # softmax_scale is not: its weights depend on the magnitudes.
    if x.abs().max() < 1e-3:
        return
    torch.testing.assert_close(scaler(c * x), scaler(x), rtol=1e-4, atol=1e-5)
