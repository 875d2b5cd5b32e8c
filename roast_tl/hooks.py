"""Steering hooks in TransformerLens' `(activation, hook)` form, and the `steer` context manager.

Positions:
- "all": every position of every forward pass.
- "last": the last prompt token and every generated token (the ROAST authors' command-line
  default). In a plain forward pass that is the final position.
- "prefill": the last prompt token only (the authors' experiment scripts).
Inside `roast_tl.generate` the hook knows absolute positions, so cached and uncached decoding
steer the same tokens. Outside it (TL's own `generate`, `run_with_hooks`) "last" steers the
final position of each pass and "prefill" the final position of multi-token passes, which is the
same thing under KV-cached decoding.
"""

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.hook_points import HookPoint

from roast_tl._types import HookedModel, Positions, SteeringMode
from roast_tl._warnings import RoastWarning

if TYPE_CHECKING:
    from roast_tl.vector import SteeringVector


@dataclass(frozen=True)
class DecodeWindow:
    """Where the current forward pass sits in a generation: set by `roast_tl.generate` only.

    `offset` is the absolute position of the pass's first token; `prompt_len` the (left-padded)
    prompt length, so the last prompt token is at absolute position `prompt_len - 1`.
    """

    offset: int
    prompt_len: int


FP32_MAX = float(torch.finfo(torch.float32).max)

CURRENT_WINDOW: ContextVar[DecodeWindow | None] = ContextVar("roast_tl_decode_window", default=None)


def check_alpha(alpha: float) -> float:
    """Return `alpha` as a float, or raise a ValueError when it is NaN or infinite."""
    try:
        value = float(alpha)
    except (TypeError, ValueError) as err:
        raise TypeError(f"alpha must be a real number, got {alpha!r}") from err
    if not math.isfinite(value):
        raise ValueError(f"alpha must be finite, got {alpha!r}; pick a value such as 1.0")
    return value


def check_direction(vector: Tensor, name: str = "") -> float:
    """Return max |v|, or raise unless `vector` is floating point and finite once cast to
    float32 (the hooks' sum).

    A float64 entry of 1e300 is finite but becomes inf in a float32 model, so it is refused.
    """
    what = f"the vector for {name!r}" if name else "the steering vector"
    if not vector.is_floating_point():
        raise TypeError(
            f"{what} has dtype {vector.dtype}; steering vectors must be floating point "
            "(cast it with .float())"
        )
    if not torch.isfinite(vector).all():
        raise ValueError(f"{what} contains NaN or inf")
    peak = float(vector.detach().abs().max()) if vector.numel() else 0.0
    if peak > FP32_MAX:
        raise ValueError(
            f"{what} has entries beyond the float32 range (max |v| = {peak:.3g}); scale it down"
        )
    return peak


def steered_slice(n_pos: int, positions: Positions, window: DecodeWindow | None) -> slice | None:
    """Return the slice of a pass's `n_pos` positions to steer, or None for none of them."""
    if positions == "all":
        return slice(0, n_pos)
    if window is None:
        if positions == "prefill" and n_pos == 1:
            return None
        return slice(n_pos - 1, n_pos)
    last_prompt = window.prompt_len - 1 - window.offset  # index of the last prompt token here
    if positions == "prefill":
        return slice(last_prompt, last_prompt + 1) if 0 <= last_prompt < n_pos else None
    start = max(last_prompt, 0)
    return slice(start, n_pos) if start < n_pos else None


def _check_fits(bound: float, dtype: torch.dtype, name: str) -> None:
    """Raise when alpha·max|v| (`bound`) overflows `dtype`: steering would produce inf/NaN."""
    if bound > float(torch.finfo(dtype).max):
        where = f" for {name}" if name else ""
        raise ValueError(
            f"alpha·max|v|{where} is {bound:.3g}, beyond the {str(dtype).removeprefix('torch.')} "
            "range: the steered activations would be inf/NaN; use a much smaller alpha"
        )


