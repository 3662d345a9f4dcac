"""The shifted sets (MNIST test with labels kept) and the OOD sets (no class), by name.

Every set is a deterministic function of (source images, seed, name): a generator is seeded
from the seed and the set's name, so adding a set never changes another one.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from headlab.errors import RunError
from headlab.shift import transforms
from headlab.shift.cache import load_or_build
from headlab.shift.corruptions import CORRUPTIONS
from headlab.shift.letters import letters
from headlab.shift.settings import Settings

#: MNIST's pixel mean and standard deviation on the 0..255 scale (Gaussian noise matches them)
PIXEL_MEAN, PIXEL_STD = 0.1307 * 255, 0.3081 * 255


class OODDataMissing(RunError):
    """A requested torchvision OOD set is not on disk and cannot be downloaded."""


#: near or far from MNIST, per OOD set (and per shifted kind that is a domain change).
#: near: the same kind of picture (a centred glyph or object on black) of another class or
#: hand; far: no such picture at all (noise, scrambled pixels, a mostly white image).
FAMILY = {
    "letters": "near",
    "fashion_mnist": "near",
    "kmnist": "near",
    "digits": "near",  # sklearn digits: a covariate shift (labels kept), not an OOD set
    "inverted": "far",
    "permuted": "far",
    "gaussian": "far",
    "gaussian_n01": "far",
    "uniform": "far",
}


def family(name: str) -> str:
    """``"near"`` or ``"far"`` for an OOD set (or ``"digits"``); ValueError for others."""
    try:
        return FAMILY[name]
    except KeyError:
        raise ValueError(f"no near/far family for {name!r}; known: {', '.join(FAMILY)}") from None


@dataclass(frozen=True)
class Shifted:
    """One shifted set: ``kind`` (rotation, translation, corruption, digits) and ``level``."""

    kind: str
    level: str
    images: torch.Tensor  # (n, 1, 28, 28) uint8
    targets: torch.Tensor  # (n,) int64

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.level}"

    @property
    def family(self) -> str | None:
        """``"near"`` for the sklearn digits (a change of domain); None for the others."""
        return FAMILY.get(self.kind)


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator for one named set: its own stream, whatever else is built."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


#: built sets kept for the next run in this process (a sweep's jobs share their sets)
_BUILT: dict[tuple, torch.Tensor | tuple[torch.Tensor, ...]] = {}
#: at most this many bytes of sets are kept (the default sets take ~60 MB)
MAX_KEPT_BYTES = 512 * 2**20


def fingerprint(images: torch.Tensor) -> tuple:
    """Shape, dtype and CRC-32 of the pixels: which source images a set was built from."""
    data = images.contiguous().numpy().tobytes()
    return (tuple(images.shape), str(images.dtype), zlib.crc32(data))


def built(name: str, seed: int, source: tuple, build, disk: bool = True):
    """The set ``name`` built with ``seed`` from the images whose ``fingerprint`` is
    ``source``: built once per process, and read from the disk cache (``shift.cache``) when
    ``disk`` and a run before built it.

    Every set is a deterministic function of (source, seed, name), and the jobs a process runs
    (all of them under Hydra's basic launcher, each worker's share under joblib) test on the
    same source images: the study's 45 jobs built the same 38 sets 45 times (~2.5 s a job).
    ``disk=False`` for sets that are read from files or cost less than reading them back.
    Callers must not modify the set (a tensor, or a tuple of tensors)."""
    key = (name, int(seed), source)
    kept = _BUILT.get(key)
    if kept is None:
        kept = load_or_build(name, key[1:], build) if disk else build()
        if sum(map(nbytes, _BUILT.values())) + nbytes(kept) <= MAX_KEPT_BYTES:
            _BUILT[key] = kept
    return kept


def nbytes(value: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    """Bytes of a built set: a tensor, or a tuple of tensors (images and labels)."""
    tensors = value if isinstance(value, tuple) else (value,)
    return sum(t.numel() * t.element_size() for t in tensors)


def level_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def sklearn_digits(n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` (default all 1,797) of scikit-learn's bundled 8x8 digits (ink 0..16,
    high = ink) in MNIST's format, and their labels; built once (``built``: ~1 s a run)."""
    name = f"digits/sklearn/{'all' if n is None else int(n)}"
    return built(name, 0, ("sklearn.datasets.load_digits",), lambda: _sklearn_digits(n))


