"""`estimate`: rollouts -> contrast pairs -> activations -> grouped, scaled steering vector.

Also the one builder of vector metadata, shared by every method (ROAST, CAA, SADI).

Every estimate reports its own yield (`roast_tl.report.YieldReport`): how many prompts had a
real correct-vs-wrong contrast and how many a fallback, with example completions as graded. It
is printed when `progress=True`, recorded as `metadata["yield_report"]`, and a `LowYieldWarning`
says when the vector rests mostly on fallbacks or the grader fails its own gold completions.
"""

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from roast_tl._fingerprint import model_fingerprint
from roast_tl._tokens import resolve_chat
from roast_tl._types import HookedModel, ReadAt, Scaler
from roast_tl._version import __version__
from roast_tl._warnings import LowYieldWarning
from roast_tl.activations import ContrastMeans, contrast_means
from roast_tl.aggregate import grouped_mean_normalize, plain_mean_normalize
from roast_tl.evaluate import check_batch_size
from roast_tl.hooks import other_hooks_attached
from roast_tl.pairs import ContrastSet, build_contrast_set
from roast_tl.report import GoldCheck, YieldReport, check_gold
from roast_tl.rollouts import Rollout, sample_rollouts
from roast_tl.scaling import max_norm
from roast_tl.sites import canonical_site, model_name, resolve_hook_names
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import SteeringVector


