"""MNIST-C's 15 corruptions (Mu & Gilmer 2019) at the fixed severities MNIST-C used, written
for whole uint8 batches with numpy, scipy and torch (MNIST-C needs scikit-image, OpenCV and
ImageMagick, none of which headlab depends on).

Exact in intent and parameters: shot noise, impulse noise, shear, scale, rotate, brightness,
translate, stripe, spatter, dotted line. Changed (docs/off_distribution.md says how): glass
blur (a random neighbour gather instead of sequential swaps), motion blur (a one-sided
Gaussian line kernel at 8 angles instead of ImageMagick's), fog (a sum of upsampled noise
octaves instead of the diamond-square plasma), zigzag (same geometry, drawn as a polyline
with the dotted line's profile), canny edges (own Canny: non-maximum suppression on
4 directions instead of scikit-image's interpolated one).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from headlab.shift.transforms import MNIST_SIDE, as_uint8, rotation_matrix, shift, warp

Corruption = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]


def _unit(images: torch.Tensor) -> np.ndarray:
    return images[:, 0].numpy().astype(np.float64) / 255.0


def _back(x: np.ndarray) -> torch.Tensor:
    return as_uint8(torch.from_numpy(np.clip(x, 0.0, 1.0) * 255.0)[:, None])


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each image (not across the batch), edges repeated as scikit-image."""
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma), mode="nearest")


