"""Shared types: the hooked-model protocol, hook and scaler callables, and the choice Literals.

Runtime choices are read from the Literals with `typing.get_args`, never from a second tuple.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, runtime_checkable

from jaxtyping import Float
from torch import Tensor
from transformer_lens.hook_points import HookPoint

TokenIds = list[int]
"""Token ids of one sequence (a prompt or a completion)."""

Positions = Literal["last", "all", "prefill"]
"""The named places a steering vector is applied: see `roast_tl.hooks`."""

PositionSpec = Positions | int | Sequence[int] | Tensor | Callable[[Tensor, HookPoint], Any]
"""Everything `positions=` takes: a `Positions` name, a token index (negative from the end), a
list of them, a boolean `(batch, pos)` mask, or `fn(activation, hook)` returning a mask or
indices. See `roast_tl.hooks` for what each means in plain passes and in generation."""

AlphaScale = Literal["resid_norm"]
"""How alpha is measured: `"resid_norm"` makes alpha a fraction of the mean activation norm at
each hook (measured on `scale_tokens`), so alpha 0.5 adds half a typical activation's norm."""

ReadAt = Literal["last", "response_mean"]
"""Where activations are read: the final token, or the mean over response tokens."""

Backend = Literal["bridge", "hooked"]
"""The model classes roast_tl drives: a TL 4.x TransformerBridge or a TL 3.x HookedTransformer."""

SteeringMode = Literal["add", "multiply"]
"""How a vector is applied: h + alpha·v, or h + alpha·(v ⊙ h) (SADI)."""

Scaler = Callable[[Float[Tensor, "*batch d_act"]], Float[Tensor, "*batch d_act"]]
"""A Continuous Soft Scaling function over the last axis (`roast_tl.scaling.max_norm`, ...)."""

HookFn = Callable[[Tensor, HookPoint], Tensor | None]
"""A TransformerLens forward hook: `(activation, hook) -> activation or None`."""


@runtime_checkable
class HookedModel(Protocol):
    """What roast_tl needs of a model: TransformerLens' hooked-model surface plus a tokenizer.

    A TL 4.x `TransformerBridge` and a TL 3.x `HookedTransformer` satisfy it.
    """

    cfg: Any
    tokenizer: Any

    @property
    def hook_dict(self) -> Mapping[str, HookPoint]: ...

    def hooks(
        self, fwd_hooks: Any = ..., *args: Any, **kwargs: Any
    ) -> AbstractContextManager[Any]: ...

    def parameters(self, recurse: bool = ...) -> Iterator[Any]: ...
