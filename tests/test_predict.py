"""scripts/predict.py: a checkpoint on new images, predictions.csv, and every bad input named."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from headlab.run.predict import PredictInputError, read_inputs
from headlab.run.train import build_model
from tests.test_eval import only_run, run_script

TRAIN = (
    "data.val_size=100",
    "model.backbone.hidden=[64]",
    "trainer.max_epochs=1",
    "callbacks.rich_progress_bar=null",
    "logger=none",
    "shift=none",
    "extras.print_config=false",
)


def read_rows(run_parent: Path) -> list[dict[str, str]]:
    with open(only_run(run_parent) / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def train_run(tmp_path: Path, *overrides: str) -> tuple[Path, str]:
    """A short training run; returns its folder and best checkpoint."""
    trained = run_script("train.py", *TRAIN, *overrides, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = only_run(tmp_path / "logs" / "train" / "runs")
    return run, str(next((run / "checkpoints").glob("epoch_*.ckpt")))


def model_probs(run: Path, ckpt: str, images: torch.Tensor) -> torch.Tensor:
    """The checkpoint's model, built from its run's config, on normalised image tensors."""
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    cfg.paths.output_dir = str(run)
    model = build_model(cfg, instantiate(cfg.data))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict(state)
    model.eval()
    normalize = instantiate(cfg.data).normalize
    with torch.no_grad():
        return model.head.probs(model(normalize(images.float())))


@pytest.mark.slow
def test_predict_on_png_digits_equals_the_model_on_their_tensors(tiny_mnist, tmp_path):
    import torchvision

    run, ckpt = train_run(tmp_path, f"data.data_dir={tiny_mnist}", "trainer.limit_train_batches=3")
    digits = torchvision.datasets.MNIST(str(tiny_mnist), train=False).data[:20]
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, digit in enumerate(digits):
        Image.fromarray(digit.numpy()).save(folder / f"digit_{i:02d}.png")

    # only the checkpoint and the folder: head, data and width come from the run's overrides
    predicted = run_script("predict.py", f"ckpt_path={ckpt}", f"input={folder}", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    rows = read_rows(tmp_path / "logs" / "predict" / "runs")

    expected = model_probs(run, ckpt, digits.unsqueeze(1))
    assert [r["input"] for r in rows] == [f"digit_{i:02d}.png" for i in range(20)]
    probs = torch.tensor([[float(r[f"p{k}"]) for k in range(10)] for r in rows])
    torch.testing.assert_close(probs, expected, rtol=1e-6, atol=1e-7)
    assert [int(r["predicted"]) for r in rows] == expected.argmax(dim=1).tolist()


@pytest.mark.slow
def test_predict_with_a_multilabel_checkpoint_writes_label_sets(tiny_mnist, tmp_path):
    run, ckpt = train_run(
        tmp_path,
        f"data.data_dir={tiny_mnist}",
        "data=multilabel_mnist",
        "data.train_samples=500",
        "data.val_samples=100",
        "data.test_samples=40",
        "head=sigmoid",
        "trainer.max_epochs=3",
    )
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    datamodule = instantiate(cfg.data)
    datamodule.setup("test")
    canvases = datamodule.test_set.images  # (40, 1, 56, 56) uint8
    np.save(tmp_path / "canvases.npy", canvases.numpy())

    predicted = run_script(
        "predict.py",
        f"ckpt_path={ckpt}",
        f"input={tmp_path / 'canvases.npy'}",
        "head.threshold=0.3",
        cwd=tmp_path,
    )
    assert predicted.returncode == 0, predicted.stderr
    rows = read_rows(tmp_path / "logs" / "predict" / "runs")
    expected = model_probs(run, ckpt, canvases)
    assert [r["input"] for r in rows] == [str(i) for i in range(40)]
    sets = [{int(k) for k in r["predicted"].split()} for r in rows]
    assert sets == [set(torch.nonzero(p > 0.3).flatten().tolist()) for p in expected]
    assert any(len(s) >= 2 for s in sets)  # label sets, not one argmax per row


def write_png(path: Path, size: int) -> None:
    Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(path)


def test_images_become_grey_tensors_of_the_models_size(tmp_path):
    Image.fromarray(np.full((28, 28, 3), 200, dtype=np.uint8)).save(tmp_path / "b.jpg")
    write_png(tmp_path / "a.png", 28)
    names, images = read_inputs(str(tmp_path), 28)
    assert names == ["a.png", "b.jpg"]
    assert images.shape == (2, 1, 28, 28) and images[0].max() == 0
    assert abs(images[1].mean().item() - 200) <= 1  # RGB to grey (JPEG rounding)
    np.save(tmp_path / "x.npy", np.zeros((3, 1, 56, 56), dtype=np.uint8))
    names, images = read_inputs(str(tmp_path / "x.npy"), 56)
    assert names == ["0", "1", "2"] and images.shape == (3, 1, 56, 56)


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.png").write_text("not an image")
    (tmp_path / "big").mkdir()
    write_png(tmp_path / "big" / "digit.png", 32)
    np.save(tmp_path / "flat.npy", np.zeros((4, 784), dtype=np.uint8))
    (tmp_path / "table.csv").write_text("a,b\n")
    return {
        "missing": (tmp_path / "nope", "does not exist"),
        "empty folder": (tmp_path / "empty", "is an empty folder"),
        "non-image file": (tmp_path / "notes", "readme.png is not a readable PNG/JPEG image"),
        "other size": (tmp_path / "big", "digit.png is 32x32 px, the model takes 28x28"),
        "npy of another shape": (tmp_path / "flat.npy", r"has shape \(4, 784\)"),
        "other file": (tmp_path / "table.csv", "neither a folder, a .npy array nor"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty folder",
        "non-image file",
        "other size",
        "npy of another shape",
        "other file",
    ],
)
def test_each_bad_input_is_named(tmp_path, case):
    path, message = bad_inputs(tmp_path)[case]
    with pytest.raises(PredictInputError, match=message):
        read_inputs(str(path), 28)


@pytest.mark.slow
def test_bad_input_on_the_command_line_is_one_line_and_exit_1(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}}, ckpt)  # passes the cheap checkpoint check; never loaded
    write_png(tmp_path / "big.png", 30)
    result = run_script(
        "predict.py", f"ckpt_path={ckpt}", f"input={tmp_path / 'big.png'}", cwd=tmp_path
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    errors = result.stderr.splitlines()  # the message alone, on stderr
    assert len(errors) == 1 and "big.png is 30x30 px, the model takes 28x28" in errors[0]
    assert "Traceback" not in output


@pytest.mark.slow
@pytest.mark.parametrize("script", ["eval.py", "predict.py"])
def test_without_ckpt_path_one_line_says_what_to_pass(tmp_path, script):
    result = run_script(script, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"scripts/{script} needs a checkpoint: pass ckpt_path=logs/train/runs/<time>/"
        "checkpoints/<name>.ckpt (a run's best or last checkpoint)."
    ]
    assert not (tmp_path / "logs").exists()  # no run folder either
