"""The feature-space control of the OOD comparison: a Mahalanobis detector (Lee et al. 2018)
on the penultimate features, one mean per class and one covariance shared by all classes,
fitted on training images. It asks how much of a head's OOD gain a score on its features
would give without any change of head.

Score (higher = more in-distribution): minus the smallest squared Mahalanobis distance of a
feature vector to a class mean, ``-min_c (f - mu_c)^T P (f - mu_c)`` with ``P`` the inverse
of the pooled within-class covariance (scikit-learn's ``EmpiricalCovariance``, whose
precision is a pseudo-inverse, so a feature that never varies does no harm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: training images the detector is fitted on (the first n of the train split): ~0.2 s
TRAIN_IMAGES = 10_000


@dataclass(frozen=True)
class Mahalanobis:
    means: np.ndarray  # (C, D)
    precision: np.ndarray  # (D, D)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, n_classes: int) -> Mahalanobis:
        """Class means and the shared covariance of ``features`` (N, D) with ``labels`` (N,)."""
        from sklearn.covariance import EmpiricalCovariance

        features = np.asarray(features, dtype=np.float64)
        means = np.zeros((n_classes, features.shape[1]))
        for c in range(n_classes):
            rows = features[labels == c]
            if len(rows):
                means[c] = rows.mean(axis=0)
        centred = features - means[labels]
        precision = EmpiricalCovariance(assume_centered=True).fit(centred).precision_
        return cls(means, precision)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Minus the smallest squared distance to a class mean, per row (float64)."""
        f = np.asarray(features, dtype=np.float64)
        projected = f @ self.precision  # (N, D)
        # (f - m)^T P (f - m) = f^T P f - 2 m^T P f + m^T P m, for every class at once
        quadratic = np.einsum("nd,nd->n", projected, f)[:, None]
        cross = projected @ self.means.T
        means_term = np.einsum("cd,dk,ck->c", self.means, self.precision, self.means)[None]
        return -(quadratic - 2 * cross + means_term).min(axis=1)


def penultimate(model) -> torch.nn.Module | None:
    """The layer whose input is the penultimate feature vector (headlab's classifier layer);
    None for a model without one."""
    layer = getattr(model, "classifier", None)
    return layer if isinstance(layer, torch.nn.Linear) else None


class FeatureTap:
    """Keeps the input of ``layer`` on every forward while active (a forward pre-hook), so
    one pass gives logits and features."""

    def __init__(self, layer: torch.nn.Module) -> None:
        self.layer, self.kept, self.handle = layer, [], None

    def __enter__(self) -> FeatureTap:
        self.kept = []
        self.handle = self.layer.register_forward_pre_hook(
            lambda _module, inputs: self.kept.append(inputs[0].detach().float().cpu())
        )
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()

    def features(self) -> torch.Tensor:
        return torch.cat(self.kept) if self.kept else torch.empty(0)
