"""Checkpoints written whole, and refreshed only when keeping them is worth it.

* ``ModelCheckpoint`` is Lightning's, except that on an exception it refreshes only
  ``last.ckpt`` and only for an interruption (Ctrl-C, SIGTERM); after a NaN or a crash the
  weights are not worth keeping.
* ``AtomicCheckpointIO`` writes each checkpoint beside its target and renames it over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from headlab.errors import interruption_signal
from headlab.files import atomic_write


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint; on an exception, only an interruption updates last.ckpt.

    Lightning's ``save_on_exception`` would also save after a NaN (overwriting the last
    good ``last.ckpt``) and writes an extra ``epoch_NNN.ckpt`` that looks like a best one.
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

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if interruption_signal(exception) is None or trainer.sanity_checking:
            return
        if self._last_global_step_saved == trainer.global_step:
            return
        candidates = self._monitor_candidates(trainer)
        if self.save_last:
            self._save_last_checkpoint(trainer, candidates)
        elif self.monitor is None:  # the every-epoch last.ckpt (callbacks/last_checkpoint.yaml)
            self._save_none_monitor_checkpoint(trainer, candidates)


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
