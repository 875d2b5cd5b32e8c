"""The fast path: the bridge's own HF model class, sharing its weights, with SDPA attention.

A `TransformerBridge` wraps every HF submodule in a bridge component whose hook points fire on
every call (about 1,760 module calls per decoding step on a 30-layer model), and it forces eager
attention, which repeats the grouped KV heads over the whole cache at every step. Sampling needs
neither: `fast_model(model)` builds the same HF class from the wrapped model's config on the meta
device, with SDPA attention where the class supports it, then ties each of its parameters and
buffers to the bridge's own tensor (the same objects: no copy).

- Attention: SDPA's logits are not bit-equal to the bridge's eager ones (a few 1e-7 relative to
  the largest logit on the default model in fp32; bf16 more), so a sampled token can differ
  between the paths where two candidates' probabilities nearly tie. Sampling runs record the
  attention they used (rollout fingerprints), and same seeds give the same tokens on one path.
  Speed: a decode step of 32 rows over a 400-token cache took 0.34 s with SDPA vs 0.50 s eager.
- Steering: `steer`'s hooks at a block's input or output (`hook_resid_pre`, `hook_resid_post`,
  i.e. `blocks.L.hook_in` / `hook_out`) with positions decided by the decoding window ("last",
  "prefill", "all", ints) run on the fast model as PyTorch hooks on the same HF layer, calling
  the same `SteeringHook` with the same activation. Any other attached hook (your own, a
  callable or mask `positions`, another site) sends the whole run down the hooked path.
- Built once per bridge on its first unhooked use (a weak reference: it dies with the bridge),
  checked once against the bridge's own forward on a few tokens (a bridge whose forward is not
  the HF model's gets no fast model), and re-tied whenever the bridge's tensors are no longer
  the ones tied (a `.to(device)` or `.to(dtype)` replaces buffers).
- Models that are not a `TransformerBridge` (no `original_model`), and bridges whose wrapped
  model has tensors the rebuilt one lacks (unless all zero, as the bridge's `lm_head` bias),
  get `None`: callers use the hooked path.
"""

import copy
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.hook_points import HookPoint

from roast_tl._bridge import forward_step
from roast_tl._types import HookedModel
from roast_tl.hooks import PassTokens, SteeringHook, hooked_points

FORWARD_FAST = "hf"
"""The forward a sampling pass used: the weight-sharing HF model (steering hooks translated)."""
FORWARD_HOOKED = "bridge"
"""The forward a sampling pass used: the hooked model itself (every hook point live)."""
HOOKED_TRANSFORMER_ATTENTION = "hooked_transformer"
"""The attention a model without a fast model samples with when it is not a bridge: TL's own."""

_BlockBridge: type | None
try:  # TransformerLens 4: the block component whose hook_in / hook_out wrap an HF layer
    from transformer_lens.model_bridge.generalized_components.block import (
        BlockBridge as _BlockBridge,
    )
except ImportError:  # TransformerLens 3: no bridge, so no fast model either
    _BlockBridge = None

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
    """A rebuilt HF model, its (own slot, bridge slot) pairs (one per tensor it ties), and, once
    steering first asks, the HF layer (with "hook_in" or "hook_out") behind each block hook point
    of the bridge, keyed by the hook point's id."""

    def __init__(self, module: Any, slots: list[tuple[Slot, Slot]]) -> None:
        self.module = module
        self.slots = slots
        self.sites: dict[int, tuple[Any, str]] | None = None


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
    config = copy.deepcopy(config)
    if getattr(type(wrapped), "_supports_sdpa", False):
        config._attn_implementation = "sdpa"  # else the wrapped model's (eager under TL)
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


def _fast_of(model: HookedModel) -> _Fast | None:
    """The bridge's fast model, built on first use; None (and nothing cached) while hooks are
    attached and it is not built yet: its check compares it with the bridge's unhooked forward."""
    try:
        fast = _CACHE[model]
    except KeyError:
        if hooked_points(model) or _plain_hooks(model):
            return None
        fast = _CACHE[model] = _build(model)
    except TypeError:  # not weak-referenceable
        return None
    if fast is not None and not _tied(fast):
        _tie(fast)
    return fast


def fast_model(model: HookedModel) -> Any | None:
    """The weight-sharing HF model of a `TransformerBridge`, or None (use the hooked path).

    Cached per bridge; re-tied to the bridge's tensors when they were replaced (device or dtype
    moves). It runs no TransformerLens hook; `sampling_forward` attaches translated steering.
    """
    fast = _fast_of(model)
    return None if fast is None else fast.module


def hooked_attention(model: HookedModel) -> str:
    """The attention the hooked path computes with: "eager" on a bridge (TransformerLens forces
    it), `HOOKED_TRANSFORMER_ATTENTION` on a HookedTransformer."""
    if getattr(model, "original_model", None) is not None:
        return "eager"
    return HOOKED_TRANSFORMER_ATTENTION


def unhooked_attention(model: HookedModel) -> str:
    """The attention an unhooked sampling run of `model` computes with: the fast model's
    ("sdpa", or "eager" where its class has no SDPA), else the hooked path's
    (`hooked_attention`). Rollout fingerprints record it."""
    module = fast_model(model)
    if module is not None:
        return str(module.config._attn_implementation)
    return hooked_attention(model)


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


