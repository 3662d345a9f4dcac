"""Each run's accuracy and ECE under one shift, for the paired shift verdicts (report 5.2).

The in-distribution comparison's own scores (``report.Scores``: the same estimators, the same
per-run bias correction of ECE, the same resample rows per sample size, drawn by
``calibration.bootstrap``), read from the run's ``off_distribution.npz`` (``shift/<set>/probs``
and ``/targets``, kept per sample) instead of its test predictions. Every run saw the same
shifted images (the sets are drawn from ``shift.seed``, not the training seed), so their
sample noise is shared by all seeds, as the test set's is: the two-level bootstrap draws one
resample row for all of them. A shift of several sets (the mean over the corruptions, over
the translation levels) is per run the mean of its sets' values, on each set's rows.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from headlab.shift import SHIFT_FILE
from headlab.sweeps.study.report import Scores, resample_index_of
from headlab.sweeps.study.run_scores import PerRunScores
from headlab.sweeps.study.verdicts import ComparisonSettings


def kept_sets(job) -> frozenset[str]:
    """The shifted sets whose per-sample predictions the run kept (``rotation/60``, ...)."""
    file = job.path / SHIFT_FILE
    if not file.is_file():
        return frozenset()
    return _kept_sets(file, file.stat().st_mtime_ns)


@functools.lru_cache(maxsize=1024)  # asked for every pair of every shift: read once a file
def _kept_sets(file: Path, _stamp: int) -> frozenset[str]:
    with np.load(file) as saved:
        names = saved.files
    return frozenset(
        k[len("shift/") : -len("/probs")]
        for k in names
        if k.startswith("shift/") and k.endswith("/probs")
    )


class SetScores(Scores):
    """One shifted set's estimators per run (``settings.estimators`` only), on the rows a
    report draws for the set's size."""

    def __init__(
        self, name: str, settings: ComparisonSettings, rows_of: Scores | None = None
    ) -> None:
        super().__init__(settings)
        self.name = name
        if rows_of is not None:  # one copy of the rows per sample size (16 MB each at 2,000)
            self._index, self._counts = rows_of._index, rows_of._counts
        self._last: tuple[int, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._targets: dict[Path, np.ndarray] = {}

    def targets(self, job) -> np.ndarray:
        """The set's targets in the run (read once: every pair of runs is checked)."""
        if job.path not in self._targets:
            with np.load(job.path / SHIFT_FILE) as saved:
                self._targets[job.path] = saved[f"shift/{self.name}/targets"]
        return self._targets[job.path]

    def tensors(self, run: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (float64, as test predictions are read) and targets; the last run's
        kept (asked for three times in a row: point, rows, bias correction)."""
        if self._last is None or self._last[0] != run:
            with np.load(self.jobs[run].path / SHIFT_FILE) as saved:
                probs = saved[f"shift/{self.name}/probs"].astype(np.float64)
                targets = saved[f"shift/{self.name}/targets"]
            self._last = (run, (torch.from_numpy(probs), torch.from_numpy(targets).long()))
        return self._last[1]

    def scored(self) -> tuple[str, ...]:
        return self.settings.estimators

    def saved_rows(self, run: int) -> None:
        return None  # a run saves resampled values of its test set only

    def compute_resampled(self, run: int) -> dict[str, torch.Tensor]:
        """Accuracy and plug-in ECE on the report's rows from one binning of the rows'
        counts (the sums ``calibration.bins`` defines both by; the estimators' general path
        sorts and computes every per-sample term: ~2x the time, 24 sets x every run)."""
        from headlab.calibration.bins import N_BINS, bin_sums, ece_of_sums
        from headlab.calibration.bootstrap import counts_of
        from headlab.calibration.estimators import top_label

        if not set(self.settings.estimators) <= {"acc", "ece"}:
            return super().compute_resampled(run)
        probs, targets = self.tensors(run)
        n = len(targets)
        if n not in self._index:
            self._index[n] = resample_index_of(n, self.settings)
        if n not in self._counts:
            self._counts[n] = counts_of(self._index[n], n)
        count, confidence, hits = bin_sums(*top_label(probs, targets), self._counts[n], N_BINS)
        total = count.sum(-1)
        values = {"acc": hits.sum(-1) / total, "ece": ece_of_sums(count, confidence, hits)}
        return {name: values[name] for name in self.settings.estimators}


class ShiftScores(PerRunScores):
    """Per run: the mean over the shift's sets of each set's compared (bias-corrected)
    values, full sample and on the shared rows."""

    def __init__(self, sets: list[SetScores]) -> None:
        """``sets``: each set's scores, shared with the other shifts that use the set (a
        corruption is a shift of its own and one of the mean's): computed once."""
        super().__init__()
        self.sets = sets

    def comparable(self, a, b) -> bool:
        """Both runs kept every set, on the same samples (same size and targets): only then
        are their resample rows the same samples."""
        names = {s.name for s in self.sets}
        if not (names <= kept_sets(a) and names <= kept_sets(b)):
            return False
        return all(np.array_equal(s.targets(a), s.targets(b)) for s in self.sets)

    def compute_point(self, run: int) -> dict[str, float]:
        job = self.jobs[run]
        values = [s.compared(s.id_of(job)) for s in self.sets]
        return {k: float(np.mean([v[k] for v in values])) for k in values[0]}

    def compute_resampled(self, run: int) -> dict[str, torch.Tensor]:
        job = self.jobs[run]
        rows = [s.compared_resampled(s.id_of(job)) for s in self.sets]
        return {k: torch.stack([r[k] for r in rows]).mean(dim=0) for k in rows[0]}


def shift_settings(settings: ComparisonSettings | None, estimators) -> ComparisonSettings:
    """The report's comparison settings (rows, seed, methods, margins), these estimators."""
    return replace(settings or ComparisonSettings(), estimators=tuple(estimators))
