"""Steering hooks in TransformerLens' `(activation, hook)` form, and the `steer` context manager.

`positions` (where a vector is applied) takes:
- "all": every position of every forward pass.
- "last": each row's last real token, and inside `roast_tl.generate` every generated token too
  (the ROAST authors' command-line default).
- "prefill": each row's last real prompt token only (the authors' experiment scripts).
- an int or a list of ints: token indices within each row's real tokens, negative from its end
  (`-1` is "the last token", `0` the first, BOS included). Inside `roast_tl.generate` they index
  the prompt only, so generated tokens are not steered; out-of-range indices steer nothing.
- a boolean `(batch, pos)` mask: exactly those positions of a pass of that shape (plain forward
  passes only; any other pass shape raises).
- a callable `fn(activation, hook)` returning a boolean mask of the pass or ints as above.

Real tokens: inside `roast_tl.generate` the hook knows the padded prompt and absolute positions
(`DecodeWindow`), so cached and uncached decoding steer the same tokens. Elsewhere it learns the
padding from an `attention_mask=` of the pass's shape, or from the token ids the model was called
with (`steer` and `fwd_hooks(model=...)` add a hook on the token input to read them: a bridge's
`embed.hook_in`, a HookedTransformer's `hook_tokens`): a run of pad tokens at a row's end (right
padding) or start (left padding) is padding when rows differ in it. With neither, every position
of a pass is real.

Outside `roast_tl.generate` each pass is indexed on its own: under TL's KV-cached `generate` a
decode pass is one token, so "last" and `-1` steer each new token, like `roast_tl.generate`; TL's
uncached `generate(use_past_kv_cache=False)` re-runs the whole sequence each step and "last"
then steers only the newest token, dropping the steering of the tokens before it. The hook
notices such a re-run and warns once (`UncachedGenerateWarning`).
"""

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, get_args

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.hook_points import HookPoint

from roast_tl._types import AlphaScale, HookedModel, Positions, PositionSpec, SteeringMode
from roast_tl._warnings import RoastWarning, UncachedGenerateWarning
from roast_tl.positions import (
    DecodeWindow,
    as_indices,
    index_mask,
    mask_bounds,
    pass_bounds,
    prompt_bounds,
    real_token_bounds,
    steered_slice,
)

if TYPE_CHECKING:
    from roast_tl.vector import SteeringVector


