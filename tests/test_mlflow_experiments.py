"""MLflow experiments made by headlab open on their runs in MLflow 3's UI: the experiment
kind tag, set by a run's logger and by a sweep's parent run, and never over a user's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

pytest.importorskip("mlflow")


@pytest.mark.slow  # MLflow creates its SQLite store (a minute and more on a loaded machine)
def test_experiments_are_tagged_for_the_runs_view_unless_the_user_chose(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    from headlab.sweeps.mlflow_parent import MlflowParentRun
    from headlab.tracking.trackers import mlflow_logger

    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    client = MlflowClient(tracking_uri=uri)

    def kind(name: str) -> str | None:
        return client.get_experiment_by_name(name).tags.get("mlflow.experimentKind")

    logger = mlflow_logger(uri, experiment_name="runs", artifact_location=str(tmp_path / "a"))
    client.set_terminated(logger.run_id)
    assert kind("runs") == "custom_model_development"  # the value MLflow 3.x's UI knows

    sweep = OmegaConf.create(
        {"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}, "task_name": "train"}
    )
    sweep.logger = {"mlflow": {"tracking_uri": uri, "experiment_name": "sweeps"}}
    MlflowParentRun().on_multirun_start(sweep)
    assert kind("sweeps") == "custom_model_development"

    chosen = client.create_experiment("chosen", tags={"mlflow.experimentKind": "genai_development"})
    logger = mlflow_logger(uri, experiment_name="chosen")
    client.set_terminated(logger.run_id)
    assert client.get_experiment(chosen).tags["mlflow.experimentKind"] == "genai_development"
