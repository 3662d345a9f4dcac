"""Soft-label MNIST: blends ``lam*a + (1-lam)*b`` of two digits of different classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from headlab.data.generated import GeneratedMNIST, draw_of_class
from headlab.errors import ConfigValueError


@dataclass(frozen=True)
class BlendPlan:
    """Blend ``i`` weighs digit ``first[i]`` by ``lam[i]`` and ``second[i]`` by ``1 - lam[i]``."""

    first_class: np.ndarray
    second_class: np.ndarray
    first: np.ndarray
    second: np.ndarray
    lam: np.ndarray


def plan_blends(
    labels: np.ndarray,
    n: int,
    rng: np.random.Generator,
    lam_alpha: float = 1.0,
    lam_beta: float = 1.0,
    plain_fraction: float = 0.0,
) -> BlendPlan:
    """lam ~ Beta(lam_alpha, lam_beta); a ``plain_fraction`` of samples are plain digits."""
    first_class = rng.integers(0, 10, size=n)
    # a non-zero shift modulo 10: the second class always differs from the first
    second_class = (first_class + rng.integers(1, 10, size=n)) % 10
    lam = rng.beta(lam_alpha, lam_beta, size=n)
    lam[rng.random(n) < plain_fraction] = 1.0
    first = draw_of_class(labels, first_class, rng)
    second = draw_of_class(labels, second_class, rng)
    return BlendPlan(first_class, second_class, first, second, lam)


def blend_targets(plan: BlendPlan, num_classes: int = 10) -> torch.Tensor:
    rows = np.arange(len(plan.lam))
    targets = np.zeros((len(plan.lam), num_classes), dtype=np.float32)
    targets[rows, plan.first_class] += plan.lam
    targets[rows, plan.second_class] += 1.0 - plan.lam
    return torch.from_numpy(targets)


def paint_blends(images: torch.Tensor, plan: BlendPlan) -> torch.Tensor:
    """The blended images, rounded back to uint8 so they normalise like MNIST."""
    lam = torch.from_numpy(plan.lam).float().view(-1, 1, 1, 1)
    first = images[torch.from_numpy(plan.first)].float()
    second = images[torch.from_numpy(plan.second)].float()
    return (lam * first + (1.0 - lam) * second).round_().to(torch.uint8)


class SoftMNISTDataModule(GeneratedMNIST):
    """Blended digits with distribution targets; ``hard_targets`` trains on their argmax.

    Validation and test keep the distributions in either case, so runs trained on hard
    and on soft targets are measured (accuracy vs argmax, ``*/kl``) on the same targets.
    """

    name = "soft_mnist"
    target_kind = "distribution"
    eval_target_kind = "distribution"

    def __init__(
        self,
        lam_alpha: float = 1.0,
        lam_beta: float = 1.0,
        plain_fraction: float = 0.0,
        hard_targets: bool = False,
        **generated_args,
    ) -> None:
        if not isinstance(hard_targets, bool):
            raise ConfigValueError(f"data.hard_targets must be true or false, got {hard_targets!r}")
        #: what training batches carry (the one declaration the model and head are built from)
        self.target_kind = "index" if hard_targets else "distribution"
        super().__init__(**generated_args)
        if lam_alpha <= 0 or lam_beta <= 0:
            raise ValueError(
                f"data.lam_alpha and data.lam_beta must be > 0, got {lam_alpha}, {lam_beta}"
            )
        if not 0.0 <= plain_fraction <= 1.0:
            raise ValueError(f"data.plain_fraction must lie in [0, 1], got {plain_fraction}")
        self.lam_alpha, self.lam_beta = lam_alpha, lam_beta
        self.plain_fraction = plain_fraction
        self.hard_targets = hard_targets

    def generate(
        self, images: torch.Tensor, labels: torch.Tensor, n: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        plan = plan_blends(
            labels.numpy(), n, rng, self.lam_alpha, self.lam_beta, self.plain_fraction
        )
        return paint_blends(images, plan), blend_targets(plan, self.num_classes)

    def finish_targets(self, split: str, targets: torch.Tensor) -> torch.Tensor:
        if self.hard_targets and split == "train":
            return targets.argmax(dim=1)
        return targets