class PassTokens:
    """The token ids of the current forward pass, recorded by a hook on the model's token input
    (a bridge's `embed.hook_in`, a HookedTransformer's `hook_tokens`) for the steering hooks of
    one `fwd_hooks` list: their padding tells each hook where a row's real tokens start and
    end."""

    def __init__(self, pad_token_id: int | None, bos_token_id: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.bos_token_id = bos_token_id
        self.shape: tuple[int, ...] | None = None
        self.bounds: Tensor | None = None

    def __repr__(self) -> str:
        return f"PassTokens(pad_token_id={self.pad_token_id})"

    def __call__(self, tokens: Tensor, hook: HookPoint) -> None:
        self.shape, self.bounds = None, None
        if self.pad_token_id is None or tokens.ndim != 2 or tokens.is_floating_point():
            return
        self.shape = tuple(tokens.shape)
        self.bounds = real_token_bounds(tokens, self.pad_token_id, self.bos_token_id)


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
    `attention_mask` (the 0/1 mask of the batch you run) and `tokens` (a `PassTokens` fed by a
    hook on the token input) tell it where padded rows' real tokens are; see `roast_tl.hooks`.
    """

    def __init__(
        self,
        vector: Float[Tensor, " d_act"],
        alpha: float,
        *,
        positions: PositionSpec = "last",
        mode: SteeringMode = "add",
        name: str = "",
        attention_mask: Tensor | None = None,
        tokens: PassTokens | None = None,
    ) -> None:
        self._named: Positions | None = None
        self._indices: tuple[int, ...] | None = None
        self._mask: Tensor | None = None
        self._select: Callable[[Tensor, HookPoint], Any] | None = None
        if isinstance(positions, str):
            if positions not in get_args(Positions):
                raise ValueError(
                    f"unknown positions {positions!r}; choose one of {list(get_args(Positions))}, "
                    "an int, a list of ints, a boolean (batch, pos) mask or a callable"
                )
            self._named = positions  # type: ignore[assignment]
        elif isinstance(positions, Tensor) and positions.dtype == torch.bool:
            if positions.ndim != 2:
                raise ValueError(
                    f"a positions mask must be (batch, pos), got shape {tuple(positions.shape)}"
                )
            self._mask = positions
        elif callable(positions):
            self._select = positions
        else:
            self._indices = as_indices(positions, "positions")
        if mode not in get_args(SteeringMode):
            raise ValueError(
                f"unknown steering mode {mode!r}; choose one of {list(get_args(SteeringMode))}"
            )
        if vector.ndim != 1:
            raise ValueError(f"a steering vector must be 1-D (d_act,), got {tuple(vector.shape)}")
        if attention_mask is not None and attention_mask.ndim != 2:
            raise ValueError(
                f"attention_mask must be (batch, pos), got shape {tuple(attention_mask.shape)}"
            )
        peak = check_direction(vector, name)
        self.vector = vector
        self.alpha = check_alpha(alpha)
        self._bound = abs(self.alpha) * peak
        _check_fits(self._bound, torch.float32, name)
        self.positions = positions
        self.mode = mode
        self.name = name
        self.attention_mask = attention_mask
        self.tokens = tokens
        self._cast: dict[tuple[torch.dtype, torch.device], Tensor] = {}
        # Re-run detection (TL's uncached generate): positions that move with the pass's end.
        self._moves_with_end = self._named in ("last", "prefill") or any(
            i < 0 for i in self._indices or ()
        )
        self._previous: tuple[int, Tensor] | None = None
        self._warned_rerun = False

    @property
    def window_only(self) -> bool:
        """Whether inside `roast_tl.generate` the decoding window alone decides the positions
        ("last", "prefill", "all", ints): then the hook needs nothing but the activation."""
        return self._select is None and self._mask is None

    def _vector_like(self, activation: Tensor) -> Tensor:
        key = (activation.dtype, activation.device)
        if key not in self._cast:
            if activation.is_floating_point():
                _check_fits(self._bound, activation.dtype, self.name)
            self._cast[key] = self.vector.to(dtype=activation.dtype, device=activation.device)
        return self._cast[key]

    def __repr__(self) -> str:
        if self._mask is not None:
            shown = f"mask{tuple(self._mask.shape)}"
        elif self._select is not None:
            shown = getattr(self._select, "__name__", "callable")
        else:
            shown = repr(self.positions)
        return (
            f"SteeringHook({self.name or '?'}, alpha={self.alpha:g}, positions={shown}, "
            f"mode={self.mode!r}, d_act={self.vector.shape[0]})"
        )

    def _bounds(self, n_batch: int, n_pos: int) -> Tensor | None:
        """Each row's real `[start, end)` in a plain pass, or None when every position is real."""
        mask = self.attention_mask
        if mask is not None and tuple(mask.shape) == (n_batch, n_pos):
            return mask_bounds(mask)
        tokens = self.tokens
        if tokens is not None and tokens.shape == (n_batch, n_pos):
            return tokens.bounds
        return None

    def where(self, activation: Tensor, hook: HookPoint) -> slice | Tensor | None:
        """The positions of this pass to steer: a slice over `pos`, a boolean `(batch, pos)`
        mask, or None for none."""
        n_batch, n_pos = activation.shape[0], activation.shape[1]
        window = CURRENT_WINDOW.get()
        if self._mask is not None:
            if window is not None or tuple(self._mask.shape) != (n_batch, n_pos):
                raise ValueError(
                    f"a positions mask of shape {tuple(self._mask.shape)} does not fit the pass "
                    f"at {self.name or getattr(hook, 'name', '?')} of shape (batch, pos) = "
                    f"{(n_batch, n_pos)}; a mask steers plain forward passes of its own shape; "
                    "for generation use 'last', 'prefill', ints or a callable"
                )
            return self._mask.to(activation.device)
        if self._named == "all":
            return slice(0, n_pos)
        if window is not None:
            if self._named is not None:
                return steered_slice(n_pos, self._named, window)
            if self._indices is not None:
                return index_mask(
                    self._indices, prompt_bounds(window, n_batch), n_pos, window.offset
                )
        elif self._moves_with_end:
            self._check_rerun(activation)
        if self._select is not None:
            chosen = self._select(activation, hook)
            if isinstance(chosen, Tensor) and chosen.dtype == torch.bool:
                if tuple(chosen.shape) != (n_batch, n_pos):
                    raise ValueError(
                        f"the positions callable returned a mask of shape {tuple(chosen.shape)} "
                        f"for a pass of shape (batch, pos) = {(n_batch, n_pos)}"
                    )
                return chosen.to(activation.device)
            indices = as_indices(chosen, "the positions callable's result")
        else:
            indices = self._indices or ()
        bounds = pass_bounds(window, n_batch, n_pos) if window is not None else None
        if bounds is None:
            bounds = self._bounds(n_batch, n_pos)
        if bounds is None:
            if self._named is not None:
                return steered_slice(n_pos, self._named, None)
            bounds = torch.tensor([[0, n_pos]]).expand(n_batch, 2)
        elif self._named is not None:
            if self._named == "prefill" and n_pos == 1:
                return None
            indices = (-1,)
        return index_mask(indices, bounds, n_pos).to(activation.device)

    def _check_rerun(self, activation: Tensor) -> None:
        """Warn once when this pass is the previous one plus one token (an uncached decode)."""
        n_pos = activation.shape[1]
        previous = self._previous
        if (
            not self._warned_rerun
            and previous is not None
            and n_pos == previous[0] + 1
            and previous[1].shape == activation[:, -2].shape
            and torch.allclose(activation[:, -2], previous[1], rtol=1e-4, atol=1e-5)
        ):
            self._warned_rerun = True
            warnings.warn(
                f"a steering hook with positions={self.positions!r} saw a forward pass that "
                "re-runs the previous one plus one token, as TL's "
                "model.generate(use_past_kv_cache=False) does; each pass then steers only its "
                "newest token and the tokens generated before lose their steering, so the output "
                "is not roast_tl.generate's steered one. Use roast_tl.generate, or TL's generate "
                "with use_past_kv_cache=True",
                UncachedGenerateWarning,
                stacklevel=2,
            )
        self._previous = (n_pos, activation[:, -1].detach().clone())

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
        where = self.where(activation, hook)
        if where is None:
            return activation
        v = self._vector_like(activation)
        steered = activation.clone()
        if self.mode == "add":
            if isinstance(where, slice):
                steered[:, where] += self.alpha * v
            else:
                steered[where] += self.alpha * v
        elif isinstance(where, slice):
            steered[:, where] += self.alpha * v * activation[:, where]
        else:
            steered[where] += self.alpha * v * activation[where]
        return steered


@contextmanager
def steer(
    model: HookedModel,
    vector: "SteeringVector | Tensor | Mapping[str, Tensor]",
    alpha: float,
    *,
    positions: PositionSpec = "last",
    mode: SteeringMode = "add",
    hook_name: str | None = None,
    alpha_scale: AlphaScale | None = None,
    scale_tokens: Any = None,
    attention_mask: Tensor | None = None,
    check_model: bool = True,
    allow_other_model: bool = False,
) -> Iterator[HookedModel]:
    """Steer `model` inside a `with` block through `model.hooks`; hooks go away on exit or error.

    `vector` is a `SteeringVector`, or a raw direction: a tensor with `hook_name=`, or
    `{hook_name: tensor}` (made with `SteeringVector.from_direction`, so max-normed like ROAST's
    vectors). `positions` (see `roast_tl.hooks`) is pad-aware: the hooks read the token ids the
    model is called with. `alpha_scale="resid_norm"` makes alpha a fraction of the mean
    activation norm at each hook, measured on `scale_tokens` (`SteeringVector.fwd_hooks`).

    Composes with `run_with_hooks`, `run_with_cache`, TL's KV-cached `generate`,
    `roast_tl.generate` and `transformer_lens.patching`, since those run the model's forward
    with whatever hooks are attached. Not with TL's `generate(use_past_kv_cache=False)`: it
    re-runs the whole sequence each step, "last" then steers only the newest token and the
    answer is (nearly) the unsteered one; the hooks warn once (`UncachedGenerateWarning`).
    `allow_other_model` accepts a vector made for another model (as does a vector loaded with
    it).

        with roast_tl.steer(model, vector, alpha=4.0):
            logits = model(tokens)
        with roast_tl.steer(model, probe_direction, 4.0, hook_name="blocks.10.hook_resid_post"):
            ...
    """
    from roast_tl.vector import SteeringVector

    if isinstance(vector, Tensor | Mapping) and not isinstance(vector, SteeringVector):
        if isinstance(vector, Tensor):
            if hook_name is None:
                raise TypeError(
                    "steer got a raw tensor but no hook_name; pass "
                    "hook_name='blocks.L.hook_resid_post' or a {hook_name: tensor} dict"
                )
            vector = SteeringVector.from_direction(hook_name, vector, model=model)
        else:
            vector = SteeringVector.from_direction(dict(vector), model=model)
    elif hook_name is not None:
        raise TypeError("hook_name= is for a raw tensor; a SteeringVector names its own hooks")
    require_steering_vector(vector, "steer")
    if check_model:
        vector.check_model(model, allow_other_model=allow_other_model)
    hooks = vector.fwd_hooks(
        alpha,
        positions=positions,
        mode=mode,
        model=model,
        attention_mask=attention_mask,
        alpha_scale=alpha_scale,
        scale_tokens=scale_tokens,
    )
    with model.hooks(fwd_hooks=hooks):
        yield model


def require_steering_vector(vector: object, caller: str) -> None:
    """Raise a TypeError unless `vector` is a `SteeringVector` (a raw tensor or dict is not)."""
    from roast_tl.vector import SteeringVector

    if not isinstance(vector, SteeringVector):
        raise TypeError(
            f"{caller} needs a SteeringVector, got {type(vector).__name__}; wrap your tensors: "
            "SteeringVector.from_direction(hook_name, tensor, model=model)"
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
