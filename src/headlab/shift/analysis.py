"""The off-distribution analysis of one trained model: every shifted and OOD set through the
model once, metrics into metrics.json, per-sample scores into ``off_distribution.npz``,
figures into the run folder and TensorBoard. ``analyse_off_distribution`` is the entry.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headlab.calibration.bootstrap import resample_index
from headlab.calibration.calibrators import CalibrationFailed, fit_calibrator
from headlab.calibration.posthoc import Handover
from headlab.files import atomic_write
from headlab.heads import Head

# the angle of Ovadia et al.'s accuracy-vs-confidence figure, also the headline's
from headlab.layout.headline import CONFIDENCE_ANGLE
from headlab.shift import SHIFT_FILE
from headlab.shift.scores import none_of_the_above, ood_scores
from headlab.shift.sets import Shifted, check_available, ood_set, rng_for, shifted_sets
from headlab.shift.settings import Settings, settings_of

log = logging.getLogger(__name__)

SECONDS_FILE = "off_distribution.json"
#: the metrics.json key prefixes written here (hundreds of keys: the console skips them)
SHIFT_KEYS = ("shift/", "ood/")
#: the data sets whose inputs are single MNIST digits: the sets here are built for them
SUPPORTED_DATA = ("mnist", "multilabel_mnist")


@torch.no_grad()
def predict(model, datamodule, images: torch.Tensor) -> torch.Tensor:
    """Logits of uint8 images, normalised as the data module does, in eval-size batches."""
    model.eval()
    out = []
    for batch in images.split(datamodule.eval_batch_size):
        batch = datamodule.normalize(batch.to(model.device))
        out.append(model(batch).float().cpu())
    return torch.cat(out) if out else torch.empty(0, datamodule.num_classes)


@torch.no_grad()
def backbone_features(model, datamodule, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features of uint8 images (the classifier layer's input), from the
    backbone alone: the logits of these images are already known."""
    model.eval()
    out = [
        model.backbone(datamodule.normalize(batch.to(model.device))).float().cpu()
        for batch in images.split(datamodule.eval_batch_size)
    ]
    return torch.cat(out)


