"""Output heads: how logits become probabilities, which loss trains them, which targets fit.

A head is deliberately tiny and stateless so that swapping it (``head=sigmoid``) changes
exactly one thing in an experiment. Targets come in three kinds, named by the data module:

* ``index``        -- one class index per sample (plain MNIST),
* ``multi_hot``    -- a 0/1 vector per sample (multi-label MNIST),
* ``distribution`` -- a probability vector per sample (soft-label MNIST).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from headlab.errors import ConfigValueError, RunError

TargetKind = Literal["index", "multi_hot", "distribution"]
TARGET_KINDS: tuple[TargetKind, ...] = ("index", "multi_hot", "distribution")


class HeadDataMismatch(RunError, ValueError):
    """A head was asked to train on a target kind it has no loss for."""


#: the one table of head parameter rules: the heads' constructors and the start-up config
#: check (``run.checks``, which names every bad ``head.<key>`` at once) both read it
PARAMETER_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "threshold": (lambda v: 0.0 < v < 1.0, "must lie in (0, 1)"),
    "smoothing": (lambda v: 0.0 <= v < 1.0, "must lie in [0, 1)"),
    "gamma": (lambda v: v >= 0.0, "must be >= 0"),
    "gamma_pos": (lambda v: v >= 0.0, "must be >= 0"),
    "gamma_neg": (lambda v: v >= 0.0, "must be >= 0"),
    "clip": (lambda v: 0.0 <= v < 1.0, "must lie in [0, 1)"),
    "epsilon": (lambda v: v >= -1.0, "must be >= -1"),
    "alpha": (lambda v: 0.0 <= v <= 1.0, "must be null or lie in [0, 1]"),
}
#: parameters that take one of a few names (null: none)
PARAMETER_CHOICES: dict[str, tuple[str, ...]] = {"gamma_schedule": ("flsd53",)}


def checked(name: str, value: float) -> float:
    """``value`` as a float when it obeys ``PARAMETER_RULES[name]``, else one clear error.

    >>> checked("gamma", 2)
    2.0
    >>> checked("smoothing", 1.0)
    Traceback (most recent call last):
    ...
    headlab.errors.ConfigValueError: head.smoothing must lie in [0, 1), got 1.0
    """
    ok, rule = PARAMETER_RULES[name]
    if not ok(value):
        raise ConfigValueError(f"head.{name} {rule}, got {value}")
    return float(value)


class Head:
    """Base class; subclasses set ``name``, ``accepts`` and implement ``probs``/``loss``."""

    name: ClassVar[str] = "head"
    accepts: ClassVar[frozenset[str]] = frozenset(TARGET_KINDS)
    #: whether probabilities sum to one (softmax family) or are per-class (sigmoid family)
    exclusive: ClassVar[bool] = True
    #: one line each for reports: how logits become probabilities, and the loss; ``{name}``
    #: fields are filled from the instance's own parameters by ``describe``
    PROBABILITIES: ClassVar[str] = "?"
    LOSS: ClassVar[str] = "?"

    def __init__(self, threshold: float = 0.5) -> None:
        # multi-label prediction: a label is predicted where its probability > threshold
        self.threshold = checked("threshold", threshold)

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        raise NotImplementedError

    def describe(self, num_classes: int = 10) -> tuple[str, str]:
        """(probabilities, loss) in one line each, with this instance's parameters, so a
        report says what was run (``head.gamma=3`` reads gamma = 3), not what the default is.

        >>> FocalLoss(gamma=3).describe()
        ('softmax', 'focal loss, gamma = 3')
        """
        return self.PROBABILITIES, self.LOSS.format(**vars(self))

    def check_fits(self, kind: str, data_name: str = "this data") -> None:
        """Fail before any data is loaded when this head has no loss for ``kind`` targets.

        >>> SigmoidNLL().check_fits("multi_hot", "data=multilabel_mnist")
        Traceback (most recent call last):
        ...
        headlab.heads.HeadDataMismatch: head=sigmoid_nll cannot train on data=multilabel_mnist: ...
        """
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
    """Softmax + cross-entropy: classes compete for one unit of probability.

    >>> head = SoftmaxCE()
    >>> logits = torch.tensor([[2.0, 0.0, 0.0]])
    >>> round(head.probs(logits).sum().item(), 6)
    1.0
    >>> round(head.loss(logits, torch.tensor([0]), "index").item(), 4)  # -log p_0
    0.2395
    """

    name = "softmax"
    PROBABILITIES = "softmax"
    LOSS = "cross-entropy"

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=-1)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        if kind == "index":
            return F.cross_entropy(logits, target)
        return F.cross_entropy(logits, _as_distribution(target, kind, logits.shape[-1]))


class SoftLabelCE(SoftmaxCE):
    """Cross-entropy against a target distribution; hard labels are label-smoothed first."""

    name = "soft"
    LOSS = (
        "cross-entropy against labels smoothed by {smoothing:g} (label smoothing, not the "
        "soft-label data)"
    )

    def __init__(self, smoothing: float = 0.1, threshold: float = 0.5) -> None:
        super().__init__(threshold)
        self.smoothing = checked("smoothing", smoothing)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        if kind == "index":
            return F.cross_entropy(logits, target, label_smoothing=self.smoothing)
        return super().loss(logits, target, kind)

    def __repr__(self) -> str:
        return f"SoftLabelCE(smoothing={self.smoothing})"


class SigmoidSoftmax(SoftmaxCE):
    """A sigmoid on the last layer's outputs, then softmax and cross-entropy on those.

    Each sigmoid lies in (0, 1), so no class can get more than e / (e + K - 1) of the
    probability (0.232 for K = 10) however confident the network is: the loss can never
    reach 0 and keeps pushing every logit outwards. Class-index targets only (a target
    distribution above that bound could not be fitted).
    """

    name = "sigmoid_softmax"
    accepts = frozenset({"index"})
    PROBABILITIES = "softmax of the sigmoids of the logits"

    def describe(self, num_classes: int = 10) -> tuple[str, str]:
        """The loss line states the cap e / (e + K - 1) for the data's class count K."""
        cap = math.e / (math.e + num_classes - 1)
        return self.PROBABILITIES, (
            f"cross-entropy: no class can get more than e / (e + {num_classes - 1}) = {cap:.3f}, "
            "so the loss never reaches 0 and its ECE is large by construction"
        )

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid().softmax(dim=-1)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        self.check_fits(kind)
        return F.cross_entropy(logits.sigmoid(), target)


