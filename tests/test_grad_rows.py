"""grad_rows: the (dL/dz_k)·h shortcut equals per-sample autograd on the project's model."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from headlab.heads import HEADS
from headlab.models.grad_rows import grad_rows
from tests.conftest import compose_train


def autograd_split(model, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean over samples of the true row's and the other rows' gradient norms, one backward
    per sample through the whole model (eval mode, like the probe)."""
    model.eval()
    true, other = [], []
    for image, label in zip(images, labels, strict=True):
        model.zero_grad()
        loss = model.head.loss(model(image[None]), label[None], "index")
        loss.backward()
        norms = model.classifier.weight.grad.norm(dim=1)
        true.append(norms[label].item())
        other.append(norms.sum().item() - norms[label].item())
    return sum(true) / len(true), sum(other) / len(other)


@pytest.mark.parametrize("head", sorted(n for n, cls in HEADS.items() if "index" in cls.accepts))
def test_split_equals_per_sample_autograd(head: str):
    torch.manual_seed(0)
    model = instantiate(compose_train([f"head={head}"]).model)
    images, labels = torch.randn(12, 1, 28, 28), torch.randint(0, 10, (12,))
    model.train()
    split = grad_rows(model, images, labels)
    assert model.training  # the probe leaves the training mode as it was
    true, other = autograd_split(model, images, labels)
    assert split["grad_rows/true"] == pytest.approx(true, rel=1e-4)
    assert split["grad_rows/other"] == pytest.approx(other, rel=1e-4, abs=1e-9)
    assert split["grad_rows/other_share"] == pytest.approx(other / (true + other), rel=1e-4)
    if head == "sigmoid_nll":
        assert split["grad_rows/other"] == 0 and split["grad_rows/other_share"] == 0
    if head == "softmax":  # the wrong classes' mass equals the true row's push
        assert split["grad_rows/other_share"] == pytest.approx(0.5, rel=1e-5)
    if head == "sigmoid":
        assert 0 < split["grad_rows/other_share"] < 1


def test_probe_does_not_touch_batchnorm_statistics():
    torch.manual_seed(0)
    model = instantiate(compose_train([]).model).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grad_rows(model, torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
