"""Speed of roast_tl against HF transformers on the embedded model (or `--model PATH`).

Runs every speed measurement and writes one summary (default benchmarks/results/speed.{json,md}):

    rollout_speed.py      ROAST rollouts (sentiment, GSM8K) vs HF generate(num_return_sequences=8)
    sampling.py           rollout sampling tok/s vs HF `generate` (unwrapped and on the bridge)
    steering_overhead.py  steered vs unsteered sampling
    demo_estimate.py      the demo's estimate step end to end, now vs before (fresh processes)
    capture.py            `contrast_means` time vs a full forward, and against layer depth
    capture_memory.py     its peak-RSS growth, small vs large run (memory_child.py, fresh processes)
    decode_roofline.py    batch-1 decode tok/s vs the weight-bandwidth bound

    python benchmarks/speed.py --threads 1            # about 10-15 min on 2 cores
    python benchmarks/speed.py --quick --threads 1    # 1-2 min (small sizes, same code paths)
    python benchmarks/speed.py --model ~/models/Qwen3-0.6B --out /tmp/qwen_speed.json
    python benchmarks/speed.py --threads 1 --skip generation,capture --gsm8k-rounds 1 \
        --before-tree /tmp/before     # the README's run (before: `git archive` of an old commit)
"""

import argparse
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import capture
import capture_memory
import decode_roofline
import demo_estimate
import rollout_speed
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
    "sentiment_vs_hf": 1.5,  # sentiment rollouts >= 1.5x HF generate(num_return_sequences=8)
    "gsm8k_vs_hf": 1.2,  # GSM8K rollouts >= 1.2x HF generate(num_return_sequences=8)
    "decode_fraction_of_roofline": 0.6,  # batch-1 greedy decode >= 0.6 of the bandwidth bound
    "demo_estimate_speedup": 2.0,  # the demo's estimate step >= 2x faster than before
}
SECTIONS = ("rollouts", "generation", "steering", "capture", "decode", "demo_estimate")


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
    rollout_rows: tuple[int, ...]  # rows (prompts x 8) of the rollout workloads
    sentiment_tokens: int
    gsm8k_tokens: int
    sentiment_rounds: int
    gsm8k_rounds: int
    demo_n_train: int
    demo_rounds: int


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
    rollout_rows=(8, 32, 64),
    sentiment_tokens=8,
    gsm8k_tokens=256,
    sentiment_rounds=3,
    gsm8k_rounds=2,
    demo_n_train=64,
    demo_rounds=2,
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
    rollout_rows=(8, 16),
    sentiment_tokens=2,
    gsm8k_tokens=3,
    sentiment_rounds=1,
    gsm8k_rounds=1,
    demo_n_train=3,
    demo_rounds=1,
)

HEADER = ["measurement", "roast_tl", "reference", "ratio", "target"]


