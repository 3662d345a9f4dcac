"""scripts/eval.py: a checkpoint's test metrics reproduced in a run folder of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from headlab.checkpoints.files import checkpoint_path
from headlab.run.overrides import with_run_overrides
from tests.conftest import ROOT


def run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEADLAB_ROOT": str(cwd), "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def only_run(parent: Path) -> Path:
    (run,) = parent.iterdir()
    return run


@pytest.mark.slow
def test_eval_reproduces_the_test_metrics_of_the_trained_checkpoint(tiny_mnist, tmp_path):
    trained = run_script(
        "train.py",
        f"data.data_dir={tiny_mnist}",
        "data.val_size=100",
        "head=sigmoid",
        "model.backbone.hidden=[64]",
        "trainer.max_epochs=1",
        "shift=none",
        "trainer.limit_train_batches=2",  # short of perfect, so accuracy is not trivially 1
        "callbacks.rich_progress_bar=null",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    run = only_run(tmp_path / "logs" / "train" / "runs")
    train_metrics = json.loads((run / "metrics.json").read_text())
    assert 0.1 < train_metrics["test/acc"] < 1.0

    # only the checkpoint: data, head and width come from the training run's overrides
    ckpt = f"ckpt_path={train_metrics['best_ckpt_path']}"
    evaluated = run_script("eval.py", ckpt, "shift=none", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    eval_run = only_run(tmp_path / "logs" / "eval" / "runs")
    eval_metrics = json.loads((eval_run / "metrics.json").read_text())
    assert eval_metrics["test/acc"] == train_metrics["test/acc"]
    assert eval_metrics["test/loss"] == train_metrics["test/loss"]
    assert eval_metrics["tested_ckpt_path"] == train_metrics["best_ckpt_path"]
    recorded = list(OmegaConf.load(eval_run / ".hydra" / "overrides.yaml"))
    assert {"head=sigmoid", "model.backbone.hidden=[64]"} <= set(recorded)
    assert not any(o.startswith("trainer.") for o in recorded)  # the eval's own trainer

    # the user's head wins over the run's, and the checkpoint refuses it
    wrong = run_script(
        "eval.py", f"ckpt_path={train_metrics['best_ckpt_path']}", "head=softmax", cwd=tmp_path
    )
    assert wrong.returncode != 0
    assert "head: trained with head=sigmoid, the config has head=softmax" in wrong.stderr


def test_run_overrides_come_first_and_yours_win(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").touch()
    overrides = ["head=sigmoid", "model=cnn", "trainer.max_epochs=9", "data.data_dir=/d", "seed=3"]
    OmegaConf.save(OmegaConf.create(overrides), run / ".hydra" / "overrides.yaml")
    ckpt = f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"

    assert with_run_overrides(["-m", ckpt, "head=soft"]) == [
        "-m",
        "model=cnn",
        "data.data_dir=/d",
        "seed=3",
        ckpt,
        "head=soft",
    ]
    assert with_run_overrides(["--cfg", "job", ckpt]) == [
        "--cfg",
        "job",
        "head=sigmoid",
        "model=cnn",
        "data.data_dir=/d",
        "seed=3",
        ckpt,
    ]
    assert with_run_overrides([ckpt, "use_run_config=false"]) == [ckpt, "use_run_config=false"]
    assert with_run_overrides([f"{ckpt},other.ckpt"]) == [f"{ckpt},other.ckpt"]
    outside = tmp_path / "loose.ckpt"
    assert with_run_overrides([f"ckpt_path={outside}"]) == [f"ckpt_path={outside}"]


def test_eval_without_a_checkpoint_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=nope\.ckpt: no such file"):
        checkpoint_path(OmegaConf.create({"ckpt_path": "nope.ckpt"}))
    with pytest.raises(ValueError, match="eval needs a checkpoint"):
        checkpoint_path(OmegaConf.create({"ckpt_path": None}))
