"""Binned ECE with its label-noise bias removed bin by bin, for comparing heads.

Why: the plug-in ECE adds |noise| to every bin's gap, and how much that adds depends on the
gap itself: near 0 a bin's |gap| is inflated by ~0.8 of its standard error, for a gap of
a few standard errors by almost nothing. A nearly calibrated head's ECE is thus inflated
more than an overconfident head's, and their difference shrinks (docs/statistics.md: a
true difference of 0.003 read as 0.0016). The run-level bootstrap correction (``*_bc``)
estimates the bias where the plug-in sits, above the truth, where the bias is smaller; it
keeps much of it.

Here each bin's gap x (mean hit - mean confidence over its n predictions) gets its own
standard error s = sqrt(p (1 - p) / (n - 1)) (p: the bin's accuracy) and, under a normal
model x ~ N(mu, s^2), E|x| = s * (t + b(t)) with t = |mu| / s and
b(t) = 2 phi(t) - 2 t Phi(-t). The bias b is taken off twice: r = |x| / s,
r1 = r - b(r), r2 = r - b(max(r1, 0)); the bin contributes s * r2 (unfloored, so a bin with
no gap contributes noise around 0 rather than a positive amount). The correction at the
once-corrected value is closer to the bias at the truth than the correction at |x| is.
Measured (``scripts/paired_simulation.py``; docs/statistics.md): the mean bias over
MNIST-like predictions is +0.0011 at a population ECE of 0 and within ±0.0004 at every
population value from 0.0014 to 0.008 (plug-in: +0.0025 to +0.0003).
"""

from __future__ import annotations

import math

import torch

from headlab.calibration.bins import N_BINS, bin_sums
from headlab.calibration.estimators import equal_mass_sums, sort_order

#: resample rows per chunk: bounds the (rows, N) count matrix at N = 10k to ~16 MB
CHUNK = 200


def folded_bias(t: torch.Tensor) -> torch.Tensor:
    """E|N(t, 1)| - t for t >= 0: how far |x| / s sits above |mu| / s on average."""
    phi = torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
    upper = 0.5 * torch.erfc(t / math.sqrt(2))  # Phi(-t)
    return 2 * phi - 2 * t * upper


def debiased_ece_of_sums(
    count: torch.Tensor, confidence: torch.Tensor, hits: torch.Tensor
) -> torch.Tensor:
    """Debiased ECE from per-bin sums (last axis = bins): one value per leading row.
    A bin with fewer than 2 predictions or a per-bin accuracy of 0 or 1 (no spread to
    estimate s from) keeps its plug-in |gap|."""
    count, confidence, hits = count.double(), confidence.double(), hits.double()
    n = count.clamp_min(1)
    gap = (hits - confidence) / n
    accuracy = hits / n
    variance = accuracy * (1 - accuracy) / (count - 1).clamp_min(1)
    se = variance.clamp_min(0).sqrt()
    usable = (count >= 2) & (se > 0)
    r = gap.abs() / torch.where(usable, se, torch.ones_like(se))
    once = r - folded_bias(r)
    twice = r - folded_bias(once.clamp_min(0))
    per_bin = torch.where(usable, se * twice, gap.abs())
    return (count * per_bin).sum(-1) / count.sum(-1).clamp_min(1)


def debiased_ece(
    confidence: torch.Tensor,
    hit: torch.Tensor,
    counts: torch.Tensor | None = None,
    n_bins: int = N_BINS,
) -> torch.Tensor:
    """Debiased equal-width ECE for each row of count weights ``counts`` (R, N) (None: the
    sample itself, one row); (R,) float64. The same bins as ``calibration.bins``."""
    if counts is None:
        return debiased_ece_of_sums(*bin_sums(confidence, hit, None, n_bins))
    parts = [
        debiased_ece_of_sums(*bin_sums(confidence, hit, counts[i : i + CHUNK], n_bins))
        for i in range(0, len(counts), CHUNK)
    ]
    return torch.cat(parts)


def debiased_ece_adaptive(
    confidence: torch.Tensor,
    hit: torch.Tensor,
    counts: torch.Tensor | None = None,
    n_bins: int = N_BINS,
) -> torch.Tensor:
    """Debiased adaptive ECE: the same per-bin correction on the equal-mass bins of
    ``calibration.estimators.equal_mass_ece`` (ties split as there), per row of ``counts``
    (None: the sample itself); (R,) float64. The bins move with each resample row, as the
    plug-in adaptive ECE's do."""
    confidence, hit = confidence.double(), hit.double()
    if counts is None:
        counts = torch.ones(1, len(confidence), dtype=torch.float64)
    order = sort_order(confidence, hit)
    conf, hits = confidence[order], hit[order]
    parts = [
        debiased_ece_of_sums(
            *equal_mass_sums(conf, hits, counts[i : i + CHUNK][:, order].double(), n_bins, True)
        )
        for i in range(0, len(counts), CHUNK)
    ]
    return torch.cat(parts)


def median_unbiased_shift(
    confidence: torch.Tensor, hit: torch.Tensor, name: str, point: float, seed: int
) -> float | None:
    """How far the plug-in ``name`` sits above its median-unbiased estimate (the test
    inversion's, ``calibration.inversion``: the candidate truth whose simulated estimates
    have the observed value as their median); None where the inversion's family is
    degenerate. For ``smece``, which has no per-bin form: its bias is simulated at each
    candidate truth, so what is taken off does not depend on where the head sits."""
    from headlab.calibration.inversion import inverted_intervals

    inverted = inverted_intervals(confidence, hit, {name: point}, seed=seed)
    return None if name not in inverted else point - inverted[name].estimate


def bootstrap_corrected(point: float, rows: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The run-level bootstrap bias correction (as a run writes ``*_bc``, unfloored):
    2 θ̂ - mean(θ*), and the resampled values shifted by the same estimated bias, so their
    spread is kept. Used for ``smece`` where its inversion is degenerate; it keeps a part of
    the bias (docs/statistics.md)."""
    rows = rows.double()
    bias = float(rows.mean()) - point
    return point - bias, rows - bias


#: how the comparison corrects each ECE-type estimator's bias before pairing runs
CORRECTION = {
    "ece": "per-bin debiased (sweeps.study.debiased)",
    "ece_adaptive": "per-bin debiased on its equal-mass bins",
    "smece": "median-unbiased by test inversion (as `test/smece_debiased`), resamples shifted",
}