def vector_from_means(
    means: ContrastMeans,
    *,
    scaler: Scaler = max_norm,
    grouped: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> SteeringVector:
    """Turn per-group mean differences into a SteeringVector (grouped or plain, CSS-scaled).

    Grouped: v = S(mean_g S(mu_g)). Plain: v = S(pair-weighted mean of all pair differences),
    where group g contributes its n_pairs × weight pairs, each equal on average to mu_g.
    """
    vectors = {}
    group_ids = torch.arange(len(means.item_ids))
    for name in means.positive:
        mu = means.differences(name)
        if grouped:
            vectors[name] = grouped_mean_normalize(mu, group_ids, scaler=scaler)
        else:
            vectors[name] = plain_mean_normalize(mu, means.weights * means.n_pairs, scaler=scaler)
    return SteeringVector(vectors, metadata)


def vector_metadata(
    model: HookedModel,
    *,
    method: str,
    task: Task,
    hook_names: Sequence[str],
    contrasts: ContrastSet | None = None,
    rollouts: Sequence[Rollout] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Return the metadata a SteeringVector records about how it was made (any method).

    Callables in `settings` (a `scaler=`) are recorded by their function name.
    """
    metadata: dict[str, Any] = {
        "method": method,
        "model_name": model_name(model),
        "model_fingerprint": model_fingerprint(model),
        "d_model": int(model.cfg.d_model),
        "n_layers": int(model.cfg.n_layers),
        "hook_names": list(hook_names),
        "task": task.name,
        "roast_tl_version": __version__,
    }
    if contrasts is not None:
        metadata.update(
            n_prompts=len(contrasts.groups),
            n_pairs=contrasts.n_pairs,
            group_counts=contrasts.counts,
        )
    if rollouts is not None:
        metadata.update(
            n_rollouts_total=len(rollouts),
            rollout_accuracy=sum(r.correct for r in rollouts) / max(len(rollouts), 1),
        )
    for key, value in settings.items():
        metadata[key] = getattr(value, "__name__", repr(value)) if callable(value) else value
    return metadata


def estimate_from_rollouts(
    model: HookedModel,
    task: Task,
    rollouts: Sequence[Rollout],
    *,
    items: Sequence[TaskItem] | None = None,
    layers: list[int] | int | None = None,
    site: str = "resid_post",
    hook_names: list[str] | None = None,
    read_at: ReadAt = "last",
    scaler: Scaler = max_norm,
    grouped: bool = True,
    strict: bool = False,
    fallback_weight: float = 0.5,
    read_batch_size: int = 16,
    progress: bool = True,
    extra_metadata: Mapping[str, Any] | None = None,
) -> SteeringVector:
    """Estimate a ROAST vector from rollouts made earlier or by another engine (HF, vLLM).

    `items` are the prompts the rollouts answer (default: the task's train split);
    `read_batch_size` counts sequences per teacher-forced activation pass. Hooks already
    attached to `model` (an enclosing `steer`) act on the activations read: a RoastWarning
    says so and the metadata records `other_hooks_attached: True`.

    The rollouts carry their own prompt ids (formatted with or without the chat template);
    fallbacks reuse them, and `metadata["chat"]` records the rollouts' setting when their
    fingerprints agree on one.

    Like `estimate`, it grades each item's `gold_completion` first, then prints the yield
    report when `progress=True`, records it as `metadata["yield_report"]` and warns
    (`LowYieldWarning`) about a low yield before reading any activation.
    """
    check_batch_size(read_batch_size, "read_batch_size")
    names = resolve_hook_names(model, layers=layers, site=site, hook_names=hook_names)
    hooked = other_hooks_attached(model, "estimate_from_rollouts")
    items = list(items) if items is not None else task.items("train")
    gold = _gold_self_check(task, items)
    return _from_rollouts(
        model,
        task,
        rollouts,
        items=items,
        gold_check=gold,
        names=names,
        site=site,
        read_at=read_at,
        scaler=scaler,
        grouped=grouped,
        strict=strict,
        fallback_weight=fallback_weight,
        read_batch_size=read_batch_size,
        progress=progress,
        extra_metadata={**_chat_of(rollouts), **(extra_metadata or {}), **_hooked(hooked)},
    )


def _chat_of(rollouts: Sequence[Rollout]) -> dict[str, Any]:
    """`{"chat": value}` when every rollout's fingerprint records the same chat setting."""
    values = {r.fingerprint.get("chat") if r.fingerprint is not None else None for r in rollouts}
    value = values.pop() if len(values) == 1 else None
    return {"chat": value} if isinstance(value, bool) else {}


def _hooked(other_hooks: bool) -> dict[str, Any]:
    return {"other_hooks_attached": True} if other_hooks else {}


def _warn_low_yield(messages: Sequence[str], stacklevel: int) -> None:
    """One `LowYieldWarning` per message, attributed `stacklevel` frames above the caller."""
    for message in messages:
        warnings.warn(message, LowYieldWarning, stacklevel=stacklevel + 1)


def _gold_self_check(task: Task, items: Sequence[TaskItem]) -> GoldCheck:
    """Grade the items' gold completions and warn (to the user's call) when any fail."""
    gold = check_gold(task, items)
    _warn_low_yield(gold.problems(), stacklevel=3)
    return gold


def _from_rollouts(
    model: HookedModel,
    task: Task,
    rollouts: Sequence[Rollout],
    *,
    items: Sequence[TaskItem],
    gold_check: GoldCheck,
    names: list[str],
    site: str,
    read_at: ReadAt,
    scaler: Scaler,
    grouped: bool,
    strict: bool,
    fallback_weight: float,
    read_batch_size: int,
    progress: bool,
    extra_metadata: Mapping[str, Any],
) -> SteeringVector:
    contrasts = build_contrast_set(
        rollouts, items, tokenizer=model.tokenizer, strict=strict, fallback_weight=fallback_weight
    )
    report = YieldReport.build(rollouts, items, contrasts, gold_check=gold_check)
    if progress:
        print(report, flush=True)
    _warn_low_yield(report.problems(include_gold=False), stacklevel=3)
    means = contrast_means(
        model, contrasts, names, read_at=read_at, batch_size=read_batch_size, progress=progress
    )
    metadata = vector_metadata(
        model,
        method="roast",
        task=task,
        hook_names=names,
        contrasts=contrasts,
        rollouts=rollouts,
        site=canonical_site(site),
        read_at=read_at,
        scaler=scaler,
        grouped=grouped,
        strict=strict,
        fallback_weight=fallback_weight,
        **extra_metadata,
        yield_report=report.as_dict(),
    )
    return vector_from_means(means, scaler=scaler, grouped=grouped, metadata=metadata)


def estimate(
    model: HookedModel,
    task: Task,
    *,
    items: Sequence[TaskItem] | None = None,
    layers: list[int] | int | None = None,
    site: str = "resid_post",
    hook_names: list[str] | None = None,
    n_rollouts: int = 8,
    temperature: float = 0.8,
    top_p: float = 0.9,
    max_new_tokens: int | None = None,
    read_at: ReadAt = "last",
    scaler: Scaler = max_norm,
    grouped: bool = True,
    strict: bool = False,
    fallback_weight: float = 0.5,
    seed: int = 0,
    batch_size: int = 32,
    read_batch_size: int = 16,
    rollouts_path: str | os.PathLike[str] | None = None,
    progress: bool = True,
    chat: bool | None = None,
) -> SteeringVector:
    """Estimate a ROAST steering vector for `task` on `model`.

    Samples `n_rollouts` completions per training prompt (`items`, default the train split;
    slice it yourself for fewer), contrasts correct with incorrect ones of the same prompt
    (ROC), reads activations at `site` of `layers`, and combines them with Grouped Mean
    Normalization and Continuous Soft Scaling (`scaler`). `batch_size` counts sampled sequences
    per batch, `read_batch_size` teacher-forced sequences per activation pass. With
    `rollouts_path`, rollouts are saved there and a rerun resumes from them. Hooks already
    attached to `model` act on sampling and reading: a RoastWarning says so and the metadata
    records `other_hooks_attached: True`.

    Before sampling, each item's `gold_completion` is graded with the task's grader; after it,
    the yield report (`roast_tl.report.YieldReport`: rollout accuracy, per-prompt pass rates,
    real contrasts vs fallbacks, pairs per group, example completions as graded) is printed
    when `progress=True` and recorded as `metadata["yield_report"]`. A `LowYieldWarning`
    (`roast_tl._warnings`) fires when the grader fails gold completions, `n_rollouts < 2`,
    rollout accuracy is 0 or 1, or fallbacks are more than half the groups; `strict=True`
    forbids fallbacks.

    `chat` (None: the chat template when the tokenizer has one; False: plain-text prompts, as a
    base model sees them; True: require a template) decides how prompts are formatted for the
    rollouts and the fallbacks; `metadata["chat"]` records the choice, and the rollout
    fingerprint too (a rerun under another setting samples anew).

        vector = roast_tl.estimate(model, roast_tl.load_task("sentiment"), layers=[10])
    """
    check_batch_size(batch_size, "batch_size")
    check_batch_size(read_batch_size, "read_batch_size")
    names = resolve_hook_names(model, layers=layers, site=site, hook_names=hook_names)
    hooked = other_hooks_attached(model, "estimate")
    items = list(items) if items is not None else task.items("train")
    gold = _gold_self_check(task, items)
    rollouts = sample_rollouts(
        model,
        task,
        items,
        n_rollouts=n_rollouts,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        batch_size=batch_size,
        rollouts_path=rollouts_path,
        progress=progress,
        chat=chat,
    )
    return _from_rollouts(
        model,
        task,
        rollouts,
        items=items,
        gold_check=gold,
        names=names,
        site=site,
        read_at=read_at,
        scaler=scaler,
        grouped=grouped,
        strict=strict,
        fallback_weight=fallback_weight,
        read_batch_size=read_batch_size,
        progress=progress,
        extra_metadata={
            "seed": seed,
            "n_rollouts": n_rollouts,
            "temperature": temperature,
            "top_p": top_p,
            "n_items": len(items),
            "chat": resolve_chat(model.tokenizer, chat),
            **_hooked(hooked),
        },
    )
