"""Figures of the off-distribution analysis (matplotlib, Agg): what a person looks at first."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.figure import Figure

from headlab.layout.headline import DEFAULT_SCORE
from headlab.shift.settings import Settings


def rotation_figure(metrics: Mapping[str, float], settings: Settings) -> Figure:
    """Accuracy and ECE against the rotation angle, before and after each calibrator (95%
    bootstrap bands), as Ovadia et al. 2019 plot rotated MNIST."""
    from headlab.shift.sets import level_name

    angles = [level_name(a) for a in settings.rotation]
    x = [float(a) for a in angles]
    figure = Figure(figsize=(9, 3.6))  # fixed margins: constrained layout costs ~1 s a figure
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.88, wspace=0.25)
    banded = False
    for ax, estimator in zip(figure.subplots(1, 2), ("acc", "ece"), strict=True):
        for suffix, label in [("", "uncalibrated"), *((f"_{m}", m) for m in settings.methods)]:
            key = f"{estimator}{suffix}"
            values = [metrics.get(f"shift/rotation/{a}/{key}", np.nan) for a in angles]
            line = ax.plot(x, values, marker="o", ms=3, label=label)[0]
            low = [metrics.get(f"shift/rotation/{a}/{estimator}{suffix}_ci_low") for a in angles]
            high = [metrics.get(f"shift/rotation/{a}/{estimator}{suffix}_ci_high") for a in angles]
            if None not in low and None not in high:
                ax.fill_between(x, low, high, alpha=0.2, color=line.get_color())
                banded = True
        ax.set_xlabel("rotation (degrees)")
        ax.set_ylabel(estimator)
        ax.set_xticks(x[:: max(1, len(x) // 7)])
        ax.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=8)
    bands = ", bands: bootstrap intervals over this run's test images" if banded else ""
    figure.suptitle(f"rotated MNIST test{bands}")
    return figure


def accuracy_vs_confidence(probs: np.ndarray, targets: np.ndarray, angle: str) -> Figure:
    """Ovadia et al.'s curve: accuracy among the inputs whose confidence is at least tau,
    and the share of inputs that are, for tau in [0, 1)."""
    confidence = probs.max(axis=1)
    hit = probs.argmax(axis=1) == targets
    taus = np.linspace(0, 0.99, 100)
    kept = np.array([(confidence >= t).mean() for t in taus])
    acc = np.array(
        [hit[confidence >= t].mean() if k > 0 else np.nan for t, k in zip(taus, kept, strict=True)]
    )
    figure = Figure(figsize=(5, 3.6))
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.14, top=0.9)
    ax = figure.subplots()
    ax.plot(taus, acc, label="accuracy on kept inputs")
    ax.plot(taus, kept, ls="--", label="share of inputs kept")
    ax.set_xlabel("confidence threshold tau")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"rotation {angle} deg: confidence >= tau")
    return figure


def score_histograms(
    in_scores: Mapping[str, np.ndarray], out_scores: Mapping[str, Mapping[str, np.ndarray]]
) -> Figure:
    """The largest-probability score (MSP; max sigmoid for sigmoid heads) of test digits
    against each OOD set, one panel per set."""
    names = list(out_scores)
    figure = Figure(figsize=(3 * len(names), 2.8))
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.17, top=0.88, wspace=0.1)
    axes = np.atleast_1d(figure.subplots(1, len(names), sharey=True))
    bins = np.linspace(0, 1, 41)
    for ax, name in zip(axes, names, strict=True):
        ax.hist(in_scores[DEFAULT_SCORE], bins=bins, alpha=0.6, density=True, label="MNIST test")
        ax.hist(out_scores[name][DEFAULT_SCORE], bins=bins, alpha=0.6, density=True, label=name)
        ax.set_title(name)
        ax.set_xlabel("largest probability")
        ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    return figure


def sample_grid(samples: Mapping[str, torch.Tensor], per_row: int = 8) -> Figure:
    """Up to 8 images of every set, one row each, as one image: what exactly was tested."""
    names = list(samples)
    side, gap = 28, 2
    rows = []
    for name in names:
        images = samples[name][:per_row, 0].clamp(0, 255).numpy()  # gaussian_n01: float
        row = np.full((side, per_row * (side + gap)), 40, dtype=np.uint8)  # dark grey gaps
        for i, image in enumerate(images):
            image = image[:side, :side] if image.shape[0] > side else image
            row[: image.shape[0], i * (side + gap) : i * (side + gap) + image.shape[1]] = image
        rows.append(np.vstack([row, np.full((gap, row.shape[1]), 40, dtype=np.uint8)]))
    grid = np.vstack(rows)
    height = 0.42 * len(names) + 0.4
    figure = Figure(figsize=(6.5, height))
    ax = figure.add_axes((0.28, 0.2 / height, 0.7, 1 - 0.4 / height))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest", aspect="auto")
    ax.set_yticks([(side + gap) * i + side / 2 for i in range(len(names))], names, fontsize=7)
    ax.set_xticks([])
    return figure
