"""Training faults: a non-finite loss stops the run, checkpoints are written whole.

* ``StopOnNonFiniteLoss`` raises at the step whose loss is NaN/inf, before any checkpoint
  of the poisoned weights can be written, so ``last.ckpt`` stays the last good one.
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
from lightning.pytorch.utilities.exceptions import SIGTERMException

from headlab.errors import RunError
from headlab.run_files import atomic_write


class NonFiniteLoss(RunError, FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def is_interruption(exception: BaseException) -> bool:
    """Ctrl-C (KeyboardInterrupt) or SIGTERM (Lightning's SIGTERMException)."""
    return isinstance(exception, (KeyboardInterrupt, SIGTERMException))


class StopOnNonFiniteLoss(L.Callback):
    """Stop at the first NaN/inf training loss, naming the step.

    On CPU every step is checked at once. On an accelerator reading the flag would stall
    the pipeline every step, so a step's flag is read at the next step (or at epoch end,
    before validation and checkpointing): the error still names the step that went bad.
    """

    def __init__(self, every_step: bool | None = None) -> None:
        """``every_step``: read the flag at once (default: on CPU only)."""
        self.every_step = every_step
        self._pending: tuple[torch.Tensor, int, int, int] | None = None

    def _raise_if_bad(self, trainer: L.Trainer) -> None:
        if self._pending is None:
            return
        finite, step, epoch, batch_idx = self._pending
        self._pending = None
        if bool(finite):
            return
        checkpoint = trainer.checkpoint_callback
        last = getattr(checkpoint, "last_model_path", "") or getattr(
            checkpoint, "best_model_path", ""
        )
        kept = f"the last good checkpoint is kept: {last}" if last else "no checkpoint yet"
        raise NonFiniteLoss(
            f"Training loss became NaN/inf at step {step} (epoch {epoch}, batch {batch_idx}); "
            f"training stopped, {kept}. Try a lower model.optimizer.lr or another seed.",
            step=step,
        )

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        self._raise_if_bad(trainer)  # the previous step's flag, on an accelerator
        # global_step already counts this step's optimizer update: the bad one is one less
        step = trainer.global_step - 1
        self._pending = (
            torch.isfinite(loss.detach()).all(),
            step,
            trainer.current_epoch,
            batch_idx,
        )
        if self.every_step or (self.every_step is None and loss.device.type == "cpu"):
            self._raise_if_bad(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._raise_if_bad(trainer)


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint; on an exception, only an interruption updates last.ckpt.

    Lightning's ``save_on_exception`` would also save after a NaN (overwriting the last
    good ``last.ckpt``) and writes an extra ``epoch_NNN.ckpt`` that looks like a best one.
    """

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not is_interruption(exception) or trainer.sanity_checking:
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
