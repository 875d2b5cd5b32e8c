"""The demo's estimate step end to end, now vs before this tree's sampling changes.

Each run is a fresh process (`demo_estimate_child.py`) whose `roast_tl` is this tree's, or an
older checkout's (`before_tree`: e.g. `git archive <commit> roast_tl | tar -x -C /tmp/before`),
interleaved (before, now, before, now, ...). Without `before_tree` the "before" figure is the
one measured earlier (68-93 s on 2 cores, the issue's), recorded as such.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _harness import median_ratio, model_args

CHILD = Path(__file__).with_name("demo_estimate_child.py")
ROOT = Path(__file__).resolve().parents[1]
EARLIER_S = (68.0, 93.0)  # the estimate step as measured before these changes (issue 12)


def run_child(tree: Path, args: list[str]) -> dict[str, Any]:
    """One estimate run with `tree`'s roast_tl first on the path; the child's JSON."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, str(CHILD), *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"demo estimate ({tree}) failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(
    *,
    model_arg: str | None,
    threads: int | None,
    n_train: int,
    rounds: int,
    before_tree: str | None,
    target: float,
) -> dict[str, Any]:
    """Seconds of each run, medians, and `speedup_vs_before` (before / now)."""
    args = [*model_args(model_arg, threads), "--n-train", str(n_train)]
    now: list[dict[str, Any]] = []
    before: list[dict[str, Any]] = []
    for _ in range(rounds):
        if before_tree:
            before.append(run_child(Path(before_tree), args))
        now.append(run_child(ROOT, args))
    now_s = [r["seconds"] for r in now]
    result: dict[str, Any] = {
        "n_train": n_train,
        "n_rollouts": 8,
        "rounds": rounds,
        "now_s": now_s,
        "now_median_s": statistics.median(now_s),
        "rollout_accuracy_now": [r["rollout_accuracy"] for r in now],
        "target": target,
    }
    if before:
        before_s = [r["seconds"] for r in before]
        result |= {
            "before": f"measured in this run ({before_tree})",
            "before_s": before_s,
            "before_median_s": statistics.median(before_s),
            "rollout_accuracy_before": [r["rollout_accuracy"] for r in before],
            "speedup_vs_before": median_ratio(before_s, now_s),
        }
    else:
        low, high = EARLIER_S
        result |= {
            "before": f"the earlier measurement, {low:g}-{high:g} s (not rerun)",
            "before_median_s": (low + high) / 2,
            "speedup_vs_before": (low + high) / 2 / statistics.median(now_s),
        }
    result["met"] = result["speedup_vs_before"] >= target
    print(f"  demo estimate: {result['speedup_vs_before']:.2f}x before", flush=True)
    return result


def table_rows(r: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"demo estimate step ({r['n_train']} prompts x 8 rollouts), s",
            f"{r['now_median_s']:.1f}",
            f"before {r['before_median_s']:.1f} ({r['before']})",
            f"{r['speedup_vs_before']:.2f}x faster",
            f">= {r['target']:g}x: {'met' if r['met'] else 'missed'}",
        ]
    ]
