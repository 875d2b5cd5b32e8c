"""The headline effect: does ROAST beat no steering, few-shot, CAA and SADI on held-out prompts?

On the embedded SmolLM2-135M-Instruct, per task: each seed draws its own training prompts, samples
rollouts once, builds every method from them, tunes alpha on the dev split (never test) and
evaluates the test split once. Writes benchmarks/results/effect.{md,json}. Resumable: rollouts
and finished (task, method, seed) cells are cached under --work (gitignored) and skipped on a
rerun.

    python benchmarks/effect.py --quick     # ~160 min of 1-thread compute (GSM8K is 110 of it)
    python benchmarks/effect.py             # full sizes (about 2x --quick)
    python benchmarks/effect.py --tasks sentiment --seeds 42
    python benchmarks/effect.py --smoke     # a few minutes; checks the script, not the effect
    python benchmarks/effect.py --quick --tasks gsm8k --seeds 42 --n-train 24 --n-rollouts 32 \
        --methods none,roast_plain,roast --out benchmarks/results/effect_gsm8k_32 \
        --work benchmarks/results/effect_work_gsm8k_32   # GSM8K with 32 rollouts per prompt
    python benchmarks/effect.py --quick --tasks gsm8k --seeds 42 --n-train 24 --n-rollouts 32 \
        --max-new-tokens 256 --methods none,roast --out benchmarks/results/effect_gsm8k_32_256 \
        --work benchmarks/results/effect_work_gsm8k_32_256   # the same at 256 new tokens
"""

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import roast_tl
from roast_tl.diagnostics import consistency_report, energy_table
from roast_tl.harness.baselines import METHODS, MethodContext
from roast_tl.harness.plots import plot_magnitude_consistency, plot_mask_energy
from roast_tl.harness.sweep import SEEDS, markdown_table, run_sweep, summarize, train_subset
from roast_tl.rollouts import load_rollouts

DEFAULT_METHODS = ["none", "few_shot", "caa", "sadi", "roast_plain", "roast"]
ADD = [4.0, 8.0, 16.0, 32.0]
MULTIPLY = [0.1, 0.5, 1.0, 2.0]
# Sizes per task; max_dev / max_test cap the dev and test splits. GSM8K generation (160 tokens at
# ~70 tokens/s batched on 2 cores) costs ~20x the one-word tasks, so it gets few prompts, 4
# rollouts and a 2-point alpha grid.
FULL: dict[str, dict[str, Any]] = {
    "sentiment": {
        "load": {},
        "n_train": 64,
        "n_rollouts": 8,
        "max_dev": 40,
        "max_test": 100,
        "alphas": {"add": ADD, "multiply": MULTIPLY},
        "seeds": list(SEEDS),
    },
    "arithmetic": {
        "load": {"digits": 1},
        "n_train": 64,
        "n_rollouts": 8,
        "max_dev": 30,
        "max_test": 60,
        "alphas": {"add": [2.0, *ADD], "multiply": MULTIPLY},
        "seeds": list(SEEDS),
    },
    "gsm8k": {
        "load": {"n_items": 800, "n_dev": 16, "n_test": 50},
        "n_train": 24,
        "n_rollouts": 4,
        "max_dev": 16,
        "max_test": 50,
        "max_new_tokens": 160,
        "alphas": {"add": [4.0, 16.0], "multiply": [0.5, 2.0]},
        "seeds": list(SEEDS),
    },
}
QUICK: dict[str, dict[str, Any]] = {
    "sentiment": {**FULL["sentiment"], "n_train": 32, "max_dev": 24, "max_test": 80},
    "arithmetic": {
        **FULL["arithmetic"],
        "n_train": 24,
        "max_dev": 16,
        "max_test": 40,
        "alphas": {"add": [2.0, 4.0, 8.0, 16.0], "multiply": [0.5, 1.0, 2.0]},
    },
    "gsm8k": {
        **FULL["gsm8k"],
        "load": {"n_items": 400, "n_dev": 8, "n_test": 24},
        "n_train": 12,
        "max_dev": 8,
        "max_test": 24,
    },
}
# Checks that the script runs end to end (one seed, a handful of prompts); the numbers mean nothing.
SMOKE: dict[str, dict[str, Any]] = {
    name: {
        **spec,
        "n_train": 4,
        "n_rollouts": 2,
        "max_dev": 4,
        "max_test": 4,
        **({"max_new_tokens": 24} if "max_new_tokens" in spec else {}),
        "alphas": {"add": [4.0], "multiply": [0.5]},
        "seeds": [SEEDS[0]],
    }
    for name, spec in QUICK.items()
}


def task_diagnostics(
    model: Any, task: Any, spec: dict[str, Any], layers: list[int], work: Path
) -> dict[str, Any]:
    """Magnitude-vs-consistency and top-K energy on the first seed's cached rollouts (+ PNGs)."""
    seed = spec["seeds"][0]
    train = train_subset(task, spec["n_train"], seed)
    rollouts = load_rollouts(work / f"rollouts_{task.name}_{seed}.jsonl")
    context = MethodContext(model, task, train, layers, rollouts, seed=seed)
    contrasts, means = context.rollout_means()
    name = next(iter(means.positive))
    report = consistency_report(means, name)
    mu = means.differences(name).mean(0)
    d = int(mu.shape[-1])
    table = energy_table(mu, sorted({1, 4, 16, max(1, round(0.05 * d)), 64, 256, d} - {0}))
    try:
        plot_magnitude_consistency(
            report["magnitudes"],
            report["cosines"],
            work / "magnitude_consistency.png",
            report["pearson_r"],
        )
        plot_mask_energy([r for r in table if r["scaler"] == "top_k"], work / "mask_energy.png")
    except ImportError:
        pass  # matplotlib is the optional `plots` extra
    return {
        "seed": seed,
        "hook_name": name,
        "group_counts": contrasts.counts,
        "n_groups": len(contrasts.groups),
        "pearson_r_magnitude_vs_cosine": report["pearson_r"],
        "top10pct_magnitude_share": report["top10pct_magnitude_share"],
        "energy": table,
    }


