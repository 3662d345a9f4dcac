"""A sweep whose jobs failed still ends, with its summary and report, and then exits 1."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from headlab.sweeps.reader import unfinished_jobs

log = logging.getLogger(__name__)


class FailedJobs(Callback):
    """At the end of a sweep, list the jobs that did not complete and exit 1.

    Hydra would stop calling ``on_multirun_end`` callbacks (so no summary) if a job raised;
    ``run_task`` lets failed jobs return instead, and this puts the failure back in the
    exit code. Hydra calls end callbacks in reverse order, so this one is listed *first*
    (``configs/hydra/default.yaml``) and runs after every other, the summary and the report
    included; then ``SystemExit(1)``, which Hydra lets through without a traceback.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        failed = unfinished_jobs(config.hydra.sweep.dir)
        for job, reason in failed.items():
            log.error("Job %s did not complete: %s", job, reason)
        if failed:
            raise SystemExit(1)
