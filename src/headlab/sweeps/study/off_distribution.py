"""The report section "Off the training distribution": every head's runs read back from
their metrics.json (``shift/...``, ``ood/...``) and ``off_distribution.npz``.

ECE and accuracy against the rotation angle (bands: min..max over seeds), the mean ECE over
MNIST-C's corruptions, whether temperature scaling fitted on in-distribution val helps or
hurts there, the sklearn digits' accuracy, AUROC and FPR95 per OOD set with the paired
seed-aware difference to softmax, and the none-of-the-above rates of sigmoid heads.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headlab.calibration.bootstrap import shared_rows
from headlab.shift import SHIFT_FILE
from headlab.sweeps.study.paired import MIN_SEEDS

#: AUROC/FPR95 differences within this are called equivalent (TOST)
OOD_MARGIN = 0.02
BASELINE = "softmax"
#: resamples of the paired OOD bootstrap (all rows of a run at once: ~50 ms per run and set)
N_RESAMPLES = 1000
SEED = 0
#: the largest-probability score, the one every head has (max sigmoid for sigmoid heads)
SCORE = "msp"


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _mean_std(values: Sequence[float | None], digits: int = 3) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def angles_of(jobs) -> list[str]:
    """Rotation levels present in every run, in numeric order."""
    found = None
    for job in jobs:
        levels = {k.split("/")[2] for k in job.metrics if k.startswith("shift/rotation/")}
        found = levels if found is None else found & levels
    return sorted(found or (), key=float)


def ood_sets_of(jobs) -> list[str]:
    sets = {k.split("/")[1] for j in jobs for k in j.metrics if k.endswith(f"/{SCORE}/auroc")}
    return sorted(sets)


def rotation_figure(groups: dict[str, list], angles: list[str]):
    from matplotlib.figure import Figure

    x = [float(a) for a in angles]
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    for ax, estimator in zip(figure.subplots(1, 2), ("acc", "ece"), strict=True):
        for head, jobs in groups.items():
            values = np.array(
                [
                    [j.metrics.get(f"shift/rotation/{a}/{estimator}", np.nan) for a in angles]
                    for j in jobs
                ],
                dtype=float,
            )
            line = ax.plot(x, values.mean(axis=0), marker="o", ms=3, label=head)[0]
            ax.fill_between(
                x, values.min(axis=0), values.max(axis=0), alpha=0.2, color=line.get_color()
            )
        ax.set_xlabel("rotation (degrees)")
        ax.set_ylabel(estimator)
        ax.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=8)
    figure.suptitle("rotated MNIST test: mean over seeds, band = min..max")
    return figure


class OODScores:
    """Per run: the score of the in-distribution subset and of each OOD set, from the npz,
    and the OOD metrics on one shared pair of resample indices (in and out drawn apart)."""

    def __init__(self, ood_set: str, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> None:
        self.ood_set, self.n_resamples, self.seed = ood_set, n_resamples, seed
        self.jobs: list = []
        self.rows: tuple[np.ndarray, np.ndarray] | None = None
        #: per run, computed once: its point metrics and its resampled AUROC/FPR95
        self._points: dict[int, dict[str, float]] = {}
        self._resampled: dict[int, dict[str, torch.Tensor]] = {}

    def id_of(self, job) -> int:
        if job not in self.jobs:
            self.jobs.append(job)
        return self.jobs.index(job)

    def arrays(self, run: int) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.jobs[run].path / SHIFT_FILE) as saved:
            return saved[f"ood/test/{SCORE}"], saved[f"ood/{self.ood_set}/{SCORE}"]

    def point(self, run: int) -> dict[str, float]:
        from headlab.shift.metrics import ood_point

        if run not in self._points:
            self._points[run] = ood_point(*self.arrays(run))
        return self._points[run]

    def resampled(self, run: int) -> dict[str, torch.Tensor]:
        """AUROC and FPR95 of ``run`` on the shared resample rows, computed once per run."""
        from headlab.shift.metrics import resampled_auroc_fpr95

        if run not in self._resampled:
            score_in, score_out = self.arrays(run)
            if self.rows is None:
                sizes = (len(score_in), len(score_out))
                rows = shared_rows(sizes, self.n_resamples, self.seed)
                self.rows = (rows[0].numpy(), rows[1].numpy())
            self._resampled[run] = resampled_auroc_fpr95(score_in, score_out, *self.rows)
        return self._resampled[run]


def seed_paired(pairs, scores: OODScores, metric: str, paired_difference: Callable):
    """``metric`` of head - softmax over the shared seeds (outer level) and shared resample
    rows of the in- and out-of-distribution scores (inner level), as the study pairs."""
    point = np.array([scores.point(a)[metric] - scores.point(b)[metric] for a, b in pairs])
    resampled = torch.stack(
        [scores.resampled(a)[metric] - scores.resampled(b)[metric] for a, b in pairs]
    )
    return paired_difference(metric, point, resampled, OOD_MARGIN)


def paired_ood_rows(groups, ood_set: str, paired_difference: Callable) -> list[list[str]]:
    """Per head: AUROC and FPR95 (mean ± std over seeds) and head - softmax, paired."""
    runs = {h: [j for j in js if (j.path / SHIFT_FILE).is_file()] for h, js in groups.items()}
    scores = OODScores(ood_set)
    base = {str(j.seed): j for j in runs.get(BASELINE, [])}
    rows = []
    for head, jobs in runs.items():
        if not jobs:
            continue
        cells = [head, str(len(jobs))]
        for metric in ("auroc", "fpr95"):
            key = f"ood/{ood_set}/{SCORE}/{metric}"
            cells.append(_mean_std([_number(j.metrics, key) for j in jobs]))
        pairs = [
            (scores.id_of(j), scores.id_of(base[str(j.seed)]))
            for j in jobs
            if str(j.seed) in base and head != BASELINE
        ]
        if len(pairs) >= MIN_SEEDS:
            for metric in ("auroc", "fpr95"):
                d = seed_paired(pairs, scores, metric, paired_difference)
                cells.append(f"{d.point:+.3f} [{d.low:+.3f}, {d.high:+.3f}]")
        else:
            cells += [f"n/a (< {MIN_SEEDS} shared seeds)"] * 2
        rows.append(cells)
    return rows


def off_distribution_section(
    groups: dict[str, list], out: Path, paired_difference: Callable
) -> list[str]:
    """The section's Markdown lines; its figure goes into ``out``."""
    lines = ["## Off the training distribution", ""]
    groups = {
        h: [j for j in js if any(k.startswith("shift/") for k in j.metrics)]
        for h, js in groups.items()
    }
    groups = {h: js for h, js in groups.items() if js}
    if not groups:
        return [*lines, "No run measured shifted or OOD sets (`shift=none`, or older runs).", ""]
    angles = angles_of([j for js in groups.values() for j in js])
    if angles:
        figure = rotation_figure(groups, angles)
        figure.savefig(
            out / "off_distribution_rotation.png", format="png", metadata={"Software": None}
        )
        lines += ["![accuracy and ECE vs rotation](off_distribution_rotation.png)", ""]

    def col(js, key):
        return _mean_std([_number(j.metrics, key) for j in js])

    def change(js, key):  # temperature-scaled minus uncalibrated, per run
        values = [
            (a - b)
            if (a := _number(j.metrics, f"{key}_temperature")) is not None
            and (b := _number(j.metrics, key)) is not None
            else None
            for j in js
        ]
        return _mean_std(values)

    rows = [
        [
            head,
            str(len(js)),
            col(js, "test/ece"),
            col(js, "shift/rotation/60/acc"),
            col(js, "shift/rotation/60/ece"),
            change(js, "shift/rotation/60/ece"),
            col(js, "shift/corruption/mean/ece"),
            change(js, "shift/corruption/mean/ece"),
            col(js, "shift/digits/sklearn/acc"),
        ]
        for head, js in groups.items()
    ]
    lines += [
        "Mean ± std over seeds. *TS change*: ECE after temperature scaling fitted on "
        "in-distribution val minus before (negative: it helps under the shift).",
        "",
        *_table(
            [
                "head",
                "runs",
                "test ECE",
                "acc 60°",
                "ECE 60°",
                "TS change 60°",
                "mean ECE corruptions",
                "TS change corruptions",
                "digits acc",
            ],
            rows,
        ),
        "",
    ]
    sets = ood_sets_of([j for js in groups.values() for j in js])
    for ood_set in sets:
        lines += [
            f"**{ood_set}** against MNIST test (in-distribution positive), score `{SCORE}`; "
            f"head - {BASELINE}: seed-averaged, paired bootstrap ({N_RESAMPLES} resamples of "
            "the same in- and out-samples for both heads).",
            "",
            *_table(
                ["head", "runs", "AUROC", "FPR95", f"AUROC - {BASELINE}", f"FPR95 - {BASELINE}"],
                paired_ood_rows(groups, ood_set, paired_difference),
            ),
            "",
        ]
    none_rows = [
        [
            head,
            *(
                col(js, k)
                for k in ["test/none_of_the_above", *(f"ood/{s}/none_of_the_above" for s in sets)]
            ),
        ]
        for head, js in groups.items()
        if any("test/none_of_the_above" in j.metrics for j in js)
    ]
    if none_rows:
        lines += [
            "None of the above (every sigmoid < 0.5): on MNIST test a false rejection, on an "
            "OOD set a correct one.",
            "",
            *_table(["head", "test", *sets], none_rows),
            "",
        ]
    return lines