def _lens_hook(fn: Any) -> Any:
    """The `(activation, hook)` function TransformerLens wrapped into the PyTorch hook `fn`, or
    None when `fn` is not such a wrapper for one forward hook under one name."""
    code, closure = getattr(fn, "__code__", None), getattr(fn, "__closure__", None)
    if code is None or closure is None:
        return None
    try:
        free = {
            name: cell.cell_contents for name, cell in zip(code.co_freevars, closure, strict=True)
        }
    except ValueError:  # an empty cell
        return None
    if free.get("dir", "fwd") != "fwd" or free.get("alias_names") is not None:
        return None
    return free.get("hook")


def _site(model: HookedModel, fast: _Fast, point: Any) -> tuple[Any, str] | None:
    """The fast model's HF layer and "hook_in"/"hook_out" for a bridge block's hook point, or
    None for any other hook point (it has no exact counterpart on the fast model)."""
    if fast.sites is None:
        fast.sites = _block_sites(model, fast)
    return fast.sites.get(id(point))


def _block_sites(model: HookedModel, fast: _Fast) -> dict[int, tuple[Any, str]]:
    """Every bridge block's hook_in and hook_out, mapped to the fast model's HF layer."""
    if _BlockBridge is None:
        return {}
    wrapped: Any = getattr(model, "original_model", None)
    path_of = {id(m): name for name, m in wrapped.named_modules(remove_duplicate=False)}
    sites: dict[int, tuple[Any, str]] = {}
    modules: Any = model.modules  # type: ignore[attr-defined]
    for block in modules():
        if type(block) is not _BlockBridge or id(block) not in path_of:
            continue
        layer = fast.module.get_submodule(path_of[id(block)])
        for attr in ("hook_in", "hook_out"):
            point = getattr(block, attr, None)
            if point is not None and getattr(point, "hook_conversion", None) is None:
                sites[id(point)] = (layer, attr)
    return sites


_LIBRARY_HOOKS = ("transformer_lens.", "transformers.", "torch.")
"""Modules whose PyTorch hooks on a bridge are the libraries' own bookkeeping."""


def _plain_hooks(model: HookedModel) -> bool:
    """Whether a module of `model` other than a hook point carries a PyTorch forward hook of
    your own: not one of the libraries' (the bridge wires capture hooks on first use,
    transformers its output-capturing hooks)."""
    modules: Any = model.modules  # type: ignore[attr-defined]
    for module in modules():
        if isinstance(module, HookPoint):
            continue
        for fn in (*module._forward_hooks.values(), *module._forward_pre_hooks.values()):
            if not str(getattr(fn, "__module__", "")).startswith(_LIBRARY_HOOKS):
                return True
    return False


def _steering_plan(model: HookedModel, fast: _Fast) -> list[tuple[Any, str, Any, Any]] | None:
    """(HF layer, "hook_in"/"hook_out", SteeringHook, hook point) for every hook attached to
    `model`, in firing order, or None when one of them cannot run on the fast model.

    A `PassTokens` reader is dropped: inside `generate_tokens` the decoding window tells each
    steering hook where the real tokens are. A plain PyTorch hook of your own on any of the
    bridge's modules also sends the run down the hooked path, where it fires.
    """
    if _plain_hooks(model):
        return None
    plan = []
    seen: set[int] = set()
    for point in model.hook_dict.values():
        if id(point) in seen or not point.has_hooks(dir="fwd"):
            continue
        seen.add(id(point))
        site = _site(model, fast, point)
        for fn in point._forward_hooks.values():
            hook = _lens_hook(fn)
            if isinstance(hook, PassTokens):
                continue
            if site is None or not isinstance(hook, SteeringHook) or not hook.window_only:
                return None
            plan.append((*site, hook, point))
    return plan


def _attach(layer: Any, where: str, hook: SteeringHook, point: Any) -> Any:
    """Run `hook` on the HF layer's input hidden states (hook_in) or its output (hook_out), as
    the bridge's BlockBridge does; return the PyTorch handle."""
    if where == "hook_out":

        def on_output(module: Any, args: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (hook(output[0], point), *output[1:])
            return hook(output, point)

        return layer.register_forward_hook(on_output)

    def on_input(module: Any, args: Any, kwargs: Any) -> Any:
        if args and isinstance(args[0], Tensor):
            return (hook(args[0], point), *args[1:]), kwargs
        if isinstance(kwargs.get("hidden_states"), Tensor):
            return args, {**kwargs, "hidden_states": hook(kwargs["hidden_states"], point)}
        return None

    return layer.register_forward_pre_hook(on_input, with_kwargs=True)


@contextmanager
def sampling_forward(model: HookedModel) -> Iterator[tuple[str, Step]]:
    """The forward a sampling run takes, and its name (`FORWARD_FAST` or `FORWARD_HOOKED`).

    The fast model when the model has one and every attached hook is a steering hook it can
    run (see the module docstring): those are attached to it for the `with` block. Otherwise
    the hooked model's own forward, where every attached hook fires.
    """
    fast = _fast_of(model)
    plan = None if fast is None else _steering_plan(model, fast)
    if fast is None or plan is None:
        yield FORWARD_HOOKED, partial(forward_step, model)
        return
    handles = [_attach(*entry) for entry in plan]
    try:
        yield FORWARD_FAST, partial(fast_forward_step, fast.module)
    finally:
        for handle in handles:
            handle.remove()
