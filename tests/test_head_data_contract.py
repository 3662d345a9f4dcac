"""The head x data table: each valid cell's loss and a tiny training, each invalid cell's error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from headlab.data.generated import GeneratedMNIST
from headlab.heads import (
    AsymmetricLoss,
    FocalLoss,
    HeadDataMismatch,
    PolyLoss,
    SigmoidBCE,
    SigmoidFocal,
    SoftLabelCE,
    SoftmaxCE,
)
from headlab.models import MLP, Classifier
from headlab.run.train import build, train
from tests.conftest import compose_train
from tests.test_heads import LOGITS, log_softmax, loss_of, sigmoid

MULTI_HOT = np.array([[1, 0, 1, 0], [0, 0, 1, 0], [1, 1, 1, 1]], dtype=np.float32)
DISTRIBUTION = np.array([[0.25, 0.25, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])


def soft_ce(target: np.ndarray) -> float:
    return -(target * log_softmax(LOGITS)).sum(axis=1).mean()


def bce(target: np.ndarray) -> float:
    p = sigmoid(LOGITS)
    return -(target * np.log(p) + (1 - target) * np.log(1 - p)).mean()


NORMALISED = MULTI_HOT / MULTI_HOT.sum(axis=1, keepdims=True)
TABLE = [
    ("softmax", SoftmaxCE(), MULTI_HOT, "multi_hot", soft_ce(NORMALISED)),
    ("softmax", SoftmaxCE(), DISTRIBUTION, "distribution", soft_ce(DISTRIBUTION)),
    ("sigmoid", SigmoidBCE(), MULTI_HOT, "multi_hot", bce(MULTI_HOT)),
    ("sigmoid", SigmoidBCE(), DISTRIBUTION, "distribution", bce(DISTRIBUTION)),
    ("soft", SoftLabelCE(0.2), MULTI_HOT, "multi_hot", soft_ce(NORMALISED)),
    ("soft", SoftLabelCE(0.2), DISTRIBUTION, "distribution", soft_ce(DISTRIBUTION)),
    # the loss heads' full formulas are in test_loss_heads.py; here: their limits per cell
    ("focal", FocalLoss(0.0), DISTRIBUTION, "distribution", soft_ce(DISTRIBUTION)),
    ("poly", PolyLoss(0.0), DISTRIBUTION, "distribution", soft_ce(DISTRIBUTION)),
    ("sigmoid_focal", SigmoidFocal(0.0), MULTI_HOT, "multi_hot", bce(MULTI_HOT)),
    ("asl", AsymmetricLoss(0.0, 0.0, 0.0), MULTI_HOT, "multi_hot", bce(MULTI_HOT)),
]


@pytest.mark.parametrize(
    "name,head,target,kind,expected", TABLE, ids=[f"{r[0]}-{r[3]}" for r in TABLE]
)
def test_loss_of_each_cell_matches_the_table(name, head, target, kind, expected):
    assert loss_of(head, target, kind) == pytest.approx(expected, rel=1e-6)


TINY = ["data.train_samples=300", "data.val_samples=100", "data.test_samples=100", "logger=none"]
DATA = {
    "multilabel_mnist": ["data=multilabel_mnist"],
    "soft_mnist": ["data=soft_mnist"],
    "soft_mnist_hard": ["data=soft_mnist", "data.hard_targets=true"],
}
#: which heads fit which data: the README's head x data table
FITS = {
    "multilabel_mnist": ["asl", "sigmoid", "sigmoid_focal", "soft", "softmax"],
    "soft_mnist": ["focal", "poly", "sigmoid", "soft", "softmax"],
    "soft_mnist_hard": ["focal", "poly", "sigmoid", "soft", "softmax"],
}
VALID = [(head, data) for data, heads in FITS.items() for head in heads]


@pytest.mark.slow
@pytest.mark.parametrize("head,data", VALID, ids=[f"{h}-{d}" for h, d in VALID])
def test_each_valid_cell_trains_end_to_end(tiny_cfg, tmp_path: Path, head: str, data: str):
    metrics = train(tiny_cfg(f"head={head}", *DATA[data], *TINY))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == "completed"
    if data == "multilabel_mnist":
        keys = ("acc", "hamming_acc", "f1_micro", "f1_macro", "map", "ece")
        keys += ("f1_micro_tuned", "f1_macro_tuned")
        assert 0.0 <= written["val/best_threshold"] < 1.0, written
        assert 0.0 <= written["val/best_threshold_macro"] < 1.0, written
        assert all(0.0 <= written[f"test/{k}"] <= 1.0 for k in keys), written
        # Brier summed over the 10 labels (calibration.scoring), so at most 10
        assert 0.0 <= written["test/brier"] <= 10.0, written
        # ranking is threshold-free: every head ranks the lit blocks above the rest
        assert written["test/map"] > 0.9, written
    else:
        assert written["test/acc"] > 0.7, written
        assert math.isfinite(written["test/kl"]), written
        # sigmoid: per-class probabilities, renormalised only for KL; focal: its loss on a
        # distribution is not minimised at p = target (not a proper scoring rule)
        if head not in ("sigmoid", "focal"):
            # far below the KL of a uniform prediction (log 10 - H(target) > 1.6 here)
            assert written["test/kl"] < 1.0, written
    assert written == pytest.approx(metrics)


ALL_HEADS = (
    "asl",
    "focal",
    "poly",
    "sigmoid",
    "sigmoid_focal",
    "sigmoid_nll",
    "sigmoid_softmax",
    "soft",
    "softmax",
)
INVALID = [(head, data) for data in DATA for head in ALL_HEADS if head not in FITS[data]]


@pytest.mark.parametrize("head,data", INVALID, ids=[f"{h}-{d}" for h, d in INVALID])
def test_each_invalid_cell_fails_before_loading_naming_head_data_and_fitting_heads(
    tiny_cfg, monkeypatch, head: str, data: str
):
    for method in ("prepare_data", "setup"):
        monkeypatch.setattr(GeneratedMNIST, method, lambda *a: pytest.fail("data was loaded"))
    name = DATA[data][0].removeprefix("data=")
    with pytest.raises(HeadDataMismatch) as err:
        build(tiny_cfg(f"head={head}", *DATA[data]))
    message = str(err.value)
    assert f"head={head} cannot train on data={name}" in message
    assert f"Heads that fit data={name}: {', '.join(FITS[name])}." in message


def test_the_table_covers_every_head():
    from headlab.heads import HEADS

    assert sorted(HEADS) == list(ALL_HEADS)


@pytest.mark.slow
def test_soft_head_learns_a_fixed_target_distribution_for_a_constant_input():
    torch.manual_seed(0)
    backbone = MLP(in_channels=1, image_size=2, hidden=(8,), dropout=0.0, batch_norm=False)
    model = Classifier(backbone, SoftLabelCE(), num_classes=3, target_kind="distribution")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    images, target = torch.ones(16, 1, 2, 2), torch.tensor([[0.25, 0.25, 0.5]]).repeat(16, 1)
    for _ in range(300):
        optimizer.zero_grad()
        model.training_step((images, target), 0).backward()
        optimizer.step()
    with torch.no_grad():
        probs = model.head.probs(model(images[:1]))[0]
    torch.testing.assert_close(probs, target[0], atol=0.01, rtol=0)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.5])
def test_threshold_outside_the_open_unit_interval_is_rejected(threshold: float):
    with pytest.raises(ValueError, match=r"head\.threshold must lie in \(0, 1\)"):
        SigmoidBCE(threshold)


def test_head_threshold_reaches_the_multilabel_metrics(tiny_cfg):
    _, model, _ = build(tiny_cfg("data=multilabel_mnist", "head=sigmoid", "head.threshold=0.3"))
    model._build_metrics("multi_hot", "multi_hot")
    assert model.head.threshold == pytest.approx(0.3)
    assert model.val_metrics.classification["acc"].threshold == pytest.approx(0.3)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("size", [28, 56, 112])
def test_backbones_take_the_image_size_from_the_data(model: str, size: int):
    data = ["data=multilabel_mnist", f"data.image_size={size}"] if size != 28 else []
    model_ = instantiate(compose_train([f"model={model}", *data]).model)
    assert model_(torch.randn(2, 1, size, size)).shape == (2, 10)
