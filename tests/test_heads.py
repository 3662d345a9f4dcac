"""Each head's loss equals the textbook formula, computed independently in NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headlab.heads import HEADS, HeadDataMismatch, SigmoidBCE, SigmoidNLL, SoftLabelCE, SoftmaxCE

LOGITS = np.array([[2.0, -1.0, 0.5, 0.0], [-0.3, 0.8, 3.0, -2.0], [1.0, 1.0, 1.0, 1.0]])
LABELS = np.array([0, 2, 3])


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[labels]


def loss_of(head, target: np.ndarray, kind: str) -> float:
    t = torch.tensor(target) if kind == "index" else torch.tensor(target, dtype=torch.float32)
    return head.loss(torch.tensor(LOGITS, dtype=torch.float32), t, kind).item()


def test_softmax_ce_matches_mean_negative_log_softmax_of_true_class():
    expected = -log_softmax(LOGITS)[np.arange(3), LABELS].mean()
    assert loss_of(SoftmaxCE(), LABELS, "index") == pytest.approx(expected, rel=1e-6)


def test_sigmoid_bce_matches_mean_over_samples_and_classes():
    p, y = sigmoid(LOGITS), one_hot(LABELS, 4)
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    assert loss_of(SigmoidBCE(), LABELS, "index") == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_soft_head_is_ce_against_label_smoothed_one_hot(smoothing: float):
    k = LOGITS.shape[1]
    target = one_hot(LABELS, k) * (1 - smoothing) + smoothing / k
    expected = -(target * log_softmax(LOGITS)).sum(axis=1).mean()
    assert loss_of(SoftLabelCE(smoothing), LABELS, "index") == pytest.approx(expected, rel=1e-6)


def test_soft_head_with_distribution_targets_is_plain_soft_ce():
    target = np.array([[0.25, 0.25, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    expected = -(target * log_softmax(LOGITS)).sum(axis=1).mean()
    # smoothing applies to hard labels only: a given distribution is used as it is
    assert loss_of(SoftLabelCE(0.3), target, "distribution") == pytest.approx(expected, rel=1e-6)


def test_softmax_on_multi_hot_uses_the_normalised_vector():
    multi_hot = np.array([[1, 0, 1, 0], [0, 0, 1, 0], [1, 1, 1, 1]], dtype=np.float32)
    target = multi_hot / multi_hot.sum(axis=1, keepdims=True)
    expected = -(target * log_softmax(LOGITS)).sum(axis=1).mean()
    assert loss_of(SoftmaxCE(), multi_hot, "multi_hot") == pytest.approx(expected, rel=1e-6)


def test_sigmoid_nll_only_counts_the_true_class():
    expected = -np.log(sigmoid(LOGITS[np.arange(3), LABELS])).mean()
    assert loss_of(SigmoidNLL(), LABELS, "index") == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_probabilities_lie_in_unit_interval_and_softmax_family_sums_to_one(name: str):
    head = HEADS[name]()
    probs = head.probs(torch.tensor(LOGITS * 20, dtype=torch.float32))
    assert torch.all((probs >= 0) & (probs <= 1))
    if head.exclusive:
        torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))


def test_smoothing_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match=r"head.smoothing must lie in \[0, 1\)"):
        SoftLabelCE(1.0)


def test_head_that_does_not_fit_the_targets_names_head_data_and_fitting_heads():
    with pytest.raises(HeadDataMismatch) as err:
        SigmoidNLL().check_fits("multi_hot", "data=multilabel_mnist")
    message = str(err.value)
    assert "head=sigmoid_nll" in message and "data=multilabel_mnist" in message
    assert "asl, sigmoid, sigmoid_focal, soft, softmax" in message
