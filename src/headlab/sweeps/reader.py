"""Reading a sweep folder, the one place that knows its layout: job folders in job order,
each job's overrides (``.hydra/overrides.yaml``) and its ``metrics.json`` with the status.

``summary.csv``, the failed-jobs check and the head study all read sweeps through here. Kept
free of torch imports: Hydra instantiates the sweep callbacks at every start, ``--help`` too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from headlab.layout import job_number, metrics_path, read_metrics

log = logging.getLogger(__name__)

ENDED_WELL = ("completed", "pruned")  # statuses that do not fail a sweep

MISSING_STATUS = "missing"  # no metrics.json: the job crashed, was killed or is still running


def _job_sort_key(path: Path) -> tuple[int, int, str]:
    """Job order: ``002_head=...`` (or ``2_head=...``) before ``010_head=...``; other names
    after, by name."""
    num = job_number(path.name)
    return (0, num, path.name) if num is not None else (1, 0, path.name)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The sweep's job folders (those Hydra gave a ``.hydra/`` or that hold metrics), in order."""
    found = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and ((p / ".hydra").is_dir() or metrics_path(p).is_file())
    ]
    return sorted(found, key=_job_sort_key)


def job_overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return [str(o) for o in OmegaConf.load(path)] if path.is_file() else []


def job_metrics(job_dir: Path) -> dict[str, Any]:
    """The job's metrics.json, or only a status when it is absent or unreadable."""
    path = metrics_path(job_dir)
    if not path.is_file():
        return {"status": MISSING_STATUS}
    try:
        metrics = read_metrics(job_dir)
    except (OSError, json.JSONDecodeError) as err:
        log.warning("Unreadable %s: %s", path, err)
        return {"status": MISSING_STATUS}
    metrics.setdefault("status", "unknown")
    return metrics


def unfinished_jobs(sweep_dir: str | Path) -> dict[str, str]:
    """Job folder -> status or error, for every job of a sweep that did not complete."""
    unfinished = {}
    for job in job_dirs(Path(sweep_dir)):
        metrics = job_metrics(job)
        if metrics["status"] not in ENDED_WELL:
            unfinished[str(job)] = metrics.get("error") or metrics["status"]
    return unfinished
