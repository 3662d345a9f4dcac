"""The LightningModule: backbone -> last linear layer -> head, one step for every stage."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from headlab.checkpoints.identity import IDENTITY_KEY, check_identity, identity
from headlab.errors import RunError
from headlab.heads import TARGET_KINDS, Head, SoftmaxCE
from headlab.metrics.stage import EpochSnapshot, StageMetrics
from headlab.metrics.thresholds import THRESHOLD_KEYS, TUNED_KEYS, TunedThresholdF1

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]
STAGES = ("train", "val", "test")
#: training batches handed to the train metrics at once (``StageMetrics.update_every``)
TRAIN_METRICS_EVERY = 16
#: checkpoint entry holding the multi-label threshold chosen on that epoch's validation
THRESHOLD_KEY = "headlab_tuned_threshold"
THRESHOLD_MACRO_KEY = "headlab_tuned_threshold_macro"


_COMPILED = "_orig_mod."  # what torch.compile's wrapper puts into parameter names


def compiled_keys(state: dict[str, Any], compiled: bool) -> dict[str, Any]:
    """``state`` with the backbone's names as a compiled (``backbone._orig_mod.x``) or an
    uncompiled (``backbone.x``) model has them, whichever way the state was saved."""
    plain = {key.replace(_COMPILED, ""): value for key, value in state.items()}
    if not compiled:
        return plain
    return {
        key.replace("backbone.", f"backbone.{_COMPILED}", 1)
        if key.startswith("backbone.")
        else key: value
        for key, value in plain.items()
    }


class TargetKindMismatch(RunError, ValueError):
    """A batch's targets are not of the kind the model was configured for."""


def kind_of(target: torch.Tensor) -> str:
    """The kind a target tensor looks like from its dtype and shape alone."""
    if target.ndim == 1 and not target.is_floating_point():
        return "index"
    if target.ndim == 2:
        return "distribution" if target.is_floating_point() else "multi_hot"
    return f"no kind (shape {tuple(target.shape)})"


def check_target(target: torch.Tensor, kind: str, num_classes: int) -> None:
    """Fail on targets that contradict ``kind``, e.g. a distribution given to an index model.

    Only dtype and shape are read (tensor metadata, no device sync): well under a microsecond
    against a ~5 ms step. Multi-hot targets may also come as floats (0./1.).
    """
    shape_ok = target.ndim == 1 if kind == "index" else target.shape[1:] == (num_classes,)
    if kind == "index":
        dtype_ok = not target.is_floating_point()
    elif kind == "distribution":
        dtype_ok = target.is_floating_point()
    else:
        dtype_ok = True
    if not (shape_ok and dtype_ok):
        seen = kind_of(target)
        raise TargetKindMismatch(
            f"the model expects '{kind}' targets but got '{seen}' targets "
            f"({target.dtype}, shape {tuple(target.shape)}): the model takes its kinds from "
            f"the data module's target_kind (build it with headlab.run.train.build_model(cfg, "
            f"datamodule)); a Classifier built by hand takes Classifier(..., "
            f"target_kind='{seen if seen in TARGET_KINDS else '...'}'), or pass targets of "
            f"kind '{kind}'."
        )


