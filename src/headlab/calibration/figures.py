"""Matplotlib figures of calibration: reliability diagram and confidence histogram.

Figures are built with ``matplotlib.figure.Figure``, not pyplot: no global figure registry
to leak into and no GUI backend to pick, so nothing needs closing.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from headlab.calibration.bins import Reliability


def _bins(reliability: Reliability) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    count = reliability.count[0].cpu().numpy()
    n_bins = len(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = reliability.hits[0].cpu().numpy() / count
        confidence = reliability.confidence[0].cpu().numpy() / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return edges, count, accuracy, confidence


def draw_reliability(ax: Axes, reliability: Reliability, title: str) -> None:
    """Accuracy per confidence bin against the diagonal, with each bin's sample count."""
    edges, count, accuracy, confidence = _bins(reliability)
    width = edges[1] - edges[0]
    filled = count > 0
    ax.bar(
        edges[:-1][filled],
        accuracy[filled],
        width=width,
        align="edge",
        edgecolor="black",
        color="tab:blue",
        label="accuracy",
    )
    ax.bar(
        edges[:-1][filled],
        confidence[filled],
        width=width,
        align="edge",
        fill=False,
        edgecolor="tab:red",
        linestyle="--",
        label="mean confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for left, n in zip(edges[:-1][filled], count[filled], strict=True):
        ax.text(
            left + width / 2,
            0.02,
            f"n={int(n)}",
            ha="center",
            va="bottom",
            fontsize=6,
            rotation=90,
            color="white",
        )
    ece = reliability.ece().item()
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence",
        ylabel="accuracy",
        title=f"{title}  ECE={ece:.4f}",
    )
    ax.legend(loc="upper left", fontsize=7)


def reliability_figure(reliability: Reliability, title: str) -> Figure:
    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.subplots()
    draw_reliability(ax, reliability, title)
    fig.tight_layout()
    return fig


def confidence_histogram(reliability: Reliability, title: str) -> Figure:
    """How many predictions fall in each confidence bin (log scale: most sit near 1)."""
    edges, count, _, _ = _bins(reliability)
    fig = Figure(figsize=(5, 3.5), dpi=100)
    ax = fig.subplots()
    ax.bar(edges[:-1], count, width=edges[1] - edges[0], align="edge", edgecolor="black")
    ax.set(xlim=(0, 1), xlabel="top-label confidence", ylabel="samples", yscale="log", title=title)
    fig.tight_layout()
    return fig


def reliability_grid(diagrams: dict[str, Reliability]) -> Figure:
    """One reliability diagram per head, side by side."""
    fig = Figure(figsize=(4.5 * len(diagrams), 4.8), dpi=100)
    axes = fig.subplots(1, len(diagrams), squeeze=False)
    for ax, (head, reliability) in zip(axes[0], diagrams.items(), strict=True):
        draw_reliability(ax, reliability, f"head={head}")
    fig.tight_layout()
    return fig