def _sklearn_digits(n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images[:n] * (255.0 / 16.0)
    upsampled = torch.nn.functional.interpolate(
        torch.from_numpy(images).float()[:, None], size=64, mode="bicubic", align_corners=False
    )
    glyphs = transforms.as_uint8(upsampled)[:, 0].numpy()
    labels = torch.from_numpy(digits.target[:n]).long()
    return transforms.to_mnist_formats(list(glyphs)), labels


def shifted_sets(images: torch.Tensor, targets: torch.Tensor, settings: Settings):
    """Yield every shifted set the settings ask for, each built once per process (``built``)."""
    seed, source = settings.seed, fingerprint(images)
    for angle in settings.rotation:
        name = f"rotation/{level_name(angle)}"
        rotated = built(name, seed, source, lambda a=angle: transforms.rotate(images, a))
        yield Shifted("rotation", level_name(angle), rotated, targets)
    for px in settings.translation:
        rng = rng_for(seed, f"translation/{px}")
        name = f"translation/{level_name(px)}"
        moved = built(
            name, seed, source, lambda p=px, r=rng: transforms.translate(images, int(p), r)
        )
        yield Shifted("translation", level_name(px), moved, targets)
    for name in settings.corruptions:
        rng = rng_for(seed, f"corruption/{name}")
        corrupted = built(
            f"corruption/{name}", seed, source, lambda c=CORRUPTIONS[name], r=rng: c(images, r)
        )
        yield Shifted("corruption", name, corrupted, targets)
    if settings.digits:  # at most as many as the other sets (all 1,797 from samples=1797)
        yield Shifted("digits", "sklearn", *sklearn_digits(len(images)))


def torchvision_test_images(name: str, data_dir: str | Path, download: bool) -> torch.Tensor:
    """KMNIST test images through torchvision, or OODDataMissing."""
    from torchvision import datasets

    cls = {"kmnist": datasets.KMNIST}[name]
    raw = Path(data_dir) / cls.__name__ / "raw"
    try:
        return cls(str(data_dir), train=False, download=download).data.unsqueeze(1)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError variously
        raise OODDataMissing(
            f"shift.ood asks for {name} but {cls.__name__} is not in {raw.resolve()} and could "
            f"not be downloaded ({type(err).__name__}); put its t10k IDX files there or drop "
            f"{name} from shift.ood"
        ) from err


def check_available(settings: Settings, data_dir: str | Path) -> None:
    """Fail before training when a requested downloaded set cannot be had."""
    if settings.enabled:
        for name in settings.ood:
            if name == "kmnist":
                torchvision_test_images(name, data_dir, settings.download)


#: the OOD sets worth the disk cache: built from no file, and costing more than a read
ON_DISK = ("letters",)


def ood_set(name: str, images: torch.Tensor, n: int, settings: Settings, data_dir) -> torch.Tensor:
    """``n`` inputs of no MNIST class; ``images`` are MNIST test images for the derived sets.
    uint8 images, except ``gaussian_n01``: float pixels beyond 0..255, as its definition asks."""
    return built(
        f"ood/{name}/{n}",
        settings.seed,
        fingerprint(images[:n]),
        lambda: _ood_set(name, images, n, settings, data_dir),
        disk=name in ON_DISK,
    )


def _ood_set(name: str, images: torch.Tensor, n: int, settings: Settings, data_dir) -> torch.Tensor:
    rng = rng_for(settings.seed, f"ood/{name}")
    shape = (n, 1, 28, 28)
    if name == "letters":
        return letters(n, rng)
    if name == "inverted":
        return transforms.invert(images[:n])
    if name == "permuted":
        return transforms.permute_pixels(images[:n], rng)
    if name == "gaussian":
        return transforms.as_uint8(torch.from_numpy(rng.normal(PIXEL_MEAN, PIXEL_STD, shape)))
    if name == "gaussian_n01":
        # Hendrycks & Gimpel's N(0, 1) per pixel on the [0, 1] scale, *not* clipped: the one
        # set of float pixels (0..255 units; normalising a float batch is the same map)
        return torch.from_numpy(255.0 * rng.normal(0.0, 1.0, shape)).float()
    if name == "uniform":  # U[0, 1] per pixel on the [0, 1] scale (Hendrycks & Gimpel's)
        return transforms.as_uint8(torch.from_numpy(rng.uniform(0, 255, shape)))
    if name == "fashion_mnist":
        from headlab.shift.fashion import fashion_mnist_test_images

        return fashion_mnist_test_images(settings.fashion_mnist_dir)[:n]
    if name == "kmnist":
        return torchvision_test_images(name, data_dir, settings.download)[:n]
    raise ValueError(f"unknown OOD set {name!r}")  # Settings.check names the known ones first
