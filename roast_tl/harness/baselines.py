"""Steering methods behind one interface: none, few-shot, CAA, SADI and ROAST with its ablations.

Each method is a small registry entry (`Method`): a `build` callable turning a shared
`MethodContext` (model, task, training items, rollouts) into a `SteeringSetup` that `evaluate`
applies, whether it needs rollouts, and its alpha grid. ROAST variants reuse one set of rollouts
and activations: sampling is the expensive part.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from einops import reduce

from roast_tl._tokens import resolve_chat
from roast_tl._types import HookedModel, Positions, ReadAt, Scaler, SteeringMode
from roast_tl.activations import ContrastMeans, contrast_means
from roast_tl.estimate import vector_from_means, vector_metadata
from roast_tl.pairs import ContrastSet, build_contrast_set, teacher_forced_contrast
from roast_tl.rollouts import Rollout
from roast_tl.scaling import l2_normalize, max_norm, softmax_scale, top_k_mask
from roast_tl.sites import resolve_hook_names
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector


@dataclass
class SteeringSetup:
    """What a method hands to `evaluate`: a vector (or none), how to apply it, a prompt prefix."""

    method: str
    vector: SteeringVector | None = None
    mode: SteeringMode = "add"
    positions: Positions = "last"
    prompt_prefix: str = ""

    @property
    def steers(self) -> bool:
        return self.vector is not None

    def evaluate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that make `roast_tl.evaluate` apply this setup.

        evaluate(model, task, alpha=8.0, items=dev, **setup.evaluate_kwargs())
        """
        return {
            "vector": self.vector,
            "mode": self.mode,
            "positions": self.positions,
            "prompt_prefix": self.prompt_prefix,
        }


@dataclass
class MethodContext:
    """Everything a method may use: the training items and the rollouts already sampled on them.

    ROAST variants built from one context share its rollouts and, per (site, read_at), its
    activation means: `means_cache` is filled by the first variant and reused by the rest.
    `chat` formats CAA's and SADI's teacher-forced prompts as `estimate`'s `chat` does.
    """

    model: HookedModel
    task: Task
    items: Sequence[TaskItem]
    layers: list[int]
    rollouts: Sequence[Rollout] = ()
    seed: int | None = None
    site: str = "resid_post"
    read_at: ReadAt = "last"
    positions: Positions = "last"
    few_shot_k: int = 4
    top_k_fraction: float = 0.05
    strict: bool = False
    read_batch_size: int = 16
    progress: bool = False
    chat: bool | None = None
    means_cache: dict[tuple[str, ...], tuple[ContrastSet, ContrastMeans]] = field(
        default_factory=dict
    )

    def hook_names(self, site: str | None = None) -> list[str]:
        """The validated hook names of `site` (default: this context's site) at its layers."""
        return resolve_hook_names(self.model, layers=self.layers, site=site or self.site)

    def _means(
        self, kind: str, site: str, contrasts: Callable[[], ContrastSet]
    ) -> tuple[ContrastSet, ContrastMeans]:
        key = (kind, site, self.read_at)
        if key not in self.means_cache:
            contrast_set = contrasts()
            means = contrast_means(
                self.model,
                contrast_set,
                self.hook_names(site),
                read_at=self.read_at,
                batch_size=self.read_batch_size,
                progress=self.progress,
            )
            self.means_cache[key] = (contrast_set, means)
        return self.means_cache[key]

    def rollout_means(self, site: str | None = None) -> tuple[ContrastSet, ContrastMeans]:
        """ROC contrast and per-group activation means at `site`, computed once per context."""
        if not self.rollouts:
            raise ValueError(
                "ROAST methods need rollouts; sample them with roast_tl.sample_rollouts"
            )
        return self._means(
            "rollouts",
            site or self.site,
            lambda: build_contrast_set(
                self.rollouts, self.items, tokenizer=self.model.tokenizer, strict=self.strict
            ),
        )

    def teacher_forced_means(self, site: str | None = None) -> tuple[ContrastSet, ContrastMeans]:
        """CAA's off-distribution contrast (written gold vs written wrong) and its means."""
        return self._means(
            "teacher_forced",
            site or self.site,
            lambda: teacher_forced_contrast(
                self.model.tokenizer,
                self.items,
                chat=resolve_chat(self.model.tokenizer, self.chat),
            ),
        )

    def metadata(self, method: str, hook_names: Sequence[str], **settings: Any) -> dict[str, Any]:
        """The shared vector metadata, plus this context's seed and read position."""
        return vector_metadata(
            self.model,
            method=method,
            task=self.task,
            hook_names=hook_names,
            seed=self.seed,
            read_at=self.read_at,
            **settings,
        )


