"""Training curves every N steps, read from the metric states the model already updates."""

from __future__ import annotations

import math

import lightning as L

#: the tags this callback owns; the model leaves their epoch means off the loggers
CURVE_TAGS = ("train/loss", "train/acc")


def log_step(trainer: L.Trainer) -> int:
    """The step Lightning's own ``self.log`` would write now: the index of the last training
    batch seen (0-based; val after an epoch's last batch sits on that batch's index).

    Read from the fit loop's counter because ``trainer.global_step`` is one ahead of it in
    validation, which put images one step after the scalars of the same epoch.
    """
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


class TrainCurves(L.Callback):
    """``train/loss`` and ``train/acc`` every ``every_n_steps`` batches, as the mean over those
    batches (and at each epoch's last batch, over the rest).

    Nothing is computed per step: the train metrics already sum loss and hits on the device
    (``StageMetrics.running_totals``); every N batches rank zero reads the totals once (one
    device sync) and logs the difference to the previous reading. Under DDP the curve is rank
    zero's share of the batches; the epoch values in metrics.json stay synced over all ranks.

    An epoch shorter than ``every_n_steps * min_points_per_epoch`` batches is logged more
    often, so every epoch has at least ``min_points_per_epoch`` points.
    """

    def __init__(self, every_n_steps: int = 20, min_points_per_epoch: int = 10) -> None:
        if every_n_steps <= 0 or min_points_per_epoch <= 0:
            raise ValueError(
                f"log_train_every_n_steps and min_points_per_epoch must be > 0, got "
                f"{every_n_steps} and {min_points_per_epoch}"
            )
        self.every_n_steps = every_n_steps
        self.min_points_per_epoch = min_points_per_epoch
        self._last: list[float] | None = None
        self._every, self._batches = every_n_steps, math.inf

    def interval(self, trainer: L.Trainer) -> int:
        batches = trainer.num_training_batches
        if not math.isfinite(batches):
            return self.every_n_steps
        return max(1, min(self.every_n_steps, int(batches) // self.min_points_per_epoch))

    def setup(self, trainer, pl_module, stage: str) -> None:
        pl_module.curve_tags = set(CURVE_TAGS)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last = None  # the model resets its train metrics at every epoch end
        # fixed for the epoch: the per-batch hook then only does a modulo
        self._every = self.interval(trainer)
        self._batches = trainer.num_training_batches

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not trainer.loggers or not trainer.is_global_zero:
            return
        if (batch_idx + 1) % self._every and batch_idx + 1 < self._batches:
            return
        now = pl_module.metrics_for("train").running_totals().tolist()
        before = self._last or [0.0] * len(now)
        loss_sum, weight, hits, count = (a - b for a, b in zip(now, before, strict=True))
        self._last = now
        values = {}
        if weight > 0:
            values["train/loss"] = loss_sum / weight
        if count > 0:
            values["train/acc"] = hits / count
        if values:
            step = log_step(trainer)
            for logger in trainer.loggers:
                logger.log_metrics(values, step=step)
