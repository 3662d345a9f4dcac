"""One training run from a composed config: fit, test, and leave ``metrics.json`` behind."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from headlab.callbacks.hooks import skip_unused_batch_hooks
from headlab.callbacks.pruning import TrialPruning
from headlab.checkpoints.config import RunConfigInCheckpoint
from headlab.files import plain_number
from headlab.layout import write_metrics
from headlab.run.checks import validate
from headlab.run.distributed import check_launch
from headlab.run.extras import route_lightning_logs
from headlab.run.instantiate import instantiate_each, instantiate_group
from headlab.run.outcome import record_outcome
from headlab.run.provenance import git_commit
from headlab.shift.analysis import SHIFT_KEYS, analyse_off_distribution
from headlab.tracking.tensorboard import publish_final, write_layout
from headlab.tracking.trackers import finish_trackers

log = logging.getLogger(__name__)

# Data lives in memory as tensors: loader workers would only add copies.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Epoch metrics are torchmetrics values, already synchronised across DDP processes.
warnings.filterwarnings("ignore", ".*when logging on epoch level in distributed setting.*")


def hparams_of(cfg: DictConfig) -> dict[str, Any]:
    """What distinguishes runs, flat: ``head``, ``model``, ``data`` (their names, e.g.
    ``sigmoid``), ``seed``, ``lr``, ``batch_size``, ``max_epochs`` and the head's own
    parameters as ``head.<name>``. TensorBoard's HPARAMS tab and the MLflow logger show it."""
    from hydra.utils import get_class

    def name_of(node: Any, fallback: str) -> str:
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        if not target:
            return fallback
        cls = get_class(target)
        return str(getattr(cls, "name", None) or cls.__name__.lower())

    model = cfg.get("model") or {}
    hparams: dict[str, Any] = {
        "head": name_of(cfg.get("head"), "none"),
        "model": name_of(model.get("backbone"), "none"),
        "data": name_of(cfg.get("data"), "none"),
        "seed": cfg.get("seed"),
        "lr": OmegaConf.select(cfg, "model.optimizer.lr"),
        "batch_size": OmegaConf.select(cfg, "data.batch_size"),
        "max_epochs": OmegaConf.select(cfg, "trainer.max_epochs"),
    }
    head = cfg.get("head")
    if isinstance(head, DictConfig):
        params = OmegaConf.to_container(head, resolve=True)
        hparams.update({f"head.{k}": v for k, v in params.items() if not k.startswith("_")})
    # TensorBoard takes numbers, strings and booleans only
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()}


def layout_metrics(target_kind: str) -> tuple[str, ...]:
    """Curves beyond acc/loss/ece/nll that the data's target kind adds to Custom Scalars."""
    return {"multi_hot": ("map", "f1_micro"), "distribution": ("kl",)}.get(target_kind, ())


