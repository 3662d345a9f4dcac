"""Post-hoc calibrators: fitted on validation logits, applied to test logits.

Softmax-family heads (``exclusive``) are calibrated as one categorical distribution; sigmoid
heads per label, as what they are (one Bernoulli per class), with the same method names:

* ``temperature``: softmax(z / T); sigmoid(z / T), one T for all labels;
* ``vector``: softmax(a * z + b), a and b per class; Platt, sigmoid(a * z + b) per label;
* ``matrix``: softmax(W z + b) or sigmoid(W z + b), the off-diagonal of W and b L2-penalised
  (ODIR, Kull et al. 2019) so 110 parameters do not overfit a few thousand val samples;
* ``isotonic``: scikit-learn's isotonic regression of each class's probability against "is
  this class" (one-vs-rest); softmax rows renormalised to sum to 1.

The affine maps start at the identity and minimise the head's own likelihood (categorical or
per-label Bernoulli NLL) with L-BFGS in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.isotonic import IsotonicRegression

from headlab.calibration import METHODS
from headlab.calibration.scoring import logits_nll

#: ODIR strengths (Kull et al. 2019): lambda / (K(K-1)) * sum of squared off-diagonal weights
#: plus mu / K * sum of squared biases, added to the mean NLL
ODIR_LAMBDA = 0.1
ODIR_MU = 0.1


class CalibrationFailed(RuntimeError):
    """A calibrator could not be fitted; the message is recorded in metrics.json."""


def to_probs(exclusive: bool, logits: torch.Tensor) -> torch.Tensor:
    return logits.softmax(dim=1) if exclusive else logits.sigmoid()


@dataclass
class Calibrator:
    """Fitted on (val logits, val targets); ``probs(test logits)`` gives calibrated ones."""

    exclusive: bool
    params: dict[str, Any] = field(default_factory=dict)
    name: ClassVar[str] = ""

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
            loss = logits_nll(self.exclusive, self.transform(logits, p), target)
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
        return to_probs(self.exclusive, self.transform(logits.double(), self.params))


class Temperature(Affine):
    """One T > 0 for all logits, fitted by minimising the val NLL of ``logits / T``.

    Logits made six times sharper get a temperature six times larger back:

    >>> g = torch.Generator().manual_seed(0)
    >>> labels = torch.randint(0, 10, (2000,), generator=g)
    >>> logits = torch.randn(2000, 10, generator=g)
    >>> logits[torch.arange(2000), labels] += 2.0
    >>> t1 = Temperature(exclusive=True).fit(logits, labels).temperature
    >>> t6 = Temperature(exclusive=True).fit(6.0 * logits, labels).temperature
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
        probs = to_probs(self.exclusive, logits.double()).numpy()
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
        probs = to_probs(self.exclusive, logits.double()).numpy()
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
    method: str, exclusive: bool, logits: torch.Tensor, target: torch.Tensor
) -> Calibrator:
    """Fit ``method``; any failure becomes ``CalibrationFailed`` with the reason."""
    if method not in CALIBRATORS:
        raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")
    try:
        return CALIBRATORS[method](exclusive).fit(logits, target)
    except CalibrationFailed:
        raise
    except Exception as error:  # the reason goes into metrics.json
        raise CalibrationFailed(f"{type(error).__name__}: {error}") from error


def params_as_json(calibrator: Calibrator) -> dict[str, Any]:
    return {
        k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in calibrator.params.items()
    }
