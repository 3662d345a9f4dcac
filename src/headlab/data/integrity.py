"""Checks that an MNIST IDX file is whole before anything trains on it.

torchvision reads whatever bytes are there: a truncated download fails with a reshape
error deep inside it, and a corrupted full-size file trains silently on garbage. Here the
size must match the counts in the file's own header, the official full-size files must
match their published MD5, and labels must be digits.
"""

from __future__ import annotations

import hashlib
import math
import struct
from functools import cache
from pathlib import Path

from headlab.errors import RunError

# IDX header: magic (0x0000, dtype 0x08 = ubyte, ndim), then one big-endian int32 per dim
UBYTE = 0x08
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
OFFICIAL_SIZE = {
    "train-images-idx3-ubyte": 16 + 60000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60000,
    "t10k-images-idx3-ubyte": 16 + 10000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10000,
}


class MNISTFileCorrupt(RunError, ValueError):
    """An MNIST file is truncated, corrupted or not an IDX file at all."""


def _fail(path: Path, problem: str) -> MNISTFileCorrupt:
    return MNISTFileCorrupt(
        f"MNIST file {path} is damaged: {problem}.\n"
        f"Nothing was trained. Delete it and run again with network access (torchvision "
        f"downloads it afresh), or copy an intact '{path.name}' into {path.parent}."
    )


def idx_shape(path: Path) -> tuple[int, ...]:
    """The dimensions an IDX file's header promises, checked against the file's size."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != UBYTE:
            raise _fail(path, "it does not start with an IDX ubyte header")
        ndim = head[3]
        dims_bytes = handle.read(4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise _fail(path, f"its header is cut short ({size} bytes)")
    dims = struct.unpack(f">{ndim}i", dims_bytes)
    expected = 4 + 4 * ndim + math.prod(dims)
    if size != expected:
        raise _fail(
            path,
            f"its header promises {'x'.join(map(str, dims))} values ({expected} bytes) "
            f"but the file has {size} bytes" + (" (truncated)" if size < expected else ""),
        )
    return dims


@cache
def _md5(path: Path, size: int, mtime_ns: int) -> str:
    """Cached per (file, size, mtime): prepare_data and setup both check the same files."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_idx_file(path: str | Path) -> None:
    """Raise ``MNISTFileCorrupt`` naming ``path`` unless it is a whole IDX file."""
    path = Path(path)
    dims = idx_shape(path)
    stat = path.stat()
    official = OFFICIAL_MD5.get(path.name)
    if official and stat.st_size == OFFICIAL_SIZE[path.name]:
        found = _md5(path.resolve(), stat.st_size, stat.st_mtime_ns)
        if found != official:
            raise _fail(path, f"its MD5 is {found}, the official file's is {official}")
    if len(dims) == 1:  # a label file: every byte must be a digit
        labels = path.read_bytes()[8:]
        if labels and max(labels) > 9:
            raise _fail(path, f"it holds label {max(labels)}, but MNIST labels are 0..9")


def check_mnist_files(raw_dir: str | Path, names: tuple[str, ...]) -> None:
    for name in names:
        check_idx_file(Path(raw_dir) / name)
