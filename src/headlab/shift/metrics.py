"""Numbers for shifted and OOD sets, from the project's estimators and from scikit-learn.

Shifted sets: acc, ece, ece_adaptive, brier, nll (``headlab.calibration.estimators``) with
the same seeded percentile bootstrap as test. OOD sets: AUROC, AUPR-in, AUPR-out and two
FPRs at 95% TPR, as ``sklearn.metrics`` defines them (computed here from counts per score
value, equal to it and ~20x faster); intervals from a bootstrap that resamples the in-
and out-sets separately.

FPR95 has two conventions in the literature, so both are reported:

* ``fpr95`` (in-distribution positive, Hendrycks & Gimpel's): the share of OOD inputs still
  accepted at the threshold that keeps 95% of the in-distribution inputs;
* ``fpr95_ood`` (OOD positive, OpenOOD's): the share of in-distribution inputs rejected at
  the threshold that catches 95% of the OOD inputs.

AUROC is the same under either convention.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import binomtest
from sklearn.metrics import roc_curve

from headlab.calibration.bootstrap import percentile_interval, shared_rows
from headlab.calibration.estimators import resampled_scores, scores
from headlab.calibration.posthoc import with_intervals

#: smooth ECE is left out: it costs far more than the others and test already reports it
SHIFT_ESTIMATORS = ("acc", "ece", "ece_adaptive", "brier", "nll")
OOD_METRICS = ("auroc", "aupr_in", "aupr_out", "fpr95", "fpr95_ood")


def shift_metrics(
    prefix: str,
    probs: torch.Tensor,
    targets: torch.Tensor,
    index: torch.Tensor | None,
    suffix: str = "",
    level: float = 0.95,
    draws: dict[str, list[torch.Tensor]] | None = None,
) -> dict[str, float]:
    """``<prefix><estimator><suffix>`` and, with resample rows ``index``, its interval;
    ``draws`` collects each estimator's resampled values (for a mean over sets)."""
    point = scores(probs, targets, estimators=SHIFT_ESTIMATORS)
    resampled = {}
    if index is not None:
        resampled = resampled_scores(probs, targets, index, estimators=SHIFT_ESTIMATORS)
        if draws is not None:
            for name, values in resampled.items():
                draws.setdefault(f"{name}{suffix}", []).append(values)
    return with_intervals(prefix, suffix, point, resampled, level)


def mean_over_sets(
    prefix: str,
    points: dict[str, list[float]],
    draws: dict[str, list[torch.Tensor]],
    level: float = 0.95,
) -> dict[str, float]:
    """``<prefix><name>`` = the mean over sets; its interval from the mean of the sets'
    resampled values, which share resample rows (sets of one size), so it is paired."""
    out = {}
    for name, values in points.items():
        out[f"{prefix}{name}"] = float(np.mean(values))
        if len(draws.get(name, ())) == len(values):
            low, high = percentile_interval(torch.stack(draws[name]).mean(dim=0), level)
            out.update({f"{prefix}{name}_ci_low": low, f"{prefix}{name}_ci_high": high})
    return out


def first_reaching(fpr: np.ndarray, tpr: np.ndarray, tpr_level: float) -> float:
    return float(fpr[np.searchsorted(tpr, tpr_level, side="left")])


def fpr_at_tpr(labels: np.ndarray, score: np.ndarray, tpr_level: float = 0.95) -> float:
    """False-positive rate at the first ROC threshold whose true-positive rate reaches
    ``tpr_level`` (scikit-learn's ROC curve)."""
    fpr, tpr, _ = roc_curve(labels, score, drop_intermediate=False)
    return first_reaching(fpr, tpr, tpr_level)


def threshold_counts(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, ...]:
    """At each distinct score t, from the highest down: how many positive and how many
    negative scores are >= t (true and false positives when ">= t" is called positive), as
    float64 counts (exact integers)."""
    values, inverse = np.unique(np.concatenate([positive, negative]), return_inverse=True)
    per_value_pos = np.bincount(inverse[: len(positive)], minlength=len(values))[::-1]
    per_value_neg = np.bincount(inverse[len(positive) :], minlength=len(values))[::-1]
    return np.cumsum(per_value_pos).astype(float), np.cumsum(per_value_neg).astype(float)


