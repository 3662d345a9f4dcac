"""MNIST-C's 15 corruptions (Mu & Gilmer 2019, google-research/mnist-c) at the severities
MNIST-C published, written from its definitions with numpy, scipy and torch (MNIST-C calls
scikit-image, OpenCV and ImageMagick, none of which headlab depends on).

Where MNIST-C's result came from a library's behaviour rather than from its own code, the
behaviour is followed: scikit-image's ``gaussian(..., multichannel=True)`` on a 2-D image
blurs along rows only (glass blur), its old ``AffineTransform(shear=)`` shears *and*
squeezes vertically by cos(shear) (shear), its old Canny interpolates the non-maximum
suppression (canny edges), and ImageMagick's motion blur averages pixels *ahead* along the
angle with one-sided Gaussian weights (motion blur). docs/off_distribution.md lists what
still differs and why.

Every corruption is batch-invariant: an image's random draws come from its own stream,
seeded by one number drawn from the caller's generator and by the image's pixels, so an
image corrupted alone equals the same image corrupted in any batch.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

from headlab.errors import RunError
from headlab.shift.transforms import MNIST_SIDE, as_uint8, rotation_matrix, shift, warp

Corruption = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]
#: MNIST-C rotates, shears and scales about this point (pixel centres at 0..27)
CENTRE = (MNIST_SIDE - 1) / 2


class CorruptionInputError(RunError, ValueError):
    """A corruption got something other than a non-empty (N, 1, 28, 28) uint8 batch."""


def _checked(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        kind = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise CorruptionInputError(f"MNIST-C corruptions take uint8 image tensors, got {kind}")
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, MNIST_SIDE, MNIST_SIDE):
        raise CorruptionInputError(
            "MNIST-C corruptions take (N, 1, 28, 28) uint8 images (its severities are "
            f"fixed for 28-px digits), got shape {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise CorruptionInputError("MNIST-C corruptions got an empty batch (N = 0 images)")
    return images


def streams(images: torch.Tensor, rng: np.random.Generator) -> list[np.random.Generator]:
    """One generator per image, keyed by one draw from ``rng`` and the image's pixels: the
    same image gets the same draws whatever else is in the batch (identical images too)."""
    key = int(rng.integers(0, 2**63 - 1))
    pixels = images.contiguous().numpy()
    return [np.random.default_rng([key, zlib.crc32(p.tobytes())]) for p in pixels]


def _unit(images: torch.Tensor) -> np.ndarray:
    return images[:, 0].numpy().astype(np.float64) / 255.0


def _back(x: np.ndarray) -> torch.Tensor:
    return as_uint8(torch.from_numpy(np.clip(x, 0.0, 1.0) * 255.0)[:, None])


def gathered(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``x[b, rows[b, i, j], cols[b, i, j]]`` for (N, H, W) ``x`` and index arrays that
    broadcast to (N, H, W): one flat ``take``, several times faster than numpy's indexing
    with three index arrays."""
    n, h, w = x.shape
    batch = np.arange(n)[:, None, None] * (h * w)
    return x.reshape(-1).take(batch + rows * w + cols)


#: images per step of the array-heavy corruptions: each temporary stays under ~1 MB, so it
#: is reused from the heap instead of being mapped and faulted in anew (a 2,000-image float64
#: temporary is 12.5 MB; canny edges cost 2.5 s of CPU in a fresh process, 0.35 s chunked)
CHUNK = 128


def _slices(n: int) -> list[slice]:
    """``CHUNK`` images at a time, over ``n`` images."""
    return [slice(i, i + CHUNK) for i in range(0, n, CHUNK)]


def _gaussian(x: np.ndarray, sigma: tuple[float, float], mode: str = "nearest") -> np.ndarray:
    """scikit-image's ``gaussian`` of each image (never across the batch): scipy's filter,
    truncated at 4 sigma, edges repeated (scikit-image's default mode)."""
    return ndimage.gaussian_filter(x, sigma=(0.0, *sigma), mode=mode, truncate=4.0)


# ---------------------------------------------------------------- noise


