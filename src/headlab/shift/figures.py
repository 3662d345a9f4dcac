"""Figures of the off-distribution analysis (matplotlib, Agg): what a person looks at first."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.figure import Figure

from headlab.shift.settings import Settings


def rotation_figure(metrics: Mapping[str, float], settings: Settings) -> Figure:
    """Accuracy and ECE against the rotation angle, before and after each calibrator (95%
    bootstrap bands), as Ovadia et al. 2019 plot rotated MNIST."""
    from headlab.shift.sets import level_name

    angles = [level_name(a) for a in settings.rotation]
    x = [float(a) for a in angles]
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    for ax, estimator in zip(figure.subplots(1, 2), ("acc", "ece"), strict=True):
        for suffix, label in [("", "uncalibrated"), *((f"_{m}", m) for m in settings.methods)]:
            key = f"{estimator}{suffix}"
            values = [metrics.get(f"shift/rotation/{a}/{key}", np.nan) for a in angles]
            line = ax.plot(x, values, marker="o", ms=3, label=label)[0]
            low = [metrics.get(f"shift/rotation/{a}/{estimator}{suffix}_ci_low") for a in angles]
            high = [metrics.get(f"shift/rotation/{a}/{estimator}{suffix}_ci_high") for a in angles]
            if None not in low and None not in high:
                ax.fill_between(x, low, high, alpha=0.2, color=line.get_color())
        ax.set_xlabel("rotation (degrees)")
        ax.set_ylabel(estimator)
        ax.set_xticks(x[:: max(1, len(x) // 7)])
        ax.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=8)
    figure.suptitle("rotated MNIST test")
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
    figure = Figure(figsize=(5, 3.6), layout="constrained")
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
    figure = Figure(figsize=(3 * len(names), 2.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(names), sharey=True))
    bins = np.linspace(0, 1, 41)
    for ax, name in zip(axes, names, strict=True):
        ax.hist(in_scores["msp"], bins=bins, alpha=0.6, density=True, label="MNIST test")
        ax.hist(out_scores[name]["msp"], bins=bins, alpha=0.6, density=True, label=name)
        ax.set_title(name)
        ax.set_xlabel("largest probability")
        ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    return figure


def sample_grid(samples: Mapping[str, torch.Tensor]) -> Figure:
    """One row of up to 8 images per set: what exactly was tested."""
    names = list(samples)
    figure = Figure(figsize=(8 * 0.6 + 2.2, 0.6 * len(names) + 0.3), layout="constrained")
    axes = figure.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        images = samples[name][:8, 0].numpy()
        if len(images) < 8:
            images = np.concatenate([images, np.zeros((8 - len(images), *images.shape[1:]))])
        ax.imshow(np.concatenate(list(images), axis=1), cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    return figure
