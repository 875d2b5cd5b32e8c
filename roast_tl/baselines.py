"""Steering methods behind one interface: none, few-shot, CAA, SADI and ROAST with its ablations.

Each method turns (model, task, training items, shared rollouts) into a `SteeringSetup` that
`evaluate` applies. ROAST variants reuse one set of rollouts: sampling is the expensive part.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from einops import reduce
from jaxtyping import Float
from torch import Tensor

from roast_tl.activations import ContrastMeans, ReadPosition, contrast_means
from roast_tl.estimate import describe, vector_from_means
from roast_tl.pairs import ContrastGroup, ContrastSet, build_contrast_set, written_answer_tokens
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

    def evaluate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that make `roast_tl.evaluate.evaluate` apply this setup.

            evaluate(model, task, alpha=8.0, split="dev", **setup.evaluate_kwargs())
        """
        return {"vector": self.vector, "mode": self.mode, "positions": self.positions,
                "prompt_prefix": self.prompt_prefix}


@dataclass
class MethodContext:
    """Everything a method may use: the training items and the rollouts already sampled on them.

    ROAST variants built from one context share its rollouts and, per (site, read position),
    its activation means: `means_cache` is filled by the first variant and reused by the rest.
    """

    model: Any
    task: Task
    items: Sequence[TaskItem]
    layers: list[int]
    rollouts: Sequence[Rollout] = ()
    seed: int | None = None
    hook_site: str = "resid_post"
    position: ReadPosition = "last"
    positions: str = "last"
    few_shot_k: int = 4
    top_k_fraction: float = 0.05
    strict: bool = False
    progress: bool = False
    means_cache: dict[tuple[str, ...], tuple[ContrastSet, ContrastMeans]] = field(default_factory=dict)

    def hook_names(self, site: str | None = None) -> list[str]:
        """The validated hook names of `site` (default: this context's site) at its layers."""
        return resolve_hook_names(self.model, layers=self.layers, site=site or self.hook_site)

    def rollout_means(self, site: str | None = None) -> tuple[ContrastSet, ContrastMeans]:
        """ROC contrast and per-group activation means at `site`, computed once per context."""
        site = site or self.hook_site
        key = ("rollouts", site, self.position)
        if key not in self.means_cache:
            if not self.rollouts:
                raise ValueError("ROAST methods need rollouts; sample them with roast_tl.sample_rollouts")
            contrasts = build_contrast_set(self.model, self.rollouts, self.items, strict=self.strict)
            means = contrast_means(self.model, contrasts, self.hook_names(site),
                                   position=self.position, progress=self.progress)
            self.means_cache[key] = (contrasts, means)
        return self.means_cache[key]

    def teacher_forced_means(self, site: str | None = None) -> tuple[ContrastSet, ContrastMeans]:
        """CAA's off-distribution contrast (written gold vs written wrong) and its means at `site`."""
        site = site or self.hook_site
        key = ("teacher_forced", site, self.position)
        if key not in self.means_cache:
            contrasts = teacher_forced_contrast(self.model, self.items)
            means = contrast_means(self.model, contrasts, self.hook_names(site),
                                   position=self.position, progress=self.progress)
            self.means_cache[key] = (contrasts, means)
        return self.means_cache[key]


def few_shot_prefix(task: Task, k: int, *, pool: Sequence[TaskItem] | None = None,
                    seed: int | None = None) -> str:
    """Return k worked examples (question, then its gold answer) to prepend to every prompt.

    Without `seed`: the task's own `few_shot` examples (else the first training items). With
    `seed`: k examples drawn from `pool` (default: the training split), so seeds vary them.
    """
    if seed is None:
        examples = list(task.few_shot or task.items("train"))[:k]
    else:
        candidates = list(pool if pool is not None else task.items("train"))
        examples = random.Random(seed).sample(candidates, min(k, len(candidates)))
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


