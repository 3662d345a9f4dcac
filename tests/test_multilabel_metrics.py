"""Multi-label and soft-target metrics equal an independent NumPy calculation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headlab.metrics import classification_metrics
from headlab.metrics.stage import StageMetrics

RNG = np.random.default_rng(0)
N, K = 400, 10
PROBS = RNG.random((N, K))
# labels correlated with the probabilities, so the scores are neither perfect nor chance
TARGET = (RNG.random((N, K)) < 0.3 + 0.4 * (PROBS > 0.6)).astype(np.int64)


def average_precision(p: np.ndarray, y: np.ndarray) -> float:
    """Mean over positives of the precision at their rank (no ties in continuous scores)."""
    order = np.argsort(-p)
    hits = y[order]
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at[hits == 1].mean())


def binary_ece(p: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    bins = np.minimum(np.digitize(p, np.linspace(0, 1, n_bins + 1)) - 1, n_bins - 1)
    return sum(
        (bins == b).mean() * abs(y[bins == b].mean() - p[bins == b].mean())
        for b in range(n_bins)
        if np.any(bins == b)
    )


def f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    return 2 * tp / (2 * tp + fp + fn)


def expected_multilabel(threshold: float) -> dict[str, float]:
    pred = np.greater(PROBS, threshold).astype(np.int64)  # torchmetrics: p > threshold
    tp = ((pred == 1) & (TARGET == 1)).sum(axis=0)
    fp = ((pred == 1) & (TARGET == 0)).sum(axis=0)
    fn = ((pred == 0) & (TARGET == 1)).sum(axis=0)
    return {
        "acc": np.all(pred == TARGET, axis=1).mean(),
        "hamming_acc": (pred == TARGET).mean(),
        "f1_micro": f1(tp.sum(), fp.sum(), fn.sum()),
        "f1_macro": f1(tp, fp, fn).mean(),
        "map": np.mean([average_precision(PROBS[:, k], TARGET[:, k]) for k in range(K)]),
        "ece": np.mean([binary_ece(PROBS[:, k], TARGET[:, k]) for k in range(K)]),
        "brier": ((PROBS - TARGET) ** 2).sum(axis=1).mean(),  # summed over labels
    }


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_multilabel_metrics_match_numpy_over_several_batches(threshold: float):
    metrics = classification_metrics("multi_hot", K, threshold)
    probs, target = torch.tensor(PROBS, dtype=torch.float32), torch.tensor(TARGET)
    for rows in torch.arange(N).split(150):  # epoch metrics, not a mean of batch metrics
        metrics.update(probs[rows], target[rows])
    values = {k: v.item() for k, v in metrics.compute().items()}
    expected = expected_multilabel(threshold)
    assert values.keys() == expected.keys()
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, abs=1e-5), key


def test_multilabel_ece_puts_a_probability_of_one_in_the_last_bin():
    # torchmetrics' BinaryCalibrationError files 1.0 into an extra bin (its issue #3510)
    metrics = classification_metrics("multi_hot", 2)
    probs = torch.tensor([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5], [1.0, 0.5]])
    target = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 0]])
    metrics.update(probs, target)
    bins = metrics["ece"].bins.compute()
    assert bins.count[0, 14] == 4 and bins.count[0, :14].sum() == 0
    # label 0: confidence 1.0, 3 of 4 right -> 0.25; label 1: 0.5, 2 of 4 -> 0
    assert metrics.compute()["ece"].item() == pytest.approx((0.25 + 0.0) / 2)


def test_kl_is_mean_kl_from_target_to_prediction_and_acc_uses_target_argmax():
    target = RNG.dirichlet(np.ones(K) * 0.3, size=N)
    target[:, :3] = 0.0  # zero target mass contributes nothing
    target /= target.sum(axis=1, keepdims=True)
    probs = RNG.dirichlet(np.ones(K), size=N)
    metrics = classification_metrics("distribution", K)
    for rows in torch.arange(N).split(128):
        metrics.update(torch.tensor(probs[rows]).float(), torch.tensor(target[rows]).float())
    values = metrics.compute()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(target > 0, target * np.log(target / probs), 0.0)
    assert values["kl"].item() == pytest.approx(terms.sum(axis=1).mean(), rel=1e-4)
    expected_acc = (probs.argmax(axis=1) == target.argmax(axis=1)).mean()
    assert values["acc"].item() == pytest.approx(expected_acc)


def test_kl_of_a_prediction_that_underflowed_to_zero_stays_finite():
    metrics = classification_metrics("distribution", 3)
    metrics.update(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.5, 0.5, 0.0]]))
    assert torch.isfinite(metrics.compute()["kl"])


@pytest.mark.parametrize("kind", ["index", "distribution", "multi_hot"])
def test_buffered_train_metrics_equal_batch_by_batch_ones(kind):
    """The train stage hands batches to torchmetrics 16 at a time: the epoch values must be
    those of one update per batch, whatever the grouping (flushes at 3, and a partial one)."""
    gen = torch.Generator().manual_seed(0)
    each, grouped = StageMetrics(kind, 10), StageMetrics(kind, 10, update_every=3)
    for size in (5, 7, 3, 8, 9, 4, 2):
        probs = torch.rand(size, 10, generator=gen)
        if kind == "index":
            target = torch.randint(0, 10, (size,), generator=gen)
        elif kind == "distribution":
            target = torch.softmax(torch.randn(size, 10, generator=gen), 1)
        else:
            target = (torch.rand(size, 10, generator=gen) > 0.7).int()
        if kind != "multi_hot":
            probs = probs / probs.sum(1, keepdim=True)
        loss = torch.rand((), generator=gen)
        each.update(loss, probs, target)
        grouped.update(loss, probs, target)
    assert len(grouped._buffer) == 1  # 7 batches: two flushes of 3, one left for compute
    expected, _ = each.compute("train")
    values, _ = grouped.compute("train")
    assert values.keys() == expected.keys()
    for key, value in expected.items():
        assert float(values[key]) == pytest.approx(float(value), abs=1e-6), key
