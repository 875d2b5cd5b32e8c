"""Plots: each writes a PNG of the size its figure asks for, and says how to get matplotlib."""

import struct
import sys

import pytest
import torch

from roast_tl.diagnostics import magnitude_consistency, mask_energy_curve
from roast_tl.harness.plots import (
    plot_accuracy_vs_alpha,
    plot_magnitude_consistency,
    plot_mask_energy,
)

pytest.importorskip("matplotlib")


def png_size(path):
    """(width, height) from a PNG's signature and IHDR chunk; fails on anything else."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_diagnostic_plots(tmp_path):
    magnitudes, cosines, r = magnitude_consistency(
        torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    )
    scatter = plot_magnitude_consistency(magnitudes, cosines, tmp_path / "scatter.png", r)
    assert scatter == tmp_path / "scatter.png"
    assert png_size(scatter) == (550, 440)  # 5 x 4 inches at 110 dpi
    curve = mask_energy_curve(torch.tensor([1.0, -2.0, 2.0, 4.0]), [1, 2, 4])
    assert png_size(plot_mask_energy(curve, tmp_path / "energy.png")) == (605, 440)


def test_accuracy_vs_alpha_plot(tmp_path):
    import matplotlib.image

    rows = [
        {"method": "roast", "dev_by_alpha": {"1.0": 0.5, "4.0": 0.75}, "mode": "add"},
        {"method": "roast", "dev_by_alpha": {"1.0": 0.25, "4.0": 1.0}, "mode": "add"},
        {"method": "sadi", "dev_by_alpha": {"0.5": 0.5}, "mode": "multiply"},
        {"method": "none", "dev_by_alpha": {}},
    ]
    path = plot_accuracy_vs_alpha(rows, tmp_path / "alpha.png")
    assert png_size(path) == (715, 440)  # 6.5 x 4 inches at 110 dpi
    assert matplotlib.image.imread(path).shape[:2] == (440, 715)


def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "roast_tl\[plots\]"'):
        plot_mask_energy([{"k": 1, "retained_energy": 1.0, "cosine": 1.0}], tmp_path / "x.png")
