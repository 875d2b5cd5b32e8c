"""One peak-memory measurement in a fresh process (run by capture_memory.py; prints one JSON line).

Loads the model, warms the capture up on a few sequences, resets the kernel's peak-RSS mark, and
captures `--rollouts` synthetic rollouts at `--layer`, either with `contrast_means` or with the
naive control that keeps every token's activation (it must grow, or the measurement sees nothing).

    python benchmarks/memory_child.py --rollouts 1000 --mode keep_all --threads 1
"""

import argparse
import json
from typing import Any

import torch
from _harness import load_bridge, peak_rss_growth
from _workload import hf_forward, padded_batches, synthetic_contrasts

from roast_tl.activations import contrast_means
from roast_tl.pairs import ContrastSet
from roast_tl.sites import hook_name

MODES = ("contrast_means", "keep_all")


class StopForward(Exception):
    """Raised by the control's hook: nothing after the read layer is needed."""


def keep_every_activation(
    model: Any, contrasts: ContrastSet, name: str, batch_size: int = 16
) -> list[torch.Tensor]:
    """The capture contrast_means avoids: keep every token's activation at `name` (stopping the
    forward there, as contrast_means does), so memory grows with the rollouts."""
    kept: list[torch.Tensor] = []

    def keep(activation: torch.Tensor, hook: Any) -> None:
        kept.append(activation.detach().clone())
        raise StopForward

    with torch.inference_mode(), model.hooks(fwd_hooks=[(name, keep)]):
        for ids, mask in padded_batches(contrasts, model.tokenizer, batch_size):
            try:
                hf_forward(model.original_model, ids, mask)
            except StopForward:
                pass
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="contrast_means")
    parser.add_argument("--layer", type=int, default=0)
    parser.add_argument("--model", default=None, help="HF folder or .gguf (default: embedded)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_bridge(args.model)
    name = hook_name("resid_post", args.layer)

    def capture(contrasts: ContrastSet) -> Any:
        if args.mode == "keep_all":
            return keep_every_activation(model, contrasts, name)
        return contrast_means(model, contrasts, [name], progress=False)

    contrasts = synthetic_contrasts(model, args.rollouts)
    # Warm up on a few sequences, so one-time allocations are not counted as growth.
    capture(synthetic_contrasts(model, 16, seed=1))
    growth = peak_rss_growth(lambda: capture(contrasts))
    measured = {"n_rollouts": args.rollouts, "layer": args.layer, "mode": args.mode}
    print(json.dumps({**measured, **growth}))


if __name__ == "__main__":
    main()
