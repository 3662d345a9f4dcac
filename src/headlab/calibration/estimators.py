"""Test-set estimators of accuracy and calibration, on one sample or many resamples at once.

Every estimator is written for *count weights*: a bootstrap resample is a row of how often
each prediction was drawn, so B resamples are one (B, N) matrix and each estimator is a few
matrix products over it instead of B Python calls. ``scores`` is the same code with one row
of ones. The view is top-label on the head's own probabilities (raw sigmoids for sigmoid
heads): confidence = the largest probability, hit = its class is the target.
"""

from __future__ import annotations

import torch

from headlab.calibration.bins import EPS, N_BINS, bin_index
from headlab.calibration.bootstrap import counts_of
from headlab.calibration.smooth import smooth_ece

ESTIMATORS = ("acc", "ece", "ece_adaptive", "smece", "brier", "nll")
#: resample rows per chunk: bounds the (rows, N) float64 temporaries to ~16 MB at N = 10k
CHUNK = 200


def top_label(probs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label confidence and hit (0/1) per sample, float64."""
    confidence, predicted = probs.double().max(dim=1)
    return confidence, (predicted == targets).double()


def per_sample(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-sample terms whose (weighted) means are acc, Brier and NLL."""
    probs = probs.double()
    one_hot = torch.nn.functional.one_hot(targets, probs.shape[1]).double()
    true_prob = probs.gather(1, targets.unsqueeze(1)).squeeze(1)
    confidence, hit = top_label(probs, targets)
    return {
        "confidence": confidence,
        "hit": hit,
        "brier": ((probs - one_hot) ** 2).sum(dim=1),
        "nll": -true_prob.clamp_min(EPS).log(),
    }


def equal_width_ece(
    confidence: torch.Tensor, hit: torch.Tensor, counts: torch.Tensor, n_bins: int
) -> torch.Tensor:
    """ECE over ``n_bins`` equal-width bins (1.0 in the last bin), one value per row."""
    member = torch.nn.functional.one_hot(bin_index(confidence, n_bins), n_bins).double()
    sums = counts @ torch.cat([member * confidence[:, None], member * hit[:, None]], dim=1)
    gaps = (sums[:, n_bins:] - sums[:, :n_bins]).abs().sum(dim=1)
    return gaps / counts.sum(dim=1)


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
    """Adaptive ECE: ``n_bins`` bins holding equal numbers of predictions, one value per row.

    Predictions are sorted by (confidence, hit), so ties (many confidences are exactly 1.0)
    are cut the same way however a resample is ordered. A row's sorted sample repeats each
    prediction ``count`` times; a bin's sums come from cumulative sums at its edges.
    ``presorted``: the predictions already come in that order.
    """
    if presorted:
        conf_sorted, hit_sorted, weights = confidence, hit, counts
    else:
        order = sort_order(confidence, hit)
        conf_sorted, hit_sorted, weights = confidence[order], hit[order], counts[:, order]
    cum_n = weights.cumsum(dim=1)
    total = cum_n[:, -1:]
    edges = equal_mass_bounds(int(total[0].item()), n_bins).expand(len(counts), -1).contiguous()
    # the sorted prediction holding position p: the first whose cumulative count exceeds p
    holder = torch.searchsorted(cum_n, edges, right=True).clamp_(max=len(confidence) - 1)
    before_edge = cum_n.gather(1, holder) - edges  # copies of the holder at or after p

    def cumulative_at_edges(values: torch.Tensor) -> torch.Tensor:
        cum = (weights * values).cumsum(dim=1)
        return cum.gather(1, holder) - before_edge * values[holder]

    conf_in_bin = cumulative_at_edges(conf_sorted).diff(dim=1)
    hits_in_bin = cumulative_at_edges(hit_sorted).diff(dim=1)
    return (hits_in_bin - conf_in_bin).abs().sum(dim=1) / total.squeeze(1)


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
        if name in ("acc", "brier", "nll"):
            out[name] = counts @ terms["hit" if name == "acc" else name] / total
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
    """The estimators on the sample itself."""
    ones = torch.ones(1, len(targets), dtype=torch.float64)
    values = weighted_scores(probs, targets, ones, n_bins, estimators)
    return {name: float(value[0]) for name, value in values.items()}
