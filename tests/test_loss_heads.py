"""focal, sigmoid_focal, asl and poly: the published formulas, their limits, their gradients."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from headlab.errors import ConfigValueError
from headlab.heads import (
    AsymmetricLoss,
    FocalLoss,
    PolyLoss,
    SigmoidBCE,
    SigmoidFocal,
    SoftmaxCE,
)
from headlab.run.train import train
from tests.test_heads import LABELS, LOGITS, log_softmax, loss_of, one_hot, sigmoid

MULTI_HOT = np.array([[1, 0, 1, 0], [0, 0, 1, 0], [1, 1, 1, 1]], dtype=np.float32)
DISTRIBUTION = np.array([[0.25, 0.25, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])


def loss_and_grad(head, target: np.ndarray, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.tensor(LOGITS * 1.5, dtype=torch.float64, requires_grad=True)
    # float64 targets holding float32 values: the textbook heads cast targets to float32
    t = torch.tensor(target) if kind == "index" else torch.tensor(target).float().double()
    loss = head.loss(logits, t, kind)
    (grad,) = torch.autograd.grad(loss, logits)
    return loss.detach(), grad


# (head in its limit, the head it must equal, target, kind)
LIMITS = [
    (FocalLoss(gamma=0.0), SoftmaxCE(), LABELS, "index"),
    (FocalLoss(gamma=0.0), SoftmaxCE(), DISTRIBUTION, "distribution"),
    (PolyLoss(epsilon=0.0), SoftmaxCE(), LABELS, "index"),
    (PolyLoss(epsilon=0.0), SoftmaxCE(), DISTRIBUTION, "distribution"),
    (SigmoidFocal(gamma=0.0), SigmoidBCE(), LABELS, "index"),
    (SigmoidFocal(gamma=0.0), SigmoidBCE(), MULTI_HOT, "multi_hot"),
    (AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0), SigmoidBCE(), LABELS, "index"),
    (AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0), SigmoidBCE(), MULTI_HOT, "multi_hot"),
]


@pytest.mark.parametrize(
    "head,reference,target,kind", LIMITS, ids=[f"{h.name}-{k}" for h, _, _, k in LIMITS]
)
def test_in_its_limit_each_head_equals_the_textbook_head_in_loss_and_gradient(
    head, reference, target, kind
):
    loss, grad = loss_and_grad(head, target, kind)
    expected_loss, expected_grad = loss_and_grad(reference, target, kind)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-15)


GRADIENT_CASES = [
    (FocalLoss(gamma=2.0), LABELS, "index"),
    (FocalLoss(gamma=0.5), DISTRIBUTION, "distribution"),
    (FocalLoss(gamma_schedule="flsd53"), LABELS, "index"),
    (PolyLoss(epsilon=1.0), LABELS, "index"),
    (PolyLoss(epsilon=-0.5), DISTRIBUTION, "distribution"),
    (SigmoidFocal(gamma=2.0, alpha=0.25), LABELS, "index"),
    (SigmoidFocal(gamma=1.5), MULTI_HOT, "multi_hot"),
    (AsymmetricLoss(), MULTI_HOT, "multi_hot"),
    (AsymmetricLoss(gamma_pos=1.0, gamma_neg=2.0, clip=0.2), LABELS, "index"),
]


@pytest.mark.parametrize(
    "head,target,kind", GRADIENT_CASES, ids=[f"{h!r}-{k}" for h, _, k in GRADIENT_CASES]
)
def test_gradient_matches_finite_differences(head, target, kind):
    t = torch.tensor(target) if kind == "index" else torch.tensor(target, dtype=torch.float64)
    logits = torch.tensor(LOGITS * 1.5, dtype=torch.float64, requires_grad=True)
    # central differences in float64 against autograd, every logit perturbed in turn
    assert torch.autograd.gradcheck(lambda z: head.loss(z, t, kind), (logits,), eps=1e-6)


def test_gradient_stays_finite_where_probabilities_saturate():
    logits = torch.tensor([[40.0, -40.0, 0.0], [-40.0, 40.0, 0.0]], requires_grad=True)
    heads = [FocalLoss(0.5), SigmoidFocal(0.5), AsymmetricLoss(0.5, 0.5, 0.05), PolyLoss()]
    for head in heads:
        kind = "index"
        (grad,) = torch.autograd.grad(head.loss(logits, torch.tensor([0, 2]), kind), logits)
        assert torch.isfinite(grad).all(), head


@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_focal_downweights_an_easy_sample_relative_to_ce_by_one_minus_pt_to_the_gamma(gamma):
    logits = torch.tensor([[4.0, 0.0, -1.0], [0.2, 0.0, 0.1]])  # easy, then hard, class 0
    target = torch.tensor([0])
    p_t = logits.softmax(dim=1)[:, 0]
    factors = []
    for row in range(2):
        focal = FocalLoss(gamma).loss(logits[row : row + 1], target, "index")
        ce = SoftmaxCE().loss(logits[row : row + 1], target, "index")
        factors.append((focal / ce).item())
        assert factors[row] == pytest.approx((1 - p_t[row].item()) ** gamma, rel=1e-5)
    # the easy sample (p_t ~ 0.98) keeps less of its CE weight than the hard one (p_t ~ 0.37)
    assert factors[0] < factors[1] < 1.0


def numpy_focal(logits: np.ndarray, labels: np.ndarray, gamma_of) -> float:
    log_p = log_softmax(logits)[np.arange(len(labels)), labels]
    p = np.exp(log_p)
    return float(-((1 - p) ** gamma_of(p) * log_p).mean())


def test_focal_matches_numpy_formula_with_constant_gamma():
    expected = numpy_focal(LOGITS, LABELS, lambda p: 2.0)
    assert loss_of(FocalLoss(2.0), LABELS, "index") == pytest.approx(expected, rel=1e-6)


def test_flsd53_uses_gamma_5_below_p_t_0_2_and_3_above():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 0.5, 0.0]])
    labels = np.array([0, 0, 2])
    p_t = np.exp(log_softmax(logits)[np.arange(3), labels])
    assert (p_t < 0.2).any() and (p_t >= 0.2).any()  # the schedule really switches here
    expected = numpy_focal(logits, labels, lambda p: np.where(p < 0.2, 5.0, 3.0))
    ours = FocalLoss(gamma=2.0, gamma_schedule="flsd53").loss(
        torch.tensor(logits), torch.tensor(labels), "index"
    )
    assert ours.item() == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(numpy_focal(logits, labels, lambda p: 3.0), rel=1e-3)


def test_poly_matches_numpy_formula():
    log_p = log_softmax(LOGITS)[np.arange(3), LABELS]
    expected = (-log_p + 1.0 * (1 - np.exp(log_p))).mean()
    assert loss_of(PolyLoss(1.0), LABELS, "index") == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (0.5, None), (3.0, 0.9)])
def test_sigmoid_focal_equals_torchvisions_implementation(gamma, alpha):
    logits, target = torch.tensor(LOGITS * 1.5), torch.tensor(MULTI_HOT, dtype=torch.float64)
    expected = sigmoid_focal_loss(logits, target, -1 if alpha is None else alpha, gamma, "mean")
    ours = SigmoidFocal(gamma, alpha).loss(logits, target, "multi_hot")
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=0)


def test_sigmoid_focal_matches_numpy_formula_with_alpha():
    p, y = sigmoid(LOGITS), MULTI_HOT
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = y * p + (1 - y) * (1 - p)
    alpha_t = 0.25 * y + 0.75 * (1 - y)
    expected = (alpha_t * (1 - p_t) ** 2 * bce).mean()
    head = SigmoidFocal(gamma=2.0, alpha=0.25)
    assert loss_of(head, MULTI_HOT, "multi_hot") == pytest.approx(expected, rel=1e-6)


def numpy_asl_sum(z: np.ndarray, y: np.ndarray, gamma_pos: float, gamma_neg: float, clip: float):
    """Ridnik et al.'s formula as their reference code reduces it: a sum over everything."""
    p = sigmoid(z)
    p_m = np.maximum(p - clip, 0.0)
    positive = -((1 - p) ** gamma_pos) * np.log(p)
    negative = -(p_m**gamma_neg) * np.log(1 - p_m)
    return float((y * positive + (1 - y) * negative).sum())


