"""Is this model calibrated? A consistency-resampling test (Bröcker & Smith 2007).

Under the hypothesis "calibrated", a prediction of confidence c is right with probability c.
Redrawing every hit from Bernoulli(confidence) gives the ECE such a model would show on this
test set, bias and all; the p-value is the share of redraws at least as large as the
observed ECE, (1 + #{ECE* >= ECE}) / (R + 1). Only the binned estimators, at 1,000 redraws;
every ECE-type estimator's interval (``inversion``) holds 0 exactly where the same test of
that estimator, at 39 redraws, cannot reject "calibrated".
"""

from __future__ import annotations

import torch

from headlab.calibration.bins import bin_index, bin_sums
from headlab.calibration.estimators import equal_mass_ece

TESTED = ("ece", "ece_adaptive")
CHUNK = 100  # redraws per block: bounds the (rows, N) temporaries to ~8 MB at N = 10k


def redrawn_eces(
    confidence: torch.Tensor, n_resamples: int, seed: int, n_bins: int
) -> dict[str, torch.Tensor]:
    """ECE and adaptive ECE of ``n_resamples`` label sets drawn from the confidences."""
    confidence = confidence.double()
    order = torch.argsort(confidence, stable=True)
    sorted_conf = confidence[order]
    generator = torch.Generator().manual_seed(int(seed))
    count, conf_sum, _ = bin_sums(confidence, torch.zeros_like(confidence), None, n_bins)
    member = torch.nn.functional.one_hot(bin_index(sorted_conf, n_bins), n_bins).double()
    out: dict[str, list[torch.Tensor]] = {name: [] for name in TESTED}
    for first in range(0, n_resamples, CHUNK):
        rows = min(CHUNK, n_resamples - first)
        hits = torch.bernoulli(sorted_conf.expand(rows, -1), generator=generator)
        gaps = (hits @ member - conf_sum).abs().sum(dim=1) / count.sum()
        out["ece"].append(gaps)
        ones = torch.ones(rows, len(confidence), dtype=torch.float64)
        out["ece_adaptive"].append(equal_mass_ece(sorted_conf, hits, ones, n_bins, True))
    return {name: torch.cat(parts) for name, parts in out.items()}


def p_calibrated(
    confidence: torch.Tensor,
    observed: dict[str, float],
    n_resamples: int = 1000,
    seed: int = 0,
    n_bins: int = 15,
) -> dict[str, float]:
    """p-value of "calibrated" per binned estimator, from ``observed`` values on the sample."""
    redrawn = redrawn_eces(confidence, n_resamples, seed, n_bins)
    return {
        name: float((1 + (values >= observed[name] - 1e-12).sum()) / (n_resamples + 1))
        for name, values in redrawn.items()
    }
