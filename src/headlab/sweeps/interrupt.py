"""Ctrl-C in a sweep whose jobs run in worker processes (hydra/launcher=joblib).

The terminal sends SIGINT to the whole process group: each worker's job stops after its
current batch, saves ``last.ckpt`` and writes ``metrics.json`` with ``status: interrupted``,
as a single run does. The main process would raise ``KeyboardInterrupt`` at once, and joblib
then kills its workers, often before they have written anything. So the main process lets
the first Ctrl-C pass (the workers end their jobs and the sweep exits 130) and stops at once
on a second one.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def runs_jobs_in_workers(config: DictConfig) -> bool:
    """Whether the launcher runs jobs in local worker processes that share our Ctrl-C."""
    target = str(config.hydra.launcher.get("_target_", ""))
    return "joblib" in target.lower()


class WorkersFinishOnCtrlC(Callback):
    """Between the sweep's start and end: the first SIGINT is left to the workers."""

    def __init__(self) -> None:
        self.previous: Any = None
        self.pressed = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not runs_jobs_in_workers(config):
            return
        try:
            self.previous = signal.signal(signal.SIGINT, self.handle)
        except ValueError:  # not the main thread: signals are not ours to change
            self.previous = None

    def handle(self, signum: int, frame: Any) -> None:
        if self.pressed:
            self.restore()
            raise KeyboardInterrupt
        self.pressed = True
        log.warning(
            "Ctrl-C: each running job stops after its current batch and saves last.ckpt; "
            "Ctrl-C again to stop at once"
        )

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.restore()
