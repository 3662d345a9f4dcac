"""MNIST loading through torchvision's real reader, the split, and batch normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from headlab.data import MNISTDataModule, MNISTFilesMissing
from headlab.data.mnist import MNIST_FILES, MNIST_MEAN, MNIST_STD, split_indices
from tests.idx import learnable_digits


def test_loads_idx_files_as_uint8_batches(tiny_mnist: Path):
    dm = MNISTDataModule(str(tiny_mnist), batch_size=32, val_size=100, download=False)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (500, 100, 200)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (32,) and labels.dtype == torch.int64
    # the test split holds exactly the file's images in order
    expected, expected_labels = learnable_digits(200, seed=1)
    np.testing.assert_array_equal(dm.test_set.images[:, 0].numpy(), expected)
    np.testing.assert_array_equal(dm.test_set.targets.numpy(), expected_labels)


def test_split_is_disjoint_complete_and_fixed_by_the_seed():
    train, val = split_indices(600, 100, seed=3)
    assert len(val) == 100 and len(train) == 500
    assert sorted(torch.cat([train, val]).tolist()) == list(range(600))
    assert torch.equal(split_indices(600, 100, seed=3)[1], val)
    assert not torch.equal(split_indices(600, 100, seed=4)[1], val)


@pytest.mark.parametrize("val_size", [0, 600, 1000])
def test_impossible_val_size_is_rejected(val_size: int):
    with pytest.raises(ValueError, match=r"data\.val_size"):
        split_indices(600, val_size, seed=0)


def test_batch_normalisation_equals_per_pixel_formula(tiny_mnist: Path):
    dm = MNISTDataModule(str(tiny_mnist))
    raw = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    images, _ = dm.on_after_batch_transfer((raw, torch.zeros(4)), 0)
    expected = (raw.float() / 255.0 - MNIST_MEAN) / MNIST_STD
    torch.testing.assert_close(images, expected)


def test_missing_files_offline_name_each_file_and_the_folder(tmp_path: Path):
    dm = MNISTDataModule(str(tmp_path), download=False)
    with pytest.raises(MNISTFilesMissing) as err:
        dm.prepare_data()
    message = str(err.value)
    assert str((tmp_path / "MNIST" / "raw").resolve()) in message
    assert all(name in message for name in MNIST_FILES)
