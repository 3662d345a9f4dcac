"""debug= presets and experiment= configs: each one composes and runs on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from headlab.heads import HEADS
from headlab.models import CNN
from headlab.run.train import build, train
from tests.conftest import CONFIGS


@pytest.mark.slow
def test_debug_fdr_runs_one_batch_per_stage_and_saves_nothing(tiny_cfg, tmp_path: Path):
    cfg = tiny_cfg("debug=fdr")
    assert cfg.task_name == "debug" and list(cfg.tags) == ["debug"]
    metrics = train(cfg)
    assert metrics["status"] == "completed"
    assert {"train/acc", "val/acc", "test/acc"} <= metrics.keys()
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))  # fast_dev_run never checkpoints
    assert build(cfg)[2].fast_dev_run == 1


@pytest.mark.slow
def test_debug_overfit_learns_its_few_batches(tiny_cfg):
    metrics = train(tiny_cfg("debug=overfit", "trainer.max_epochs=15", "calibration=none"))
    assert metrics["train/acc"] > 0.95, metrics  # 3 batches of 50 memorised


@pytest.mark.slow
def test_debug_limit_runs_few_batches_per_epoch(tiny_cfg, tmp_path: Path):
    train(tiny_cfg("debug=limit", "calibration=none"))
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (1, 2 * 3)  # 2 epochs of 3 train batches


@pytest.mark.slow
def test_debug_profiler_writes_the_simple_profile(tiny_cfg, tmp_path: Path):
    train(tiny_cfg("debug=profiler", "logger=none", "calibration=none"))
    report = (tmp_path / "fit-profile.txt").read_text()
    assert "run_training_epoch" in report and "Mean duration" in report
    assert (tmp_path / "test-profile.txt").is_file()


@pytest.mark.slow
def test_experiment_mnist_cnn_pins_a_cnn_with_a_cosine_schedule(tiny_cfg, tmp_path: Path):
    cfg = tiny_cfg(
        "experiment=mnist_cnn", "trainer.max_epochs=1", "logger=none", "calibration=none"
    )
    assert cfg.model.scheduler.T_max == 1 and "cnn" in cfg.tags
    _, model, _ = build(cfg)
    assert isinstance(model.backbone, CNN)
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.5, metrics
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"


def test_experiment_compare_heads_sweeps_every_head_over_seeds():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train.yaml", ["experiment=compare_heads"], return_hydra_config=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = cfg.hydra.sweeper.params
    fits_mnist = {name for name, cls in HEADS.items() if "index" in cls.accepts}
    assert set(params.head.split(",")) == fits_mnist  # every head that trains on MNIST
    # the report calls nothing from fewer than 3 shared seeds; 5 make its t-intervals usable
    assert len(str(params.seed).split(",")) >= 5
