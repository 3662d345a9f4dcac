"""Predictions of a checkpoint on new images: ``scripts/predict.py`` writes predictions.csv.

Inputs are turned into exactly what the model saw in training: one grey channel at the
data's image size (28, or the multi-label canvas), 0..255 pixel values normalised by the data
module's own ``normalize``. Anything that cannot be, is named; files that are not images by
their extension (a README, ``.DS_Store``) are skipped and counted.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from headlab.callbacks.hooks import skip_unused_batch_hooks
from headlab.errors import RunError

log = logging.getLogger(__name__)

PREDICTIONS_CSV = "predictions.csv"


class PredictInputError(RunError, ValueError):
    """``input=`` names nothing usable: missing, empty, unreadable or the wrong size."""


def image_size_of(cfg: DictConfig) -> int:
    """The side of the model's input: the data's canvas (multi-label) or MNIST's 28."""
    return int(cfg.data.get("image_size", 28))


def channels_of(cfg: DictConfig) -> tuple[int, bool]:
    """The model's input channels and whether any image size is resized (own image data)."""
    return int(cfg.data.get("channels", 1)), bool(cfg.data.get("resize", False))


def read_image(path: Path, size: int, channels: int = 1, resize: bool = False) -> np.ndarray:
    """A PNG/JPEG as a (size, size) uint8 grey image; colour images are converted to grey.
    With ``channels=3`` or ``resize`` (data=image_folder/image_csv): (channels, size, size)
    the way that data module reads its files."""
    from PIL import Image, UnidentifiedImageError

    from headlab.data.image_files import to_8_bits

    if channels != 1 or resize:
        from headlab.data.image_files import ImageDataError
        from headlab.data.image_files import read_image as read_like_data

        try:
            return read_like_data(path, size, channels, resize)
        except ImageDataError as err:
            raise PredictInputError(f"input: {err}") from None
    try:
        with Image.open(path) as image:
            grey = np.asarray(to_8_bits(image).convert("L"))
    except (UnidentifiedImageError, OSError) as err:
        raise PredictInputError(
            f"input: {path} is not a readable PNG/JPEG image ({err}); remove it from the folder."
        ) from err
    if grey.shape != (size, size):
        raise PredictInputError(
            f"input: {path} is {grey.shape[1]}x{grey.shape[0]} px, the model takes "
            f"{size}x{size}: resize it to {size}x{size}."
        )
    return grey


def read_folder(folder: Path, size: int, channels: int = 1, resize: bool = False):
    """The folder's images by extension, as torchvision's ImageFolder picks them; other files
    (a README, .DS_Store) and subfolders (not searched) are skipped, and counted in one line."""
    from headlab.data.image_files import is_image

    entries = sorted(folder.iterdir())
    every = [p for p in entries if p.is_file()]
    folders = [p for p in entries if p.is_dir()]
    files = [p for p in every if is_image(p)]
    if len(every) > len(files) or folders:
        log.warning(
            "input: skipped %d files that are not images by their extension and %d subfolders "
            "(not searched: give each folder as its own input)",
            len(every) - len(files), len(folders),
        )  # fmt: skip
    if not files:
        skipped = len(every) + len(folders)
        what = "is an empty folder" if not skipped else f"holds no images ({skipped} skipped)"
        raise PredictInputError(
            f"input={folder} {what}: put PNG/JPEG images of {size}x{size} px in it."
        )
    return [p.name for p in files], np.stack([read_image(p, size, channels, resize) for p in files])


