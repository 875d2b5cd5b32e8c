"""The unhooked fast path: the bridge's own HF model class, sharing its weights, without hooks.

A `TransformerBridge` wraps every HF submodule in a bridge component whose hook points fire on
every call (about 1,760 module calls per decoding step on a 30-layer model). When no hook is
attached, none of that is needed: `fast_model(model)` builds the same HF class from the wrapped
model's config on the meta device, then ties each of its parameters and buffers to the bridge's
own tensor (the same objects: no copy).

- It keeps the wrapped model's attention implementation (eager under TransformerLens), so its
  logits equal the bridge's bit for bit and a rollout's tokens do not depend on the path.
  SDPA is not bit-equal (logits differ by ~6e-5) and was no faster at short contexts (32 rows
  of ~50 tokens), but it is at long ones: a decode step of 32 rows over a 400-token cache took
  0.34 s with SDPA vs 0.50 s eager (eager repeats the grouped KV heads every step). Using it
  would need the forward recorded in rollout fingerprints; see the README's speed section.
- Built once per bridge (a weak reference: it dies with the bridge), checked once against the
  bridge's own forward on a few tokens (a bridge whose forward is not the HF model's gets no
  fast model), and re-tied whenever the bridge's tensors are no longer the ones tied (a
  `.to(device)` or `.to(dtype)` replaces buffers).
- Models that are not a `TransformerBridge` (no `original_model`), and bridges whose wrapped
  model has tensors the rebuilt one lacks (unless all zero, as the bridge's `lm_head` bias),
  get `None`: callers use the hooked path.
"""

import copy
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from roast_tl._bridge import forward_step
from roast_tl._types import HookedModel
from roast_tl.hooks import hooked_points

FORWARD_FAST = "hf"
"""The forward a sampling pass used: the weight-sharing HF model, no hooks."""
FORWARD_HOOKED = "bridge"
"""The forward a sampling pass used: the hooked model itself (every hook point live)."""

_WRAPPER = "._original_component"
# Tolerance of the build-time check, relative to the largest logit, in units of the weights'
# float epsilon (at least 1e-3): the same computation agrees exactly, while a bridge computing
# with other weights differs by far more.
_CHECK_EPS = 16
_CHECK_RTOL = 1e-3

_CACHE: "weakref.WeakKeyDictionary[Any, _Fast | None]" = weakref.WeakKeyDictionary()


Slot = tuple[Any, str, str]
"""Where a tensor lives: (module, "_parameters" or "_buffers", key)."""


class _Fast:
    """A rebuilt HF model and its (own slot, bridge slot) pairs, one per tensor it ties."""

    def __init__(self, module: Any, slots: list[tuple[Slot, Slot]]) -> None:
        self.module = module
        self.slots = slots


def _bridge_slots(wrapped: Any) -> dict[str, Slot]:
    """The wrapped HF model's parameter and buffer slots under their plain HF names."""
    named: dict[str, Slot] = {}
    for module_name, sub in wrapped.named_modules(remove_duplicate=False):
        for kind in ("_parameters", "_buffers"):
            for key, value in getattr(sub, kind).items():
                if value is not None:
                    name = f"{module_name}.{key}" if module_name else key
                    named[name.replace(_WRAPPER, "")] = (sub, kind, key)
    return named


def _get(slot: Slot) -> Tensor:
    module, kind, key = slot
    tensor: Tensor = getattr(module, kind)[key]
    return tensor


def _tie(fast: _Fast) -> None:
    """Point every slot of the rebuilt model at the bridge's current tensor."""
    for (module, kind, key), source in fast.slots:
        getattr(module, kind)[key] = _get(source)


def _tied(fast: _Fast) -> bool:
    return all(_get(own) is _get(source) for own, source in fast.slots)


