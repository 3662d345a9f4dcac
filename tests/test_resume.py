"""Resuming from last.ckpt continues exactly where the run stopped; identities are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from headlab.checkpoints.identity import IDENTITY_KEY, CheckpointMismatch
from headlab.data import MNISTDataModule
from headlab.run.from_checkpoint import RESUME_MAY_CHANGE
from headlab.run.train import train
from tests.test_train import run_cli

# a scheduler too, so its restored state is part of what must match
SCHEDULER = (
    "model.scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,"
    "step_size:1,gamma:0.5}"
)


def run(tiny_cfg, out: Path, *overrides: str) -> dict:
    train(
        tiny_cfg(
            f"paths.output_dir={out}",
            "trainer.deterministic=true",
            "logger=none",
            SCHEDULER,
            *overrides,
        )
    )
    return torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_resume_after_epoch_1_ends_with_the_weights_of_an_uninterrupted_run(tiny_cfg, tmp_path):
    first = run(tiny_cfg, tmp_path / "first", "trainer.max_epochs=1")
    assert first["epoch"] == 0
    resumed = run(
        tiny_cfg,
        tmp_path / "resumed",
        "trainer.max_epochs=2",
        f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}",
    )
    straight = run(tiny_cfg, tmp_path / "straight", "trainer.max_epochs=2")
    assert resumed["epoch"] == straight["epoch"] == 1
    assert resumed["global_step"] == straight["global_step"] == 2 * first["global_step"]
    assert_same_tensors(resumed["state_dict"], straight["state_dict"])
    assert resumed["lr_schedulers"] == straight["lr_schedulers"]
    adam_resumed, adam_straight = resumed["optimizer_states"][0], straight["optimizer_states"][0]
    for index, state in adam_straight["state"].items():
        assert_same_tensors(adam_resumed["state"][index], state)
    # without the saved RNG states the second epoch shuffles differently: weights differ
    no_rng = run(
        tiny_cfg,
        tmp_path / "no_rng",
        "trainer.max_epochs=2",
        "callbacks.rng_state=null",
        f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}",
    )
    assert not torch.equal(
        no_rng["state_dict"]["classifier.weight"], straight["state_dict"]["classifier.weight"]
    )


@pytest.mark.slow
def test_a_checkpoint_with_another_head_or_data_fails_and_says_which(
    tiny_cfg, tmp_path, monkeypatch
):
    run(tiny_cfg, tmp_path / "softmax", "trainer.max_epochs=1")
    ckpt = tmp_path / "softmax" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)[IDENTITY_KEY]["head"] == "softmax"
    with pytest.raises(
        CheckpointMismatch, match="head: trained with head=softmax, the config has head=sigmoid"
    ):
        train(
            tiny_cfg(
                f"paths.output_dir={tmp_path / 'test'}",
                "head=sigmoid",
                "train=false",
                f"ckpt_path={ckpt}",
            )
        )

    monkeypatch.setattr(MNISTDataModule, "name", "other_mnist")
    with pytest.raises(CheckpointMismatch) as err:  # resuming checks the same
        train(tiny_cfg(f"paths.output_dir={tmp_path / 'resume'}", f"ckpt_path={ckpt}"))
    assert "data: trained with data=mnist, the config has data=other_mnist" in str(err.value)
    assert "head=" not in str(err.value)


@pytest.mark.slow
def test_cli_resume_keeps_every_setting_of_the_run_or_refuses_in_one_line(tiny_mnist, tmp_path):
    common = (f"data.data_dir={tiny_mnist}", "data.val_size=100", "logger=none", "shift=none")
    common = (*common, "calibration=none")
    settings = ("trainer.limit_train_batches=3", "trainer.gradient_clip_val=0.5")
    first = run_cli(*common, *settings, "head=sigmoid", "trainer.max_epochs=1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    last = run / "checkpoints" / "last.ckpt"
    resumed = run_cli(f"ckpt_path={last}", "trainer.max_epochs=2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    (new_run,) = set((tmp_path / "logs" / "train" / "runs").iterdir()) - {run}
    resumed_ckpt = torch.load(new_run / "checkpoints" / "last.ckpt", weights_only=True)
    # 3 batches in each of 2 epochs: the limit came along (a full tiny epoch has 10)
    assert (resumed_ckpt["epoch"], resumed_ckpt["global_step"]) == (1, 6)
    assert resumed_ckpt[IDENTITY_KEY]["head"] == "sigmoid"
    ran = OmegaConf.load(new_run / ".hydra" / "config.yaml")
    assert (ran.trainer.gradient_clip_val, ran.trainer.max_epochs) == (0.5, 2)

    refused = run_cli(f"ckpt_path={last}", "trainer.gradient_clip_val=1.0", cwd=tmp_path)
    assert (refused.returncode, refused.stderr.splitlines()) == (
        1,
        [
            f"A resume continues the run of the checkpoint {last} as it was configured, but the "
            "command line changes trainer.gradient_clip_val: 0.5 -> 1.0. Drop these overrides, "
            "or start a new run without ckpt_path (a resume may change only "
            f"{', '.join(RESUME_MAY_CHANGE)})."
        ],
    )
