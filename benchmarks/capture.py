"""Activation capture time: `contrast_means` vs a plain full forward, and its time against depth.

The same synthetic contrast set (real chat prompts, random responses of 8-96 tokens) is read at
the layer roast_tl defaults to and at four depths; the full forward runs the same sequences in
the same batches. Capture should stop after the last needed block, so its time grows with depth.
"""

import statistics
from collections.abc import Callable
from typing import Any

import torch
from _harness import interleaved, median_ratio
from _workload import hf_forward, padded_batches, sequences, synthetic_contrasts

from roast_tl.activations import contrast_means
from roast_tl.pairs import ContrastSet
from roast_tl.sites import hook_name

BATCH_SIZE = 16


def full_forward(model: Any, contrasts: ContrastSet, batch_size: int = BATCH_SIZE) -> None:
    """A plain, hook-free full forward of the contrast set's sequences (the reference)."""
    with torch.inference_mode():
        for ids, mask in padded_batches(contrasts, model.tokenizer, batch_size):
            hf_forward(model.original_model, ids, mask)


def measure(
    model: Any, *, n_rollouts: int, rounds: int, depth_slack: float, first_vs_last: float
) -> dict[str, Any]:
    """Seconds per 1,000 rollouts, for the default layer and against depth.

    `stops_at_last_layer` when no layer is slower than `depth_slack` x the next deeper one and
    layer 0 takes under `first_vs_last` x the last layer's time.
    """
    contrasts = synthetic_contrasts(model, n_rollouts)
    flat = sequences(contrasts)
    tokens = sum(len(p) + len(r) for p, r in flat)
    n_layers = model.cfg.n_layers
    layers = sorted({0, n_layers // 3, (2 * n_layers) // 3, n_layers - 1})
    default_layer = n_layers // 3

    def capture(layer: int) -> Callable[[], Any]:
        names = [hook_name("resid_post", layer)]
        return lambda: contrast_means(
            model, contrasts, names, batch_size=BATCH_SIZE, progress=False
        )

    runs: dict[str, Callable[[], Any]] = {"full_forward": lambda: full_forward(model, contrasts)}
    runs |= {f"layer_{layer}": capture(layer) for layer in layers}
    times = interleaved(runs, rounds)
    per_1000 = {k: statistics.median(v) * 1000 / len(flat) for k, v in times.items()}
    depth = [
        {
            "layer": layer,
            "s_per_1000": per_1000[f"layer_{layer}"],
            "vs_full_forward": median_ratio(times[f"layer_{layer}"], times["full_forward"]),
        }
        for layer in layers
    ]
    rises = all(
        a["s_per_1000"] <= b["s_per_1000"] * depth_slack
        for a, b in zip(depth, depth[1:], strict=False)
    )
    first_cheaper = depth[0]["s_per_1000"] < first_vs_last * depth[-1]["s_per_1000"]
    print(f"  capture, layer {default_layer}: {per_1000[f'layer_{default_layer}']:.1f} s/1000")
    return {
        "n_rollouts": len(flat),
        "mean_tokens_per_rollout": tokens / len(flat),
        "batch_size": BATCH_SIZE,
        "rounds": rounds,
        "layer": default_layer,
        "contrast_means_s_per_1000": per_1000[f"layer_{default_layer}"],
        "full_forward_s_per_1000": per_1000["full_forward"],
        "ratio_vs_full_forward": median_ratio(
            times[f"layer_{default_layer}"], times["full_forward"]
        ),
        "depth": depth,
        "stops_at_last_layer": rises and first_cheaper,
    }


def table_rows(a: dict[str, Any]) -> list[list[str]]:
    rows = [
        [
            f"contrast_means, layer {a['layer']}, s per 1,000 rollouts "
            f"({a['mean_tokens_per_rollout']:.0f} tok each)",
            f"{a['contrast_means_s_per_1000']:.1f}",
            f"full forward {a['full_forward_s_per_1000']:.1f}",
            f"{a['ratio_vs_full_forward']:.2f}x time",
            f"stops early: {'yes' if a['stops_at_last_layer'] else 'NO'}",
        ]
    ]
    rows += [
        [
            f"contrast_means, layer {d['layer']}, s per 1,000",
            f"{d['s_per_1000']:.1f}",
            "full forward",
            f"{d['vs_full_forward']:.2f}x time",
            "",
        ]
        for d in a["depth"]
    ]
    return rows
