"""Per-run intervals for the ECE-type estimators by inverting a calibration test.

Why not a bootstrap: a plug-in ECE sits above the truth by a bias that is largest near
calibration and shrinks as the truth grows; a bootstrap measures the bias at the *estimate*
(where it is smaller) and saw ~40 % of smooth ECE's bias on MNIST-like predictions, so its
intervals missed nearly calibrated truths from above (issue 26: 0.64-0.75 coverage).

Here the bias is simulated at each candidate truth instead. The run's confidences c are
kept and a one-parameter family of hit rates g_t(c) = c + t (ĝ(c) - c) is laid from
"calibrated" (t = 0) along the run's own recalibration map ĝ (a logistic fit of hit on
logit c: over- or under-confidence, 2 parameters). Each g_t has an ECE θ(t) (the
estimator on c with the expected hits g_t(c): no label noise) and a distribution of the
estimate (labels redrawn from Bernoulli(g_t(c)), the same uniforms for every t). The
interval is every θ(t) the observed estimate is consistent with: the lower end is the
smallest θ(t) whose upper 2.5 % tail still reaches the estimate, the upper end the largest
whose lower 2.5 % tail does. At t = 0 this is the consistency test (Bröcker & Smith 2007)
of the estimator itself, so the interval reaches 0 exactly when that test cannot reject
"calibrated"; for smooth ECE it has far more power there than the binned test it borrowed.

Tails are exact Monte-Carlo tests: with R draws per t, R + 1 = k / tail, the k-th largest
(smallest) draw is exceeded by a new one with probability exactly ``tail``; R = 39 gives
the min and max at 95 %. The labels are the only noise simulated: the confidences' own
sampling moves a nearly calibrated θ(t) far less (checked by the coverage tables,
docs/statistics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from headlab.calibration.bins import N_BINS, bin_index
from headlab.calibration.estimators import ECE_TYPE, equal_mass_bounds
from headlab.calibration.smooth import smooth_ece

DRAWS_PER_TAIL = 1  # k: the k-th most extreme of R = k / tail - 1 draws per candidate
GRID = 10  # candidate truths between the ends' search bounds (plus t = 0)
SPAN = 3.5  # search bounds: this many label-noise standard deviations around the estimate
EXTEND = 4  # times the grid is extended upward when the upper end lies beyond it
LOGIT_CLIP = 1e-6


def recalibration_map(confidence: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """ĝ(c) = sigmoid(a + b logit c) fitted to the hits by maximum likelihood (Newton):
    the run's over- or under-confidence as a smooth curve, evaluated at each confidence.

    Newton starts at the constant fit and each step is halved until the likelihood does not
    fall. Started at "calibrated" (a = 0, b = 1) without that, a run whose confidences all
    sit near 1 (``sigmoid_nll``: 0.997-1.0 at accuracy 0.93) began where p (1 - p) is ~0,
    stepped by thousands and ended at ĝ = 1 everywhere: a family of truths that cannot
    leave 0 (its interval was [0.0001, 0.0001] at a plug-in ECE of 0.07).
    """
    x = torch.logit(confidence.double().clamp(LOGIT_CLIP, 1 - LOGIT_CLIP))
    design = torch.stack([torch.ones_like(x), x], dim=1)
    y = hit.double()

    def likelihood(b: torch.Tensor) -> float:
        z = design @ b
        return float((y * z - torch.nn.functional.softplus(z)).sum())

    # start at the constant fit (the run's accuracy everywhere): p (1 - p) is not ~0 there
    mean = float(y.mean().clamp(1e-6, 1 - 1e-6))
    beta = torch.tensor([math.log(mean / (1 - mean)), 0.0], dtype=torch.float64)
    current = likelihood(beta)
    for _ in range(100):
        p = torch.sigmoid(design @ beta)
        gradient = design.T @ (y - p)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-9 * torch.eye(2)
        step = torch.linalg.solve(hessian, gradient)
        if float(step.abs().max()) < 1e-10:
            break
        for _ in range(60):  # halve until the likelihood does not fall
            trial = likelihood(beta + step)
            if trial >= current:
                beta, current = beta + step, trial
                break
            step = step / 2
        else:
            break  # no step up: at the maximum to rounding
    return torch.sigmoid(design @ beta)


def equal_mass_member(sorted_conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    """(N, n_bins): each prediction's share in each equal-mass bin, a tie cut by an edge
    split as ``estimators.equal_mass_ece`` splits it, so that hits @ member gives every
    row's bin sums at the cost of one matrix product."""
    _, sizes = torch.unique_consecutive(sorted_conf, return_counts=True)
    end = sizes.cumsum(0).double()
    start = end - sizes
    edges = equal_mass_bounds(len(sorted_conf), n_bins)
    overlap = torch.minimum(end[:, None], edges[None, 1:]) - torch.maximum(
        start[:, None], edges[None, :-1]
    )
    share = overlap.clamp_min(0) / sizes[:, None]
    return share[torch.repeat_interleave(torch.arange(len(sizes)), sizes)]


