"""Data modules whose samples are new images recombined from MNIST digits.

Train/val samples are built only from the digits of the same train/val split plain MNIST
uses, test samples only from MNIST-test digits, so no test digit is ever seen in training.
Everything is drawn from ``numpy`` generators seeded by ``(seed, split)``: the same seed
gives the same data whatever else the run does with the global RNG.
"""

from __future__ import annotations

import numpy as np
import torch

from headlab.data.batches import InMemoryImages
from headlab.data.mnist import MNISTDataModule, load_mnist, split_indices

SPLITS = ("train", "val", "test")


def draw_of_class(labels: np.ndarray, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For every entry of ``classes``, the index of a random digit with that label."""
    order = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels, minlength=10)
    if np.any(sizes[np.unique(classes)] == 0):
        missing = sorted(set(np.unique(classes)) - set(np.unique(labels)))
        raise ValueError(f"no digits of class {missing} to draw from")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    offsets = (rng.random(classes.shape) * sizes[classes]).astype(np.int64)
    return order[starts[classes] + offsets]


def check_sizes(**sizes: int) -> dict[str, int]:
    for key, n in sizes.items():
        if n <= 0:
            raise ValueError(f"data.{key} must be > 0, got {n}")
    return sizes


class GeneratedMNIST(MNISTDataModule):
    """MNIST split as usual, then each split's digits turned into ``*_samples`` new samples.

    Subclasses implement :meth:`generate`; :meth:`finish_targets` lets one change the
    targets of a split (e.g. hard labels for training only).
    """

    def __init__(
        self,
        train_samples: int = 60000,
        val_samples: int = 5000,
        test_samples: int = 10000,
        **mnist_args,
    ) -> None:
        super().__init__(**mnist_args)
        self.samples = check_sizes(
            train_samples=train_samples, val_samples=val_samples, test_samples=test_samples
        )

    def generate(
        self, images: torch.Tensor, labels: torch.Tensor, n: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` (image uint8, target) samples built from the given digits."""
        raise NotImplementedError

    def finish_targets(self, split: str, targets: torch.Tensor) -> torch.Tensor:
        return targets

    def split_set(self, split: str, images: torch.Tensor, labels: torch.Tensor) -> InMemoryImages:
        rng = np.random.default_rng([self.split_seed, SPLITS.index(split)])
        images, targets = self.generate(images, labels, self.samples[f"{split}_samples"], rng)
        return InMemoryImages(images, self.finish_targets(split, targets))

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            images, labels = load_mnist(self.data_dir, train=True, download=False)
            train_idx, val_idx = split_indices(len(images), self.val_size, self.split_seed)
            self.train_set = self.split_set("train", images[train_idx], labels[train_idx])
            self.val_set = self.split_set("val", images[val_idx], labels[val_idx])
        if stage in (None, "test", "predict") and self.test_set is None:
            images, labels = load_mnist(self.data_dir, train=False, download=False)
            self.test_set = self.split_set("test", images, labels)
