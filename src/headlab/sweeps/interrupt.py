"""Ctrl-C in a sweep: every job that started says where it stopped, summary.csv has a row
for it, and the sweep exits 130 (SIGINT) or 143 (SIGTERM) with one line, whatever the
launcher.

* The basic launcher runs jobs in this process: the job stops after its current batch and
  records ``status: interrupted`` (``run.outcome``); ``scripts/train.py`` returns from it so
  that Hydra still calls the end-of-job callbacks (``summary.csv`` gets its row), and then
  this callback stops the sweep.
* hydra/launcher=joblib runs jobs in worker processes, and the terminal sends SIGINT to all
  of them. A worker that is running a job stops it as above; an *idle* worker would die of
  the ``KeyboardInterrupt``, and joblib would then kill every worker (``BrokenProcessPool``,
  jobs without ``metrics.json``). So workers ignore SIGINT (a loky initializer, run in each
  worker as it starts) except while the task runs (``ctrl_c_stops_this_job``); the main
  process lets the first Ctrl-C pass and stops at once on a second one. Jobs that begin
  after the Ctrl-C (queued ones) record ``interrupted`` without training. At the sweep's
  end, after the summary and the report, the sweep exits 130.

A Ctrl-C is remembered in the sweep folder (``.interrupted``, holding the signal's name), the
one thing every process of the sweep can see.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from headlab.files import atomic_write_text
from headlab.layout import (
    in_multirun,
    metrics_path,
    read_metrics,
    sweep_dir_of_job,
    write_metrics,
)

log = logging.getLogger(__name__)

MARK = ".interrupted"  # in the sweep folder: the signal that interrupted the sweep
EXIT_CODES = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}


def runs_jobs_in_workers(config: DictConfig) -> bool:
    """Whether the launcher runs jobs in local worker processes that share our Ctrl-C."""
    target = str(config.hydra.launcher.get("_target_", ""))
    return "joblib" in target.lower()


def mark_interrupted(sweep_dir: str | Path, name: str = "SIGINT") -> None:
    """Remember in the sweep folder that ``name`` interrupted the sweep (the first one wins)."""
    if interrupted_by(sweep_dir) is None:
        atomic_write_text(Path(sweep_dir) / MARK, name)


def interrupted_by(sweep_dir: str | Path) -> str | None:
    """The signal that interrupted the sweep in ``sweep_dir``, or None."""
    path = Path(sweep_dir) / MARK
    try:
        return path.read_text().strip() or "SIGINT"
    except OSError:
        return None


def skip_if_interrupted(hydra: Any = None) -> bool:
    """In a job of a sweep that was interrupted before the job began: record the job as
    interrupted, untrained, and say True (the caller returns at once); otherwise False.
    ``hydra``: the job's ``hydra`` node (default: the running app's)."""
    if hydra is None:
        if not in_multirun():
            return False
        from hydra.core.hydra_config import HydraConfig

        hydra = HydraConfig.get()
    name = interrupted_by(sweep_dir_of_job(hydra))
    if name is None:
        return False
    folder = hydra.runtime.output_dir
    write_metrics(folder, {"status": "interrupted", "signal": name, "last_ckpt_path": ""})
    log.warning("The sweep was interrupted by %s before this job began: not trained", name)
    return True


#: set in a joblib worker process by ``worker_ignores_ctrl_c`` (loky's initializer)
_in_worker = False


def worker_ignores_ctrl_c() -> None:
    """A worker process between jobs: Ctrl-C is for the jobs, not for the worker."""
    global _in_worker
    _in_worker = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def ctrl_c_stops_this_job() -> Iterator[None]:
    """In a joblib worker, Ctrl-C raises ``KeyboardInterrupt`` while the task runs and is
    ignored again the moment it returns: one arriving in Hydra's code around the task (its
    callbacks) would end the worker and, with it, the pool. Elsewhere nothing changes."""
    if not _in_worker:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _job_status(config: DictConfig) -> tuple[str | None, str | None]:
    """The job's ``status`` and ``signal`` from its metrics.json (None, None without one)."""
    folder = config.hydra.runtime.output_dir
    if not metrics_path(folder).is_file():
        return None, None
    try:
        metrics = read_metrics(folder)
    except (OSError, ValueError):
        return None, None
    return metrics.get("status"), metrics.get("signal")


class WorkersFinishOnCtrlC(Callback):
    """Ctrl-C and SIGTERM in a sweep, for every launcher (see the module's docstring).

    The name is kept from when it handled joblib workers only: configs refer to it.
    """

    def __init__(self) -> None:
        self.previous: Any = None
        self.pressed = False
        self.main_pid: int | None = None
        self.sweep_dir: Path | None = None
        self.loky: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # sent to the workers with Hydra's context: a signal handler or backend is not theirs
        return {**self.__dict__, "previous": None, "loky": None}

    def in_worker(self) -> bool:
        return self.main_pid is not None and os.getpid() != self.main_pid

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.main_pid = os.getpid()
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        if not runs_jobs_in_workers(config):
            return
        self._workers_start_ignoring_ctrl_c()
        try:
            self.previous = signal.signal(signal.SIGINT, self.handle)
        except ValueError:  # not the main thread: signals are not ours to change
            self.previous = None

    def _workers_start_ignoring_ctrl_c(self) -> None:
        """joblib's loky backend, built by ``loky_backend`` while the sweep runs."""
        from joblib import parallel

        self.loky = parallel.BACKENDS.get("loky")
        if self.loky is not None:
            parallel.BACKENDS["loky"] = self.loky_backend

    def loky_backend(self, **kwargs: Any) -> Any:
        """What Hydra's joblib launcher gets at each launch: loky with an initializer run in
        each worker as it starts; none once the sweep was interrupted. A sweeper that
        launches batches (Optuna) would otherwise launch the next batch after a Ctrl-C, and
        the next, each job recorded as interrupted and none counted."""
        name = interrupted_by(self.sweep_dir) if self.sweep_dir is not None else None
        if self.pressed or name is not None:
            self.restore()
            self._exit(name or "SIGINT")
        return self.loky(initializer=worker_ignores_ctrl_c, **kwargs)

    def handle(self, signum: int, frame: Any) -> None:
        if self.pressed:
            self.restore()
            raise KeyboardInterrupt
        self.pressed = True
        if self.sweep_dir is not None:
            mark_interrupted(self.sweep_dir, "SIGINT")
        log.warning(
            "Ctrl-C: each running job stops after its current batch and saves last.ckpt, "
            "jobs not yet started are not trained; Ctrl-C again to stop at once"
        )

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        status, name = _job_status(config)
        interrupted = status == "interrupted"
        if interrupted:
            mark_interrupted(sweep_dir_of_job(config.hydra), name or "SIGINT")
        if interrupted and not self.in_worker() and self.main_pid is not None:
            # the jobs run in this process (basic launcher): the sweep stops here, its
            # summary.csv already written by the callbacks that ran before this one
            self.restore()
            self._exit(name or "SIGINT")

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None
        if self.loky is not None:
            from joblib import parallel

            parallel.BACKENDS["loky"] = self.loky
            self.loky = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.restore()
        name = interrupted_by(Path(str(config.hydra.sweep.dir)))
        if name is not None:
            self._exit(name)

    @staticmethod
    def _exit(name: str) -> None:
        log.error("Sweep interrupted by %s: summary.csv says where each job stopped", name)
        raise SystemExit(EXIT_CODES.get(name, EXIT_CODES["SIGINT"]))
