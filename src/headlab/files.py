"""Files a run promises to leave behind, written so a crash never leaves half of one."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import torch


def atomic_write(path: str | Path, write: Callable[[IO], Any], mode: str = "w") -> None:
    """Write to a temporary file beside ``path`` and rename it over: readers see old or new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text))


def plain_number(value: Any) -> Any:
    """Tensors and numpy scalars as JSON numbers; non-finite floats as strings JSON accepts."""
    if isinstance(value, torch.Tensor):
        value = value.item()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_metrics(path: str | Path, metrics: Mapping[str, Any]) -> None:
    flat = {key: plain_number(value) for key, value in sorted(metrics.items())}
    atomic_write_text(path, json.dumps(flat, indent=2) + "\n")


def read_metrics(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
