"""Whole-batch access to images held in memory, instead of per-sample PIL transforms.

A DataLoader normally fetches samples one by one and collates them; for a dataset that is
already one uint8 tensor that costs more than the model. ``InMemoryImages.__getitems__``
lets the standard DataLoader (and Lightning's DistributedSampler injection) keep working
while each batch is a single tensor index.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from headlab.errors import ConfigValueError

Batch = tuple[torch.Tensor, torch.Tensor]


class InMemoryImages(Dataset):
    """Images (N, C, H, W, any dtype) and targets (N, ...) indexed a batch at a time."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Batch:
        return self.images[index], self.targets[index]

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        index = torch.as_tensor(indices)
        return self.images[index], self.targets[index]


def keep_batch(batch: Batch) -> Batch:
    """collate_fn for ``__getitems__`` datasets: the batch is already stacked."""
    return batch


def batch_loader(
    dataset: InMemoryImages, batch_size: int, shuffle: bool, pin_memory: bool = False
) -> DataLoader:
    # Workers would only copy tensors between processes: the data is already in memory.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=keep_batch,
        num_workers=0,
        pin_memory=pin_memory,
    )


class Normalize:
    """``(x / 255 - mean) / std`` on a whole batch as one multiply-add, in the batch's device."""

    def __init__(self, mean: float, std: float, max_value: float = 255.0) -> None:
        self.scale = 1.0 / (max_value * std)
        self.shift = mean / std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mul_(self.scale).sub_(self.shift)


class InMemoryDataModule(L.LightningDataModule):
    """What every headlab data module shares once its splits are tensors in memory: batches
    of ``batch_size`` (train, shuffled) or ``eval_batch_size``, normalised after the transfer
    to the device (``normalize``), so uint8 images cross to an accelerator at a quarter of
    the bytes. Subclasses set ``train_set``/``val_set``/``test_set`` in ``setup``."""

    batch_size: int
    eval_batch_size: int
    pin_memory: bool
    normalize: Normalize
    train_set: InMemoryImages | None
    val_set: InMemoryImages | None
    test_set: InMemoryImages | None
    #: what training batches' targets are (``index``, ``multi_hot``, ``distribution``)
    target_kind: str

    def __init__(
        self,
        batch_size: int,
        eval_batch_size: int,
        val_size: float,
        split_seed: int,
        pin_memory: bool,
        normalize: Normalize,
    ) -> None:
        """The batching settings every data module takes, checked once here."""
        super().__init__()
        if batch_size <= 0 or eval_batch_size <= 0:
            raise ConfigValueError(
                "data.batch_size and data.eval_batch_size must be > 0, "
                f"got {batch_size} and {eval_batch_size}"
            )
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.pin_memory = pin_memory
        self.normalize = normalize
        self.train_set = self.val_set = self.test_set = None

    @property
    def eval_target_kind(self) -> str:
        """Validation and test targets: the training kind unless a subclass says otherwise."""
        return self.target_kind

    def _loader(self, dataset: InMemoryImages | None, train: bool = False):
        size = self.batch_size if train else self.eval_batch_size
        return batch_loader(dataset, size, shuffle=train, pin_memory=self.pin_memory)

    def train_dataloader(self):
        return self._loader(self.train_set, train=True)

    def val_dataloader(self):
        return self._loader(self.val_set)

    def test_dataloader(self):
        return self._loader(self.test_set)

    def predict_dataloader(self):
        return self.test_dataloader()

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        images, targets = batch
        return self.normalize(images), targets
