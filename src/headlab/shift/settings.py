"""The ``shift:`` config block (configs/shift/) as settings, and the names it may use.

``run.checks.validate`` checks the block (``check_shift``) before anything trains, so a typo
fails in a second with one line instead of after the training."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from headlab.layout.headline import DEFAULT_SCORE
from headlab.shift.corruptions import CORRUPTIONS

#: inputs of no class. fashion_mnist is read from ``fashion_mnist_dir`` (Debian's
#: dataset-fashion-mnist) and dropped with one log line when absent; kmnist is a torchvision
#: download (offline: a one-line error). Their near/far family: ``sets.FAMILY``.
OOD_SETS = (
    "letters",
    "inverted",
    "permuted",
    "gaussian",
    "gaussian_n01",
    "uniform",
    "fashion_mnist",
    "kmnist",
)
DOWNLOADED = ("kmnist",)
#: where Debian's package dataset-fashion-mnist puts its IDX files
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
#: largest translation that still leaves part of a 28-px digit in the image
MAX_TRANSLATION = 14
#: what a multi-label canvas's cells may hold instead of digits
CANVAS_FILLS = ("letters", "noise")


@dataclass(frozen=True)
class Settings:
    enabled: bool = True
    #: MNIST test images per shifted set and OOD images per set (the first n, fixed)
    samples: int = 2000
    seed: int = 0
    rotation: tuple[float, ...] = tuple(range(0, 181, 15))
    translation: tuple[int, ...] = (0, 2, 4, 6, 8, 10, 12, 14)
    corruptions: tuple[str, ...] = tuple(CORRUPTIONS)
    digits: bool = True
    ood: tuple[str, ...] = ("letters", "inverted", "permuted", "gaussian", "uniform")
    #: data=multilabel_mnist: canvases whose cells hold these instead of digits
    canvas_ood: tuple[str, ...] = ("letters", "noise")
    #: post-hoc calibrators fitted on in-distribution val, each scored on every shifted set
    methods: tuple[str, ...] = ("temperature",)
    bootstrap: int = 200
    #: OOD intervals cost ~8 ms per resample per (set, score) in scikit-learn: by default
    #: only for these scores (null: every score); the point values are there for all
    interval_scores: tuple[str, ...] | None = (DEFAULT_SCORE,)
    ood_bootstrap: int = 50
    download: bool = True
    #: FashionMNIST's t10k IDX files (.gz or not); absent: fashion_mnist dropped, one log line
    fashion_mnist_dir: str = FASHION_MNIST_DIR
    figures: bool = True
    level: float = 0.95

    @classmethod
    def from_config(cls, block: Any) -> Settings:
        """Settings from the ``shift`` block (a plain dict), lists as tuples. The block is
        checked by ``run.checks.validate`` (``check_shift``) before anything is built."""
        block = dict(block or {})
        for key in ("rotation", "translation", "corruptions", "ood", "canvas_ood", "methods"):
            if key in block:  # null: none of them
                block[key] = tuple(block[key] or ())
        if block.get("interval_scores") is not None:  # null: every score
            block["interval_scores"] = tuple(block["interval_scores"])
        settings = cls(**block)
        if "fashion_mnist" in settings.ood:
            from headlab.shift.fashion import fashion_mnist_present

            if not fashion_mnist_present(settings.fashion_mnist_dir):
                ood = tuple(name for name in settings.ood if name != "fashion_mnist")
                settings = replace(settings, ood=ood)
        return settings


def settings_of(cfg) -> Settings:
    """The run config's ``shift`` block as checked Settings (disabled when absent)."""
    from omegaconf import DictConfig, OmegaConf

    block = cfg.get("shift") if isinstance(cfg, DictConfig) else None
    if block is None:
        return Settings(enabled=False)
    return Settings.from_config(OmegaConf.to_container(block, resolve=True))
