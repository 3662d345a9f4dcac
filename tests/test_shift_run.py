"""A training run's off-distribution analysis end to end (tiny data): the promised keys,
``off_distribution.npz`` whose scores reproduce the metrics through scikit-learn, the
figures, ``shift=none``, and a bad setting failing before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from headlab.errors import ConfigValueError
from headlab.run.train import train
from headlab.shift import SHIFT_FILE
from headlab.shift.metrics import fpr_at_tpr

SMALL = [
    "shift.rotation=[0,60]",
    "shift.translation=[4]",
    "shift.corruptions=[fog,stripe]",
    "shift.ood=[letters,inverted]",
    "shift.bootstrap=20",
    "shift.ood_bootstrap=5",
    "trainer.max_epochs=1",
]


@pytest.mark.slow
def test_a_sigmoid_run_writes_shift_and_ood_keys_npz_and_figures(tiny_cfg, tmp_path: Path):
    metrics = train(tiny_cfg("head=sigmoid", *SMALL))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == "completed"
    for key in (
        "shift/rotation/60/ece",
        "shift/rotation/60/ece_ci_low",
        "shift/rotation/60/ece_temperature",
        "shift/translation/4/acc",
        "shift/corruption/fog/brier",
        "shift/corruption/mean/ece",
        "shift/digits/sklearn/acc",
        "ood/letters/msp/auroc_ci_high",
        "ood/inverted/joint_energy/fpr95",
        "ood/inverted/sum_sigmoid/aupr_out",
        "ood/letters/none_of_the_above",
        "test/none_of_the_above_ci_low",
    ):
        assert key in written, key
    assert written["shift/rotation/0/acc"] > 0.5
    mean = np.mean([written["shift/corruption/fog/ece"], written["shift/corruption/stripe/ece"]])
    assert written["shift/corruption/mean/ece"] == pytest.approx(mean)

    arrays = np.load(tmp_path / SHIFT_FILE)
    score_in, score_out = arrays["ood/test/energy"], arrays["ood/letters/energy"]
    labels = np.r_[np.ones(len(score_in)), np.zeros(len(score_out))]
    scores = np.r_[score_in, score_out]
    assert written["ood/letters/energy/auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert written["ood/letters/energy/fpr95"] == pytest.approx(fpr_at_tpr(labels, scores))
    probs = arrays["shift/rotation/60/probs"]
    hits = probs.argmax(axis=1) == arrays["shift/rotation/60/targets"]
    assert written["shift/rotation/60/acc"] == pytest.approx(hits.mean())
    # sigmoid head: every sigmoid < 0.5 exactly when the largest one (msp) is
    rejected = (arrays["ood/letters/msp"] < 0.5).mean()
    assert written["ood/letters/none_of_the_above"] == pytest.approx(rejected)
    for figure in ("shift_rotation", "shift_confidence_60", "ood_histograms", "shift_samples"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 1000, figure
    assert written == pytest.approx(metrics)


@pytest.mark.slow
def test_shift_none_writes_no_shift_keys_and_no_npz(tiny_cfg, tmp_path: Path):
    train(tiny_cfg("shift=none", "trainer.max_epochs=1", "logger=none"))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == "completed" and "test/acc" in written
    assert not any(k.startswith(("shift/", "ood/")) for k in written)
    assert not (tmp_path / SHIFT_FILE).exists()


@pytest.mark.slow
def test_an_unknown_corruption_fails_before_training_and_writes_no_results(tiny_cfg, tmp_path):
    with pytest.raises(ConfigValueError, match=r"shift\.corruptions: unknown 'frost'"):
        train(tiny_cfg("shift.corruptions=[frost]", "logger=none"))
    assert not (tmp_path / SHIFT_FILE).exists()
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "checkpoints").exists()
