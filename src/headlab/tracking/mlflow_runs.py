"""What an MLflow run holds besides Lightning's per-epoch metrics: a name from the overrides,
the whole resolved config (flattened params and ``config.yaml``), the run's result files, and
a parent run per sweep that its jobs' runs nest under.

The parent's id is kept in ``<sweep>/mlflow_parent_run.txt`` (written by the
``sweeps.mlflow_parent`` Hydra callback before the first job), so each job finds it on disk
whatever launcher ran it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headlab.tracking.trial import hydra_runtime, in_multirun, sweep_dir

log = logging.getLogger(__name__)

PARENT_FILE = "mlflow_parent_run.txt"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag for nesting a run under another
#: MLflow 3's UI opens an experiment on its kind: without this tag it guesses, and may open
#: the GenAI traces view or ask; "custom_model_development" opens the runs table
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
#: result files of the run folder that become artifacts (figures are added by pattern)
RESULT_FILES = ("calibration.json", "test_predictions.npz")
#: where ``logger.mlflow.log_model=true`` puts the best checkpoint among the artifacts
CHECKPOINT_DIR = "checkpoints"
#: MLflow takes at most this many params per call
BATCH = 100


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model.optimizer.lr": "0.001", ...}``: every leaf of the resolved config, with the
    dotted keys an override would use."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_config(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return flat


def parent_run_id() -> str | None:
    """The sweep's parent run id, for a job of a sweep that has one."""
    hydra = hydra_runtime()
    if hydra is None or not in_multirun():
        return None
    path = sweep_dir(hydra) / PARENT_FILE
    return path.read_text().strip() if path.is_file() else None


def open_in_runs_view(client, experiment_id: str) -> None:
    """Tag the experiment so that MLflow's UI opens it on its runs; a kind already set (by
    the user, in the UI) is kept."""
    experiment = client.get_experiment(experiment_id)
    if KIND_TAG not in experiment.tags:
        client.set_experiment_tag(experiment_id, KIND_TAG, KIND)


def announce(logger) -> None:
    """Tag the run's experiment for the runs view; one line with the run id and where to
    look at it."""
    open_in_runs_view(logger.experiment, logger.experiment_id)
    uri = logger._tracking_uri
    ui = uri if "://" in uri and not uri.startswith(("sqlite:", "file:")) else None
    where = f"{ui}/#/experiments/{logger.experiment_id}/runs/{logger.run_id}" if ui else uri
    log.info(
        "MLflow run %s (%s) in %s; to browse: mlflow ui --backend-store-uri %s",
        logger.run_id,
        logger._run_name or "unnamed",
        where,
        uri,
    )


def log_config(logger, config: Mapping[str, Any]) -> None:
    """The resolved config as params (dotted keys, values cut at MLflow's limit) and as the
    artifact ``config.yaml``."""
    import yaml
    from mlflow.entities import Param
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    client, run = logger.experiment, logger.run_id
    params = [Param(k, v[:MAX_PARAM_VAL_LENGTH]) for k, v in flat_config(config).items()]
    logged = client.get_run(run).data.params  # hparams already there: never re-logged
    params = [p for p in params if p.key not in logged]
    for start in range(0, len(params), BATCH):
        client.log_batch(run, params=params[start : start + BATCH])
    client.log_text(run, yaml.safe_dump(dict(config), sort_keys=False), "config.yaml")


def log_results(logger, output_dir: Path, metrics_file: Path) -> None:
    """Figures, calibration.json, the test predictions, the best checkpoint when asked for,
    and metrics.json (without the local checkpoint paths, which mean nothing where the
    artifacts are read)."""
    client, run = logger.experiment, logger.run_id
    files = sorted(output_dir.glob("*.png")) + [output_dir / f for f in RESULT_FILES]
    for path in files:
        if path.is_file():
            client.log_artifact(run, str(path))
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        best = metrics.get("best_ckpt_path")
        if getattr(logger, "upload_best_checkpoint", False) and best and Path(best).is_file():
            client.log_artifact(run, best, CHECKPOINT_DIR)
        shared = {k: v for k, v in metrics.items() if not k.endswith("_ckpt_path")}
        client.log_text(run, json.dumps(shared, indent=2), metrics_file.name)
    restamp_end(logger)


def restamp_end(logger) -> None:
    """End the run again, now: Lightning ends it after ``trainer.test``, before the
    post-test and off-distribution metrics are logged (``board.publish_final``), so its end
    time would precede its own final metrics."""
    client, run = logger.experiment, logger.run_id
    status = client.get_run(run).info.status
    if status != "RUNNING":  # still running: whoever ends it stamps the time
        client.set_terminated(run, status)
