"""Calibration metrics against an independent NumPy calculation, and their known traps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from headlab.calibration.bins import CalibrationMetrics, ProbabilitySum, ReliabilityBins
from headlab.calibration.calibrators import Temperature
from headlab.calibration.scoring import logits_nll
from headlab.heads import SigmoidBCE, SoftmaxCE


def numpy_calibration(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, min_count: int = 30
) -> dict:
    """Textbook definitions, written without the project's code (MCE over bins holding at
    least ``min_count`` predictions)."""
    n, k = probs.shape

    def ece_mce(conf: np.ndarray, hit: np.ndarray) -> tuple[float, float]:
        bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
        ece, mce = 0.0, 0.0
        for b in range(n_bins):
            mask = bins == b
            if mask.any():
                gap = abs(hit[mask].mean() - conf[mask].mean())
                ece += mask.sum() / len(conf) * gap
                if mask.sum() >= min_count:
                    mce = max(mce, gap)
        return ece, mce

    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    ece, mce = ece_mce(conf, (pred == labels).astype(float))
    one_hot = np.eye(k)[labels]
    cw = np.mean([ece_mce(probs[:, c], one_hot[:, c])[0] for c in range(k)])
    # Brier and NLL of the normalised distribution p / sum p (calibration.scoring), summed
    # over classes; the same as of p itself for rows that sum to one
    share = probs / probs.sum(axis=1, keepdims=True)
    brier = ((share - one_hot) ** 2).sum(axis=1).mean()
    nll = -np.log(np.maximum(share[np.arange(n), labels], 1e-12)).mean()
    return {"ece": ece, "mce": mce, "cw_ece": cw, "brier": brier, "nll": nll}


def project_calibration(probs: np.ndarray, labels: np.ndarray, chunks: int = 3) -> dict:
    metric = CalibrationMetrics(probs.shape[1])
    for p, y in zip(np.array_split(probs, chunks), np.array_split(labels, chunks), strict=True):
        metric.update(torch.tensor(p), torch.tensor(y))
    scalars, _ = metric.compute()
    return {k: v.item() for k, v in scalars.items()}


def random_probs(n: int = 500, k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probs, rng.integers(0, k, size=n)


def test_all_metrics_equal_numpy_on_random_predictions():
    probs, labels = random_probs()
    assert project_calibration(probs, labels) == pytest.approx(numpy_calibration(probs, labels))


def test_perfectly_calibrated_predictions_have_zero_ece():
    # confidence 0.75 everywhere (bin 11), right on exactly 3 of every 4 samples
    probs = np.full((400, 2), 0.25)
    probs[:, 0] = 0.75
    labels = np.array([0, 0, 0, 1] * 100)
    got = project_calibration(probs, labels)
    assert got["ece"] == pytest.approx(0.0, abs=1e-12)
    assert got["mce"] == pytest.approx(0.0, abs=1e-12)
    assert got == pytest.approx(numpy_calibration(probs, labels))


def test_maximally_overconfident_predictions_have_ece_one():
    # all confidence 1.0 on the wrong class: the float32 sigmoid(x > 17) case
    probs = np.zeros((100, 10))
    labels = np.arange(100) % 10
    probs[np.arange(100), (labels + 1) % 10] = 1.0
    got = project_calibration(probs, labels)
    assert got["ece"] == pytest.approx(1.0) and got["mce"] == pytest.approx(1.0)
    assert got["brier"] == pytest.approx(2.0)
    assert got["nll"] == pytest.approx(-np.log(1e-12))
    assert got == pytest.approx(numpy_calibration(probs, labels))


def test_mce_ignores_bins_with_fewer_than_min_bin_count_predictions():
    # 40 right at confidence 0.95 (gap 0.05), 3 wrong at 0.55 (gap 0.55: noise of 3 samples)
    probs = np.zeros((43, 2))
    probs[:40, 0], probs[40:, 0] = 0.95, 0.55
    probs[:, 1] = 1 - probs[:, 0]
    labels = np.array([0] * 40 + [1] * 3)
    metric = CalibrationMetrics(2, min_bin_count=30)
    metric.update(torch.tensor(probs), torch.tensor(labels))
    assert metric.compute()[0]["mce"].item() == pytest.approx(0.05)
    everything = CalibrationMetrics(2, min_bin_count=1)
    everything.update(torch.tensor(probs), torch.tensor(labels))
    assert everything.compute()[0]["mce"].item() == pytest.approx(0.55)
    assert numpy_calibration(probs, labels)["mce"] == pytest.approx(0.05)


def test_confidence_of_exactly_one_lands_in_the_last_bin_not_an_extra_one():
    bins = ReliabilityBins(1, n_bins=15)
    bins.update(torch.tensor([1.0, 0.99, 0.5]), torch.tensor([1.0, 0.0, 1.0]))
    count = bins.compute().count[0]
    assert count.sum() == 3 and count[14] == 2 and count[7] == 1


def test_agrees_with_torchmetrics_where_torchmetrics_is_right():
    probs, labels = random_probs(seed=3)
    probs = np.minimum(probs, 0.999)  # no exact 1.0: torchmetrics' extra-bin trap
    reference = MulticlassCalibrationError(10, n_bins=15, norm="l1")
    reference.update(torch.tensor(probs), torch.tensor(labels))
    ours = project_calibration(probs, labels)["ece"]
    assert ours == pytest.approx(reference.compute().item(), abs=1e-5)


def test_state_stays_the_same_size_however_many_predictions():
    metric = CalibrationMetrics(10)
    probs, labels = random_probs(n=2000)
    sizes = []
    for p, y in zip(np.array_split(probs, 4), np.array_split(labels, 4), strict=True):
        metric.update(torch.tensor(p), torch.tensor(y))
        sizes.append(sum(t.numel() for t in metric.state_dict(keep_vars=True).values()))
    assert len(set(sizes)) == 1
    # and sum-reduction across processes is exact: two halves add up to the whole
    halves = [ReliabilityBins(10), ReliabilityBins(10)]
    whole = ReliabilityBins(10)
    one_hot = torch.nn.functional.one_hot(torch.tensor(labels), 10)
    for part, idx in zip(halves, np.array_split(np.arange(2000), 2), strict=True):
        part.update(torch.tensor(probs[idx]), one_hot[idx])
    whole.update(torch.tensor(probs), one_hot)
    for name in ("count", "confidence", "hits"):
        # what torchmetrics does on sync: the state's own reduction over the gathered states
        gathered = torch.stack([getattr(halves[0], name), getattr(halves[1], name)])
        torch.testing.assert_close(whole._reductions[name](gathered), getattr(whole, name))


def test_probability_sum_statistics():
    probs = torch.tensor([[0.9, 0.3], [0.5, 0.5], [0.1, 0.2]])
    metric = ProbabilitySum()
    metric.update(probs)
    out = metric.compute()
    sums = probs.sum(1).double()
    assert out["mean"].item() == pytest.approx(sums.mean().item())
    assert out["std"].item() == pytest.approx(sums.std(unbiased=False).item())
    assert out["histogram"].sum().item() == 3


@pytest.mark.parametrize("head", [SoftmaxCE(), SigmoidBCE()])
def test_temperature_scaling_lowers_nll_of_an_overconfident_model(head):
    torch.manual_seed(0)
    labels = torch.randint(0, 10, (2000,))
    clean = torch.randn(2000, 10)
    clean[torch.arange(2000), labels] += 2.0
    overconfident = clean * 6.0  # same ranking, far too sharp
    t = Temperature(head.probs).fit(overconfident[:1000], labels[:1000]).temperature
    assert t > 2.0
    before = logits_nll(head.exclusive, overconfident[1000:], labels[1000:])
    after = logits_nll(head.exclusive, overconfident[1000:] / t, labels[1000:])
    assert after < 0.8 * before