def runs_table(groups: dict[str, list]) -> list[str]:
    """Per run: test accuracy, ECE, Σp and the wrong classes' share of the last layer's
    gradient (mean of the last 5 logged values), for runs that are not one sweep."""
    from headlab.sweeps.study.jobs import GRAD_SHARE_TAG, read_scalar

    rows = []
    for head, jobs in groups.items():
        for job in jobs:
            share = [v for _, v in read_scalar(job.path / "tensorboard", GRAD_SHARE_TAG)][-5:]
            rows.append(
                [head, str(job.seed)]
                + [_mean_std([_number(job.metrics, f"test/{k}")], 4) for k in ("acc", "ece")]
                + [_mean_std([_number(job.metrics, f"test/prob_sum_{k}")]) for k in ("mean", "std")]
                + [_mean_std([float(np.mean(share))] if share else [])]
            )
    header = ["head", "seed", "test acc", "test ECE", "mean Σp", "std Σp", "grad share other rows"]
    return _table(header, rows)


def main(argv: Sequence[str]) -> str:
    """``python -m headlab.sweeps.study.off_distribution OUT HEAD:SEED=RUN ...``: this
    section (and a per-run table) for runs that were not made as one sweep."""
    from headlab.files import read_metrics
    from headlab.sweeps.study.jobs import Job
    from headlab.sweeps.study.paired import paired_difference

    out, groups = Path(argv[0]), {}
    for arg in argv[1:]:
        label, folder = arg.split("=", 1)
        head, seed = label.split(":")
        metrics = read_metrics(Path(folder) / "metrics.json")
        groups.setdefault(head, []).append(
            Job(Path(folder), head, "mnist", "?", seed, None, metrics)
        )
    out.mkdir(parents=True, exist_ok=True)
    lines = [*runs_table(groups), "", *off_distribution_section(groups, out, paired_difference)]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 3:
        sys.exit("usage: python -m headlab.sweeps.study.off_distribution OUT HEAD:SEED=RUN ...")
    print(main(sys.argv[1:]))
