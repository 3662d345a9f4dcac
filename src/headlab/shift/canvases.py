"""OOD sets for multi-label MNIST: canvases laid out like its test canvases (1..max_digits
filled cells of a grid of 28-px cells) whose cells hold letters or noise instead of digits,
so a multi-label head is asked "which digits are here?" where there are none."""

from __future__ import annotations

import numpy as np
import torch

from headlab.data.multilabel import CELL
from headlab.shift.letters import letters
from headlab.shift.sets import PIXEL_MEAN, PIXEL_STD
from headlab.shift.transforms import as_uint8

CANVAS_SETS = ("letters", "noise")


def cell_contents(fill: str, n: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` cells (n, 28, 28) uint8: rendered letters, or Gaussian noise with MNIST's pixel
    mean and spread inside a digit-sized 20 x 20 square."""
    if fill == "letters":
        return letters(n, rng)[:, 0]
    if fill == "noise":
        cells = torch.zeros(n, CELL, CELL, dtype=torch.uint8)
        noise = rng.normal(PIXEL_MEAN, PIXEL_STD, (n, 20, 20))
        cells[:, 4:24, 4:24] = as_uint8(torch.from_numpy(noise))
        return cells
    raise ValueError(f"unknown canvas fill {fill!r}; known: {', '.join(CANVAS_SETS)}")


def ood_canvases(
    fill: str, n: int, grid: int, max_items: int, rng: np.random.Generator
) -> torch.Tensor:
    """(n, 1, grid*28, grid*28) canvases with 1..max_items cells of ``fill``, others black."""
    counts = rng.integers(1, max_items + 1, size=n)
    cells = np.argsort(rng.random((n, grid * grid)), axis=1)[:, :max_items]
    used = np.arange(max_items) < counts[:, None]
    rows, slots = np.nonzero(used)
    canvas = torch.zeros(n, grid, CELL, grid, CELL, dtype=torch.uint8)
    where = torch.from_numpy(cells[rows, slots])
    canvas[torch.from_numpy(rows), where // grid, :, where % grid] = cell_contents(
        fill, len(rows), rng
    )
    return canvas.view(n, 1, grid * CELL, grid * CELL)
