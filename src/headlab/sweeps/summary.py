"""``summary.csv`` for a Hydra multirun: one row per job with its overrides and final metrics.

Each job already leaves ``.hydra/overrides.yaml`` and ``metrics.json`` in its own folder, so
the summary is built from the folders rather than from the launcher's return values: it
works the same for the basic, joblib and submitit launchers and for the Optuna sweeper, and
a job that died before writing ``metrics.json`` still gets a row (status ``missing``).

Kept free of torch imports: Hydra instantiates callbacks at every start, ``--help`` included.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from headlab.run.dirs import job_number

log = logging.getLogger(__name__)

MISSING_STATUS = "missing"  # no metrics.json: the job crashed, was killed or is still running


def _job_sort_key(path: Path) -> tuple[int, int, str]:
    """Job order: ``2_head=...`` before ``10_head=...``; other names after, by name."""
    num = job_number(path.name)
    return (0, num, path.name) if num is not None else (1, 0, path.name)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The sweep's job folders (those Hydra gave a ``.hydra/`` or that hold metrics), in order."""
    found = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and ((p / ".hydra").is_dir() or (p / "metrics.json").is_file())
    ]
    return sorted(found, key=_job_sort_key)


def job_overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return [str(o) for o in OmegaConf.load(path)] if path.is_file() else []


def job_metrics(job_dir: Path) -> dict[str, Any]:
    """The job's metrics.json, or only a status when it is absent or unreadable."""
    path = job_dir / "metrics.json"
    if not path.is_file():
        return {"status": MISSING_STATUS}
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        log.warning("Unreadable %s: %s", path, err)
        return {"status": MISSING_STATUS}
    metrics.setdefault("status", "unknown")
    return metrics


def _split_override(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def summary_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job: ``job``, ``status``, each override that varies, ``overrides``, metrics."""
    jobs = [(d, job_overrides(d), job_metrics(d)) for d in job_dirs(sweep_dir)]
    given = [dict(map(_split_override, overrides)) for _, overrides, _ in jobs]
    keys = list(dict.fromkeys(key for values in given for key in values))
    # overrides every job shares (e.g. data.data_dir) stay in `overrides`, not in a column
    varying = [k for k in keys if len({values.get(k) for values in given}) > 1]
    rows = []
    for (job_dir, overrides, metrics), values in zip(jobs, given, strict=True):
        row: dict[str, Any] = {"job": job_dir.name, "status": metrics.pop("status")}
        row.update({key: values.get(key, "") for key in varying})
        row["overrides"] = " ".join(overrides)
        # numbers first, paths and other strings after: the csv reads well in a spreadsheet
        row.update(sorted(metrics.items(), key=lambda item: isinstance(item[1], str)))
        rows.append(row)
    return rows


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_summary(sweep_dir: str | Path, filename: str = "summary.csv") -> Path:
    """Write ``<sweep_dir>/<filename>`` atomically; callable on its own for a finished sweep."""
    from headlab.files import atomic_write_text  # imports torch: only when writing

    sweep_dir = Path(sweep_dir)
    path = sweep_dir / filename
    atomic_write_text(path, to_csv(summary_rows(sweep_dir)))
    return path


def sweep_dir_of_job(config: DictConfig) -> Path:
    """The sweep folder from a job's own folder (``sweep.dir`` may hold a ``${now:}`` that a
    launcher's worker process would resolve anew)."""
    output_dir = Path(config.hydra.runtime.output_dir)
    depth = len(Path(str(config.hydra.sweep.subdir)).parts)
    return output_dir.parents[depth - 1] if depth else output_dir


class SweepSummary(Callback):
    """Hydra callback: keep ``summary.csv`` up to date after every job and at the sweep's end.

    After every job as well, because Hydra skips ``on_multirun_end`` when a job raised: the
    jobs that ran are then still summarised (the failed one without metrics, ``missing``).
    """

    def __init__(self, filename: str = "summary.csv") -> None:
        self.filename = filename

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        try:
            write_summary(sweep_dir_of_job(config), self.filename)
        except Exception as err:  # a summary must never fail the job it summarises
            log.warning("No %s after job %s: %s", self.filename, config.hydra.job.num, err)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            log.warning("No sweep folder %s: no %s written", sweep_dir, self.filename)
            return
        path = write_summary(sweep_dir, self.filename)
        log.info("Sweep summary: %s", path)
