"""Optuna pruning inside a sweep job: the job finds its trial in the study's shared storage,
reports the monitored validation metric every epoch and stops when the pruner says so.

The sweeper (``headlab.sweeps.optuna_search``) asks Optuna for the trial and passes its
number to the job as ``optuna_trial=N``; storage, study name and pruner come from the same
``hydra.sweeper`` config, so a job on another machine needs nothing but the storage URL.
Optuna's own Lightning callback does the reporting; this wraps it to open the study, to
attach the last validation metrics to the ``TrialPruned`` it raises (metrics.json keeps them)
and, under DDP, where that callback only stops training, to raise the pruning after ``fit``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L

from headlab.errors import ConfigValueError

JOURNAL_PREFIX = "journal:///"  # Optuna's journal file (a shared file system, no database)


OPEN_ATTEMPTS = 5  # sweepers creating one new database at once collide at most a few times


class StorageError(ConfigValueError):
    """The study's storage URL cannot be opened."""


def open_storage(url: str, heartbeat_interval: int | None = None) -> Any:
    """An Optuna storage from a URL: ``journal:///<path>`` or any SQLAlchemy URL (SQLite,
    PostgreSQL, MySQL). A SQLite file's folder is created; anything else that cannot be
    opened is one ``StorageError`` line. ``heartbeat_interval`` (seconds; databases only,
    Optuna's journal storage keeps no heartbeats): running trials record a heartbeat, and one
    not heard from for two intervals is failed by the next sweeper that opens the study."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return _open_storage_once(url, heartbeat_interval)
        except Exception as err:  # SQLAlchemy, a missing driver, a bad path: the user's to fix
            if attempt + 1 < OPEN_ATTEMPTS and _is_creation_race(err):
                time.sleep(0.2 * (attempt + 1))
                continue
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise StorageError(
                f"hydra.sweeper.storage={url!r} cannot be opened ({type(err).__name__}: "
                f"{message}); give a writable sqlite:///<file>, journal:///<file> or a "
                "reachable database URL"
            ) from None
    raise AssertionError("unreachable")


def _is_creation_race(err: Exception) -> bool:
    """Whether ``err`` is another process creating the same new database at this moment:
    both create Optuna's tables and insert its schema version, and the second insert fails
    (``UNIQUE constraint failed: alembic_version``), a table the other just made exists, or
    the SQLite file is locked. Opening again a moment later finds the finished schema."""
    import sqlalchemy.exc

    if isinstance(err, sqlalchemy.exc.IntegrityError):
        return True
    racing = ("locked", "already exists")
    return isinstance(err, sqlalchemy.exc.OperationalError) and any(r in str(err) for r in racing)


def _open_storage_once(url: str, heartbeat_interval: int | None) -> Any:
    import optuna

    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) - 1 :])
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    if heartbeat_interval:
        with warnings.catch_warnings():  # "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=int(heartbeat_interval))
    return optuna.storages.RDBStorage(url)


def make_pruner(pruner: Any) -> Any:
    """The pruner object from a Hydra node, ``None`` (no pruning) or an object."""
    import optuna

    if pruner is None:
        return optuna.pruners.NopPruner()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    from hydra.utils import instantiate

    return instantiate(pruner)


class TrialPruning(L.Callback):
    """Report ``monitor`` to trial ``trial_number`` after each validation; prune when told.

    ``trial_number=None`` (a plain run, or a sweep by another sweeper) makes it do nothing.
    """

    def __init__(
        self,
        storage: str | None,
        study_name: str | None,
        trial_number: int | None,
        monitor: str,
        pruner: Any = None,
    ) -> None:
        super().__init__()
        self.trial_number = trial_number
        self.monitor = monitor
        self._inner: L.Callback | None = None
        if trial_number is None or storage is None:
            return
        import optuna
        from optuna_integration import PyTorchLightningPruningCallback

        opened = open_storage(storage)
        study = optuna.load_study(study_name=study_name, storage=opened, pruner=make_pruner(pruner))
        study_id = opened.get_study_id_from_name(study.study_name)
        trial_id = opened.get_trial_id_from_study_id_trial_number(study_id, int(trial_number))
        self._storage, self._trial_id = opened, trial_id
        self._inner = PyTorchLightningPruningCallback(optuna.trial.Trial(study, trial_id), monitor)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._inner is not None:
            self._inner.on_fit_start(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._inner is None:
            return
        import optuna

        try:
            self._inner.on_validation_end(trainer, pl_module)
        except optuna.TrialPruned as pruned:
            raise with_metrics(pruned, trainer, trainer.current_epoch) from None

    def raise_if_pruned(self, trainer: L.Trainer) -> None:
        """Call after ``trainer.fit``. Under DDP Optuna's callback cannot raise across the
        processes: it stops training and marks the trial pruned in the study. Raising here
        ends the run as pruned (metrics.json, the study's state) instead of as completed at
        the epoch it stopped in. A run without DDP raised during fit already."""
        if self._inner is None:
            return
        import optuna

        try:
            self._inner.check_pruned()
        except optuna.TrialPruned as pruned:
            reported = self._storage.get_trial(self._trial_id).intermediate_values
            raise with_metrics(pruned, trainer, max(reported, default=0)) from None


def with_metrics(pruned: Exception, trainer: L.Trainer, epoch: int) -> Exception:
    """``pruned`` carrying the run's last validation metrics and the epoch it was pruned at:
    metrics.json of a pruned run keeps where it stood (headlab.run.outcome)."""
    pruned.metrics = {
        key: float(value)
        for key, value in trainer.callback_metrics.items()
        if getattr(value, "numel", lambda: 1)() == 1
    }
    pruned.metrics["pruned_at_epoch"] = epoch
    return pruned
