"""Grouped Mean Normalization: one training prompt, one vote.

Per-sample difference magnitudes vary a lot, so a plain mean is dominated by a few large samples.
ROAST normalizes each prompt's mean difference before averaging: v = S(mean_g S(mu_g)), with S a
Continuous Soft Scaling function (`scaler=`, default `max_norm`).
"""

import torch
from einops import einsum, reduce
from jaxtyping import Float, Int
from torch import Tensor

from roast_tl._types import Scaler
from roast_tl.scaling import max_norm


def _check_diffs(
    diffs: Float[Tensor, "pair d_act"], weights: Float[Tensor, " pair"] | None
) -> Float[Tensor, " pair"]:
    if diffs.ndim != 2:
        raise ValueError(f"diffs must have shape (pair, d_act), got {tuple(diffs.shape)}")
    if diffs.shape[0] == 0:
        raise ValueError(
            "no contrast differences to average (empty contrast set): no prompt had both a "
            "positive and a negative; use more rollouts, an easier split, or allow fallbacks"
        )
    if not torch.isfinite(diffs).all():
        raise ValueError("diffs contain NaN or inf; check the captured activations")
    if weights is None:
        return torch.ones(diffs.shape[0], dtype=diffs.dtype, device=diffs.device)
    if weights.shape != (diffs.shape[0],):
        raise ValueError(
            f"weights must have shape ({diffs.shape[0]},) to match diffs, "
            f"got {tuple(weights.shape)}"
        )
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative")
    return weights.to(diffs.dtype)


TIE_ULPS = 1024
"""A mean within this many ulps of its terms' mean magnitude is a tie (see `_ties_to_zero`)."""


def _ties_to_zero(
    mean: Float[Tensor, "*batch d_act"], magnitude: Float[Tensor, "*batch d_act"]
) -> Float[Tensor, "*batch d_act"]:
    """Set to 0 the coordinates of a mean whose terms cancel to within rounding.

    `magnitude` is the mean of the terms' absolute values. Below TIE_ULPS · eps · magnitude the
    mean's sign is rounding noise (from the summation order and from the terms' own rounding),
    and a sign-keeping scaler such as softmax_scale would turn that noise into a full-size
    coordinate. Such a coordinate is a tie: its votes cancel, so it counts as 0. The threshold is
    relative to a mean, so duplicating every term leaves the decision unchanged.
    """
    tolerance = TIE_ULPS * torch.finfo(mean.dtype).eps * magnitude
    return torch.where(mean.abs() <= tolerance, torch.zeros_like(mean), mean)


def group_means(
    diffs: Float[Tensor, "pair d_act"],
    group_ids: Int[Tensor, " pair"],
    weights: Float[Tensor, " pair"] | None = None,
) -> tuple[Float[Tensor, "group d_act"], Int[Tensor, " group"]]:
    """Return each group's weighted mean difference and the sorted group ids it belongs to.

    >>> means, ids = group_means(torch.tensor([[1.0], [3.0], [10.0]]), torch.tensor([0, 0, 5]))
    >>> means.squeeze(-1).tolist(), ids.tolist()
    ([2.0, 10.0], [0, 5])
    """
    w = _check_diffs(diffs, weights)
    if group_ids.shape != (diffs.shape[0],):
        raise ValueError(
            f"group_ids must have shape ({diffs.shape[0]},) to match diffs, "
            f"got {tuple(group_ids.shape)}"
        )
    if group_ids.dtype.is_floating_point or group_ids.dtype == torch.bool:
        raise TypeError(f"group_ids must be an integer tensor, got dtype {group_ids.dtype}")
    unique_ids, member_of = torch.unique(group_ids, sorted=True, return_inverse=True)
    membership = torch.nn.functional.one_hot(member_of, len(unique_ids)).to(diffs.dtype)
    weighted_membership = membership * w[:, None]
    totals = reduce(weighted_membership, "pair group -> group", "sum")
    if (totals <= 0).any():
        empty = unique_ids[totals <= 0].tolist()
        raise ValueError(
            f"groups {empty} have zero total weight; give each group a positive weight"
        )
    sums = einsum(weighted_membership, diffs, "pair group, pair d_act -> group d_act")
    magnitudes = einsum(weighted_membership, diffs.abs(), "pair group, pair d_act -> group d_act")
    means = _ties_to_zero(sums / totals[:, None], magnitudes / totals[:, None])
    return means, unique_ids


def grouped_mean_normalize(
    diffs: Float[Tensor, "pair d_act"],
    group_ids: Int[Tensor, " pair"],
    weights: Float[Tensor, " pair"] | None = None,
    *,
    scaler: Scaler = max_norm,
) -> Float[Tensor, " d_act"]:
    """Return S(mean_g S(mu_g)), mu_g the weighted mean of group g's differences.

    Every group gets one vote whatever its size or magnitude; `weights` only act within a group.
    A coordinate whose votes cancel to within rounding (TIE_ULPS) is a tie and counts as 0, so
    the result does not depend on the order of groups or rows (softmax_scale keeps signs, and
    would otherwise turn rounding noise into a full-size coordinate).

    >>> diffs = torch.tensor([[1.0, 0.0], [1000.0, 1000.0]])
    >>> grouped_mean_normalize(diffs, torch.tensor([0, 1])).tolist()
    [1.0, 0.5]
    """
    means, _ = group_means(diffs, group_ids, weights)
    votes = scaler(means)
    consensus = reduce(votes, "group d_act -> d_act", "mean")
    magnitude = reduce(votes.abs(), "group d_act -> d_act", "mean")
    return scaler(_ties_to_zero(consensus, magnitude))


def plain_mean_normalize(
    diffs: Float[Tensor, "pair d_act"],
    weights: Float[Tensor, " pair"] | None = None,
    *,
    scaler: Scaler = max_norm,
) -> Float[Tensor, " d_act"]:
    """Return S(weighted mean of all differences): the ungrouped ablation of ROAST.

    >>> plain_mean_normalize(torch.tensor([[1.0, 0.0], [1000.0, 1000.0]])).tolist()
    [1.0, 0.9990010261535645]
    """
    w = _check_diffs(diffs, weights)
    total = w.sum()
    if total <= 0:
        raise ValueError("weights sum to zero; give at least one difference a positive weight")
    mean = einsum(w, diffs, "pair, pair d_act -> d_act") / total
    magnitude = einsum(w, diffs.abs(), "pair, pair d_act -> d_act") / total
    return scaler(_ties_to_zero(mean, magnitude))