class OffDistribution:
    """One run's analysis; ``run`` returns the metrics.json entries."""

    def __init__(
        self,
        model,
        datamodule,
        settings: Settings,
        output_dir: Path,
        boards,
        step,
        handover: Handover,
    ):
        self.model, self.datamodule, self.settings = model, datamodule, settings
        self.handover = handover
        self.head: Head = model.head
        self.output_dir, self.boards, self.step = Path(output_dir), list(boards), step
        self.arrays: dict[str, np.ndarray] = {}
        #: the feature-space control, fitted on train features (None: no features here)
        self.detector = None
        self.samples: dict[str, torch.Tensor] = {}  # a few images of each set, for the grid

    def calibrators(self) -> dict[str, Any]:
        """Each configured method fitted on in-distribution val: the calibration step's own
        fit where it made one (one owner), else fitted here on the same val logits."""
        logits, target = self.handover.val
        fitted = {}
        for method in self.settings.methods:
            if method in self.handover.calibrators:
                fitted[method] = self.handover.calibrators[method]
                continue
            try:
                fitted[method] = fit_calibrator(method, self.head.probs, logits, target)
            except CalibrationFailed as failure:
                log.warning("shift: calibration method %s failed: %s", method, failure)
        return fitted

    def test_logits(self) -> torch.Tensor:
        """The whole test set's logits as the calibration step collected them (loader order,
        checked against the test set's targets); predicted here only if they do not match."""
        test = self.datamodule.test_set
        logits, targets = self.handover.test
        if len(targets) == len(test.targets) and torch.equal(targets.cpu(), test.targets):
            return logits
        log.warning("shift: the handed-over test logits are not in test-set order; predicting")
        return predict(self.model, self.datamodule, test.images)

    def run(self) -> dict[str, Any]:
        s = self.settings
        test = self.datamodule.test_set
        images, targets = test.images[: s.samples], test.targets[: s.samples]
        metrics: dict[str, Any] = {}
        full_logits = self.test_logits()
        metrics.update(self.rejections("test", full_logits))
        metrics.update(self.shifted(images, targets, self.calibrators()))
        self.detector = self.fit_detector()
        metrics.update(self.ood(images, full_logits[: s.samples]))
        np.savez_compressed(self.output_dir / SHIFT_FILE, **self.arrays)
        if s.figures:
            self.figures(metrics)
        return metrics

    def run_canvases(self) -> dict[str, Any]:
        """Multi-label canvases: OOD canvases against the test canvases (no shifted sets)."""
        from headlab.shift.canvases import ood_canvases

        s, dm = self.settings, self.datamodule
        full_logits = self.test_logits()
        metrics = self.rejections("test", full_logits)
        images = dm.test_set.images[: s.samples]
        self.samples["test"] = images[:8]
        self.in_distribution(full_logits[: len(images)])
        for offset, fill in enumerate(s.canvas_ood):
            name = f"canvas_{fill}"
            rng = rng_for(s.seed, f"ood/{name}")
            inputs = ood_canvases(fill, len(images), dm.grid, dm.max_digits, rng)
            metrics.update(self.ood_set(name, inputs, offset))
        np.savez_compressed(self.output_dir / SHIFT_FILE, **self.arrays)
        if s.figures:
            self.figures(metrics)
        return metrics

    def rejections(self, name: str, logits: torch.Tensor) -> dict[str, float]:
        """``<name>/none_of_the_above`` with its interval (sigmoid heads), else nothing."""
        from headlab.shift.metrics import rate_with_interval

        rejected = none_of_the_above(self.head, logits)
        if rejected is None:
            return {}
        return rate_with_interval(f"{name}/none_of_the_above", rejected, self.settings.level)

    def fit_detector(self):
        """Mahalanobis on the penultimate features of the first ``TRAIN_IMAGES`` train
        images (a subset: the whole split would cost seconds a run), or None."""
        from headlab.shift.features import TRAIN_IMAGES, Mahalanobis, penultimate

        train = getattr(self.datamodule, "train_set", None)
        if penultimate(self.model) is None or not hasattr(self.model, "backbone") or not train:
            return None
        images, labels = train.images[:TRAIN_IMAGES], train.targets[:TRAIN_IMAGES]
        if labels.ndim != 1:  # class indices only
            return None
        features = backbone_features(self.model, self.datamodule, images).numpy()
        return Mahalanobis.fit(features, labels.numpy(), self.datamodule.num_classes)

    def scores(self, logits: torch.Tensor, features: torch.Tensor | None) -> dict[str, np.ndarray]:
        """Every logit score of the head, and the feature control where there is one."""
        from headlab.shift.scores import FEATURE_SCORE

        out = {k: v.numpy() for k, v in ood_scores(self.head, logits).items()}
        if self.detector is not None and features is not None:
            out[FEATURE_SCORE] = self.detector.score(features.numpy())
        return out

    def in_distribution(self, logits: torch.Tensor) -> None:
        images = self.datamodule.test_set.images[: len(logits)]
        features = backbone_features(self.model, self.datamodule, images) if self.detector else None
        self.in_scores = self.scores(logits, features)
        self.arrays.update({f"ood/test/{k}": v for k, v in self.in_scores.items()})
        self.out_scores: dict[str, dict[str, np.ndarray]] = {}

    def ood_set(self, name: str, inputs: torch.Tensor, offset: int) -> dict[str, float]:
        """Every score's OOD metrics for one set against the in-distribution scores."""
        from headlab.shift.metrics import ood_metrics

        s = self.settings
        self.samples[f"ood/{name}"] = inputs[:8]
        from headlab.shift.features import FeatureTap, penultimate

        if self.detector is not None:
            with FeatureTap(penultimate(self.model)) as tap:
                logits = predict(self.model, self.datamodule, inputs)
            features = tap.features()
        else:
            logits, features = predict(self.model, self.datamodule, inputs), None
        out_scores = self.scores(logits, features)
        self.out_scores[name] = out_scores
        self.arrays.update({f"ood/{name}/{k}": v for k, v in out_scores.items()})
        metrics: dict[str, float] = {}
        for score, values in out_scores.items():
            with_interval = s.interval_scores is None or score in s.interval_scores
            resamples = s.ood_bootstrap if with_interval else 0
            prefix, seed = f"ood/{name}/{score}/", s.seed + offset
            metrics.update(
                ood_metrics(prefix, self.in_scores[score], values, resamples, seed, s.level)
            )
        metrics.update(self.rejections(f"ood/{name}", logits))
        return metrics

    def shifted(self, images, targets, calibrators) -> dict[str, float]:
        from headlab.shift.metrics import mean_over_sets, shift_metrics  # sklearn, scipy: now

        s = self.settings
        metrics: dict[str, float] = {}
        index_of: dict[int, torch.Tensor] = {}  # resample rows per set size: paired across sets
        draws: dict[str, list[torch.Tensor]] = {}  # the corruptions' resampled values
        for shifted in shifted_sets(images, targets, s):
            self.samples[shifted.name] = shifted.images[:8]
            logits = predict(self.model, self.datamodule, shifted.images)
            n = len(shifted.targets)
            index = (
                index_of.setdefault(n, resample_index(n, s.bootstrap, s.seed))
                if s.bootstrap
                else None  # shift.bootstrap=0: points only (a study pairs over seeds)
            )
            prefix = f"shift/{shifted.name}/"
            probs = self.head.probs(logits)
            kept = draws if shifted.kind == "corruption" else None
            metrics.update(shift_metrics(prefix, probs, shifted.targets, index, "", s.level, kept))
            for method, calibrator in calibrators.items():
                calibrated = calibrator.probs(logits)
                suffix = f"_{method}"
                metrics.update(
                    shift_metrics(prefix, calibrated, shifted.targets, index, suffix, s.level, kept)
                )
            self.keep(shifted, probs)
        points = corruption_points(metrics, ["", *(f"_{m}" for m in calibrators)])
        metrics.update(mean_over_sets("shift/corruption/mean/", points, draws, s.level))
        return metrics

    def keep(self, shifted: Shifted, probs: torch.Tensor) -> None:
        self.arrays[f"shift/{shifted.name}/probs"] = probs.numpy().astype(np.float32)
        self.arrays[f"shift/{shifted.name}/targets"] = shifted.targets.numpy()
        if shifted.kind == "rotation" and shifted.level == CONFIDENCE_ANGLE:
            self.confidence_at_angle = probs

    def ood(self, images: torch.Tensor, in_logits: torch.Tensor) -> dict[str, float]:
        self.in_distribution(in_logits)
        metrics: dict[str, float] = {}
        for offset, name in enumerate(self.settings.ood):
            inputs = ood_set(name, images, len(images), self.settings, self.datamodule.data_dir)
            metrics.update(self.ood_set(name, inputs, offset))
        return metrics

    def figures(self, metrics: dict[str, Any]) -> None:
        from headlab.shift import figures

        if any(k.startswith("shift/rotation/") for k in metrics):
            self.publish("shift_rotation", figures.rotation_figure(metrics, self.settings))
        probs = getattr(self, "confidence_at_angle", None)
        if probs is not None:
            target = self.arrays[f"shift/rotation/{CONFIDENCE_ANGLE}/targets"]
            figure = figures.accuracy_vs_confidence(probs.numpy(), target, CONFIDENCE_ANGLE)
            self.publish(f"shift_confidence_{CONFIDENCE_ANGLE}", figure)
        if self.out_scores:
            histograms = figures.score_histograms(self.in_scores, self.out_scores)
            self.publish("ood_histograms", histograms)
        self.publish("shift_samples", figures.sample_grid(self.samples))

    def publish(self, name: str, figure) -> None:
        """``<name>.png`` in the run folder and a TensorBoard image ``shift/<name>``, from one
        rendering at 100 dpi (``savefig`` and ``add_figure`` each drew the figure anew: the
        same pixels twice, ~1 s of CPU a run)."""
        import matplotlib.pyplot as plt
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.image import imsave

        figure.set_dpi(100)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        pixels = np.asarray(canvas.buffer_rgba())
        path = self.output_dir / f"{name}.png"
        atomic_write(path, partial(imsave, arr=pixels, format="png"), mode="wb")
        for board in self.boards:
            board.add_image(f"shift/{name}", pixels[..., :3], self.step, dataformats="HWC")
        plt.close(figure)


