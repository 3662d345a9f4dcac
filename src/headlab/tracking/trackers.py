"""The optional experiment trackers (MLflow, Weights & Biases) and what every logger gets at
the end of a run.

The factories are what ``configs/logger/*.yaml`` instantiate: they check, before any data is
loaded, that the tracker's package is installed (else one line naming the extra) and, for
MLflow, that its store takes a run (else one line naming the URI), so no training is lost
to a logging failure at the end.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from headlab.errors import RunError


class MissingExtra(RunError, ImportError):
    """An optional logger's package is not installed."""


class TrackingStoreError(RunError):
    """The MLflow tracking store cannot take a run."""


def require(package: str, option: str, extra: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise MissingExtra(
            f"logger={option} needs the '{package}' package: pip install -e '.[{extra}]' "
            "(or choose another logger, e.g. logger=tensorboard)."
        )


def local_store_path(tracking_uri: str) -> Path | None:
    """The file or folder behind a local URI (``sqlite:///x.db``, ``file:x``, a path); None
    for a server."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///"))
    if tracking_uri.startswith("file:"):
        return Path(tracking_uri.removeprefix("file:").removeprefix("//"))
    if "://" in tracking_uri:
        return None
    return Path(tracking_uri)


def check_local_store(tracking_uri: str) -> None:
    """The folder of a local store must exist (it is made) and take a file."""
    path = local_store_path(tracking_uri)
    if path is None:
        return
    folder = path.parent if tracking_uri.startswith("sqlite:") else path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".headlab_write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise TrackingStoreError(
            f"logger.mlflow.tracking_uri={tracking_uri} cannot be written ({err.strerror or err}"
            f": {err.filename or folder}): pass a writable one, e.g. "
            "logger.mlflow.tracking_uri=sqlite:///logs/mlflow/mlflow.db"
        ) from err


def mlflow_logger(
    tracking_uri: str, run_name: str | None = None, default_run_name: str = "", **kwargs: Any
):
    """Lightning's ``MLFlowLogger``, with its run created now: a store that cannot take one
    fails here, before training, instead of after it.

    Without a ``run_name`` the run is named by its overrides (``003 head=soft,seed=2`` in a
    sweep, see ``tracking.trial``), else ``default_run_name``; a sweep's job runs nest under
    the sweep's parent run. The run id and where to see it are logged at once.
    """
    require("mlflow", "mlflow", "mlflow")
    check_local_store(tracking_uri)
    from lightning.pytorch.loggers import MLFlowLogger

    from headlab.tracking.mlflow_runs import PARENT_TAG, announce, parent_run_id
    from headlab.tracking.trial import trial_name

    tags = dict(kwargs.pop("tags", None) or {})
    parent = parent_run_id()
    if parent:
        tags[PARENT_TAG] = parent
    run_name = run_name or trial_name(default_run_name) or None
    # log_model=true: the best checkpoint at the end (finish_trackers); Lightning's own would
    # upload whichever checkpoint callback saved last. "all" stays Lightning's: every save.
    log_model = kwargs.pop("log_model", False)
    logger = MLFlowLogger(
        tracking_uri=tracking_uri,
        run_name=run_name,
        tags=tags,
        log_model="all" if log_model == "all" else False,
        **kwargs,
    )
    logger.upload_best_checkpoint = log_model is True
    try:
        _ = logger.run_id  # creates the experiment (if new) and the run
    except Exception as err:  # MLflow raises its own, SQLAlchemy's or requests' errors
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise TrackingStoreError(
            f"logger.mlflow.tracking_uri={tracking_uri} takes no run ({type(err).__name__}: "
            f"{first_line}): pass a writable store or start the tracking server."
        ) from err
    announce(logger)
    return logger


def wandb_logger(name: str | None = None, default_name: str = "", **kwargs: Any):
    """Lightning's ``WandbLogger`` (offline unless ``logger.wandb.offline=false``).

    Without a ``name`` the run is named as MLflow's: by its overrides (``003 head=soft,
    seed=2`` in a sweep), else ``default_name``; a whole sweep no longer shares one name."""
    require("wandb", "wandb", "wandb")
    from lightning.pytorch.loggers import WandbLogger

    from headlab.tracking.trial import trial_name

    Path(kwargs.get("save_dir", ".")).mkdir(parents=True, exist_ok=True)
    return WandbLogger(name=name or trial_name(default_name) or None, **kwargs)


def finish_trackers(
    loggers: Iterable[Any], output_dir: str | Path, config: Mapping[str, Any] | None = None
) -> None:
    """At the end of a run (after ``board.publish_final``): to MLflow the resolved ``config``
    (params and ``config.yaml``) and the run folder's figures, calibration.json, predictions
    and metrics.json as artifacts; the W&B run finished, else the next job of a sweep would
    reuse it."""
    from lightning.pytorch.loggers import MLFlowLogger, WandbLogger

    from headlab.layout import metrics_path
    from headlab.tracking.mlflow_runs import log_config, log_results

    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            if config is not None:
                log_config(logger, config)
            log_results(logger, Path(output_dir), metrics_path(output_dir))
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