def read_array(path: Path, size: int, channels: int = 1) -> tuple[list[str], np.ndarray]:
    """A .npy of N images as (N, channels, size, size). Grey: (N, S, S) or (N, 1, S, S);
    RGB: (N, 3, S, S) or channels last, (N, S, S, 3), as images are usually stored."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise PredictInputError(f"input={path} is not a readable .npy array ({err}).") from err
    if channels == 1 and array.ndim == 3:
        array = array[:, None]
    elif channels == 3 and array.ndim == 4 and array.shape[1:] == (size, size, 3):
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1:] != (channels, size, size) or len(array) == 0:
        shapes = (
            f"(N, {size}, {size}) or (N, 1, {size}, {size})"
            if channels == 1
            else f"(N, 3, {size}, {size}) or (N, {size}, {size}, 3)"
        )
        raise PredictInputError(
            f"input={path} has shape {array.shape}, the model takes {shapes} arrays of "
            "0..255 pixel values."
        )
    if not np.issubdtype(array.dtype, np.number) or array.min() < 0 or array.max() > 255:
        raise PredictInputError(
            f"input={path} must hold pixel values in 0..255 (dtype {array.dtype})."
        )
    return [str(i) for i in range(len(array))], array


def read_inputs(
    spec: str, size: int, channels: int = 1, resize: bool = False
) -> tuple[list[str], torch.Tensor] | None:
    """Names and (N, C, size, size) unnormalised images of ``input=``; None for ``test``."""
    from headlab.data.image_files import is_image

    if spec == "test":
        return None
    path = Path(spec).expanduser()
    if not path.exists():
        raise PredictInputError(
            f"input={spec} does not exist: pass a folder of PNG/JPEG images, a .npy file, "
            "or input=test."
        )
    if path.is_dir():
        names, images = read_folder(path, size, channels, resize)
    elif path.suffix.lower() == ".npy":
        names, images = read_array(path, size, channels)
    elif is_image(path):
        names, images = [path.name], read_image(path, size, channels, resize)[None]
    else:
        raise PredictInputError(
            f"input={spec} is neither a folder, a .npy array nor a PNG/JPEG image."
        )
    tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return names, tensor if tensor.ndim == 4 else tensor.unsqueeze(1)


def prediction_rows(
    names: list[str],
    probs: torch.Tensor,
    multi_label: bool,
    threshold: float,
    class_names: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per input: its name, the predicted label (or label set) and every probability.
    With the data's ``class_names`` (own images) the labels are named, sets joined by ``;``,
    and the probability columns too (``p_cat``, in the model's class order); else ``p0..pK``."""
    rows = []
    label = (lambda k: str(k)) if class_names is None else (lambda k: class_names[k])
    column = (lambda k: f"p{k}") if class_names is None else (lambda k: f"p_{class_names[k]}")
    joiner = " " if class_names is None else ";"
    for name, p in zip(names, probs.tolist(), strict=True):
        if multi_label:  # the labels above head.threshold, e.g. "2 5 7" (empty: none)
            predicted = joiner.join(label(k) for k, v in enumerate(p) if v > threshold)
        else:
            predicted = label(int(np.argmax(p)))
        row = {"input": name, "predicted": predicted}
        row.update({column(k): f"{v:.9g}" for k, v in enumerate(p)})
        rows.append(row)
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def predict(cfg: DictConfig) -> Path:
    """Run ``cfg.ckpt_path`` on ``cfg.input`` through ``Trainer.predict``; returns the CSV path."""
    from headlab.checkpoints.files import check_checkpoint
    from headlab.data.batches import InMemoryImages, batch_loader
    from headlab.run.checks import check_numbers
    from headlab.run.extras import route_lightning_logs
    from headlab.run.instantiate import instantiate_each, instantiate_group
    from headlab.run.train import build_model

    route_lightning_logs()
    check_numbers(cfg)
    check_checkpoint(cfg.ckpt_path)  # cheap checks first: nothing is loaded for a bad input
    inputs = read_inputs(str(cfg.input), image_size_of(cfg), *channels_of(cfg))
    # its normalisation; the test split for input=test
    datamodule = instantiate_group(cfg.data, "data")
    if inputs is None:
        datamodule.prepare_data()
        datamodule.setup("test")
        names = [str(i) for i in range(len(datamodule.test_set))]
        images = datamodule.test_set.images
    else:
        names, images = inputs
    normalized = datamodule.normalize(images.clone())
    loader = batch_loader(
        InMemoryImages(normalized, torch.arange(len(names))), datamodule.eval_batch_size, False
    )
    model = build_model(cfg, datamodule)
    callbacks = instantiate_each(cfg.get("callbacks"))
    trainer = instantiate_group(cfg.trainer, "trainer", callbacks=callbacks, logger=False)
    skip_unused_batch_hooks(trainer.callbacks)
    log.info("Predicting %d inputs with %s", len(names), cfg.ckpt_path)
    batches = trainer.predict(model, loader, ckpt_path=cfg.ckpt_path, weights_only=True)
    probs = torch.cat(batches)
    multi_label = model.eval_target_kind == "multi_hot"
    class_names = getattr(datamodule, "class_names", None)  # own image data: named classes
    rows = prediction_rows(names, probs, multi_label, model.head.threshold, class_names)
    path = Path(cfg.paths.output_dir) / PREDICTIONS_CSV
    write_rows(path, rows)
    log.info("Predictions: %s", path)
    return path
