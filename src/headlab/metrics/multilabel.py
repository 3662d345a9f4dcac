"""Metrics for multi-hot targets: torchmetrics' multilabel metrics plus per-label calibration."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric, Metric, MetricCollection
from torchmetrics.classification import (
    MultilabelAccuracy,
    MultilabelAveragePrecision,
    MultilabelExactMatch,
    MultilabelF1Score,
)

from headlab.calibration.bins import N_BINS, ReliabilityBins
from headlab.calibration.scoring import brier


class MeanBinaryCalibrationError(Metric):
    """Binary ECE of each label's probability, averaged over labels.

    headlab's own binned sums, one row per label (fixed memory, summed across processes, a
    probability of exactly 1.0 in the last bin), not torchmetrics' ``BinaryCalibrationError``,
    which keeps every prediction and files 1.0 into an extra bin (its issue #3510).
    """

    full_state_update = False

    def __init__(self, num_labels: int, n_bins: int = N_BINS) -> None:
        super().__init__()
        self.bins = ReliabilityBins(num_labels, n_bins)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.bins.update(preds, target)

    def compute(self) -> torch.Tensor:
        return self.bins.compute().ece()

    def reset(self) -> None:
        super().reset()
        self.bins.reset()


class MultilabelBrier(MeanMetric):
    """Brier score: sum over labels of (probability - 0/1 target)^2, mean over samples
    (``calibration.scoring``'s convention, the same as metrics.json's post-test value)."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(brier(preds, target))


def multilabel_metrics(
    num_labels: int, threshold: float = 0.5, n_bins: int = N_BINS
) -> MetricCollection:
    """``acc`` is subset accuracy (every label right), so ``val/acc`` stays the strict one."""
    return MetricCollection(
        {
            "acc": MultilabelExactMatch(num_labels, threshold=threshold),
            "hamming_acc": MultilabelAccuracy(num_labels, threshold=threshold, average="micro"),
            "f1_micro": MultilabelF1Score(num_labels, threshold=threshold, average="micro"),
            "f1_macro": MultilabelF1Score(num_labels, threshold=threshold, average="macro"),
            "map": MultilabelAveragePrecision(num_labels, average="macro"),
            "ece": MeanBinaryCalibrationError(num_labels, n_bins),
            "brier": MultilabelBrier(),
        },
        compute_groups=False,
    )
