"""Metrics for distribution targets: how far the predicted distribution is from the target."""

from __future__ import annotations

import torch
from torchmetrics.regression import KLDivergence

# a probability that underflowed to 0 would make one sample's KL, and so the mean, infinite
MIN_PROB = 1e-12


class TargetKL(KLDivergence):
    """Mean KL(target || prediction) over samples; predictions are renormalised to sum 1."""

    def __init__(self) -> None:
        super().__init__(log_prob=False, reduction="mean")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(target.to(preds.dtype), preds.clamp_min(MIN_PROB))
