"""The one place that drives the forward pass of a TransformerBridge's wrapped HF model.

Implementation note (why the TransformerLens forward is bypassed here): MEASURED_BELOW.

Every HookPoint of a TL 4.x bridge lives inside the wrapped HF modules, so calling
`model.original_model` directly still fires every hook attached with `model.hooks(...)` (steering,
reading, patching), while keeping HF's KV cache, `position_ids` and `logits_to_keep=1`.
"""

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from roast_tl._types import HookedModel, HookFn
from roast_tl.sites import hook_name


class _StopForward(Exception):
    """Raised by a hook after the last needed block, to skip the rest of the forward."""


def _stop(activation: Tensor, hook: Any) -> None:
    raise _StopForward


def _hf_model(model: HookedModel) -> Any:
    hf_model = getattr(model, "original_model", None)
    if hf_model is None:
        raise TypeError(
            "roast_tl needs a TransformerLens TransformerBridge (with model.original_model); "
            f"got {type(model).__name__}"
        )
    return hf_model


def model_device(model: HookedModel) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless stand-in)."""
    for parameter in model.parameters():
        return torch.device(parameter.device)
    return torch.device("cpu")


def forward_step(
    model: HookedModel,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch total"],
    position_ids: Int[Tensor, "batch pos"],
    past_key_values: Any = None,
    *,
    use_cache: bool = True,
) -> tuple[Float[Tensor, "batch vocab"], Any]:
    """Run one decoding pass; return (last-position logits, KV cache or None).

    Every hook attached to `model` fires; only the last position's logits are computed.
    """
    out = _hf_model(model)(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=past_key_values,
        use_cache=use_cache,
        logits_to_keep=1,
    )
    return out.logits[:, -1, :], (out.past_key_values if use_cache else None)


def read_forward(
    model: HookedModel,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    position_ids: Int[Tensor, "batch pos"],
    fwd_hooks: Sequence[tuple[str, HookFn]],
    *,
    last_layer: int | None,
) -> None:
    """Run a teacher-forced pass for `fwd_hooks` to read, skipping every block after `last_layer`.

    `last_layer=None` runs the whole model (for hooks outside the blocks).
    """
    hooks = list(fwd_hooks)
    if last_layer is not None and last_layer < model.cfg.n_layers - 1:
        hooks.append((hook_name("resid_post", last_layer), _stop))
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        try:
            _hf_model(model)(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=False,
                logits_to_keep=1,
            )
        except _StopForward:
            pass
