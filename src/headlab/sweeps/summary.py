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
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from headlab.files import atomic_write_text
from headlab.layout import in_multirun, split_override, sweep_dir_of_job
from headlab.sweeps.reader import job_dirs, job_metrics, job_overrides

log = logging.getLogger(__name__)


def summary_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job: ``job``, ``status``, each override that varies, ``overrides``, metrics."""
    jobs = [(d, job_overrides(d), job_metrics(d)) for d in job_dirs(sweep_dir)]
    given = [dict(map(split_override, overrides)) for _, overrides, _ in jobs]
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
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / filename
    atomic_write_text(path, to_csv(summary_rows(sweep_dir)))
    return path


class SweepSummary(Callback):
    """Hydra callback: keep ``summary.csv`` up to date after every job and at the sweep's end.

    After every job as well, because Hydra skips ``on_multirun_end`` when a job raised: the
    jobs that ran are then still summarised (the failed one without metrics, ``missing``).
    """

    def __init__(self, filename: str = "summary.csv") -> None:
        self.filename = filename

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if not in_multirun(config.hydra):
            return
        try:
            write_summary(sweep_dir_of_job(config.hydra), self.filename)
        except Exception as err:  # a summary must never fail the job it summarises
            log.warning("No %s after job %s: %s", self.filename, config.hydra.job.num, err)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            log.warning("No sweep folder %s: no %s written", sweep_dir, self.filename)
            return
        path = write_summary(sweep_dir, self.filename)
        log.info("Sweep summary: %s", path)