def roc(tps: np.ndarray, fps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of the ROC curve, from the point (0, 0) through every distinct threshold
    (``roc_curve(..., drop_intermediate=False)``'s points)."""
    return np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]


def average_precision(tps: np.ndarray, fps: np.ndarray) -> float:
    """Step-wise average precision: the sum over thresholds of the recall gained there times
    the precision there, summed from the lowest threshold up (recall 0 at precision 1
    closes the curve): ``average_precision_score``'s definition and summation order."""
    precision = np.r_[(tps / (tps + fps))[::-1], 1.0]
    recall = np.r_[(tps / tps[-1])[::-1], 0.0]
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def ood_point(score_in: np.ndarray, score_out: np.ndarray) -> dict[str, float]:
    """The OOD metrics of in-distribution against out-of-distribution scores (higher
    means more in-distribution).

    From one count of each set's scores per distinct value (``threshold_counts``), in each
    direction: AUROC (trapezoid of the ROC), AUPR with either set positive, FPR95 in both
    conventions. Equal to scikit-learn's ``roc_curve``/``auc``/``average_precision_score``
    (``tests/test_shift.py``), ~20x faster: their per-call input checks cost more than the
    metrics, and a run bootstraps them for every OOD set."""
    score_in, score_out = np.asarray(score_in), np.asarray(score_out)
    tps, fps = threshold_counts(score_in, score_out)
    fpr, tpr = roc(tps, fps)
    # OOD as the positive class, scored by minus the score (OpenOOD's convention)
    tps_ood, fps_ood = threshold_counts(-score_out, -score_in)
    fpr_ood, tpr_ood = roc(tps_ood, fps_ood)
    return {
        "auroc": float(np.trapezoid(tpr, fpr)),
        "aupr_in": average_precision(tps, fps),
        "aupr_out": average_precision(tps_ood, fps_ood),
        "fpr95": first_reaching(fpr, tpr, 0.95),
        "fpr95_ood": first_reaching(fpr_ood, tpr_ood, 0.95),
    }


def resampled_auroc_fpr95(
    score_in: np.ndarray, score_out: np.ndarray, rows_in: np.ndarray, rows_out: np.ndarray
) -> dict[str, torch.Tensor]:
    """AUROC and FPR95 (as ``ood_point`` computes them) on every resample row at once.

    ``rows_in`` (B, n_in) and ``rows_out`` (B, n_out) index the two score sets. Each row
    becomes counts per distinct score value, so one pass of cumulative sums gives every row's
    ROC: scikit-learn per resample took ~8 ms, which made 1,000 resamples of every run of a
    study minutes. Ties count half in AUROC, as the trapezoid of scikit-learn's ROC does.
    """
    values, inverse = np.unique(np.concatenate([score_in, score_out]), return_inverse=True)
    inv_in = torch.from_numpy(inverse[: len(score_in)])
    inv_out = torch.from_numpy(inverse[len(score_in) :])

    def counts(rows: np.ndarray, inv: torch.Tensor) -> torch.Tensor:
        """How often each distinct value is drawn in each row: (B, distinct values)."""
        drawn = inv[torch.from_numpy(rows)]
        per_value = torch.zeros(len(rows), len(values), dtype=torch.int32)
        return per_value.scatter_add_(1, drawn, torch.ones(drawn.shape, dtype=torch.int32))

    # integer counts throughout (exact), values in ascending order
    h_in, h_out = counts(rows_in, inv_in), counts(rows_out, inv_out)
    n_in, n_out = rows_in.shape[1], rows_out.shape[1]
    cum_out = h_out.cumsum(1, dtype=torch.int32)
    # AUROC: each in-sample against the out-samples below it, ties counted half
    twice = (h_in.long() * (2 * cum_out - h_out)).sum(1)
    auroc = twice.double() / (2.0 * n_in * n_out)
    # thresholds in descending order: TPR(t) = share of in-scores >= t; FPR95 is the FPR at
    # the first threshold whose TPR reaches 0.95, i.e. the highest value that still does
    tail_in = n_in - h_in.cumsum(1, dtype=torch.int32) + h_in
    reaching = 100 * tail_in >= 95 * n_in  # TPR >= 0.95, in integers
    last = (reaching.sum(1) - 1)[:, None]  # tail sums fall with the value: a prefix
    tail_out = n_out - cum_out.gather(1, last) + h_out.gather(1, last)
    fpr95 = tail_out.squeeze(1).double() / n_out
    return {"auroc": auroc, "fpr95": fpr95}


def ood_metrics(
    prefix: str,
    score_in: np.ndarray,
    score_out: np.ndarray,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, float]:
    """``<prefix><metric>`` with ``_ci_low``/``_ci_high`` from a bootstrap that draws the
    in- and out-sets separately (their sizes stay fixed), seeded: same rows for every score."""
    point = ood_point(score_in, score_out)
    out = {f"{prefix}{name}": value for name, value in point.items()}
    if n_resamples < 1:
        return out
    draws = {name: [] for name in OOD_METRICS}
    rows_in, rows_out = shared_rows((len(score_in), len(score_out)), n_resamples, seed)
    for row_in, row_out in zip(rows_in.numpy(), rows_out.numpy(), strict=True):
        for name, value in ood_point(score_in[row_in], score_out[row_out]).items():
            draws[name].append(value)
    for name in point:
        low, high = percentile_interval(torch.tensor(draws[name]), level)
        out.update({f"{prefix}{name}_ci_low": low, f"{prefix}{name}_ci_high": high})
    return out


def rate_with_interval(key: str, flags: torch.Tensor, level: float = 0.95) -> dict[str, float]:
    """A proportion and its Wilson score interval (scipy), e.g. the none-of-the-above rate."""
    hits, n = int(flags.sum()), len(flags)
    interval = binomtest(hits, n).proportion_ci(confidence_level=level, method="wilson")
    return {key: hits / n, f"{key}_ci_low": interval.low, f"{key}_ci_high": interval.high}