class SteeringHook:
    """A TransformerLens hook that adds alpha·v (or alpha·(v ⊙ h)) at the chosen positions.

    Activations are `(batch, pos, d_act)`; `vector` is `(d_act,)`. The hook checks the width
    once per call (an int comparison) and never runs jaxtyping checks in the per-token path.
    """

    def __init__(
        self,
        vector: Float[Tensor, " d_act"],
        alpha: float,
        *,
        positions: Positions = "last",
        mode: SteeringMode = "add",
        name: str = "",
    ) -> None:
        if positions not in get_args(Positions):
            raise ValueError(
                f"unknown positions {positions!r}; choose one of {list(get_args(Positions))}"
            )
        if mode not in get_args(SteeringMode):
            raise ValueError(
                f"unknown steering mode {mode!r}; choose one of {list(get_args(SteeringMode))}"
            )
        if vector.ndim != 1:
            raise ValueError(f"a steering vector must be 1-D (d_act,), got {tuple(vector.shape)}")
        peak = check_direction(vector, name)
        self.vector = vector
        self.alpha = check_alpha(alpha)
        self._bound = abs(self.alpha) * peak
        _check_fits(self._bound, torch.float32, name)
        self.positions = positions
        self.mode = mode
        self.name = name
        self._cast: dict[tuple[torch.dtype, torch.device], Tensor] = {}

    def _vector_like(self, activation: Tensor) -> Tensor:
        key = (activation.dtype, activation.device)
        if key not in self._cast:
            if activation.is_floating_point():
                _check_fits(self._bound, activation.dtype, self.name)
            self._cast[key] = self.vector.to(dtype=activation.dtype, device=activation.device)
        return self._cast[key]

    def __repr__(self) -> str:
        return (
            f"SteeringHook({self.name or '?'}, alpha={self.alpha:g}, positions={self.positions!r}, "
            f"mode={self.mode!r}, d_act={self.vector.shape[0]})"
        )

    def __call__(self, activation: Tensor, hook: HookPoint) -> Tensor:
        if self.alpha == 0.0:
            return activation
        if activation.shape[-1] != self.vector.shape[0]:
            raise ValueError(
                f"steering vector for {self.name or getattr(hook, 'name', '?')} has width "
                f"{self.vector.shape[0]} but the activation has width {activation.shape[-1]} "
                f"(shape {tuple(activation.shape)}); the vector was made for another site or model"
            )
        if activation.ndim < 3:
            raise ValueError(
                f"expected activations of shape (batch, pos, d_act) at "
                f"{getattr(hook, 'name', '?')}, got {tuple(activation.shape)}"
            )
        where = steered_slice(activation.shape[1], self.positions, CURRENT_WINDOW.get())
        if where is None:
            return activation
        v = self._vector_like(activation)
        steered = activation.clone()
        if self.mode == "add":
            steered[:, where] += self.alpha * v
        else:
            steered[:, where] += self.alpha * v * activation[:, where]
        return steered


@contextmanager
def steer(
    model: HookedModel,
    vector: "SteeringVector",
    alpha: float,
    *,
    positions: Positions = "last",
    mode: SteeringMode = "add",
    check_model: bool = True,
    allow_other_model: bool = False,
) -> Iterator[HookedModel]:
    """Steer `model` inside a `with` block through `model.hooks`; hooks go away on exit or error.

    Composes with `run_with_hooks`, `run_with_cache`, `generate` and `transformer_lens.patching`,
    since those run the model's forward with whatever hooks are attached. `allow_other_model`
    accepts a vector made for another model (as does a vector loaded with it).

        with roast_tl.steer(model, vector, alpha=4.0):
            logits = model(tokens)
    """
    require_steering_vector(vector, "steer")
    if check_model:
        vector.check_model(model, allow_other_model=allow_other_model)
    with model.hooks(fwd_hooks=vector.fwd_hooks(alpha, positions=positions, mode=mode)):
        yield model


def require_steering_vector(vector: object, caller: str) -> None:
    """Raise a TypeError unless `vector` is a `SteeringVector` (a raw tensor or dict is not)."""
    from roast_tl.vector import SteeringVector

    if not isinstance(vector, SteeringVector):
        raise TypeError(
            f"{caller} needs a SteeringVector, got {type(vector).__name__}; wrap your tensors: "
            "SteeringVector({hook_name: tensor}, {'model_name': model.cfg.model_name})"
        )


def hooked_points(model: HookedModel) -> list[str]:
    """Sorted names of the hook points with forward hooks attached, one name per HookPoint
    (the bridge aliases some, e.g. `blocks.1.hook_resid_post` and `blocks.1.hook_out`)."""
    points = {id(hp): name for name, hp in model.hook_dict.items() if hp.has_hooks(dir="fwd")}
    return sorted(points.values())


def other_hooks_attached(model: HookedModel, caller: str) -> bool:
    """Warn (RoastWarning) and return True when forward hooks are attached to `model` already.

    They act on every pass of `caller` (an enclosing `steer`, a hook of your own), so the run is
    not the plain model its settings would otherwise describe.
    """
    attached = hooked_points(model)
    if attached:
        shown = ", ".join(attached[:3]) + (", ..." if len(attached) > 3 else "")
        warnings.warn(
            f"{caller} runs with forward hooks already attached to the model ({shown}), e.g. "
            "inside a steer block; they act on every pass and the result records "
            "other_hooks_attached=True. Call it outside the block for a plain run",
            RoastWarning,
            stacklevel=3,
        )
    return bool(attached)
