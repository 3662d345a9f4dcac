"""TensorBoard made for comparing runs: a curated HPARAMS tab, a Custom Scalars page and the
test metrics as a text table.

Lightning's ``TensorBoardLogger.log_hyperparams(params, metrics)`` also writes every metric
as a scalar, which gave one ``hp/*`` chart per final metric. The hparams plugin only needs
its summaries (experiment, session start, session end) in the run's own event file and reads
each metric column from the run's scalar of the same tag, so they are written here directly
(``tracking.hparams``); a final metric that was never logged as a scalar (post-hoc
calibration, ``best/val/acc``) is logged once, under its own name, at the last step. A sweep's
jobs write no experiment definition: the sweep writes one for all of them at its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from headlab.tables import markdown_table as table
from headlab.tracking.hparams import (
    DEFAULT_COLUMNS,
    experiment_summary,
    final_scalars,
    meaningful,
    metric_columns,
    session_hparams,
    session_summaries,
)
from headlab.tracking.trial import in_multirun, trial_name

#: the text-plugin tag of a run's test metrics table
TEST_TABLE_TAG = "test/metrics"


def custom_scalars_layout(extra_metrics: Iterable[str] = ()) -> dict[str, dict[str, list]]:
    """One page to compare heads: the curves every head has, and the gradient split. Tags are
    regular expressions matching only tags a run writes (train has no calibration)."""
    curves = {name: ["Multiline", [rf"^(train|val)/{name}$"]] for name in ("acc", "loss")}
    curves.update({name: ["Multiline", [rf"^val/{name}$"]] for name in ("ece", "nll")})
    curves.update({name: ["Multiline", [rf"^(train|val)/{name}$"]] for name in extra_metrics})
    gradients = {
        "grad_rows other share": ["Multiline", [r"^grad_rows/other_share$"]],
        "grad_rows true vs other": ["Multiline", [r"^grad_rows/(true|other)$"]],
    }
    return {"metrics (train every N steps, val per epoch)": curves, "gradient flow": gradients}


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


def markdown_table(values: Mapping[str, float], title: str = "") -> str:
    """``| metric | value |`` rows, the default HPARAMS columns first (TensorBoard's text
    plugin renders Markdown tables)."""
    keys = [k for k in DEFAULT_COLUMNS if k in values]
    keys += sorted(k for k in values if k not in keys)
    lines = [f"**{title}**", ""] if title else []
    lines += table(["metric", "value"], [[key, f"{values[key]:.6g}"] for key in keys])
    return "\n".join(lines)


def publish_final(
    loggers: Iterable[Logger],
    hparams: dict[str, Any],
    metrics: Mapping[str, Any],
    logged: Iterable[str],
    step: int,
    target_kind: str = "index",
) -> None:
    """Hyperparameters and the final metric columns to every logger, no duplicate scalars.

    ``logged`` names the metrics the run already logged as scalars; the other final values
    are logged once at ``step``. TensorBoard gets the hparams plugin summaries (the
    experiment definition only outside a sweep) and the test metrics as a text table; other
    loggers their own ``log_hyperparams``.
    """
    from lightning.pytorch.core.saving import save_hparams_to_yaml

    scalars = final_scalars(metrics)
    logged = set(logged)
    unlogged = {k: v for k, v in scalars.items() if k not in logged}
    board_hparams = session_hparams(hparams, target_kind)
    hparams = meaningful(hparams, target_kind)
    trial = trial_name()
    test = {k: v for k, v in scalars.items() if k.startswith("test/")}
    for logger in loggers:
        if unlogged:
            logger.log_metrics(unlogged, step=step)
        if isinstance(logger, TensorBoardLogger):
            logger.hparams.update(hparams)  # hparams.yaml: the run's own, no "-" entries
            # Lightning writes hparams.yaml at its first save (still empty) and never again
            Path(logger.log_dir).mkdir(parents=True, exist_ok=True)
            save_hparams_to_yaml(Path(logger.log_dir) / "hparams.yaml", dict(logger.hparams))
            writer = logger.experiment._get_file_writer()
            if not in_multirun():
                writer.add_summary(experiment_summary([board_hparams], metric_columns(scalars)))
            for summary in session_summaries(board_hparams, trial):
                writer.add_summary(summary)
            if test:
                title = f"{trial or 'this run'}: test metrics"
                logger.experiment.add_text(TEST_TABLE_TAG, markdown_table(test, title), step)
        else:
            logger.log_hyperparams(hparams)
        logger.save()
