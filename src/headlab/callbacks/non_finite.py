"""A non-finite loss stops the run at the step it appears, before any checkpoint of the
poisoned weights is written, so ``last.ckpt`` stays the last good one."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from headlab.errors import RunError


class NonFiniteLoss(RunError, FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


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
        now = self.every_step or (self.every_step is None and loss.device.type == "cpu")
        if now and loss.numel() == 1 and math.isfinite(loss.item()):
            return  # the common case, without building a flag (a tenth of a ms per step)
        # global_step already counts this step's optimizer update: the bad one is one less
        step = trainer.global_step - 1
        self._pending = (
            torch.isfinite(loss.detach()).all(),
            step,
            trainer.current_epoch,
            batch_idx,
        )
        if now:
            self._raise_if_bad(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._raise_if_bad(trainer)
