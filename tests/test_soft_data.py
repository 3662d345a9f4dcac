"""Soft-label blends: pixels and targets follow lam*a + (1-lam)*b; hard targets train only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from headlab.data import SoftMNISTDataModule
from headlab.data.soft import blend_targets, paint_blends, plan_blends


def make(tiny_mnist: Path, **kwargs) -> SoftMNISTDataModule:
    args = dict(val_size=100, train_samples=60, val_samples=30, test_samples=30, download=False)
    return SoftMNISTDataModule(data_dir=str(tiny_mnist), **{**args, **kwargs})


def test_blend_pixels_and_targets_follow_the_formula():
    rng = np.random.default_rng(0)
    labels = np.arange(50) % 10
    images = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8)
    plan = plan_blends(labels, 200, rng)
    assert np.all(plan.first_class != plan.second_class)
    assert np.all(labels[plan.first] == plan.first_class)
    assert np.all(labels[plan.second] == plan.second_class)
    lam = plan.lam[:, None, None, None]
    a, b = images.numpy()[plan.first], images.numpy()[plan.second]
    expected = np.round(lam * a + (1 - lam) * b)
    np.testing.assert_allclose(paint_blends(images, plan).numpy(), expected, atol=1)
    targets = blend_targets(plan).numpy()
    expected_targets = lam[:, :, 0, 0] * np.eye(10)[plan.first_class]
    expected_targets += (1 - lam[:, :, 0, 0]) * np.eye(10)[plan.second_class]
    np.testing.assert_allclose(targets, expected_targets, rtol=1e-6)


def test_lam_follows_the_configured_beta_and_plain_digits_mix_in():
    plan = plan_blends(np.arange(100) % 10, 20000, np.random.default_rng(1), 2.0, 8.0, 0.25)
    plain = plan.lam == 1.0
    assert abs(plain.mean() - 0.25) < 0.01
    assert abs(plan.lam[~plain].mean() - 0.2) < 0.01  # Beta(2, 8) has mean 0.2


def test_hard_targets_are_the_argmax_for_training_only(tiny_mnist: Path):
    soft, hard = make(tiny_mnist), make(tiny_mnist, hard_targets=True)
    soft.setup()
    hard.setup()
    assert (soft.target_kind, hard.target_kind) == ("distribution", "index")
    assert hard.eval_target_kind == "distribution"
    assert torch.equal(hard.train_set.images, soft.train_set.images)
    assert hard.train_set.targets.dtype == torch.int64
    assert torch.equal(hard.train_set.targets, soft.train_set.targets.argmax(dim=1))
    assert torch.equal(hard.test_set.targets, soft.test_set.targets)
    torch.testing.assert_close(soft.val_set.targets.sum(dim=1), torch.ones(30))


def test_plain_fraction_one_gives_plain_digits_with_one_hot_targets(tiny_mnist: Path):
    dm = make(tiny_mnist, plain_fraction=1.0)
    dm.setup("test")
    assert set(dm.test_set.targets.flatten().tolist()) == {0.0, 1.0}
    from headlab.data.mnist import load_mnist

    images, labels = load_mnist(tiny_mnist, train=False, download=False)
    known = {img.numpy().tobytes(): int(lbl) for img, lbl in zip(images, labels, strict=True)}
    for image, target in zip(dm.test_set.images, dm.test_set.targets, strict=True):
        assert known[image.numpy().tobytes()] == int(target.argmax())