@pytest.mark.parametrize("params", [(0.0, 4.0, 0.05), (1.0, 2.0, 0.2), (0.0, 0.0, 0.0)])
def test_asl_is_the_paper_formula_divided_by_batch_size_times_labels(params):
    expected_sum = numpy_asl_sum(LOGITS, MULTI_HOT, *params)
    ours = loss_of(AsymmetricLoss(*params), MULTI_HOT, "multi_hot")
    assert ours * MULTI_HOT.size == pytest.approx(expected_sum, rel=1e-6)


def test_asl_ignores_negatives_below_the_margin():
    logits = torch.tensor([[3.0, -4.0, -5.0]])  # sigmoid(-4) = 0.018 < clip 0.05
    target = torch.tensor([[1.0, 0.0, 0.0]])
    with_negatives = AsymmetricLoss(clip=0.05).loss(logits, target, "multi_hot")
    positive_only = -torch.nn.functional.logsigmoid(logits[0, 0]) / 3
    torch.testing.assert_close(with_negatives, positive_only)


def test_sigmoid_heads_on_index_targets_use_one_hot():
    head = SigmoidFocal(gamma=2.0)
    as_index = loss_of(head, LABELS, "index")
    assert as_index == pytest.approx(loss_of(head, one_hot(LABELS, 4), "multi_hot"), rel=1e-7)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: FocalLoss(gamma=-1.0), r"head\.gamma must be >= 0"),
        (lambda: FocalLoss(gamma_schedule="flsd"), r"head\.gamma_schedule must be null or one"),
        (lambda: SigmoidFocal(gamma=-0.1), r"head\.gamma must be >= 0"),
        (lambda: SigmoidFocal(alpha=1.5), r"head\.alpha must be null or lie in \[0, 1\]"),
        (lambda: AsymmetricLoss(gamma_pos=-1.0), r"head\.gamma_pos must be >= 0"),
        (lambda: AsymmetricLoss(gamma_neg=-1.0), r"head\.gamma_neg must be >= 0"),
        (lambda: AsymmetricLoss(clip=1.0), r"head\.clip must lie in \[0, 1\)"),
        (lambda: AsymmetricLoss(clip=-0.1), r"head\.clip must lie in \[0, 1\)"),
        (lambda: PolyLoss(epsilon=-1.5), r"head\.epsilon must be >= -1"),
    ],
)
def test_constructors_reject_parameters_outside_their_range(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "overrides,key,rule",
    [
        ("head=focal head.gamma=-1", "head.gamma", "must be >= 0"),
        ("head=sigmoid_focal head.gamma=-2", "head.gamma", "must be >= 0"),
        ("head=sigmoid_focal head.alpha=2", "head.alpha", "must be null or lie in [0, 1]"),
        ("head=asl head.gamma_neg=-1", "head.gamma_neg", "must be >= 0"),
        ("head=asl head.gamma_pos=-1", "head.gamma_pos", "must be >= 0"),
        ("head=asl head.clip=1", "head.clip", "must lie in [0, 1)"),
        ("head=asl head.clip=-0.5", "head.clip", "must lie in [0, 1)"),
        ("head=poly head.epsilon=-2", "head.epsilon", "must be >= -1"),
        ("head=focal head.gamma_schedule=flsd35", "head.gamma_schedule", "one of ['flsd53']"),
    ],
)
def test_bad_head_parameter_fails_in_one_line_before_anything_is_built(
    tiny_cfg, tmp_path, monkeypatch, overrides, key, rule
):
    monkeypatch.setattr("headlab.run.instantiate.instantiate", lambda *a, **k: pytest.fail("built"))
    with pytest.raises(ConfigValueError) as err:
        train(tiny_cfg(*overrides.split()))
    message = str(err.value)
    assert key in message and rule in message and "\n" not in message
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == "failed" and key in written["error"]


def test_flsd53_schedule_composes_from_the_command_line(tiny_cfg):
    from hydra.utils import instantiate

    head = instantiate(tiny_cfg("head=focal", "head.gamma_schedule=flsd53").head)
    assert isinstance(head, FocalLoss) and head.gamma_schedule == "flsd53"