def ece_values(
    sorted_conf: torch.Tensor, hits: torch.Tensor, names: Sequence[str], n_bins: int
) -> dict[str, torch.Tensor]:
    """Each estimator for each row of ``hits`` (R, N) over the ascending confidences:
    0/1 hits give an estimate, expected hits a population value."""
    out = {}
    for name in names:
        if name in ("ece", "ece_adaptive"):
            if name == "ece":
                bins = bin_index(sorted_conf, n_bins)
                member = torch.nn.functional.one_hot(bins, n_bins).double()
            else:
                member = equal_mass_member(sorted_conf, n_bins)
            gaps = hits @ member - sorted_conf @ member
            out[name] = gaps.abs().sum(dim=1) / len(sorted_conf)
        elif name == "smece":
            out[name] = smooth_ece(sorted_conf, hits, torch.ones_like(hits), True)
        else:
            raise ValueError(f"not an ECE-type estimator: {name!r}; known: {', '.join(ECE_TYPE)}")
    return out


class Ray:
    """The family g_t(c) = clip(c + t (ĝ(c) - c)) on the run's confidences, with common
    uniforms for the label draws so the tails move smoothly with t."""

    def __init__(
        self,
        confidence: torch.Tensor,
        hit: torch.Tensor,
        names: Sequence[str],
        draws: int,
        seed: int,
        n_bins: int,
    ) -> None:
        order = torch.argsort(confidence.double(), stable=True)
        self.conf = confidence.double()[order]
        self.direction = recalibration_map(confidence, hit)[order] - self.conf
        if float(self.direction.abs().max()) < 1e-9:  # a perfect fit: any small tilt will do
            self.direction = -0.01 * (1 - self.conf)
        generator = torch.Generator().manual_seed(int(seed))
        self.uniforms = torch.rand(draws, len(self.conf), generator=generator, dtype=torch.float64)
        self.names, self.n_bins = tuple(names), n_bins

    def rates(self, ts: Sequence[float]) -> torch.Tensor:
        t = torch.tensor(list(ts), dtype=torch.float64)[:, None]
        return (self.conf + t * self.direction).clamp(0.0, 1.0)  # (T, N)

    def truths(self, ts: Sequence[float]) -> dict[str, torch.Tensor]:
        """θ(t) per estimator: (T,)."""
        return ece_values(self.conf, self.rates(ts), self.names, self.n_bins)

    def estimates(self, ts: Sequence[float]) -> dict[str, torch.Tensor]:
        """The estimator on labels redrawn at each t: (T, R)."""
        hits = torch.cat([(self.uniforms < rate).double() for rate in self.rates(ts)])
        values = ece_values(self.conf, hits, self.names, self.n_bins)
        return {name: v.view(len(ts), -1) for name, v in values.items()}


class Inverted(NamedTuple):
    """An estimator's test-inversion interval and its median-unbiased estimate: the θ(t)
    whose simulated estimates have the observed value as their median."""

    low: float
    high: float
    estimate: float


def crossing(x0: float, x1: float, y0: float, y1: float, target: float) -> float:
    """Where the line through (x0, y0), (x1, y1) reaches ``target`` (x0 if flat)."""
    if y1 == y0:
        return x0
    return x0 + (target - y0) / (y1 - y0) * (x1 - x0)


def first_reaching(theta: list[float], curve: list[float], observed: float) -> float | None:
    """The smallest θ at which ``curve`` (one value per candidate, ascending θ, θ[0] = 0)
    reaches ``observed``: 0 if it does at θ = 0, None if at no candidate."""
    for j, value in enumerate(curve):
        if value >= observed:
            if j == 0:
                return 0.0
            return crossing(theta[j - 1], theta[j], curve[j - 1], value, observed)
    return None


def last_not_above(theta: list[float], curve: list[float], observed: float) -> float | None:
    """The largest θ at which ``curve`` is still at most ``observed``: 0 if not even at the
    first candidate, None if still at the last one (the grid ends too early)."""
    if curve[-1] <= observed:
        return None
    for j in range(len(curve) - 2, -1, -1):
        if curve[j] <= observed:
            return crossing(theta[j], theta[j + 1], curve[j], curve[j + 1], observed)
    return 0.0


def label_noise_sd(confidence: torch.Tensor) -> float:
    """sqrt(mean c (1 - c) / n): the standard deviation of the mean hit-minus-confidence
    under calibration, the scale of an ECE's sampling noise; sets where ends are searched."""
    c = confidence.double()
    return float((c * (1 - c)).mean().clamp_min(1e-12).sqrt()) / len(c) ** 0.5


def run_seed(seed: int, confidence: torch.Tensor, hit: torch.Tensor) -> int:
    """``seed`` mixed with a fingerprint of the run's predictions. With 39 draws the test's
    size *given* the draws varies (the largest of 39 is the 97.5 % point only on average):
    one seed for every run would give every run the same 39 label sets and the same
    conditional size, 0.00-0.12 by seed (measured at a population ECE of 0). Drawing them
    afresh per run, reproducibly, makes the size exact over runs."""
    fingerprint = int(hit.double().sum()) * 1_000_003 + int(confidence.double().sum() * 1e6)
    return (int(seed) * 2_654_435_761 + fingerprint) % 2**62


def draws_for(level: float) -> int:
    """R draws per candidate so that the most extreme of them is a tail of at most
    (1 - level) / 2 (exactly, where 2 / (1 - level) is an integer: 39 at 95 %)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    tail = (1 - level) / 2
    return max(math.ceil(DRAWS_PER_TAIL / tail - 1e-9) - 1, 2 * DRAWS_PER_TAIL)


def inverted_intervals(
    confidence: torch.Tensor,
    hit: torch.Tensor,
    observed: dict[str, float],
    level: float = 0.95,
    seed: int = 0,
    n_bins: int = N_BINS,
) -> dict[str, Inverted]:
    """The test-inversion interval (and median-unbiased estimate) of each ECE-type
    estimator in ``observed`` (its value on the sample), from top-label ``confidence`` and
    ``hit`` (0/1). Seeded; the global RNG is not touched.

    An estimator is left out when the family is degenerate for it: its candidate truths,
    searched and extended upward, never bring the estimate inside their tails (a recalibration
    curve that stays near the confidences, e.g. all near 1, cannot make a large ECE). An
    interval clamped to the family's end would then exclude the truth; the caller reports
    another one instead (``posthoc.with_intervals``: the bootstrap rule)."""
    names = [name for name in ECE_TYPE if name in observed]
    if not names:
        return {}
    ray = Ray(confidence, hit, names, draws_for(level), run_seed(seed, confidence, hit), n_bins)
    scale = SPAN * label_noise_sd(confidence)
    slope = {name: max(float(v[0]), 1e-12) for name, v in ray.truths([1.0]).items()}
    top = max((observed[n] + scale) / slope[n] for n in names)
    bottom = max(min(max(observed[n] - 2 * scale, 0.0) / slope[n] for n in names), 0.0)
    step = (top - bottom) / (GRID - 1)
    bottom = bottom if bottom > step else step  # no gap wider than a step above t = 0
    ts = [0.0, *torch.linspace(bottom, top, GRID).tolist()]
    theta, est = ray.truths(ts), ray.estimates(ts)
    for _ in range(EXTEND):
        ordered = {n: est[n].sort(dim=1).values for n in names}
        short = [
            n
            for n in names
            if last_not_above(
                theta[n].tolist(), ordered[n][:, DRAWS_PER_TAIL - 1].tolist(), observed[n]
            )
            is None
        ]
        if not short:
            break
        more = [ts[-1] + (ts[-1] - ts[1] + step) * (i + 1) / 4 for i in range(4)]
        extra_theta, extra_est = ray.truths(more), ray.estimates(more)
        ts += more
        theta = {n: torch.cat([theta[n], extra_theta[n]]) for n in names}
        est = {n: torch.cat([est[n], extra_est[n]]) for n in names}
    out = {}
    for name in names:
        th = theta[name].tolist()
        ordered = est[name].sort(dim=1).values
        value = observed[name]
        low = first_reaching(th, ordered[:, -DRAWS_PER_TAIL].tolist(), value)
        high = last_not_above(th, ordered[:, DRAWS_PER_TAIL - 1].tolist(), value)
        if low is None or high is None:
            continue  # the family never reaches the estimate: degenerate, see the docstring
        middle = first_reaching(th, ordered.median(dim=1).values.tolist(), value)
        low = max(low, 0.0)
        high = max(high, low)
        middle = th[-1] if middle is None else min(max(middle, low), high)
        out[name] = Inverted(low, high, middle)
    return out
