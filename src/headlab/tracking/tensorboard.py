"""TensorBoard made for comparing runs: a curated HPARAMS tab and a Custom Scalars page.

Lightning's ``TensorBoardLogger.log_hyperparams(params, metrics)`` also writes every metric
as a scalar, which gave one ``hp/*`` chart per final metric. The hparams plugin only needs
its three summaries (experiment, session start, session end) in the run's own event file
and reads each metric column from the run's scalar of the same tag, so they are written
here directly with ``torch.utils.tensorboard.summary.hparams``; a final metric that was
never logged as a scalar (post-hoc calibration, ``best/val/acc``) is logged once, under its
own name, at the last step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

#: prefixes of real metrics; ``epochs``, ``lr-Adam``, ``temperature``, paths are not columns
METRIC_PREFIXES = ("train/", "val/", "test/", "best/")
#: interval bounds stay in metrics.json: a column each would double the table
NOT_COLUMNS = re.compile(r"_ci_(low|high)$")


def metric_columns(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The final metrics that become HPARAMS columns: finite numbers of a stage."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if key.startswith(METRIC_PREFIXES)
        and not NOT_COLUMNS.search(key)
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


def custom_scalars_layout(extra_metrics: Iterable[str] = ()) -> dict[str, dict[str, list]]:
    """One page to compare heads: train/val curves of the metrics every head has, and the
    gradient split. Tags are regular expressions, so a chart takes what a run logged."""
    curves = {
        name: ["Multiline", [rf"^(train|val)/{name}$"]]
        for name in ("acc", "loss", "ece", "nll", *extra_metrics)
    }
    gradients = {
        "grad_rows other share": ["Multiline", [r"^grad_rows/other_share$"]],
        "grad_rows true vs other": ["Multiline", [r"^grad_rows/(true|other)$"]],
    }
    return {"metrics (train, val)": curves, "gradient flow": gradients}


def tensorboards(loggers: Iterable[Logger]) -> list[TensorBoardLogger]:
    return [lg for lg in loggers if isinstance(lg, TensorBoardLogger)]


@rank_zero_only  # elsewhere ``experiment`` is a dummy without a file writer
def write_layout(loggers: Iterable[Logger], extra_metrics: Iterable[str] = ()) -> None:
    """The Custom Scalars layout into each TensorBoard run, before training starts."""
    from torch.utils.tensorboard.summary import custom_scalars

    for logger in tensorboards(loggers):
        logger.experiment._get_file_writer().add_summary(
            custom_scalars(custom_scalars_layout(extra_metrics))
        )


def publish_final(
    loggers: Iterable[Logger],
    hparams: dict[str, Any],
    metrics: Mapping[str, Any],
    logged: Iterable[str],
    step: int,
) -> None:
    """Hyperparameters and the final metric columns to every logger, no duplicate scalars.

    ``logged`` names the metrics the run already logged as scalars; the other columns are
    logged once at ``step``. TensorBoard gets the hparams plugin summaries; other loggers
    their own ``log_hyperparams``.
    """
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    columns = metric_columns(metrics)
    logged = set(logged)
    unlogged = {k: v for k, v in columns.items() if k not in logged}
    for logger in loggers:
        if unlogged:
            logger.log_metrics(unlogged, step=step)
        if isinstance(logger, TensorBoardLogger):
            logger.hparams.update(hparams)  # Lightning's hparams.yaml beside the events
            writer = logger.experiment._get_file_writer()
            for summary in hparams_summaries(hparams, columns):
                writer.add_summary(summary)
        else:
            logger.log_hyperparams(hparams)
        logger.save()
