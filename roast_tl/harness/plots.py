"""Plots for sweeps and diagnostics (matplotlib, the optional `plots` extra)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('plots need matplotlib: pip install "roast_tl[plots]"') from err
    return plt


def plot_accuracy_vs_alpha(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Dev accuracy vs alpha, one line per method, error bars = std over seeds.

    `rows` are sweep cells: dicts with "method", "dev_by_alpha" ({alpha string: accuracy}) and
    optionally "mode". Methods with no curve (none, few-shot) are left out.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    methods = sorted({r["method"] for r in rows if r["dev_by_alpha"]})
    for method in methods:
        curves = [r["dev_by_alpha"] for r in rows if r["method"] == method]
        alphas = sorted({float(a) for c in curves for a in c})
        values = np.array([[c.get(str(a), np.nan) for a in alphas] for c in curves], dtype=float)
        mode = next((r.get("mode") for r in rows if r["method"] == method), "add")
        label = f"{method} (h + α·M⊙h)" if mode == "multiply" else method
        ax.errorbar(
            alphas,
            np.nanmean(values, 0),
            yerr=np.nanstd(values, 0),
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("alpha")
    ax.set_ylabel("dev accuracy")
    ax.legend(fontsize=8)
    ax.set_title("Dev accuracy vs alpha (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_magnitude_consistency(magnitudes: Any, cosines: Any, path: str | Path, r: float) -> Path:
    """Scatter of per-prompt difference magnitude vs cosine to the consensus direction."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(np.asarray(magnitudes), np.asarray(cosines), s=14, alpha=0.7)
    ax.set_xlabel("‖μ_g‖ (per-prompt difference magnitude)")
    ax.set_ylabel("cos(μ_g, consensus)")
    ax.set_title(f"Magnitude vs consistency (Pearson r = {r:.2f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_mask_energy(curve: Sequence[dict[str, float | int]], path: str | Path) -> Path:
    """Retained energy and cosine of top-K masks vs K (CSS keeps both at 1)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ks = [row["k"] for row in curve]
    ax.plot(
        ks, [row["retained_energy"] for row in curve], marker="o", label="top-K retained energy"
    )
    ax.plot(ks, [row["cosine"] for row in curve], marker="s", label="top-K cos(M⊙μ, μ)")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="CSS (energy 1, cosine 1)")
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
