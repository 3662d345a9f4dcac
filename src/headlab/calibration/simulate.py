"""Synthetic predictions with a known population calibration, for measuring coverage.

A generator draws top-label confidences c from a distribution shaped like a trained model's
and a hit with probability g(c) (g(c) = c: calibrated). The population value of every
estimator is its value on a very large sample with each hit replaced by its expectation
g(c): the binned gaps, the smoothed residual and the mean scores then carry no label noise,
only confidence-sampling noise, which at 10^6 draws is far below the intervals' widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

K = 10  # classes: the top class gets c, the other nine (1 - c) / 9 each


@dataclass(frozen=True)
class Generator:
    """``c = low + (1 - low) * x`` or ``1 - (1 - low) * x`` with x ~ Beta(a, b); g(c) = c**power."""

    name: str
    a: float
    b: float
    near_one: bool  # c = 1 - 0.9 x (most mass near 1, like MNIST) else c = 0.1 + 0.9 x
    power: float = 1.0  # > 1: overconfident

    def confidence(self, n: int, rng: np.random.Generator) -> np.ndarray:
        x = rng.beta(self.a, self.b, n)
        c = 1 - 0.9 * x if self.near_one else 0.1 + 0.9 * x
        return np.clip(c, 0.1 + 1e-9, 1.0)

    def expected_hit(self, c: np.ndarray) -> np.ndarray:
        return c**self.power

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.confidence(n, rng)
        hit = rng.random(n) < self.expected_hit(c)
        return as_predictions(c, hit.astype(float))


#: confidences like the study's softmax runs: mean 0.974 (their accuracy), most mass near 1
SOFTMAX_LIKE = {"a": 0.3, "b": 10.0, "near_one": True}

GENERATORS = (
    Generator("mnist_calibrated", 0.5, 15.0, near_one=True),
    Generator("mnist_overconfident", 0.5, 15.0, near_one=True, power=1.5),
    Generator("weak_calibrated", 4.0, 1.5, near_one=False),
    Generator("weak_overconfident", 4.0, 1.5, near_one=False, power=1.15),
    # nearly calibrated, where MNIST heads sit (population ECE 0.001-0.005), both directions
    Generator("softmax_calibrated", **SOFTMAX_LIKE),
    Generator("softmax_over_1.05", **SOFTMAX_LIKE, power=1.05),
    Generator("softmax_over_1.1", **SOFTMAX_LIKE, power=1.1),
    Generator("softmax_over_1.15", **SOFTMAX_LIKE, power=1.15),
    Generator("softmax_under_0.9", **SOFTMAX_LIKE, power=0.9),
    Generator("softmax_under_0.85", **SOFTMAX_LIKE, power=0.85),
    Generator("softmax_over_1.5", **SOFTMAX_LIKE, power=1.5),
    Generator("softmax_over_3", **SOFTMAX_LIKE, power=3.0),
    # a weaker model, up to a population ECE of ~0.1
    Generator("weak_under_0.95", 4.0, 1.5, near_one=False, power=0.95),
    Generator("weak_over_1.25", 4.0, 1.5, near_one=False, power=1.25),  # ece ~0.046
    Generator("weak_over_1.4", 4.0, 1.5, near_one=False, power=1.4),  # ece ~0.072
    Generator("weak_over_1.5", 4.0, 1.5, near_one=False, power=1.5),
    Generator("weak_over_1.55", 4.0, 1.5, near_one=False, power=1.55),
)


def as_predictions(c: np.ndarray, hit: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """10-class probabilities whose top label has confidence ``c``; the target is that label
    where ``hit`` is 1, another one where it is 0 (fractional hits: see ``population``)."""
    probs = np.repeat(((1 - c) / (K - 1))[:, None], K, axis=1)
    probs[:, 0] = c
    targets = np.where(hit > 0.5, 0, 1)
    return torch.from_numpy(probs), torch.from_numpy(targets)


def population(gen: Generator, estimators: tuple[str, ...], m: int, seed: int) -> dict[str, float]:
    """Each estimator's population value: on ``m`` confidences with hit = g(c) in expectation.
    The ECE-type estimators see the expected hit directly; mean scores average both outcomes."""
    from headlab.calibration.estimators import equal_mass_ece, equal_width_ece
    from headlab.calibration.smooth import smooth_ece

    rng = np.random.default_rng(seed)
    c = torch.from_numpy(gen.confidence(m, rng))
    g = torch.from_numpy(gen.expected_hit(c.numpy()))
    ones = torch.ones(1, m, dtype=torch.float64)
    out = {}
    for name in estimators:
        if name == "ece":
            out[name] = float(equal_width_ece(c, g, ones, 15)[0])
        elif name == "ece_adaptive":
            out[name] = float(equal_mass_ece(c, g, ones, 15)[0])
        elif name == "smece":
            out[name] = float(smooth_ece(c, g, ones)[0])
        else:  # a mean of per-sample terms: each sample's hit and miss weighted by g(c)
            out[name] = population_mean(name, c, g)
    return out


def population_mean(name: str, c: torch.Tensor, g: torch.Tensor) -> float:
    """E over c of g(c) * score(hit) + (1 - g(c)) * score(miss) for a per-sample score."""
    from headlab.calibration.estimators import per_sample

    right = per_sample(*as_predictions(c.numpy(), np.ones(len(c))))[name]
    wrong = per_sample(*as_predictions(c.numpy(), np.zeros(len(c))))[name]
    return float((g * right + (1 - g) * wrong).mean())