def _build(model: HookedModel) -> _Fast | None:
    wrapped = getattr(model, "original_model", None)
    config = getattr(wrapped, "config", None)
    if wrapped is None or config is None or not isinstance(wrapped, torch.nn.Module):
        return None
    sources = _bridge_slots(wrapped)
    config = copy.deepcopy(config)  # the wrapped model's, attention implementation included
    try:
        with torch.device("meta"):
            module = type(wrapped)(config)
    except Exception:  # an HF class that cannot be rebuilt from its config: use the hooked path
        return None
    slots = []
    for module_name, sub in module.named_modules():
        for kind in ("_parameters", "_buffers"):
            for key, value in getattr(sub, kind).items():
                if value is None:
                    continue
                name = f"{module_name}.{key}" if module_name else key
                if name not in sources:
                    return None
                slots.append(((sub, kind, key), sources[name]))
    used = {id(_get(source)) for _, source in slots}  # the bridge names some tensors twice
    extra = [_get(s) for s in sources.values() if id(_get(s)) not in used]
    if any(t.device.type == "meta" or bool(t.detach().ne(0).any()) for t in extra):
        return None
    fast = _Fast(module.eval(), slots)
    _tie(fast)
    return fast if _agrees(model, fast.module) else None


@torch.inference_mode()
def _agrees(model: HookedModel, module: Any) -> bool:
    """Whether the rebuilt model's logits match the bridge's on a few tokens (to rounding)."""
    vocab = int(getattr(module.config, "vocab_size", 2))
    device = next(module.parameters()).device
    ids = torch.arange(1, 5, device=device).remainder(vocab)[None]
    mask = torch.ones_like(ids)
    positions = torch.arange(ids.shape[1], device=device)[None]
    kwargs = {"attention_mask": mask, "position_ids": positions, "use_cache": False}
    ours = module(input_ids=ids, **kwargs).logits.float()
    theirs = model(ids, return_type="logits", **kwargs).float()  # type: ignore[operator]
    scale = float(theirs.abs().max()) or 1.0
    dtype = next(module.parameters()).dtype
    rtol = max(_CHECK_RTOL, _CHECK_EPS * torch.finfo(dtype).eps)
    return bool((ours - theirs).abs().max() <= rtol * scale)


def fast_model(model: HookedModel) -> Any | None:
    """The weight-sharing HF model of a `TransformerBridge`, or None (use the hooked path).

    Cached per bridge; re-tied to the bridge's tensors when they were replaced (device or dtype
    moves). It runs no TransformerLens hook: callers use it only when none is attached.
    """
    try:
        fast = _CACHE[model]
    except KeyError:
        fast = _CACHE[model] = _build(model)
    except TypeError:  # not weak-referenceable
        return None
    if fast is None:
        return None
    if not _tied(fast):
        _tie(fast)
    return fast.module


def fast_forward_step(
    module: Any,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch total"],
    position_ids: Int[Tensor, "batch pos"],
    past_key_values: Any = None,
    *,
    use_cache: bool = True,
) -> tuple[Float[Tensor, "batch vocab"], Any]:
    """One decoding pass of the fast model: (last-position logits, KV cache or None)."""
    out = module(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=past_key_values,
        use_cache=use_cache,
        logits_to_keep=1,
    )
    return out.logits[:, -1, :], (out.past_key_values if use_cache else None)


Step = Callable[..., tuple[Float[Tensor, "batch vocab"], Any]]
"""A decoding pass: `(input_ids, attention_mask, position_ids, past, use_cache=)` -> (logits,
cache)."""


def sampling_forward(model: HookedModel) -> tuple[str, Step]:
    """The forward a sampling run takes and its name (`FORWARD_FAST` or `FORWARD_HOOKED`).

    The fast path when no hook is attached and the model has a fast model; else the hooked
    model's own forward, where every attached hook fires.
    """
    if not hooked_points(model):
        module = fast_model(model)
        if module is not None:
            return FORWARD_FAST, partial(fast_forward_step, module)
    return FORWARD_HOOKED, partial(forward_step, model)