def run(
    model_arg: str | None,
    sizes: Sizes,
    threads: int | None,
    skip: set[str],
    before_tree: str | None,
) -> dict[str, Any]:
    """Load the bridge and an unwrapped HF copy, run every measurement not in `skip`."""
    model, hf = load_bridge(model_arg), load_unwrapped(model_arg)
    out: dict[str, Any] = {"model": model_name(model)}
    if "rollouts" not in skip:
        print("rollout workloads", flush=True)
        out["rollouts"] = rollout_speed.measure(
            model,
            hf,
            rows=sizes.rollout_rows,
            new_tokens={"sentiment": sizes.sentiment_tokens, "gsm8k": sizes.gsm8k_tokens},
            rounds={"sentiment": sizes.sentiment_rounds, "gsm8k": sizes.gsm8k_rounds},
        )
    if "generation" not in skip:
        print("sampling throughput", flush=True)
        out["generation"] = sampling.measure(
            model,
            hf,
            batches=sizes.batches,
            new_tokens=sizes.new_tokens,
            rounds=sizes.rounds,
            target=TARGETS["sampling_vs_hf"],
        )
    if "steering" not in skip:
        print("steering overhead", flush=True)
        out["steering"] = steering_overhead.measure(
            model,
            batch=sizes.steer_batch,
            new_tokens=sizes.steer_tokens,
            rounds=sizes.steer_rounds,
            target=TARGETS["steered_vs_unsteered"],
        )
    if "capture" not in skip:
        print("activation capture", flush=True)
        activations = capture.measure(
            model,
            n_rollouts=sizes.capture_rollouts,
            rounds=sizes.capture_rounds,
            depth_slack=TARGETS["capture_depth_slack"],
            first_vs_last=TARGETS["capture_first_vs_last"],
        )
        out["activations"] = activations | capture_memory.measure(
            sizes=sizes.memory_rollouts,
            layer=sizes.memory_layer,
            model_arg=model_arg,
            threads=threads,
            max_growth_mb=TARGETS["memory_growth_mb"],
        )
    if "decode" not in skip:
        print("decode roofline", flush=True)
        roofline = decode_roofline.measure(
            model, hf, steps=sizes.decode_steps, rounds=sizes.decode_rounds
        )
        out["roofline"] = roofline
        fraction = roofline["fraction_of_bound_roast_tl"]
        out["decode"] = {
            "tok_s": roofline["decode_tok_s_roast_tl"],
            "bound_tok_s": roofline["bound_tok_s"],
            "fraction_of_roofline": fraction,
            "target": TARGETS["decode_fraction_of_roofline"],
            "met": fraction >= TARGETS["decode_fraction_of_roofline"],
        }
    if "demo_estimate" not in skip:
        print("demo estimate step", flush=True)
        out["demo_estimate"] = demo_estimate.measure(
            model_arg=model_arg,
            threads=threads,
            n_train=sizes.demo_n_train,
            rounds=sizes.demo_rounds,
            before_tree=before_tree,
            target=TARGETS["demo_estimate_speedup"],
        )
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["meta"]
    intro = (
        f"Speed on {m['model']} ({m['device']}, {m['torch_threads']} torch threads, "
        f"load average {m['loadavg_start']:.1f} -> {m['loadavg_end']:.1f}); "
        f"{'quick' if m['quick'] else 'full'} run, {m['seconds']:.0f} s."
    )
    if m["skipped"]:
        intro += f" Skipped: {', '.join(m['skipped'])}."
    rows = []
    if "rollouts" in results:
        rows += rollout_speed.table_rows(results["rollouts"], TARGETS)
    if "generation" in results:
        rows += sampling.table_rows(results["generation"])
    if "steering" in results:
        rows += steering_overhead.table_rows(results["steering"])
    if "activations" in results:
        rows += capture.table_rows(results["activations"])
        rows += capture_memory.table_rows(results["activations"])
    if "roofline" in results:
        rows += decode_roofline.table_rows(results["roofline"])
    if "demo_estimate" in results:
        rows += demo_estimate.table_rows(results["demo_estimate"])
    return intro + "\n\n" + markdown_table(HEADER, rows) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (see QUICK)")
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    parser.add_argument("--model", default=None, help="HF folder or .gguf (default: embedded)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--skip", default="", help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument(
        "--gsm8k-new-tokens", type=int, default=None, help="cap the GSM8K workload's new tokens"
    )
    parser.add_argument(
        "--gsm8k-rounds", type=int, default=None, help="interleaved rounds of the GSM8K workload"
    )
    parser.add_argument(
        "--before-tree", default=None, help="a folder holding an older roast_tl/ (demo estimate)"
    )
    args = parser.parse_args(argv)
    skip = {name for name in args.skip.split(",") if name}
    if skip - set(SECTIONS):
        parser.error(f"unknown --skip sections {sorted(skip - set(SECTIONS))}; known: {SECTIONS}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    start, loadavg_start = time.perf_counter(), loadavg()
    sizes = QUICK if args.quick else FULL
    if args.gsm8k_new_tokens:
        sizes = replace(sizes, gsm8k_tokens=args.gsm8k_new_tokens)
    if args.gsm8k_rounds:
        sizes = replace(sizes, gsm8k_rounds=args.gsm8k_rounds)
    measured = run(args.model, sizes, args.threads, skip, args.before_tree)
    results = {
        "meta": {
            "model": measured.pop("model"),
            "model_arg": args.model,
            "quick": args.quick,
            "skipped": sorted(skip),
            "gsm8k_new_tokens_capped": args.gsm8k_new_tokens is not None,
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