class SigmoidBCE(Head):
    """One independent sigmoid per class + binary cross-entropy against one-/multi-hot targets.

    >>> head = SigmoidBCE()
    >>> head.probs(torch.tensor([[0.0, 0.0, 0.0]])).tolist()  # need not sum to 1
    [[0.5, 0.5, 0.5]]
    >>> round(head.loss(torch.zeros(1, 3), torch.tensor([[1, 0, 1]]), "multi_hot").item(), 4)
    0.6931
    """

    name = "sigmoid"
    exclusive = False
    PROBABILITIES = "one sigmoid per class"
    LOSS = "binary cross-entropy against one-hot targets"

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        if kind == "index":
            target = F.one_hot(target, logits.shape[-1])
        return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


class SigmoidNLL(Head):
    """The naive "replace softmax by sigmoid" head: -log sigmoid(true logit), nothing else.

    Only the true class's logit receives gradient, so wrong classes are never pushed down.
    """

    name = "sigmoid_nll"
    accepts = frozenset({"index"})
    exclusive = False
    PROBABILITIES = "one sigmoid per class"
    LOSS = (
        "-log sigmoid(z_y) only: **deliberately degenerate**, the wrong classes get no "
        "gradient, so every output drifts towards 1"
    )

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        true_logit = logits.gather(1, target.unsqueeze(1)).squeeze(1)
        return -F.logsigmoid(true_logit).mean()


