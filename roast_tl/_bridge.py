"""The one place that runs a hooked model's forward pass for roast_tl (decoding and capture).

A TransformerBridge (TL 4.x) runs here; a HookedTransformer (TL 3.x) is handed to
`roast_tl._hooked`, its own driver, by `forward_step` and `read_forward`.

Implementation note: earlier versions called the bridge's wrapped HF model
(`model.original_model`) directly, on the belief that TransformerLens' own forward was slower.
Measured on SmolLM2-135M-Instruct (TL 4.3.0, transformers 5.23, 1 CPU thread, interleaved
medians), the TransformerBridge forward is as fast and bit-identical (max abs diff 0.0, left-padded
batches included), so roast_tl now uses it:

| pass | HF model called directly | `model(...)` (TL) | ratio |
|---|---|---|---|
| KV-cached decode step, batch 1 | 88.4 ms | 89.7 ms | 1.02 |
| KV-cached decode step, batch 8, left-padded | 180.3 ms | 180.4 ms | 1.00 |
| capture at block 10 of 30, 16 × 69 tokens, stopped early | 1133 ms | 1113 ms | 0.98 |
| full forward, 16 × 69, last-position logits only | 4249 ms | 4246 ms | 1.00 |

What matters for speed is passed through `model(...)`'s keyword arguments, which the bridge hands
to HF unchanged: `logits_to_keep=1` (full-vocabulary logits at every position cost 15-40% of a
forward), `use_cache` with `return_type="logits_and_cache"` for the KV cache, and
`stop_at_layer` (reading block 10 of 30 costs 0.27x a full capture).
"""

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from roast_tl import _hooked
from roast_tl._types import HookedModel, HookFn


def model_device(model: HookedModel) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless stand-in)."""
    for parameter in model.parameters():
        return torch.device(parameter.device)
    return torch.device("cpu")


def _forward(model: HookedModel) -> Any:
    if not callable(model):
        raise TypeError(f"roast_tl needs a callable hooked model, got {type(model).__name__}")
    return model


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
    A HookedTransformer (TL 3.x) is driven by `roast_tl._hooked` instead.
    """
    if _hooked.is_hooked_transformer(model):
        return _hooked.forward_step(
            model, input_ids, attention_mask, position_ids, past_key_values, use_cache=use_cache
        )
    run = _forward(model)
    kwargs: dict[str, Any] = {
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "logits_to_keep": 1,
        "use_cache": use_cache,
    }
    if not use_cache:
        return run(input_ids, return_type="logits", **kwargs)[:, -1, :], None
    if past_key_values is not None:
        kwargs["past_key_values"] = past_key_values
    logits, cache = run(input_ids, return_type="logits_and_cache", **kwargs)
    return logits[:, -1, :], cache


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
    stop = None if last_layer is None or last_layer >= model.cfg.n_layers - 1 else last_layer + 1
    if _hooked.is_hooked_transformer(model):
        _hooked.read_forward(model, input_ids, attention_mask, position_ids, fwd_hooks, stop=stop)
        return
    with torch.no_grad(), model.hooks(fwd_hooks=list(fwd_hooks)):
        _forward(model)(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            stop_at_layer=stop,
            use_cache=False,
            logits_to_keep=1,
        )
