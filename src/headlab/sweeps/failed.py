"""A sweep whose jobs failed still ends, with its summary and report, and then exits 1."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from headlab.sweeps.reader import unfinished_jobs

log = logging.getLogger(__name__)


class FailedJobs(Callback):
    """At the end of a sweep, list the jobs that did not complete; the sweep then exits 1.

    Hydra would stop calling ``on_multirun_end`` callbacks (so no summary) if a job raised;
    ``run_task`` lets failed jobs return instead, and this puts the failure back in the
    exit code once every callback has run (``scripts/train.py`` reads ``failed``).
    """

    failed: dict[str, str] = {}

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        FailedJobs.failed = unfinished_jobs(config.hydra.sweep.dir)
        for job, reason in FailedJobs.failed.items():
            log.error("Job %s did not complete: %s", job, reason)
