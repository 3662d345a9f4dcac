"""The comparison report's figures: probability mass, gradient split, reliability per head.

``matplotlib.figure.Figure`` without pyplot (no global state); PNGs carry no timestamp, so
the same sweep gives byte-identical figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure


def prob_sum_figure(sums: Mapping[str, np.ndarray]) -> Figure:
    """One histogram row per head of Σp over the test samples (all seeds), shared log x."""
    low = min(float(v.min()) for v in sums.values())
    high = max(float(v.max()) for v in sums.values())
    low, high = min(low, 0.9), max(high, 1.1)
    edges = np.geomspace(max(low, 1e-3), high, 81)
    fig = Figure(figsize=(7, 0.9 + 1.0 * len(sums)), dpi=100)
    axes = fig.subplots(len(sums), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (head, values) in zip(axes, sums.items(), strict=True):
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
        ax.stairs(counts / counts.sum(), edges, fill=True, color="tab:blue")
        ax.axvline(1.0, color="black", lw=0.8, ls="--")
        ax.set_ylabel(head, rotation=0, ha="right", va="center")
        ax.set_yticks([])
    axes[0].set_title("Σ p over the 10 classes, per test sample (share of samples)")
    axes[-1].set(xscale="log", xlabel="Σ p  (dashed: 1, a distribution)")
    fig.tight_layout()
    return fig


def grad_share_figure(curves: Mapping[str, Sequence[Sequence[tuple[int, float]]]]) -> Figure:
    """``grad_rows/other_share`` over training per head: mean over seeds, band min to max."""
    fig = Figure(figsize=(7, 4.2), dpi=100)
    ax = fig.subplots()
    # heads whose curves coincide by construction (softmax, focal, poly: exactly 0.5) stay
    # visible: each its own dash pattern and width, the later ones drawn thinner on top
    styles = ["-", "--", ":", "-."]
    for number, (head, runs) in enumerate(curves.items()):
        steps = sorted(set.intersection(*(set(s for s, _ in run) for run in runs)))
        if not steps:
            continue
        values = np.array([[dict(run)[s] for s in steps] for run in runs])
        (line,) = ax.plot(
            steps,
            values.mean(axis=0),
            label=head,
            linestyle=styles[number % len(styles)],
            linewidth=max(3.0 - 0.4 * number, 0.8),
        )
        ax.fill_between(
            steps, values.min(axis=0), values.max(axis=0), alpha=0.2, color=line.get_color()
        )
    ax.set(
        xlabel="training step",
        ylabel="other rows / (true + other)",
        ylim=(-0.02, 1.02),
        title="share of the last-layer gradient on the other classes' rows (probe batch)",
    )
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def pooled_reliability_figure(
    pooled: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], runs: Mapping[str, int]
) -> Figure:
    """Reliability diagram per head from (count, confidence sum, hit sum) per bin pooled over
    ``runs[head]`` runs: accuracy with its 95 % Wilson interval, bin counts above the bars.
    The title's ECE is of the pooled predictions, not the mean of the runs' ECEs."""
    from headlab.calibration.bins import ece_of_sums
    from headlab.calibration.figures import binned_panel

    columns = min(4, len(pooled))
    rows = math.ceil(len(pooled) / columns)
    fig = Figure(figsize=(3.8 * columns, 4.0 * rows), dpi=100)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (head, (count, conf, hits)) in zip(axes, pooled.items(), strict=False):
        edges = np.linspace(0, 1, len(count) + 1)
        ece = float(ece_of_sums(*(torch.as_tensor(v) for v in (count, conf, hits))))
        title = f"{head}: {runs[head]} runs pooled\nECE of the pool {ece:.4f}"
        binned_panel(ax, edges[:-1], edges[1:], count, conf, hits, title)
        ax.title.set_fontsize(9)
        ax.legend().set_visible(False)
    for ax in axes[len(pooled) :]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def pooled_bins(
    probs_list: Sequence[np.ndarray], targets_list: Sequence[np.ndarray], n_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width top-label bin: count, confidence sum, hit sum over all given runs
    (``calibration.bins.bin_sums``, the binning of every logged ECE)."""
    from headlab.calibration.bins import bin_sums

    totals = [np.zeros(n_bins) for _ in range(3)]
    for probs, targets in zip(probs_list, targets_list, strict=True):
        confidence = torch.from_numpy(probs.max(axis=1))
        hit = torch.from_numpy((probs.argmax(axis=1) == targets).astype(float))
        for total, part in zip(totals, bin_sums(confidence, hit, None, n_bins), strict=True):
            total += part[0].numpy()
    count, conf, hits = totals
    return count, conf, hits
