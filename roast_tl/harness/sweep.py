"""Compare steering methods: tune alpha on dev (never test), report test accuracy over seeds.

Per seed: draw that seed's training prompts, sample rollouts once, build every method from them,
pick each method's alpha (and layer set) on dev, then evaluate once on test. `run_sweep` is a
loop over `run_cell`; finished cells are cached per (task, method, seed) so a sweep resumes.
The cache's config records the model's, tokenizer's and task data's fingerprints, so a folder
made with another model or task file is refused, never mixed in. Every file is written inside
`out_dir`, whatever the task's name.
"""

import csv
import io
import json
import os
import random
import re
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from roast_tl._fingerprint import digest, run_fingerprints
from roast_tl._io import atomic_write_text, read_json
from roast_tl._types import HookedModel, Positions, ReadAt, SteeringMode
from roast_tl.evaluate import evaluate, pick_alpha
from roast_tl.harness.baselines import MethodContext, SteeringSetup, build_method, method_named
from roast_tl.rollouts import Rollout, sample_rollouts
from roast_tl.tasks.base import Task, TaskItem

SEEDS = (42, 22, 52)


def train_subset(task: Task, n_train: int, seed: int) -> list[TaskItem]:
    """The seed's training prompts: a seeded shuffle of the train split, cut to `n_train`."""
    train = list(task.items("train"))
    random.Random(seed).shuffle(train)
    return train[:n_train]


def tune_alpha(
    model: HookedModel,
    task: Task,
    setup: SteeringSetup,
    alphas: Sequence[float],
    dev: Sequence[TaskItem],
    *,
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    chat: bool | None = None,
) -> tuple[float, dict[float, float]]:
    """Return the dev-best alpha (`pick_alpha`) and dev accuracy per alpha. Never reads test."""
    curve = {
        float(a): evaluate(
            model,
            task,
            alpha=a,
            items=dev,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            progress=False,
            chat=chat,
            **setup.evaluate_kwargs(),
        ).accuracy
        for a in alphas
    }
    return pick_alpha(curve), curve


class CellCache:
    """Finished sweep cells in `cells.json`, keyed "task/method/seed", tied to one config.

    A folder holding cells made under other settings is refused, never mixed or overwritten.
    """

    def __init__(self, path: Path, config: Mapping[str, Any]) -> None:
        self.path = path
        self.config = json.loads(json.dumps(config))
        stored = read_json(path) if path.exists() else {}
        if not isinstance(stored, dict) or not isinstance(stored.get("cells", {}), dict):
            raise ValueError(
                f"{path} is not a sweep cache (expected an object with 'config' and 'cells'); "
                "move it away or use another output folder"
            )
        if stored and stored.get("config") != self.config:
            raise ValueError(
                f"{path} holds results made with other settings "
                f"({config_difference(stored.get('config'), self.config)}); use another output "
                "folder, or move this one away"
            )
        self.cells: dict[str, dict[str, Any]] = stored.get("cells", {})

    def __contains__(self, key: str) -> bool:
        return key in self.cells

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self.cells[key]

    def put(self, key: str, cell: dict[str, Any]) -> None:
        """Store a finished cell and rewrite the file atomically."""
        self.cells[key] = cell
        atomic_write_text(
            self.path, json.dumps({"config": self.config, "cells": self.cells}, indent=1)
        )


def config_difference(old: Any, new: Mapping[str, Any]) -> str:
    """Say which settings differ between a stored config and this run's, e.g. "n_train 4 → 5".

    >>> config_difference({"n_train": 4, "model": "ab"}, {"n_train": 5, "model": "cd"})
    'model (another), n_train 4 → 5'
    """
    if not isinstance(old, dict):
        return "no settings recorded"
    parts = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key in _FINGERPRINT_KEYS:
            parts.append(f"{key} (another)")
        else:
            parts.append(f"{key} {old.get(key)!r} → {new.get(key)!r}")
    return ", ".join(parts)


_FINGERPRINT_KEYS = frozenset({"model", "tokenizer", "task_data"})


