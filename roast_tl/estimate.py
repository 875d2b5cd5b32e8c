"""`estimate`: rollouts -> contrast pairs -> activations -> grouped, scaled steering vector."""

import os
from collections.abc import Sequence
from typing import Any

import torch

from roast_tl.activations import ContrastMeans, ReadPosition, contrast_means
from roast_tl.aggregate import grouped_mean_normalize, plain_mean_normalize
from roast_tl.pairs import ContrastSet, build_contrast_set
from roast_tl.rollouts import Rollout, sample_rollouts
from roast_tl.scaling import ScalingMethod, get_scaler
from roast_tl.sites import model_name, resolve_hook_names
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector


def library_version() -> str:
    from roast_tl import __version__

    return __version__


def vector_from_means(
    means: ContrastMeans,
    *,
    scaling: ScalingMethod = "max_norm",
    grouped: bool = True,
    metadata: dict[str, Any] | None = None,
) -> SteeringVector:
    """Turn per-group mean differences into a SteeringVector (grouped or plain, CSS-scaled).

    Grouped: v = S(mean_g S(mu_g)). Plain: v = S(pair-weighted mean of all pair differences),
    where group g contributes its n_pairs × weight pairs, each equal on average to mu_g.
    """
    get_scaler(scaling)
    vectors = {}
    group_ids = torch.arange(len(means.item_ids))
    for name in means.positive:
        mu = means.differences(name)
        if grouped:
            vectors[name] = grouped_mean_normalize(mu, group_ids, method=scaling)
        else:
            vectors[name] = plain_mean_normalize(mu, means.weights * means.n_pairs, method=scaling)
    return SteeringVector(vectors, metadata)


def estimate_from_rollouts(
    model: Any,
    task: Task,
    rollouts: Sequence[Rollout],
    *,
    items: Sequence[TaskItem] | None = None,
    layers: list[int] | int | None = None,
    hook_site: str = "resid_post",
    hook_names: list[str] | None = None,
    position: ReadPosition = "last",
    scaling: ScalingMethod = "max_norm",
    grouped: bool = True,
    strict: bool = False,
    fallback_weight: float = 0.5,
    batch_size: int = 16,
    progress: bool = True,
    extra_metadata: dict[str, Any] | None = None,
) -> SteeringVector:
    """Estimate a ROAST vector from rollouts made earlier or by another engine (HF, vLLM)."""
    names = resolve_hook_names(model, layers=layers, site=hook_site, hook_names=hook_names)
    items = list(items) if items is not None else task.items("train")
    contrasts = build_contrast_set(model, rollouts, items, strict=strict, fallback_weight=fallback_weight)
    means = contrast_means(model, contrasts, names, position=position, batch_size=batch_size, progress=progress)
    metadata = describe(model, task, names, contrasts, rollouts, hook_site=hook_site,
                        position=position, scaling=scaling, grouped=grouped, strict=strict,
                        fallback_weight=fallback_weight)
    metadata.update(extra_metadata or {})
    return vector_from_means(means, scaling=scaling, grouped=grouped, metadata=metadata)


def describe(
    model: Any,
    task: Task,
    names: list[str],
    contrasts: ContrastSet,
    rollouts: Sequence[Rollout],
    **settings: Any,
) -> dict[str, Any]:
    """Return the metadata a SteeringVector records about how it was made."""
    return {
        "method": "roast",
        "model_name": model_name(model),
        "d_model": int(model.cfg.d_model),
        "hook_names": names,
        "task": task.name,
        "n_prompts": len(contrasts.groups),
        "n_pairs": contrasts.n_pairs,
        "n_rollouts_total": len(rollouts),
        "rollout_accuracy": sum(r.correct for r in rollouts) / max(len(rollouts), 1),
        "group_counts": contrasts.counts,
        "roast_tl_version": library_version(),
        **settings,
    }


def estimate(
    model: Any,
    task: Task,
    *,
    layers: list[int] | int | None = None,
    hook_site: str = "resid_post",
    hook_names: list[str] | None = None,
    split: str = "train",
    limit: int | None = None,
    n_rollouts: int = 8,
    temperature: float = 0.8,
    top_p: float = 0.9,
    max_new_tokens: int | None = None,
    position: ReadPosition = "last",
    scaling: ScalingMethod = "max_norm",
    grouped: bool = True,
    strict: bool = False,
    fallback_weight: float = 0.5,
    seed: int = 0,
    batch_size: int = 32,
    rollouts_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> SteeringVector:
    """Estimate a ROAST steering vector for `task` on `model`.

    Samples `n_rollouts` completions per training prompt, contrasts correct with incorrect ones
    of the same prompt (ROC), reads activations at `hook_site` of `layers`, and combines them
    with Grouped Mean Normalization and Continuous Soft Scaling. With `rollouts_path`, rollouts
    are saved there and a rerun resumes from them.

        vector = roast_tl.estimate(model, roast_tl.load_task("sentiment"), layers=[10])
    """
    names = resolve_hook_names(model, layers=layers, site=hook_site, hook_names=hook_names)
    items = task.items(split)[:limit] if limit is not None else task.items(split)
    rollouts = sample_rollouts(
        model, task, items, n_rollouts=n_rollouts, temperature=temperature, top_p=top_p,
        max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size, path=rollouts_path,
        progress=progress,
    )
    return estimate_from_rollouts(
        model, task, rollouts, items=items, hook_names=names, hook_site=hook_site,
        position=position, scaling=scaling, grouped=grouped, strict=strict,
        fallback_weight=fallback_weight, batch_size=max(1, batch_size // 2), progress=progress,
        extra_metadata={"seed": seed, "n_rollouts": n_rollouts, "temperature": temperature,
                        "top_p": top_p, "split": split},
    )
