"""An example generator for ``scripts/coverage.py --generator`` (docs/statistics.md).

A model of one's own classifier: top-label confidences c from a histogram (here: a made-up
one, most mass near 1, like a trained MNIST model's), and a true hit rate g(c) a little
below c where c < 0.9 (overconfident there, calibrated above). The population value of
each estimator is computed once, on a large sample with each hit replaced by its
expectation g(c) (no label noise), by the same code headlab scores runs with.

    python scripts/coverage.py --generator docs/coverage_generator.py:GENERATOR --reps 200
"""

from __future__ import annotations

import numpy as np
import torch

from headlab.calibration.simulate import as_predictions, population

#: confidence histogram: bin edges and the share of predictions in each bin
EDGES = np.array([0.1, 0.5, 0.7, 0.9, 0.99, 0.999, 1.0])
SHARES = np.array([0.01, 0.02, 0.04, 0.08, 0.15, 0.70])


class HistogramModel:
    """Confidences drawn from a histogram (uniform within a bin), hits with rate g(c)."""

    def __init__(self, dip: float = 0.05, population_draws: int = 1_000_000) -> None:
        self.dip = dip
        self.population_draws = population_draws
        self._truth: dict[str, float] | None = None

    def confidence(self, n: int, rng: np.random.Generator) -> np.ndarray:
        bins = rng.choice(len(SHARES), size=n, p=SHARES)
        return rng.uniform(EDGES[bins], EDGES[bins + 1])

    def expected_hit(self, c: np.ndarray) -> np.ndarray:
        return np.where(c < 0.9, c - self.dip * (0.9 - c) / 0.8, c)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """10-class probabilities and targets: what ``scripts/coverage.py`` scores."""
        c = self.confidence(n, rng)
        return as_predictions(c, (rng.random(n) < self.expected_hit(c)).astype(float))

    @property
    def truth(self) -> dict[str, float]:
        """Population values, computed on first use (~20 s at 10^6 draws)."""
        if self._truth is None:
            names = ("acc", "ece", "ece_adaptive", "smece", "brier", "nll")
            self._truth = population(self, names, self.population_draws, seed=12345)
        return self._truth


GENERATOR = HistogramModel()
#: the same model with fewer draws for its truth: for a quick try (and the tests)
QUICK = HistogramModel(population_draws=20_000)
