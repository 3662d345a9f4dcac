"""A sweep's own TensorBoard run (``<sweep>/sweep/``): the one HPARAMS definition for all its
jobs and a test-metrics table across them, written when the sweep ends.

The jobs write their session (hyperparameter values, trial name) and no definition; this
reads every job's session back, so the columns cover every hyperparameter any job has, and
the metric columns are taken from every job's metrics.json. Point ``tensorboard --logdir`` at
one sweep: with several, the hparams plugin takes one sweep's definition for all.

Kept free of torch imports at module level: Hydra instantiates callbacks at every start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from headlab.sweeps.summary import job_dirs, job_metrics
from headlab.tables import markdown_table

log = logging.getLogger(__name__)

#: the sweep run's folder name, beside the job folders
SWEEP_RUN = "sweep"
SUMMARY_TAG = "sweep/test_metrics"


def read_session(event_dir: Path) -> tuple[dict[str, Any], str] | None:
    """(hparams, trial name) of the session start a job wrote into its event files."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import metadata

    from headlab.sweeps.study.jobs import event_records
    from headlab.tracking.hparams import python_value

    needle = metadata.SESSION_START_INFO_TAG.encode()
    for file in sorted(event_dir.glob("events.out.tfevents.*")):
        for record in event_records(file):
            if needle not in record:  # skip the parse of every other record
                continue
            for value in Event.FromString(record).summary.value:
                if value.tag == metadata.SESSION_START_INFO_TAG:
                    start = metadata.parse_session_start_info_plugin_data(
                        value.metadata.plugin_data.content
                    )
                    hparams = {k: python_value(v) for k, v in start.hparams.items()}
                    return hparams, start.group_name
    return None


def sweep_table(rows: list[tuple[str, dict[str, float]]], columns: list[str]) -> str:
    """Markdown: one row per trial, the default HPARAMS metric columns."""
    cells = [
        [str(trial), *(f"{values[c]:.4f}" if c in values else "" for c in columns)]
        for trial, values in rows
    ]
    return "\n".join(markdown_table(["trial", *columns], cells))


def write_sweep_board(sweep_dir: str | Path) -> Path | None:
    """Write ``<sweep>/sweep/``'s event file (replacing an earlier one); None without jobs
    that have a TensorBoard session."""
    from torch.utils.tensorboard import SummaryWriter

    from headlab.tracking.hparams import (
        DEFAULT_COLUMNS,
        experiment_summary,
        final_scalars,
        hparam_groups,
        metric_columns,
    )

    sweep_dir = Path(sweep_dir)
    sessions, rows, tags = [], [], set()
    for job in job_dirs(sweep_dir):
        session = read_session(job / "tensorboard")
        if session is None:
            continue
        hparams, trial = session
        scalars = final_scalars(job_metrics(job))
        sessions.append(hparams)
        rows.append((trial or job.name, scalars))
        tags |= set(scalars)
    if not sessions:
        return None
    constants = hparam_groups(sessions)["constant"]
    setting = ", ".join(f"{k}={sessions[0][k]}" for k in constants)
    description = f"{len(sessions)} runs; the same in all: {setting}"
    columns = [c for c in DEFAULT_COLUMNS if c in tags]
    out = sweep_dir / SWEEP_RUN
    for old in out.glob("events.out.tfevents.*"):
        old.unlink()
    writer = SummaryWriter(log_dir=str(out))
    try:
        writer._get_file_writer().add_summary(
            experiment_summary(sessions, metric_columns(tags), description)
        )
        text = f"**{description}**\n\n" + sweep_table(sorted(rows), columns)
        writer.add_text(SUMMARY_TAG, text, 0)
    finally:
        writer.close()
    return out


class SweepBoard(Callback):
    """Hydra callback: ``write_sweep_board(<sweep dir>)`` when a multirun ends; a failure is
    logged, never fails the sweep whose runs are on disk."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            out = write_sweep_board(sweep_dir) if sweep_dir.is_dir() else None
        except Exception as err:  # the sweep's results stay; say why there is no definition
            log.warning("No TensorBoard sweep definition: %s: %s", type(err).__name__, err)
            return
        if out is not None:
            log.info("TensorBoard: tensorboard --logdir %s", sweep_dir)
