"""The two head studies compose to the promised sweeps (which heads, seeds, data, epochs)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from headlab.heads import HEADS
from tests.conftest import CONFIGS


def sweep(experiment: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train.yaml", [f"experiment={experiment}"], return_hydra_config=True)


def test_compare_multilabel_is_four_heads_times_three_seeds_on_multilabel_mnist():
    cfg = sweep("compare_multilabel")
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    params = cfg.hydra.sweeper.params
    assert params.head.split(",") == ["sigmoid", "asl", "sigmoid_focal", "softmax"]
    assert params.seed == "1,2,3"
    assert cfg.data._target_.endswith("MultiLabelMNISTDataModule") and cfg.trainer.max_epochs == 3
    assert all(head in HEADS for head in params.head.split(","))


def test_compare_heads_includes_focal_and_poly():
    heads = sweep("compare_heads").hydra.sweeper.params.head.split(",")
    assert {"focal", "poly"} <= set(heads) and all(head in HEADS for head in heads)