def few_shot_prefix(
    task: Task, k: int, *, pool: Sequence[TaskItem] | None = None, seed: int | None = None
) -> str:
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


def _none(ctx: MethodContext) -> SteeringSetup:  # noqa: ARG001 - every build takes a context
    return SteeringSetup("none")


def _few_shot(ctx: MethodContext) -> SteeringSetup:
    prefix = few_shot_prefix(ctx.task, ctx.few_shot_k, pool=ctx.items, seed=ctx.seed)
    return SteeringSetup("few_shot", prompt_prefix=prefix)


def _caa(ctx: MethodContext) -> SteeringSetup:
    """Mean difference of teacher-forced gold vs wrong answers (off-distribution), max-normed."""
    contrasts, means = ctx.teacher_forced_means()
    names = list(means.positive)
    metadata = ctx.metadata(
        "caa", names, contrasts=contrasts, site=ctx.site, scaler=max_norm, grouped=False
    )
    vector = vector_from_means(means, grouped=False, metadata=metadata)
    return SteeringSetup("caa", vector, positions=ctx.positions)


def _sadi(ctx: MethodContext) -> SteeringSetup:
    """SADI: binary top-K mask of |mean Δ| (teacher-forced contrast), applied as h + δ·(M ⊙ h)."""
    contrasts, means = ctx.teacher_forced_means()
    masks = {}
    for name in means.positive:
        mu = reduce(means.differences(name), "group d_act -> d_act", "mean")
        k = max(1, round(ctx.top_k_fraction * mu.shape[-1]))
        masks[name] = top_k_mask(mu, k)
    metadata = ctx.metadata(
        "sadi", list(masks), contrasts=contrasts, site=ctx.site, top_k_fraction=ctx.top_k_fraction
    )
    return SteeringSetup(
        "sadi", SteeringVector(masks, metadata), mode="multiply", positions=ctx.positions
    )


def _roast(
    *, scaler: Scaler = max_norm, grouped: bool = True, site: str | None = None
) -> Callable[[MethodContext], SteeringSetup]:
    def build(ctx: MethodContext) -> SteeringSetup:
        where = site or ctx.site
        contrasts, means = ctx.rollout_means(where)
        metadata = ctx.metadata(
            "roast",
            list(means.positive),
            contrasts=contrasts,
            rollouts=ctx.rollouts,
            site=where,
            scaler=scaler,
            grouped=grouped,
            strict=ctx.strict,
        )
        vector = vector_from_means(means, scaler=scaler, grouped=grouped, metadata=metadata)
        return SteeringSetup("roast", vector, positions=ctx.positions)

    return build


ADD_ALPHAS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
MULTIPLY_ALPHAS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
MLP_ALPHAS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class Method:
    """A registry entry: how to build the setup, whether it needs rollouts, its alpha grid.

    Methods that do not steer (none, few-shot) have an empty grid.
    """

    build: Callable[[MethodContext], SteeringSetup]
    needs_rollouts: bool = False
    alpha_grid: tuple[float, ...] = ()


METHODS: dict[str, Method] = {
    "none": Method(_none),
    "few_shot": Method(_few_shot),
    "caa": Method(_caa, alpha_grid=ADD_ALPHAS),
    "sadi": Method(_sadi, alpha_grid=MULTIPLY_ALPHAS),
    "roast": Method(_roast(), needs_rollouts=True, alpha_grid=ADD_ALPHAS),
    "roast_plain": Method(_roast(grouped=False), needs_rollouts=True, alpha_grid=ADD_ALPHAS),
    "roast_l2": Method(_roast(scaler=l2_normalize), needs_rollouts=True, alpha_grid=ADD_ALPHAS),
    "roast_softmax": Method(
        _roast(scaler=softmax_scale), needs_rollouts=True, alpha_grid=ADD_ALPHAS
    ),
    "roast_mlp": Method(_roast(site="mlp_post"), needs_rollouts=True, alpha_grid=MLP_ALPHAS),
}


def method_named(name: str) -> Method:
    """Return the registry entry `name`, or raise a ValueError listing the methods."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name]


def build_method(name: str, ctx: MethodContext) -> SteeringSetup:
    """Build the steering setup of method `name` (see `METHODS`) from a shared context.

    ctx = MethodContext(model, task, task.items("train")[:32], layers=[10], rollouts=rollouts)
    setups = {name: build_method(name, ctx) for name in ["caa", "roast", "roast_plain"]}
    """
    setup = method_named(name).build(ctx)
    setup.method = name
    return setup
