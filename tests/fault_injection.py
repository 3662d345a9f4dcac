"""Callbacks that break a run on purpose, for the fault tests (added with `+callbacks.x=`)."""

from __future__ import annotations

import lightning as L
import torch


class PoisonWeightsAt(L.Callback):
    """Fill the first weight tensor with NaN before optimizer step ``step``: the loss is NaN."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


class DiskFullOnSave(L.Callback):
    """Write each checkpoint to /dev/full as well: the OS answers ENOSPC, as on a full disk."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        with open("/dev/full", "wb") as handle:
            torch.save(checkpoint, handle)
