"""FashionMNIST's test images read from IDX files on disk (Debian's package
dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist): a near-OOD set
that needs no download. Absent files drop the set with one log line instead of failing,
because the default config asks for it on every machine.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

#: the test images' file name; ``.gz`` (as Debian ships it) or uncompressed
TEST_IMAGES = "t10k-images-idx3-ubyte"
#: directories already reported missing in this process (one line, not one per check)
_REPORTED: set[str] = set()


def images_file(folder: str | Path) -> Path | None:
    """The test-images file in ``folder`` (plain preferred over .gz), or None."""
    for name in (TEST_IMAGES, TEST_IMAGES + ".gz"):
        path = Path(folder) / name
        if path.is_file():
            return path
    return None


def fashion_mnist_present(folder: str | Path) -> bool:
    """True when the test images are in ``folder``; else logs one line (once per folder)."""
    if images_file(folder) is not None:
        return True
    if str(folder) not in _REPORTED:
        _REPORTED.add(str(folder))
        log.warning(
            "FashionMNIST is not in %s (apt-get install dataset-fashion-mnist, or set "
            "shift.fashion_mnist_dir): the fashion_mnist OOD set is skipped",
            Path(folder).resolve(),
        )
    return False


def read_idx_images(path: Path) -> np.ndarray:
    """An IDX file of uint8 images: big-endian magic 0x00000803, three int32 sizes, bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x00000803:
        from headlab.errors import RunError

        raise RunError(f"{path} is not an IDX file of uint8 images (magic {magic:#010x})")
    n, rows, cols = (int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, dtype=np.uint8, count=n * rows * cols, offset=16).reshape(
        n, rows, cols
    )


def fashion_mnist_test_images(folder: str | Path) -> torch.Tensor:
    """(10000, 1, 28, 28) uint8: FashionMNIST's test images from ``folder``."""
    path = images_file(folder)
    if path is None:
        from headlab.shift.sets import OODDataMissing

        raise OODDataMissing(
            f"shift.ood asks for fashion_mnist but {Path(folder).resolve()} holds no "
            f"{TEST_IMAGES}[.gz]; apt-get install dataset-fashion-mnist or set "
            "shift.fashion_mnist_dir"
        )
    return torch.from_numpy(read_idx_images(path).copy())[:, None]