def shot_noise(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Poisson noise with 3 photons at full intensity (MNIST-C severity 5)."""
    return _back(rng.poisson(_unit(images) * 3.0) / 3.0)


def impulse_noise(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Salt and pepper on 17% of pixels, half each (severity 4)."""
    x = _unit(images)
    hit = rng.random(x.shape) < 0.17
    x[hit] = (rng.random(int(hit.sum())) < 0.5).astype(np.float64)
    return _back(x)


def glass_blur(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Blur (sigma 0.7), two rounds of local pixel exchange within 1 px, blur (severity 1)."""
    x = np.round(_blur(_unit(images), 0.7) * 255.0) / 255.0
    n, h, w = x.shape
    for _ in range(2):
        move = rng.random((n, h, w)) < 0.5  # MNIST-C swaps each interior pixel with p = 1/2
        dy = np.where(move, rng.integers(-1, 1, (n, h, w)), 0)
        dx = np.where(move, rng.integers(-1, 1, (n, h, w)), 0)
        rows = np.clip(np.arange(h)[None, :, None] + dy, 0, h - 1)
        cols = np.clip(np.arange(w)[None, None, :] + dx, 0, w - 1)
        x = x[np.arange(n)[:, None, None], rows, cols]
    return _back(_blur(x, 0.7))


def _motion_kernel(degrees: float, radius: int = 10, sigma: float = 3.0) -> np.ndarray:
    """One-sided line kernel: weights exp(-t^2 / 2 sigma^2) along t = 0..radius at an angle."""
    size = 2 * radius + 1
    kernel = np.zeros((size, size))
    rad = np.deg2rad(degrees)
    for t in range(radius + 1):
        row = round(radius - t * np.sin(rad))
        col = round(radius + t * np.cos(rad))
        kernel[row, col] += np.exp(-(t**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def motion_blur(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Motion blur, radius 10, sigma 3, at an angle in -45..45 deg (severity 1; 8 angles)."""
    x = _unit(images)
    angles = np.linspace(-45, 45, 8)
    choice = rng.integers(0, len(angles), len(x))
    out = np.empty_like(x)
    for i, angle in enumerate(angles):
        picked = choice == i
        if picked.any():
            kernel = _motion_kernel(angle)[None]
            out[picked] = ndimage.convolve(x[picked], kernel, mode="constant")
    return _back(out)


def _signs(n: int, rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(rng.choice([-1.0, 1.0], n))


def shear(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Horizontal shear by 0.4 rad either way about the centre (severity 2)."""
    matrices = torch.zeros(len(images), 2, 3, dtype=torch.float64)
    matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
    matrices[:, 0, 1] = -np.tan(0.4) * _signs(len(images), rng)
    return warp(images, matrices)


def scale(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Content shrunk to 70% about the centre (severity 3)."""
    return warp(images, torch.tensor([[1 / 0.7, 0, 0], [0, 1 / 0.7, 0]]))


def rotate(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Turned by 0.4 rad (22.9 deg) either way (severity 2)."""
    degrees = np.rad2deg(0.4) * _signs(len(images), rng)
    return warp(images, rotation_matrix(degrees))


def brightness(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """HSV value + 0.5 (severity 5); on grey pixels that is min(x + 0.5, 1)."""
    return _back(_unit(images) + 0.5)


def translate(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Moved 3 px along each axis, each direction's sign random (severity 3)."""
    n = len(images)
    return shift(images, 3 * _signs(n, rng), 3 * _signs(n, rng))


def stripe(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The 7 leftmost and 7 rightmost columns inverted."""
    out = images.clone()
    out[..., :7] = 255 - out[..., :7]
    out[..., 21:] = 255 - out[..., 21:]
    return out


def _octave_noise(n: int, rng: np.random.Generator, decay: float) -> np.ndarray:
    """(n, 28, 28) in [0, 1]: noise grids of 2, 4, ..., 32 cells, upsampled bilinearly and
    summed with amplitude falling by ``decay`` per octave (a stand-in for plasma fractals)."""
    total = torch.zeros(n, 1, 32, 32, dtype=torch.float64)
    amplitude = 1.0
    for cells in (2, 4, 8, 16, 32):
        grid = torch.from_numpy(rng.uniform(-1, 1, (n, 1, cells, cells)))
        total += amplitude * F.interpolate(grid, size=32, mode="bilinear", align_corners=True)
        amplitude /= decay
    x = total[:, 0, :MNIST_SIDE, :MNIST_SIDE].numpy()
    low = x.min(axis=(1, 2), keepdims=True)
    return (x - low) / np.maximum(x.max(axis=(1, 2), keepdims=True) - low, 1e-12)


def fog(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """x + 3 * fog, rescaled by max / (max + 3) (severity 5, wibble decay 1.4)."""
    x = _unit(images)
    peak = x.max(axis=(1, 2), keepdims=True)
    return _back((x + 3.0 * _octave_noise(len(x), rng, 1.4)) * peak / (peak + 3.0))


def spatter(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mud blobs of grey 63 (severity 4: liquid N(0.65, 0.3), sigma 1, threshold 0.65, mask
    sigma 1.5, mask kept where >= 0.8)."""
    x = _unit(images)
    liquid = _blur(rng.normal(0.65, 0.3, x.shape), 1.0)
    mask = _blur((liquid > 0.65).astype(np.float64), 1.5)
    mask[mask < 0.8] = 0.0
    return _back(x * (1 - mask) + 63.0 / 255.0 * mask)


def _segment_ink(c0, r0, c1, r1) -> np.ndarray:
    """(n, 28, 28) ink of a line through (c0, r0)-(c1, r1) between columns c0..c1: MNIST-C's
    profile log(1 - d / 2.3) + 1 of the vertical distance d, clipped to [0, 1]."""
    c0, r0, c1, r1 = (np.asarray(v, dtype=np.float64)[:, None, None] for v in (c0, r0, c1, r1))
    cc = np.arange(MNIST_SIDE, dtype=np.float64)[None, None, :]
    rr = np.arange(MNIST_SIDE, dtype=np.float64)[None, :, None]
    flat = c1 == c0
    slope = np.where(flat, 0.0, (r1 - r0) / np.where(flat, 1.0, c1 - c0))
    dist = np.clip(np.abs(rr - (slope * (cc - c0) + r0)), 0, 2.3 - 1e-10)
    ink = np.clip(np.log(1 - dist / 2.3) + 1, 0, 1)
    inside = (cc >= np.floor(c0)) & (cc < np.ceil(c1)) & ~flat
    return ink * inside


def dotted_line(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A line across the image between random rows, every other 2-px column run removed."""
    n = len(images)
    ink = _segment_ink(np.zeros(n), rng.integers(0, 27, n), np.full(n, 27), rng.integers(0, 27, n))
    ink[:, :, (np.arange(MNIST_SIDE) // 2) % 2 == 0] = 0.0
    return _back(_unit(images) + ink)


def zigzag(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A zigzag (2 px long, 2 px wide teeth) from column 2 to 25 along a random slope."""
    x = _unit(images)
    for i in range(len(x)):  # a few tens of segments per image: drawn per image
        r0 = rng.integers(0, 27)
        r1 = r0 + rng.integers(-5, 5)
        theta = np.arctan((r1 - r0) / 23.0)
        length = 23.0 / np.cos(theta)
        teeth = int((length - 2.0) // 4.0) + 1
        along = np.concatenate([[0.0], (2 * np.arange(teeth) + 1) * 2.0, [length]])
        across = np.concatenate([[0.0], 2.0 * (-1.0) ** np.arange(teeth), [0.0]])
        cols = 2 + along * np.cos(theta) - across * np.sin(theta)
        rows = r0 + along * np.sin(theta) + across * np.cos(theta)
        start, end = np.minimum(cols[:-1], cols[1:]), np.maximum(cols[:-1], cols[1:])
        left = np.where(cols[:-1] <= cols[1:], rows[:-1], rows[1:])
        right = np.where(cols[:-1] <= cols[1:], rows[1:], rows[:-1])
        ink = _segment_ink(start, left, end, right).max(axis=0)
        x[i] = np.clip(x[i] + ink, 0, 1)
    return _back(x)


def _thin(magnitude: np.ndarray, gy: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """Non-maximum suppression: keep a pixel that is no smaller than its two neighbours
    along the gradient direction (rounded to 0, 45, 90 or 135 degrees)."""
    sector = (np.round(np.arctan2(gy, gx) / (np.pi / 4)) % 4).astype(int)
    steps = [(0, 1), (1, 1), (1, 0), (1, -1)]  # (row, col) step of each sector
    padded = np.pad(magnitude, ((0, 0), (1, 1), (1, 1)))
    keep = np.zeros_like(magnitude, dtype=bool)
    h, w = magnitude.shape[1:]
    for i, (dr, dc) in enumerate(steps):
        ahead = padded[:, 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        behind = padded[:, 1 - dr : 1 - dr + h, 1 - dc : 1 - dc + w]
        keep |= (sector == i) & (magnitude >= ahead) & (magnitude >= behind)
    return keep


def canny_edges(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Canny edges drawn white on black: Gaussian smoothing (sigma 1), Sobel gradient,
    non-maximum suppression, hysteresis between 0.1 and 0.2 (scikit-image's defaults for
    images in [0, 1]); only the sub-pixel interpolation of the suppression step differs."""
    x = _blur(_unit(images), 1.0)
    gy, gx = ndimage.sobel(x, axis=1), ndimage.sobel(x, axis=2)
    magnitude = np.hypot(gx, gy)
    candidate = _thin(magnitude, gy, gx) & (magnitude > 0.1)
    # hysteresis: a weak edge pixel stays when its 8-connected piece holds a strong one
    within_image = np.zeros((3, 3, 3), dtype=bool)
    within_image[1] = True  # connected inside one image, never across the batch
    labels, count = ndimage.label(candidate, structure=within_image)
    strong = np.zeros(count + 1, dtype=bool)
    strong[np.unique(labels[candidate & (magnitude > 0.2)])] = True
    strong[0] = False
    return _back(strong[labels].astype(np.float64))


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
