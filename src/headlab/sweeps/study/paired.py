"""Is one head's calibration really different from another's? A paired bootstrap.

Both heads' runs were tested on the same test samples with the same seeds, so the
difference is resampled *paired*: each bootstrap row draws one set of test-sample indices
and scores both heads' predictions of every seed on those same samples; the difference is
averaged over the seeds the two heads share. The interval therefore covers the test-sample
noise of a seed-averaged difference (the spread over training seeds is reported beside it
as ± std).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from headlab.calibration.bootstrap import percentile_interval

Resampled = dict[str, torch.Tensor]  # estimator -> (B,) values on the shared resamples


@dataclass(frozen=True)
class Difference:
    """``a - b``: the point value on the full test set and its percentile interval."""

    point: float
    low: float
    high: float

    @property
    def distinguishable(self) -> bool:
        return not self.low <= 0.0 <= self.high


def paired_difference(
    pairs: Sequence[tuple[int, int]],
    point: Callable[[int], dict[str, float]],
    resampled: Callable[[int], Resampled],
    estimators: Sequence[str],
    level: float = 0.95,
) -> dict[str, Difference]:
    """Seed-averaged ``a - b`` per estimator over ``pairs`` of run ids (a, b) with the same
    seed; ``point(run)`` and ``resampled(run)`` give a run's full-sample and resampled
    scores, all resampled on one shared index."""
    if not pairs:
        raise ValueError("no pair of runs with the same seed")
    out = {}
    for name in estimators:
        points = [point(a)[name] - point(b)[name] for a, b in pairs]
        draws = torch.stack([resampled(a)[name] - resampled(b)[name] for a, b in pairs])
        low, high = percentile_interval(draws.mean(dim=0), level)
        out[name] = Difference(sum(points) / len(points), low, high)
    return out
