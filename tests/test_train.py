"""Short real trainings on tiny IDX files: every head learns, and a run leaves its files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from headlab.heads import HEADS, HeadDataMismatch
from headlab.run.train import build, train
from tests import launch
from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("head", sorted(HEADS))
def test_each_head_trains_and_writes_metrics(tiny_cfg, tmp_path: Path, head: str):
    metrics = train(tiny_cfg(f"head={head}", "trainer.max_epochs=3"))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == pytest.approx(metrics)
    assert written["status"] == "completed"
    for key in ("train/acc", "train/loss", "val/acc", "val/loss", "test/acc", "test/loss"):
        assert isinstance(written[key], float), key
    # the tiny digits are separable: chance is 0.1, any working head is far above it
    assert written["test/acc"] > 0.8, written
    assert Path(written["best_ckpt_path"]).is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    # TensorBoard: the epoch scalars once per epoch and the hparams session (this run once
    # served a separate test that trained softmax again only to read them)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/acc", "train/loss", "val/acc", "val/loss", "test/acc", "test/loss"} <= scalars
    assert len(events.Scalars("val/acc")) == 3  # once per epoch, not per step
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


@pytest.mark.slow
def test_training_lowers_the_loss(tiny_cfg):
    cfg = tiny_cfg("trainer.max_epochs=1", "logger=none")
    datamodule, model, trainer = build(cfg)
    datamodule.setup("fit")
    images, labels = next(iter(datamodule.val_dataloader()))
    images = datamodule.normalize(images)
    model.eval()
    with torch.no_grad():
        before = model.head.loss(model(images), labels, "index").item()
    model.train()
    trainer.fit(model, datamodule=datamodule)
    model.eval()
    with torch.no_grad():
        after = model.head.loss(model(images), labels, "index").item()
    assert after < 0.5 * before


def test_head_that_does_not_fit_the_data_fails_before_loading(tiny_cfg, monkeypatch):
    cfg = tiny_cfg("head=sigmoid_nll", "data=multilabel_mnist")
    from headlab.data import MultiLabelMNISTDataModule

    monkeypatch.setattr(
        MultiLabelMNISTDataModule, "setup", lambda *a: pytest.fail("data was loaded")
    )
    match = "head=sigmoid_nll cannot train on data=multilabel_mnist"
    with pytest.raises(HeadDataMismatch, match=match):
        build(cfg)


def run_cli(*args: str, cwd: Path, fresh: bool = False) -> subprocess.CompletedProcess:
    """``python scripts/train.py ARGS`` in ``cwd``; ``fresh``: in a new interpreter, not a warm
    fork (tests/launch.py)."""
    env = {**os.environ, "HEADLAB_ROOT": str(cwd), "PYTHONPATH": str(ROOT / "src")}
    return (subprocess.run if fresh else launch.run)(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_run_writes_its_own_folder_with_config_events_checkpoints(tiny_mnist, tmp_path):
    result = run_cli(
        f"data.data_dir={tiny_mnist}",
        "data.val_size=100",
        "trainer.max_epochs=1",
        "shift=none",
        "callbacks.rich_progress_bar=null",
        cwd=tmp_path,
        fresh=True,  # the one run of the CLI in a new interpreter, as a user starts it
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_cli_unknown_head_prints_the_choices(tmp_path):
    result = run_cli("head=tanh", cwd=tmp_path)
    assert result.returncode != 0
    assert "Could not find 'head/tanh'" in result.stderr
    assert all(name in result.stderr for name in HEADS)
    assert not (tmp_path / "logs").exists()  # nothing half-made
