"""Per-sample OOD scores, oriented so that higher means "more in-distribution" (the
in-distribution set is the positive class in every OOD metric).

Each head is compared on the scores natural to it (``NATURAL``), so that a gain in OOD
detection is not credited to a head when it belongs to the score:

* softmax heads (softmax, soft, focal, poly, sigmoid_softmax): ``msp`` (largest softmax
  probability), ``max_logit`` and ``energy`` (logsumexp, i.e. minus the free energy of Liu et
  al. 2020) of *what the softmax sees*: the logits z, or for sigmoid_softmax sigmoid(z);
* sigmoid heads: ``msp`` (max sigmoid, a monotone function of the max logit: the same
  ranking), ``sum_sigmoid`` (Σσ) and ``joint_energy`` (Σ log(1 + e^z), Wang et al. 2021).

Also kept for every head: ``entropy`` (minus the entropy of the probabilities normalised to
sum to one); for sigmoid heads ``max_logit``, ``energy`` of z and ``softmax_msp``. The
feature-space control ``mahalanobis`` is not a score of the logits: ``shift.features``. The
default score of the headline numbers is named in ``layout.headline`` (``DEFAULT_SCORE``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from headlab.heads import Head, SigmoidSoftmax

COMMON = ("msp", "max_logit", "energy", "entropy")
SIGMOID_ONLY = ("sum_sigmoid", "joint_energy", "softmax_msp")
#: the scores each family of heads is compared on (the report names the best per head)
NATURAL = {True: ("msp", "max_logit", "energy"), False: ("msp", "sum_sigmoid", "joint_energy")}
#: the feature-space control (penultimate features, fitted on train images)
FEATURE_SCORE = "mahalanobis"


def score_names(head: Head) -> tuple[str, ...]:
    return COMMON if head.exclusive else COMMON + SIGMOID_ONLY


def natural_scores(head: Head) -> tuple[str, ...]:
    return NATURAL[head.exclusive]


def softmax_input(head: Head, logits: torch.Tensor) -> torch.Tensor:
    """What the head's softmax is applied to: sigmoid(z) for sigmoid_softmax, else z."""
    return logits.sigmoid() if isinstance(head, SigmoidSoftmax) else logits


def ood_scores(head: Head, logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every score of ``score_names(head)`` per row of ``logits``, float64."""
    logits = logits.double()
    probs = head.probs(logits)
    normalised = probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-300)
    seen = softmax_input(head, logits) if head.exclusive else logits
    out = {
        "msp": probs.max(dim=1).values,
        "max_logit": seen.max(dim=1).values,
        "energy": seen.logsumexp(dim=1),
        "entropy": (normalised * normalised.clamp_min(1e-300).log()).sum(dim=1),
    }
    if not head.exclusive:
        out["sum_sigmoid"] = logits.sigmoid().sum(dim=1)
        out["joint_energy"] = F.softplus(logits).sum(dim=1)
        out["softmax_msp"] = logits.softmax(dim=1).max(dim=1).values
    return out


def has_sigmoids(head: Head) -> bool:
    """Whether the head has one sigmoid per class (sigmoid heads, and sigmoid_softmax
    before its softmax): only such a head can answer "none of the above"."""
    return not head.exclusive or isinstance(head, SigmoidSoftmax)


def none_of_the_above(head: Head, logits: torch.Tensor) -> torch.Tensor | None:
    """Per sample: every class sigmoid below the head's threshold (sigmoid heads, and
    sigmoid_softmax's sigmoids before its softmax); None for a softmax head, which always
    puts at least 1/K on some class and has no such answer."""
    if not has_sigmoids(head):
        return None
    sigmoids = logits.sigmoid() if head.exclusive else head.probs(logits)
    return (sigmoids < head.threshold).all(dim=1)
