"""What each head's loss does to the last layer's per-class weight rows, on the real model."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import compose_train


def last_layer_gradients(head: str, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class row gradients of the classifier layer and the loss gradient of each logit."""
    torch.manual_seed(0)
    model = instantiate(compose_train([f"head={head}"]).model).eval()  # eval: no dropout noise
    images = torch.randn(len(labels), 1, 28, 28)
    logits = model(images)
    logits.retain_grad()
    model.head.loss(logits, labels, "index").backward()
    return model.classifier.weight.grad, logits.grad


def test_naive_sigmoid_moves_only_the_true_class_row_for_one_sample():
    rows, logit_grad = last_layer_gradients("sigmoid_nll", torch.tensor([3]))
    row_norms = rows.norm(dim=1)
    assert row_norms[3] > 0
    assert torch.all(row_norms[torch.arange(10) != 3] == 0)
    assert logit_grad[0, 3] < 0


def test_softmax_moves_every_row_true_row_against_the_others_for_one_sample():
    rows, logit_grad = last_layer_gradients("softmax", torch.tensor([3]))
    assert torch.all(rows.norm(dim=1) > 0)
    # row k gets logit_grad[k] * features: the true class is pushed up, all others down
    assert logit_grad[0, 3] < 0
    assert torch.all(logit_grad[0, torch.arange(10) != 3] > 0)
    true_direction = rows[3] / rows[3].norm()
    for k in range(10):
        if k != 3:
            assert torch.dot(rows[k], true_direction) < 0


def test_batch_pattern_naive_sigmoid_leaves_absent_classes_untouched():
    labels = torch.tensor([0, 0, 2, 5, 5, 5])
    rows, logit_grad = last_layer_gradients("sigmoid_nll", labels)
    present = torch.zeros(10, dtype=torch.bool)
    present[labels] = True
    assert torch.all(rows[present].norm(dim=1) > 0)
    assert torch.all(rows[~present] == 0)
    is_true = torch.nn.functional.one_hot(labels, 10).bool()
    assert torch.all(logit_grad[~is_true] == 0) and torch.all(logit_grad[is_true] < 0)


@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_batch_pattern_proper_heads_move_every_row(head: str):
    labels = torch.tensor([0, 0, 2, 5, 5, 5])
    rows, logit_grad = last_layer_gradients(head, labels)
    assert torch.all(rows.norm(dim=1) > 0)
    is_true = torch.nn.functional.one_hot(labels, 10).bool()
    assert torch.all(logit_grad[is_true] < 0) and torch.all(logit_grad[~is_true] > 0)
