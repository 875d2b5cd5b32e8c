"""Continuous Soft Scaling (CSS), and SADI's top-K mask it replaces.

ROAST replaces SADI's binary top-K mask with a continuous rescaling that keeps every coordinate
and its sign, so the steering vector keeps all of the difference's "activation energy". Each
scaler is a plain function over the last axis; pass one as `scaler=` (see `roast_tl._types.Scaler`).
"""

import torch
from einops import reduce
from jaxtyping import Float
from torch import Tensor

EPS = 1e-12


def max_norm(x: Float[Tensor, "*batch d_act"]) -> Float[Tensor, "*batch d_act"]:
    """Divide by the largest absolute coordinate, so the result has max |x_j| = 1.

    >>> max_norm(torch.tensor([2.0, -4.0, 1.0])).tolist()
    [0.5, -1.0, 0.25]
    """
    peak = reduce(x.abs(), "... d_act -> ... 1", "max")
    return x / peak.clamp_min(EPS)


def l2_normalize(x: Float[Tensor, "*batch d_act"]) -> Float[Tensor, "*batch d_act"]:
    """Divide by the Euclidean norm, so the result is a unit vector.

    >>> l2_normalize(torch.tensor([3.0, -4.0])).tolist()
    [0.6000000238418579, -0.800000011920929]
    """
    norm = reduce(x.square(), "... d_act -> ... 1", "sum").sqrt()
    return x / norm.clamp_min(EPS)


def softmax_scale(x: Float[Tensor, "*batch d_act"]) -> Float[Tensor, "*batch d_act"]:
    """Weight coordinates by d · softmax(|x|), keeping each coordinate's sign.

    Not a softmax of x: the magnitudes are softmax weights of |x|, scaled so they sum to d.
    A zero vector stays zero (sign(0) = 0).

    >>> softmax_scale(torch.tensor([0.0, 0.0])).tolist()
    [0.0, 0.0]
    >>> [round(v, 4) for v in softmax_scale(torch.tensor([1.0, -1.0])).tolist()]
    [1.0, -1.0]
    """
    d_act = x.shape[-1]
    return d_act * torch.softmax(x.abs(), dim=-1) * torch.sign(x)


def top_k_mask(mu: Float[Tensor, " d_act"], k: int) -> Float[Tensor, " d_act"]:
    """SADI's binary mask: 1 on the k coordinates of largest |mu|, 0 elsewhere.

    >>> top_k_mask(torch.tensor([0.1, -3.0, 2.0, 0.5]), 2).tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    if not 1 <= k <= mu.shape[-1]:
        raise ValueError(f"k must be in 1..{mu.shape[-1]}, got {k}")
    mask = torch.zeros_like(mu)
    mask[mu.abs().topk(k).indices] = 1.0
    return mask
