"""After testing: collect val/test logits once, then estimators with bootstrap intervals,
post-hoc calibrators fitted on val and scored on test, selective prediction, figures, and the
files that let anyone recompute (``test_predictions.npz``, ``calibration.json``).

Runs on rank 0 only, after ``trainer.test``: training steps cost nothing extra.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from headlab.calibration import PREDICTIONS_FILE
from headlab.calibration.bins import MIN_BIN_COUNT, N_BINS, ReliabilityBins
from headlab.calibration.bootstrap import resample_index
from headlab.calibration.calibrators import (
    METHODS,
    CalibrationFailed,
    Calibrator,
    fit_calibrator,
    params_as_json,
)
from headlab.calibration.consistency import TESTED as CONSISTENCY_TESTED
from headlab.calibration.consistency import p_calibrated
from headlab.calibration.estimators import ECE_TYPE, ESTIMATORS, resampled_scores, scores
from headlab.calibration.intervals import bias_corrected
from headlab.calibration.intervals import reported as reported_interval
from headlab.calibration.inversion import Inverted, inverted_intervals
from headlab.calibration.scoring import bernoulli_nll, brier, likelihood_nll, logits_nll
from headlab.files import atomic_write
from headlab.heads import Head

log = logging.getLogger(__name__)

PARAMS_FILE = "calibration.json"
#: the resampled estimators (seed, n_resamples, one (B,) array per estimator): the study
#: report pairs runs on them instead of resampling again
BOOTSTRAP_FILE = "test_bootstrap.npz"


@dataclass(frozen=True)
class Settings:
    """The ``calibration:`` block of configs/train.yaml."""

    methods: tuple[str, ...] = METHODS
    bootstrap: int = 1000
    seed: int = 0
    min_bin_count: int = MIN_BIN_COUNT
    n_bins: int = N_BINS
    #: intervals for every method too (paired with the uncalibrated ones): ~0.9 s per method
    method_intervals: bool = False
    level: float = 0.95

    @classmethod
    def from_config(cls, block: Any) -> Settings:
        block = dict(block or {})
        block.pop("enabled", None)
        if "methods" in block:
            block["methods"] = tuple(block["methods"])
        return cls(**block)


@torch.no_grad()
def collect_logits(
    model: L.LightningModule, datamodule: L.LightningDataModule, loader
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets of a whole loader, in eval mode, on the model's device."""
    model.eval()
    logits, targets = [], []
    for batch in loader:
        batch = [t.to(model.device) for t in batch]
        images, target = datamodule.on_after_batch_transfer(batch, 0)
        logits.append(model(images).float().cpu())
        targets.append(target.cpu())
    return torch.cat(logits), torch.cat(targets)


@dataclass(frozen=True)
class Handover:
    """What this step hands to the off-distribution analysis, so that it neither predicts
    val or test again nor refits a calibrator (one pipeline, one fit): the tested weights'
    val and test logits with their targets, and the calibrators fitted on val here."""

    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    calibrators: dict[str, Calibrator]


def with_intervals(
    prefix: str,
    suffix: str,
    point: dict[str, float],
    resampled: dict[str, torch.Tensor],
    level,
    inverted: dict[str, Inverted] | None = None,
) -> dict[str, float | str]:
    """``test/<m><suffix>`` and its ``_ci_low`` / ``_ci_high`` for every estimator, plus
    ``_bc`` for the ECE-type estimators. ECE-type intervals are the test-inversion ones
    where given (``inverted``, with ``_debiased``: the median-unbiased estimate), else
    ``intervals.reported``'s bootstrap rule. Where the inversion was run (``inverted`` not
    None), ``_ci_method`` says which one each ECE-type interval is: ``inversion``, or
    ``bootstrap`` where the inversion left the estimator out (a degenerate family)."""
    out: dict[str, float | str] = {}
    tried = inverted is not None
    inverted = inverted or {}
    for name, value in point.items():
        out[f"{prefix}{name}{suffix}"] = value
        if tried and name in ECE_TYPE:
            method = "inversion" if name in inverted else "bootstrap"
            out[f"{prefix}{name}{suffix}_ci_method"] = method
        if name in inverted:
            low, high, debiased = inverted[name]
            out[f"{prefix}{name}{suffix}_debiased"] = debiased
        elif name in resampled:
            low, high = reported_interval(name, value, resampled[name], level)
        else:
            continue
        out[f"{prefix}{name}{suffix}_ci_low"] = low
        out[f"{prefix}{name}{suffix}_ci_high"] = high
        if name in ECE_TYPE and name in resampled:
            out[f"{prefix}{name}{suffix}_bc"] = bias_corrected(value, resampled[name])
    return out


