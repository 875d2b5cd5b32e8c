"""Peak memory of activation capture: flat from a small to a large number of rollouts?

Each (size, mode) runs in a fresh process (memory_child.py), so earlier allocations cannot hide
growth; the keep-every-activation control shows the measurement can see growth at all. Two
children run at a time: peak RSS is per process, so they share only wall time.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _harness import model_args, run_script

CHILD = Path(__file__).with_name("memory_child.py")
PARALLEL = 2  # children at a time: each process's peak RSS is its own, so only their time shares


def child(
    n_rollouts: int, mode: str, layer: int, model_arg: str | None, threads: int | None
) -> dict[str, Any]:
    """One memory_child.py run: its JSON result."""
    args = ["--rollouts", str(n_rollouts), "--mode", mode, "--layer", str(layer)]
    return run_script(CHILD, [*args, *model_args(model_arg, threads)])


def measure(
    *,
    sizes: Sequence[int],
    layer: int,
    model_arg: str | None,
    threads: int | None,
    max_growth_mb: float,
) -> dict[str, Any]:
    """`memory_flat` when contrast_means grows less than `max_growth_mb` from the first size
    to the last (its peak-RSS growth over the model's resting RSS, each in a fresh process)."""
    runs = [(mode, n) for mode in ("contrast_means", "keep_all") for n in sizes]
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        done = list(pool.map(lambda run: child(run[1], run[0], layer, model_arg, threads), runs))
    memory, control = done[: len(sizes)], done[len(sizes) :]
    growth = memory[-1]["delta_mb"] - memory[0]["delta_mb"]
    print(f"  capture memory: {growth:.0f} MB growth", flush=True)
    return {
        "memory": memory,
        "memory_growth_mb": growth,
        "memory_flat": growth < max_growth_mb,
        "memory_control_keep_all": control,
        "memory_control_growth_mb": control[-1]["delta_mb"] - control[0]["delta_mb"],
    }


def table_rows(a: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"contrast_means peak RSS growth, {mem['n_rollouts']} rollouts, MB ({mem['measure']})",
            f"{mem['delta_mb']:.0f}",
            f"keep-every-activation control {ctl['delta_mb']:.0f}",
            "",
            f"flat: {'yes' if a['memory_flat'] else 'NO'}",
        ]
        for mem, ctl in zip(a["memory"], a["memory_control_keep_all"], strict=True)
    ]
