"""Test-set estimators of accuracy and calibration, on one sample or many resamples at once.

Every estimator is written for *count weights*: a bootstrap resample is a row of how often
each prediction was drawn, so B resamples are one (B, N) matrix and each estimator is a few
matrix products over it instead of B Python calls. ``scores`` is the same code with one row
of ones. The ECE-type view is top-label on the head's own probabilities (raw sigmoids for
sigmoid heads): confidence = the largest probability, hit = its class is the target. NLL and
Brier follow ``scoring`` (docs/statistics.md).
"""

from __future__ import annotations

import torch

from headlab.calibration.bins import N_BINS, bin_sums, ece_of_sums
from headlab.calibration.bootstrap import counts_of
from headlab.calibration.scoring import bernoulli_nll, brier, categorical_nll, normalised
from headlab.calibration.smooth import smooth_ece

#: ECE-type columns are top-label on the head's own probabilities; ``nll`` and ``brier`` are
#: of the normalised distribution p / sum p (one quantity for every head); ``*_ovr`` treat the
#: K outputs as one-vs-rest Bernoullis (raw sigmoids for sigmoid heads). See ``scoring``.
ESTIMATORS = ("acc", "ece", "ece_adaptive", "smece", "brier", "nll", "brier_ovr", "nll_ovr")
#: the estimators whose plug-in value is biased upward (a gap's absolute value)
ECE_TYPE = ("ece", "ece_adaptive", "smece")
#: estimators that are a mean of per-sample terms
MEANS = ("acc", "brier", "nll", "brier_ovr", "nll_ovr")
#: resample rows per chunk: bounds the (rows, N) float64 temporaries to ~16 MB at N = 10k
CHUNK = 200


