"""The ``shift:`` config block (configs/shift/) as settings, and the names it may use.

``run.checks.validate`` checks the block (``check_shift``) before anything trains, so a typo
fails in a second with one line instead of after the training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headlab.shift.corruptions import CORRUPTIONS

#: inputs of no class; the last two are torchvision downloads (offline: a one-line error)
OOD_SETS = ("letters", "inverted", "permuted", "gaussian", "uniform", "fashion_mnist", "kmnist")
DOWNLOADED = ("fashion_mnist", "kmnist")
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
    interval_scores: tuple[str, ...] | None = ("msp",)
    ood_bootstrap: int = 50
    download: bool = True
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
        return cls(**block)


def settings_of(cfg) -> Settings:
    """The run config's ``shift`` block as checked Settings (disabled when absent)."""
    from omegaconf import DictConfig, OmegaConf

    block = cfg.get("shift") if isinstance(cfg, DictConfig) else None
    if block is None:
        return Settings(enabled=False)
    return Settings.from_config(OmegaConf.to_container(block, resolve=True))
