"""Hydra callback: one MLflow parent run per sweep, under which the jobs' runs nest.

Created before the first job (its id in ``<sweep>/mlflow_parent_run.txt``, which each job's
``tracking.trackers.mlflow_logger`` reads), ended with the sweep, with ``summary.csv`` as
its artifact. Does nothing unless the sweep's config has ``logger.mlflow``.

Kept free of mlflow/torch imports at module level: Hydra instantiates callbacks at every start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from headlab.tracking.mlflow_runs import PARENT_FILE, open_in_runs_view

log = logging.getLogger(__name__)


def _client(config: DictConfig):
    node = OmegaConf.select(config, "logger.mlflow")
    if node is None:
        return None, None
    from mlflow.tracking import MlflowClient

    from headlab.tracking.trackers import check_local_store

    check_local_store(node.tracking_uri)
    return MlflowClient(tracking_uri=node.tracking_uri), node


class MlflowParentRun(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            client, node = _client(config)
            if client is None:
                return
            sweep_dir = Path(config.hydra.sweep.dir)
            experiment = client.get_experiment_by_name(node.experiment_name)
            experiment_id = (
                experiment.experiment_id
                if experiment
                else client.create_experiment(
                    node.experiment_name, artifact_location=node.get("artifact_location")
                )
            )
            open_in_runs_view(client, experiment_id)
            name = f"{config.get('task_name', 'sweep')} {sweep_dir.name}"
            tags = {"sweep_dir": str(sweep_dir)}
            run = client.create_run(experiment_id, run_name=name, tags=tags)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            (sweep_dir / PARENT_FILE).write_text(run.info.run_id)
            log.info("MLflow parent run %s (%s) for this sweep", run.info.run_id, name)
        except Exception as err:  # the jobs' own runs still work, only not nested
            log.warning("No MLflow parent run: %s: %s", type(err).__name__, err)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        record = sweep_dir / PARENT_FILE
        if not record.is_file():
            return
        try:
            client, _ = _client(config)
            run_id = record.read_text().strip()
            summary = sweep_dir / "summary.csv"
            if summary.is_file():
                client.log_artifact(run_id, str(summary))
            client.set_terminated(run_id)
        except Exception as err:
            log.warning("MLflow parent run not ended: %s: %s", type(err).__name__, err)
