"""A user's own image files as in-memory uint8 tensors, shared by ``data=image_folder`` and
``data=image_csv``: which files count as images (by extension, as torchvision's
``ImageFolder`` decides), reading them to one size and channel count, and the data module
base that serves them in batches like the MNIST modules do.

Images are read once, at ``setup``, and held as (N, C, S, S) uint8: N*C*S*S bytes (60k RGB
images at 32 px: 184 MB). That keeps every epoch as fast as MNIST's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from headlab.data.batches import InMemoryDataModule, Normalize
from headlab.errors import ConfigValueError, RunError

log = logging.getLogger(__name__)


class ImageDataError(RunError, ValueError):
    """The user's image data cannot be used as laid out: the message names the file to fix."""


def image_extensions() -> tuple[str, ...]:
    """torchvision's list (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.tif``, ``.webp``...):
    the one list of what counts as an image, for training data and for predict alike."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return tuple(IMG_EXTENSIONS)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in image_extensions() and not path.name.startswith(".")


def image_files(folder: Path) -> tuple[list[Path], int]:
    """Image files under ``folder`` (subfolders included, sorted) and how many other files
    were skipped (a README, ``.DS_Store``)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    images = [p for p in files if is_image(p)]
    return images, len(files) - len(images)


def to_8_bits(image):
    """``image`` with 8-bit values. Pillow's own conversion of 16-bit grey (PNG, TIFF) clips
    every value above 255, which turns most of such an image white; here values are scaled
    by the bit depth instead (``v * 255 / 65535``; 32-bit integers by ``2**32 - 1``)."""
    from PIL import Image

    if not (image.mode == "I" or image.mode.startswith("I;16")):
        return image
    values = np.asarray(image).astype(np.float64)
    top = 2.0**16 - 1 if values.max(initial=0) <= 2**16 - 1 else 2.0**32 - 1
    return Image.fromarray(np.rint(values.clip(0, None) * 255 / top).astype(np.uint8))  # "L"


def read_image(path: Path, size: int, channels: int, resize: bool = True) -> np.ndarray:
    """(channels, size, size) uint8: grey (1) or RGB (3) whatever the file holds, resized
    bilinearly to ``size`` (or, with ``resize=False``, an error naming the size it must have)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            converted = to_8_bits(image).convert("L" if channels == 1 else "RGB")
            if converted.size != (size, size):
                if not resize:
                    width, height = converted.size
                    raise ImageDataError(
                        f"{path} is {width}x{height} px, the model takes {size}x{size}: "
                        f"resize it to {size}x{size}."
                    )
                converted = converted.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ImageDataError(
            f"{path} has an image extension but cannot be read as an image "
            f"({type(err).__name__}); remove or replace it."
        ) from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def read_images(paths: Sequence[Path], size: int, channels: int) -> torch.Tensor:
    """(N, channels, size, size) uint8 of all ``paths``."""
    if not paths:
        return torch.zeros(0, channels, size, size, dtype=torch.uint8)
    return torch.from_numpy(np.stack([read_image(p, size, channels) for p in paths]))


def split_sizes(n: int, val_size: float, what: str) -> int:
    """``val_size`` as a count (>= 1) or a fraction of ``n`` (< 1): the number held out."""
    count = round(val_size * n) if 0 < val_size < 1 else int(val_size)
    if not 0 < count < n:
        raise ConfigValueError(
            f"data.val_size={val_size} holds out {count} of the {n} {what}: "
            "give a fraction in (0, 1) or a count between 1 and n - 1"
        )
    return count


def seeded_split(n: int, held_out: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[held_out:], order[:held_out]


class ImageDataModule(InMemoryDataModule):
    """What both image data modules share: sizes, channels, batches, normalisation.

    A subclass sets ``train_set``/``val_set``/``test_set`` in ``setup`` and ``class_names``.
    """

    name = "images"
    target_kind = "index"

    def __init__(
        self,
        root: str,
        image_size: int = 28,
        channels: int = 1,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: float = 0.1,
        split_seed: int = 0,
        mean: float = 0.5,
        std: float = 0.25,
        pin_memory: bool = False,
        resize: bool = True,
        num_classes: int | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise ConfigValueError(f"data.channels must be 1 (grey) or 3 (RGB), got {channels}")
        if image_size < 1 or std <= 0:
            raise ConfigValueError(
                f"data.image_size and data.std must be > 0, got {image_size} and {std}"
            )
        # fixed constants, not the data's statistics: predict normalises without reading it
        normalize = Normalize(mean, std)
        super().__init__(batch_size, eval_batch_size, val_size, split_seed, pin_memory, normalize)
        self.root = Path(str(root)).expanduser()
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.resize = resize
        self.declared_classes = num_classes

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    def warn_single_images(self, targets: torch.Tensor) -> None:
        """One warning line naming the classes with a single image in all splits: such a
        class is either trained on or evaluated, never both (often a misplaced file or, in
        a CSV, a typo'd label)."""
        if targets.ndim == 1:
            counts = torch.bincount(targets, minlength=self.num_classes)
        else:
            counts = targets.sum(dim=0)
        single = [name for name, n in zip(self.class_names, counts.tolist(), strict=True) if n == 1]
        if single:
            log.warning(
                "%s: class(es) %s have a single image, which cannot be both trained on and "
                "evaluated: add images or remove the class",
                self.root, single,
            )  # fmt: skip

    def check_classes(self) -> None:
        """The model config read ``data.num_classes``: it must be what the files hold."""
        if self.declared_classes not in (None, self.num_classes):
            raise ConfigValueError(
                f"data.num_classes={self.declared_classes} but {self.root} holds "
                f"{self.num_classes} classes: leave data.num_classes at its default"
            )
