"""The faster MNIST-C corruptions and glyph fitting give the same pixels as the
straightforward code they replaced: each reference below is that code (one image, one map,
one segment, one glyph at a time), kept here only to pin the equality bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from headlab.shift import corruptions as C
from headlab.shift import transforms
from headlab.shift.corruptions import CORRUPTIONS, MNIST_SIDE


def digits_like(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` different blurry strokes on black, (n, 1, 28, 28) uint8."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    x = np.zeros((n, MNIST_SIDE, MNIST_SIDE))
    for image in x:
        rows, cols = rng.integers(6, 22, (2, 40))
        image[rows, cols] = 1.0
    x = ndimage.gaussian_filter(x, (0, 1.2, 1.2))
    return torch.from_numpy(np.round(255 * x / x.max(axis=(1, 2), keepdims=True))).to(torch.uint8)[
        :, None
    ]


def reference_plasma(draws: np.ndarray, decay: float, side: int) -> np.ndarray:
    """Diamond-square written into one side x side map, rolled neighbours."""
    n = len(draws)
    grid = np.zeros((n, side, side), dtype=draws.dtype)
    step, wibble, used = side, 100.0, 0
    while step >= 2:
        half, k = step // 2, side // step
        noise = draws[:, used : used + 3 * k * k].reshape(n, 3, k, k) * wibble**2
        used += 3 * k * k
        corners = grid[:, ::step, ::step]
        right, down = np.roll(corners, -1, axis=2), np.roll(corners, -1, axis=1)
        diagonal = np.roll(down, -1, axis=2)
        grid[:, half::step, half::step] = (corners + right + down + diagonal) / 4 + noise[:, 0]
        centres = grid[:, half::step, half::step]
        grid[:, ::step, half::step] = (
            corners + right + centres + np.roll(centres, 1, axis=1)
        ) / 4 + noise[:, 1]
        grid[:, half::step, ::step] = (
            corners + down + centres + np.roll(centres, 1, axis=2)
        ) / 4 + noise[:, 2]
        step, wibble = half, wibble / decay
    low = grid.min(axis=(1, 2), keepdims=True)
    return (grid - low) / (grid.max(axis=(1, 2), keepdims=True) - low)


def reference_fog(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    x = C._unit(images)
    gens = C.streams(images, rng)
    count = sum(C.plasma_noise())
    draws = np.stack([g.random(count, dtype=np.float32) for g in gens]) * 2 - 1
    crop = reference_plasma(draws, C.FOG_DECAY, C.PLASMA_SIDE)[:, :MNIST_SIDE, :MNIST_SIDE]
    peak = x.max(axis=(1, 2), keepdims=True)
    return C._back((x + C.FOG_STRENGTH * crop) * peak / (peak + C.FOG_STRENGTH))


def reference_line_ink(c0: float, r0: float, c1: float, r1: float) -> np.ndarray:
    if c1 == c0:
        return np.zeros((MNIST_SIDE, MNIST_SIDE))
    cols = np.arange(MNIST_SIDE, dtype=np.float64)[None, :]
    rows = np.arange(MNIST_SIDE, dtype=np.float64)[:, None]
    slope = (r1 - r0) / (c1 - c0)
    dist = np.clip(np.abs(rows - (slope * (cols - c0) + r0)), 0, 2.3 - 1e-10)
    ink = np.clip(np.log(1 - dist / 2.3) + 1, 0, 1)
    return ink * ((cols >= np.floor(c0)) & (cols < np.ceil(c1)))


def reference_zigzag(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    x = C._unit(images)
    for i, g in enumerate(C.streams(images, rng)):
        r0 = int(g.integers(0, 27))
        r1 = r0 + int(g.integers(-5, 5))
        cols, rows = C.zigzag_vertices(r0, r1)
        for j in range(1, len(cols)):
            ink = reference_line_ink(cols[j - 1], rows[j - 1], cols[j], rows[j])
            x[i] = np.clip(x[i] + ink, 0, 1)
    return C._back(x)


def reference_dotted_line(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    x = C._unit(images)
    for i, g in enumerate(C.streams(images, rng)):
        r0, r1 = g.integers(0, 27, 2)
        ink = reference_line_ink(0, r0, 27, r1)
        ink[:, (np.arange(MNIST_SIDE) // 2) % 2 == 0] = 0.0
        x[i] += ink
    return C._back(x)


@pytest.mark.parametrize("count", [1, 6, 65535])
def test_symmetric_uniforms_are_numpys_float32_draws_bit_for_bit(count):
    fresh = [np.random.default_rng([7, i]) for i in range(3)]
    expected = np.stack([g.random(count, dtype=np.float32) for g in fresh]) * 2 - 1
    out = C.symmetric_uniforms([np.random.default_rng([7, i]) for i in range(3)], count)
    assert out.dtype == np.float32 and np.array_equal(out, expected)
    other = [np.random.Generator(np.random.MT19937(i)) for i in range(2)]  # not PCG64
    again = [np.random.Generator(np.random.MT19937(i)) for i in range(2)]
    expected = np.stack([g.random(count, dtype=np.float32) for g in other]) * 2 - 1
    assert np.array_equal(C.symmetric_uniforms(again, count), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("side", [2, 16, 64])
def test_plasma_fractal_equals_the_map_built_in_one_grid(side, dtype):
    draws = np.random.default_rng(side).uniform(-1, 1, (3, sum(C.plasma_noise(side))))
    draws = draws.astype(dtype)
    expected = reference_plasma(draws, 1.4, side)
    full = C.plasma_fractal(draws, 1.4, side)
    assert full.dtype == dtype and np.array_equal(full, expected)
    for crop in (1, 5, side):
        assert np.array_equal(
            C.plasma_fractal(draws, 1.4, side, crop=crop), expected[:, :crop, :crop]
        )


def test_fog_zigzag_and_dotted_line_give_the_reference_pixels():
    images = digits_like(24)
    for name, reference in (
        ("fog", reference_fog),
        ("zigzag", reference_zigzag),
        ("dotted_line", reference_dotted_line),
    ):
        fast = CORRUPTIONS[name](images, np.random.default_rng(3))
        assert torch.equal(fast, reference(images, np.random.default_rng(3))), name


def test_line_inks_equal_line_ink_of_each_segment():
    rng = np.random.default_rng(0)
    ends = rng.uniform(0, 27, (50, 4))
    ends[::7, 2] = ends[::7, 0]  # vertical: no ink
    ends[::5] = np.round(ends[::5])  # on the pixel grid
    batch = C.line_inks(*ends.T)
    for segment, ink in zip(ends, batch, strict=True):
        assert np.array_equal(ink, reference_line_ink(*segment))
        assert np.array_equal(C.line_ink(*segment), ink)


def test_gathered_equals_indexing_with_three_index_arrays():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6, 5))
    rows = rng.integers(0, 6, (4, 6, 5))
    cols = rng.integers(0, 5, (4, 1, 5))  # broadcast along rows
    batch = np.arange(4)[:, None, None]
    assert np.array_equal(C.gathered(x, rows, cols), x[batch, rows, cols])


def reference_to_mnist_format(glyph: np.ndarray, box: int = 20) -> torch.Tensor:
    rows, cols = np.nonzero(glyph > 0)
    if len(rows) == 0:
        return torch.zeros(1, MNIST_SIDE, MNIST_SIDE, dtype=torch.uint8)
    crop = torch.from_numpy(glyph[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    fitted = F.interpolate(
        crop.float()[None, None], size=size, mode="bilinear", antialias=True, align_corners=False
    )[0, 0]
    fitted = fitted * (255.0 / fitted.max().clamp_min(1e-6))
    canvas = torch.zeros(1, 1, MNIST_SIDE, MNIST_SIDE)
    top, left = (MNIST_SIDE - size[0]) // 2, (MNIST_SIDE - size[1]) // 2
    canvas[0, 0, top : top + size[0], left : left + size[1]] = fitted
    canvas = transforms.as_uint8(canvas)
    dx, dy = transforms.centre_of_mass_shift(canvas)
    return transforms.shift(canvas, dx, dy)[0]


def test_glyphs_fitted_together_equal_glyphs_fitted_one_by_one():
    from headlab.shift.letters import font_files, render

    rng = np.random.default_rng(2)
    glyphs = [bitmap for font in font_files()[:3] for bitmap in render(font, "ACExy")]
    glyphs += [(rng.random((64, 64)) < 0.02).astype(np.uint8) * 200 for _ in range(20)]
    glyphs += [np.zeros((9, 9), dtype=np.uint8), np.full((3, 5), 90, dtype=np.uint8)]
    glyphs += [glyphs[0], glyphs[0][::-1].copy()]  # one shape twice, and a mirror
    expected = torch.stack([reference_to_mnist_format(g) for g in glyphs])
    assert torch.equal(transforms.to_mnist_formats(glyphs), expected)
    assert torch.equal(transforms.to_mnist_format(glyphs[1]), expected[1])


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corruption_worked_in_chunks_equals_it_worked_whole(name, monkeypatch):
    images = digits_like(7, seed=5)
    whole = CORRUPTIONS[name](images, np.random.default_rng(8))
    monkeypatch.setattr(C, "CHUNK", 3)  # 3 + 3 + 1 images
    monkeypatch.setattr(C, "FOG_CHUNK", 2)
    assert torch.equal(CORRUPTIONS[name](images, np.random.default_rng(8)), whole)
