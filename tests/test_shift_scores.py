"""Each head's natural OOD scores against NumPy formulas on hand-made logits, and the
Mahalanobis control against a brute-force loop over samples and classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from headlab.heads import SigmoidBCE, SigmoidSoftmax, SoftLabelCE, SoftmaxCE
from headlab.shift.features import FeatureTap, Mahalanobis
from headlab.shift.scores import natural_scores, none_of_the_above, ood_scores

LOGITS = np.array([[4.0, -1.0, 0.5], [-2.0, -3.0, -0.5], [0.0, 0.0, 0.0], [9.0, 8.5, -7.0]])


def scores_of(head) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in ood_scores(head, torch.tensor(LOGITS)).items()}


@pytest.mark.parametrize("head", [SoftmaxCE(), SoftLabelCE()])
def test_softmax_heads_score_msp_max_logit_and_energy_of_the_logits(head):
    z = LOGITS
    softmax = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    scores = scores_of(head)
    assert natural_scores(head) == ("msp", "max_logit", "energy")
    assert scores["msp"] == pytest.approx(softmax.max(axis=1), rel=1e-12)
    assert scores["max_logit"] == pytest.approx([4.0, -0.5, 0.0, 9.0])
    assert scores["energy"] == pytest.approx(np.log(np.exp(z).sum(axis=1)), rel=1e-12)


def test_sigmoid_softmax_scores_what_its_softmax_sees_sigmoid_of_z():
    s = 1 / (1 + np.exp(-LOGITS))
    softmax = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    scores = scores_of(SigmoidSoftmax())
    assert scores["msp"] == pytest.approx(softmax.max(axis=1), rel=1e-12)
    assert scores["max_logit"] == pytest.approx(s.max(axis=1), rel=1e-12)
    assert scores["energy"] == pytest.approx(np.log(np.exp(s).sum(axis=1)), rel=1e-12)
    # never the energy of raw z (which would be 9.47 for the last row)
    assert scores["energy"][3] < np.log(3 * np.e)


def test_sigmoid_heads_score_max_sigmoid_sum_of_sigmoids_and_joint_energy():
    s = 1 / (1 + np.exp(-LOGITS))
    scores = scores_of(SigmoidBCE())
    assert natural_scores(SigmoidBCE()) == ("msp", "sum_sigmoid", "joint_energy")
    assert scores["msp"] == pytest.approx(s.max(axis=1), rel=1e-12)
    assert scores["sum_sigmoid"] == pytest.approx(s.sum(axis=1), rel=1e-12)
    assert scores["joint_energy"] == pytest.approx(np.log(1 + np.exp(LOGITS)).sum(axis=1))


def test_none_of_the_above_for_sigmoid_softmax_is_every_sigmoid_of_z_below_one_half():
    # rows: all z < 0 (rejected), one z > 0, all z = 0 (sigmoid = 0.5: not below), two z > 0
    expected = [False, True, False, False]
    assert none_of_the_above(SigmoidSoftmax(), torch.tensor(LOGITS)).tolist() == expected
    assert none_of_the_above(SigmoidBCE(), torch.tensor(LOGITS)).tolist() == expected
    assert none_of_the_above(SoftmaxCE(), torch.tensor(LOGITS)) is None


def brute_force_mahalanobis(train, labels, test, n_classes):
    means = [train[labels == c].mean(axis=0) for c in range(n_classes)]
    covariance = np.zeros((train.shape[1], train.shape[1]))
    for x, y in zip(train, labels, strict=True):
        d = (x - means[y])[:, None]
        covariance += d @ d.T
    precision = np.linalg.inv(covariance / len(train))
    return np.array([-min(float((f - m) @ precision @ (f - m)) for m in means) for f in test])


def test_mahalanobis_equals_a_brute_force_loop_over_samples_and_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    train = rng.normal(size=(120, 4)) + labels[:, None] * np.array([3.0, 0.0, -1.0, 0.5])
    test = rng.normal(size=(25, 4)) * 2
    detector = Mahalanobis.fit(train, labels, 3)
    expected = brute_force_mahalanobis(train, labels, test, 3)
    assert detector.score(test) == pytest.approx(expected, rel=1e-9)
    # a class mean itself is at distance 0: the highest possible score
    assert detector.score(detector.means) == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)


def test_the_feature_tap_keeps_the_classifier_layers_input():
    backbone, layer = torch.nn.Linear(5, 4), torch.nn.Linear(4, 3)
    x = torch.randn(6, 5)
    with FeatureTap(layer) as tap:
        layer(backbone(x))
    assert torch.equal(tap.features(), backbone(x).detach())
    layer(backbone(x))  # outside: nothing more kept
    assert len(tap.features()) == 6


def test_fpr95_in_both_conventions_equals_a_count_on_hand_made_scores_and_roc_curve():
    from sklearn.metrics import roc_curve

    from headlab.shift.metrics import ood_point

    score_in = np.arange(1.0, 21.0)  # 20 in-distribution inputs: 1..20
    score_out = np.r_[0.0, 0.5, 1.5, 2.5, 3.5, 30.0, -np.arange(1.0, 15.0)]  # 20 OOD
    point = ood_point(score_in, score_out)
    # ID positive: keep 95% of ID (19 of 20: threshold 2): OOD >= 2 are 2.5, 3.5, 30
    assert point["fpr95"] == pytest.approx(3 / 20)
    # OOD positive: catch 95% of OOD (19 of 20, by -score: all but 30.0, threshold
    # score <= 3.5); ID inputs rejected with them: 1, 2, 3
    assert point["fpr95_ood"] == pytest.approx(3 / 20)
    labels = np.r_[np.zeros(20), np.ones(20)]  # OOD positive
    fpr, tpr, _ = roc_curve(labels, -np.r_[score_in, score_out], drop_intermediate=False)
    assert point["fpr95_ood"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)])
