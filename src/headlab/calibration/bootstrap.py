"""The one resampling kernel: seeded bootstrap index rows, and percentile intervals.

A resample is a row of indices into a sample; passing the same rows to two runs' predictions
gives a paired bootstrap. Every bootstrap in headlab draws its rows here (per-run intervals,
the study's paired differences, the off-distribution scores), from a seeded generator, so
results are reproducible and never touch the global RNG (training's RNG stays as it was).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Rng = torch.Generator | int


def generator(rng: Rng) -> torch.Generator:
    """``rng`` itself when it is a generator (its state moves on), else a new one seeded
    with it."""
    if isinstance(rng, torch.Generator):
        return rng
    return torch.Generator().manual_seed(int(rng))


def resample_rows(n: int, n_resamples: int, rng: Rng, size: int | None = None) -> torch.Tensor:
    """``n_resamples`` rows of ``size`` (default ``n``) indices drawn with replacement from
    ``range(n)``: a (B, size) int64 tensor. ``rng``: a seed or a generator to draw from
    (several calls on one generator give independent rows, reproducible as a whole).

    >>> torch.equal(resample_rows(5, 3, 7), resample_rows(5, 3, torch.Generator().manual_seed(7)))
    True
    """
    size = n if size is None else size
    if n < 1 or n_resamples < 1 or size < 1:
        raise ValueError(
            f"need n, n_resamples and size >= 1, got n={n}, n_resamples={n_resamples}, size={size}"
        )
    return torch.randint(0, n, (n_resamples, size), generator=generator(rng))


def resample_index(n: int, n_resamples: int, seed: int) -> torch.Tensor:
    """``resample_rows`` from a seed: the rows a run's ``test_bootstrap.npz`` was drawn with."""
    return resample_rows(n, n_resamples, seed)


def shared_rows(sizes: Sequence[int], n_resamples: int, seed: int) -> tuple[torch.Tensor, ...]:
    """One set of rows per sample size, drawn in order from one seeded generator: for a
    bootstrap over several samples at once (e.g. in- and out-of-distribution scores, each
    kept at its size). Every run given the same ``sizes`` and ``seed`` gets the same rows,
    so differences between runs are paired."""
    rng = generator(seed)
    return tuple(resample_rows(n, n_resamples, rng) for n in sizes)


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
