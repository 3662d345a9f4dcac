"""Per-stage metric collections, chosen by the kind of target the data provides."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from headlab.calibration.bins import (
    MIN_BIN_COUNT,
    N_BINS,
    CalibrationMetrics,
    ProbabilitySum,
    Reliability,
)
from headlab.metrics.multilabel import multilabel_metrics
from headlab.metrics.soft import TargetKL


class ArgmaxTarget(MulticlassAccuracy):
    """Accuracy against the most probable class of a target distribution."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(preds, target.argmax(dim=-1))


def classification_metrics(
    target_kind: str, num_classes: int, threshold: float = 0.5, n_bins: int = N_BINS
) -> MetricCollection:
    """Metrics updated with (probabilities, targets) every step and computed once per epoch.

    ``threshold`` turns probabilities into predicted labels for multi-hot targets.
    """
    if target_kind == "multi_hot":
        return multilabel_metrics(num_classes, threshold, n_bins)
    # average="micro": plain accuracy; torchmetrics' default "macro" averages per class.
    if target_kind == "index":
        acc = MulticlassAccuracy(num_classes, average="micro")
    elif target_kind == "distribution":
        return MetricCollection(
            {"acc": ArgmaxTarget(num_classes, average="micro"), "kl": TargetKL()}
        )
    else:
        raise ValueError(f"no metrics defined for target kind {target_kind!r}")
    return MetricCollection({"acc": acc})


@dataclass
class EpochSnapshot:
    """What the figures need from an epoch, taken from the synced states before reset."""

    reliability: dict[str, Reliability] = field(default_factory=dict)
    prob_sum: dict[str, torch.Tensor] = field(default_factory=dict)


class StageMetrics(torch.nn.Module):
    """Loss average plus classification metrics for one stage (train, val or test).

    With ``calibration`` (val and test), also calibration of the head's probabilities and, for
    heads whose probabilities need not sum to one, of the renormalised vector (``*_norm``).
    """

    def __init__(
        self,
        target_kind: str,
        num_classes: int,
        calibration: bool = False,
        exclusive: bool = True,
        threshold: float = 0.5,
        n_bins: int = N_BINS,
        min_bin_count: int = MIN_BIN_COUNT,
    ) -> None:
        super().__init__()
        self.loss = MeanMetric()
        self.classification = classification_metrics(target_kind, num_classes, threshold, n_bins)
        self.calibration = self.calibration_norm = self.prob_sum = None
        if calibration and target_kind == "index":
            self.calibration = CalibrationMetrics(num_classes, n_bins, min_bin_count=min_bin_count)
            self.prob_sum = ProbabilitySum()
            if not exclusive:
                self.calibration_norm = CalibrationMetrics(
                    num_classes, n_bins, min_bin_count=min_bin_count
                )

    def update(self, loss: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> None:
        probs = probs.detach()
        self.loss.update(loss.detach(), weight=len(target))
        self.classification.update(probs, target)
        if self.calibration is not None:
            self.calibration.update(probs, target)
            self.prob_sum.update(probs)
        if self.calibration_norm is not None:
            self.calibration_norm.update(probs / probs.sum(dim=1, keepdim=True), target)

    def compute(self, prefix: str) -> tuple[dict[str, torch.Tensor], EpochSnapshot]:
        values = {f"{prefix}/loss": self.loss.compute()}
        values.update({f"{prefix}/{k}": v for k, v in self.classification.compute().items()})
        snapshot = EpochSnapshot()
        for name, metrics in (("", self.calibration), ("_norm", self.calibration_norm)):
            if metrics is not None:
                scalars, reliability = metrics.compute()
                values.update({f"{prefix}/{k}{name}": v for k, v in scalars.items()})
                snapshot.reliability[name.lstrip("_") or "raw"] = reliability
        if self.prob_sum is not None:
            sums = self.prob_sum.compute()
            values[f"{prefix}/prob_sum_mean"] = sums["mean"]
            values[f"{prefix}/prob_sum_std"] = sums["std"]
            snapshot.prob_sum = sums
        return values, snapshot

    def running_totals(self) -> torch.Tensor:
        """Since the last reset: [loss sum, loss weight, hits, count] as one tensor (no sync).

        Read from the metric states that ``update`` already keeps, so a curve every N steps
        (``callbacks.curves``) takes differences of two readings and costs nothing per step.
        ``hits``/``count`` are 0 when the accuracy metric keeps no such totals.
        """
        loss = torch.stack([self.loss.mean_value, self.loss.weight]).to(torch.float64)
        acc = dict(self.classification.items(keep_base=True)).get("acc")
        if hasattr(acc, "tp"):  # Multiclass accuracy, micro: tp / (tp + fn)
            hits, count = acc.tp.sum(), acc.tp.sum() + acc.fn.sum()
        elif hasattr(acc, "correct"):  # Multilabel exact match
            hits, count = acc.correct.sum(), acc.total.sum()
        else:
            hits = count = torch.zeros((), device=loss.device)
        return torch.cat([loss, torch.stack([hits, count]).to(loss)])

    def reset(self) -> None:
        parts = (
            self.loss,
            self.classification,
            self.calibration,
            self.calibration_norm,
            self.prob_sum,
        )
        for module in parts:
            if module is not None:
                module.reset()
