"""Writes small MNIST-format IDX files so tests use torchvision's real loading path offline."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: big-endian magic (ubyte type, ndim), one int32 per dimension, then raw bytes."""
    magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def learnable_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class c lights a 6x6 block at its own place on a noisy canvas: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for c in range(10):
        row, col = 2 + 5 * (c // 5) * 2, 2 + 5 * (c % 5)
        images[labels == c, row : row + 6, col : col + 6] = 255
    return images, labels.astype(np.uint8)


def write_tiny_mnist(root: Path, n_train: int = 600, n_test: int = 200) -> Path:
    """``root/MNIST/raw/`` with the four uncompressed files torchvision looks for."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = learnable_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root
