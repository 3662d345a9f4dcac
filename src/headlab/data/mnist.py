"""MNIST through torchvision's own files and download, held as one uint8 tensor."""

from __future__ import annotations

from pathlib import Path

import torch

from headlab.data.batches import InMemoryDataModule, InMemoryImages, Normalize
from headlab.data.integrity import check_mnist_files
from headlab.errors import ConfigValueError, RunError

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class MNISTFilesMissing(RunError, FileNotFoundError):
    """MNIST is not on disk and could not be downloaded."""


def mnist_raw_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "MNIST" / "raw"


def missing_files_message(data_dir: str | Path, reason: str) -> str:
    raw = mnist_raw_dir(data_dir).resolve()
    missing = [name for name in MNIST_FILES if not (raw / name).is_file()]
    return (
        f"MNIST is not available ({reason}). "
        f"Missing in {raw}: {', '.join(missing) or 'none'}. "
        f"Put the four uncompressed IDX files there ({', '.join(MNIST_FILES)}), "
        f"e.g. copy a folder 'MNIST/raw' from a machine that has them, "
        f"or run once with network access so torchvision can download them, "
        f"or point data.data_dir at the folder that contains MNIST/."
    )


def load_mnist(
    data_dir: str | Path, train: bool, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 28, 28) uint8 and labels (N,) int64, read by torchvision.

    The files are checked whole (see ``integrity``) before torchvision parses them.
    """
    from torchvision.datasets import MNIST  # heavy import, only needed when data is read

    prefix = "train" if train else "t10k"
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    raw = mnist_raw_dir(data_dir)
    if download and not all((raw / name).is_file() for name in names):
        try:  # torchvision downloads (and checks the archives' MD5) only what is missing
            MNIST(str(data_dir), train=train, download=True)
        except Exception as err:  # torchvision raises RuntimeError/URLError/OSError variously
            reason = f"{type(err).__name__}: {err}"
            raise MNISTFilesMissing(missing_files_message(data_dir, reason)) from err
    if not all((raw / name).is_file() for name in names):
        reason = "download=false" if not download else "the download left no files"
        raise MNISTFilesMissing(missing_files_message(data_dir, reason))
    check_mnist_files(raw, names)
    dataset = MNIST(str(data_dir), train=train, download=False)
    return dataset.data.unsqueeze(1), dataset.targets


def split_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A train/val split that depends on ``seed`` only, never on the global RNG."""
    if not 0 < val_size < n:
        raise ConfigValueError(
            f"data.val_size must lie in 1..{n - 1} for {n} training images, got {val_size}"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]


class MNISTDataModule(InMemoryDataModule):
    """Plain MNIST: class-index targets, 55k/5k train/val split by default, 10k test."""

    name = "mnist"
    target_kind = "index"
    num_classes = 10

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        split_seed: int = 0,
        download: bool = True,
        pin_memory: bool = False,
    ) -> None:
        normalize = Normalize(MNIST_MEAN, MNIST_STD)
        super().__init__(batch_size, eval_batch_size, val_size, split_seed, pin_memory, normalize)
        self.data_dir = data_dir
        self.download = download

    def prepare_data(self) -> None:
        # Lightning runs this on one process per node: the only place that may download.
        for train in (True, False):
            load_mnist(self.data_dir, train=train, download=self.download)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            images, labels = load_mnist(self.data_dir, train=True, download=False)
            train_idx, val_idx = split_indices(len(images), self.val_size, self.split_seed)
            self.train_set = InMemoryImages(images[train_idx], labels[train_idx])
            self.val_set = InMemoryImages(images[val_idx], labels[val_idx])
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = InMemoryImages(*load_mnist(self.data_dir, train=False, download=False))
