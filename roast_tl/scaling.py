"""Continuous Soft Scaling (CSS): rescale a mean difference without masking any coordinate.

ROAST replaces SADI's binary top-K mask with a continuous rescaling that keeps every coordinate
and its sign, so the steering vector keeps all of the difference's "activation energy".
"""

from collections.abc import Callable
from typing import Literal

import torch
from einops import reduce
from jaxtyping import Float
from torch import Tensor

ScalingMethod = Literal["max_norm", "l2", "softmax"]
SCALING_METHODS: tuple[str, ...] = ("max_norm", "l2", "softmax")
EPS = 1e-12


def max_norm(x: Float[Tensor, "*batch d_act"], eps: float = EPS) -> Float[Tensor, "*batch d_act"]:
    """Divide by the largest absolute coordinate, so the result has max |x_j| = 1.

    >>> max_norm(torch.tensor([2.0, -4.0, 1.0])).tolist()
    [0.5, -1.0, 0.25]
    """
    peak = reduce(x.abs(), "... d_act -> ... 1", "max")
    return x / peak.clamp_min(eps)


def l2(x: Float[Tensor, "*batch d_act"], eps: float = EPS) -> Float[Tensor, "*batch d_act"]:
    """Divide by the Euclidean norm, so the result is a unit vector.

    >>> l2(torch.tensor([3.0, -4.0])).tolist()
    [0.6000000238418579, -0.800000011920929]
    """
    norm = reduce(x.square(), "... d_act -> ... 1", "sum").sqrt()
    return x / norm.clamp_min(eps)


def softmax(x: Float[Tensor, "*batch d_act"], eps: float = EPS) -> Float[Tensor, "*batch d_act"]:
    """Weight coordinates by d · softmax(|x|), keeping each coordinate's sign.

    Coordinates sum to d in absolute value (a zero vector stays zero: sign(0) = 0).

    >>> softmax(torch.tensor([0.0, 0.0])).tolist()
    [0.0, 0.0]
    """
    d_act = x.shape[-1]
    return d_act * torch.softmax(x.abs(), dim=-1) * torch.sign(x)


SCALERS: dict[str, Callable[[Tensor], Tensor]] = {"max_norm": max_norm, "l2": l2, "softmax": softmax}


def continuous_soft_scale(
    x: Float[Tensor, "*batch d_act"], method: str = "max_norm"
) -> Float[Tensor, "*batch d_act"]:
    """Apply the CSS scaling `method` ("max_norm", "l2" or "softmax") along the last axis.

    >>> continuous_soft_scale(torch.tensor([1.0, -2.0]), "max_norm").tolist()
    [0.5, -1.0]
    """
    return get_scaler(method)(x)


def get_scaler(method: str) -> Callable[[Tensor], Tensor]:
    """Return the scaling function named `method`, or raise a ValueError listing the options."""
    if method not in SCALERS:
        raise ValueError(f"unknown scaling method {method!r}; choose one of {list(SCALERS)}")
    return SCALERS[method]
