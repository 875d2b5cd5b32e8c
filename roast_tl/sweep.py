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

from roast_tl.baselines import MethodContext, SteeringSetup, build_method
from roast_tl.evaluate import evaluate
from roast_tl.rollouts import sample_rollouts
from roast_tl.tasks.base import Task
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
    batch_size: int = 32, progress: bool = False,
) -> tuple[float, dict[float, float]]:
    """Return the dev-best alpha (ties -> smaller) and dev accuracy per alpha."""
    dev = task.items("dev")[:n_dev]
    accuracy = {
        float(a): evaluate(model, task, setup.vector, a, items=dev, split="dev", mode=setup.mode,  # type: ignore[arg-type]
                           positions=setup.positions, prompt_prefix=setup.prompt_prefix,  # type: ignore[arg-type]
                           batch_size=batch_size, progress=progress).accuracy
        for a in alphas
    }
    best = max(accuracy, key=lambda a: (accuracy[a], -a))
    return best, accuracy


def run_sweep(
    model: Any,
    task: Task,
    methods: Sequence[str],
    *,
    layers: list[int],
    out_dir: str | Path,
    seeds: Sequence[int] = SEEDS,
    n_train: int = 64,
    n_rollouts: int = 8,
    n_dev: int | None = None,
    n_test: int | None = None,
    max_new_tokens: int | None = None,
    alphas: dict[str, list[float]] | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every method for every seed; return one row per (method, seed) and write them to disk."""
    grids = {**DEFAULT_ALPHAS, **(alphas or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "cells.json"
    cells: dict[str, dict[str, Any]] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    test = task.items("test")[:n_test]
    for seed in seeds:
        train = list(task.items("train"))
        random.Random(seed).shuffle(train)
        train = train[:n_train]
        rollouts = None
        for method in methods:
            key = f"{task.name}/{method}/{seed}"
            if key in cells:
                continue
            start = time.perf_counter()
            if method.startswith("roast") and rollouts is None:
                rollouts = sample_rollouts(
                    model, task, train, n_rollouts=n_rollouts, seed=seed, batch_size=batch_size,
                    max_new_tokens=max_new_tokens, path=out / f"rollouts_{task.name}_{seed}.jsonl",
                    progress=progress)
            ctx = MethodContext(model, task, train, layers, rollouts or (), progress=False)
            setup = build_method(method, ctx)
            dev_curve: dict[float, float] = {}
            alpha = 0.0
            if setup.steers:
                alpha, dev_curve = tune_alpha(model, task, setup, alpha_grid(setup, grids),
                                              n_dev=n_dev, batch_size=batch_size)
            result = evaluate(model, task, setup.vector, alpha, items=test, mode=setup.mode,  # type: ignore[arg-type]
                              positions=setup.positions, prompt_prefix=setup.prompt_prefix,  # type: ignore[arg-type]
                              batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress)
            cells[key] = {
                "task": task.name, "method": method, "seed": seed, "alpha": alpha,
                "dev_by_alpha": {str(a): v for a, v in dev_curve.items()},
                "test_accuracy": result.accuracy, "test_ci": [result.ci_low, result.ci_high],
                "n_test": result.n, "n_train": len(train), "layers": layers,
                "vector_metadata": {k: v for k, v in (setup.vector.metadata if setup.vector else {}).items()
                                    if k in ("n_prompts", "n_pairs", "group_counts", "rollout_accuracy")},
                "wall_s": time.perf_counter() - start,
            }
            atomic_write_bytes(cache_path, json.dumps(cells, indent=1).encode())
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
            "alphas": [r["alpha"] for r in rs], "n_test": rs[0]["n_test"],
        })
    return summary


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of mean ± std test accuracy per task and method."""
    lines = ["| task | method | test accuracy (mean ± std) | seeds | alphas (dev-chosen) | n test |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        alphas = ", ".join(f"{a:g}" for a in s["alphas"])
        lines.append(f"| {s['task']} | {s['method']} | {s['mean']:.3f} ± {s['std']:.3f} | "
                     f"{s['n_seeds']} | {alphas} | {s['n_test']} |")
    return "\n".join(lines)


def write_tables(rows: Sequence[dict[str, Any]], out: Path) -> None:
    """Write rows.csv, summary.json, summary.md and (with matplotlib) dev_accuracy_vs_alpha.png."""
    with open(out / "rows.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "method", "seed", "alpha", "test_accuracy", "n_test"])
        for r in rows:
            writer.writerow([r["task"], r["method"], r["seed"], r["alpha"], r["test_accuracy"], r["n_test"]])
    summary = summarize(rows)
    atomic_write_bytes(out / "summary.json", json.dumps({"summary": summary, "rows": rows}, indent=1).encode())
    (out / "summary.md").write_text(markdown_table(summary) + "\n")
    try:
        from roast_tl.plots import plot_accuracy_vs_alpha
    except ImportError:
        return
    plot_accuracy_vs_alpha(rows, out / "dev_accuracy_vs_alpha.png")
