"""The config contract: compose + instantiate gives a ready data module and model."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.errors import MissingConfigException
from hydra.utils import instantiate

from headlab.heads import HEADS
from tests.conftest import CONFIGS, compose_train


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("head", sorted(HEADS))
def test_composed_model_gives_logits_and_a_loss_without_a_trainer(model: str, head: str):
    cfg = compose_train([f"model={model}", f"head={head}"])
    lit = instantiate(cfg.model)
    assert type(lit.head).__name__ == cfg.head._target_.rsplit(".", 1)[1]
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
    logits = lit(x)
    assert logits.shape == (8, 10)
    loss = lit.training_step((x, y), 0)
    assert loss.ndim == 0 and loss.requires_grad
    loss.backward()
    assert lit.classifier.weight.grad is not None


def test_composed_data_is_a_datamodule_that_loads_nothing_yet():
    cfg = compose_train(["data.data_dir=/nonexistent"])
    dm = instantiate(cfg.data)
    assert dm.target_kind == "index" and dm.num_classes == 10 and dm.train_set is None


def test_head_override_reaches_the_model_through_interpolation():
    cfg = compose_train(["head=soft", "head.smoothing=0.2"])
    assert instantiate(cfg.model).head.smoothing == pytest.approx(0.2)


def test_unknown_head_lists_the_available_heads():
    with pytest.raises(MissingConfigException) as err:
        compose_train(["head=tanh"])
    message = str(err.value)
    assert "head/tanh" in message
    assert all(name in message for name in HEADS)


GROUP_OPTIONS = sorted(
    (path.parent.name, path.stem)
    for path in CONFIGS.glob("*/*.yaml")
    if path.parent.name not in {"hydra", "hparams_search"}
)


@pytest.mark.parametrize("group,option", GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_group_option_composes_and_instantiates(group: str, option: str):
    cfg = compose_train([f"{group}={option}"])
    assert isinstance(instantiate(cfg.model), L.LightningModule)
    assert isinstance(instantiate(cfg.data), L.LightningDataModule)