def corruption_points(metrics: dict[str, float], suffixes) -> dict[str, list[float]]:
    """Each estimator's point values over the corruptions, keyed ``<estimator><suffix>``."""
    out: dict[str, list[float]] = {}
    for suffix in suffixes:
        for estimator in ("acc", "ece", "ece_adaptive", "brier", "nll"):
            values = [
                v
                for k, v in metrics.items()
                if k.startswith("shift/corruption/") and k.endswith(f"/{estimator}{suffix}")
            ]
            if values:
                out[f"{estimator}{suffix}"] = values
    return out


def check_shift_config(cfg) -> None:
    """Before anything is built: the ``shift`` block's names and numbers, and the requested
    downloaded OOD sets (one-line errors)."""
    from omegaconf import OmegaConf

    settings = settings_of(cfg)
    data_dir = OmegaConf.select(cfg, "data.data_dir", default="data")
    check_available(settings, data_dir)


def own_handover(model, datamodule) -> Handover:
    """Without a calibration step before (a call on its own): val and test logits here."""
    from headlab.calibration.posthoc import collect_logits

    val = collect_logits(model, datamodule, datamodule.val_dataloader())
    test = collect_logits(model, datamodule, datamodule.test_dataloader())
    return Handover(val, test, {})


def analyse_off_distribution(
    model,
    datamodule,
    cfg,
    output_dir: str | Path,
    boards=(),
    step: int = 0,
    handover: Handover | None = None,
) -> dict[str, float]:
    """Shifted and OOD sets for a trained model on rank 0, after test. Returns the
    metrics.json entries (none when ``shift.enabled`` is false or the data has no sets).

    ``handover``: the calibration step's val and test logits and fitted calibrators
    (``posthoc.post_test_analysis``): reused, so neither set is predicted again."""
    settings = settings_of(cfg)
    if not settings.enabled:
        return {}
    if getattr(datamodule, "name", None) not in SUPPORTED_DATA:
        log.warning(
            "shift: no shifted or OOD sets are defined for data=%s (only for %s); "
            "off-distribution analysis skipped (shift=none silences this)",
            getattr(datamodule, "name", type(datamodule).__name__),
            ", ".join(SUPPORTED_DATA),
        )
        return {}
    start, cpu_start = time.perf_counter(), time.process_time()
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: a second thread on a shared core only waits
    # so do numpy's and scipy's BLAS threads: the Mahalanobis fit's 256 x 256 pseudo-inverse
    # took 1.0 s of CPU with them on a loaded 2-core machine, 0.04 s without
    blas = threadpool_limits(limits=1, user_api="blas")
    try:
        datamodule.setup("fit")
        datamodule.setup("test")
        handover = handover or own_handover(model, datamodule)
        analysis = OffDistribution(
            model, datamodule, settings, Path(output_dir), boards, step, handover
        )
        multilabel = datamodule.name == "multilabel_mnist"
        metrics = analysis.run_canvases() if multilabel else analysis.run()
    finally:
        torch.set_num_threads(threads)
        blas.restore_original_limits()
    seconds = time.perf_counter() - start
    # CPU seconds of this process: on a shared machine closer to what an idle one would take
    cpu_seconds = time.process_time() - cpu_start
    record = json.dumps(
        {"seconds": seconds, "cpu_seconds": cpu_seconds, "keys": len(metrics)}, indent=2
    )
    atomic_write(Path(output_dir) / SECONDS_FILE, lambda f: f.write(record))
    log.info(
        "off-distribution analysis: %d metrics in %.1f s (%.1f s of CPU)",
        len(metrics),
        seconds,
        cpu_seconds,
    )
    return metrics
