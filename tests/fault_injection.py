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
