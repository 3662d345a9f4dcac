"""One per-run cache behind both paired comparisons (in-distribution and OOD)."""

from __future__ import annotations

import torch

from headlab.sweeps.study.off_distribution import OODScores
from headlab.sweeps.study.report import Scores
from headlab.sweeps.study.run_scores import PerRunScores


class Counting(PerRunScores):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def compute_point(self, run: int) -> dict[str, float]:
        self.calls.append(("point", run))
        return {"x": float(run)}

    def compute_resampled(self, run: int) -> dict[str, torch.Tensor]:
        self.calls.append(("resampled", run))
        return {"x": torch.full((3,), float(run))}


def test_each_run_is_scored_once_however_often_it_is_asked():
    scores = Counting()
    a, b = scores.id_of("job a"), scores.id_of("job b")
    assert (a, b, scores.id_of("job a")) == (0, 1, 0)
    for _ in range(3):
        assert scores.point(b) == {"x": 1.0}
        assert torch.equal(scores.resampled(a)["x"], torch.zeros(3))
    assert scores.calls == [("point", 1), ("resampled", 0)]


def test_both_comparisons_use_the_one_cache():
    assert issubclass(Scores, PerRunScores) and issubclass(OODScores, PerRunScores)
    for cls in (Scores, OODScores):
        assert "point" not in vars(cls) and "resampled" not in vars(cls)
