"""The built shift sets on disk, so that a run reads them back instead of building them.

Building the default sets costs seconds of CPU a run (MNIST-C's fog, canny edges and zigzag,
sklearn's digits and the letters most); reading them back costs hundredths. A set is a
deterministic function of its name, seed and source images, of the code that builds it and
of the libraries that code calls, so all of these make its key: editing a corruption or
upgrading numpy builds the sets anew.

Where: ``$HEADLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/headlab``, else ``~/.cache/headlab``;
the files go into its ``shift_sets/<code version>/`` folder, and only the newest
``KEEP_VERSIONS`` code versions are kept. ``HEADLAB_CACHE_DIR=off`` (or empty) turns the disk
cache off: each process builds its sets, as ``sets.built`` keeps them in memory.

A file is written whole or not at all (``headlab.files.atomic_write``), mode 0644 under the
usual umask. One that cannot be read back whole (truncated, or corrupt: the zip's CRC-32 of
each array is checked) is built again and replaced; one that cannot be written is logged
once and skipped.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from headlab.files import atomic_write

log = logging.getLogger(__name__)

ENV = "HEADLAB_CACHE_DIR"
#: values of ``HEADLAB_CACHE_DIR`` that turn the disk cache off
OFF = ("", "off")
FOLDER = "shift_sets"
#: code versions kept (a folder each): a few checkouts sharing a cache do not evict each other
KEEP_VERSIONS = 4
#: the modules (in this package) whose code builds the cached sets
BUILDERS = ("cache", "corruptions", "letters", "sets", "transforms")
#: the distributions whose behaviour the sets depend on (random streams, interpolation,
#: scipy's filters, sklearn's digits, matplotlib's fonts)
LIBRARIES = ("numpy", "scipy", "torch", "scikit-learn", "matplotlib")

Built = torch.Tensor | tuple[torch.Tensor, ...]
_UNWRITABLE: set[Path] = set()


def cache_dir() -> Path | None:
    """The cache's root folder, or None when ``HEADLAB_CACHE_DIR`` turns it off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in OFF else Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: absolute only
    return base / "headlab"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the builders' source and the libraries' versions: part of every key."""
    digest = hashlib.sha256()
    folder = Path(__file__).parent
    for module in BUILDERS:
        digest.update((folder / f"{module}.py").read_bytes())
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=absent".encode())
    return digest.hexdigest()


def path_for(name: str, key: tuple) -> Path | None:
    """The file of the set ``name`` with ``key`` (seed, source, ...), None when off."""
    root = cache_dir()
    if root is None:
        return None
    digest = hashlib.sha256(repr((name, key)).encode()).hexdigest()[:32]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    return root / FOLDER / code_version()[:16] / f"{readable}-{digest}.npz"


def load_or_build(name: str, key: tuple, build: Callable[[], Built]) -> Built:
    """The set from its file when there is a whole one, else ``build()``, written there."""
    path = path_for(name, key)
    if path is None:
        return build()
    stored = read(path)
    if stored is not None:
        return stored
    value = build()
    try:
        if not path.parent.exists():  # a new code version: the oldest ones go
            prune(path.parent.parent, keep=KEEP_VERSIONS - 1)
        write(path, value)
    except OSError as err:
        if path.parent not in _UNWRITABLE:  # once per folder, not once per set
            _UNWRITABLE.add(path.parent)
            log.warning("shift: cannot write the set cache in %s (%s)", path.parent, err)
    return value


def prune(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` newest code versions' folders (by modification time) in
    ``folder``: each edit of a builder makes a new one, ~57 MB for the default sets."""
    try:
        versions = [(p.stat().st_mtime, p) for p in folder.iterdir() if p.is_dir()]
    except OSError:  # no folder yet, or another process pruning
        return
    for _, old in sorted(versions, reverse=True)[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def read(path: Path) -> Built | None:
    """The tensor (or tuple of tensors) in ``path``; None when absent or not whole."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        log.info("shift: set cache file %s unreadable (%s); building it again", path.name, err)
        return None
    if set(arrays) == {"tensor"}:
        return torch.from_numpy(arrays["tensor"])
    if arrays and set(arrays) == {str(i) for i in range(len(arrays))}:
        return tuple(torch.from_numpy(arrays[str(i)]) for i in range(len(arrays)))
    log.info("shift: set cache file %s holds %s; building it again", path.name, sorted(arrays))
    return None


def write(path: Path, value: Built) -> None:
    """``value`` into ``path`` atomically: the whole file or none."""
    if isinstance(value, torch.Tensor):
        arrays = {"tensor": value.numpy()}
    else:
        arrays = {str(i): t.numpy() for i, t in enumerate(value)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # uncompressed: reading back costs a copy, not a decompression
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()), mode="wb")