class Classifier(L.LightningModule):
    """``model(x)`` gives logits; the head turns them into probabilities and a loss.

    ``target_kind`` says what a batch's targets are; the data module declares it and
    ``headlab.run.train.build_model(cfg, datamodule)`` passes it in. When fitted with another
    data module it takes that one's kinds at ``setup``; a bare ``Classifier(...)`` fitted on
    plain loaders takes the kind of its first batch (class indices until then). Validation and
    test may have their own ``eval_target_kind`` (soft_mnist trained on hard labels is still
    measured against the distributions). A target whose dtype or shape contradicts the kind
    fails the step.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: Head | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        num_classes: int = 10,
        target_kind: str | None = None,
        eval_target_kind: str | None = None,
        n_bins: int = 15,
        min_bin_count: int = 30,
        compile: bool = False,
    ) -> None:
        super().__init__()
        # torch.compile before the Trainer sees the model (as Lightning advises), on the
        # backbone only: the head, metrics and logging stay eager
        self.compiled = bool(compile)
        self.backbone = torch.compile(backbone) if compile else backbone
        self.classifier = nn.Linear(backbone.out_features, num_classes)
        self.head = head or SoftmaxCE()
        self.optimizer_factory = optimizer or torch.optim.Adam
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.num_classes = num_classes
        self.n_bins, self.min_bin_count = n_bins, min_bin_count
        #: False for a bare ``Classifier(...)`` fitted without a data module that declares the
        #: kind: the first batch's targets decide it (then it is checked as usual)
        self.kind_declared = target_kind is not None
        target_kind = target_kind or "index"
        self._build_metrics(target_kind, eval_target_kind or target_kind)

    def _build_metrics(self, target_kind: str, eval_target_kind: str) -> None:
        for key, kind in (("target_kind", target_kind), ("eval_target_kind", eval_target_kind)):
            if kind not in TARGET_KINDS:
                raise ValueError(f"{key} must be one of {list(TARGET_KINDS)}, got {kind!r}")
        self.head.check_fits(target_kind)
        self.head.check_fits(eval_target_kind)
        self.target_kind, self.eval_target_kind = target_kind, eval_target_kind
        for stage in STAGES:  # attributes, not a ModuleDict: "train" is an nn.Module method
            metrics = StageMetrics(
                self.kind_for(stage),
                self.num_classes,
                calibration=stage != "train",
                exclusive=self.head.exclusive,
                threshold=self.head.threshold,
                n_bins=self.n_bins,
                min_bin_count=self.min_bin_count,
                update_every=TRAIN_METRICS_EVERY if stage == "train" else 1,
            )
            if stage != "train" and self.kind_for(stage) == "multi_hot":
                # val picks the threshold maximising F1 micro, test scores the val-chosen one
                metrics.classification.add_metrics({"tuned": TunedThresholdF1(self.num_classes)})
            setattr(self, f"{stage}_metrics", metrics)
        #: the multi-label threshold chosen on the last validation epoch (saved in checkpoints)
        self.tuned_threshold: float | None = getattr(self, "tuned_threshold", None)
        #: the same for F1 macro
        self.tuned_threshold_macro: float | None = getattr(self, "tuned_threshold_macro", None)
        #: the last computed epoch per stage (``snapshot``), for the figure callback
        self.epoch_snapshots: dict[str, EpochSnapshot] = {}
        #: the last test epoch's logits and targets, for the post-test analysis (``test_outputs``)
        self._test_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def snapshot(self, stage: str) -> EpochSnapshot | None:
        """The reliability sums and probability sums of ``stage``'s last computed epoch."""
        return self.epoch_snapshots.get(stage)

    def test_outputs(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Logits (float32) and targets of the last test epoch on CPU, in loader order: the
        post-test analysis reuses them instead of a second pass over the test set."""
        if not self._test_outputs:
            return None
        logits, targets = zip(*self._test_outputs, strict=True)
        return torch.cat(logits).float().cpu(), torch.cat(targets).cpu()

    def kind_for(self, stage: str) -> str:
        return self.target_kind if stage == "train" else self.eval_target_kind

    def metrics_for(self, stage: str) -> StageMetrics:
        return getattr(self, f"{stage}_metrics")

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        kind = getattr(datamodule, "target_kind", self.target_kind)
        eval_kind = getattr(datamodule, "eval_target_kind", kind)
        if (kind, eval_kind) != (self.target_kind, self.eval_target_kind):
            self._build_metrics(kind, eval_kind)
        self.kind_declared = self.kind_declared or hasattr(datamodule, "target_kind")

    def _kind_from_first_batch(self, target: torch.Tensor) -> str:
        """The undeclared kind, taken from the first batch seen and fixed from then on."""
        seen = kind_of(target)
        self.kind_declared = True
        if seen in TARGET_KINDS and seen != self.target_kind:
            self._build_metrics(seen, seen)
            for stage in STAGES:
                self.metrics_for(stage).to(self.device)
        return self.target_kind

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(images))

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, target = batch
        kind = self.kind_for(stage)
        if not self.kind_declared:
            kind = self._kind_from_first_batch(target)
        check_target(target, kind, self.num_classes)
        logits = self(images)
        loss = self.head.loss(logits, target, kind)
        self.metrics_for(stage).update(loss, self.head.probs(logits.detach()), target)
        if stage == "test":
            self._test_outputs.append((logits.detach(), target))
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self.head.probs(self(batch[0]))

    def _log_epoch(self, stage: str) -> None:
        # Computed once per epoch (torchmetrics syncs across processes); per-step self.log
        # calls would double the cost of an MNIST step.
        metrics = self.metrics_for(stage)
        values, self.epoch_snapshots[stage] = metrics.compute(stage)
        self._tuned_threshold_values(stage, values)
        shown = {f"{stage}/acc", f"{stage}/loss", f"{stage}/ece"}
        # callbacks.TrainCurves logs these every N steps: their epoch means skip the loggers
        curves = getattr(self, "curve_tags", set()) if stage == "train" else set()
        bar = stage != "train"
        self.log_dict({k: v for k, v in values.items() if k in shown - curves}, prog_bar=bar)
        self.log_dict({k: v for k, v in values.items() if k not in shown | curves})
        self.log_dict({k: v for k, v in values.items() if k in curves}, logger=False)
        metrics.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_test_epoch_start(self) -> None:
        self._test_outputs = []
        if "tuned" in self.test_metrics.classification:
            tuned = self.test_metrics.classification["tuned"]
            tuned.threshold = self.tuned_threshold
            # from a checkpoint of before the macro threshold: macro at the micro one
            tuned.threshold_macro = self.tuned_threshold_macro or self.tuned_threshold

    def _tuned_threshold_values(self, stage: str, values: dict[str, torch.Tensor]) -> None:
        """Keep val's chosen threshold; test reports F1 only at that one, or not at all."""
        if f"{stage}/best_threshold" not in values:
            return
        if stage == "val":
            self.tuned_threshold = float(values["val/best_threshold"])
            self.tuned_threshold_macro = float(values["val/best_threshold_macro"])
            return
        micro, macro = (float(values.pop(f"{stage}/{key}")) for key in THRESHOLD_KEYS)
        if stage == "test" and self.tuned_threshold is None:
            for key in TUNED_KEYS:
                values.pop(f"{stage}/{key}", None)
            log.warning("No threshold chosen on validation: test/f1_*_tuned not reported.")
        else:
            log.info(
                "test/f1_micro_tuned at threshold %.3f, test/f1_macro_tuned at %.3f, both "
                "chosen on validation",
                micro,
                macro,
            )

    def _identity(self) -> dict[str, str]:
        return identity(self.head, getattr(self._trainer, "datamodule", None))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[IDENTITY_KEY] = self._identity()
        checkpoint[THRESHOLD_KEY] = self.tuned_threshold
        checkpoint[THRESHOLD_MACRO_KEY] = self.tuned_threshold_macro
        # always the uncompiled names: a checkpoint loads whether or not model.compile is on
        checkpoint["state_dict"] = compiled_keys(checkpoint["state_dict"], compiled=False)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # before the weights are loaded: a swapped head fits the same tensor shapes
        source = getattr(self._trainer, "ckpt_path", None) or "the checkpoint"
        check_identity(checkpoint.get(IDENTITY_KEY), self._identity(), str(source))
        self.tuned_threshold = checkpoint.get(THRESHOLD_KEY)
        self.tuned_threshold_macro = checkpoint.get(THRESHOLD_MACRO_KEY)
        checkpoint["state_dict"] = compiled_keys(checkpoint["state_dict"], self.compiled)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }
