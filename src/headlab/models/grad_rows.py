"""How a head's loss splits the last layer's gradient between the true class's row and the rest.

For a linear last layer ``z = W h + b`` the gradient of one sample's loss with respect to
row ``k`` of ``W`` is ``(dL/dz_k) · h``, so its norm is ``|dL/dz_k| · ‖h‖``: one forward
pass and one backward through the logits alone give every sample's row gradients, no
per-sample backward through the network. Per sample:

* ``true``  = Σ over the true rows of ``|dL/dz_k| · ‖h‖`` (the class index; for multi-hot or
  distribution targets every class with a positive target),
* ``other`` = Σ over all other rows of the same.

Summing row norms (rather than one norm over the block of other rows) makes the split exact
for softmax + CE: its other rows' gradients add up to the wrong classes' probability mass,
which equals the true row's, so its share is always 1/2; the naive sigmoid NLL never moves
another row (share 0); sigmoid + BCE moves each row on its own.
"""

from __future__ import annotations

import torch
from torch import nn

from headlab.heads import Head

TAGS = ("grad_rows/true", "grad_rows/other", "grad_rows/other_share")


def true_rows(targets: torch.Tensor, kind: str, num_classes: int) -> torch.Tensor:
    """(N, C) bool: the rows that count as the sample's own class(es)."""
    if kind == "index":
        return nn.functional.one_hot(targets, num_classes).bool()
    return targets > 0


def logit_gradients(head: Head, logits: torch.Tensor, targets: torch.Tensor, kind: str):
    """dL_i/dz_i per sample: the batch loss is a mean over samples, so N · dL/dz."""
    logits = logits.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = head.loss(logits, targets, kind)
        (grad,) = torch.autograd.grad(loss, logits)
    return grad * len(logits)


def per_sample_split(
    features: torch.Tensor, grad: torch.Tensor, is_true: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (true, other) sums of weight-row gradient norms, each of shape (N,)."""
    row_norms = grad.abs() * features.norm(dim=1, keepdim=True)  # (N, C): |dL/dz_k| · ‖h‖
    true = (row_norms * is_true).sum(dim=1)
    return true, row_norms.sum(dim=1) - true


@torch.no_grad()
def grad_rows(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """``grad_rows/true``, ``grad_rows/other`` (means over the probe samples) and
    ``grad_rows/other_share`` = other / (true + other) for ``model`` (a ``Classifier``).

    Measured in eval mode (no dropout, BatchNorm's running statistics neither used for the
    batch nor updated) so the probe never changes the training run it observes.
    """
    was_training = model.training
    model.eval()
    try:
        features = model.backbone(images)
        logits = model.classifier(features)
        kind = model.kind_for("train")
        grad = logit_gradients(model.head, logits, targets, kind)
        is_true = true_rows(targets, kind, logits.shape[1])
        true, other = per_sample_split(features, grad, is_true)
    finally:
        model.train(was_training)
    true_mean, other_mean = true.mean().item(), other.mean().item()
    total = true_mean + other_mean
    return {
        "grad_rows/true": true_mean,
        "grad_rows/other": other_mean,
        "grad_rows/other_share": other_mean / total if total > 0 else 0.0,
    }