def mce(confidence: torch.Tensor, hit: torch.Tensor, settings: Settings) -> float:
    bins = ReliabilityBins(1, settings.n_bins, sync_on_compute=False)
    bins.update(confidence, hit)
    return float(bins.compute().mce(settings.min_bin_count))


class Analysis:
    """Everything after testing, for one run; ``run`` returns the metrics.json entries."""

    def __init__(
        self,
        head: Head,
        settings: Settings,
        output_dir: str | Path,
        boards=(),
        step: int = 0,
        started: float | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        self.head, self.settings = head, settings
        #: the data's class names (own images), saved beside the predictions for the report
        self.class_names = list(class_names) if class_names else None
        self.output_dir = Path(output_dir)
        self.boards, self.step = list(boards), step
        self.params: dict[str, Any] = {}
        #: the calibrators ``fitted`` made (handed on to the off-distribution analysis)
        self.calibrators: dict[str, Calibrator] = {}
        #: ``time.perf_counter()`` when the analysis began: calibration.json's posthoc_seconds
        self.started = time.perf_counter() if started is None else started
        #: False when the test split is the validation split (own data without test files):
        #: a calibrator fitted there and scored there is no held-out result, so none is fitted
        self.held_out = True
        from headlab.calibration.figures import run_label

        #: figure titles name the run's head and seed
        self.title = f"test, {run_label(head.name)}"

    def run(
        self,
        val: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor],
        kind: str,
    ) -> dict[str, Any]:
        test_logits, test_target = test
        probs = self.head.probs(test_logits)
        np.savez_compressed(
            self.output_dir / PREDICTIONS_FILE,
            probs=probs.numpy(),
            targets=test_target.numpy(),
            logits=test_logits.numpy(),
            **({"class_names": np.array(self.class_names)} if self.class_names else {}),
        )
        if kind == "index":
            metrics = self.multiclass(val, test, probs)
        elif kind == "multi_hot":
            metrics = self.multilabel(val, test, probs)
        else:  # soft targets: predictions saved, calibration against a distribution not defined
            metrics = {}
        record = {**self.params, "posthoc_seconds": time.perf_counter() - self.started}
        atomic_write(self.output_dir / PARAMS_FILE, lambda f: f.write(json.dumps(record, indent=2)))
        return metrics

    def fitted(self, val: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Calibrator]:
        """Each configured method fitted on val; failures recorded with their reason."""
        logits, target = val
        if not self.held_out:
            reason = "the test split is the validation split: fitted and scored on one sample"
            self.params = {m: {"error": reason} for m in self.settings.methods}
            return {}
        before = float(logits_nll(self.head.exclusive, logits.double(), target))
        out = {}
        for method in self.settings.methods:
            try:
                calibrator = fit_calibrator(method, self.head.probs, logits, target)
            except CalibrationFailed as failure:
                log.warning("calibration method %s failed: %s", method, failure)
                self.params[method] = {"error": str(failure)}
                continue
            after_probs = calibrator.probs(logits).clamp(1e-12, 1 - 1e-12)
            self.params[method] = {
                "params": params_as_json(calibrator),
                "val_nll_before": before,
                "val_nll_after": val_nll(self.head.exclusive, after_probs, target),
            }
            out[method] = calibrator
        self.calibrators = out
        return out

    def multiclass(self, val, test, probs: torch.Tensor) -> dict[str, Any]:
        s = self.settings
        test_logits, target = test
        index = resample_index(len(target), s.bootstrap, s.seed)
        resampled = resampled_scores(probs, target, index, s.n_bins)
        np.savez(
            self.output_dir / BOOTSTRAP_FILE,
            seed=s.seed,
            n_resamples=s.bootstrap,
            **{k: v.numpy() for k, v in resampled.items()},
        )
        point = scores(probs, target, s.n_bins)
        confidence, predicted = probs.double().max(dim=1)
        hit = (predicted == target).double()
        observed = {m: point[m] for m in CONSISTENCY_TESTED}
        p_values = p_calibrated(confidence, observed, s.bootstrap, s.seed, s.n_bins)
        ece_type = {m: point[m] for m in ECE_TYPE}
        inverted = inverted_intervals(confidence, hit, ece_type, s.level, s.seed, s.n_bins)
        metrics = with_intervals("test/", "", point, resampled, s.level, inverted)
        metrics["test/mce"] = mce(confidence, hit, s)
        metrics.update({f"test/{m}_p_calibrated": p for m, p in p_values.items()})
        for method, calibrator in self.fitted(val).items():
            calibrated = calibrator.probs(test_logits)
            point = scores(calibrated, target, s.n_bins)
            resampled = (
                resampled_scores(calibrated, target, index, s.n_bins) if s.method_intervals else {}
            )
            metrics.update(with_intervals("test/", f"_{method}", point, resampled, s.level))
            conf_m, pred_m = calibrated.max(dim=1)
            metrics[f"test/mce_{method}"] = mce(conf_m, (pred_m == target).double(), s)
            if method == "temperature":
                metrics["temperature"] = calibrator.temperature
        metrics.update(self.failures())
        metrics.update(self.selective(confidence, 1 - hit))
        self.figures(confidence.numpy(), hit.numpy(), metrics)
        return metrics

    def multilabel(self, val, test, probs: torch.Tensor) -> dict[str, Any]:
        """Per-label binned sums (headlab's own, 1.0 in the last bin), per-label methods."""
        s = self.settings
        test_logits, target = test
        metrics: dict[str, Any] = {}
        bins = ReliabilityBins(target.shape[1], s.n_bins, sync_on_compute=False)
        bins.update(probs.double(), target)
        reliability = bins.compute()
        self.publish("reliability_labels_test", label_reliability(reliability))
        # the epoch's test/ece and test/brier (same definitions) and the per-label NLL
        metrics.update({f"test/{k}": v for k, v in multilabel_scores(probs, target, s).items()})
        if self.head.exclusive:
            reason = (
                f"head={self.head.name} gives one distribution over labels, not a probability "
                "per label: per-label calibrators do not apply"
            )
            self.params = {m: {"error": reason} for m in s.methods}
            metrics.update(self.failures())
            return metrics
        for method, calibrator in self.fitted(val).items():
            calibrated = calibrator.probs(test_logits)
            metrics.update(
                {
                    f"test/{k}_{method}": v
                    for k, v in multilabel_scores(calibrated, target, s).items()
                }
            )
        metrics.update(self.failures())
        return metrics

    def failures(self) -> dict[str, str]:
        return {
            f"calibration/{method}_error": entry["error"]
            for method, entry in self.params.items()
            if "error" in entry
        }

    def selective(self, confidence: torch.Tensor, error: torch.Tensor) -> dict[str, float]:
        from headlab.calibration.figures import risk_coverage_figure
        from headlab.calibration.selective import (
            augrc_of,
            aurc_of,
            misclassification_auroc,
            risk_coverage,
        )

        coverage, risk = risk_coverage(confidence, error)
        area = aurc_of(risk)
        self.publish(
            "risk_coverage_test",
            risk_coverage_figure(coverage.numpy(), risk.numpy(), area, self.title),
        )
        out = {"test/aurc": area, "test/augrc": augrc_of(coverage, risk)}
        separation = misclassification_auroc(confidence, error)
        if separation == separation:  # undefined (NaN) when every prediction is right
            out["test/misclassification_auroc"] = separation
        return out

    def figures(self, confidence: np.ndarray, hit: np.ndarray, metrics: dict[str, Any]) -> None:
        from headlab.calibration.figures import calibration_panels

        figure = calibration_panels(
            confidence,
            hit,
            self.settings.n_bins,
            self.title,
            metrics["test/ece"],
            metrics["test/ece_adaptive"],
        )
        self.publish("calibration_test", figure)

    def publish(self, name: str, figure) -> None:
        """``<name>.png`` in the run folder and a TensorBoard image ``test/<name minus _test>``."""
        atomic_write(
            self.output_dir / f"{name}.png", partial(figure.savefig, format="png"), mode="wb"
        )
        tag = "test/" + name.removesuffix("_test")
        for board in self.boards:
            board.add_figure(tag, figure, global_step=self.step)


