"""Calibration metrics kept as binned sums, so memory is fixed and processes reduce by summing.

Own code because torchmetrics' ``CalibrationError`` keeps every prediction (``cat`` states,
unbounded) and files a confidence of exactly 1.0 into a hidden extra bin (its issue #3510;
``sigmoid(x) == 1.0`` in float32 for x >~ 17, common on MNIST). Here 1.0 lands in the last bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchmetrics import MeanMetric, Metric

from headlab.calibration.scoring import brier, categorical_nll, normalised

N_BINS = 15
#: MCE counts only bins holding at least this many predictions: the gap of a bin with a
#: handful of samples is noise (one sample in a bin makes its gap 0 or its confidence)
MIN_BIN_COUNT = 30


@dataclass  # not frozen: torchmetrics maps over the returned tensors
class Reliability:
    """Per-label, per-bin sums: ``count``, summed ``confidence`` and summed ``hits``."""

    count: torch.Tensor
    confidence: torch.Tensor
    hits: torch.Tensor

    def gaps(self) -> torch.Tensor:
        """|accuracy - confidence| per bin (0 for empty bins)."""
        return (self.hits - self.confidence).abs() / self.count.clamp_min(1)

    def ece(self) -> torch.Tensor:
        """Expected calibration error, averaged over labels."""
        return ece_of_sums(self.count, self.confidence, self.hits).mean()

    def mce(self, min_count: int = MIN_BIN_COUNT) -> torch.Tensor:
        """Largest gap over bins (and labels) holding at least ``min_count`` predictions;
        0 when no bin does."""
        gaps = torch.where(self.count >= min_count, self.gaps(), torch.zeros_like(self.gaps()))
        return gaps.max()


def bin_index(confidence: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Equal-width bins [i/n, (i+1)/n); a confidence of exactly 1.0 goes into the last one."""
    return (confidence * n_bins).long().clamp_(0, n_bins - 1)


def bin_sums(
    confidence: torch.Tensor, hit: torch.Tensor, counts: torch.Tensor | None, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The one equal-width binning: per row of count weights ``counts`` (R, N) (None: one row
    of ones), each bin's (count, confidence sum, hit sum), each (R, n_bins) float64."""
    confidence, hit = torch.as_tensor(confidence).double(), torch.as_tensor(hit).double()
    if counts is None:
        counts = torch.ones(1, len(confidence), dtype=torch.float64)
    member = torch.nn.functional.one_hot(bin_index(confidence, n_bins), n_bins).double()
    sums = counts.double() @ torch.cat(
        [member, member * confidence[:, None], member * hit[:, None]], dim=1
    )
    return sums[:, :n_bins], sums[:, n_bins : 2 * n_bins], sums[:, 2 * n_bins :]


def ece_of_sums(count: torch.Tensor, confidence: torch.Tensor, hits: torch.Tensor) -> torch.Tensor:
    """ECE from per-bin sums (last axis = bins): sum |hits - confidence| / count."""
    return (hits - confidence).abs().sum(-1) / count.sum(-1).clamp_min(1)


class ReliabilityBins(Metric):
    """Reliability-diagram sums for ``num_labels`` independent (confidence, hit) streams."""

    full_state_update = False

    def __init__(self, num_labels: int = 1, n_bins: int = N_BINS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_labels, self.n_bins = num_labels, n_bins
        for name in ("count", "confidence", "hits"):
            self.add_state(name, torch.zeros(num_labels, n_bins, dtype=torch.float64), "sum")

    def update(self, confidence: torch.Tensor, hits: torch.Tensor) -> None:
        """``confidence`` and ``hits`` of shape (N, num_labels); hits are 0/1."""
        confidence = confidence.detach().double().reshape(-1, self.num_labels)
        hits = hits.detach().double().reshape(-1, self.num_labels)
        flat = bin_index(confidence, self.n_bins)
        flat = flat + torch.arange(self.num_labels, device=flat.device) * self.n_bins
        size = self.num_labels * self.n_bins
        self.count += torch.bincount(flat.flatten(), minlength=size).view_as(self.count)
        self.confidence += torch.bincount(flat.flatten(), confidence.flatten(), size).view_as(
            self.count
        )
        self.hits += torch.bincount(flat.flatten(), hits.flatten(), size).view_as(self.count)

    def compute(self) -> Reliability:
        return Reliability(self.count, self.confidence, self.hits)


class ProbabilitySum(Metric):
    """Mean, std and histogram of per-sample probability sums (1 for softmax, free for sigmoid)."""

    full_state_update = False

    def __init__(self, n_bins: int = 40, upper: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_bins, self.upper = n_bins, upper
        for name in ("n", "total", "total_sq"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("histogram", torch.zeros(n_bins, dtype=torch.float64), "sum")

    def update(self, probs: torch.Tensor) -> None:
        sums = probs.detach().double().sum(dim=-1)
        self.n += sums.numel()
        self.total += sums.sum()
        self.total_sq += (sums * sums).sum()
        index = (sums / self.upper * self.n_bins).long().clamp_(0, self.n_bins - 1)
        self.histogram += torch.bincount(index, minlength=self.n_bins)

    def compute(self) -> dict[str, torch.Tensor]:
        mean = self.total / self.n.clamp_min(1)
        var = (self.total_sq / self.n.clamp_min(1) - mean * mean).clamp_min(0)
        edges = torch.linspace(0, self.upper, self.n_bins + 1, dtype=torch.float64)
        return {"mean": mean, "std": var.sqrt(), "histogram": self.histogram, "edges": edges}


class CalibrationMetrics(torch.nn.Module):
    """Top-label ECE/MCE, classwise ECE, Brier and NLL of probabilities against class indices.

    ECE/MCE use the probabilities as given: for a sigmoid head the raw per-class sigmoids
    (top-label confidence = the largest sigmoid), which need not sum to one. NLL and Brier
    are ``scoring``'s, of the normalised distribution p / sum p, Brier summed over classes.
    """

    def __init__(
        self,
        num_classes: int,
        n_bins: int = N_BINS,
        sync: bool = True,
        min_bin_count: int = MIN_BIN_COUNT,
    ) -> None:
        super().__init__()
        self.min_bin_count = min_bin_count
        # sync=False for one process scoring alone (post-hoc on rank 0): no collective to wait on
        kwargs = {"sync_on_compute": sync}
        self.top_label = ReliabilityBins(1, n_bins, **kwargs)
        self.classwise = ReliabilityBins(num_classes, n_bins, **kwargs)
        self.brier = MeanMetric(**kwargs)
        self.nll = MeanMetric(**kwargs)

    def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        probs = probs.detach()
        confidence, predicted = probs.max(dim=1)
        self.top_label.update(confidence, predicted == target)
        one_hot = torch.nn.functional.one_hot(target, probs.shape[1]).to(probs.dtype)
        self.classwise.update(probs, one_hot)
        self.brier.update(brier(normalised(probs), target))
        self.nll.update(categorical_nll(probs, target))

    def compute(self) -> tuple[dict[str, torch.Tensor], Reliability]:
        top = self.top_label.compute()
        scalars = {
            "ece": top.ece(),
            "mce": top.mce(self.min_bin_count),
            "cw_ece": self.classwise.compute().ece(),
            "brier": self.brier.compute(),
            "nll": self.nll.compute(),
        }
        return scalars, top

    def reset(self) -> None:
        for metric in (self.top_label, self.classwise, self.brier, self.nll):
            metric.reset()
