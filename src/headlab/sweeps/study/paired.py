"""Is one head's score really different from another's? Paired over seeds and test samples.

Two heads trained with the same seeds were tested on the same samples. Their difference has
two sources of noise: which model a training seed produced (the outer level) and which test
samples were drawn (the inner level). Both enter here (docs/statistics.md):

* ``t``: a paired t-interval over the per-seed full-sample differences, df = S - 1; the
  seed-to-seed spread of the differences already contains the test-sample noise of each;
* ``two_level``: a two-level bootstrap: draw S seeds with replacement, then for each drawn
  seed one test-sample resample (the same rows for both heads, so paired), and average the
  differences. ECE-type estimators get the *basic* interval (their bias does not cancel
  between heads of different calibration), means the percentile one.

A difference is called where the wider of the chosen methods excludes 0: the combined
p-value is the largest of theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from headlab.calibration.bootstrap import resample_rows
from headlab.calibration.estimators import ECE_TYPE
from headlab.errors import ConfigValueError

COMPARISONS = ("two_level", "t")
#: fewer shared seeds than this: no verdict (a t-interval with df = 1 spans almost anything,
#: and a bootstrap over two seeds has three distinct outcomes)
MIN_SEEDS = 3
#: outer draws of the two-level bootstrap
N_DRAWS = 2000


class TooFewSeeds(ConfigValueError):
    """Two heads share fewer than ``MIN_SEEDS`` seeds: nothing can be concluded."""


class UnknownComparison(ConfigValueError):
    """A comparison method headlab does not have."""


@dataclass(frozen=True)
class Interval:
    """One method's interval for the mean difference, and its p-values: of "no difference"
    (two-sided) and of "not equivalent within ±margin" (TOST)."""

    method: str
    low: float
    high: float
    p_different: float
    p_equivalent: float


@dataclass(frozen=True)
class Difference:
    """``a - b`` averaged over the shared seeds, per-seed values, and each method's interval."""

    point: float
    per_seed: tuple[float, ...]
    intervals: tuple[Interval, ...]

    @property
    def low(self) -> float:
        return min(i.low for i in self.intervals)

    @property
    def high(self) -> float:
        return max(i.high for i in self.intervals)

    @property
    def p_different(self) -> float:
        return max(i.p_different for i in self.intervals)

    @property
    def p_equivalent(self) -> float:
        return max(i.p_equivalent for i in self.intervals)

    @property
    def sign_stable(self) -> bool:
        """Every seed's difference is non-zero and of the same sign."""
        signs = {np.sign(v) for v in self.per_seed}
        return len(signs) == 1 and 0 not in signs


def check_seeds(n_seeds: int, what: str = "the two heads") -> None:
    if n_seeds < MIN_SEEDS:
        raise TooFewSeeds(
            f"{what} share {n_seeds} seed(s): a verdict needs at least {MIN_SEEDS} shared "
            f"seeds; run more seeds (e.g. seed=1,2,3,4,5)"
        )


def check_methods(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in COMPARISONS]
    if unknown or not methods:
        raise UnknownComparison(
            f"unknown comparison method(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"known: {', '.join(COMPARISONS)}"
        )


def t_interval(differences: np.ndarray, margin: float, level: float = 0.95) -> Interval:
    """Paired t-interval over per-seed differences (df = S - 1), its two-sided p-value and
    the TOST p-value at ±``margin`` (the larger of the two one-sided tests' p-values)."""
    d = np.asarray(differences, dtype=float)
    mean = float(d.mean())
    if np.ptp(d) == 0:  # every seed the same: no spread to test with
        different = 0.0 if mean != 0 else 1.0
        equivalent = 0.0 if abs(mean) < margin else 1.0
        return Interval("t", mean, mean, different, equivalent)
    result = stats.ttest_1samp(d, 0.0)
    low, high = result.confidence_interval(level)
    lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    return Interval("t", float(low), float(high), float(result.pvalue), float(max(lower, upper)))


def two_level_draws(resampled: torch.Tensor, n_draws: int, seed: int) -> torch.Tensor:
    """Means of the differences of S seeds drawn with replacement, each on one of the B
    shared test-sample resamples drawn for it: ``resampled`` (S, B) -> (n_draws,)."""
    n_seeds, n_rows = resampled.shape
    generator = torch.Generator().manual_seed(int(seed))
    seeds = resample_rows(n_seeds, n_draws, generator)
    rows = resample_rows(n_rows, n_draws, generator, size=n_seeds)
    return resampled.double()[seeds, rows].mean(dim=1)


def bootstrap_interval(
    name: str, point: float, draws: torch.Tensor, margin: float, level: float = 0.95
) -> Interval:
    """Percentile (means) or basic (ECE-type) interval of bootstrap ``draws`` around
    ``point``, with the p-values at which it would just touch 0 or ±margin."""
    centred = 2 * point - draws if name in ECE_TYPE else draws
    centred = centred.double()
    tail = (1.0 - level) / 2
    low, high = torch.quantile(centred, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    below, above = float((centred <= 0).double().mean()), float((centred >= 0).double().mean())
    outside = max(
        float((centred <= -margin).double().mean()), float((centred >= margin).double().mean())
    )
    return Interval("two_level", float(low), float(high), min(1.0, 2 * min(below, above)), outside)


def paired_difference(
    name: str,
    point: np.ndarray,
    resampled: torch.Tensor | None,
    margin: float,
    methods: Sequence[str] = COMPARISONS,
    level: float = 0.95,
    seed: int = 0,
) -> Difference:
    """Estimator ``name``'s difference a - b from per-seed full-sample differences ``point``
    (S,) and per-seed differences on shared resample rows ``resampled`` (S, B)."""
    check_methods(methods)
    check_seeds(len(point))
    point = np.asarray(point, dtype=float)
    mean = float(point.mean())
    intervals = []
    for method in methods:
        if method == "t":
            intervals.append(t_interval(point, margin, level))
        else:
            draws = two_level_draws(resampled, N_DRAWS, seed)
            intervals.append(bootstrap_interval(name, mean, draws, margin, level))
    return Difference(mean, tuple(float(v) for v in point), tuple(intervals))
