"""Post-hoc calibrators: fitted on validation logits, applied to test logits.

A calibrator is built on the head's own probability map (``head.probs``, or any callable from
logits to probabilities): it maps the logits, then lets the head turn them into probabilities,
so a calibrated model is the same model with other logits (``sigmoid_softmax`` stays softmax of
sigmoids). Maps whose rows sum to one are calibrated as one categorical distribution; the
others per label, as what they are (one Bernoulli per class), with the same method names:

* ``temperature``: softmax(z / T); sigmoid(z / T), one T for all labels;
* ``vector``: softmax(a * z + b), a and b per class; Platt, sigmoid(a * z + b) per label;
* ``matrix``: softmax(W z + b) or sigmoid(W z + b), the off-diagonal of W and b L2-penalised
  (ODIR, Kull et al. 2019) so 110 parameters do not overfit a few thousand val samples;
* ``isotonic``: scikit-learn's isotonic regression of each class's probability against "is
  this class" (one-vs-rest); softmax rows renormalised to sum to 1.

The affine maps start at the identity and minimise the head's own likelihood (categorical or
per-label Bernoulli NLL) with L-BFGS in float64. Where the map is plain softmax or sigmoid
(found on fixed probe logits) that likelihood is computed from the logits, stable at any
logit; any other map's likelihood is computed from its probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from sklearn.isotonic import IsotonicRegression

from headlab.calibration import METHODS
from headlab.calibration.scoring import bernoulli_nll, categorical_nll, logits_nll

#: ODIR strengths (Kull et al. 2019): lambda / (K(K-1)) * sum of squared off-diagonal weights
#: plus mu / K * sum of squared biases, added to the mean NLL
ODIR_LAMBDA = 0.1
ODIR_MU = 0.1


class CalibrationFailed(RuntimeError):
    """A calibrator could not be fitted; the message is recorded in metrics.json."""


#: a head's probability map: logits (N, K) -> probabilities (N, K)
ProbabilityMap = Callable[[torch.Tensor], torch.Tensor]
#: how a map is scored: plain softmax / sigmoid from the logits, or from its probabilities
Link = Literal["softmax", "sigmoid", "categorical", "bernoulli"]


def link_of(probs_of: ProbabilityMap) -> Link:
    """What the map is, found on fixed probe logits: plain softmax or sigmoid, else a map
    whose rows sum to one (categorical) or not (one Bernoulli per class).

    >>> from headlab.heads import SigmoidBCE, SigmoidSoftmax, SoftmaxCE
    >>> [link_of(h.probs) for h in (SoftmaxCE(), SigmoidBCE(), SigmoidSoftmax())]
    ['softmax', 'sigmoid', 'categorical']
    """
    probe = torch.linspace(-6.0, 6.0, 30, dtype=torch.float64).reshape(3, 10)
    probe[1] = probe[1].flip(0) / 3  # rows of different spread and order
    probs = probs_of(probe).double()
    for name, reference in (("softmax", probe.softmax(dim=1)), ("sigmoid", probe.sigmoid())):
        if torch.allclose(probs, reference, rtol=0.0, atol=1e-12):
            return name
    total = probs.sum(dim=1)
    return "categorical" if torch.allclose(total, torch.ones_like(total)) else "bernoulli"


def map_nll(link: Link, probs_of: ProbabilityMap, logits: torch.Tensor, target) -> torch.Tensor:
    """Mean over samples of the map's likelihood at ``logits`` (differentiable): from the
    logits for plain softmax/sigmoid (``scoring.logits_nll``), else from the probabilities."""
    if link in ("softmax", "sigmoid"):
        return logits_nll(link == "softmax", logits, target)
    nll = categorical_nll if link == "categorical" else bernoulli_nll
    return nll(probs_of(logits), target).mean()


@dataclass
class Calibrator:
    """Fitted on (val logits, val targets); ``probs(test logits)`` gives calibrated ones.

    ``probs_of`` is the head's probability map (``head.probs``): calibrated probabilities
    come out of the same map the head uses, whatever it is."""

    probs_of: ProbabilityMap
    params: dict[str, Any] = field(default_factory=dict)
    name: ClassVar[str] = ""

    @cached_property
    def link(self) -> Link:
        return link_of(self.probs_of)

    @property
    def exclusive(self) -> bool:
        """Whether the map gives one distribution per sample (rows summing to one)."""
        return self.link in ("softmax", "categorical")

    def to_probs(self, logits: torch.Tensor) -> torch.Tensor:
        return self.probs_of(logits)

    def fit(self, logits: torch.Tensor, target: torch.Tensor) -> Calibrator:
        raise NotImplementedError

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Affine(Calibrator):
    """z -> scale * z (+ bias), parameters fitted by L-BFGS on the head's likelihood."""

    def initial(self, k: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def transform(self, logits: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def penalty(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.zeros((), dtype=torch.float64)

    def fit(self, logits: torch.Tensor, target: torch.Tensor) -> Affine:
        logits = logits.double()
        p = {k: v.clone().requires_grad_(True) for k, v in self.initial(logits.shape[1]).items()}
        optimizer = torch.optim.LBFGS(
            list(p.values()), lr=1.0, max_iter=500, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = map_nll(self.link, self.probs_of, self.transform(logits, p), target)
            loss = loss + self.penalty(p)
            loss.backward()
            return loss

        loss = optimizer.step(closure)
        fitted = {k: v.detach() for k, v in p.items()}
        if not torch.isfinite(loss) or not all(torch.isfinite(v).all() for v in fitted.values()):
            raise CalibrationFailed(f"L-BFGS ended at a non-finite loss or parameters ({loss})")
        self.params = fitted
        return self

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        return self.to_probs(self.transform(logits.double(), self.params))


class Temperature(Affine):
    """One T > 0 for all logits, fitted by minimising the val NLL of ``logits / T``.

    Logits made six times sharper get a temperature six times larger back:

    >>> from headlab.heads import SoftmaxCE
    >>> g = torch.Generator().manual_seed(0)
    >>> labels = torch.randint(0, 10, (2000,), generator=g)
    >>> logits = torch.randn(2000, 10, generator=g)
    >>> logits[torch.arange(2000), labels] += 2.0
    >>> t1 = Temperature(SoftmaxCE().probs).fit(logits, labels).temperature
    >>> t6 = Temperature(SoftmaxCE().probs).fit(6.0 * logits, labels).temperature
    >>> round(t6 / t1, 2)
    6.0
    """

    name = "temperature"

    def initial(self, k: int) -> dict[str, torch.Tensor]:
        return {"log_temperature": torch.zeros(1, dtype=torch.float64)}

    def transform(self, logits: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return logits / p["log_temperature"].exp()

    @property
    def temperature(self) -> float:
        return float(self.params["log_temperature"].exp())


class Vector(Affine):
    name = "vector"

    def initial(self, k: int) -> dict[str, torch.Tensor]:
        return {
            "scale": torch.ones(k, dtype=torch.float64),
            "bias": torch.zeros(k, dtype=torch.float64),
        }

    def transform(self, logits: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return logits * p["scale"] + p["bias"]


class Matrix(Affine):
    name = "matrix"

    def initial(self, k: int) -> dict[str, torch.Tensor]:
        return {
            "weight": torch.eye(k, dtype=torch.float64),
            "bias": torch.zeros(k, dtype=torch.float64),
        }

    def transform(self, logits: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return logits @ p["weight"].T + p["bias"]

    def penalty(self, p: dict[str, torch.Tensor]) -> torch.Tensor:
        weight = p["weight"]
        k = weight.shape[0]
        off_diagonal = weight - torch.diag(torch.diagonal(weight))
        return (
            ODIR_LAMBDA * off_diagonal.square().sum() / (k * (k - 1))
            + ODIR_MU * p["bias"].square().sum() / k
        )


class Isotonic(Calibrator):
    """scikit-learn's IsotonicRegression of each class's probability against "is this class"
    (one-vs-rest); for the softmax family the calibrated rows are renormalised to sum to 1."""

    name = "isotonic"

    def fit(self, logits: torch.Tensor, target: torch.Tensor) -> Isotonic:
        probs = self.to_probs(logits.double()).numpy()
        k = probs.shape[1]
        one_hot = target.numpy() if target.dim() == 2 else np.eye(k)[target.numpy()]
        self.models = []
        for c in range(k):
            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.models.append(model.fit(probs[:, c], one_hot[:, c]))
        self.params = {
            "x": [m.X_thresholds_.tolist() for m in self.models],
            "y": [m.y_thresholds_.tolist() for m in self.models],
        }
        return self

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        probs = self.to_probs(logits.double()).numpy()
        out = np.stack([m.predict(probs[:, c]) for c, m in enumerate(self.models)], axis=1)
        if self.exclusive:
            total = out.sum(axis=1, keepdims=True)
            # a row every class model put at 0: no information left, spread it evenly
            out = np.where(total > 0, out / np.where(total > 0, total, 1), 1.0 / out.shape[1])
        return torch.from_numpy(out)


CALIBRATORS: dict[str, type[Calibrator]] = {
    cls.name: cls for cls in (Temperature, Vector, Matrix, Isotonic)
}


def fit_calibrator(
    method: str, probs_of: ProbabilityMap, logits: torch.Tensor, target: torch.Tensor
) -> Calibrator:
    """Fit ``method`` on the head's probability map ``probs_of`` (``head.probs``); any
    failure becomes ``CalibrationFailed`` with the reason."""
    if method not in CALIBRATORS:
        raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")
    try:
        return CALIBRATORS[method](probs_of).fit(logits, target)
    except CalibrationFailed:
        raise
    except Exception as error:  # the reason goes into metrics.json
        raise CalibrationFailed(f"{type(error).__name__}: {error}") from error


def params_as_json(calibrator: Calibrator) -> dict[str, Any]:
    return {
        k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in calibrator.params.items()
    }