def top_label(probs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label confidence and hit (0/1) per sample, float64."""
    confidence, predicted = probs.double().max(dim=1)
    return confidence, (predicted == targets).double()


def per_sample(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-sample terms whose (weighted) means are the ``MEANS`` estimators."""
    confidence, hit = top_label(probs, targets)
    return {
        "confidence": confidence,
        "hit": hit,
        "acc": hit,
        "brier": brier(normalised(probs), targets),
        "nll": categorical_nll(probs, targets),
        "brier_ovr": brier(probs, targets),
        "nll_ovr": bernoulli_nll(probs, targets),
    }


def equal_width_ece(
    confidence: torch.Tensor, hit: torch.Tensor, counts: torch.Tensor, n_bins: int
) -> torch.Tensor:
    """ECE over ``n_bins`` equal-width bins (1.0 in the last bin), one value per row."""
    return ece_of_sums(*bin_sums(confidence, hit, counts, n_bins))


def equal_mass_bounds(n: int, n_bins: int) -> torch.Tensor:
    """Bin edges (positions in the sorted sample) as ``numpy.array_split`` cuts ``n`` items."""
    size, extra = divmod(n, n_bins)
    sizes = torch.full((n_bins,), size, dtype=torch.float64)
    sizes[:extra] += 1
    return torch.cat([torch.zeros(1, dtype=torch.float64), sizes.cumsum(0)])


def equal_mass_ece(
    confidence: torch.Tensor,
    hit: torch.Tensor,
    counts: torch.Tensor,
    n_bins: int,
    presorted: bool = False,
) -> torch.Tensor:
    """Adaptive ECE: ``n_bins`` bins holding equal numbers of predictions, one value per row
    (the bins' sums: ``equal_mass_sums``)."""
    count, conf, hits = equal_mass_sums(confidence, hit, counts, n_bins, presorted)
    return (hits - conf).abs().sum(dim=1) / count.sum(dim=1)


def equal_mass_sums(
    confidence: torch.Tensor,
    hit: torch.Tensor,
    counts: torch.Tensor,
    n_bins: int,
    presorted: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row and equal-mass bin: the count, the sum of confidences and of hits, (R, n_bins)
    each (for the adaptive ECE and its per-bin debiased version, ``sweeps.study.debiased``).

    Predictions of equal confidence (many are exactly 1.0) have no order among themselves:
    a tie cut by a bin edge gives each side its share of the tie's count and, per copy, the
    tie's mean hit, which is each bin's expected sums over all orders of the tie (as the AURC
    code does for the risk). Bins' sums come from cumulative sums at their edges over the
    sample sorted by confidence, each prediction repeated ``count`` times.
    ``presorted``: the predictions already come in ascending confidence.
    """
    if presorted:
        conf_sorted, hit_sorted, weights = confidence, hit, counts
    else:
        order = sort_order(confidence, hit)
        conf_sorted, hit_sorted, weights = confidence[order], hit[order], counts[:, order]
    _, tie_sizes = torch.unique_consecutive(conf_sorted, return_counts=True)
    tie_last = tie_sizes.cumsum(0) - 1
    # cumulative count, confidence and hits at the end of each tie: (R, ties)
    cum_n = weights.cumsum(dim=1)[:, tie_last]
    cum_conf = (weights * conf_sorted).cumsum(dim=1)[:, tie_last]
    cum_hit = (weights * hit_sorted).cumsum(dim=1)[:, tie_last]
    tie_n = cum_n.diff(dim=1, prepend=torch.zeros_like(cum_n[:, :1]))
    tie_hit = cum_hit.diff(dim=1, prepend=torch.zeros_like(cum_hit[:, :1]))
    total = cum_n[:, -1:]
    edges = equal_mass_bounds(int(total[0].item()), n_bins).expand(len(counts), -1).contiguous()
    # the tie holding position p: the first whose cumulative count exceeds p
    holder = torch.searchsorted(cum_n, edges, right=True).clamp_(max=len(tie_sizes) - 1)
    after_edge = cum_n.gather(1, holder) - edges  # copies of the holding tie at or after p
    conf_per_copy = conf_sorted[tie_last][holder]
    hit_per_copy = tie_hit.gather(1, holder) / tie_n.gather(1, holder).clamp_min(1e-300)
    conf_at = cum_conf.gather(1, holder) - after_edge * conf_per_copy
    hit_at = cum_hit.gather(1, holder) - after_edge * hit_per_copy
    return edges.diff(dim=1), conf_at.diff(dim=1), hit_at.diff(dim=1)


def sort_order(confidence: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """Predictions by confidence, ties by hit (misses first)."""
    order = torch.argsort(hit, stable=True)
    return order[torch.argsort(confidence[order], stable=True)]


def weighted_scores(
    probs: torch.Tensor,
    targets: torch.Tensor,
    counts: torch.Tensor,
    n_bins: int = N_BINS,
    estimators: tuple[str, ...] = ESTIMATORS,
    presorted: bool = False,
) -> dict[str, torch.Tensor]:
    """Every estimator for each row of ``counts`` (B, N): how often each prediction counts.
    ``presorted``: predictions come sorted by (confidence, hit), see ``sort_order``."""
    terms = per_sample(probs, targets)
    counts = counts.double()
    total = counts.sum(dim=1)
    out: dict[str, torch.Tensor] = {}
    for name in estimators:
        if name in MEANS:
            out[name] = counts @ terms[name] / total
        elif name == "ece":
            out[name] = equal_width_ece(terms["confidence"], terms["hit"], counts, n_bins)
        elif name == "ece_adaptive":
            out[name] = equal_mass_ece(terms["confidence"], terms["hit"], counts, n_bins, presorted)
        elif name == "smece":
            out[name] = smooth_ece(terms["confidence"], terms["hit"], counts, presorted)
        else:
            raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}")
    return out


def resampled_scores(
    probs: torch.Tensor,
    targets: torch.Tensor,
    index: torch.Tensor,
    n_bins: int = N_BINS,
    estimators: tuple[str, ...] = ESTIMATORS,
) -> dict[str, torch.Tensor]:
    """The estimators on each resample row of ``index`` (B, N): dict of (B,) float64 tensors.

    The sample is sorted once by (confidence, hit) and the resample rows renumbered to match,
    so no chunk re-sorts or gathers its counts."""
    order = sort_order(*top_label(probs, targets))
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    probs, targets = probs[order], targets[order]
    parts = [
        weighted_scores(
            probs, targets, counts_of(rank[rows], len(targets)), n_bins, estimators, True
        )
        for rows in index.split(CHUNK)
    ]
    return {name: torch.cat([p[name] for p in parts]) for name in estimators}


def scores(
    probs: torch.Tensor,
    targets: torch.Tensor,
    n_bins: int = N_BINS,
    estimators: tuple[str, ...] = ESTIMATORS,
) -> dict[str, float]:
    """The estimators on the sample itself.

    Two predictions at confidence 0.9, one right and one wrong: every bin is off by 0.4.

    >>> probs = torch.tensor([[0.9, 0.1], [0.9, 0.1]], dtype=torch.float64)
    >>> values = scores(probs, torch.tensor([0, 1]), estimators=("acc", "ece"))
    >>> {k: round(v, 6) for k, v in values.items()}
    {'acc': 0.5, 'ece': 0.4}
    """
    ones = torch.ones(1, len(targets), dtype=torch.float64)
    values = weighted_scores(probs, targets, ones, n_bins, estimators)
    return {name: float(value[0]) for name, value in values.items()}
