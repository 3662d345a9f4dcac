"""Output heads: how logits become probabilities, which loss trains them, which targets fit.

A head is deliberately tiny and stateless so that swapping it (``head=sigmoid``) changes
exactly one thing in an experiment. Targets come in three kinds, named by the data module:

* ``index``        -- one class index per sample (plain MNIST),
* ``multi_hot``    -- a 0/1 vector per sample (multi-label MNIST),
* ``distribution`` -- a probability vector per sample (soft-label MNIST).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

TargetKind = Literal["index", "multi_hot", "distribution"]
TARGET_KINDS: tuple[TargetKind, ...] = ("index", "multi_hot", "distribution")


class HeadDataMismatch(ValueError):
    """A head was asked to train on a target kind it has no loss for."""


class Head:
    """Base class; subclasses set ``name``, ``accepts`` and implement ``probs``/``loss``."""

    name: ClassVar[str] = "head"
    accepts: ClassVar[frozenset[str]] = frozenset(TARGET_KINDS)
    #: whether probabilities sum to one (softmax family) or are per-class (sigmoid family)
    exclusive: ClassVar[bool] = True

    def __init__(self, threshold: float = 0.5) -> None:
        # multi-label prediction: a label is predicted where its probability > threshold
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"head.threshold must lie in (0, 1), got {threshold}")
        self.threshold = float(threshold)

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        raise NotImplementedError

    def check_fits(self, kind: str, data_name: str = "this data") -> None:
        """Fail before any data is loaded when this head has no loss for ``kind`` targets."""
        if kind not in self.accepts:
            fitting = ", ".join(sorted(name for name, cls in HEADS.items() if kind in cls.accepts))
            raise HeadDataMismatch(
                f"head={self.name} cannot train on {data_name}: its targets are '{kind}' and "
                f"head={self.name} only accepts {sorted(self.accepts)}. "
                f"Heads that fit {data_name}: {fitting}."
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _as_distribution(target: torch.Tensor, kind: TargetKind, num_classes: int) -> torch.Tensor:
    """Every target kind as a per-sample probability vector (multi-hot rows normalised)."""
    if kind == "index":
        return F.one_hot(target, num_classes).float()
    if kind == "multi_hot":
        target = target.float()
        return target / target.sum(dim=1, keepdim=True).clamp_min(1.0)
    return target.float()


class SoftmaxCE(Head):
    """Softmax + cross-entropy: classes compete for one unit of probability."""

    name = "softmax"

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=-1)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        if kind == "index":
            return F.cross_entropy(logits, target)
        return F.cross_entropy(logits, _as_distribution(target, kind, logits.shape[-1]))


class SoftLabelCE(SoftmaxCE):
    """Cross-entropy against a target distribution; hard labels are label-smoothed first."""

    name = "soft"

    def __init__(self, smoothing: float = 0.1, threshold: float = 0.5) -> None:
        super().__init__(threshold)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"head.smoothing must lie in [0, 1), got {smoothing}")
        self.smoothing = float(smoothing)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        if kind == "index":
            return F.cross_entropy(logits, target, label_smoothing=self.smoothing)
        return super().loss(logits, target, kind)

    def __repr__(self) -> str:
        return f"SoftLabelCE(smoothing={self.smoothing})"


class SigmoidBCE(Head):
    """One independent sigmoid per class + binary cross-entropy against one-/multi-hot targets."""

    name = "sigmoid"
    exclusive = False

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        if kind == "index":
            target = F.one_hot(target, logits.shape[-1])
        return F.binary_cross_entropy_with_logits(logits, target.float())


class SigmoidNLL(Head):
    """The naive "replace softmax by sigmoid" head: -log sigmoid(true logit), nothing else.

    Only the true class's logit receives gradient, so wrong classes are never pushed down.
    """

    name = "sigmoid_nll"
    accepts = frozenset({"index"})
    exclusive = False

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        self.check_fits(kind)
        true_logit = logits.gather(1, target.unsqueeze(1)).squeeze(1)
        return -F.logsigmoid(true_logit).mean()


HEADS: dict[str, type[Head]] = {
    cls.name: cls for cls in (SoftmaxCE, SigmoidBCE, SoftLabelCE, SigmoidNLL)
}
