"""Choose roast_tl's defaults by measurement: steering positions, additive vs multiplicative, site.

Estimates ROAST vectors once from one set of rollouts (sentiment train prompts) and reports dev
accuracy for each variant over an alpha grid, alpha picked by `pick_alpha` (the sweep's rule).
Dev split only: the test split is never touched. The rollouts are cached (gitignored) so a rerun
skips the sampling.

    python benchmarks/variants.py [--n-train 64] [--out benchmarks/results/variants.json]
    python benchmarks/variants.py --n-train 4 --n-rollouts 2 --max-dev 4 --out /tmp/v.json  # smoke
"""

import argparse
import json
import time
from pathlib import Path

import torch

import roast_tl
from roast_tl.harness.baselines import SteeringSetup
from roast_tl.harness.sweep import tune_alpha
from roast_tl.rollouts import sample_rollouts

ADD_ALPHAS = [2.0, 4.0, 8.0, 16.0, 32.0]
MULTIPLY_ALPHAS = [0.05, 0.1, 0.2, 0.5, 1.0]
MLP_ALPHAS = [0.5, 1.0, 2.0, 4.0, 8.0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-train", type=int, default=64)
    parser.add_argument("--n-rollouts", type=int, default=8)
    parser.add_argument("--max-dev", type=int, default=None, help="cap the dev split (default all)")
    parser.add_argument("--layer", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/variants.json")
    parser.add_argument(
        "--rollouts-path",
        default=None,
        help="rollout cache (default: <out stem>_rollouts.jsonl next to --out)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    rollouts_path = args.rollouts_path or out.with_name(f"{out.stem}_rollouts.jsonl")

    start = time.perf_counter()
    model = roast_tl.load_model()
    task = roast_tl.load_task("sentiment")
    items = task.items("train")[: args.n_train]
    rollouts = sample_rollouts(
        model,
        task,
        items,
        n_rollouts=args.n_rollouts,
        seed=args.seed,
        rollouts_path=rollouts_path,
    )
    layers = [args.layer]
    resid = roast_tl.estimate_from_rollouts(model, task, rollouts, items=items, layers=layers)
    mlp = roast_tl.estimate_from_rollouts(
        model, task, rollouts, items=items, layers=layers, site="mlp_post"
    )
    dev = task.items("dev")[: args.max_dev]
    base = roast_tl.evaluate(model, task, items=dev, progress=False).accuracy
    variants = [
        ("resid_post", "add", "last", resid, ADD_ALPHAS),
        ("resid_post", "add", "prefill", resid, ADD_ALPHAS),
        ("resid_post", "multiply", "last", resid, MULTIPLY_ALPHAS),
        ("mlp_post", "add", "last", mlp, MLP_ALPHAS),
        ("mlp_post", "add", "prefill", mlp, MLP_ALPHAS),
    ]
    rows = []
    for site, mode, positions, vector, alphas in variants:
        setup = SteeringSetup("roast", vector, mode=mode, positions=positions)
        best, accs = tune_alpha(model, task, setup, alphas, dev)
        rows.append(
            {
                "site": site,
                "mode": mode,
                "positions": positions,
                "by_alpha": accs,
                "best_alpha": best,
                "best_dev_accuracy": accs[best],
            }
        )
        curve = " ".join(f"{a:g}:{v:.3f}" for a, v in accs.items())
        print(f"{site:10} {mode:8} {positions:8} {curve}", flush=True)
    table = [
        f"| site | mode | positions | best alpha | dev accuracy (unsteered {base:.3f}) |",
        "|---|---|---|---|---|",
    ]
    table += [
        f"| {r['site']} | {r['mode']} | {r['positions']} | {r['best_alpha']:g} | "
        f"{r['best_dev_accuracy']:.3f} |"
        for r in rows
    ]
    print("\n".join(table))
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "layer": args.layer,
        "n_train": args.n_train,
        "n_dev": len(dev),
        "unsteered_dev_accuracy": base,
        "variants": rows,
        "table": "\n".join(table),
        "wall_s": time.perf_counter() - start,
    }
    out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