def build_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    """The model for ``datamodule``: the head built once, checked against the data's target
    kinds (named in the error), and the kinds taken from the data module, their one source."""
    head = instantiate_group(cfg.head, "head")
    kinds = (datamodule.target_kind, datamodule.eval_target_kind)
    for kind in dict.fromkeys(kinds):
        head.check_fits(kind, f"data={datamodule.name}")
    return instantiate_group(
        cfg.model, "model", head=head, target_kind=kinds[0], eval_target_kind=kinds[1]
    )


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate data, model and trainer; check that the head fits the data first."""
    # nonsense numbers, an unknown shift/OOD set, a missing checkpoint: fail before anything
    validate(cfg)
    datamodule = instantiate_group(cfg.data, "data")
    model = build_model(cfg, datamodule)
    loggers = instantiate_each(cfg.get("logger"))
    # every checkpoint carries the run's config: eval, predict and resume compose from it
    callbacks = [*instantiate_each(cfg.get("callbacks")), RunConfigInCheckpoint(cfg)]
    if not loggers and any(isinstance(c, LearningRateMonitor) for c in callbacks):
        log.warning("logger=none: the learning-rate monitor has nothing to log to; left out.")
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer = instantiate_group(
        cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False
    )
    skip_unused_batch_hooks(trainer.callbacks)
    check_launch(trainer)
    return datamodule, model, trainer


def analyse(cfg, model, datamodule, trainer, output_dir: Path) -> dict[str, Any]:
    """The post-test calibration analysis (headlab.calibration.posthoc), rank 0 only."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from headlab.calibration.posthoc import Settings, post_test_analysis

    block = cfg.get("calibration")
    settings = Settings.from_config(OmegaConf.to_container(block, resolve=True) if block else {})
    boards = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    # one process saw the whole test set: reuse its logits (under DDP each saw a shard)
    test = model.test_outputs() if trainer.world_size == 1 else None
    metrics, handover = post_test_analysis(
        model, datamodule, output_dir, settings, boards=boards, step=trainer.global_step, test=test
    )
    # shifted and OOD sets (headlab.shift), after the calibration analysis: on its val and
    # test logits and its fitted calibrators (one pass over each, one fit)
    step = trainer.global_step
    metrics.update(
        analyse_off_distribution(model, datamodule, cfg, output_dir, boards, step, handover)
    )
    return metrics


@record_outcome  # metrics.json says "failed"/"interrupted" when this does not complete
def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and/or test as the config says; returns the metrics also written to metrics.json."""
    route_lightning_logs()
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    datamodule, model, trainer = build(cfg)

    write_layout(trainer.loggers, layout_metrics(model.target_kind))
    metrics: dict[str, Any] = {"status": "running"}
    logged: set[str] = set()  # metrics the loggers already have as scalars
    if cfg.get("train", True):
        log.info("Training: %s", output_dir)
        # resuming restores epoch, optimizer, schedulers and (callbacks.rng_state) the RNGs
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        for callback in trainer.callbacks:  # a DDP trial pruned during fit ends here
            if isinstance(callback, TrialPruning):
                callback.raise_if_pruned(trainer)
        metrics.update(trainer.callback_metrics)
        logged.update(trainer.callback_metrics)

    # the best-on-monitor checkpoint, not callbacks.last_checkpoint (monitor=None)
    checkpoint = next(
        (c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor), None
    )
    best = checkpoint.best_model_path if checkpoint else ""
    if cfg.get("test", True):
        # after training: the best validated weights (or the current ones); else the given ckpt
        test_ckpt = (best or None) if cfg.get("train", True) else cfg.get("ckpt_path")
        trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, weights_only=True)
        metrics.update(trainer.callback_metrics)
        logged.update(trainer.callback_metrics)
        metrics["tested_ckpt_path"] = test_ckpt or ""
        if OmegaConf.select(cfg, "calibration.enabled", default=True) and trainer.is_global_zero:
            output_dir.mkdir(parents=True, exist_ok=True)  # logger=none made no folder
            metrics.update(analyse(cfg, model, datamodule, trainer, output_dir))

    metrics["best_ckpt_path"] = best
    if checkpoint is not None and checkpoint.best_model_score is not None:
        metrics[f"best/{checkpoint.monitor}"] = checkpoint.best_model_score
    metrics["epochs"] = trainer.current_epoch
    metrics["git_commit"] = git_commit()  # the comparison report states it
    metrics["status"] = "completed"
    metrics = {k: plain_number(v) for k, v in metrics.items()}
    if trainer.is_global_zero:
        write_metrics(output_dir, metrics)
        publish_final(
            trainer.loggers,
            hparams_of(cfg),
            metrics,
            logged,
            trainer.global_step,
            model.eval_target_kind,
        )
        finish_trackers(trainer.loggers, output_dir, OmegaConf.to_container(cfg, resolve=True))
        shown = {k: v for k, v in metrics.items() if "/" in k and not k.startswith(SHIFT_KEYS)}
        log.info("Metrics: %s", shown)
    return metrics
