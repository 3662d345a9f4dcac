"""model.compile=true: the backbone is compiled, and checkpoints load compiled <-> uncompiled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from headlab.checkpoints.identity import IDENTITY_KEY, identity
from headlab.heads import SoftmaxCE
from headlab.models import MLP, Classifier
from headlab.models.classifier import compiled_keys
from headlab.run.train import train


def model(compiled: bool) -> Classifier:
    return Classifier(MLP(hidden=[16]), SoftmaxCE(), compile=compiled)


def checkpoint_of(source: Classifier) -> dict:
    checkpoint = {"state_dict": source.state_dict()}
    source.on_save_checkpoint(checkpoint)
    return checkpoint


def test_compiled_keys_add_and_strip_the_wrapper_name():
    state = {"backbone.1.weight": 1, "classifier.weight": 2}
    compiled = compiled_keys(state, compiled=True)
    assert compiled == {"backbone._orig_mod.1.weight": 1, "classifier.weight": 2}
    assert compiled_keys(compiled, compiled=False) == state
    assert compiled_keys(compiled, compiled=True) == compiled


@pytest.mark.parametrize("saved,loaded", [(True, False), (False, True), (True, True)])
def test_checkpoints_load_compiled_and_uncompiled(saved: bool, loaded: bool):
    torch.manual_seed(0)
    source, target = model(saved), model(loaded)
    assert any("_orig_mod" in k for k in source.state_dict()) == saved
    checkpoint = checkpoint_of(source)
    assert not any("_orig_mod" in k for k in checkpoint["state_dict"])  # saved portable
    checkpoint[IDENTITY_KEY] = identity(source.head, None)
    target.on_load_checkpoint(checkpoint)  # what Lightning calls before loading the weights
    target.load_state_dict(checkpoint["state_dict"])  # strict: every name must match
    for (_, a), (_, b) in zip(
        source.state_dict().items(), target.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_compiled_model_trains_an_epoch_on_cpu_and_its_checkpoint_tests_uncompiled(
    tiny_cfg, tmp_path: Path
):
    metrics = train(
        tiny_cfg("model.compile=true", "trainer.max_epochs=1", "logger=none", "calibration=none")
    )
    assert metrics["status"] == "completed" and metrics["test/acc"] > 0.5
    best = metrics["best_ckpt_path"]
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    assert "backbone.1.weight" in state and not any("_orig_mod" in k for k in state)

    eval_dir = tmp_path / "eval"
    tested = train(
        tiny_cfg(
            "train=false",
            f"ckpt_path={best}",
            f"paths.output_dir={eval_dir}",
            "logger=none",
            "calibration=none",
        )
    )
    assert tested["test/acc"] == metrics["test/acc"]
    assert json.loads((eval_dir / "metrics.json").read_text())["status"] == "completed"
