"""Metrics for multi-hot targets: torchmetrics' multilabel metrics plus per-label calibration."""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryCalibrationError,
    MultilabelAccuracy,
    MultilabelAveragePrecision,
    MultilabelExactMatch,
    MultilabelF1Score,
)
from torchmetrics.regression import MeanSquaredError


class MeanBinaryCalibrationError(Metric):
    """Binary ECE of each label's probability, averaged over labels.

    torchmetrics has binary and multiclass calibration error but none per label.
    """

    full_state_update = False

    def __init__(self, num_labels: int, n_bins: int = 15) -> None:
        super().__init__()
        self.per_label = torch.nn.ModuleList(
            BinaryCalibrationError(n_bins=n_bins, norm="l1") for _ in range(num_labels)
        )

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        for label, metric in enumerate(self.per_label):
            metric.update(preds[:, label], target[:, label])

    def compute(self) -> torch.Tensor:
        return torch.stack([metric.compute() for metric in self.per_label]).mean()

    def reset(self) -> None:
        super().reset()
        for metric in self.per_label:
            metric.reset()


class MultilabelBrier(MeanSquaredError):
    """Brier score: mean over samples and labels of (probability - 0/1 target)^2."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(preds, target.to(preds.dtype))


def multilabel_metrics(num_labels: int, threshold: float = 0.5) -> MetricCollection:
    """``acc`` is subset accuracy (every label right), so ``val/acc`` stays the strict one."""
    return MetricCollection(
        {
            "acc": MultilabelExactMatch(num_labels, threshold=threshold),
            "hamming_acc": MultilabelAccuracy(num_labels, threshold=threshold, average="micro"),
            "f1_micro": MultilabelF1Score(num_labels, threshold=threshold, average="micro"),
            "f1_macro": MultilabelF1Score(num_labels, threshold=threshold, average="macro"),
            "map": MultilabelAveragePrecision(num_labels, average="macro"),
            "ece": MeanBinaryCalibrationError(num_labels),
            "brier": MultilabelBrier(),
        },
        compute_groups=False,
    )
