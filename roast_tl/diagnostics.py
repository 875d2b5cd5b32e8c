"""ROAST's energy and consistency diagnostics, as pure tensor functions.

Consistency: per-prompt difference magnitude vs cosine to the consensus direction (ROAST's claim
is that they correlate only moderately, so a plain mean over-weights big prompts). Energy: how
much of the mean difference a top-K mask keeps, vs CSS which keeps all of it.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from einops import einsum, reduce
from jaxtyping import Float
from torch import Tensor

from roast_tl._types import Scaler
from roast_tl.scaling import l2_normalize, max_norm, softmax_scale, top_k_mask

if TYPE_CHECKING:
    from roast_tl.activations import ContrastMeans


def magnitude_consistency(
    diffs: Float[Tensor, "group d_act"],
) -> tuple[Float[Tensor, " group"], Float[Tensor, " group"], float]:
    """Return each row's norm, its cosine to the normalized-mean consensus, and their Pearson r.

    >>> m, c, r = magnitude_consistency(torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]))
    >>> m.tolist()[:2], [round(x, 3) for x in c.tolist()]
    ([1.0, 2.0], [0.707, 0.707, 1.0])
    """
    if diffs.ndim != 2 or diffs.shape[0] < 2:
        raise ValueError(
            f"need at least two rows of differences (group, d_act), got {tuple(diffs.shape)}"
        )
    magnitudes = reduce(diffs.square(), "group d_act -> group", "sum").sqrt()
    unit = l2_normalize(diffs)
    consensus = l2_normalize(reduce(unit, "group d_act -> d_act", "mean"))
    cosines = einsum(unit, consensus, "group d_act, d_act -> group")
    return magnitudes, cosines, pearson(magnitudes, cosines)


def pearson(x: Float[Tensor, " n"], y: Float[Tensor, " n"]) -> float:
    """Pearson correlation of two equal-length vectors (0.0 when either is constant).

    >>> round(pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 7.0])), 4)
    0.9934
    """
    xc, yc = x.double() - x.double().mean(), y.double() - y.double().mean()
    denom = (xc.norm() * yc.norm()).item()
    return float((xc @ yc).item() / denom) if denom > 0 else 0.0


def retained_energy(mu: Float[Tensor, " d_act"], mask: Float[Tensor, " d_act"]) -> float:
    """‖M ⊙ μ‖² / ‖μ‖²: the share of the difference's energy a mask keeps.

    >>> retained_energy(torch.tensor([3.0, 4.0]), torch.tensor([0.0, 1.0]))
    0.64
    """
    total = mu.square().sum().item()
    return float((mask * mu).square().sum().item() / total) if total > 0 else 0.0


def cosine(a: Float[Tensor, " d_act"], b: Float[Tensor, " d_act"]) -> float:
    """Cosine similarity of two vectors (0.0 if either is zero)."""
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0).item())


def mask_energy_curve(mu: Float[Tensor, " d_act"], ks: list[int]) -> list[dict[str, float | int]]:
    """For each K: retained energy and cos(M ⊙ μ, μ) of SADI's top-K mask; CSS keeps both at 1.

    >>> mask_energy_curve(torch.tensor([3.0, 4.0]), [1, 2])[0]
    {'k': 1, 'retained_energy': 0.64, 'cosine': 0.8}
    """
    rows = []
    for k in ks:
        mask = top_k_mask(mu, k)
        rows.append(
            {
                "k": k,
                "retained_energy": round(retained_energy(mu, mask), 6),
                "cosine": round(cosine(mask * mu, mu), 6),
            }
        )
    return rows


def css_energy(mu: Float[Tensor, " d_act"], scaler: Scaler = max_norm) -> dict[str, float]:
    """Retained energy and cos(v, μ) of a CSS-scaled vector v = S(μ) (no coordinate is dropped).

    max_norm and l2_normalize only rescale μ, so cosine is 1; softmax_scale reweights
    coordinates, so it is not.

    >>> css_energy(torch.tensor([3.0, 4.0]))
    {'retained_energy': 1.0, 'cosine': 1.0}
    """
    v = scaler(mu)
    kept = (v != 0).to(mu.dtype)
    return {
        "retained_energy": round(retained_energy(mu, kept), 6),
        "cosine": round(cosine(v, mu), 6),
    }


def energy_table(
    mu: Float[Tensor, " d_act"],
    ks: list[int],
    scalers: Sequence[Scaler] = (max_norm, l2_normalize, softmax_scale),
) -> list[dict[str, object]]:
    """Rows comparing SADI's top-K masks (one per K) with each CSS scaler on the same μ.

    >>> [r["scaler"] for r in energy_table(torch.tensor([3.0, 4.0]), [1], (max_norm,))]
    ['top_k', 'max_norm']
    """
    rows: list[dict[str, object]] = [
        {"scaler": "top_k", **row} for row in mask_energy_curve(mu, ks)
    ]
    for scaler in scalers:
        rows.append({"scaler": scaler.__name__, "k": int(mu.shape[-1]), **css_energy(mu, scaler)})
    return rows


def consistency_report(means: "ContrastMeans", hook_name: str) -> dict[str, object]:
    """Magnitude vs consistency of every prompt's mean difference at `hook_name`, as plain data.

    Returns per-group magnitudes and cosines to the consensus, their Pearson r, and the share of
    the plain (unnormalized) sum contributed by the largest 10% of groups.
    """
    diffs = means.differences(hook_name)
    magnitudes, cosines, r = magnitude_consistency(diffs)
    top = max(1, round(0.1 * len(magnitudes)))
    largest = magnitudes.sort(descending=True).values[:top].sum()
    share = float(largest / magnitudes.sum().clamp_min(1e-12))
    return {
        "hook_name": hook_name,
        "item_ids": list(means.item_ids),
        "magnitudes": magnitudes.tolist(),
        "cosines": cosines.tolist(),
        "pearson_r": r,
        "top10pct_magnitude_share": share,
    }
