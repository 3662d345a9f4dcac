"""F1 at the validation-chosen threshold: equal to a brute-force sklearn search, and carried
from validation to test through the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from headlab.metrics.thresholds import TunedThresholdF1
from headlab.models.classifier import THRESHOLD_KEY, THRESHOLD_MACRO_KEY
from headlab.run.train import build, train

N_BINS = 100


def sample(n: int = 600, labels: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that are informative but noisy, so the best threshold is not 0.5."""
    rng = np.random.default_rng(seed)
    target = (rng.random((n, labels)) < 0.3).astype(np.int64)
    probs = np.clip(0.25 * target + 0.6 * rng.random((n, labels)) ** 2, 0, 1)
    return probs.astype(np.float32), target


def brute_force(probs: np.ndarray, target: np.ndarray, thresholds: np.ndarray):
    """sklearn's F1 at every candidate threshold, predicted where p > t: the best micro F1
    and its threshold, the best macro F1 and its threshold (each the lowest on ties)."""
    micro = [f1_score(target, probs > t, average="micro", zero_division=0) for t in thresholds]
    macro = [f1_score(target, probs > t, average="macro", zero_division=0) for t in thresholds]
    best, best_macro = int(np.argmax(micro)), int(np.argmax(macro))
    return float(thresholds[best]), micro[best], float(thresholds[best_macro]), macro[best_macro]


def candidates(n_bins: int = N_BINS) -> np.ndarray:
    return (np.arange(n_bins, dtype=np.float64) / n_bins).astype(np.float32)


def metric_on(probs: np.ndarray, target: np.ndarray, batch: int = 128) -> TunedThresholdF1:
    metric = TunedThresholdF1(target.shape[1], n_bins=N_BINS)
    for start in range(0, len(probs), batch):  # several updates, like an epoch of batches
        metric.update(
            torch.from_numpy(probs[start : start + batch]),
            torch.from_numpy(target[start : start + batch]),
        )
    return metric


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_threshold_and_tuned_f1_equal_a_brute_force_sklearn_search(seed: int):
    probs, target = sample(seed=seed)
    threshold, micro, threshold_macro, macro = brute_force(probs, target, candidates())
    result = metric_on(probs, target).compute()
    assert result["best_threshold"].item() == threshold
    assert result["best_threshold_macro"].item() == threshold_macro
    assert result["f1_micro_tuned"].item() == pytest.approx(micro, rel=1e-6)
    assert result["f1_macro_tuned"].item() == pytest.approx(macro, rel=1e-6)
    assert threshold != pytest.approx(0.5)  # the search matters for this data


def test_macro_f1_gets_its_own_threshold_where_a_rare_label_wants_another():
    """Label 0 is common and separable at 0.5, label 1 rare with low probabilities: macro F1
    (mean over labels) is best at a lower threshold than micro F1 (pooled over labels)."""
    rng = np.random.default_rng(7)
    n = 2000
    common = (rng.random(n) < 0.5).astype(np.int64)
    rare = (rng.random(n) < 0.03).astype(np.int64)
    probs = np.stack(
        [0.3 + 0.4 * common + 0.25 * rng.random(n), 0.05 + 0.2 * rare + 0.2 * rng.random(n)], 1
    ).astype(np.float32)
    target = np.stack([common, rare], 1)
    threshold, _, threshold_macro, macro = brute_force(probs, target, candidates())
    result = metric_on(probs, target).compute()
    assert result["best_threshold_macro"].item() == threshold_macro < threshold
    assert result["f1_macro_tuned"].item() == pytest.approx(macro, rel=1e-6)
    at_micro = f1_score(target, probs > np.float32(threshold), average="macro", zero_division=0)
    assert macro > at_micro + 0.05  # the old value: macro F1 at the micro threshold


@pytest.mark.parametrize("threshold", [0.5, 0.23, 0.0])
def test_a_given_threshold_is_scored_as_sklearn_scores_it(threshold: float):
    probs, target = sample(seed=3)
    metric = metric_on(probs, target)
    metric.threshold = metric.threshold_macro = threshold
    result = metric.compute()
    t = np.float32(threshold)
    assert result["best_threshold"].item() == pytest.approx(threshold)
    expected_micro = f1_score(target, probs > t, average="micro", zero_division=0)
    expected_macro = f1_score(target, probs > t, average="macro", zero_division=0)
    assert result["f1_micro_tuned"].item() == pytest.approx(expected_micro, rel=1e-6)
    assert result["f1_macro_tuned"].item() == pytest.approx(expected_macro, rel=1e-6)


def test_states_of_two_processes_summed_give_the_single_process_result():
    probs, target = sample(seed=4)
    whole = metric_on(probs, target).compute()
    first, second = metric_on(probs[:250], target[:250]), metric_on(probs[250:], target[250:])
    first.merge_state(second)  # what the sum reduction does across DDP processes
    merged = first.compute()
    for key in whole:
        assert merged[key].item() == whole[key].item(), key


