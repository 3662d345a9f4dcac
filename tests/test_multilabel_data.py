"""Multi-label canvases: contents match targets, digits stay in their split, seeded, checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from headlab.data import MultiLabelMNISTDataModule
from headlab.data.mnist import load_mnist, split_indices


def make(tiny_mnist: Path, **kwargs) -> MultiLabelMNISTDataModule:
    args = dict(val_size=100, train_samples=60, val_samples=30, test_samples=30, download=False)
    return MultiLabelMNISTDataModule(data_dir=str(tiny_mnist), **{**args, **kwargs})


def label_of_image(images: torch.Tensor, labels: torch.Tensor) -> dict[bytes, int]:
    return {
        img.numpy().tobytes(): int(label) for img, label in zip(images[:, 0], labels, strict=True)
    }


def check_canvases(dataset, pool: dict[bytes, int], max_digits: int) -> None:
    """Every non-black 28-px cell is a digit of the pool whose class is on, and vice versa."""
    n, _, side, _ = dataset.images.shape
    grid = side // 28
    cells = dataset.images[:, 0].reshape(n, grid, 28, grid, 28).permute(0, 1, 3, 2, 4)
    for canvas, target in zip(cells.reshape(n, grid * grid, 28, 28), dataset.targets, strict=True):
        classes = sorted(pool[c.numpy().tobytes()] for c in canvas if c.any())
        assert classes == torch.nonzero(target).flatten().tolist()  # distinct, as targeted
        assert 1 <= len(classes) <= max_digits


def test_canvases_hold_digits_of_their_own_split_matching_the_targets(tiny_mnist: Path):
    dm = make(tiny_mnist)
    dm.setup()
    images, labels = load_mnist(tiny_mnist, train=True, download=False)
    train_idx, val_idx = split_indices(len(images), 100, dm.split_seed)
    test_images, test_labels = load_mnist(tiny_mnist, train=False, download=False)
    check_canvases(dm.train_set, label_of_image(images[train_idx], labels[train_idx]), 3)
    check_canvases(dm.val_set, label_of_image(images[val_idx], labels[val_idx]), 3)
    check_canvases(dm.test_set, label_of_image(test_images, test_labels), 3)
    assert dm.train_set.images.shape == (60, 1, 56, 56)
    assert dm.train_set.images.dtype == torch.uint8
    assert (len(dm.val_set), len(dm.test_set)) == (30, 30)
    assert set(dm.train_set.targets.sum(dim=1).tolist()) == {1, 2, 3}


def test_bigger_canvas_holds_up_to_ten_digits(tiny_mnist: Path):
    dm = make(tiny_mnist, image_size=112, max_digits=10)
    dm.setup("test")
    assert dm.test_set.images.shape == (30, 1, 112, 112)
    test_images, test_labels = load_mnist(tiny_mnist, train=False, download=False)
    check_canvases(dm.test_set, label_of_image(test_images, test_labels), 10)


def test_same_seed_same_canvases_other_seed_other_canvases(tiny_mnist: Path):
    first, again, other = make(tiny_mnist), make(tiny_mnist), make(tiny_mnist, split_seed=1)
    for dm in (first, again, other):
        torch.manual_seed(len(str(dm)))  # the global RNG must not matter
        dm.setup("fit")
    assert torch.equal(first.train_set.images, again.train_set.images)
    assert torch.equal(first.train_set.targets, again.train_set.targets)
    assert not torch.equal(first.train_set.images, other.train_set.images)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"max_digits": 0}, r"data\.max_digits must lie in 1\.\.4"),
        ({"max_digits": 5}, r"data\.max_digits must lie in 1\.\.4"),
        ({"max_digits": 11, "image_size": 112}, r"data\.max_digits must lie in 1\.\.10"),
        ({"image_size": 60}, r"data\.image_size must be a positive multiple of 28"),
        ({"train_samples": 0}, r"data\.train_samples must be > 0"),
    ],
)
def test_impossible_options_are_rejected_by_name(tiny_mnist: Path, kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        make(tiny_mnist, **kwargs)


def test_draws_cover_the_classes_and_cells_evenly():
    from headlab.data.multilabel import plan_canvases

    labels = np.arange(1000) % 10
    plan = plan_canvases(labels, 20000, 3, 2, np.random.default_rng(0))
    used = plan.used
    class_share = np.bincount(plan.classes[used], minlength=10) / used.sum()
    cell_share = np.bincount(plan.cells[used], minlength=4) / used.sum()
    np.testing.assert_allclose(class_share, 0.1, atol=0.01)
    np.testing.assert_allclose(cell_share, 0.25, atol=0.01)
    np.testing.assert_allclose(np.bincount(plan.counts)[1:] / 20000, 1 / 3, atol=0.01)
    assert np.all(labels[plan.digits] == plan.classes)
