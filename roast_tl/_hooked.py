"""The HookedTransformer (TransformerLens 3.x) forward driver: KV-cached decoding and capture.

`roast_tl._bridge` hands a `HookedTransformer` here, so every roast_tl function runs on both
backends. The differences from the bridge that this module absorbs:

- The KV cache is TL's own `TransformerLensKeyValueCache`. It keeps the attention mask of every
  position seen so far, so each pass gets only the new positions' mask; `batch_select_indices`
  (which `generate_tokens` calls to drop finished rows) selects rows of the keys, the values and
  that mask alike.
- Positions come from the attention mask: HookedTransformer numbers a left-padded row's tokens
  from its first attended token (rotary and absolute position embeddings alike), the same
  `cumsum - 1` positions `roast_tl._tokens.position_ids_for` gives the bridge. The `position_ids`
  argument is therefore checked against the mask, not passed on.
- Only the last position's logits are computed: the blocks run with `stop_at_layer=n_layers`,
  then the final norm (its hooks see every position) and the unembedding (with the logit soft
  cap, for Gemma 2) of the last position alone.
"""

from collections.abc import Sequence
from functools import cache
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from roast_tl._types import HookedModel, HookFn


@cache  # checked on every decoding step; a failed import on TL 4.x is not free
def hooked_transformer_class() -> type | None:
    """TransformerLens' `HookedTransformer` class, or None where TL (4.x) has none."""
    try:
        from transformer_lens import HookedTransformer
    except ImportError:
        return None
    return HookedTransformer


def is_hooked_transformer(model: object) -> bool:
    """Whether `model` is a TransformerLens `HookedTransformer` (not a bridge or a stand-in)."""
    cls = hooked_transformer_class()
    return cls is not None and isinstance(model, cls)


class HookedKVCache:
    """A HookedTransformer KV cache whose rows can be dropped as they finish decoding."""

    def __init__(self, model: HookedModel, batch: int, device: torch.device) -> None:
        from transformer_lens import TransformerLensKeyValueCache

        self.cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, batch)

    def batch_select_indices(self, indices: Int[Tensor, " keep"]) -> None:
        """Keep rows `indices` (in that order) of every layer's keys and values and of the mask."""
        for entry in self.cache.entries:
            rows = indices.to(entry.past_keys.device)
            entry.past_keys = entry.past_keys[rows]
            entry.past_values = entry.past_values[rows]
        mask = self.cache.previous_attention_mask
        self.cache.previous_attention_mask = mask[indices.to(mask.device)]

    @property
    def length(self) -> int:
        """How many positions the cache holds."""
        return int(self.cache.previous_attention_mask.shape[1])


def _check_positions(
    attention_mask: Int[Tensor, "batch total"], position_ids: Int[Tensor, "batch pos"]
) -> None:
    """Refuse positions other than the ones HookedTransformer derives from the mask."""
    derived = (attention_mask.cumsum(-1) - 1).clamp_min(0)[:, -position_ids.shape[1] :]
    if not torch.equal(derived, position_ids.to(derived.device)):
        raise ValueError(
            "HookedTransformer numbers positions from the attention mask (left padding skipped); "
            "pass position_ids = (attention_mask.cumsum(-1) - 1).clamp_min(0)"
        )


def _last_logits(
    model: Any, residual: Float[Tensor, "batch pos d_model"]
) -> Float[Tensor, "batch vocab"]:
    """Final norm (every position, as HF runs it), then unembedding and logit soft cap at the
    last position only."""
    if model.cfg.normalization_type is not None:
        residual = model.ln_final(residual)
    logits = model.unembed(residual[:, -1:, :])[:, -1, :]
    cap = getattr(model.cfg, "output_logits_soft_cap", None)
    if cap is not None and cap > 0:
        logits = cap * torch.tanh(logits / cap)
    return logits


def forward_step(
    model: Any,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch total"],
    position_ids: Int[Tensor, "batch pos"],
    past_key_values: HookedKVCache | None = None,
    *,
    use_cache: bool = True,
) -> tuple[Float[Tensor, "batch vocab"], HookedKVCache | None]:
    """Run one decoding pass of a HookedTransformer; see `roast_tl._bridge.forward_step`.

    `attention_mask` covers every position so far (cached ones first); with a cache the pass
    hands the cache only the new positions' mask.
    """
    _check_positions(attention_mask, position_ids)
    n_layers = int(model.cfg.n_layers)
    if not use_cache:
        residual = model(input_ids, attention_mask=attention_mask, stop_at_layer=n_layers)
        return _last_logits(model, residual), None
    cache = past_key_values
    if cache is None:
        cache = HookedKVCache(model, input_ids.shape[0], input_ids.device)
    if cache.length + input_ids.shape[1] != attention_mask.shape[1]:
        raise ValueError(
            f"the attention mask covers {attention_mask.shape[1]} positions but the KV cache "
            f"holds {cache.length} and {input_ids.shape[1]} are new; pass the mask of all of them"
        )
    new_mask = attention_mask[:, cache.length :]
    residual = model(
        input_ids, attention_mask=new_mask, past_kv_cache=cache.cache, stop_at_layer=n_layers
    )
    return _last_logits(model, residual), cache


def read_forward(
    model: Any,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    position_ids: Int[Tensor, "batch pos"],
    fwd_hooks: Sequence[tuple[str, HookFn]],
    *,
    stop: int | None,
) -> None:
    """A teacher-forced pass of a HookedTransformer for `fwd_hooks`, blocks `stop` on skipped.

    `stop=None` runs the whole model, final norm and last-position unembedding included.
    """
    _check_positions(attention_mask, position_ids)
    n_layers = int(model.cfg.n_layers)
    with torch.no_grad(), model.hooks(fwd_hooks=list(fwd_hooks)):
        residual = model(
            input_ids,
            attention_mask=attention_mask,
            stop_at_layer=n_layers if stop is None else stop,
        )
        if stop is None:
            _last_logits(model, residual)
