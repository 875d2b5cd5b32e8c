"""Speed of roast_tl against HF transformers on the embedded model (or `--model PATH`).

Runs every speed measurement and writes one summary (default benchmarks/results/speed.{json,md}):

    sampling.py           rollout sampling tok/s vs HF `generate` (unwrapped and on the bridge)
    steering_overhead.py  steered vs unsteered sampling
    capture.py            `contrast_means` time vs a full forward, and against layer depth
    capture_memory.py     its peak-RSS growth, small vs large run (memory_child.py, fresh processes)
    decode_roofline.py    batch-1 decode tok/s vs the weight-bandwidth bound

    python benchmarks/speed.py --threads 1            # about 10-15 min on 2 cores
    python benchmarks/speed.py --quick --threads 1    # 1-2 min (small sizes, same code paths)
    python benchmarks/speed.py --model ~/models/Qwen3-0.6B --out /tmp/qwen_speed.json
"""

import argparse
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import capture
import capture_memory
import decode_roofline
import sampling
import steering_overhead
import torch
from _harness import load_bridge, load_unwrapped, loadavg, machine, markdown_table, write_results

from roast_tl.sites import model_name

TARGETS = {
    "sampling_vs_hf": 0.9,  # roast_tl sampling tok/s >= 0.9x HF generate, at every batch size
    "steered_vs_unsteered": 0.97,  # steered sampling tok/s >= 0.97x unsteered
    "capture_depth_slack": 1.15,  # capture time rises with depth: each layer <= 1.15x the next
    "capture_first_vs_last": 0.6,  # capture at layer 0 takes < 0.6x the last layer's time
    "memory_growth_mb": 64.0,  # capture's peak-RSS growth, smallest to largest run, < 64 MB
}


@dataclass(frozen=True)
class Sizes:
    batches: tuple[int, ...]  # sampling batch sizes
    new_tokens: int  # sampled tokens per row
    rounds: int  # interleaved rounds of the sampling comparison
    steer_batch: int
    steer_tokens: int
    steer_rounds: int
    capture_rollouts: int  # synthetic rollouts read per capture
    capture_rounds: int
    memory_rollouts: tuple[int, ...]  # capture sizes of the peak-memory runs, small to large
    memory_layer: int  # layer the peak-memory runs read
    decode_steps: int  # timed decode steps per round
    decode_rounds: int


FULL = Sizes(
    batches=(1, 8, 32),
    new_tokens=32,
    rounds=3,
    steer_batch=8,
    steer_tokens=24,
    steer_rounds=5,
    capture_rollouts=64,
    capture_rounds=2,
    memory_rollouts=(100, 1000),
    memory_layer=0,
    decode_steps=16,
    decode_rounds=3,
)
QUICK = Sizes(
    batches=(1, 4),
    new_tokens=4,
    rounds=1,
    steer_batch=4,
    steer_tokens=4,
    steer_rounds=2,
    capture_rollouts=8,
    capture_rounds=1,
    memory_rollouts=(8, 32),
    memory_layer=0,
    decode_steps=4,
    decode_rounds=1,
)

HEADER = ["measurement", "roast_tl", "reference", "ratio", "target"]


def run(model_arg: str | None, sizes: Sizes, threads: int | None) -> dict[str, Any]:
    """Load the bridge and an unwrapped HF copy, run every measurement, return the results."""
    model, hf = load_bridge(model_arg), load_unwrapped(model_arg)
    print("sampling throughput", flush=True)
    generation = sampling.measure(
        model,
        hf,
        batches=sizes.batches,
        new_tokens=sizes.new_tokens,
        rounds=sizes.rounds,
        target=TARGETS["sampling_vs_hf"],
    )
    print("steering overhead", flush=True)
    steering = steering_overhead.measure(
        model,
        batch=sizes.steer_batch,
        new_tokens=sizes.steer_tokens,
        rounds=sizes.steer_rounds,
        target=TARGETS["steered_vs_unsteered"],
    )
    print("activation capture", flush=True)
    activations = capture.measure(
        model,
        n_rollouts=sizes.capture_rollouts,
        rounds=sizes.capture_rounds,
        depth_slack=TARGETS["capture_depth_slack"],
        first_vs_last=TARGETS["capture_first_vs_last"],
    )
    activations |= capture_memory.measure(
        sizes=sizes.memory_rollouts,
        layer=sizes.memory_layer,
        model_arg=model_arg,
        threads=threads,
        max_growth_mb=TARGETS["memory_growth_mb"],
    )
    print("decode roofline", flush=True)
    roofline = decode_roofline.measure(
        model, hf, steps=sizes.decode_steps, rounds=sizes.decode_rounds
    )
    return {
        "model": model_name(model),
        "generation": generation,
        "steering": steering,
        "activations": activations,
        "roofline": roofline,
    }


def markdown(results: dict[str, Any]) -> str:
    m = results["meta"]
    intro = (
        f"Speed on {m['model']} ({m['device']}, {m['torch_threads']} torch threads, "
        f"load average {m['loadavg_start']:.1f} -> {m['loadavg_end']:.1f}); "
        f"{'quick' if m['quick'] else 'full'} run, {m['seconds']:.0f} s."
    )
    rows = [
        *sampling.table_rows(results["generation"]),
        *steering_overhead.table_rows(results["steering"]),
        *capture.table_rows(results["activations"]),
        *capture_memory.table_rows(results["activations"]),
        *decode_roofline.table_rows(results["roofline"]),
    ]
    return intro + "\n\n" + markdown_table(HEADER, rows) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (see QUICK)")
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    parser.add_argument("--model", default=None, help="HF folder or .gguf (default: embedded)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    start, loadavg_start = time.perf_counter(), loadavg()
    sizes = QUICK if args.quick else FULL
    measured = run(args.model, sizes, args.threads)
    results = {
        "meta": {
            "model": measured.pop("model"),
            "model_arg": args.model,
            "quick": args.quick,
            **machine(),
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg(),
            "seconds": time.perf_counter() - start,
            "sizes": asdict(sizes),
            "targets": TARGETS,
        },
        **measured,
    }
    table = markdown(results)
    print(table)
    write_results(Path(args.out), results, table)
    return results


if __name__ == "__main__":
    main()
