"""The config contract: compose + instantiate gives a ready data module and model."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from hydra.errors import MissingConfigException
from hydra.utils import instantiate
from PIL import Image

from headlab.heads import HEADS, SoftLabelCE
from headlab.models import MLP, Classifier
from headlab.models.classifier import TargetKindMismatch
from headlab.run.train import build, build_model
from tests.conftest import CONFIGS, compose_config, compose_train


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


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.max_epochs=3", "data.data_dir=/x", "callbacks.rich_progress_bar=null"],
        ["head=focal", "head.gamma=0.5", "model=cnn", "model.optimizer.lr=0.01"],
        ["experiment=compare_heads", "head=soft", "seed=2", "shift=none"],
        ["data=image_csv", "data.label_separator='|'", "+extra.key=1", "~calibration"],
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=3", "trainer=ddp_cpu", "seed=7"],
    ],
)
def test_the_tests_compose_gives_hydras_config(overrides: list[str]):
    """conftest composes the config groups once and applies value overrides with Hydra's
    own function afterwards; the result must be what Hydra's compose gives, flags included."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        hydras = compose(config_name="train.yaml", overrides=overrides)
    ours = compose_config("train.yaml", overrides)
    assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras)
    assert OmegaConf.is_struct(ours) and OmegaConf.is_struct(hydras)


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
def test_every_group_option_builds_a_whole_run_without_loading_data(
    group: str, option: str, tmp_path, monkeypatch
):
    """Data, model (head included), loggers, callbacks and trainer, as a run builds them; the
    option's own group must show up in what was built, not only compose."""
    monkeypatch.chdir(tmp_path)  # loggers and checkpoints create their folders here
    monkeypatch.setenv("WANDB_MODE", "offline")
    extra = []
    if option.startswith("image_"):  # own images: a folder of two classes (docs/own_data.md)
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / name / "0.png")
        (tmp_path / "labels.csv").write_text("file,labels\na/0.png,x\nb/0.png,y\n")
        extra = [f"data.root={tmp_path}"]
    cfg = compose_train([f"{group}={option}", f"paths.output_dir={tmp_path}", *extra])
    if group == "trainer" and option in ("gpu", "ddp") and not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    datamodule, model, trainer = build(cfg)
    assert isinstance(model, L.LightningModule) and isinstance(trainer, L.Trainer)
    assert datamodule.train_set is None  # nothing loaded yet
    built = {
        "head": lambda: type(model.head).__name__ == cfg.head._target_.rsplit(".", 1)[1],
        "data": lambda: type(datamodule).__name__ == cfg.data._target_.rsplit(".", 1)[1],
        "model": lambda: (
            type(model.backbone).__name__ == cfg.model.backbone._target_.rsplit(".")[-1]
        ),
        "logger": lambda: (
            len(trainer.loggers) == len([v for v in (cfg.logger or {}).values() if v])
        ),
        "callbacks": lambda: (
            len(trainer.callbacks) >= len([v for v in (cfg.callbacks or {}).values() if v])
        ),
        "calibration": lambda: cfg.calibration.enabled == (option != "none"),
    }
    assert built.get(group, lambda: True)(), f"{group}={option} did not reach the built run"


@pytest.mark.parametrize(
    "data,kinds",
    [
        ("mnist", ("index", "index")),
        ("multilabel_mnist", ("multi_hot", "multi_hot")),
        ("soft_mnist", ("distribution", "distribution")),
        ("soft_mnist data.hard_targets=true", ("index", "distribution")),
    ],
)
def test_the_model_takes_its_target_kinds_from_the_data_module(data: str, kinds):
    cfg = compose_train(["head=soft", *f"data={data}".split()])
    datamodule = instantiate(cfg.data)  # the one place that declares them
    assert (datamodule.target_kind, datamodule.eval_target_kind) == kinds
    model = build_model(cfg, datamodule)
    assert (model.target_kind, model.eval_target_kind) == kinds
    assert "target_kind" not in cfg.data and "target_kind" not in cfg.model


@pytest.mark.parametrize(
    "kind,target,seen",
    [
        ("index", torch.full((4, 10), 0.1), "distribution"),
        ("distribution", torch.arange(4), "index"),
        ("distribution", torch.zeros(4, 10, dtype=torch.int64), "multi_hot"),
        ("multi_hot", torch.arange(4), "index"),
    ],
)
def test_a_target_that_contradicts_the_kind_names_both_kinds(kind, target, seen):
    model = Classifier(MLP(hidden=[8]), SoftLabelCE(), target_kind=kind)
    with pytest.raises(TargetKindMismatch, match=f"expects '{kind}' targets but got '{seen}'"):
        model.training_step((torch.randn(4, 1, 28, 28), target), 0)


@pytest.mark.slow
def test_the_python_api_trains_a_soft_model_on_a_fixed_distribution():
    """The README's Python API, no Trainer: the model must train on the distribution itself,
    not on a label-smoothed version of it (which would end near 0.46 for the 0.5 class)."""
    torch.manual_seed(0)
    cfg = compose_train(
        ["head=soft", "data=soft_mnist", "model.backbone.hidden=[64]", "model.backbone.dropout=0"]
    )
    model = build_model(cfg, instantiate(cfg.data))
    optimizer = model.configure_optimizers()
    x = torch.randn(16, 1, 28, 28)
    target = torch.zeros(16, 10)
    target[:, 3], target[:, 7], target[:, 1] = 0.5, 0.3, 0.2
    for _ in range(300):
        optimizer.zero_grad()
        model.training_step((x, target), 0).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        probs = model.head.probs(model(x)).mean(dim=0)
    assert torch.allclose(probs, target[0], atol=0.01), probs
