"""The benchmark script keeps its promises: the JSON it prints, the Markdown table it prints."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from benchmarks.timing import results_table
from tests import launch

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = {
    "model",
    "device",
    "batch_size",
    "train_samples",
    "plain_s",
    "headlab_s",
    "ratio",
    "plain_samples_per_s",
    "headlab_samples_per_s",
    "bare_lightning_s",
    "bare_lightning_ratio",
    "first_step_s",
    "peak_rss_mib",
    "posthoc_s",
}


def test_a_missed_accuracy_target_is_said_in_the_table():
    tta = {"target": 0.99, "reached": False, "test_acc": 0.985, "epochs": 10, "device": "cpu"}
    table = results_table([], {**tta, "train_seconds": 70.0})
    assert "NOT reached, 98.50% after 10 epochs, 70.0 s of training" in table


@pytest.mark.slow
def test_bench_prints_its_json_and_its_table(tiny_mnist: Path, tmp_path):
    started = time.monotonic()
    result = launch.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--models",
            "mlp",
            "--reps",
            "2",
            "--breakdown",
            "--time-to-accuracy",
            "--tta-max-epochs",
            "2",
            "--markdown",
            f"data.data_dir={tiny_mnist}",
            "data.val_size=100",
            "data.batch_size=50",
            "data.eval_batch_size=100",
            "shift=none",  # the default run's off-distribution analysis is not timed here
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},  # this checkout, not an install
    )
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(s) for s in result.stdout.splitlines() if s.startswith("{")]
    row, tta = lines
    assert set(row) == ROW_KEYS
    assert row["train_samples"] == 500 and row["batch_size"] == 50
    # ratio is taken before rounding; tiny-data epochs of ~0.03 s round by up to ~2%
    assert row["ratio"] == pytest.approx(row["headlab_s"] / row["plain_s"], rel=0.03)
    assert row["headlab_samples_per_s"] == pytest.approx(500 / row["headlab_s"], rel=0.03)
    # each is a part of the whole command, which the test timed from outside
    assert 0 < row["first_step_s"] < wall and 100 < row["peak_rss_mib"] < 4096
    # the post-test calibration analysis of the real run, read from its calibration.json
    assert 0 < row["posthoc_s"] < wall
    assert tta["model"] == "cnn" and tta["reached"] == (tta["test_acc"] >= 0.99)
    assert 1 <= tta["epochs"] <= 2 and (tta["reached"] or tta["epochs"] == 2)
    assert f"| mlp | cpu | {row['plain_s']} | {row['headlab_s']} |" in result.stdout
    assert not any(tmp_path.iterdir())  # timing writes no file: the table goes to stdout
