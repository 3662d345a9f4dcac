"""``data=image_folder data.root=<dir>``: one subfolder per class, torchvision's ``ImageFolder``
layout, read into memory (``headlab.data.image_files``).

``<root>/<class>/*.png`` is the training set, validation split off it (``val_size``). With
``<root>/train/<class>/``, a ``<root>/val/`` folder is the validation set and a
``<root>/test/`` folder the test set when present; without a test folder the test metrics are
the validation set's (a warning says so). Files that are not images by their extension are
skipped and counted.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from headlab.data.batches import InMemoryImages
from headlab.data.image_files import (
    ImageDataError,
    ImageDataModule,
    image_files,
    read_images,
    seeded_split,
    split_sizes,
)

log = logging.getLogger(__name__)


def class_folders(folder: Path) -> list[str]:
    """Class names: the subfolders of ``folder``, sorted (as torchvision's ``find_classes``)."""
    if not folder.is_dir():
        raise ImageDataError(
            f"data.root: {folder} is not a folder; give a folder with one subfolder per class "
            "(docs/own_data.md)"
        )
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise ImageDataError(
            f"data.root: {folder} holds no class subfolders; put each class's images in "
            "<root>/<class name>/ (docs/own_data.md)"
        )
    return names


def training_folder(root: Path) -> Path:
    """``<root>/train`` when the root is split into train/val/test folders, else the root."""
    return root / "train" if (root / "train").is_dir() else root


def count_classes(root: str) -> int:
    """The number of class folders, for the model config (``${folder_classes:...}``); 0 when
    the folder is unusable, which the data module then reports in one line."""
    try:
        return len(class_folders(training_folder(Path(str(root)).expanduser())))
    except ImageDataError:
        return 0


def scan(folder: Path, classes: list[str]) -> tuple[list[Path], list[int], int]:
    """Image paths and class indices of ``folder/<class>/``; files skipped (not images)."""
    found = class_folders(folder)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ImageDataError(
            f"{folder} has class folders {unknown} that the training folder lacks; "
            f"the classes are {classes}"
        )
    paths: list[Path] = []
    labels: list[int] = []
    skipped = 0
    for name in found:
        files, other = image_files(folder / name)
        skipped += other
        if not files:
            raise ImageDataError(
                f"class folder {folder / name} holds no images (extensions: png, jpg, ...); "
                "add images or remove the folder"
            )
        paths += files
        labels += [classes.index(name)] * len(files)
    return paths, labels, skipped


class ImageFolderDataModule(ImageDataModule):
    """Single-label classification of a folder of class subfolders."""

    name = "image_folder"
    target_kind = "index"

    def __init__(self, root: str, **settings) -> None:
        super().__init__(root, **settings)
        self.class_names  # noqa: B018  a missing or empty root fails here, before the model

    @property
    def class_names(self) -> list[str]:
        return class_folders(training_folder(self.root))

    def _read(self, folder: Path, classes: list[str]) -> InMemoryImages:
        paths, labels, skipped = scan(folder, classes)
        if skipped:
            log.info("%s: skipped %d files that are not images by their extension", folder, skipped)
        images = read_images(paths, self.image_size, self.channels)
        return InMemoryImages(images, torch.tensor(labels, dtype=torch.int64))

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        classes = self.class_names
        self.check_classes()
        train_dir = training_folder(self.root)
        data = self._read(train_dir, classes)
        if train_dir != self.root and (self.root / "val").is_dir():
            self.train_set, self.val_set = data, self._read(self.root / "val", classes)
        else:
            held_out = split_sizes(len(data), self.val_size, f"images in {train_dir}")
            train_idx, val_idx = seeded_split(len(data), held_out, self.split_seed)
            self.train_set = InMemoryImages(data.images[train_idx], data.targets[train_idx])
            self.val_set = InMemoryImages(data.images[val_idx], data.targets[val_idx])
        if train_dir != self.root and (self.root / "test").is_dir():
            self.test_set = self._read(self.root / "test", classes)
        else:
            log.warning("No %s: test metrics are the validation set's", self.root / "test")
            self.test_set = self.val_set
        every = [self.train_set.targets, self.val_set.targets]
        if self.test_set is not self.val_set:
            every.append(self.test_set.targets)
        self.warn_single_images(torch.cat(every))
        log.info(
            "%s: %d classes, %d train / %d val / %d test images, %d channel(s) at %d px",
            self.root, len(classes), len(self.train_set), len(self.val_set),
            len(self.test_set), self.channels, self.image_size,
        )  # fmt: skip
