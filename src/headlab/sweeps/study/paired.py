"""Is one head's score really different from another's? Paired over seeds and test samples.

Two heads trained with the same seeds were tested on the same samples. Their difference has
two sources of noise: which model a training seed produced (the outer level) and which test
samples were drawn (the inner level, ONE test set shared by every seed). Both enter here
(docs/statistics.md):

* ``t``: a paired t-interval over the per-seed full-sample differences, df = S - 1, its
  squared standard error sd^2 / S plus the variance the shared test set adds to the seed
  mean (``shared_test_variance``: the seeds' spread cannot show noise that moves them all);
* ``two_level``: a two-level bootstrap: draw S seeds with replacement and ONE test-sample
  resample row shared by all of them (the same rows for both heads, so paired), and average
  the differences. ECE-type estimators get the interval centred on the (bias-corrected,
  ``sweeps.study.debiased``) point, means the percentile one. p-values are +1-corrected.

A difference is called where the wider of the chosen methods excludes 0: the combined
p-value is the largest of theirs. ``seeds_needed`` says how many seeds the t-TOST would
need to show equivalence at the observed spread; ``Difference.margin_bound`` the smallest
margin at which the cell is *equivalent* now (every method's TOST at the report's level).
"""

from __future__ import annotations

import math
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
#: outer draws of the two-level bootstrap: enough that its smallest two-sided p, 2 / (B + 1),
#: survives Holm over the report's largest family (400 off-distribution cells: 400 x 2/50001
#: = 0.016 < 0.05). With 2,000 it was 64 x 2/2001 = 0.064 over 64 cells: nothing could ever
#: be called different.
N_DRAWS = 50_000
#: the smallest p-value reported (never exactly 0): the two-level bootstrap's 1 / (B + 1)
MIN_P = 1 / (N_DRAWS + 1)


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
    #: variance of the seed mean from the shared test set (``shared_test_variance``)
    shared_var: float = 0.0
    #: every margin above this passes every method's TOST at the one-sided level asked for
    #: (``paired_difference(tost_alpha=...)``); None where not asked
    margin_bound: float | None = None

    @property
    def sd(self) -> float:
        """Sample standard deviation of the per-seed differences."""
        return float(np.std(self.per_seed, ddof=1))

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


def standard_error(differences: np.ndarray, shared_var: float = 0.0) -> float:
    """Standard error of the seed mean of per-seed ``differences``: sqrt(sd^2 / S + shared_var),
    the shared test set's variance added (``t_interval``)."""
    d = np.asarray(differences, dtype=float)
    return math.sqrt(float(d.var(ddof=1)) / len(d) + max(float(shared_var), 0.0))


def t_interval(
    differences: np.ndarray, margin: float, level: float = 0.95, shared_var: float = 0.0
) -> Interval:
    """Paired t-interval over per-seed differences (df = S - 1), its two-sided p-value and
    the TOST p-value at ±``margin`` (the larger of the two one-sided tests' p-values).

    ``shared_var``: the variance of the seed mean that comes from the one test set every seed
    shares (``shared_test_variance``). The per-seed differences cannot show it (it moves them
    all alike), so it is added to the squared standard error: se^2 = sd^2 / S + shared_var.
    """
    d = np.asarray(differences, dtype=float)
    mean, n = float(d.mean()), len(d)
    se = standard_error(d, shared_var)
    if se == 0:  # every seed the same, no test-set noise: as certain as a p-value here gets
        different = MIN_P if mean != 0 else 1.0
        equivalent = MIN_P if abs(mean) < margin else 1.0
        return Interval("t", mean, mean, different, equivalent)
    df = n - 1
    half = stats.t.ppf(0.5 + level / 2, df) * se
    different = 2 * stats.t.sf(abs(mean) / se, df)
    above_lower = stats.t.sf((mean + margin) / se, df)  # H0: d <= -margin
    below_upper = stats.t.cdf((mean - margin) / se, df)  # H0: d >= +margin
    return Interval(
        "t",
        mean - half,
        mean + half,
        float(different),
        max(float(above_lower), float(below_upper)),
    )


