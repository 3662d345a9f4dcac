"""logger=mlflow, wandb and many: what each tracker receives, and the one-line failures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from headlab.run.train import train
from headlab.tracking.trackers import MissingExtra, TrackingStoreError, require


def mlflow_overrides(tmp_path: Path) -> list[str]:
    return [
        f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/store/mlflow.db",
        f"logger.mlflow.artifact_location={tmp_path}/store/artifacts",
    ]


@pytest.mark.slow
def test_mlflow_run_holds_params_epoch_metrics_and_artifacts(tiny_cfg, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    cfg = tiny_cfg("logger=mlflow", "trainer.max_epochs=3", *mlflow_overrides(tmp_path))
    metrics = train(cfg)
    assert metrics["status"] == "completed"

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/store/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("headlab").experiment_id])
    assert run.info.status == "FINISHED"
    assert "head" in {key.split("/")[0] for key in run.data.params}
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert len(history) == 3  # one entry per epoch
    assert history[-1].value == pytest.approx(metrics["val/acc"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"reliability_test.png", "metrics.json"} <= artifacts


@pytest.mark.slow
def test_many_logs_to_tensorboard_csv_and_mlflow(tiny_cfg, tmp_path: Path):
    train(tiny_cfg("logger=many", "trainer.max_epochs=1", *mlflow_overrides(tmp_path)))
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert "val/acc" in (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert (tmp_path / "csv" / "hparams.yaml").is_file()
    assert (tmp_path / "store" / "mlflow.db").is_file()


def test_unwritable_tracking_uri_fails_before_training(tiny_cfg, tmp_path: Path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # a file where the store's folder should be: no one can write there
    cfg = tiny_cfg("logger=mlflow", f"logger.mlflow.tracking_uri=sqlite:///{blocker}/mlflow.db")
    with pytest.raises(
        TrackingStoreError, match=r"logger\.mlflow\.tracking_uri=sqlite:///.*a_file"
    ):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()  # nothing was trained


@pytest.mark.slow
def test_wandb_offline_run_directory_is_written(tiny_cfg, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    metrics = train(tiny_cfg("logger=wandb", "trainer.max_epochs=1"))
    assert metrics["status"] == "completed"
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert list(run_dir.glob("run-*.wandb"))  # the run's records, ready for `wandb sync`
    import wandb

    assert wandb.run is None  # finished at the end of the run: the next one starts afresh


def test_wandb_run_is_named_like_mlflows(tmp_path: Path, monkeypatch):
    pytest.importorskip("wandb")
    from headlab.tracking import trial
    from headlab.tracking.trackers import wandb_logger

    def logger(**kw):
        return wandb_logger(save_dir=str(tmp_path), offline=True, **kw)

    assert logger(default_name="train")._wandb_init["name"] == "train"  # a plain run
    assert logger(name="mine", default_name="train")._wandb_init["name"] == "mine"
    monkeypatch.setattr(trial, "trial_name", lambda default="": "003 head=soft,seed=2")
    assert logger(default_name="train")._wandb_init["name"] == "003 head=soft,seed=2"


@pytest.mark.parametrize("package,extra", [("mlflow", "mlflow"), ("wandb", "wandb")])
def test_a_missing_tracker_package_names_the_extra(monkeypatch, package, extra):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a)
    )
    with pytest.raises(MissingExtra, match=rf"pip install -e '\.\[{extra}\]'"):
        require(package, package, extra)