def file_safe(name: str) -> str:
    """A file-name part for `name` that cannot leave its folder: characters other than letters,
    digits, '.', '_' and '-' become '_', and a hash keeps changed names apart.

    >>> file_safe("sentiment")
    'sentiment'
    >>> file_safe("x/../../escaped")
    'x_.._.._escaped-de6fb90c'
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".")
    return safe if safe == name else f"{safe or 'task'}-{digest(name)[:8]}"


def run_cell(
    model: HookedModel,
    task: Task,
    method: str,
    contexts: Mapping[str, MethodContext],
    *,
    dev: Sequence[TaskItem],
    test: Sequence[TaskItem],
    alphas: Mapping[SteeringMode, Sequence[float]],
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    progress: bool = False,
    chat: bool | None = None,
) -> dict[str, Any]:
    """Build `method` on each candidate layer set, pick (layers, alpha) on dev, evaluate test once.

    `contexts` maps a layer label ("10", "8,10") to its MethodContext; `alphas` overrides the
    method's own grid per steering mode.
    """
    start = time.perf_counter()
    best: tuple[float, float, str, SteeringSetup] | None = None
    curves: dict[str, dict[float, float]] = {}
    for label, ctx in contexts.items():
        setup = build_method(method, ctx)
        if not setup.steers:
            best = (0.0, 0.0, "", setup)
            break
        grid = alphas.get(setup.mode) or method_named(method).alpha_grid
        alpha, curve = tune_alpha(
            model,
            task,
            setup,
            grid,
            dev,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            chat=chat,
        )
        curves[label] = curve
        if best is None or (curve[alpha], -alpha) > (best[0], -best[1]):
            best = (curve[alpha], alpha, label, setup)
    if best is None:
        raise ValueError("no layer candidates to build the method on")
    _, alpha, label, setup = best
    result = evaluate(
        model,
        task,
        alpha=alpha,
        items=test,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        progress=progress,
        chat=chat,
        **setup.evaluate_kwargs(),
    )
    meta = setup.vector.metadata if setup.vector is not None else {}
    kept = (
        "n_prompts",
        "n_pairs",
        "group_counts",
        "rollout_accuracy",
        "hook_names",
        "top_k_fraction",
    )
    return {
        "task": task.name,
        "method": method,
        "alpha": alpha,
        "layers": label,
        "mode": setup.mode,
        "positions": setup.positions,
        "dev_by_alpha": {str(a): v for a, v in curves.get(label, {}).items()},
        "dev_by_layers": {lab: {str(a): v for a, v in c.items()} for lab, c in curves.items()},
        "test_accuracy": result.accuracy,
        "test_ci": [result.ci_low, result.ci_high],
        "n_test": result.n,
        "vector_metadata": {k: v for k, v in meta.items() if k in kept},
        "wall_s": time.perf_counter() - start,
    }


def _layer_label(layers: Sequence[int]) -> str:
    return ",".join(str(x) for x in layers)


def run_sweep(
    model: HookedModel,
    task: Task,
    methods: Sequence[str],
    *,
    layers: list[int],
    out_dir: str | os.PathLike[str],
    seeds: Sequence[int] = SEEDS,
    layer_candidates: Sequence[Sequence[int]] | None = None,
    site: str = "resid_post",
    read_at: ReadAt = "last",
    positions: Positions = "last",
    n_train: int = 64,
    n_rollouts: int = 8,
    max_dev: int | None = None,
    max_test: int | None = None,
    max_new_tokens: int | None = None,
    alphas: Mapping[SteeringMode, Sequence[float]] | None = None,
    batch_size: int = 32,
    progress: bool = True,
    chat: bool | None = None,
) -> list[dict[str, Any]]:
    """Run every method for every seed; return one row per (method, seed) and write them to disk.

    Per seed the training prompts are drawn once, rollouts sampled once (cached as JSONL), and
    every ROAST variant is built from those same rollouts and activations. Alpha, and the layer
    set when `layer_candidates` is given, are chosen on dev (at most `max_dev` items); test (at
    most `max_test`) is evaluated once. `none` is deterministic (greedy, same test set), so it
    is evaluated once and copied to the other seeds. Finished cells are cached in
    `out_dir`/cells.json: rerunning resumes; a folder made with other settings (another model
    or task data included) is refused. `methods` and `seeds` must be non-empty, without repeats.
    `chat` is passed to sampling, methods and evaluation (see `estimate`).
    """
    for what, values in (("methods", list(methods)), ("seeds", list(seeds))):
        if not values:
            raise ValueError(f"run_sweep needs at least one entry in {what}")
        repeated = sorted({str(v) for i, v in enumerate(values) if v in values[:i]})
        if repeated:
            raise ValueError(f"{what} repeat {', '.join(repeated)}; list each once")
    for method in methods:
        method_named(method)  # unknown names fail before any work
    candidates = [list(c) for c in (layer_candidates or [layers])]
    overrides = {mode: [float(a) for a in grid] for mode, grid in (alphas or {}).items()}
    config = {
        "task": task.name,
        **run_fingerprints(model, task),
        "candidates": candidates,
        "site": site,
        "read_at": read_at,
        "positions": positions,
        "n_train": n_train,
        "n_rollouts": n_rollouts,
        "max_dev": max_dev,
        "max_test": max_test,
        "max_new_tokens": max_new_tokens,
        "alphas": overrides,
        "grids": {m: list(method_named(m).alpha_grid) for m in sorted(set(methods))},
        # Recorded only when set, so folders made before `chat` existed still resume.
        **({"chat": chat} if chat is not None else {}),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = CellCache(out / "cells.json", config)
    dev, test = task.items("dev")[:max_dev], task.items("test")[:max_test]
    for seed in seeds:
        train = train_subset(task, n_train, seed)
        rollouts: list[Rollout] | None = None
        for method in methods:
            key = f"{task.name}/{method}/{seed}"
            if key in cache:
                continue
            done_none = [c for c in cache.cells.values() if c["method"] == "none"]
            if method == "none" and done_none:
                cache.put(
                    key, {**done_none[0], "seed": seed, "copied_from_seed": done_none[0]["seed"]}
                )
                continue
            if method_named(method).needs_rollouts and rollouts is None:
                rollouts = sample_rollouts(
                    model,
                    task,
                    train,
                    n_rollouts=n_rollouts,
                    seed=seed,
                    batch_size=batch_size,
                    max_new_tokens=max_new_tokens,
                    rollouts_path=out / f"rollouts_{file_safe(task.name)}_{seed}.jsonl",
                    progress=progress,
                    chat=chat,
                )
            contexts = {
                _layer_label(c): MethodContext(
                    model,
                    task,
                    train,
                    c,
                    rollouts or (),
                    seed=seed,
                    site=site,
                    read_at=read_at,
                    positions=positions,
                    chat=chat,
                )
                for c in candidates
            }
            cell = run_cell(
                model,
                task,
                method,
                contexts,
                dev=dev,
                test=test,
                alphas=overrides,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                progress=progress,
                chat=chat,
            )
            cache.put(key, {**cell, "seed": seed, "n_train": len(train)})
    rows = [cache[f"{task.name}/{m}/{s}"] for m in methods for s in seeds]
    write_tables(rows, out)
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std of test accuracy per (task, method) over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["method"]), []).append(row)
    summary = []
    for (task, method), rs in groups.items():
        accs = [r["test_accuracy"] for r in rs]
        summary.append(
            {
                "task": task,
                "method": method,
                "mean": statistics.fmean(accs),
                "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "n_seeds": len(accs),
                "alphas": [r["alpha"] for r in rs],
                "layers": [r.get("layers", "") for r in rs],
                "n_test": rs[0]["n_test"],
            }
        )
    return summary


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of mean ± std test accuracy per task and method."""
    lines = [
        "| task | method | test accuracy (mean ± std) | seeds | alphas (dev-chosen) | "
        "layers (dev-chosen) | n test |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        alphas = ", ".join(f"{a:g}" for a in s["alphas"])
        layers = "; ".join(str(x) for x in s.get("layers", []) if x) or "-"
        lines.append(
            f"| {s['task']} | {s['method']} | {s['mean']:.3f} ± {s['std']:.3f} | "
            f"{s['n_seeds']} | {alphas} | {layers} | {s['n_test']} |"
        )
    return "\n".join(lines)


def write_tables(rows: Sequence[dict[str, Any]], out: Path) -> None:
    """Write rows.csv, summary.json, summary.md and (with matplotlib) dev_accuracy_vs_alpha.png."""
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["task", "method", "seed", "alpha", "layers", "test_accuracy", "n_test"])
    for r in rows:
        writer.writerow(
            [
                r["task"],
                r["method"],
                r["seed"],
                r["alpha"],
                r.get("layers", ""),
                r["test_accuracy"],
                r["n_test"],
            ]
        )
    atomic_write_text(out / "rows.csv", table.getvalue())
    summary = summarize(rows)
    atomic_write_text(
        out / "summary.json", json.dumps({"summary": summary, "rows": rows}, indent=1)
    )
    atomic_write_text(out / "summary.md", markdown_table(summary) + "\n")
    from roast_tl.harness.plots import plot_accuracy_vs_alpha

    try:
        plot_accuracy_vs_alpha(rows, out / "dev_accuracy_vs_alpha.png")
    except ImportError:
        pass  # matplotlib is the optional `plots` extra; the tables are written regardless
