"""Where a steering vector lands: pure position math over `(batch, pos)`, no model.

A pass's positions are chosen from named `positions` ("last", "prefill", "all"), token indices
counted within each row's real (unpadded) tokens, or a mask; `roast_tl.hooks.SteeringHook` calls
these functions. Inside `roast_tl.generate`, a `DecodeWindow` says where the pass sits in the
generation, so cached and uncached decoding resolve to the same absolute positions.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from roast_tl._types import Positions


@dataclass(frozen=True)
class DecodeWindow:
    """Where the current forward pass sits in a generation: set by `roast_tl.generate` only.

    `offset` is the absolute position of the pass's first token; `prompt_len` the (left-padded)
    prompt length, so the last prompt token is at absolute position `prompt_len - 1`; `n_pad`
    each row's number of left pads (None: unknown, read as no padding).
    """

    offset: int
    prompt_len: int
    n_pad: Tensor | None = None


def real_token_bounds(
    tokens: Int[Tensor, "batch pos"], pad_token_id: int, bos_token_id: int | None = None
) -> Int[Tensor, "batch 2"] | None:
    """Return each row's `[start, end)` of real tokens, or None when no row is padded.

    A run of `pad_token_id` at a row's start (left padding) or end (right padding) is padding
    only when rows differ in it, so an unpadded batch (a single prompt ending in an EOS that
    doubles as pad included) is left alone. A left pad run that ends in the BOS, when BOS and pad
    share an id, keeps the BOS as the row's first real token.

    >>> real_token_bounds(torch.tensor([[5, 6, 7], [5, 0, 0]]), 0).tolist()
    [[0, 3], [0, 1]]
    >>> real_token_bounds(torch.tensor([[5, 6], [7, 0]])[:1], 0) is None
    True
    """
    n_pos = tokens.shape[1]
    is_pad = tokens == pad_token_id
    lead = (~is_pad).long().cumsum(-1).eq(0).sum(-1)
    trail = (~is_pad).long().flip(-1).cumsum(-1).eq(0).sum(-1)
    lead_ragged = bool((lead != lead[0]).any())
    trail_ragged = bool((trail != trail[0]).any())
    if not lead_ragged and not trail_ragged:
        return None
    start = lead if lead_ragged else torch.zeros_like(lead)
    if lead_ragged and bos_token_id is not None and bos_token_id == pad_token_id:
        start = (start - 1).clamp_min(0)
    end = n_pos - trail if trail_ragged else torch.full_like(trail, n_pos)
    end = torch.maximum(end, start)
    return torch.stack([start, end], dim=-1)


def mask_bounds(attention_mask: Tensor) -> Int[Tensor, "batch 2"]:
    """Return each row's `[first 1, last 1 + 1)` of a 0/1 attention mask (`[0, 0)` if empty).

    >>> mask_bounds(torch.tensor([[0, 1, 1], [1, 1, 0], [0, 0, 0]])).tolist()
    [[1, 3], [0, 2], [0, 0]]
    """
    real = attention_mask.bool()
    n_pos = real.shape[1]
    any_real = real.any(-1)
    start = real.long().argmax(-1)
    end = n_pos - real.flip(-1).long().argmax(-1)
    zero = torch.zeros_like(start)
    return torch.stack([torch.where(any_real, start, zero), torch.where(any_real, end, zero)], -1)


def steered_slice(n_pos: int, positions: Positions, window: DecodeWindow | None) -> slice | None:
    """Return the slice of a pass's `n_pos` positions to steer, or None for none of them
    (named positions, every row's real tokens ending at the pass's end)."""
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


def index_mask(
    indices: Sequence[int], bounds: Int[Tensor, "batch 2"], n_pos: int, offset: int = 0
) -> Bool[Tensor, "batch n_pos"]:
    """Mark token `indices` of each row's real tokens `[start, end)` in a pass of `n_pos`
    positions starting at absolute position `offset`; negative indices count from `end`.

    >>> index_mask([0, -1], torch.tensor([[1, 4], [0, 4]]), 4).int().tolist()
    [[0, 1, 0, 1], [1, 0, 0, 1]]
    >>> index_mask([-1], torch.tensor([[0, 3]]), 1, offset=2).int().tolist()  # a decode pass
    [[1]]
    """
    start, end = bounds[:, :1], bounds[:, 1:]
    wanted = torch.tensor(list(indices), dtype=torch.long, device=bounds.device)[None, :]
    absolute = torch.where(wanted >= 0, start + wanted, end + wanted)
    local = absolute - offset
    valid = (absolute >= start) & (absolute < end) & (local >= 0) & (local < n_pos)
    rows = torch.arange(bounds.shape[0], device=bounds.device)[:, None].expand_as(local)
    mask = torch.zeros((bounds.shape[0], n_pos), dtype=torch.bool, device=bounds.device)
    mask[rows[valid], local[valid]] = True
    return mask


def as_indices(value: object, what: str) -> tuple[int, ...]:
    """Return `value` (an int, ints, or an integer tensor of at most one axis) as a tuple."""
    if isinstance(value, Tensor):
        if value.is_floating_point() or value.dtype == torch.bool or value.ndim > 1:
            raise TypeError(f"{what} must be ints or a boolean (batch, pos) mask, got {value!r}")
        return tuple(int(i) for i in value.reshape(-1).tolist())
    if isinstance(value, bool):
        raise TypeError(f"{what} got the bool {value}; pass a token index or a boolean mask")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = tuple(value)
        if not items or any(isinstance(i, bool) or not isinstance(i, int) for i in items):
            raise TypeError(f"{what} must be a non-empty list of ints, got {value!r}")
        return items
    raise TypeError(
        f"{what} must be one of {list(get_args(Positions))}, an int, a list of ints, a boolean "
        f"(batch, pos) mask or a callable (activation, hook) -> mask, got {value!r}"
    )


def prompt_bounds(window: DecodeWindow, n_batch: int) -> Tensor:
    """Each row's real prompt `[start, end)` in absolute positions of a generation."""
    n_pad = window.n_pad if window.n_pad is not None else torch.zeros(n_batch, dtype=torch.long)
    return torch.stack([n_pad.long(), torch.full_like(n_pad.long(), window.prompt_len)], -1)


def pass_bounds(window: DecodeWindow, n_batch: int, n_pos: int) -> Tensor:
    """Each row's real `[start, end)` within one pass of a generation (left pads excluded)."""
    start = (prompt_bounds(window, n_batch)[:, 0] - window.offset).clamp(0, n_pos)
    return torch.stack([start, torch.full_like(start, n_pos)], -1)
