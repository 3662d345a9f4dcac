"""Matplotlib figures of calibration: reliability diagram and confidence histogram.

Figures are built with ``matplotlib.figure.Figure``, not pyplot: no global figure registry
to leak into and no GUI backend to pick, so nothing needs closing.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from headlab.calibration.bins import Reliability, bin_sums


def _bins(reliability: Reliability) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    count = reliability.count[0].cpu().numpy()
    n_bins = len(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = reliability.hits[0].cpu().numpy() / count
        confidence = reliability.confidence[0].cpu().numpy() / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return edges, count, accuracy, confidence


def run_label(head: str, seed: object = None) -> str:
    """``head=sigmoid seed=1``: what a figure title says about whose run it is. ``seed``
    defaults to the one ``seed_everything`` recorded (Lightning's ``PL_GLOBAL_SEED``)."""
    import os

    seed = os.environ.get("PL_GLOBAL_SEED") if seed is None else seed
    return f"head={head}" + (f" seed={seed}" if seed is not None else "")


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
    # fixed margins: tight_layout measured ~25 ms a figure, drawn every val epoch
    fig.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.1)
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


def wilson_interval(hits: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of each bin's accuracy (scipy's, bin by bin)."""
    from scipy.stats import binomtest

    low, high = np.full(len(count), np.nan), np.full(len(count), np.nan)
    for i, (k, n) in enumerate(zip(np.rint(hits).astype(int), count.astype(int), strict=True)):
        if n > 0:
            ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
            low[i], high[i] = ci.low, ci.high
    return low, high


def _binned_panel(ax: Axes, left, right, count, confidence, hits, title: str) -> None:
    """Accuracy per bin with its 95% Wilson interval, the bin's mean confidence, the diagonal."""
    filled = count > 0
    accuracy = np.where(filled, hits / np.maximum(count, 1), np.nan)
    mean_conf = np.where(filled, confidence / np.maximum(count, 1), np.nan)
    low, high = wilson_interval(hits, count)
    ax.bar(
        left[filled],
        accuracy[filled],
        width=(right - left)[filled],
        align="edge",
        edgecolor="black",
        color="tab:blue",
        alpha=0.6,
        label="accuracy",
    )
    centre = (left + right) / 2
    ax.errorbar(
        centre[filled],
        accuracy[filled],
        yerr=[accuracy[filled] - low[filled], high[filled] - accuracy[filled]],
        fmt="none",
        ecolor="black",
        capsize=2,
        label="95% Wilson interval",
    )
    ax.plot(mean_conf[filled], accuracy[filled], "o", color="tab:red", ms=3, label="(conf, acc)")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=title)
    ax.legend(loc="upper left", fontsize=7)


def binned_panel(ax: Axes, left, right, count, confidence, hits, title: str) -> None:
    """``_binned_panel`` with each bin's number of predictions written above it."""
    _binned_panel(ax, left, right, count, confidence, hits, title)
    for x, n in zip((left + right) / 2, count, strict=True):
        if n > 0:
            ax.text(x, 0.99, f"{int(n)}", ha="center", va="top", fontsize=5, rotation=90)


def _smooth_panel(ax: Axes, confidence: np.ndarray, hit: np.ndarray) -> None:
    """relplot's kernel regression of hit on confidence at the smooth ECE's own bandwidth."""
    import relplot
    from relplot.kernels import ReflectedGaussianKernel

    smece, sigma = relplot.smECE(confidence, hit, return_width=True)
    mesh = np.linspace(0, 1, 200)
    curve, density = ReflectedGaussianKernel(sigma).smooth(confidence, hit, mesh)
    shown = density > 1e-3 * density.max()
    ax.plot(mesh[shown], curve[shown], color="tab:blue", label="E[hit | confidence]")
    ax.fill_between(
        mesh, 0, density / density.max() * 0.2, color="gray", alpha=0.3, label="density"
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence",
        title=f"smooth (bandwidth {sigma:.4f})  smECE={smece:.4f}",
    )
    ax.legend(loc="upper left", fontsize=7)


def calibration_panels(
    confidence: np.ndarray,
    hit: np.ndarray,
    n_bins: int,
    title: str,
    ece: float,
    ece_adaptive: float,
) -> Figure:
    """Equal-width and equal-mass reliability diagrams with per-bin 95% intervals, and the
    smooth reliability curve, side by side: which gaps are more than noise."""
    fig = Figure(figsize=(15, 5), dpi=100)
    axes = fig.subplots(1, 3)
    count, conf_sum, hit_sum = (v[0].numpy() for v in bin_sums(confidence, hit, None, n_bins))
    edges = np.linspace(0, 1, n_bins + 1)
    _binned_panel(
        axes[0],
        edges[:-1],
        edges[1:],
        count,
        conf_sum,
        hit_sum,
        f"{title}: {n_bins} equal-width bins  ECE={ece:.4f}",
    )
    order = np.lexsort((hit, confidence))
    chunks = [c for c in np.array_split(order, n_bins) if len(c)]
    _binned_panel(
        axes[1],
        np.array([confidence[c].min() for c in chunks]),
        np.array([confidence[c].max() for c in chunks]),
        np.array([len(c) for c in chunks], dtype=float),
        np.array([confidence[c].sum() for c in chunks]),
        np.array([hit[c].sum() for c in chunks]),
        f"{n_bins} equal-mass bins  ECE={ece_adaptive:.4f}",
    )
    _smooth_panel(axes[2], confidence, hit)
    fig.subplots_adjust(
        left=0.05, right=0.98, bottom=0.1, top=0.92, wspace=0.2
    )  # no tight_layout: 0.7 s
    return fig


def risk_coverage_figure(coverage: np.ndarray, risk: np.ndarray, aurc: float, title: str) -> Figure:
    """Error rate among the most confident predictions against the share kept."""
    fig = Figure(figsize=(5, 4), dpi=100)
    ax = fig.subplots()
    ax.plot(coverage, risk, color="tab:blue")
    ax.set(
        xlim=(0, 1),
        ylim=(0, max(float(risk.max()) * 1.05, 1e-3)),
        xlabel="coverage (share of most confident predictions kept)",
        ylabel="risk (error rate among them)",
        title=f"{title}  AURC={aurc:.5f}",
    )
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.13, top=0.92)
    return fig


def label_reliability_grid(reliability: Reliability, title: str) -> Figure:
    """One reliability diagram per label (multi-label: each label a binary prediction)."""
    labels = reliability.count.shape[0]
    cols = min(5, labels)
    rows = (labels + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows), dpi=80)
    axes = fig.subplots(rows, cols, squeeze=False)
    n_bins = reliability.count.shape[1]
    edges = np.linspace(0, 1, n_bins + 1)
    for label, ax in enumerate(axes.flat):
        if label >= labels:
            ax.set_visible(False)
            continue
        count = reliability.count[label].cpu().numpy()
        hits = reliability.hits[label].cpu().numpy()
        conf = reliability.confidence[label].cpu().numpy()
        _binned_panel(ax, edges[:-1], edges[1:], count, conf, hits, f"label {label}")
        ax.legend().set_visible(False)
        ax.set(xlabel="", ylabel="")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
