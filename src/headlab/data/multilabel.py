"""Multi-label MNIST: 1..max_digits digits of distinct classes on a grid of 28-px cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from headlab.data.generated import GeneratedMNIST, draw_of_class

CELL = 28  # side of one MNIST digit


@dataclass(frozen=True)
class CanvasPlan:
    """Which digit goes into which cell: row ``i`` of each array describes canvas ``i``.

    Only the first ``counts[i]`` of its ``max_digits`` slots are used.
    """

    classes: np.ndarray  # (n, max_digits) distinct classes
    digits: np.ndarray  # (n, max_digits) indices into the digit pool
    cells: np.ndarray  # (n, max_digits) distinct cells, row-major in the grid
    counts: np.ndarray  # (n,) digits on the canvas

    @property
    def used(self) -> np.ndarray:
        return np.arange(self.classes.shape[1]) < self.counts[:, None]


def plan_canvases(
    labels: np.ndarray, n: int, max_digits: int, grid: int, rng: np.random.Generator
) -> CanvasPlan:
    """Draw the canvases' contents at once: argsort of uniform noise gives distinct picks."""
    counts = rng.integers(1, max_digits + 1, size=n)
    classes = np.argsort(rng.random((n, 10)), axis=1)[:, :max_digits]
    cells = np.argsort(rng.random((n, grid * grid)), axis=1)[:, :max_digits]
    return CanvasPlan(classes, draw_of_class(labels, classes, rng), cells, counts)


def multi_hot(plan: CanvasPlan, num_classes: int = 10) -> torch.Tensor:
    rows, slots = np.nonzero(plan.used)
    targets = torch.zeros(len(plan.counts), num_classes, dtype=torch.int64)
    targets[rows, plan.classes[rows, slots]] = 1
    return targets


def paint_canvases(images: torch.Tensor, plan: CanvasPlan, grid: int) -> torch.Tensor:
    """(n, 1, grid*28, grid*28) uint8 canvases; unused cells stay black."""
    n = len(plan.counts)
    # viewed as (sample, cell row, pixel row, cell column, pixel column): one indexed copy
    canvas = torch.zeros(n, grid, CELL, grid, CELL, dtype=images.dtype)
    rows, slots = np.nonzero(plan.used)
    cells = torch.from_numpy(plan.cells[rows, slots])
    digits = images[torch.from_numpy(plan.digits[rows, slots]), 0]
    canvas[torch.from_numpy(rows), cells // grid, :, cells % grid] = digits
    return canvas.view(n, 1, grid * CELL, grid * CELL)


class MultiLabelMNISTDataModule(GeneratedMNIST):
    """Canvases of ``image_size`` px (a grid of 28-px cells) with multi-hot targets."""

    name = "multilabel_mnist"
    target_kind = "multi_hot"

    def __init__(self, image_size: int = 56, max_digits: int = 3, **generated_args) -> None:
        super().__init__(**generated_args)
        if image_size <= 0 or image_size % CELL:
            raise ValueError(f"data.image_size must be a positive multiple of 28, got {image_size}")
        self.grid = image_size // CELL
        if not 1 <= max_digits <= min(self.num_classes, self.grid**2):
            raise ValueError(
                f"data.max_digits must lie in 1..{min(self.num_classes, self.grid**2)} "
                f"({self.num_classes} classes, {self.grid**2} cells of a {image_size}-px canvas), "
                f"got {max_digits}"
            )
        self.image_size = image_size
        self.max_digits = max_digits

    def generate(
        self, images: torch.Tensor, labels: torch.Tensor, n: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        plan = plan_canvases(labels.numpy(), n, self.max_digits, self.grid, rng)
        return paint_canvases(images, plan, self.grid), multi_hot(plan, self.num_classes)