def _focal_weight(prob: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """(1 - prob)^gamma, with 1 - prob kept above the smallest float so that the gradient of
    the power stays finite where a probability saturates at 1 (its loss term is 0 there)."""
    return (1.0 - prob).clamp_min(torch.finfo(prob.dtype).tiny) ** gamma


class FocalLoss(SoftmaxCE):
    """Softmax + focal loss -(1 - p_t)^gamma log p_t (Lin et al. 2017), mean over samples.

    Easy samples (p_t near 1) are down-weighted by (1 - p_t)^gamma relative to cross-entropy;
    Mukhoti et al. 2020 found this also calibrates better. ``gamma_schedule="flsd53"`` is
    their sample-dependent variant: gamma = 5 where p_t < 0.2, else 3 (``gamma`` is then
    unused). A distribution target y generalises p_t to -sum_k y_k (1 - p_k)^gamma_k log p_k.
    """

    name = "focal"
    accepts = frozenset({"index", "distribution"})
    SCHEDULES: ClassVar[tuple[str, ...]] = PARAMETER_CHOICES["gamma_schedule"]
    LOSS = "focal loss, gamma = {gamma:g}"

    def describe(self, num_classes: int = 10) -> tuple[str, str]:
        """A schedule replaces the constant gamma, so the line names the schedule instead."""
        if self.gamma_schedule == "flsd53":
            return self.PROBABILITIES, "focal loss, gamma by FLSD-53 (5 where p_t < 0.2, else 3)"
        return super().describe(num_classes)

    def __init__(
        self, gamma: float = 2.0, gamma_schedule: str | None = None, threshold: float = 0.5
    ) -> None:
        super().__init__(threshold)
        if gamma_schedule is not None and gamma_schedule not in self.SCHEDULES:
            raise ConfigValueError(
                f"head.gamma_schedule must be null or one of {list(self.SCHEDULES)}, "
                f"got {gamma_schedule!r}"
            )
        self.gamma, self.gamma_schedule = checked("gamma", gamma), gamma_schedule

    def gamma_for(self, prob: torch.Tensor) -> float | torch.Tensor:
        """The focusing exponent for each probability (a constant without a schedule)."""
        if self.gamma_schedule == "flsd53":
            return torch.where(prob < 0.2, 5.0, 3.0)
        return self.gamma

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        log_p = logits.log_softmax(dim=-1)
        if kind == "index":
            log_p = log_p.gather(1, target.unsqueeze(1)).squeeze(1)
        p = log_p.exp()
        terms = -_focal_weight(p, self.gamma_for(p.detach())) * log_p
        if kind == "index":
            return terms.mean()
        return (target.to(terms.dtype) * terms).sum(dim=1).mean()

    def __repr__(self) -> str:
        return f"FocalLoss(gamma={self.gamma}, gamma_schedule={self.gamma_schedule})"


class PolyLoss(SoftmaxCE):
    """Softmax + Poly-1 loss CE + epsilon (1 - p_t) (Leng et al. 2022), mean over samples.

    epsilon > 0 keeps pushing confident correct samples, epsilon < 0 pushes them less. For
    epsilon >= -1 the loss falls as p_t rises (its slope is -1/p_t - epsilon); below -1 it
    would rise again near p_t = 1, rewarding doubt in the true class. A distribution target y uses
    p_t = sum_k y_k p_k, as the paper does for label-smoothed targets.
    """

    name = "poly"
    accepts = frozenset({"index", "distribution"})
    LOSS = "Poly-1: cross-entropy + {epsilon:g}·(1 - p_y)"

    def __init__(self, epsilon: float = 1.0, threshold: float = 0.5) -> None:
        super().__init__(threshold)
        self.epsilon = checked("epsilon", epsilon)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        probs = logits.softmax(dim=-1)
        if kind == "index":
            p_t = probs.gather(1, target.unsqueeze(1)).squeeze(1)
        else:
            p_t = (target.to(probs.dtype) * probs).sum(dim=1)
        return super().loss(logits, target, kind) + self.epsilon * (1.0 - p_t).mean()

    def __repr__(self) -> str:
        return f"PolyLoss(epsilon={self.epsilon})"


class SigmoidFocal(SigmoidBCE):
    """One sigmoid per class + binary focal loss per label (Lin et al. 2017, RetinaNet).

    BCE_ij (1 - p_t)^gamma, times alpha for positives and 1 - alpha for negatives when
    ``alpha`` is set, averaged over samples and labels: torchvision's ``sigmoid_focal_loss``
    with ``reduction="mean"``, written out because torchvision's gradient is NaN where a
    probability saturates and gamma < 1.
    """

    name = "sigmoid_focal"
    accepts = frozenset({"index", "multi_hot"})
    LOSS = "binary focal loss per class, gamma = {gamma:g}"

    def describe(self, num_classes: int = 10) -> tuple[str, str]:
        """alpha appears only when set (unset: positives and negatives weigh the same)."""
        probabilities, loss = super().describe(num_classes)
        return probabilities, loss if self.alpha is None else f"{loss}, alpha = {self.alpha:g}"

    def __init__(
        self, gamma: float = 2.0, alpha: float | None = None, threshold: float = 0.5
    ) -> None:
        super().__init__(threshold)
        self.gamma = checked("gamma", gamma)
        self.alpha = None if alpha is None else checked("alpha", alpha)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        if kind == "index":
            target = F.one_hot(target, logits.shape[-1])
        target = target.to(logits.dtype)
        p = logits.sigmoid()
        p_t = p * target + (1.0 - p) * (1.0 - target)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        loss = loss * _focal_weight(p_t, self.gamma)
        if self.alpha is not None:
            loss = loss * (self.alpha * target + (1.0 - self.alpha) * (1.0 - target))
        return loss.mean()

    def __repr__(self) -> str:
        return f"SigmoidFocal(gamma={self.gamma}, alpha={self.alpha})"


class AsymmetricLoss(SigmoidBCE):
    """One sigmoid per class + asymmetric loss (ASL, Ridnik et al. 2021).

    Positives: -(1 - p)^gamma_pos log p. Negatives: the probability is shifted down by the
    margin ``clip``, p_m = max(p - clip, 0), and cost -p_m^gamma_neg log(1 - p_m), so easy
    negatives (p < clip) cost nothing. Averaged over samples and labels like the other
    heads; the paper's reference code *sums* over both, i.e. its loss is this one times
    batch size x number of labels (use a learning rate that much smaller to compare).
    The focusing weights keep their gradient (the reference code can detach them).
    """

    name = "asl"
    accepts = frozenset({"index", "multi_hot"})
    LOSS = "asymmetric loss, gamma+ = {gamma_pos:g}, gamma- = {gamma_neg:g}, clip {clip:g}"

    def __init__(
        self,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        threshold: float = 0.5,
    ) -> None:
        super().__init__(threshold)
        self.gamma_pos = checked("gamma_pos", gamma_pos)
        self.gamma_neg = checked("gamma_neg", gamma_neg)
        self.clip = checked("clip", clip)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, kind: TargetKind) -> torch.Tensor:
        if kind == "index":
            target = F.one_hot(target, logits.shape[-1])
        target = target.to(logits.dtype)
        p = logits.sigmoid()
        positive = -_focal_weight(p, self.gamma_pos) * F.logsigmoid(logits)
        if self.clip > 0:  # 1 - p_m = min(1 - p + clip, 1) >= clip: its log cannot underflow
            one_minus_pm = (1.0 - p + self.clip).clamp_max(1.0)
            log_one_minus_pm = one_minus_pm.log()
        else:  # exactly BCE's negative term, also for very large logits
            one_minus_pm, log_one_minus_pm = 1.0 - p, F.logsigmoid(-logits)
        negative = -_focal_weight(one_minus_pm, self.gamma_neg) * log_one_minus_pm
        return (target * positive + (1.0 - target) * negative).mean()

    def __repr__(self) -> str:
        return (
            f"AsymmetricLoss(gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, "
            f"clip={self.clip})"
        )


HEADS: dict[str, type[Head]] = {
    cls.name: cls
    for cls in (
        SoftmaxCE,
        SigmoidBCE,
        SoftLabelCE,
        SigmoidNLL,
        FocalLoss,
        SigmoidFocal,
        AsymmetricLoss,
        PolyLoss,
        SigmoidSoftmax,
    )
}
