"""Seeded bootstrap resamples and percentile intervals.

A resample is a row of indices into the test set; passing the same rows to two runs'
predictions gives a paired bootstrap. Rows are drawn once with a seeded generator, so a run's
intervals are reproducible and do not touch the global RNG (training's RNG stays as it was).
"""

from __future__ import annotations

import torch


def resample_index(n: int, n_resamples: int, seed: int) -> torch.Tensor:
    """``n_resamples`` rows of ``n`` indices drawn with replacement from ``range(n)``."""
    if n < 1 or n_resamples < 1:
        raise ValueError(f"need n >= 1 and n_resamples >= 1, got n={n}, n_resamples={n_resamples}")
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, n, (n_resamples, n), generator=generator)


def counts_of(index: torch.Tensor, n: int) -> torch.Tensor:
    """How often each of the ``n`` samples appears in each resample row: (B, n) float64."""
    counts = torch.zeros(index.shape[0], n, dtype=torch.float64)
    return counts.scatter_add_(1, index, torch.ones_like(index, dtype=torch.float64))


def percentile_interval(values: torch.Tensor, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``values`` (linear interpolation,
    as ``numpy.percentile``)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    tail = (1.0 - level) / 2
    q = torch.tensor([tail, 1.0 - tail], dtype=torch.float64)
    low, high = torch.quantile(values.double().flatten(), q).tolist()
    return low, high
