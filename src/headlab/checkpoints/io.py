"""Checkpoints written whole, and only at the end of an epoch.

* ``ModelCheckpoint`` is Lightning's, except that it never saves on an exception: an
  interruption (Ctrl-C, SIGTERM) or a crash leaves ``last.ckpt`` as the last epoch ended.
  A mid-epoch save would resume with the data loader restarted inside the epoch, so the
  resumed run would not be the run it continues; from an end-of-epoch state it is, bit for
  bit (tests/test_faults.py). After a NaN the last good weights stay too.
* ``AtomicCheckpointIO`` writes each checkpoint beside its target and renames it over.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from headlab.files import atomic_write


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint, never saving on an exception.

    Lightning's ``save_on_exception=True`` would save mid-epoch (a resume that is not the same
    run), after a NaN (overwriting the last good ``last.ckpt``) and an extra
    ``epoch_NNN.ckpt`` that looks like a best one; it is off whatever the config says.
    """

    @property
    def state_key(self) -> str:
        """Lightning's key, built once: Lightning rebuilds it (a dict's repr) for every hook
        call, six times per training step per checkpoint callback."""
        inputs = (
            self.monitor,
            self.mode,
            self._every_n_train_steps,
            self._every_n_epochs,
            self._train_time_interval,
        )
        cached = self.__dict__.get("_headlab_state_key")
        if cached is None or cached[0] != inputs:
            cached = self.__dict__["_headlab_state_key"] = (inputs, super().state_key)
        return cached[1]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Also across run folders: a resume writes into a new one, and Lightning would then
        forget the scores of the epochs before it, pick its "best" among the resumed epochs
        only, and test other weights than the uninterrupted run. Files outside this run's
        folder are never deleted (Lightning's ``_should_remove_checkpoint``)."""
        with warnings.catch_warnings():  # "the dirpath has changed": handled here
            warnings.filterwarnings("ignore", "The dirpath has changed")
            super().load_state_dict(state_dict)
        same_run = state_dict.get("monitor") == self.monitor and self.monitor is not None
        if same_run and state_dict.get("dirpath", self.dirpath) != self.dirpath:
            self.best_model_score = state_dict.get("best_model_score")
            self.best_k_models = dict(state_dict.get("best_k_models", {}))
            self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
            self.kth_value = state_dict.get("kth_value", self.kth_value)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """Nothing: the last end-of-epoch checkpoint is the state a resume continues from."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temporary file beside the target, fsync, then rename over it.

    Lightning's own local save stages the file in the system temp folder and moves it:
    a plain copy (not atomic) when that folder is on another filesystem, and never fsynced.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_write(path, lambda handle: torch.save(checkpoint, handle), mode="wb")
