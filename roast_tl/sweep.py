"""Compare steering methods: tune alpha on dev (never test), report test accuracy over seeds.

Per seed: draw that seed's training prompts, sample rollouts once, build every method from them,
pick each method's alpha on the dev split, then evaluate once on test. Results are cached per
(task, method, seed) so an interrupted sweep resumes.
"""

import csv
import json
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roast_tl.baselines import MethodContext, SteeringSetup, build_method, needs_rollouts
from roast_tl.evaluate import evaluate
from roast_tl.rollouts import sample_rollouts
from roast_tl.tasks.base import Task, TaskItem
from roast_tl.vector import atomic_write_bytes

SEEDS = (42, 22, 52)
DEFAULT_ALPHAS: dict[str, list[float]] = {
    "add": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
    "multiply": [0.05, 0.1, 0.2, 0.5, 1.0, 2.0],
    "mlp_post": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
}


def alpha_grid(setup: SteeringSetup, grids: dict[str, list[float]]) -> list[float]:
    """The alpha grid for a setup: by site for MLP vectors, else by steering mode."""
    if setup.vector is not None and any(".mlp." in n for n in setup.vector.hook_names):
        return grids["mlp_post"]
    return grids[setup.mode]


def tune_alpha(
    model: Any, task: Task, setup: SteeringSetup, alphas: Sequence[float], *, n_dev: int | None,
    batch_size: int = 32, max_new_tokens: int | None = None, progress: bool = False,
) -> tuple[float, dict[float, float]]:
    """Return the dev-best alpha (ties -> smaller) and dev accuracy per alpha. Never reads test."""
    dev = task.items("dev")[:n_dev]
    accuracy = {
        float(a): evaluate(model, task, alpha=a, items=dev, split="dev", batch_size=batch_size,
                           max_new_tokens=max_new_tokens, progress=progress,
                           **setup.evaluate_kwargs()).accuracy
        for a in alphas
    }
    best = max(accuracy, key=lambda a: (accuracy[a], -a))
    return best, accuracy


def select_on_dev(
    model: Any, task: Task, method: str, contexts: dict[str, MethodContext],
    grids: dict[str, list[float]], *, n_dev: int | None, batch_size: int = 32,
    max_new_tokens: int | None = None,
) -> tuple[str, SteeringSetup, float, dict[str, dict[float, float]]]:
    """Pick (layer set, alpha) for `method` by dev accuracy over every candidate context.

    `contexts` maps a label (e.g. "10" or "8,10") to a MethodContext for those layers. Returns
    the winning label, its setup, its alpha, and the dev curve of every candidate.
    """
    best: tuple[float, float, str, SteeringSetup, float] | None = None
    curves: dict[str, dict[float, float]] = {}
    for label, ctx in contexts.items():
        setup = build_method(method, ctx)
        if not setup.steers:
            return label, setup, 0.0, {}
        alpha, curve = tune_alpha(model, task, setup, alpha_grid(setup, grids), n_dev=n_dev,
                                  batch_size=batch_size, max_new_tokens=max_new_tokens)
        curves[label] = curve
        if best is None or (curve[alpha], -alpha) > (best[0], -best[1]):
            best = (curve[alpha], alpha, label, setup, alpha)
    assert best is not None
    return best[2], best[3], best[4], curves


def train_subset(task: Task, n_train: int, seed: int) -> list[TaskItem]:
    """The seed's training prompts: a seeded shuffle of the train split, cut to `n_train`."""
    train = list(task.items("train"))
    random.Random(seed).shuffle(train)
    return train[:n_train]


def _layer_label(layers: Sequence[int]) -> str:
    return ",".join(str(x) for x in layers)


