"""configs/trainer/default.yaml: the common Trainer knobs exist, at Lightning's own defaults."""

from __future__ import annotations

import inspect

import lightning as L
import pytest
from omegaconf import OmegaConf

from headlab.errors import ConfigValueError
from headlab.run.train import build
from tests.conftest import CONFIGS

KNOBS = (
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "precision",
    "gradient_clip_val",
    "accumulate_grad_batches",
    "val_check_interval",
    "fast_dev_run",
    "overfit_batches",
    "num_sanity_val_steps",
)


def test_listed_trainer_arguments_default_to_lightnings_own_values():
    listed = OmegaConf.load(CONFIGS / "trainer" / "default.yaml")
    signature = inspect.signature(L.Trainer.__init__).parameters
    assert set(KNOBS) <= set(listed)
    for key in KNOBS:
        assert listed[key] == signature[key].default, key


@pytest.mark.parametrize(
    "knob,attribute,value",
    [
        ("trainer.limit_train_batches=5", "limit_train_batches", 5),
        ("trainer.precision=bf16-mixed", "precision", "bf16-mixed"),
        ("trainer.gradient_clip_val=0.5", "gradient_clip_val", 0.5),
    ],
)
def test_knobs_are_set_without_a_plus_and_reach_the_trainer(tiny_cfg, knob, attribute, value):
    _, _, trainer = build(tiny_cfg(knob, "logger=none"))
    assert getattr(trainer, attribute) == value


def test_a_value_lightning_refuses_is_one_line_naming_the_group(tiny_cfg):
    with pytest.raises(ConfigValueError, match=r"^Invalid config: trainer: .*13"):
        build(tiny_cfg("trainer.precision=13", "logger=none"))


@pytest.mark.slow
def test_limit_train_batches_limits_the_steps(tiny_cfg):
    # 500 tiny training images at batch size 50: 10 batches an epoch without the limit
    cfg = tiny_cfg("trainer.limit_train_batches=5", "trainer.max_epochs=2", "logger=none")
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 2 * 5
