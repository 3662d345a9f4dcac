"""``metrics.json``, the file every run leaves in its folder: its ``status`` says how the run
ended (``run.outcome``), the rest are its numbers. Sweep summaries, the study and the
trackers read it through here, never by its name."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headlab.files import atomic_write_text, plain_number

METRICS_FILE = "metrics.json"


def metrics_path(folder: str | Path) -> Path:
    """Where the run in ``folder`` keeps its metrics."""
    return Path(folder) / METRICS_FILE


def write_metrics(folder: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write the run's metrics, keys sorted, tensors and numpy scalars as numbers, atomically:
    a reader sees the previous file or this one, never half of one."""
    flat = {key: plain_number(value) for key, value in sorted(metrics.items())}
    path = metrics_path(folder)
    atomic_write_text(path, json.dumps(flat, indent=2) + "\n")
    return path


def read_metrics(folder: str | Path) -> dict[str, Any]:
    """The run's metrics; ``FileNotFoundError`` / ``json.JSONDecodeError`` when it has none."""
    return json.loads(metrics_path(folder).read_text())