def run_sweep(
    model: Any,
    task: Task,
    methods: Sequence[str],
    *,
    layers: list[int],
    out_dir: str | Path,
    seeds: Sequence[int] = SEEDS,
    layer_candidates: Sequence[Sequence[int]] | None = None,
    hook_site: str = "resid_post",
    position: str = "last",
    positions: str = "last",
    n_train: int = 64,
    n_rollouts: int = 8,
    n_dev: int | None = None,
    n_test: int | None = None,
    max_new_tokens: int | None = None,
    alphas: dict[str, list[float]] | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every method for every seed; return one row per (method, seed) and write them to disk.

    Per seed the training prompts are drawn once, rollouts sampled once (and cached as JSONL),
    and every ROAST variant is built from those same rollouts and activations. Alpha, and the
    layer set when `layer_candidates` is given, are chosen on dev; test is evaluated once.
    `none` is deterministic (greedy, same test set), so it is evaluated once and copied to
    the other seeds. Finished cells are cached in `out_dir`/cells.json: rerunning resumes.
    """
    grids = {**DEFAULT_ALPHAS, **(alphas or {})}
    candidates = [list(c) for c in (layer_candidates or [layers])]
    config = {"task": task.name, "candidates": candidates, "hook_site": hook_site,
              "position": position, "positions": positions, "n_train": n_train,
              "n_rollouts": n_rollouts, "n_dev": n_dev, "n_test": n_test,
              "max_new_tokens": max_new_tokens, "grids": grids}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "cells.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if cache and cache.get("config") != json.loads(json.dumps(config)):
        raise ValueError(
            f"{cache_path} holds results made with other settings ({cache.get('config')}); "
            "use another output folder or delete it"
        )
    cells: dict[str, dict[str, Any]] = cache.get("cells", {})

    def save() -> None:
        atomic_write_bytes(cache_path, json.dumps({"config": config, "cells": cells}, indent=1).encode())

    test = task.items("test")[:n_test]
    for seed in seeds:
        train = train_subset(task, n_train, seed)
        rollouts = None
        contexts: dict[str, MethodContext] = {}
        for method in methods:
            key = f"{task.name}/{method}/{seed}"
            if key in cells:
                continue
            done_none = [c for c in cells.values() if c["method"] == "none"]
            if method == "none" and done_none:
                cells[key] = {**done_none[0], "seed": seed, "copied_from_seed": done_none[0]["seed"]}
                save()
                continue
            start = time.perf_counter()
            if needs_rollouts(method) and rollouts is None:
                rollouts = sample_rollouts(
                    model, task, train, n_rollouts=n_rollouts, seed=seed, batch_size=batch_size,
                    max_new_tokens=max_new_tokens, path=out / f"rollouts_{task.name}_{seed}.jsonl",
                    progress=progress)
                contexts = {}
            if not contexts:
                contexts = {
                    _layer_label(c): MethodContext(
                        model, task, train, c, rollouts or (), seed=seed, hook_site=hook_site,
                        position=position, positions=positions)  # type: ignore[arg-type]
                    for c in candidates
                }
            label, setup, alpha, curves = select_on_dev(
                model, task, method, contexts, grids, n_dev=n_dev, batch_size=batch_size,
                max_new_tokens=max_new_tokens)
            result = evaluate(model, task, alpha=alpha, items=test, batch_size=batch_size,
                              max_new_tokens=max_new_tokens, progress=progress, **setup.evaluate_kwargs())
            meta = setup.vector.metadata if setup.vector is not None else {}
            cells[key] = {
                "task": task.name, "method": method, "seed": seed, "alpha": alpha,
                "layers": label if setup.steers else "", "mode": setup.mode,
                "positions": setup.positions,
                "dev_by_alpha": {str(a): v for a, v in curves.get(label, {}).items()},
                "dev_by_layers": {lab: {str(a): v for a, v in c.items()} for lab, c in curves.items()},
                "test_accuracy": result.accuracy, "test_ci": [result.ci_low, result.ci_high],
                "n_test": result.n, "n_train": len(train),
                "vector_metadata": {k: v for k, v in meta.items()
                                    if k in ("n_prompts", "n_pairs", "group_counts", "rollout_accuracy",
                                             "hook_names", "top_k_fraction")},
                "wall_s": time.perf_counter() - start,
            }
            save()
    rows = [cells[f"{task.name}/{m}/{s}"] for m in methods for s in seeds]
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
        summary.append({
            "task": task, "method": method, "mean": statistics.fmean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "n_seeds": len(accs),
            "alphas": [r["alpha"] for r in rs], "layers": [r.get("layers", "") for r in rs],
            "n_test": rs[0]["n_test"],
        })
    return summary


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of mean ± std test accuracy per task and method."""
    lines = ["| task | method | test accuracy (mean ± std) | seeds | alphas (dev-chosen) | "
             "layers (dev-chosen) | n test |", "|---|---|---|---|---|---|---|"]
    for s in summary:
        alphas = ", ".join(f"{a:g}" for a in s["alphas"])
        layers = "; ".join(str(x) for x in s.get("layers", []) if x) or "-"
        lines.append(f"| {s['task']} | {s['method']} | {s['mean']:.3f} ± {s['std']:.3f} | "
                     f"{s['n_seeds']} | {alphas} | {layers} | {s['n_test']} |")
    return "\n".join(lines)


def write_tables(rows: Sequence[dict[str, Any]], out: Path) -> None:
    """Write rows.csv, summary.json, summary.md and (with matplotlib) dev_accuracy_vs_alpha.png."""
    with open(out / "rows.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "method", "seed", "alpha", "layers", "test_accuracy", "n_test"])
        for r in rows:
            writer.writerow([r["task"], r["method"], r["seed"], r["alpha"], r.get("layers", ""),
                             r["test_accuracy"], r["n_test"]])
    summary = summarize(rows)
    atomic_write_bytes(out / "summary.json", json.dumps({"summary": summary, "rows": rows}, indent=1).encode())
    (out / "summary.md").write_text(markdown_table(summary) + "\n")
    try:
        from roast_tl.plots import plot_accuracy_vs_alpha
    except ImportError:
        return
    plot_accuracy_vs_alpha(rows, out / "dev_accuracy_vs_alpha.png")
