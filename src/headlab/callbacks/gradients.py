"""Gradient flow to TensorBoard: per-parameter norms, last-layer row norms, true vs other rows."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import grad_norm

from headlab.models.grad_rows import grad_rows


class GradientNorms(L.Callback):
    """Per-parameter L2 gradient norms (``grad_norm/``) and, for the last linear layer, the norm
    of each class's weight row (``grad_norm_per_class/<class>``), every ``every_n_steps`` steps.

    Runs before the optimizer step, after DDP has averaged gradients, so every process holds
    the same values and only the loggers' rank-zero write happens.

    With ``probe_size > 0`` it also logs how the per-sample last-layer gradient splits between
    the true class's row and the other rows (``grad_rows/*``, see ``headlab.models.grad_rows``), on
    a fixed probe: the first ``probe_size`` samples of the run's first training batch. That
    costs one eval-mode forward of the probe per logging step.
    """

    def __init__(
        self, every_n_steps: int = 50, row_layer: str = "classifier", probe_size: int = 64
    ) -> None:
        if every_n_steps <= 0:
            raise ValueError(f"log_grad_every_n_steps must be > 0, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.row_layer = row_layer
        self.probe_size = probe_size
        self.probe: tuple[torch.Tensor, torch.Tensor] | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.probe is None and self.probe_size > 0:
            images, targets = batch
            self.probe = (images[: self.probe_size].clone(), targets[: self.probe_size].clone())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step % self.every_n_steps or not trainer.loggers:
            return
        norms = grad_norm(pl_module, norm_type=2)
        values = {
            key.replace("grad_2.0_norm_total", "grad_norm/total").replace(
                "grad_2.0_norm/", "grad_norm/"
            ): value
            for key, value in norms.items()
        }
        layer = pl_module.get_submodule(self.row_layer)
        if layer.weight.grad is not None:
            rows = layer.weight.grad.detach().norm(dim=1)
            values.update({f"grad_norm_per_class/{k}": v for k, v in enumerate(rows)})
        if self.probe is not None:
            values.update(grad_rows(pl_module, *self.probe))
        values = {k: float(v) for k, v in values.items()}
        for logger in trainer.loggers:
            logger.log_metrics(values, step=trainer.global_step)
