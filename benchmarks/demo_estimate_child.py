"""One run of the demo's estimate step in a fresh process; prints JSON on its last line.

`roast_tl.estimate` as `roast-tl demo` calls it (sentiment, 64 train prompts x 8 rollouts,
layer 10 resid_post, max_norm, batch 32, seed 0; rollouts to a fresh temporary file, so nothing
is reused). The benchmark runs it with PYTHONPATH pointing at this tree, and at an older
checkout for the "before" figure; it uses only public names, so both can run it.

    python benchmarks/demo_estimate_child.py [--model PATH] [--threads N] [--n-train 64]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import roast_tl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=64)
    parser.add_argument("--layer", type=int, default=10)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = roast_tl.load_model(args.model)
    task = roast_tl.load_task("sentiment")
    layer = min(args.layer, model.cfg.n_layers - 1)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        vector = roast_tl.estimate(
            model,
            task,
            items=task.items("train")[: args.n_train],
            layers=[layer],
            n_rollouts=8,
            seed=0,
            batch_size=32,
            rollouts_path=Path(folder) / "rollouts.jsonl",
            progress=False,
        )
        seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rollout_accuracy": vector.metadata.get("rollout_accuracy"),
                "roast_tl_file": roast_tl.__file__,
            }
        )
    )


if __name__ == "__main__":
    main()
