"""The one definition of each proper score: NLL and Brier, per sample (docs/statistics.md).

Every caller (epoch metrics, bootstrap estimators, post-hoc calibrators, calibration.json,
the study report) takes its NLL and Brier from here, so a column means the same thing in
metrics.json, calibration.json and the report. Conventions:

* per sample, **summed** over classes or labels; a reported value is the mean over samples;
* ``categorical_nll``: -log of the true class's share of the probability vector, p_y / sum p.
  For a softmax head that is -log p_y; for a sigmoid head it is the NLL of the normalised
  distribution p / sum p, so every head is scored on the same quantity;
* ``bernoulli_nll``: each of the K outputs as its own Bernoulli (one-vs-rest), summed over K.
  For multi-label targets this *is* the likelihood; for single-label targets it is the
  one-vs-rest view, defined for every head;
* ``brier``: sum over K of (p_k - y_k)^2, of whatever vector it is given.

Never -log of one output alone: a sigmoid head can put p_y = 1 and p_k = 1 on every other
class, and -log p_y would call that perfect.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: probabilities are clamped to [EPS, 1 - EPS] before a log: 0 stays finite (-log 1e-12 ≈ 27.6)
EPS = 1e-12


def one_hot_of(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices (N,) as a float64 one-hot (N, K); a (N, K) 0/1 matrix as float64."""
    if target.dim() == 1:
        return F.one_hot(target.long(), num_classes).double()
    return target.double()


def normalised(probs: torch.Tensor) -> torch.Tensor:
    """p / sum p per row (a row of zeros becomes uniform): what a sigmoid head's outputs say
    as one distribution; a softmax head's rows are returned as they are, up to rounding."""
    probs = probs.double()
    total = probs.sum(dim=1, keepdim=True)
    uniform = torch.full_like(probs, 1.0 / probs.shape[1])
    return torch.where(total > 0, probs / total.clamp_min(EPS), uniform)


def categorical_nll(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log(p_y / sum p) per sample, for class indices ``target``.

    >>> categorical_nll(torch.tensor([[0.5, 0.25, 0.25]]), torch.tensor([0])).tolist()  # ln 2
    [0.6931471805599453]
    """
    true_share = normalised(probs).gather(1, target.long().unsqueeze(1)).squeeze(1)
    return -true_share.clamp_min(EPS).log()


def bernoulli_nll(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-sum_k [y_k log p_k + (1 - y_k) log(1 - p_k)] per sample; ``target`` indices or 0/1."""
    p = probs.double().clamp(EPS, 1 - EPS)
    y = one_hot_of(target, probs.shape[1])
    return -(y * p.log() + (1 - y) * (1 - p).log()).sum(dim=1)


def brier(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sum_k (p_k - y_k)^2 per sample; ``target`` indices or 0/1.

    >>> brier(torch.tensor([[0.5, 0.5]]), torch.tensor([0])).tolist()  # 0.5^2 + 0.5^2
    [0.5]
    """
    return ((probs.double() - one_hot_of(target, probs.shape[1])) ** 2).sum(dim=1)


def logits_nll(exclusive: bool, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the head's own likelihood, from logits (stable, differentiable):
    ``categorical_nll`` of the softmax (``exclusive``) or ``bernoulli_nll`` of the sigmoids,
    the same quantities as above. The objective of every post-hoc calibrator."""
    if exclusive:
        return F.cross_entropy(logits, target)
    y = one_hot_of(target, logits.shape[1]).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, y, reduction="sum") / len(target)


def likelihood_nll(exclusive: bool, probs: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over samples of the head's own likelihood, from probabilities: the value
    calibration.json records before and after each calibrator (same as ``logits_nll``)."""
    per_sample = categorical_nll(probs, target) if exclusive else bernoulli_nll(probs, target)
    return float(per_sample.mean())
