"""Choose roast_tl's defaults by measurement: steering positions, additive vs multiplicative, site.

Estimates ROAST vectors once from one set of rollouts (sentiment train prompts) and reports dev
accuracy for each variant over an alpha grid. Dev split only: the test split is never touched.

    python benchmarks/variants.py [--n-train 64] [--out benchmarks/results/variants.json]
"""

import argparse
import json
import time
from pathlib import Path

import roast_tl
from roast_tl.evaluate import evaluate
from roast_tl.rollouts import sample_rollouts

ADD_ALPHAS = [2.0, 4.0, 8.0, 16.0, 32.0]
MULTIPLY_ALPHAS = [0.05, 0.1, 0.2, 0.5, 1.0]
MLP_ALPHAS = [0.5, 1.0, 2.0, 4.0, 8.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=64)
    parser.add_argument("--n-rollouts", type=int, default=8)
    parser.add_argument("--layer", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/variants.json")
    parser.add_argument("--rollouts", default="benchmarks/results/variants_rollouts.jsonl")
    args = parser.parse_args()

    start = time.perf_counter()
    model = roast_tl.load_model()
    task = roast_tl.load_task("sentiment")
    items = task.items("train")[: args.n_train]
    rollouts = sample_rollouts(model, task, items, n_rollouts=args.n_rollouts, seed=args.seed,
                               path=args.rollouts)
    resid = roast_tl.estimate_from_rollouts(model, task, rollouts, items=items, layers=[args.layer])
    mlp = roast_tl.estimate_from_rollouts(model, task, rollouts, items=items, layers=[args.layer],
                                          hook_site="mlp_post")
    dev = task.items("dev")
    base = evaluate(model, task, items=dev, split="dev", progress=False).accuracy
    variants = [
        ("resid_post", "add", "last", resid, ADD_ALPHAS),
        ("resid_post", "add", "prefill", resid, ADD_ALPHAS),
        ("resid_post", "multiply", "last", resid, MULTIPLY_ALPHAS),
        ("mlp_post", "add", "last", mlp, MLP_ALPHAS),
        ("mlp_post", "add", "prefill", mlp, MLP_ALPHAS),
    ]
    rows = []
    for site, mode, positions, vector, alphas in variants:
        accs = {}
        for alpha in alphas:
            accs[alpha] = evaluate(model, task, vector, alpha, items=dev, split="dev", mode=mode,
                                   positions=positions, progress=False).accuracy
        best = max(accs, key=lambda a: (accs[a], -a))
        rows.append({"site": site, "mode": mode, "positions": positions, "by_alpha": accs,
                     "best_alpha": best, "best_dev_accuracy": accs[best]})
        print(f"{site:10} {mode:8} {positions:8} " + " ".join(f"{a:g}:{v:.3f}" for a, v in accs.items()),
              flush=True)
    table = ["| site | mode | positions | best alpha | dev accuracy (unsteered "
             f"{base:.3f}) |", "|---|---|---|---|---|"]
    table += [f"| {r['site']} | {r['mode']} | {r['positions']} | {r['best_alpha']:g} | "
              f"{r['best_dev_accuracy']:.3f} |" for r in rows]
    print("\n".join(table))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"layer": args.layer, "n_train": args.n_train, "n_dev": len(dev),
                               "unsteered_dev_accuracy": base, "variants": rows,
                               "table": "\n".join(table),
                               "wall_s": time.perf_counter() - start}, indent=2))


if __name__ == "__main__":
    main()
