"""The ``shift:`` config block (configs/shift/), checked before anything trains so a typo
fails in a second with one line instead of after the training."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from headlab.calibration import METHODS
from headlab.errors import ConfigValueError
from headlab.shift.corruptions import CORRUPTIONS
from headlab.shift.scores import COMMON, SIGMOID_ONLY

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
    #: FashionMNIST's t10k IDX files (.gz or not); absent: fashion_mnist dropped, one log line
    fashion_mnist_dir: str = FASHION_MNIST_DIR
    figures: bool = True
    level: float = 0.95

    @classmethod
    def from_config(cls, block: Any) -> Settings:
        """Checked settings from the ``shift`` block (a plain dict); ConfigValueError names
        the key and what it accepts."""
        block = dict(block or {})
        unknown = sorted(set(block) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigValueError(
                f"shift.{unknown[0]} is not a setting; known: "
                + ", ".join(cls.__dataclass_fields__)
            )
        for key in ("rotation", "translation", "corruptions", "ood", "canvas_ood", "methods"):
            if key in block:  # null: none of them
                block[key] = tuple(block[key] or ())
        if block.get("interval_scores") is not None:  # null: every score
            block["interval_scores"] = tuple(block["interval_scores"])
        settings = cls(**block)
        settings.check()
        if "fashion_mnist" in settings.ood:
            from headlab.shift.fashion import fashion_mnist_present

            if not fashion_mnist_present(settings.fashion_mnist_dir):
                ood = tuple(name for name in settings.ood if name != "fashion_mnist")
                settings = replace(settings, ood=ood)
        return settings

    def check(self) -> None:
        def named(key: str, values, known) -> None:
            bad = [v for v in values if v not in known]
            if bad:
                raise ConfigValueError(
                    f"shift.{key}: unknown {bad[0]!r}; known: {', '.join(known)}"
                )

        named("corruptions", self.corruptions, tuple(CORRUPTIONS))
        named("ood", self.ood, OOD_SETS)
        named("methods", self.methods, METHODS)
        named("canvas_ood", self.canvas_ood, ("letters", "noise"))
        named("interval_scores", self.interval_scores or (), COMMON + SIGMOID_ONLY)
        for angle in self.rotation:
            if not 0 <= float(angle) <= 360:
                raise ConfigValueError(f"shift.rotation: angles lie in 0..360 degrees, got {angle}")
        for px in self.translation:
            if not (float(px).is_integer() and 0 <= px <= MAX_TRANSLATION):
                raise ConfigValueError(
                    f"shift.translation: whole pixels in 0..{MAX_TRANSLATION}, got {px}"
                )
        if self.samples < 10:
            raise ConfigValueError(f"shift.samples must be >= 10, got {self.samples}")
        if self.bootstrap < 0 or self.ood_bootstrap < 0:
            raise ConfigValueError(
                "shift.bootstrap and shift.ood_bootstrap must be >= 0 (0: no per-run "
                f"intervals), got {self.bootstrap} and {self.ood_bootstrap}"
            )


def settings_of(cfg) -> Settings:
    """The run config's ``shift`` block as checked Settings (disabled when absent)."""
    from omegaconf import DictConfig, OmegaConf

    block = cfg.get("shift") if isinstance(cfg, DictConfig) else None
    if block is None:
        return Settings(enabled=False)
    return Settings.from_config(OmegaConf.to_container(block, resolve=True))