def _meta(ctx: MethodContext, method: str, names: list[str], **extra: Any) -> dict[str, Any]:
    return {"method": method, "model_name": str(ctx.model.cfg.model_name), "hook_names": names,
            "d_model": int(ctx.model.cfg.d_model), "task": ctx.task.name, "seed": ctx.seed, **extra}


def _none(ctx: MethodContext) -> SteeringSetup:
    return SteeringSetup("none")


def _few_shot(ctx: MethodContext) -> SteeringSetup:
    prefix = few_shot_prefix(ctx.task, ctx.few_shot_k, pool=ctx.items, seed=ctx.seed)
    return SteeringSetup("few_shot", prompt_prefix=prefix, info={"k": ctx.few_shot_k})


def _caa(ctx: MethodContext) -> SteeringSetup:
    """Mean difference of teacher-forced gold vs wrong answers (off-distribution), max-norm scaled."""
    contrasts, means = ctx.teacher_forced_means()
    names = list(means.positive)
    vector = vector_from_means(means, grouped=False, metadata=_meta(
        ctx, "caa", names, n_prompts=len(contrasts.groups), position=ctx.position))
    return SteeringSetup("caa", vector, positions=ctx.positions)


def _sadi(ctx: MethodContext) -> SteeringSetup:
    """SADI: binary top-K mask of |mean Δ| (teacher-forced contrast), applied as h + δ·(M ⊙ h)."""
    contrasts, means = ctx.teacher_forced_means()
    masks = {}
    for name in means.positive:
        mu = reduce(means.differences(name), "group d_act -> d_act", "mean")
        k = max(1, round(ctx.top_k_fraction * mu.shape[-1]))
        masks[name] = top_k_mask(mu, k)
    vector = SteeringVector(masks, _meta(ctx, "sadi", list(masks), top_k_fraction=ctx.top_k_fraction,
                                         n_prompts=len(contrasts.groups)))
    return SteeringSetup("sadi", vector, mode="multiply", positions=ctx.positions)


def _roast(*, hook_site: str | None = None, **settings: Any) -> Callable[[MethodContext], SteeringSetup]:
    scaling = settings.get("scaling", "max_norm")
    grouped = settings.get("grouped", True)

    def build(ctx: MethodContext) -> SteeringSetup:
        site = hook_site or ctx.hook_site
        contrasts, means = ctx.rollout_means(site)
        names = list(means.positive)
        metadata = describe(ctx.model, ctx.task, names, contrasts, ctx.rollouts, hook_site=site,
                            position=ctx.position, scaling=scaling, grouped=grouped,
                            strict=ctx.strict, seed=ctx.seed)
        vector = vector_from_means(means, scaling=scaling, grouped=grouped, metadata=metadata)
        return SteeringSetup("roast", vector, positions=ctx.positions,
                             info={"hook_site": site, "scaling": scaling, "grouped": grouped})

    return build


Method = Callable[[MethodContext], SteeringSetup]

METHODS: dict[str, Method] = {
    "none": _none,
    "few_shot": _few_shot,
    "caa": _caa,
    "sadi": _sadi,
    "roast": _roast(),
    "roast_plain": _roast(grouped=False),
    "roast_l2": _roast(scaling="l2"),
    "roast_softmax": _roast(scaling="softmax"),
    "roast_mlp": _roast(hook_site="mlp_post"),
}


def build_method(name: str, ctx: MethodContext) -> SteeringSetup:
    """Build the steering setup of method `name` (see `METHODS`) from a shared context.

        ctx = MethodContext(model, task, task.items("train")[:32], layers=[10], rollouts=rollouts)
        setups = {name: build_method(name, ctx) for name in ["caa", "roast", "roast_plain"]}
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    setup = METHODS[name](ctx)
    setup.method = name
    return setup


def needs_rollouts(name: str) -> bool:
    """True for methods built from on-distribution rollouts (the ROAST family)."""
    return name.startswith("roast")
