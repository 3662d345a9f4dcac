"""One post-test pipeline: the off-distribution analysis reuses the calibration step's val and
test logits and its fitted calibrators, so the model predicts neither set a second time, and
its numbers equal those of an analysis that collects them itself (no training here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from headlab.calibration.posthoc import Handover, Settings, post_test_analysis
from headlab.data.mnist import MNISTDataModule
from headlab.heads import SoftmaxCE
from headlab.models import MLP
from headlab.models.classifier import Classifier
from headlab.shift.analysis import analyse_off_distribution
from tests.conftest import compose_train

SAMPLES = 50
SHIFT = [
    f"shift.samples={SAMPLES}",
    "shift.rotation=[0,60]",
    "shift.translation=[]",
    "shift.corruptions=[]",
    "shift.digits=false",
    "shift.ood=[inverted]",
    "shift.bootstrap=0",
    "shift.ood_bootstrap=0",
    "shift.figures=false",
]


def setting(tiny_mnist: Path):
    torch.manual_seed(0)
    model = Classifier(MLP(hidden=(16,)), SoftmaxCE())
    datamodule = MNISTDataModule(str(tiny_mnist), eval_batch_size=100, val_size=100)
    datamodule.setup("fit")
    datamodule.setup("test")
    cfg = compose_train([f"data.data_dir={tiny_mnist}", *SHIFT])
    return model, datamodule, cfg


def counting(model) -> list[int]:
    """Rows through ``model.forward`` from now on, one entry per call."""
    rows: list[int] = []
    forward = model.forward

    def counted(images):
        rows.append(len(images))
        return forward(images)

    model.forward = counted
    return rows


def test_off_distribution_predicts_only_its_own_sets_given_the_calibration_handover(
    tiny_mnist: Path, tmp_path: Path
):
    model, datamodule, cfg = setting(tiny_mnist)
    settings = Settings(methods=("temperature",), bootstrap=20)
    _, handover = post_test_analysis(model, datamodule, tmp_path, settings)
    assert set(handover.calibrators) == {"temperature"}
    rows = counting(model)
    metrics = analyse_off_distribution(model, datamodule, cfg, tmp_path, handover=handover)
    assert "shift/rotation/60/ece_temperature" in metrics
    assert "ood/inverted/mahalanobis/auroc" in metrics  # the feature control, no extra forward
    # two rotations and one OOD set of SAMPLES each: not the 200 test or 100 val images again
    assert sum(rows) == 3 * SAMPLES


def test_reused_logits_and_calibrator_give_the_numbers_of_a_fresh_pass(
    tiny_mnist: Path, tmp_path: Path
):
    model, datamodule, cfg = setting(tiny_mnist)
    settings = Settings(methods=("temperature",), bootstrap=20)
    (tmp_path / "a").mkdir()
    _, handover = post_test_analysis(model, datamodule, tmp_path / "a", settings)
    reused = analyse_off_distribution(model, datamodule, cfg, tmp_path, handover=handover)
    fresh = analyse_off_distribution(model, datamodule, cfg, tmp_path)  # collects its own
    assert reused == pytest.approx(fresh, rel=1e-12, abs=1e-12)


def test_test_logits_out_of_order_are_not_used(tiny_mnist: Path, tmp_path: Path):
    model, datamodule, cfg = setting(tiny_mnist)
    _, handover = post_test_analysis(model, datamodule, tmp_path, Settings(bootstrap=20))
    logits, targets = handover.test
    flipped = Handover(handover.val, (logits.flip(0), targets.flip(0)), handover.calibrators)
    assert analyse_off_distribution(
        model, datamodule, cfg, tmp_path, handover=flipped
    ) == pytest.approx(analyse_off_distribution(model, datamodule, cfg, tmp_path))
