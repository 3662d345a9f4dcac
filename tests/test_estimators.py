"""Estimators and their bootstrap against independent NumPy calculations and relplot."""

from __future__ import annotations

import numpy as np
import pytest
import relplot
import torch

from headlab.calibration.bootstrap import (
    percentile_interval,
    resample_index,
    resample_rows,
    shared_rows,
)
from headlab.calibration.estimators import ESTIMATORS, resampled_scores, scores
from headlab.calibration.smooth import smooth_ece


def numpy_scores(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """Textbook definitions, written without the project's code."""
    n, k = probs.shape
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    hit = (pred == labels).astype(float)
    width_bin = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = (
        sum(abs(hit[width_bin == b].sum() - conf[width_bin == b].sum()) for b in range(n_bins)) / n
    )
    order = np.argsort(conf, kind="stable")
    # a tie of confidences cut by a bin edge: every copy carries the tie's mean hit
    _, tie_of, tie_size = np.unique(conf[order], return_inverse=True, return_counts=True)
    tie_hit = np.bincount(tie_of, hit[order]) / tie_size
    hit_sorted = tie_hit[tie_of]
    ece_adaptive = sum(
        abs(hit_sorted[c].sum() - conf[order][c].sum())
        for c in np.array_split(np.arange(n), n_bins)
    )
    one_hot = np.eye(k)[labels]
    normal = probs / probs.sum(axis=1, keepdims=True)
    clipped = np.clip(probs, 1e-12, 1 - 1e-12)
    return {
        "acc": hit.mean(),
        "ece": ece,
        "ece_adaptive": ece_adaptive / n,
        "smece": relplot.smECE(conf, hit),
        "brier": ((normal - one_hot) ** 2).sum(axis=1).mean(),
        "nll": -np.log(np.maximum(normal[np.arange(n), labels], 1e-12)).mean(),
        "brier_ovr": ((probs - one_hot) ** 2).sum(axis=1).mean(),
        "nll_ovr": -(one_hot * np.log(clipped) + (1 - one_hot) * np.log(1 - clipped))
        .sum(axis=1)
        .mean(),
    }


def mnist_like(n: int = 10000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs shaped like a trained MNIST model's: ~97% right, most near 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    logits = rng.normal(size=(n, 10))
    right = rng.random(n) < 0.97
    boost = rng.gamma(4.0, 2.5, n)
    winner = np.where(right, labels, (labels + rng.integers(1, 10, n)) % 10)
    logits[np.arange(n), winner] += boost
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return (probs / probs.sum(1, keepdims=True)).astype(np.float32).astype(np.float64), labels


def ours(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return scores(torch.tensor(probs), torch.tensor(labels))


def test_every_estimator_equals_numpy_and_relplot_on_mnist_like_predictions():
    probs, labels = mnist_like()
    got, expected = ours(probs, labels), numpy_scores(probs, labels)
    assert set(got) == set(ESTIMATORS)
    for name in ESTIMATORS:
        tol = 1e-4 if name == "smece" else 1e-9
        assert got[name] == pytest.approx(expected[name], abs=tol), name
    assert got["ece_adaptive"] > 0 and got["smece"] > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_estimators_equal_numpy_on_random_predictions(seed: int):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(700, 10)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 10, 700)
    got, expected = ours(probs, labels), numpy_scores(probs, labels)
    for name in ESTIMATORS:
        assert got[name] == pytest.approx(expected[name], abs=1e-4 if name == "smece" else 1e-9)


def test_confidences_of_exactly_one():
    # all 1.0: the wrong class for a fifth of the samples (sigmoid(x > 17) in float32)
    labels = np.arange(500) % 10
    predicted = np.where(np.arange(500) % 5 == 0, (labels + 1) % 10, labels)
    probs = np.zeros((500, 10))
    probs[np.arange(500), predicted] = 1.0
    got, expected = ours(probs, labels), numpy_scores(probs, labels)
    for name in ESTIMATORS:
        assert got[name] == pytest.approx(expected[name], abs=1e-9), name
    assert got["ece"] == pytest.approx(0.2) and got["ece_adaptive"] == pytest.approx(0.2)


def test_resamples_equal_the_estimators_on_the_resampled_data():
    probs, labels = mnist_like(3000, seed=4)
    index = resample_index(3000, 6, seed=0)
    batch = resampled_scores(torch.tensor(probs), torch.tensor(labels), index)
    for b in range(6):
        rows = index[b].numpy()
        expected = numpy_scores(probs[rows], labels[rows])
        for name in ESTIMATORS:
            tol = 1e-4 if name == "smece" else 1e-9
            assert batch[name][b].item() == pytest.approx(expected[name], abs=tol), (b, name)
    # resamples differ from one another (a bootstrap, not one value repeated)
    assert batch["ece"].std() > 0 and batch["smece"].std() > 0


def test_smooth_ece_resamples_match_relplot_tightly():
    probs, labels = mnist_like(seed=5)
    conf, hit = probs.max(1), (probs.argmax(1) == labels).astype(float)
    index = resample_index(len(labels), 4, seed=3)
    batch = resampled_scores(
        torch.tensor(probs), torch.tensor(labels), index, estimators=("smece",)
    )
    for b in range(4):
        rows = index[b].numpy()
        assert batch["smece"][b].item() == pytest.approx(
            relplot.smECE(conf[rows], hit[rows]), abs=1e-8
        )


@pytest.mark.slow
def test_perfectly_confident_and_right_is_zero_with_an_interval_at_zero():
    labels = np.arange(400) % 10
    probs = np.eye(10)[labels]
    index = resample_index(400, 200, seed=1)
    batch = resampled_scores(torch.tensor(probs), torch.tensor(labels), index)
    for name in ("ece", "ece_adaptive", "smece", "brier", "nll"):
        low, high = percentile_interval(batch[name])
        assert ours(probs, labels)[name] == pytest.approx(0.0, abs=1e-9)
        assert low <= 1e-9 and high <= 1e-9, name


@pytest.mark.slow
def test_calibrated_synthetic_set_scores_near_zero_and_bias_explains_the_rest():
    # outcomes drawn from the stated confidence: calibrated by construction
    rng = np.random.default_rng(7)
    n = 20000
    conf = rng.uniform(0.5, 1.0, n)
    hit = rng.random(n) < conf
    probs = np.stack([conf, 1 - conf], axis=1)  # class 0 predicted with confidence conf
    labels = np.where(hit, 0, 1)
    index = resample_index(n, 200, seed=2)
    got = ours(probs, labels)
    batch = resampled_scores(torch.tensor(probs), torch.tensor(labels), index)
    for name in ("ece", "ece_adaptive", "smece"):
        assert got[name] < 0.015, name
        low, high = percentile_interval(batch[name])
        assert low <= got[name] + 0.005 and high < 0.03, name


def test_resample_index_is_seeded_and_percentiles_match_numpy():
    a, b = resample_index(50, 30, seed=9), resample_index(50, 30, seed=9)
    assert torch.equal(a, b) and not torch.equal(a, resample_index(50, 30, seed=10))
    assert a.shape == (30, 50) and a.min() >= 0 and a.max() < 50
    values = torch.rand(1000, dtype=torch.float64)
    low, high = percentile_interval(values, 0.9)
    assert (low, high) == pytest.approx(tuple(np.percentile(values.numpy(), [5, 95])))


def test_resample_rows_is_one_kernel_for_seeds_generators_and_several_samples():
    # a seed gives the rows torch.randint draws from a generator seeded with it
    reference = torch.randint(0, 40, (7, 40), generator=torch.Generator().manual_seed(4))
    assert torch.equal(resample_rows(40, 7, 4), reference)
    assert torch.equal(resample_index(40, 7, 4), reference)
    # a generator moves on: two calls are the two halves of one stream
    g = torch.Generator().manual_seed(5)
    first, second = resample_rows(40, 3, g), resample_rows(25, 3, g, size=6)
    stream = torch.Generator().manual_seed(5)
    assert torch.equal(first, torch.randint(0, 40, (3, 40), generator=stream))
    assert torch.equal(second, torch.randint(0, 25, (3, 6), generator=stream))
    # several samples: rows per size in order from one seeded generator, the same every call
    rows_in, rows_out = shared_rows((40, 25), 3, seed=5)
    assert torch.equal(rows_in, first) and rows_out.shape == (3, 25)
    again = shared_rows((40, 25), 3, 5)
    assert torch.equal(again[0], rows_in) and torch.equal(again[1], rows_out)
    with pytest.raises(ValueError, match="n_resamples=0"):
        resample_rows(40, 0, 1)


def test_ood_intervals_are_percentiles_over_the_kernels_rows():
    from headlab.shift.metrics import ood_metrics, ood_point

    rng = np.random.default_rng(2)
    score_in, score_out = rng.normal(1.0, 1.0, 120), rng.normal(0.0, 1.0, 80)
    got = ood_metrics("x/", score_in, score_out, 30, seed=6)
    rows_in, rows_out = shared_rows((120, 80), 30, seed=6)
    per_row = [
        ood_point(score_in[a], score_out[b])
        for a, b in zip(rows_in.numpy(), rows_out.numpy(), strict=True)
    ]
    for name in ("auroc", "fpr95"):
        low, high = np.percentile([r[name] for r in per_row], [2.5, 97.5])
        assert (got[f"x/{name}_ci_low"], got[f"x/{name}_ci_high"]) == pytest.approx((low, high))


def test_smooth_ece_with_a_label_set_per_row_equals_relplot_per_row():
    rng = np.random.default_rng(8)
    conf = 1 - 0.9 * rng.beta(0.5, 8.0, 1500)
    hits = (rng.random((4, 1500)) < conf).astype(float)
    got = smooth_ece(torch.tensor(conf), torch.tensor(hits), torch.ones(4, 1500).double())
    for row, value in zip(hits, got.tolist(), strict=True):
        assert value == pytest.approx(relplot.smECE(conf, row), abs=1e-4)


def test_equal_mass_membership_gives_adaptive_ece_with_ties_cut_by_edges():
    from headlab.calibration.inversion import equal_mass_member

    rng = np.random.default_rng(9)
    conf = np.sort(np.round(rng.uniform(0.55, 1.0, 1003) * 20) / 20)  # big ties across edges
    hits = (rng.random((3, 1003)) < conf).astype(float)
    member = equal_mass_member(torch.tensor(conf), 15)
    gaps = (torch.tensor(hits) @ member - torch.tensor(conf) @ member).abs().sum(dim=1) / 1003
    for row, value in zip(hits, gaps.tolist(), strict=True):
        probs, labels = top_label_predictions(conf, row)
        assert value == pytest.approx(numpy_scores(probs, labels)["ece_adaptive"], abs=1e-12)


def top_label_predictions(conf: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities whose top label has confidence ``conf``, right where ``hit``."""
    probs = np.stack([conf, 1 - conf], axis=1)
    return probs, np.where(hit > 0.5, 0, 1)