def shot_noise(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Poisson(3 x) / 3 per pixel, x in [0, 1] (severity 5: 3 photons at full intensity)."""
    x = _unit(_checked(images))
    gens = streams(images, rng)
    out = np.stack([g.poisson(xi * 3.0) / 3.0 for g, xi in zip(gens, x, strict=True)])
    return _back(out)


def impulse_noise(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Salt and pepper (scikit-image's ``random_noise(mode='s&p')``): each pixel flipped with
    p = 0.17 (severity 4), a flipped pixel white or black with p = 1/2 each."""
    x = _unit(_checked(images))
    for g, xi in zip(streams(images, rng), x, strict=True):
        flipped = g.random(xi.shape) < 0.17
        salted = g.random(xi.shape) < 0.5
        xi[flipped] = salted[flipped]
    return _back(x)


# ---------------------------------------------------------------- blurs


#: glass blur, severity 1: sigma, largest displacement, rounds of the swap pass
GLASS = (0.7, 1, 2)


def glass_shuffle(x: np.ndarray, swap: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> None:
    """MNIST-C's swap pass, in place on (N, 28, 28): for each round, rows 27..2 and within a
    row columns 27..2 in turn, pixel (h, w) trades values with (h + dy, w + dx) where
    ``swap`` says so. The swaps are sequential, so a value can be carried several pixels
    up and left within one round. ``swap``, ``dy``, ``dx``: (N, rounds, 26, 26)."""
    rounds = swap.shape[1]
    first = MNIST_SIDE - GLASS[1]  # 27
    for r in range(rounds):
        for h in range(first, GLASS[1], -1):
            for w in range(first, GLASS[1], -1):
                i = np.flatnonzero(swap[:, r, h - 2, w - 2])
                if len(i) == 0:
                    continue
                h2, w2 = h + dy[i, r, h - 2, w - 2], w + dx[i, r, h - 2, w - 2]
                here, there = x[i, h, w].copy(), x[i, h2, w2].copy()
                x[i, h, w], x[i, h2, w2] = there, here


def glass_blur(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Blur (sigma 0.7) *along rows only*, truncated to uint8, two rounds of MNIST-C's
    sequential swaps with the pixel up to 1 up and 1 left (p = 1/2), blur again (severity 1).

    MNIST-C asks scikit-image for a ``multichannel`` blur of a 2-D image, which treats the
    columns as colour channels: the blur never crosses columns."""
    sigma, delta, rounds = GLASS
    x = _unit(_checked(images))
    side = MNIST_SIDE - 2 * delta  # positions 27..2 per axis
    shape = (rounds, side, side)
    swap, dy, dx = [], [], []
    for g in streams(images, rng):
        swap.append(g.random(shape) < 0.5)
        dy.append(g.integers(-delta, delta, shape))  # -1 or 0, as randint(-1, 1)
        dx.append(g.integers(-delta, delta, shape))
    x = np.floor(_gaussian(x, (sigma, 0.0)) * 255.0)  # np.uint8(...) truncates
    glass_shuffle(x, np.stack(swap), np.stack(dy), np.stack(dx))
    return _back(_gaussian(x / 255.0, (sigma, 0.0)))


#: ImageMagick's ``MotionBlurImage`` at MNIST-C's severity 1: radius 10, sigma 3
MOTION_RADIUS, MOTION_SIGMA = 10, 3.0


def motion_kernel(
    degrees: float, radius: int = MOTION_RADIUS, sigma: float = MOTION_SIGMA
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ImageMagick's motion-blur kernel: ``2 radius + 1`` taps i = 0, 1, ..., with weights
    exp(-i^2 / 2 sigma^2) normalised to sum 1, at offsets (ceil(i cos a - 1/2),
    ceil(i sin a - 1/2)) in (column, row), rows downwards. Returns (weights, dcol, drow)."""
    taps = np.arange(2 * radius + 1)
    weights = np.exp(-(taps**2) / (2.0 * sigma**2))
    rad = np.deg2rad(degrees)
    dcol = np.ceil(taps * np.cos(rad) - 0.5).astype(int)
    drow = np.ceil(taps * np.sin(rad) - 0.5).astype(int)
    return weights / weights.sum(), dcol, drow


def motion_blur_at(images: torch.Tensor, degrees: np.ndarray) -> torch.Tensor:
    """Each image's pixel (r, c) becomes sum_i w_i x(r + drow_i, c + dcol_i) at its own angle:
    the average of the pixels *ahead* along the angle, so a dot smears backwards. Outside
    the image the nearest edge pixel is read (ImageMagick's default virtual pixels)."""
    x = _unit(_checked(images))
    kernels = [motion_kernel(a) for a in degrees]
    weights = np.stack([k[0] for k in kernels])
    dcol, drow = np.stack([k[1] for k in kernels]), np.stack([k[2] for k in kernels])
    index = np.arange(MNIST_SIDE)
    out = np.zeros_like(x)
    for part in _slices(len(x)):
        for i in range(weights.shape[1]):
            rows = np.clip(index[None, :] + drow[part, i, None], 0, MNIST_SIDE - 1)
            cols = np.clip(index[None, :] + dcol[part, i, None], 0, MNIST_SIDE - 1)
            taps = gathered(x[part], rows[:, :, None], cols[:, None, :])
            out[part] += weights[part, i, None, None] * taps
    return _back(out)


def motion_blur(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """ImageMagick's motion blur, radius 10, sigma 3, at an angle uniform in -45..45 degrees
    per image (severity 1)."""
    degrees = np.array([g.uniform(-45, 45) for g in streams(_checked(images), rng)])
    return motion_blur_at(images, degrees)


# ---------------------------------------------------------------- geometry


def _signs(images: torch.Tensor, rng: np.random.Generator, k: int = 1) -> np.ndarray:
    """(N, k) random signs, each image's from its own stream."""
    return np.stack([g.choice([-1.0, 1.0], k) for g in streams(_checked(images), rng)])


def shear_by(images: torch.Tensor, radians: np.ndarray) -> torch.Tensor:
    """scikit-image's old ``AffineTransform(shear=s)`` about the centre, as MNIST-C's inverse
    map: output (x, y) samples input (x - sin(s) y, cos(s) y) about (13.5, 13.5), bilinear,
    black outside. It is a shear *and* a vertical stretch by 1 / cos(s) (scikit-image 0.19
    changed the parameter; MNIST-C was built with the old one)."""
    s = torch.from_numpy(np.asarray(radians, dtype=np.float64))
    matrices = torch.zeros(len(images), 2, 3, dtype=torch.float64)
    matrices[:, 0, 0] = 1.0
    matrices[:, 0, 1] = -torch.sin(s)
    matrices[:, 1, 1] = torch.cos(s)
    return warp(_checked(images), matrices)


def shear(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Old scikit-image shear by 0.4 either way (severity 2), see ``shear_by``."""
    return shear_by(images, 0.4 * _signs(images, rng)[:, 0])


def scale(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Content shrunk to 70% about the centre: output samples input at 1/0.7 times its offset
    from (13.5, 13.5) (severity 3)."""
    return warp(_checked(images), torch.tensor([[1 / 0.7, 0, 0], [0, 1 / 0.7, 0]]))


def rotate(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Turned by 0.4 rad (22.9 deg) either way about the centre (severity 2)."""
    degrees = torch.from_numpy(np.rad2deg(0.4) * _signs(images, rng)[:, 0])
    return warp(images, rotation_matrix(degrees))


def translate(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """MNIST-C's inverse map (x + 3 a, y + 3 b), a and b random signs (severity 3): the
    content moves 3 px against each sign, zeros shifted in."""
    signs = torch.from_numpy(3 * _signs(images, rng, 2))
    return shift(images, -signs[:, 0], -signs[:, 1])


# ---------------------------------------------------------------- pixel maps


def brightness(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """HSV value + 0.5 (severity 5); a grey pixel's value is its intensity, and back to grey
    it stays grey, so this is min(x + 0.5, 1)."""
    return _back(_unit(_checked(images)) + 0.5)


def stripe(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The 7 leftmost and 7 rightmost columns inverted."""
    out = _checked(images).clone()
    out[..., :7] = 255 - out[..., :7]
    out[..., 21:] = 255 - out[..., 21:]
    return out


# ---------------------------------------------------------------- fog


#: fog, severity 5: fog strength 3, wibble decay 1.4; MNIST-C's plasma map side and wibble
FOG_STRENGTH, FOG_DECAY, PLASMA_SIDE, PLASMA_WIBBLE = 3.0, 1.4, 256, 100.0


def plasma_noise(side: int = PLASMA_SIDE) -> list[int]:
    """How many uniform draws each diamond-square level takes: three grids of k x k for
    k = 1, 2, ..., side / 2 (centres, then the two sets of edge midpoints)."""
    return [3 * k * k for k in 2 ** np.arange(int(np.log2(side)))]


def plasma_fractal(
    draws: np.ndarray, decay: float, side: int = PLASMA_SIDE, crop: int | None = None
) -> np.ndarray:
    """MNIST-C's diamond-square height maps, (N, side, side) scaled to [0, 1] over the whole
    map, or only their top-left ``crop`` x ``crop`` (still scaled over the whole map).
    ``draws``: (N, sum(plasma_noise(side))) uniforms in [-1, 1]; the maps take their dtype.

    The map wraps around (a torus). Start from 0 at the corner; at each level of step s, a
    square's centre becomes the mean of its 4 corners and an edge midpoint the mean of its 4
    diamond neighbours (2 corners, 2 centres), each plus wibble^2 * U(-1, 1); wibble starts
    at 100 and is divided by ``decay`` per level, so the noise amplitude falls by decay^2.

    Each level is held as four dense k x k arrays (corners, top and left edge midpoints,
    centres) and interleaved into the next level's corners: no strided writes into a
    256 x 256 map, and the last level is never assembled beyond ``crop`` (its min and max
    are taken part by part). The sums are the same, in the same order, as on the map."""
    n = len(draws)
    corners = np.zeros((n, 1, 1), dtype=draws.dtype)
    wibble, used, k = PLASMA_WIBBLE, 0, 1
    while True:
        noise = draws[:, used : used + 3 * k * k].reshape(n, 3, k, k) * wibble**2
        used += 3 * k * k
        ahead = _wrapped(corners, ahead=True)
        right, down, diagonal = ahead[:, :k, 1:], ahead[:, 1:, :k], ahead[:, 1:, 1:]
        centres = _mean_plus(noise[:, 0], corners, right, down, diagonal)
        behind = _wrapped(centres, ahead=False)
        above, left = behind[:, :k, 1:], behind[:, 1:, :k]
        # top edge midpoint (row i*step, col j*step+half): corners left and right, centres
        # below (i, j) and above (i-1, j); left edge midpoint (row i*step+half, col j*step):
        # corners above and below, centres right (i, j) and left (i, j-1)
        tops = _mean_plus(noise[:, 1], corners, right, centres, above)
        lefts = _mean_plus(noise[:, 2], corners, down, centres, left)
        parts = (corners, tops, lefts, centres)
        if 2 * k >= side:
            break
        corners = _interleaved(parts)
        k, wibble = 2 * k, wibble / decay
    low = np.min([p.min(axis=(1, 2)) for p in parts], axis=0)[:, None, None]
    high = np.max([p.max(axis=(1, 2)) for p in parts], axis=0)[:, None, None]
    if crop is None:
        grid = _interleaved(parts)
    else:
        half = -(-crop // 2)
        grid = _interleaved(tuple(p[:, :half, :half] for p in parts))[:, :crop, :crop]
    return (grid - low) / (high - low)


def _mean_plus(noise: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray):
    """(a + b + c + d) / 4 + noise, summed left to right, in one new array (in place: the
    same values as the expression, without its four temporaries)."""
    out = np.add(a, b)
    out += c
    out += d
    out /= 4
    out += noise
    return out


def _wrapped(grid: np.ndarray, ahead: bool) -> np.ndarray:
    """(N, k + 1, k + 1): ``grid`` with its first row and column repeated after its last
    (``ahead``), or its last before its first -- each neighbour on the torus as a view."""
    n, k, _ = grid.shape
    out = np.empty((n, k + 1, k + 1), dtype=grid.dtype)
    if ahead:
        out[:, :k, :k] = grid
        out[:, k, :k] = grid[:, 0]
        out[:, :, k] = out[:, :, 0]
    else:
        out[:, 1:, 1:] = grid
        out[:, 0, 1:] = grid[:, -1]
        out[:, :, 0] = out[:, :, k]
    return out


def _interleaved(parts: tuple[np.ndarray, ...]) -> np.ndarray:
    """The next level's corners (N, 2k, 2k) from (corners, tops, lefts, centres), (N, k, k)."""
    corners, tops, lefts, centres = parts
    n, k, _ = corners.shape
    grid = np.empty((n, 2 * k, 2 * k), dtype=corners.dtype)
    grid[:, ::2, ::2] = corners
    grid[:, ::2, 1::2] = tops
    grid[:, 1::2, ::2] = lefts
    grid[:, 1::2, 1::2] = centres
    return grid


def symmetric_uniforms(gens: list[np.random.Generator], count: int) -> np.ndarray:
    """(len(gens), count) float32, row i exactly ``2 * gens[i].random(count, np.float32) - 1``
    for fresh PCG64 generators (``streams``), made from their raw 64-bit words: numpy's
    float32 is the top 24 bits of each 32-bit half (low half first) times 2^-24, and
    2 u - 1 of it is exact. Twice as fast as ``random`` for fog's 65,535 draws an image;
    tests/test_corruptions_fast.py pins the equality."""
    if not all(type(g.bit_generator) is np.random.PCG64 for g in gens):
        return np.stack([g.random(count, dtype=np.float32) for g in gens]) * 2 - 1
    words = np.stack([g.bit_generator.random_raw(-(-count // 2)) for g in gens])
    halves = words.view(np.uint32)[:, :count] if sys.byteorder == "little" else None
    if halves is None:  # big-endian: the low half is the second uint32 of a word
        halves = np.stack([words & 0xFFFFFFFF, words >> 32], axis=-1).reshape(len(gens), -1)
        halves = halves[:, :count]
    out = (halves >> 8).astype(np.float32)
    out *= np.float32(2.0**-23)
    out -= np.float32(1.0)
    return out


#: fog's images per batch of maps: 8 keep a level's arrays (0.5 MB) in cache
FOG_CHUNK = 8


def fog(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """x + 3 * (the top-left 28 x 28 of a 256 x 256 plasma map), times max / (max + 3)
    (severity 5, wibble decay 1.4). The map is scaled to [0, 1] as a whole, not per crop."""
    x = _unit(_checked(images))
    count = sum(plasma_noise())
    gens = streams(images, rng)
    out = np.empty_like(x)
    for start in range(0, len(x), FOG_CHUNK):  # a few MB at a time
        part = slice(start, start + FOG_CHUNK)
        draws = symmetric_uniforms(gens[part], count)
        crop = plasma_fractal(draws, FOG_DECAY, crop=MNIST_SIDE)
        peak = x[part].max(axis=(1, 2), keepdims=True)
        out[part] = (x[part] + FOG_STRENGTH * crop) * peak / (peak + FOG_STRENGTH)
    return _back(out)


def spatter(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mud of grey 63 (severity 4): liquid N(0.65, 0.3) blurred (sigma 1), the mask
    liquid > 0.65 blurred (sigma 1.5) and kept where >= 0.8; x (1 - m) + 63/255 m."""
    x = _unit(_checked(images))
    drawn = np.stack([g.normal(0.65, 0.3, x.shape[1:]) for g in streams(images, rng)])
    for part in _slices(len(x)):
        liquid = _gaussian(drawn[part], (1.0, 1.0))
        mask = _gaussian((liquid > 0.65).astype(np.float64), (1.5, 1.5))
        mask[mask < 0.8] = 0.0
        x[part] = x[part] * (1 - mask) + 63.0 / 255.0 * mask
    return _back(x)


# ---------------------------------------------------------------- lines


def line_ink(c0: float, r0: float, c1: float, r1: float) -> np.ndarray:
    """(28, 28) ink of MNIST-C's line through (c0, r0) and (c1, r1): log(1 - d / 2.3) + 1 of
    the *vertical* distance d to the line, clipped to [0, 1], in columns floor(c0) to
    ceil(c1) - 1; nothing for a vertical segment (c0 == c1)."""
    return line_inks(*(np.array([v], dtype=np.float64) for v in (c0, r0, c1, r1)))[0]


def line_inks(c0: np.ndarray, r0: np.ndarray, c1: np.ndarray, r1: np.ndarray) -> np.ndarray:
    """``line_ink`` of K segments at once, (K,) float arrays of ends -> (K, 28, 28): the same
    arithmetic per pixel, so each equals ``line_ink`` of its own segment."""
    c0, r0, c1, r1 = (np.asarray(v, dtype=np.float64)[:, None, None] for v in (c0, r0, c1, r1))
    cols = np.arange(MNIST_SIDE, dtype=np.float64)[None, None, :]
    rows = np.arange(MNIST_SIDE, dtype=np.float64)[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # vertical ones are masked below
        slope = (r1 - r0) / (c1 - c0)
        dist = np.clip(np.abs(rows - (slope * (cols - c0) + r0)), 0, 2.3 - 1e-10)
        ink = np.clip(np.log(1 - dist / 2.3) + 1, 0, 1)
    inside = (c1 != c0) & (cols >= np.floor(c0)) & (cols < np.ceil(c1))
    return np.where(inside, ink, 0.0)


def dotted_line(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A line from (0, r0) to (27, r1), r0 and r1 in 0..26, with the 2-px column runs
    0-1, 4-5, 8-9, ... removed, added to the image and clipped."""
    x = _unit(_checked(images))
    ends = np.stack([g.integers(0, 27, 2) for g in streams(images, rng)])
    for part in _slices(len(x)):
        n = len(x[part])
        ink = line_inks(np.zeros(n), ends[part, 0], np.full(n, 27.0), ends[part, 1])
        ink[:, :, (np.arange(MNIST_SIDE) // 2) % 2 == 0] = 0.0
        x[part] += ink
    return _back(x)


def zigzag_vertices(r0: int, r1: int) -> np.ndarray:
    """MNIST-C's zigzag from column 2 to 25 starting at row r0 and heading for row r1:
    (2, K) vertices (columns, rows). Along the line of length d, teeth at 2, 6, 10, ...
    alternate 2 px either side; the last vertex is (d, r_last / (2 (d - 4 floor(d / 4))))
    -- MNIST-C's own formula, followed as written -- all turned by atan((r1 - r0) / 23)."""
    a = b = 2.0
    theta = np.arctan((r1 - r0) / 23.0)
    d = 23.0 / np.cos(theta)
    teeth = int((d - a) // (2 * a)) + 1
    along = [0.0] + [(2 * i + 1) * a for i in range(teeth)]
    across = [0.0] + [(-1.0) ** i * b for i in range(teeth)]
    whole = 2 * a * (d // (2 * a))
    if d != whole:
        along.append(d)
        across.append(across[-1] / (2 * (d - whole)))
    cos, sin = np.cos(theta), np.sin(theta)
    along, across = np.array(along), np.array(across)
    return np.stack([2 + cos * along - sin * across, r0 + sin * along + cos * across])


def zigzag(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """MNIST-C's zigzag (``zigzag_vertices``), r0 in 0..26, r1 = r0 + (-5..4): each segment's
    line ink (``line_ink``) added to the image in turn and clipped, so where two segments'
    ink overlaps it adds up (to at most 1). All images' j-th segments are drawn at once;
    an image with fewer segments gets empty ones (c0 == c1: no ink) at the end."""
    x = _unit(_checked(images))
    segments = []
    for g in streams(images, rng):
        r0 = int(g.integers(0, 27))
        r1 = r0 + int(g.integers(-5, 5))
        cols, rows = zigzag_vertices(r0, r1)
        segments.append(np.stack([cols[:-1], rows[:-1], cols[1:], rows[1:]], axis=1))
    ends = np.zeros((len(x), max(len(s) for s in segments), 4))  # (image, segment, end)
    for i, s in enumerate(segments):
        ends[i, : len(s)] = s
    for part in _slices(len(x)):
        for j in range(ends.shape[1]):
            x[part] = np.clip(x[part] + line_inks(*ends[part, j].T), 0, 1)
    return _back(x)


# ---------------------------------------------------------------- canny


def _sobel(x: np.ndarray, axis: int) -> np.ndarray:
    """scipy's Sobel of each image along ``axis`` (1 rows, 2 columns), smoothing only along
    the image's other axis -- never along the batch (``ndimage.sobel`` of a 3-D array would)."""
    other = 3 - axis
    diff = ndimage.correlate1d(x, [-1.0, 0.0, 1.0], axis=axis, mode="reflect")
    return ndimage.correlate1d(diff, [1.0, 2.0, 1.0], axis=other, mode="reflect")


def _suppressed(magnitude: np.ndarray, gi: np.ndarray, gj: np.ndarray) -> np.ndarray:
    """Non-maximum suppression as scikit-image's Canny did it: along the gradient, the
    magnitude one step ahead and one behind is interpolated between the axial and the
    diagonal neighbour (weight = minor / major gradient component); keep a pixel no smaller
    than both. ``gi``/``gj``: gradient along rows/columns."""
    _, h, w = magnitude.shape
    rows_major = np.abs(gi) >= np.abs(gj)
    si, sj = np.sign(gi).astype(int), np.sign(gj).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(rows_major, np.abs(gj) / np.abs(gi), np.abs(gi) / np.abs(gj))
    weight = np.nan_to_num(weight)
    axial_i, axial_j = np.where(rows_major, si, 0), np.where(rows_major, 0, sj)
    padded = np.pad(magnitude, ((0, 0), (1, 1), (1, 1)))
    r = np.arange(h)[None, :, None] + 1
    c = np.arange(w)[None, None, :] + 1
    keep = np.ones_like(magnitude, dtype=bool)
    for sign in (1, -1):
        axial = gathered(padded, r + sign * axial_i, c + sign * axial_j)
        diagonal = gathered(padded, r + sign * si, c + sign * sj)
        keep &= diagonal * weight + axial * (1 - weight) <= magnitude
    return keep


def canny_edges(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """scikit-image's ``feature.canny`` with its defaults for images in [0, 1], white edges on
    black: Gaussian smoothing (sigma 1, black outside, divided by the smoothed all-ones mask),
    Sobel gradient per image, the 1-px border and flat pixels dropped, interpolated
    non-maximum suppression, hysteresis (a pixel >= 0.1 stays when its 8-connected piece
    holds one >= 0.2)."""
    x = _unit(_checked(images))
    return _back(np.concatenate([_canny(x[part]) for part in _slices(len(x))]))


def _canny(x: np.ndarray) -> np.ndarray:
    bleed = _gaussian(np.ones((1, MNIST_SIDE, MNIST_SIDE)), (1.0, 1.0), mode="constant")
    smooth = _gaussian(x, (1.0, 1.0), mode="constant") / (bleed + np.finfo(float).eps)
    gi, gj = _sobel(smooth, 1), _sobel(smooth, 2)
    magnitude = np.hypot(gi, gj)
    inner = np.zeros_like(magnitude, dtype=bool)
    inner[:, 1:-1, 1:-1] = True
    maxima = inner & (magnitude > 0) & _suppressed(magnitude, gi, gj)
    low, high = maxima & (magnitude >= 0.1), maxima & (magnitude >= 0.2)
    within_image = np.zeros((3, 3, 3), dtype=bool)
    within_image[1] = True  # 8-connected inside one image, never across the batch
    labels, count = ndimage.label(low, structure=within_image)
    strong = np.zeros(count + 1, dtype=bool)
    strong[np.unique(labels[high])] = True
    strong[0] = False
    return strong[labels].astype(np.float64)


CORRUPTIONS: dict[str, Corruption] = {
    fn.__name__: fn
    for fn in (
        shot_noise,
        impulse_noise,
        glass_blur,
        motion_blur,
        shear,
        scale,
        rotate,
        brightness,
        translate,
        stripe,
        fog,
        spatter,
        dotted_line,
        zigzag,
        canny_edges,
    )
}
