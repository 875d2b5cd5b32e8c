"""Steering methods behind one interface: none, few-shot, CAA, SADI and ROAST with its ablations.

Each method turns (model, task, training items, shared rollouts) into a `SteeringSetup` that
`evaluate` applies. ROAST variants reuse one set of rollouts: sampling is the expensive part.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from einops import reduce
from jaxtyping import Float
from torch import Tensor

from roast_tl.activations import contrast_means
from roast_tl.estimate import estimate_from_rollouts, vector_from_means
from roast_tl.pairs import ContrastGroup, ContrastSet, written_answer_tokens
from roast_tl.rollouts import Rollout
from roast_tl.sites import resolve_hook_names
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector


@dataclass
class SteeringSetup:
    """What a method hands to `evaluate`: a vector (or none), how to apply it, a prompt prefix."""

    method: str
    vector: SteeringVector | None = None
    mode: str = "add"
    positions: str = "last"
    prompt_prefix: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def steers(self) -> bool:
        return self.vector is not None


@dataclass
class MethodContext:
    """Everything a method may use: the training items and the rollouts already sampled on them."""

    model: Any
    task: Task
    items: Sequence[TaskItem]
    layers: list[int]
    rollouts: Sequence[Rollout] = ()
    few_shot_k: int = 4
    top_k_fraction: float = 0.05
    progress: bool = False


def few_shot_prefix(task: Task, k: int) -> str:
    """Return k worked examples (question, then its gold answer) to prepend to every prompt."""
    examples = (task.few_shot or task.items("train"))[:k]
    return "".join(f"{ex.prompt}\n{ex.gold_completion}\n\n" for ex in examples)


def teacher_forced_contrast(model: Any, items: Sequence[TaskItem]) -> ContrastSet:
    """CAA's off-distribution contrast: each item's written gold answer vs its written wrong one."""
    groups = [
        ContrastGroup(item.id, [written_answer_tokens(model, item, item.gold_completion)],
                      [written_answer_tokens(model, item, item.wrong_completion)], 1.0, "teacher_forced")
        for item in items if item.wrong_completion is not None
    ]
    return ContrastSet(groups=groups, counts={"teacher_forced": len(groups)})


def top_k_mask(mu: Float[Tensor, " d_act"], k: int) -> Float[Tensor, " d_act"]:
    """SADI's binary mask: 1 on the k coordinates of largest |mu|, 0 elsewhere.

    >>> top_k_mask(torch.tensor([0.1, -3.0, 2.0, 0.5]), 2).tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    if not 1 <= k <= mu.shape[-1]:
        raise ValueError(f"k must be in 1..{mu.shape[-1]}, got {k}")
    mask = torch.zeros_like(mu)
    mask[mu.abs().topk(k).indices] = 1.0
    return mask


def _caa(ctx: MethodContext) -> SteeringSetup:
    names = resolve_hook_names(ctx.model, layers=ctx.layers)
    means = contrast_means(ctx.model, teacher_forced_contrast(ctx.model, ctx.items), names,
                           progress=ctx.progress)
    vector = vector_from_means(means, grouped=False, metadata={"method": "caa", "hook_names": names,
                               "model_name": str(ctx.model.cfg.model_name)})
    return SteeringSetup("caa", vector)


def _sadi(ctx: MethodContext) -> SteeringSetup:
    names = resolve_hook_names(ctx.model, layers=ctx.layers)
    means = contrast_means(ctx.model, teacher_forced_contrast(ctx.model, ctx.items), names,
                           progress=ctx.progress)
    masks = {}
    for name in names:
        mu = reduce(means.differences(name), "group d_act -> d_act", "mean")
        k = max(1, round(ctx.top_k_fraction * mu.shape[-1]))
        masks[name] = top_k_mask(mu, k)
    vector = SteeringVector(masks, {"method": "sadi", "top_k_fraction": ctx.top_k_fraction,
                                    "model_name": str(ctx.model.cfg.model_name)})
    return SteeringSetup("sadi", vector, mode="multiply")


def _roast(**settings: Any) -> Callable[[MethodContext], SteeringSetup]:
    def build(ctx: MethodContext) -> SteeringSetup:
        if not ctx.rollouts:
            raise ValueError("ROAST methods need rollouts; sample them with roast_tl.sample_rollouts")
        vector = estimate_from_rollouts(ctx.model, ctx.task, ctx.rollouts, items=ctx.items,
                                        layers=ctx.layers, progress=ctx.progress, **settings)
        return SteeringSetup("roast", vector, info=dict(settings))

    return build


METHODS: dict[str, Callable[[MethodContext], SteeringSetup]] = {
    "none": lambda ctx: SteeringSetup("none"),
    "few_shot": lambda ctx: SteeringSetup("few_shot", prompt_prefix=few_shot_prefix(ctx.task, ctx.few_shot_k)),
    "caa": _caa,
    "sadi": _sadi,
    "roast": _roast(),
    "roast_plain": _roast(grouped=False),
    "roast_l2": _roast(scaling="l2"),
    "roast_softmax": _roast(scaling="softmax"),
    "roast_mlp": _roast(hook_site="mlp_post"),
}


def build_method(name: str, ctx: MethodContext) -> SteeringSetup:
    """Build the steering setup of method `name` (see `METHODS`)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    setup = METHODS[name](ctx)
    setup.method = name
    return setup
