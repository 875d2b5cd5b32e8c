"""Shared benchmark machinery: interleaved timing, median ratios, peak RSS, models, output.

Compared variants run interleaved (A, B, A, B, ...) and a ratio is the median of each round's
ratio, so drift in a shared machine's load hits both sides alike. Peak memory is measured in a
fresh process (`run_script`) after resetting the kernel's peak-RSS mark (`peak_rss_growth`).
"""

import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

import roast_tl
from roast_tl.models import load_hf

# --- timing ---------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Return (wall seconds, result) of one call."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def interleaved(variants: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Run each variant once per round, in order (A, B, A, B, ...); return each one's times."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(timed(fn)[0])
    return times


def median_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """The median over rounds of numerator[i] / denominator[i] (same-round pairs only)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


# --- peak memory ----------------------------------------------------------------------------


def proc_status_mb(field: str) -> float | None:
    """A VmRSS/VmHWM line of /proc/self/status in MB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where unsupported.

    `ru_maxrss` is a lifetime peak, so the model load's transient peak would hide any growth in
    the step measured after it. Writing 5 to /proc/self/clear_refs (Linux >= 4.0) restarts it.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return proc_status_mb("VmHWM") is not None


def lifetime_peak_mb() -> float:
    """The process's lifetime peak RSS in MB (`ru_maxrss`: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024


def peak_rss_growth(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run `fn` once; return how far it raised this process's peak RSS above the RSS before it.

    The baseline is the peak mark just after its reset (the RSS then). The kernel's RSS counters
    are approximate, so a flat run can read a fraction of a MB below zero. Where the mark cannot
    be reset, the lifetime peak stands in (`measure` says so).
    """
    gc.collect()
    resettable = reset_peak_rss()

    def peak() -> float:
        value = proc_status_mb("VmHWM") if resettable else None
        return value if value is not None else lifetime_peak_mb()

    before = peak()  # right after a reset, the mark is the current RSS
    seconds, _ = timed(fn)
    after = peak()
    return {
        "measure": "VmHWM after reset" if resettable else "ru_maxrss (lifetime)",
        "rss_before_mb": before,
        "peak_rss_mb": after,
        "delta_mb": after - before,
        "seconds": seconds,
    }


def run_script(script: Path, args: Sequence[str]) -> dict[str, Any]:
    """Run a benchmark script in a fresh Python process; return the JSON on its last stdout line."""
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def model_args(model_arg: str | None, threads: int | None) -> list[str]:
    """The `--model` / `--threads` flags that give a child process the parent's settings."""
    flags = ["--model", model_arg] if model_arg else []
    return flags + (["--threads", str(threads)] if threads else [])


# --- models ---------------------------------------------------------------------------------


def load_bridge(model_arg: str | None) -> Any:
    """The TransformerBridge roast_tl runs on (`roast_tl.load_model`; None: the embedded model)."""
    return roast_tl.load_model(model_arg)


def load_unwrapped(model_arg: str | None) -> Any:
    """A second copy of the same weights as a plain HF model that no bridge ever wrapped."""
    hf_model, _ = load_hf(model_arg)
    return hf_model.eval()


# --- output ---------------------------------------------------------------------------------


def loadavg() -> float:
    """The 1-minute load average (0.0 where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def machine() -> dict[str, Any]:
    """Where the run happens: CPU, cores, torch version and threads."""
    return {
        "device": f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows of cells as a Markdown table.

    >>> print(markdown_table(["a", "b"], [[1, "x"]]))
    | a | b |
    |---|---|
    | 1 | x |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out: Path, results: Mapping[str, Any], markdown: str) -> None:
    """Write `out` (JSON) and the same path with a .md suffix (the Markdown summary)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
