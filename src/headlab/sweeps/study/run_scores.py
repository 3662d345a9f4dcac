"""Each run's scores, computed once: the one cache behind every paired comparison.

A study compares heads run by run (seed s of head A with seed s of softmax), on the same
resample rows for every run, so each run's point values and resampled values are asked for
many times (each cell, each pair). ``PerRunScores`` computes them once per run; a subclass
says only how (``compute_point``, ``compute_resampled``): the in-distribution estimators
(``report.Scores``; on the shifted sets ``shift_scores.ShiftScores``) and the OOD metrics of
one OOD set (``off_distribution.OODScores``).
"""

from __future__ import annotations

from typing import Any

import torch


class PerRunScores:
    """Runs are numbered in the order they are first seen (``id_of``)."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []
        self._points: dict[int, dict[str, float]] = {}
        self._resampled: dict[int, dict[str, torch.Tensor]] = {}

    def id_of(self, job: Any) -> int:
        if job not in self.jobs:
            self.jobs.append(job)
        return self.jobs.index(job)

    def point(self, run: int) -> dict[str, float]:
        if run not in self._points:
            self._points[run] = self.compute_point(run)
        return self._points[run]

    def resampled(self, run: int) -> dict[str, torch.Tensor]:
        """The scores on the resample rows every run shares, (B,) per name."""
        if run not in self._resampled:
            self._resampled[run] = self.compute_resampled(run)
        return self._resampled[run]

    def compute_point(self, run: int) -> dict[str, float]:
        raise NotImplementedError

    def compute_resampled(self, run: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError
