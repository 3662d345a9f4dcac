"""scripts/eval.py: a checkpoint's test metrics reproduced in a run folder of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from headlab.checkpoints.config import CONFIG_KEY
from headlab.checkpoints.files import checkpoint_path
from headlab.errors import CheckpointError, ConfigValueError
from headlab.run.from_checkpoint import RESUME_MAY_CHANGE, apply_run_config
from tests import launch
from tests.conftest import ROOT, compose_train
from tests.conftest import compose_config as compose


def run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEADLAB_ROOT": str(cwd), "PYTHONPATH": str(ROOT / "src")}
    return launch.run(
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
        "trainer.limit_train_batches=2",  # short of perfect, so accuracy is not trivially 1
        "callbacks.rich_progress_bar=null",
        "shift=none",
        "calibration=none",  # the post-test analyses are not what eval is tested for here
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    run = only_run(tmp_path / "logs" / "train" / "runs")
    train_metrics = json.loads((run / "metrics.json").read_text())
    assert 0.1 < train_metrics["test/acc"] < 1.0

    # only the checkpoint, moved out of its run folder: data, head and width travel inside it
    moved = shutil.copy(train_metrics["best_ckpt_path"], tmp_path / "moved.ckpt")
    evaluated = run_script(
        "eval.py", f"ckpt_path={moved}", "shift=none", "calibration=none", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr
    eval_run = only_run(tmp_path / "logs" / "eval" / "runs")
    eval_metrics = json.loads((eval_run / "metrics.json").read_text())
    assert eval_metrics["test/acc"] == train_metrics["test/acc"]
    assert eval_metrics["test/loss"] == train_metrics["test/loss"]
    assert eval_metrics["tested_ckpt_path"] == str(moved)
    ran = OmegaConf.load(eval_run / ".hydra" / "config.yaml")  # what really ran
    assert ran.head._target_.endswith("SigmoidBCE") and list(ran.model.backbone.hidden) == [64]
    assert ran.trainer.limit_train_batches is None  # the eval's own trainer

    # a sweep job's run folder (experiment=compare_heads) is not replayed: one run, no sweep
    overrides = run / ".hydra" / "overrides.yaml"
    OmegaConf.save(
        OmegaConf.create([*OmegaConf.load(overrides), "experiment=compare_heads"]), overrides
    )
    best = train_metrics["best_ckpt_path"]
    again = run_script(
        "eval.py",
        f"ckpt_path={best}",
        "shift=none",
        "calibration=none",
        "logger=none",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert len(list((tmp_path / "logs" / "eval" / "runs").iterdir())) == 2
    assert not (tmp_path / "logs" / "compare_heads").exists()

    # the user's head wins over the run's, and the checkpoint refuses it in one line
    wrong = run_script("eval.py", f"ckpt_path={moved}", "head=softmax", "shift=none", cwd=tmp_path)
    assert (wrong.returncode, wrong.stderr.splitlines()) == (
        1,
        [
            f"{moved} does not match the current config: head: trained with head=sigmoid, the "
            "config has head=softmax. Drop head= from the command line (eval, predict and "
            "resume take the checkpoint's), or pass a checkpoint trained with the current ones."
        ],
    )


def fake_checkpoint(path: Path, config=None) -> Path:
    """A file the loaders accept, carrying ``config`` the way RunConfigInCheckpoint writes it."""
    content = {"state_dict": {}}
    if config is not None:
        content[CONFIG_KEY] = OmegaConf.to_yaml(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)
    return path


def test_eval_takes_data_model_head_seed_from_the_checkpoint_and_yours_win(tmp_path):
    trained = compose_train(
        ["head=sigmoid", "model=cnn", "seed=3", "data.batch_size=32", "trainer.max_epochs=9"]
    )
    ckpt = fake_checkpoint(tmp_path / "anywhere" / "x.ckpt", trained)  # in no run folder
    given = [f"ckpt_path={ckpt}", "data.batch_size=512"]
    cfg = apply_run_config(compose("eval.yaml", given), given)
    assert cfg.head == trained.head and cfg.model == trained.model and cfg.seed == 3
    assert cfg.data.batch_size == 512  # yours
    assert {k: v for k, v in cfg.data.items() if k != "batch_size"} == {
        k: v for k, v in trained.data.items() if k != "batch_size"
    }
    assert cfg.trainer == compose("eval.yaml", given).trainer  # the eval's own trainer
    # a group you name is yours (and the identity check then refuses a wrong one)
    mine = [f"ckpt_path={ckpt}", "head=softmax"]
    assert apply_run_config(compose("eval.yaml", mine), mine).head._target_.endswith("SoftmaxCE")


def test_a_sweep_jobs_checkpoint_brings_no_sweep_back(tmp_path):
    """A compare_heads job's config: the experiment's model settings, none of its sweep."""
    job = compose_train(["experiment=compare_heads", "head=soft", "seed=2"])
    ckpt = fake_checkpoint(tmp_path / "job.ckpt", job)
    given = [f"ckpt_path={ckpt}"]
    cfg = apply_run_config(compose("eval.yaml", given), given)
    assert cfg.model.optimizer.fused is True and cfg.head == job.head and cfg.seed == 2
    assert cfg.callbacks == compose("eval.yaml", given).callbacks
    assert "hydra" not in cfg and cfg.task_name == "eval"


def test_an_old_checkpoint_falls_back_to_its_run_folders_config(tmp_path, caplog):
    run = tmp_path / "run"
    trained = compose_train(["head=sigmoid", "seed=5"])
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(trained, run / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(["head=sigmoid", "seed=5"]), run / ".hydra" / "overrides.yaml")
    ckpt = fake_checkpoint(run / "checkpoints" / "last.ckpt")  # no config inside
    given = [f"ckpt_path={ckpt}"]
    cfg = apply_run_config(compose("eval.yaml", given), given)
    assert (cfg.head, cfg.seed) == (trained.head, 5)
    # outside a run folder: the command line alone, and a warning that says so
    loose = fake_checkpoint(tmp_path / "loose.ckpt")
    given = [f"ckpt_path={loose}"]
    cfg = apply_run_config(compose("eval.yaml", given), given)
    assert cfg.head == compose("eval.yaml", given).head
    assert "carries no run config" in caplog.text


def test_resume_keeps_the_runs_trainer_and_refuses_a_changed_key_in_one_line(tmp_path):
    trained = compose_train(
        [
            "trainer.limit_train_batches=3",
            "trainer.gradient_clip_val=0.5",
            "trainer.deterministic=true",
        ]
    )
    ckpt = fake_checkpoint(tmp_path / "last.ckpt", trained)
    given = [f"ckpt_path={ckpt}", "trainer.max_epochs=7"]
    cfg = apply_run_config(compose_train(given), given)
    expected = OmegaConf.merge(trained.trainer, {"max_epochs": 7})
    assert OmegaConf.to_container(cfg.trainer) == OmegaConf.to_container(expected)
    assert cfg.callbacks == trained.callbacks

    changed = [f"ckpt_path={ckpt}", "trainer.gradient_clip_val=1.0", "head=sigmoid"]
    with pytest.raises(ConfigValueError) as err:
        apply_run_config(compose_train(changed), changed)
    assert str(err.value) == (
        f"A resume continues the run of the checkpoint {ckpt} as it was configured, but the "
        "command line changes trainer.gradient_clip_val: 0.5 -> 1.0; head: "
        f"{OmegaConf.to_container(trained.head)!r} -> "
        f"{OmegaConf.to_container(compose_train(changed).head)!r}. Drop these overrides, or "
        "start a new run without ckpt_path (a resume may change only "
        f"{', '.join(RESUME_MAY_CHANGE)})."
    )
    same = [f"ckpt_path={ckpt}", "trainer.gradient_clip_val=0.5"]  # the run's own value
    assert apply_run_config(compose_train(same), same).trainer.gradient_clip_val == 0.5


def test_eval_without_a_checkpoint_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=nope\.ckpt: no such file"):
        checkpoint_path(OmegaConf.create({"ckpt_path": "nope.ckpt"}))
    with pytest.raises(ValueError, match="eval needs a checkpoint"):
        checkpoint_path(OmegaConf.create({"ckpt_path": None}))


def test_a_checkpoint_path_that_is_no_file_is_one_line_before_composing(tmp_path):
    missing = tmp_path / "nope.ckpt"
    given = [f"ckpt_path={missing}"]
    with pytest.raises(CheckpointError) as err:
        apply_run_config(compose("eval.yaml", given), given)
    assert str(err.value) == f"ckpt_path={missing} does not exist."
