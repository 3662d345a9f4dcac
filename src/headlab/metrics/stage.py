"""Per-stage metric collections, chosen by the kind of target the data provides."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from headlab.metrics.multilabel import multilabel_metrics
from headlab.metrics.soft import TargetKL


class ArgmaxTarget(MulticlassAccuracy):
    """Accuracy against the most probable class of a target distribution."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(preds, target.argmax(dim=-1))


def classification_metrics(
    target_kind: str, num_classes: int, threshold: float = 0.5
) -> MetricCollection:
    """Metrics updated with (probabilities, targets) every step and computed once per epoch.

    ``threshold`` turns probabilities into predicted labels for multi-hot targets.
    """
    if target_kind == "multi_hot":
        return multilabel_metrics(num_classes, threshold)
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


class StageMetrics(torch.nn.Module):
    """Loss average plus classification metrics for one stage (train, val or test)."""

    def __init__(self, target_kind: str, num_classes: int, threshold: float = 0.5) -> None:
        super().__init__()
        self.loss = MeanMetric()
        self.classification = classification_metrics(target_kind, num_classes, threshold)

    def update(self, loss: torch.Tensor, probs: torch.Tensor, target: torch.Tensor) -> None:
        self.loss.update(loss.detach(), weight=len(target))
        self.classification.update(probs.detach(), target)

    def compute(self, prefix: str) -> dict[str, torch.Tensor]:
        values = {f"{prefix}/loss": self.loss.compute()}
        values.update({f"{prefix}/{k}": v for k, v in self.classification.compute().items()})
        return values

    def reset(self) -> None:
        self.loss.reset()
        self.classification.reset()
