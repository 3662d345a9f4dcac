"""The headline off-distribution numbers where people compare runs: TensorBoard scalars,
HPARAMS metric columns and MLflow metrics logged before the MLflow run's end time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headlab.tracking.hparams import DEFAULT_COLUMNS, final_scalars, metric_columns

HEADLINE = {
    "shift/rotation/60/acc": 0.3,
    "shift/rotation/60/ece": 0.4,
    "shift/corruption/mean/ece": 0.2,
    "ood/letters/msp/auroc": 0.9,
    "ood/inverted/msp/auroc": 0.7,
    "ood/letters/none_of_the_above": 0.3,
}
NOT_HEADLINE = {
    "shift/rotation/45/acc": 0.5,
    "shift/rotation/60/ece_ci_low": 0.3,
    "shift/rotation/60/ece_temperature": 0.35,
    "shift/corruption/fog/ece": 0.1,
    "ood/letters/energy/auroc": 0.95,
    "ood/letters/msp/fpr95": 0.4,
    "ood/letters/none_of_the_above_ci_low": 0.2,
}


def test_only_the_headline_off_distribution_numbers_become_scalars_and_columns():
    metrics = {"test/acc": 0.9, "test/ece": 0.02, "val/acc": 0.9, **HEADLINE, **NOT_HEADLINE}
    scalars = final_scalars(metrics)
    assert set(scalars) == {"test/acc", "test/ece", "val/acc", *HEADLINE}
    columns = metric_columns(scalars)
    assert columns == [
        *(c for c in DEFAULT_COLUMNS if c in metrics),
        "shift/corruption/mean/ece",
        "shift/rotation/60/acc",
        "shift/rotation/60/ece",
        "ood/inverted/msp/auroc",
        "ood/letters/msp/auroc",
        "ood/letters/none_of_the_above",
        "val/acc",
    ]


@pytest.mark.slow
def test_a_run_sends_its_headline_to_tensorboard_hparams_and_mlflow(tiny_cfg, tmp_path: Path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from headlab.run.train import train

    store = f"sqlite:///{tmp_path}/store/mlflow.db"
    shift = [
        "shift.rotation=[0,60]",
        "shift.translation=[]",
        "shift.corruptions=[fog]",
        "shift.digits=false",
        "shift.ood=[letters]",
        "shift.bootstrap=0",
        "shift.ood_bootstrap=0",
        "shift.figures=false",
        "trainer.max_epochs=1",
    ]
    train(
        tiny_cfg(
            "logger=many",
            *shift,
            f"logger.mlflow.tracking_uri={store}",
            f"logger.mlflow.artifact_location={tmp_path}/store/artifacts",
        )
    )
    written = json.loads((tmp_path / "metrics.json").read_text())
    expected = [
        "shift/rotation/60/acc",
        "shift/rotation/60/ece",
        "shift/corruption/mean/ece",
        "ood/letters/msp/auroc",
    ]

    (events,) = {p.parent for p in (tmp_path / "tensorboard").rglob("events.out.tfevents.*")}
    board = EventAccumulator(str(events), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    tags = set(board.Tags()["scalars"])
    for key in expected:
        assert key in tags, key
        assert board.Scalars(key)[-1].value == pytest.approx(written[key], rel=1e-6)
    assert "shift/rotation/0/acc" not in tags

    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("headlab").experiment_id])
    assert run.info.status == "FINISHED"
    for key in expected:
        (entry,) = client.get_metric_history(run.info.run_id, key)
        assert entry.value == pytest.approx(written[key])
        assert entry.timestamp <= run.info.end_time, key


def test_headline_keys_are_named_once_below_shift_and_tracking():
    """The default OOD score and the 60° angle live in ``layout.headline``: shift writes by
    them and tracking matches by them, so changing one changes both (tracking may not import
    shift, and used to repeat both in its own regex)."""
    import inspect

    from headlab.layout import headline
    from headlab.shift import analysis, settings
    from headlab.tracking import hparams

    assert hparams.HEADLINE is headline.HEADLINE
    assert analysis.CONFIDENCE_ANGLE is headline.CONFIDENCE_ANGLE
    assert settings.Settings().interval_scores == (headline.DEFAULT_SCORE,)
    source = inspect.getsource(hparams)
    assert "msp" not in source and "rotation/60" not in source
    written = [*headline.HEADLINE_SHIFT, f"ood/fashion_mnist/{headline.DEFAULT_SCORE}/auroc"]
    assert all(headline.is_headline(key) for key in written)
    assert not headline.is_headline(f"ood/letters/{headline.DEFAULT_SCORE}/auroc_ci_low")
