"""The headline effect: does ROAST beat no steering, few-shot, CAA and SADI on held-out prompts?

On the embedded SmolLM2-135M-Instruct, per task: each seed draws its own training prompts, samples
rollouts once, builds every method, tunes alpha on the dev split (never test) and evaluates the
test split. Prints a Markdown table and writes benchmarks/results/effect.{md,json}. Resumable:
finished (task, method, seed) cells and rollouts are cached under --work.

    python benchmarks/effect.py                       # all tasks, 3 seeds (about 1-2 h on 2 cores)
    python benchmarks/effect.py --tasks sentiment     # one task
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any

import roast_tl
from roast_tl.sweep import markdown_table, run_sweep, summarize

METHODS = ["none", "few_shot", "caa", "sadi", "roast_plain", "roast"]
# Sizes per task, chosen to fit 2 CPU cores: GSM8K generation (160 tokens) is ~20x the others.
TASKS: dict[str, dict[str, Any]] = {
    "sentiment": {"load": {}, "n_train": 48, "n_rollouts": 8, "n_dev": 24, "n_test": 100,
                  "alphas": {"add": [4.0, 8.0, 16.0, 32.0], "multiply": [0.1, 0.5, 1.0, 2.0]}},
    "arithmetic": {"load": {"digits": 1}, "n_train": 48, "n_rollouts": 8, "n_dev": 24, "n_test": 60,
                   "alphas": {"add": [2.0, 4.0, 8.0, 16.0], "multiply": [0.1, 0.5, 1.0, 2.0]}},
    "gsm8k": {"load": {"limit": 600, "n_dev": 12, "n_test": 40}, "n_train": 12, "n_rollouts": 4,
              "n_dev": 12, "n_test": 40, "max_new_tokens": 160,
              "alphas": {"add": [4.0, 16.0], "multiply": [0.5, 2.0]}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="sentiment,arithmetic,gsm8k")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="42,22,52")
    parser.add_argument("--layers", default="10")
    parser.add_argument("--work", default="benchmarks/results/effect_work")
    parser.add_argument("--out", default="benchmarks/results/effect")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    model = roast_tl.load_model()
    layers = [int(x) for x in args.layers.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    methods = args.methods.split(",")
    all_rows = []
    for name in args.tasks.split(","):
        spec = TASKS[name]
        task = roast_tl.load_task(name, **spec["load"])
        rows = run_sweep(
            model, task, methods, layers=layers, out_dir=Path(args.work) / name, seeds=seeds,
            n_train=spec["n_train"], n_rollouts=spec["n_rollouts"], n_dev=spec["n_dev"],
            n_test=spec["n_test"], max_new_tokens=spec.get("max_new_tokens"),
            alphas=spec["alphas"], progress=not args.quiet,
        )
        all_rows.extend(rows)
        print(markdown_table(summarize(rows)), flush=True)
    table = markdown_table(summarize(all_rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table + "\n")
    out.with_suffix(".json").write_text(json.dumps({
        "model": str(model.cfg.model_name), "layers": layers, "seeds": seeds, "methods": methods,
        "sizes": {t: TASKS[t] for t in args.tasks.split(",")}, "summary": summarize(all_rows),
        "rows": all_rows, "wall_s": time.perf_counter() - start}, indent=1))
    print("\n" + table)
    print(f"\nwall time {time.perf_counter() - start:.0f} s; written {out}.md and {out}.json")


if __name__ == "__main__":
    main()
