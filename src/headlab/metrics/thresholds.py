"""Multi-label F1 at a threshold chosen on the validation set, in fixed memory.

A fixed 0.5 judges softmax-type heads unfairly on multi-hot targets (their probabilities
sum to 1, so at most one label clears 0.5). This metric keeps, per label, how many positive
and negative targets had a probability in each of ``n_bins`` equal-width bins. From these
counts the F1 at every candidate threshold ``k / n_bins`` follows by cumulative sums, so
the state has a fixed size and reduces across DDP processes by summing; torchmetrics'
``MultilabelF1Score`` would need one instance per threshold, or every prediction kept.

A label counts as predicted where its probability is ``> threshold``, as in torchmetrics.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

#: names of the values ``compute`` returns (``val/best_threshold`` etc. once prefixed)
TUNED_KEYS = ("best_threshold", "best_threshold_macro", "f1_micro_tuned", "f1_macro_tuned")
#: the thresholds among them, chosen on validation and carried to test
THRESHOLD_KEYS = TUNED_KEYS[:2]


def _f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    """2TP / (2TP + FP + FN), 0 where the denominator is 0 (sklearn's zero_division=0)."""
    denominator = 2 * tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), 0.0)


class TunedThresholdF1(Metric):
    """F1 micro at the threshold maximising F1 micro, and F1 macro at the threshold
    maximising F1 macro (one threshold for all labels each: per-label thresholds would fit
    rare labels to a handful of validation positives).

    With ``threshold=None`` (validation) the best of the candidate thresholds
    ``0, 1/n_bins, ..., (n_bins-1)/n_bins`` is chosen for each (the lowest one on ties).
    Setting ``threshold`` and ``threshold_macro`` (test: the values chosen on validation)
    scores those candidates instead.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_labels: int, n_bins: int = 1000) -> None:
        super().__init__()
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.num_labels, self.n_bins = num_labels, n_bins
        self.threshold: float | None = None
        self.threshold_macro: float | None = None
        # float64 edges: the candidate thresholds k / n_bins as the float32 values compared
        self.register_buffer(
            "edges", torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64).float(), False
        )
        # counts[label, b] for b in 0..n_bins: b = number of candidate thresholds below p
        size = (num_labels, n_bins + 1)
        self.add_state("positives", torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("negatives", torch.zeros(size, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """``preds``: probabilities (N, L); ``target``: 0/1 (N, L)."""
        # bucketize(right=False): edges[b-1] < p <= edges[b], i.e. p > the first b candidates
        bins = torch.bucketize(preds.float().clamp(0.0, 1.0), self.edges[:-1], right=False)
        flat = bins + torch.arange(self.num_labels, device=bins.device) * (self.n_bins + 1)
        positive = target.bool()
        # 1-D scatter_add_ rather than bincount: deterministic on CUDA under
        # torch.use_deterministic_algorithms (trainer.deterministic=true)
        for state, chosen in ((self.positives, flat[positive]), (self.negatives, flat[~positive])):
            state.view(-1).scatter_add_(0, chosen, torch.ones_like(chosen))

    def _confusion(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """TP, FP, FN per candidate threshold k and label: shape (n_bins, num_labels)."""
        # predicted at candidate k <=> p > edges[k] <=> bin > k
        above_pos = self.positives.flip(1).cumsum(1).flip(1)[:, 1:].T.double()
        above_neg = self.negatives.flip(1).cumsum(1).flip(1)[:, 1:].T.double()
        fn = self.positives.sum(1).double() - above_pos
        return above_pos, above_neg, fn

    def _candidate(self, threshold: float) -> int:
        k = int(torch.searchsorted(self.edges, torch.tensor(float(threshold))))
        return min(k, self.n_bins - 1)

    def compute(self) -> dict[str, torch.Tensor]:
        tp, fp, fn = self._confusion()
        micro = _f1(tp.sum(1), fp.sum(1), fn.sum(1))
        macro = _f1(tp, fp, fn).mean(1)
        # argmax: the first maximum, i.e. the lowest threshold on ties
        k = int(torch.argmax(micro)) if self.threshold is None else self._candidate(self.threshold)
        if self.threshold_macro is None:
            k_macro = int(torch.argmax(macro)) if self.threshold is None else k
        else:
            k_macro = self._candidate(self.threshold_macro)
        return {
            "best_threshold": self.edges[k].clone(),
            "best_threshold_macro": self.edges[k_macro].clone(),
            "f1_micro_tuned": micro[k].float(),
            "f1_macro_tuned": macro[k_macro].float(),
        }