def two_level_index(
    n_seeds: int, n_rows: int, n_draws: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-level bootstrap's draws: per draw, S seeds with replacement (n_draws, S) and
    ONE test-sample resample row shared by all of them (n_draws,). Shared because every seed
    was tested on the same test set: its sampling noise moves all seeds alike and does not
    average out over seeds. The only place the comparison draws random numbers, through the
    one resampling kernel (``calibration.bootstrap.resample_rows``)."""
    generator = torch.Generator().manual_seed(int(seed))
    seeds = resample_rows(n_seeds, n_draws, generator)
    rows = resample_rows(n_rows, n_draws, generator, size=1)[:, 0]
    return seeds, rows


def two_level_draws(resampled: torch.Tensor, n_draws: int, seed: int) -> torch.Tensor:
    """Means of the differences of S seeds drawn with replacement, all on one shared test-
    sample resample row per draw: ``resampled`` (S, B) -> (n_draws,)."""
    n_seeds, n_rows = resampled.shape
    seeds, rows = two_level_index(n_seeds, n_rows, n_draws, seed)
    return resampled.double()[seeds, rows[:, None]].mean(dim=1)


def shared_test_variance(resampled: torch.Tensor) -> float:
    """The variance the shared test set adds to the seed mean: the mean covariance, over
    the B shared resample rows, between two different seeds' differences (floored at 0).
    With seed effects u_s and test-sample noise e_s, Cov(e_s, e_s') = c for s != s':
    Var(mean) = E[sd^2] / S + c, and the spread over seeds (sd) does not contain c."""
    x = resampled.double()
    n_seeds, n_rows = x.shape
    if n_seeds < 2 or n_rows < 2:
        return 0.0
    centred = x - x.mean(dim=1, keepdim=True)
    cov = centred @ centred.T / (n_rows - 1)
    off_diagonal = (cov.sum() - cov.diagonal().sum()) / (n_seeds * (n_seeds - 1))
    return max(float(off_diagonal), 0.0)


def bootstrap_p(count: int, n_draws: int) -> float:
    """(count + 1) / (B + 1): a bootstrap p-value that is never 0 (the observed statistic
    counts as one of the draws)."""
    return (count + 1) / (n_draws + 1)


def centred_draws(name: str, point: float, draws: torch.Tensor) -> torch.Tensor:
    """The draws the bootstrap reads (float64): ECE-type ones moved to centre on ``point``
    (``bootstrap_interval``), means as drawn."""
    draws = draws.double()
    return point + (draws - draws.mean()) if name in ECE_TYPE else draws


def bootstrap_interval(
    name: str, point: float, draws: torch.Tensor, margin: float, level: float = 0.95
) -> Interval:
    """Percentile (means) or centred (ECE-type) interval of bootstrap ``draws`` around
    ``point``, with the p-values at which it would just touch 0 or ±margin (+1-corrected).

    Centred: ``point + (draws - mean(draws))``. The ECE-type differences the report compares
    are already bias-corrected per run (``sweeps.study.debiased``), so the bootstrap only
    gives the spread; its own mean still carries the plug-in's bias shift."""
    centred = centred_draws(name, point, draws)
    tail = (1.0 - level) / 2
    low, high = torch.quantile(centred, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    n = len(centred)
    below, above = int((centred <= 0).sum()), int((centred >= 0).sum())
    different = min(1.0, 2 * bootstrap_p(min(below, above), n))
    outside = max(
        bootstrap_p(int((centred <= -margin).sum()), n),
        bootstrap_p(int((centred >= margin).sum()), n),
    )
    return Interval("two_level", float(low), float(high), different, min(1.0, outside))


def t_margin_bound(differences: np.ndarray, alpha: float, shared_var: float = 0.0) -> float:
    """The smallest margin the t-TOST passes at one-sided level ``alpha`` (strictly above it):
    (m - |mean|) / se > t_(1 - alpha, S - 1), i.e. m > |mean| + t_(1 - alpha, S - 1) se, the
    larger |end| of the two-sided (1 - 2 alpha) t-interval."""
    d = np.asarray(differences, dtype=float)
    se = standard_error(d, shared_var)
    return abs(float(d.mean())) + float(stats.t.ppf(1 - alpha, len(d) - 1)) * se


def bootstrap_margin_bound(name: str, point: float, draws: torch.Tensor, alpha: float) -> float:
    """The smallest margin the bootstrap TOST of ``bootstrap_interval`` passes at one-sided
    level ``alpha`` (strictly above it), on the same (centred, for ECE-type) draws.

    Its p-value is max(#(x <= -m) + 1, #(x >= m) + 1) / (B + 1) < alpha, i.e. at most K
    draws on each side, K the largest count with (K + 1) / (B + 1) < alpha: m must exceed
    the (K+1)-th largest draw and minus the (K+1)-th smallest. inf where K < 0 (B too small
    for that level)."""
    x = centred_draws(name, point, draws)
    n = len(x)
    k = math.ceil(alpha * (n + 1) - 1) - 1
    if k < 0:
        return math.inf
    ordered = torch.sort(x).values
    return max(float(ordered[n - 1 - k]), -float(ordered[k]))


def seeds_needed(
    mean: float,
    sd: float,
    margin: float,
    alpha: float,
    shared_var: float = 0.0,
    max_seeds: int = 200,
) -> int | None:
    """The fewest seeds S at which the t-TOST would show ``|d| < margin`` at one-sided level
    ``alpha`` if the mean difference and the seed spread stayed as observed:
    (margin - |mean|) / sqrt(sd^2 / S + shared_var) > t_(1 - alpha, S - 1).
    None: not within ``max_seeds`` (|mean| >= margin, or the shared test-set noise alone is
    too large for any number of seeds)."""
    room = margin - abs(mean)
    if room <= 0:
        return None
    for n in range(2, max_seeds + 1):
        se = math.sqrt(sd * sd / n + max(shared_var, 0.0))
        if se == 0 or room / se > stats.t.ppf(1 - alpha, n - 1):
            return n
    return None


def paired_difference(
    name: str,
    point: np.ndarray,
    resampled: torch.Tensor | None,
    margin: float,
    methods: Sequence[str] = COMPARISONS,
    level: float = 0.95,
    seed: int = 0,
    tost_alpha: float | None = None,
) -> Difference:
    """Estimator ``name``'s difference a - b from per-seed full-sample differences ``point``
    (S,) and per-seed differences on shared resample rows ``resampled`` (S, B); with
    ``tost_alpha``, also the smallest margin every method's TOST passes at that one-sided
    level (``Difference.margin_bound``: the larger of the methods')."""
    check_methods(methods)
    check_seeds(len(point))
    point = np.asarray(point, dtype=float)
    mean = float(point.mean())
    shared = shared_test_variance(resampled) if resampled is not None else 0.0
    intervals, bounds = [], []
    for method in methods:
        if method == "t":
            intervals.append(t_interval(point, margin, level, shared))
            if tost_alpha is not None:
                bounds.append(t_margin_bound(point, tost_alpha, shared))
        else:
            draws = two_level_draws(resampled, N_DRAWS, seed)
            intervals.append(bootstrap_interval(name, mean, draws, margin, level))
            if tost_alpha is not None:
                bounds.append(bootstrap_margin_bound(name, mean, draws, tost_alpha))
    bound = max(bounds) if bounds else None
    return Difference(mean, tuple(float(v) for v in point), tuple(intervals), shared, bound)
