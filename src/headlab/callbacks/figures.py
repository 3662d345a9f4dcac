"""Reliability diagrams and confidence histograms of each validation and test epoch."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from headlab.callbacks.curves import log_step
from headlab.files import atomic_write
from headlab.models.classifier import Classifier


def figure_label(pl_module, seed: int | None) -> str:
    """``head=sigmoid seed=1``: what a figure title says about whose run it is."""
    from headlab.calibration.figures import run_label

    return run_label(getattr(getattr(pl_module, "head", None), "name", "?"), seed)


class CalibrationFigures(L.Callback):
    """Per val epoch and after testing: a reliability diagram (TensorBoard image) and the
    confidence and probability-sum distributions (TensorBoard histograms). After testing the
    reliability diagram and confidence histogram are also PNG files in ``output_dir``.

    Histograms are TensorBoard's own (no image to draw; the dashboard stacks them by epoch):
    a matplotlib figure costs about as much as 20 MLP training steps.
    """

    def __init__(self, output_dir: str | None = None, seed: int | None = None) -> None:
        self.output_dir = Path(output_dir) if output_dir else None
        self.seed = seed

    @rank_zero_only
    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._publish(trainer, pl_module, "val", save=False)

    @rank_zero_only
    def on_test_end(self, trainer, pl_module) -> None:
        self._publish(trainer, pl_module, "test", save=self.output_dir is not None)

    def _publish(self, trainer, pl_module, stage: str, save: bool) -> None:
        from headlab.calibration.figures import confidence_histogram, reliability_figure

        snapshot = pl_module.snapshot(stage) if isinstance(pl_module, Classifier) else None
        if snapshot is None or not snapshot.reliability:
            return
        boards = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        step = log_step(trainer)  # the step of this epoch's scalars
        whose = figure_label(pl_module, self.seed)
        for name, reliability in snapshot.reliability.items():
            suffix = "" if name == "raw" else f"_{name}"
            figure = reliability_figure(reliability, f"{stage} {name}, {whose}")
            for board in boards:
                board.add_figure(f"{stage}/reliability{suffix}", figure, global_step=step)
                _confidence_histogram(board, f"{stage}/confidence{suffix}", reliability, step)
            if save:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                figures = {
                    "reliability": figure,
                    "confidence": confidence_histogram(reliability, f"{stage} {name}, {whose}"),
                }
                for tag, fig in figures.items():
                    png = partial(fig.savefig, format="png")
                    atomic_write(self.output_dir / f"{tag}{suffix}_{stage}.png", png, mode="wb")
        if snapshot.prob_sum:
            for board in boards:
                _prob_sum_histogram(board, f"{stage}/prob_sum", snapshot.prob_sum, step)


def _confidence_histogram(board, tag: str, reliability, step: int) -> None:
    """Top-label confidence per reliability bin. Only per-bin sums are kept, so the second
    moment is taken from the bin means (TensorBoard draws the bucket counts, not it)."""
    counts = reliability.count[0]
    sums = reliability.confidence[0]
    n = counts.sum().item()
    if not n:
        return
    edges = torch.linspace(0.0, 1.0, len(counts) + 1)
    sum_squares = (sums.square() / counts.clamp_min(1)).sum().item()
    _raw_histogram(board, tag, edges, counts, sums.sum().item(), sum_squares, step)


def _prob_sum_histogram(board, tag: str, sums: dict[str, torch.Tensor], step: int) -> None:
    counts = sums["histogram"]
    n = counts.sum().item()
    if not n:
        return
    mean = sums["mean"].item()
    sum_squares = (sums["std"].item() ** 2 + mean**2) * n
    _raw_histogram(board, tag, sums["edges"], counts, mean * n, sum_squares, step)


def _raw_histogram(board, tag, edges, counts, total: float, sum_squares: float, step) -> None:
    board.add_histogram_raw(
        tag,
        min=edges[0].item(),
        max=edges[-1].item(),
        num=counts.sum().item(),
        sum=total,
        sum_squares=sum_squares,
        bucket_limits=edges[1:].tolist(),
        bucket_counts=counts.tolist(),
        global_step=step,
    )