def test_probabilities_on_bin_edges_and_at_0_and_1_count_as_torchmetrics_counts_them():
    # p > t decides: a probability equal to a candidate is not predicted at that candidate
    probs = np.array([[0.0, 1.0], [0.5, 0.25], [0.01, 0.99], [0.5, 0.0]], dtype=np.float32)
    target = np.array([[0, 1], [1, 0], [0, 1], [0, 0]])
    threshold, micro, _, macro = brute_force(probs, target, candidates())
    result = metric_on(probs, target).compute()
    assert result["best_threshold"].item() == threshold
    assert result["f1_micro_tuned"].item() == pytest.approx(micro, rel=1e-6)
    assert result["f1_macro_tuned"].item() == pytest.approx(macro, rel=1e-6)


def test_ties_pick_the_lowest_threshold():
    probs = np.full((4, 2), 0.7, dtype=np.float32)
    target = np.ones((4, 2), dtype=np.int64)
    result = metric_on(probs, target).compute()
    assert result["best_threshold"].item() == 0.0 and result["f1_micro_tuned"].item() == 1.0


def test_memory_does_not_grow_with_the_number_of_samples():
    metric = TunedThresholdF1(10, n_bins=N_BINS)
    sizes = []
    for _ in range(3):
        metric.update(torch.rand(1000, 10), torch.randint(0, 2, (1000, 10)))
        sizes.append(sum(s.numel() for s in (metric.positives, metric.negatives)))
    assert sizes == [2 * 10 * (N_BINS + 1)] * 3


TINY = [
    "data=multilabel_mnist",
    "data.train_samples=300",
    "data.val_samples=100",
    "data.test_samples=100",
    "logger=none",
    "calibration=none",  # the post-test calibration analysis is not what these test
]


def test_probabilities(model, datamodule) -> tuple[np.ndarray, np.ndarray]:
    """The model's test-set probabilities, computed here independently of the metrics."""
    datamodule.setup("test")
    model.eval()
    probs, targets = [], []
    with torch.no_grad():
        for batch in datamodule.test_dataloader():
            images, target = datamodule.on_after_batch_transfer(batch, 0)
            probs.append(model.head.probs(model(images)))
            targets.append(target)
    return torch.cat(probs).numpy(), torch.cat(targets).numpy()


test_probabilities.__test__ = False  # a helper, not a test


@pytest.mark.slow
def test_test_f1_uses_the_threshold_validation_chose_for_the_tested_checkpoint(
    tiny_cfg, tmp_path: Path
):
    metrics = train(tiny_cfg("head=softmax", *TINY))
    assert {"val/best_threshold", "test/f1_micro_tuned", "test/f1_macro_tuned"} <= set(metrics)
    assert "test/best_threshold" not in metrics
    best = metrics["tested_ckpt_path"]
    saved = torch.load(best, weights_only=True)
    chosen, chosen_macro = saved[THRESHOLD_KEY], saved[THRESHOLD_MACRO_KEY]
    assert 0.0 <= chosen < 1.0 and 0.0 <= chosen_macro < 1.0

    # independent: the checkpoint's weights, its test probabilities, sklearn at its threshold
    datamodule, model, _ = build(tiny_cfg("head=softmax", *TINY))
    model.load_state_dict(torch.load(best, weights_only=True)["state_dict"])
    probs, target = test_probabilities(model, datamodule)
    predicted = probs > np.float32(chosen)
    expected = f1_score(target, predicted, average="micro", zero_division=0)
    assert metrics["test/f1_micro_tuned"] == pytest.approx(expected, rel=1e-6)
    predicted = probs > np.float32(chosen_macro)
    expected = f1_score(target, predicted, average="macro", zero_division=0)
    assert metrics["test/f1_macro_tuned"] == pytest.approx(expected, rel=1e-6)

    # testing the loaded checkpoint alone (train=false) uses the same stored threshold
    out = tmp_path / "eval"
    evaluate = ("train=false", f"ckpt_path={best}", f"paths.output_dir={out}")
    tested = train(tiny_cfg("head=softmax", *TINY, *evaluate))
    assert tested["test/f1_micro_tuned"] == metrics["test/f1_micro_tuned"]
    assert tested["test/f1_macro_tuned"] == metrics["test/f1_macro_tuned"]
    assert json.loads((out / "metrics.json").read_text())["test/f1_micro_tuned"] == pytest.approx(
        metrics["test/f1_micro_tuned"]
    )


@pytest.mark.slow
def test_without_a_validation_threshold_test_reports_no_tuned_f1(tiny_cfg, tmp_path: Path):
    metrics = train(tiny_cfg("head=sigmoid", *TINY, "train=false"))
    assert "test/f1_micro" in metrics  # the fixed-threshold numbers are still there
    assert not any("tuned" in key for key in metrics)