#: mean NLL of probabilities under the head's likelihood (calibration.json's val_nll_*)
val_nll = likelihood_nll


def multilabel_scores(
    probs: torch.Tensor, target: torch.Tensor, settings: Settings
) -> dict[str, float]:
    """Mean per-label binary ECE (binned sums); Brier and Bernoulli NLL summed over labels,
    averaged over samples (``scoring``'s convention)."""
    bins = ReliabilityBins(target.shape[1], settings.n_bins, sync_on_compute=False)
    bins.update(probs.double(), target)
    return {
        "ece": float(bins.compute().ece()),
        "brier": float(brier(probs, target).mean()),
        "nll": float(bernoulli_nll(probs, target).mean()),
    }


def label_reliability(reliability):
    from headlab.calibration.figures import label_reliability_grid

    return label_reliability_grid(reliability, "test: per-label reliability, 95% Wilson intervals")


def post_test_analysis(
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    output_dir: str | Path,
    settings: Settings,
    boards=(),
    step: int = 0,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[dict[str, Any], Handover]:
    """Run the analysis on ``test`` (the logits and targets ``trainer.test`` already made;
    collected here when not given) and on val logits of the same weights. Returns the
    metrics.json entries and the ``Handover`` for the off-distribution analysis. What it all
    cost goes into ``calibration.json`` (``posthoc_seconds``), not metrics.json, whose
    numbers stay bit-identical between runs."""
    start = time.perf_counter()
    threads = torch.get_num_threads()
    # small tensor ops: a second thread waiting on a busy core costs far more than it gives
    torch.set_num_threads(1)
    try:
        names = getattr(datamodule, "class_names", None)
        analysis = Analysis(
            model.head, settings, output_dir, boards, step, started=start, class_names=names
        )
        val, test = _logits(model, datamodule, test)
        test_set = getattr(datamodule, "test_set", None)
        analysis.held_out = test_set is None or test_set is not getattr(datamodule, "val_set", None)
        metrics = analysis.run(val, test, model.eval_target_kind)
        return metrics, Handover(val, test, analysis.calibrators)
    finally:
        torch.set_num_threads(threads)


def _logits(model, datamodule, test) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """Val logits of the tested weights, and the test logits when ``trainer.test`` left none
    (an evaluation-only run has not loaded validation, a spawned-DDP parent loaded nothing)."""
    datamodule.setup("fit")  # the data modules build each split once: a no-op after fit
    val = collect_logits(model, datamodule, datamodule.val_dataloader())
    if test is None:
        datamodule.setup("test")
        test = collect_logits(model, datamodule, datamodule.test_dataloader())
    return val, test


__all__ = ["ESTIMATORS", "PREDICTIONS_FILE", "Handover", "Settings", "post_test_analysis"]
