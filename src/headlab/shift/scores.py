"""Per-sample OOD scores from logits, oriented so that higher means "more in-distribution"
(the in-distribution set is the positive class in every OOD metric).

All heads: ``msp`` (largest head probability), ``max_logit``, ``energy`` (logsumexp of the
logits, i.e. minus the free energy of Liu et al. 2020), ``entropy`` (minus the entropy of the
head's probabilities normalised to sum to one). Sigmoid heads also: ``sum_sigmoid`` (sum of
sigmoids), ``joint_energy`` (sum of log(1 + e^z), Wang et al. 2021) and ``softmax_msp`` (the
largest softmax of the same logits). For sigmoid heads ``msp`` = max sigmoid(z) is a
monotone function of ``max_logit``: both rank every input identically (same AUROC).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from headlab.heads import Head

COMMON = ("msp", "max_logit", "energy", "entropy")
SIGMOID_ONLY = ("sum_sigmoid", "joint_energy", "softmax_msp")


def score_names(head: Head) -> tuple[str, ...]:
    return COMMON if head.exclusive else COMMON + SIGMOID_ONLY


def ood_scores(head: Head, logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every score of ``score_names(head)`` per row of ``logits``, float64."""
    logits = logits.double()
    probs = head.probs(logits)
    normalised = probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-300)
    out = {
        "msp": probs.max(dim=1).values,
        "max_logit": logits.max(dim=1).values,
        "energy": logits.logsumexp(dim=1),
        "entropy": (normalised * normalised.clamp_min(1e-300).log()).sum(dim=1),
    }
    if not head.exclusive:
        out["sum_sigmoid"] = logits.sigmoid().sum(dim=1)
        out["joint_energy"] = F.softplus(logits).sum(dim=1)
        out["softmax_msp"] = logits.softmax(dim=1).max(dim=1).values
    return out


def none_of_the_above(head: Head, logits: torch.Tensor) -> torch.Tensor | None:
    """Per sample: every class probability below the head's threshold (sigmoid heads only;
    a softmax head always puts at least 1/K on some class, so it has no such answer)."""
    if head.exclusive:
        return None
    return (head.probs(logits) < head.threshold).all(dim=1)
