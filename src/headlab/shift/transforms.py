"""Transforms of uint8 image batches (N, 1, H, W): affine warps, integer shifts, inversion,
pixel permutation, and fitting any glyph into MNIST's format.

Batches are warped with one ``affine_grid``/``grid_sample`` call (torch), not image by image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

MNIST_SIDE = 28
#: MNIST's digits were fitted into a 20x20 box, then centred by centre of mass in 28x28
MNIST_BOX = 20


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    return images.round().clamp(0, 255).to(torch.uint8)


def warp(images: torch.Tensor, matrices: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Each image sampled at ``matrices[i] @ (x, y)`` (output -> input, in pixel units about
    the image centre), zeros outside. ``matrices``: (N, 2, 3) or (2, 3) for all."""
    n, _, h, w = images.shape
    theta = matrices.to(torch.float32).expand(n, 2, 3).clone()
    # pixel offsets to affine_grid's normalised coordinates (x spans w pixels over 2 units)
    theta[:, 0, 2] *= 2.0 / w
    theta[:, 1, 2] *= 2.0 / h
    theta[:, 0, 1] *= h / w
    theta[:, 1, 0] *= w / h
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    out = F.grid_sample(images.float(), grid, mode=mode, align_corners=False)
    return as_uint8(out)


def rotation_matrix(degrees: float | torch.Tensor) -> torch.Tensor:
    """Sampling matrix that turns the image content counter-clockwise by ``degrees``."""
    rad = torch.as_tensor(degrees, dtype=torch.float64) * math.pi / 180.0
    cos, sin = torch.cos(rad), torch.sin(rad)
    zero = torch.zeros_like(cos)
    # image rows grow downwards: a counter-clockwise turn on screen samples at R(+a) (x, y)
    rows = [torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)]
    return torch.stack(rows, -2)


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Content turned counter-clockwise about the image centre (bilinear, black corners)."""
    if degrees % 360 == 0:
        return images.clone()
    return warp(images, rotation_matrix(degrees))


def shift(images: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Integer translation per image (``dx`` right, ``dy`` down), zeros shifted in."""
    n, _, h, w = images.shape
    pad = max(h, w)
    padded = F.pad(images, (pad, pad, pad, pad))
    rows = torch.arange(h)[None, :] + pad - dy.long()[:, None]
    cols = torch.arange(w)[None, :] + pad - dx.long()[:, None]
    batch = torch.arange(n)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def translate(images: torch.Tensor, pixels: int, rng: np.random.Generator) -> torch.Tensor:
    """Each image moved ``pixels`` px in a random direction (rounded to whole pixels)."""
    angle = rng.uniform(0, 2 * np.pi, len(images))
    dx = torch.from_numpy(np.rint(pixels * np.cos(angle)))
    dy = torch.from_numpy(np.rint(pixels * np.sin(angle)))
    return shift(images, dx, dy)


def invert(images: torch.Tensor) -> torch.Tensor:
    """Black digits on white: 255 - x."""
    return 255 - images


def permute_pixels(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One fixed random permutation of pixel positions, the same for every image: the pixel
    histogram of each image is kept, its spatial structure destroyed."""
    n, c, h, w = images.shape
    order = torch.from_numpy(rng.permutation(h * w))
    return images.reshape(n, c, h * w)[:, :, order].reshape(n, c, h, w)


def centre_of_mass_shift(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-pixel shifts that bring each image's centre of mass to the image centre."""
    _, _, h, w = images.shape
    mass = images.double().sum(dim=(1, 2))  # (n, w) columns summed over rows
    weights = images.double().sum(dim=(1, 3))  # (n, h)
    total = weights.sum(dim=1).clamp_min(1e-12)
    cx = (mass * torch.arange(w)).sum(dim=1) / total
    cy = (weights * torch.arange(h)).sum(dim=1) / total
    return ((w - 1) / 2 - cx).round(), ((h - 1) / 2 - cy).round()


def to_mnist_format(glyph: np.ndarray, box: int = MNIST_BOX) -> torch.Tensor:
    """One white-on-black glyph (any size, 0..255) as MNIST prepares a digit: cropped to its
    ink, fitted into a ``box`` x ``box`` square keeping its aspect, centred by centre of mass
    in 28 x 28. Returns (1, 28, 28) uint8."""
    return to_mnist_formats([glyph], box)[0]


def to_mnist_formats(glyphs: Sequence[np.ndarray], box: int = MNIST_BOX) -> torch.Tensor:
    """``to_mnist_format`` of many glyphs, (N, 1, 28, 28) uint8: the crops of one shape are
    fitted in one ``interpolate`` call and all are centred at once (the same arithmetic per
    glyph; image by image cost ~0.5 ms each, ~1 s for sklearn's 1,797 digits)."""
    canvas = torch.zeros(len(glyphs), 1, MNIST_SIDE, MNIST_SIDE)
    by_shape: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    for i, glyph in enumerate(glyphs):
        ink = glyph > 0
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        if len(rows):  # no ink: stays black
            crop = glyph[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            by_shape.setdefault(crop.shape, []).append((i, crop))
    for (h, w), members in by_shape.items():
        scale = box / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        crops = torch.from_numpy(np.stack([crop for _, crop in members])).float()[:, None]
        fitted = F.interpolate(
            crops, size=size, mode="bilinear", antialias=True, align_corners=False
        )[:, 0]
        fitted = fitted * (255.0 / fitted.amax(dim=(1, 2), keepdim=True).clamp_min(1e-6))
        top, left = (MNIST_SIDE - size[0]) // 2, (MNIST_SIDE - size[1]) // 2
        index = torch.tensor([i for i, _ in members])
        canvas[index, 0, top : top + size[0], left : left + size[1]] = fitted
    canvas = as_uint8(canvas)
    dx, dy = centre_of_mass_shift(canvas)
    return shift(canvas, dx, dy)