def diagnostics_line(name: str, d: dict[str, Any]) -> str:
    """One Markdown bullet: group counts, magnitude-vs-consistency, the top-5% mask's energy."""
    top5 = max(1, round(0.05 * d["energy"][-1]["k"]))
    masks = [r for r in d["energy"] if r["scaler"] == "top_k" and r["k"] == top5]
    real = d["group_counts"].get("rollouts", 0)
    return (
        f"- {name}: {d['n_groups']} contrast groups {d['group_counts']} ({real}/{d['n_groups']} "
        f"prompts = {real / max(1, d['n_groups']):.0%} with a real correct-vs-wrong contrast in "
        "their own rollouts); Pearson r(|mu_g|, cos "
        f"to consensus) = {d['pearson_r_magnitude_vs_cosine']:.2f}; the largest 10% of groups "
        f"hold {d['top10pct_magnitude_share']:.0%} of the total magnitude; top-5% mask keeps "
        + ", ".join(
            f"{r['retained_energy']:.2f} energy / cos {r['cosine']:.2f} at K={r['k']}"
            for r in masks
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default="sentiment,arithmetic,gsm8k")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--seeds", default=None, help="override every task's seeds, e.g. 42,22,52")
    parser.add_argument("--layers", default="10")
    parser.add_argument("--n-train", type=int, default=None, help="override every task's n_train")
    parser.add_argument(
        "--n-rollouts", type=int, default=None, help="override every task's rollouts per prompt"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=None, help="override every task's max_new_tokens"
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (see QUICK)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, output in a temp folder")
    parser.add_argument(
        "--work", default=None, help="cache folder (default benchmarks/results/effect_work[_quick])"
    )
    parser.add_argument("--out", default=None, help="default benchmarks/results/effect")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; 1 is ~9x faster than 2 when other jobs share the cores",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.smoke:
        work = Path(args.work or tempfile.mkdtemp(prefix="roast_tl_effect_smoke_"))
        out = Path(args.out or work / "effect")
    else:
        work = Path(args.work or f"benchmarks/results/effect_work{'_quick' if args.quick else ''}")
        out = Path(args.out or "benchmarks/results/effect")
    model = roast_tl.load_model()
    layers = [int(x) for x in args.layers.split(",")]
    methods = args.methods.split(",")
    all_rows, used, timings, diagnostics = [], {}, {}, {}
    for name in args.tasks.split(","):
        spec = dict(sizes[name])
        if args.seeds:
            spec["seeds"] = [int(x) for x in args.seeds.split(",")]
        for key in ("n_train", "n_rollouts", "max_new_tokens"):
            if getattr(args, key) is not None:
                spec[key] = getattr(args, key)
        used[name] = spec
        task = roast_tl.load_task(name, **spec["load"])
        t0 = time.perf_counter()
        rows = run_sweep(
            model,
            task,
            methods,
            layers=layers,
            out_dir=work / name,
            seeds=spec["seeds"],
            n_train=spec["n_train"],
            n_rollouts=spec["n_rollouts"],
            max_dev=spec["max_dev"],
            max_test=spec["max_test"],
            max_new_tokens=spec.get("max_new_tokens"),
            alphas=spec["alphas"],
            progress=not args.quiet,
        )
        timings[name] = time.perf_counter() - t0
        if any(METHODS[m].needs_rollouts for m in methods):
            diagnostics[name] = task_diagnostics(model, task, spec, layers, work / name)
        all_rows.extend(rows)
        print(markdown_table(summarize(rows)), flush=True)
    table = markdown_table(summarize(all_rows))
    cell_s = sum(r["wall_s"] for r in all_rows if "copied_from_seed" not in r)
    sizes_text = "; ".join(
        f"{t}: {s['n_train']} train x {s['n_rollouts']} rollouts"
        + (f" of <= {s['max_new_tokens']} tokens" if s.get("max_new_tokens") else "")
        + f", {s['max_dev']} dev, {s['max_test']} test, seeds {s['seeds']}"
        for t, s in used.items()
    )
    header = (
        f"Model {model.cfg.model_name}, layers {layers}, resid_post, steer 'last', alpha chosen "
        f"on dev per (method, seed); sizes: {sizes_text}. Compute in cells: {cell_s / 60:.1f} min."
    )
    diag_lines = [diagnostics_line(name, d) for name, d in diagnostics.items()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(
        header
        + "\n\n"
        + table
        + "\n\nDiagnostics (first seed's rollouts):\n"
        + "\n".join(diag_lines)
        + "\n"
    )
    summary = {
        "model": str(model.cfg.model_name),
        "layers": layers,
        "methods": methods,
        "quick": args.quick,
        "smoke": args.smoke,
        "sizes": used,
        "summary": summarize(all_rows),
        "rows": all_rows,
        "wall_s_this_run": time.perf_counter() - start,
        "wall_s_by_task_this_run": timings,
        "compute_s_in_cells": cell_s,
        "diagnostics": diagnostics,
    }
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    print("\n".join(diag_lines))
    print("\n" + header + "\n\n" + table)
    print(f"\nwall time {time.perf_counter() - start:.0f} s; written {out}.md and {out}.json")


if __name__ == "__main__":
    main()
