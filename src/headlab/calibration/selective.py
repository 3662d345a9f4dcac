"""Selective prediction: the risk-coverage curve and its areas (AURC, AUGRC).

Keep the k most confident test predictions, for every k: the risk is the error rate among
them. Predictions with equal confidence (many are exactly 1.0) have no order among
themselves, so within a tie the curve is the expectation over their orders: errors come in
at the tie's average rate. The area is the mean risk over k = 1..N.
"""

from __future__ import annotations

import torch


def risk_coverage(
    confidence: torch.Tensor, error: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coverage k/N and risk (errors among the k most confident / k) for k = 1..N."""
    confidence, error = confidence.double(), error.double()
    order = torch.argsort(confidence, descending=True, stable=True)
    confidence, error = confidence[order], error[order]
    _, tie_sizes = torch.unique_consecutive(confidence, return_counts=True)
    tie_ends = tie_sizes.cumsum(0)
    tie_starts = tie_ends - tie_sizes
    tie_errors = torch.zeros(len(tie_sizes), dtype=torch.float64).index_add_(
        0, torch.arange(len(tie_sizes)).repeat_interleave(tie_sizes), error
    )
    errors_before = tie_errors.cumsum(0) - tie_errors
    tie_of = torch.arange(len(tie_sizes)).repeat_interleave(tie_sizes)
    k = torch.arange(1, len(error) + 1, dtype=torch.float64)
    within = k - tie_starts[tie_of]
    expected_errors = errors_before[tie_of] + within * tie_errors[tie_of] / tie_sizes[tie_of]
    return k / len(error), expected_errors / k


def misclassification_auroc(confidence: torch.Tensor, error: torch.Tensor) -> float:
    """AUROC of the confidence separating right from wrong predictions (right positive), as
    Hendrycks & Gimpel (2017) report it: the chance that a random right prediction is more
    confident than a random wrong one, ties counting 1/2. NaN when either group is empty."""
    right = confidence[error == 0].double()
    wrong = confidence[error != 0].double()
    if len(right) == 0 or len(wrong) == 0:
        return float("nan")
    # Mann-Whitney via mid-ranks of the pooled confidences (ties get their average rank)
    pooled = torch.cat([right, wrong])
    _, inverse, counts = torch.unique(pooled, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mid_rank = ends - (counts.double() - 1) / 2
    rank_sum = mid_rank[inverse[: len(right)]].sum()
    n_r, n_w = len(right), len(wrong)
    return float((rank_sum - n_r * (n_r + 1) / 2) / (n_r * n_w))


def aurc_of(risk: torch.Tensor) -> float:
    """Area under a risk-coverage curve at coverages k/N: the mean risk."""
    return float(risk.mean())


def aurc(confidence: torch.Tensor, error: torch.Tensor) -> float:
    """Area under the risk-coverage curve: the mean risk over all coverages k/N."""
    return aurc_of(risk_coverage(confidence, error)[1])


def augrc(confidence: torch.Tensor, error: torch.Tensor) -> float:
    """Area under the *generalized* risk-coverage curve (Traub et al. 2024): the mean over
    k of errors among the k most confident / N, the rate of silent failures at coverage k/N.
    Unlike AURC it does not weight the first few predictions' risk by 1/k."""
    return augrc_of(*risk_coverage(confidence, error))


def augrc_of(coverage: torch.Tensor, risk: torch.Tensor) -> float:
    """Area under a generalized risk-coverage curve: the mean of coverage x risk."""
    return float((coverage * risk).mean())
