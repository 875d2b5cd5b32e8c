"""Continuous Soft Scaling: exact values on hand-computed examples, and properties."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from roast_tl.scaling import continuous_soft_scale, l2, max_norm, softmax


def test_max_norm_hand_computed():
    x = torch.tensor([2.0, -4.0, 1.0, 0.0])
    assert max_norm(x).tolist() == [0.5, -1.0, 0.25, 0.0]


def test_l2_hand_computed():
    x = torch.tensor([3.0, 0.0, -4.0])
    torch.testing.assert_close(l2(x), torch.tensor([0.6, 0.0, -0.8]))


def test_softmax_hand_computed():
    # d = 2, |x| = (0, ln 3): softmax = (1/4, 3/4), times d = (0.5, 1.5), with signs (+, -).
    x = torch.tensor([0.0, -math.log(3.0)])
    torch.testing.assert_close(softmax(x), torch.tensor([0.0, -1.5]))
    y = torch.tensor([1.0, -1.0, 1.0])  # equal magnitudes: every weight is exactly 1
    torch.testing.assert_close(softmax(y), torch.tensor([1.0, -1.0, 1.0]))


@pytest.mark.parametrize("method", ["max_norm", "l2", "softmax"])
def test_zero_maps_to_zero(method):
    out = continuous_soft_scale(torch.zeros(5), method)
    assert torch.equal(out, torch.zeros(5))


def test_batched_rows_scaled_independently():
    x = torch.tensor([[1.0, -2.0], [10.0, 5.0]])
    assert max_norm(x).tolist() == [[0.5, -1.0], [1.0, 0.5]]


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown scaling method 'top_k'.*max_norm"):
        continuous_soft_scale(torch.ones(3), "top_k")  # type: ignore[arg-type]


vectors = st.lists(
    st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=32), min_size=1, max_size=40
).map(lambda xs: torch.tensor(xs, dtype=torch.float32))


@settings(max_examples=200, deadline=None)
@given(vectors, st.sampled_from(["max_norm", "l2", "softmax"]))
def test_scaling_is_finite_and_keeps_signs(x, method):
    out = continuous_soft_scale(x, method)
    assert torch.isfinite(out).all()
    nonzero = out != 0
    # CSS never flips a coordinate's sign and never creates a nonzero from a zero.
    assert torch.equal(torch.sign(out)[nonzero], torch.sign(x)[nonzero])
    assert not (out[x == 0] != 0).any()


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_max_norm_peak_is_one(x):
    out = max_norm(x)
    if x.abs().max() > 1e-6:
        assert out.abs().max().item() == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(vectors, st.floats(min_value=1e-3, max_value=1e3))
def test_max_norm_and_l2_are_scale_invariant(x, c):
    if x.abs().max() < 1e-3:
        return
    torch.testing.assert_close(max_norm(c * x), max_norm(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(l2(c * x), l2(x), rtol=1e-4, atol=1e-5)
