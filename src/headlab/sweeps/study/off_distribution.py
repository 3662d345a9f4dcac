"""The report section "Off the training distribution": every head's runs read back from
their metrics.json (``shift/...``, ``ood/...``) and ``off_distribution.npz``.

What it shows, numbered: (5.1) accuracy and ECE under shift (rotation figure with a mean ±
sd band over seeds, per-corruption ECE figure, a table), (5.2) paired verdicts against
softmax per shift, (5.3) per OOD set AUROC and FPR95 (both conventions) with paired
verdicts, (5.4) each head's natural scores next to the controls (label smoothing is the
``soft`` head; Mahalanobis on the penultimate features), a figure per OOD family, (5.5)
none of the above, and the conclusions, which come from the verdict rule only.

Verdicts are the in-distribution rule (``sweeps.study.verdicts``: different / equivalent /
inconclusive, Holm over every cell of this section). Every cell uses both interval methods
of ``sweeps.study.paired`` (the two-level bootstrap: seeds x one resample row of the samples
shared by every seed; and the t-interval over seeds with that shared sample noise): OOD
cells on each run's saved scores, shift cells as the in-distribution cells are computed
(``conclusions.compare_heads`` on ``shift_scores``: each run's kept per-sample predictions
of the shifted sets, ECE bias-corrected per run). A difference of two metrics in [0, 1]
lies in [-1, 1]: intervals are clipped there.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headlab.calibration.bootstrap import shared_rows
from headlab.layout.headline import CONFIDENCE_ANGLE, DEFAULT_SCORE
from headlab.shift import SHIFT_FILE
from headlab.shift.scores import FEATURE_SCORE, NATURAL
from headlab.sweeps.study.conclusions import KNIFE
from headlab.sweeps.study.paired import MIN_SEEDS
from headlab.sweeps.study.run_scores import PerRunScores
from headlab.sweeps.study.verdicts import (
    DIFFERENT,
    EQUIVALENT,
    KNIFE_EDGE,
    ComparisonSettings,
    verdicts,
)
from headlab.tables import markdown_table, mean_std

#: AUROC/FPR95 differences within this are called equivalent (TOST)
OOD_MARGIN = 0.02
BASELINE = "softmax"
#: resamples of the paired OOD bootstrap (all rows of a run at once: ~50 ms per run and set)
N_RESAMPLES = 1000
SEED = 0
#: the largest-probability score, the one every head has (max sigmoid for sigmoid heads)
SCORE = DEFAULT_SCORE
#: the estimators the shift verdicts compare
SHIFT_ESTIMATORS = ("acc", "ece")
#: where a difference of two metrics in [0, 1] can lie
DIFFERENCE_RANGE = (-1.0, 1.0)
#: the logit scores shown per OOD set (each head gets its natural ones, ``NATURAL``)
SCORE_COLUMNS = ("msp", "max_logit", "energy", "sum_sigmoid", "joint_energy")
CAP = math.e / (math.e + 9)
CAPPED_NOTE = (
    f"† sigmoid_softmax: its softmax sees sigmoid(z) in (0, 1), so no probability exceeds "
    f"e/(e+9) ≈ {CAP:.3f} (K = 10). Its ECE measures that cap, not calibration: where its "
    "accuracy happens to sit near the cap (rotation 60°) its ECE looks small for that reason "
    'alone; it is never "best calibrated".'
)


def capped(head: str) -> bool:
    """A head whose confidence is capped below 1 (sigmoid_softmax and its subclasses)."""
    from headlab.heads import HEADS, SigmoidSoftmax

    cls = HEADS.get(head)
    return cls is not None and issubclass(cls, SigmoidSoftmax)


def label(head: str) -> str:
    """The head's name as tables and figures show it (capped heads marked †)."""
    return f"{head}†" if capped(head) else head


def family_of(ood_set: str) -> str:
    """near or far, as ``shift.sets.FAMILY`` (the one owner) says; ``other`` for a set it
    does not name."""
    from headlab.shift.sets import FAMILY

    return FAMILY.get(ood_set, "other")


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def _mean_std(values: Sequence[float | None], digits: int = 3) -> str:
    return mean_std(values, digits, missing="n/a")


def measured_by_every_run(jobs, prefix: str, suffix: str = "") -> set[str]:
    """The third key part of ``<prefix>/<name>/...<suffix>`` keys that every run has."""
    found = None
    for job in jobs:
        names = {
            k.split("/")[2] for k in job.metrics if k.startswith(prefix) and k.endswith(suffix)
        }
        found = names if found is None else found & names
    return found or set()


def angles_of(jobs) -> list[str]:
    """Rotation levels present in every run, in numeric order."""
    return sorted(measured_by_every_run(jobs, "shift/rotation/"), key=float)


def ood_sets_of(jobs) -> list[str]:
    sets = {k.split("/")[1] for j in jobs for k in j.metrics if k.endswith(f"/{SCORE}/auroc")}
    return sorted(sets)


def corruptions_of(jobs) -> list[str]:
    """Corruptions every run measured (``mean`` is the mean over them, not one)."""
    return sorted(measured_by_every_run(jobs, "shift/corruption/", "/ece") - {"mean"})


def translations_of(jobs) -> list[str]:
    """Translation levels > 0 px every run measured."""
    levels = measured_by_every_run(jobs, "shift/translation/", "/acc")
    return sorted((lv for lv in levels if float(lv) > 0), key=float)


def shift_keys(jobs) -> dict[str, list[str]]:
    """Each shift of the verdicts and the metrics.json keys (``{e}`` = the estimator) of its
    sets: a run's value is the mean over them (``shift/<set>/...`` also names the set's
    predictions in off_distribution.npz)."""
    keys: dict[str, list[str]] = {}
    if CONFIDENCE_ANGLE in angles_of(jobs):
        keys[f"rotation {CONFIDENCE_ANGLE}°"] = [f"shift/rotation/{CONFIDENCE_ANGLE}/{{e}}"]
    corruptions = corruptions_of(jobs)
    if corruptions:
        keys["corruptions (mean)"] = [f"shift/corruption/{c}/{{e}}" for c in corruptions]
        keys.update({f"corruption {c}": [f"shift/corruption/{c}/{{e}}"] for c in corruptions})
    levels = translations_of(jobs)
    if levels:
        keys[f"translation (mean of {levels[0]}..{levels[-1]} px)"] = [
            f"shift/translation/{lv}/{{e}}" for lv in levels
        ]
    if any("shift/digits/sklearn/acc" in j.metrics for j in jobs):
        keys["sklearn digits"] = ["shift/digits/sklearn/{e}"]
    return keys


def clipped(low: float, high: float) -> tuple[float, float]:
    lo, hi = DIFFERENCE_RANGE
    return min(max(low, lo), hi), min(max(high, lo), hi)


def rotation_figure(groups: dict[str, list], angles: list[str]):
    """Accuracy and ECE against the angle: mean over seeds, band = mean ± 1 sd of seeds."""
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
            mean = np.nanmean(values, axis=0)
            sd = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
            line = ax.plot(x, mean, marker="o", ms=3, label=label(head))[0]
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2, color=line.get_color())
        if estimator == "acc":
            ax.axhline(CAP, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("rotation (degrees)")
        ax.set_ylabel(estimator)
        ax.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=8)
    figure.suptitle(
        "rotated MNIST test: mean over seeds, band = ± 1 sd over seeds "
        f"(dotted: sigmoid_softmax's confidence cap {CAP:.3f})"
    )
    return figure


def corruption_figure(groups: dict[str, list], corruptions: list[str]):
    """ECE per corruption, per head: mean over seeds with ± 1 sd bars."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4), layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(corruptions))
    width = 0.8 / max(1, len(groups))
    for i, (head, jobs) in enumerate(groups.items()):
        values = np.array(
            [
                [j.metrics.get(f"shift/corruption/{c}/ece", np.nan) for c in corruptions]
                for j in jobs
            ],
            dtype=float,
        )
        sd = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else None
        ax.bar(
            x + (i - (len(groups) - 1) / 2) * width,
            np.nanmean(values, axis=0),
            width,
            yerr=sd,
            label=label(head),
            capsize=1.5,
            error_kw={"lw": 0.6},
        )
    ax.set_xticks(x, corruptions, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("ECE")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("MNIST-C corruptions: ECE, mean over seeds, bars ± 1 sd over seeds")
    return figure


def family_figure(groups: dict[str, list], sets: list[str], family: str):
    """AUROC of each head on the family's OOD sets: its default score (filled) and the
    Mahalanobis control on its features (hollow), mean ± 1 sd over seeds."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(5, 1.8 * len(sets) + 3), 3.8), layout="constrained")
    ax = figure.subplots()
    x = np.arange(len(sets))
    width = 0.8 / max(1, len(groups))
    for i, (head, jobs) in enumerate(groups.items()):
        offset = x + (i - (len(groups) - 1) / 2) * width
        for score, filled in ((SCORE, True), (FEATURE_SCORE, False)):
            values = np.array(
                [[j.metrics.get(f"ood/{s}/{score}/auroc", np.nan) for s in sets] for j in jobs],
                dtype=float,
            )
            if np.isnan(values).all():
                continue
            sd = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else None
            ax.errorbar(
                offset,
                np.nanmean(values, axis=0),
                yerr=sd,
                fmt="o" if filled else "s",
                ms=5,
                mfc=None if filled else "none",
                color=f"C{i % 10}",
                label=label(head) if filled else None,
                lw=0.8,
            )
    ax.set_xticks(x, sets)
    ax.set_ylabel("AUROC (MNIST test positive)")
    ax.set_ylim(top=1.01)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, ncol=3)
    ax.set_title(
        f"{family} OOD: {SCORE} (filled) and {FEATURE_SCORE} on the features (hollow), "
        "mean ± 1 sd over seeds"
    )
    return figure


class OODScores(PerRunScores):
    """Per run: the score of the in-distribution subset and of each OOD set, from the npz,
    and the OOD metrics on one shared pair of resample indices (in and out drawn apart)."""

    def __init__(self, ood_set: str, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> None:
        super().__init__()
        self.ood_set, self.n_resamples, self.seed = ood_set, n_resamples, seed
        self.rows: tuple[np.ndarray, np.ndarray] | None = None

    def arrays(self, run: int) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.jobs[run].path / SHIFT_FILE) as saved:
            return saved[f"ood/test/{SCORE}"], saved[f"ood/{self.ood_set}/{SCORE}"]

    def compute_point(self, run: int) -> dict[str, float]:
        from headlab.shift.metrics import ood_point

        return ood_point(*self.arrays(run))

    def compute_resampled(self, run: int) -> dict[str, torch.Tensor]:
        """AUROC and FPR95 of ``run`` on the shared resample rows."""
        from headlab.shift.metrics import resampled_auroc_fpr95

        score_in, score_out = self.arrays(run)
        if self.rows is None:
            sizes = (len(score_in), len(score_out))
            rows = shared_rows(sizes, self.n_resamples, self.seed)
            self.rows = (rows[0].numpy(), rows[1].numpy())
        return resampled_auroc_fpr95(score_in, score_out, *self.rows)


def seed_paired(pairs, scores: OODScores, metric: str, paired_difference: Callable):
    """``metric`` of head - softmax over the shared seeds (outer level) and shared resample
    rows of the in- and out-of-distribution scores (inner level), as the study pairs."""
    point = np.array([scores.point(a)[metric] - scores.point(b)[metric] for a, b in pairs])
    resampled = torch.stack(
        [scores.resampled(a)[metric] - scores.resampled(b)[metric] for a, b in pairs]
    )
    return paired_difference(metric, point, resampled, OOD_MARGIN)


class Cells:
    """Every paired difference of this section, keyed (head, cell), and its margin: the
    verdicts are Holm-corrected over all of them at once."""

    def __init__(self) -> None:
        self.differences: dict[tuple[str, str], Any] = {}
        self.margins: dict[str, float] = {}
        self.shared: dict[tuple[str, str], int] = {}
        self._verdicts: dict | None = None

    def add(self, head: str, cell: str, difference, margin: float) -> None:
        self.differences[(head, cell)] = difference
        self.margins[cell] = margin

    def verdicts(self, level: float = 0.95) -> dict:
        if self._verdicts is None:
            self._verdicts = verdicts(self.differences, level, self.margins)
        return self._verdicts

    def text(self, head: str, cell: str, digits: int = 3) -> str:
        """``+d [low, high] verdict``; ``baseline`` for softmax; why not, else."""
        if head == BASELINE:
            return "baseline"
        d = self.differences.get((head, cell))
        if d is None:
            shared = self.shared.get((head, cell), 0)
            return f"n/a ({shared} shared seeds < {MIN_SEEDS})"
        low, high = clipped(d.low, d.high)
        verdict = self.verdicts()[(head, cell)]
        edge = f"{KNIFE} " if verdict.knife_edge else ""
        return f"{edge}{d.point:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] {verdict.word}"

    def word(self, head: str, cell: str) -> str | None:
        verdict = self.verdicts().get((head, cell))
        return verdict.word if verdict else None


def set_names(templates: list[str]) -> list[str]:
    """``shift/rotation/60/{e}`` -> ``rotation/60``: the sets a shift's keys name."""
    return [t[len("shift/") : -len("/{e}")] for t in templates]


def shift_cells(
    groups, cells: Cells, keys: dict[str, list[str]], settings: ComparisonSettings | None = None
) -> None:
    """Per head, shift and estimator: head - softmax, exactly as the in-distribution cells
    (``conclusions.compare_heads``: seeds x one shared resample row of the shifted samples,
    and the t-interval with the shared sample noise; ECE bias-corrected per run), on the
    per-sample predictions each run kept (``shift_scores``)."""
    from headlab.sweeps.study.conclusions import compare_heads
    from headlab.sweeps.study.shift_scores import SetScores, ShiftScores, shift_settings

    settings = shift_settings(settings, SHIFT_ESTIMATORS)
    rows_of = SetScores("", settings)  # the rows per sample size, drawn once for every set
    per_set: dict[str, SetScores] = {}
    base = {str(j.seed): j for j in groups.get(BASELINE, [])}
    for shift, templates in keys.items():
        names = set_names(templates)
        scores = ShiftScores(
            [per_set.setdefault(n, SetScores(n, settings, rows_of)) for n in names]
        )
        pairs = {
            head: [
                (scores.id_of(j), scores.id_of(other))
                for j in jobs
                if (other := base.get(str(j.seed))) is not None and scores.comparable(j, other)
            ]
            for head, jobs in groups.items()
            if head != BASELINE
        }
        found, _ = compare_heads(pairs, scores.point, scores.resampled, settings)
        for head, head_pairs in pairs.items():
            for estimator in SHIFT_ESTIMATORS:
                cell = f"{shift}: {estimator}"
                cells.shared[(head, cell)] = len(head_pairs)
                if (head, estimator) in found:
                    cells.add(head, cell, found[(head, estimator)], settings.margins[estimator])


def ood_cells(groups, cells: Cells, sets: list[str], paired_difference) -> None:
    """Per head and OOD set: AUROC and FPR95 of the default score, head - softmax, paired
    over seeds and resample rows (both interval methods)."""
    for ood_set in sets:
        runs = {h: [j for j in js if (j.path / SHIFT_FILE).is_file()] for h, js in groups.items()}
        scores = OODScores(ood_set)
        base = {str(j.seed): j for j in runs.get(BASELINE, [])}
        for head, jobs in runs.items():
            if head == BASELINE:
                continue
            pairs = [
                (scores.id_of(j), scores.id_of(base[str(j.seed)]))
                for j in jobs
                if str(j.seed) in base
            ]
            for metric in ("auroc", "fpr95"):
                cell = f"{ood_set}: {metric}"
                cells.shared[(head, cell)] = len(pairs)
                if len(pairs) >= MIN_SEEDS:
                    d = seed_paired(pairs, scores, metric, paired_difference)
                    cells.add(head, cell, d, OOD_MARGIN)


def paired_ood_rows(groups, ood_set: str, cells: Cells) -> list[list[str]]:
    """Per head: AUROC, FPR95 in both conventions (mean ± sd over seeds) and the verdicts."""
    rows = []
    for head, jobs in groups.items():
        cells_ = [label(head), str(len(jobs))]
        for metric in ("auroc", "fpr95", "fpr95_ood"):
            key = f"ood/{ood_set}/{SCORE}/{metric}"
            cells_.append(_mean_std([_number(j.metrics, key) for j in jobs]))
        cells_ += [cells.text(head, f"{ood_set}: {m}") for m in ("auroc", "fpr95")]
        rows.append(cells_)
    return rows


def score_rows(groups, ood_set: str) -> list[list[str]]:
    """Per head: AUROC of each of its natural scores, the best of them, and Mahalanobis."""
    from headlab.heads import HEADS

    rows = []
    for head, jobs in groups.items():
        cls = HEADS.get(head)
        natural = NATURAL[cls.exclusive] if cls is not None else (SCORE,)
        means = {}
        cells_ = [label(head)]
        for score in SCORE_COLUMNS:
            values = [_number(j.metrics, f"ood/{ood_set}/{score}/auroc") for j in jobs]
            if score not in natural or not any(v is not None for v in values):
                cells_.append("—")
                continue
            means[score] = statistics.mean(v for v in values if v is not None)
            cells_.append(_mean_std(values))
        cells_.append(max(means, key=means.get) if means else "n/a")
        feature = [_number(j.metrics, f"ood/{ood_set}/{FEATURE_SCORE}/auroc") for j in jobs]
        cells_.append(_mean_std(feature))
        rows.append(cells_)
    return rows


def conclusions(groups, cells: Cells, keys: dict[str, list[str]], sets: list[str]) -> list[str]:
    """One line per headline cell, from the verdict rule only: which heads are different
    from softmax (and in which direction), which equivalent; the rest inconclusive."""
    better_if_lower = {"ece", "fpr95"}
    headline = [
        f"{s}: {e}"
        for s in keys
        if s in (f"rotation {CONFIDENCE_ANGLE}°", "corruptions (mean)", "sklearn digits")
        for e in SHIFT_ESTIMATORS
    ]
    headline += [f"{s}: auroc" for s in sets]
    lines = []
    for cell in headline:
        better, worse, same, open_ = [], [], [], []
        for head in groups:
            word = cells.word(head, cell)
            if word is None:
                continue
            d = cells.differences[(head, cell)].point
            if word == DIFFERENT:
                lower = d < 0
                (better if lower == (cell.rsplit(": ", 1)[1] in better_if_lower) else worse).append(
                    label(head)
                )
            elif word == EQUIVALENT:
                same.append(label(head))
            else:
                open_.append(label(head))
        if not (better or worse or same or open_):
            continue
        parts = []
        if better:
            parts.append("better than softmax: " + ", ".join(better))
        if worse:
            parts.append("worse: " + ", ".join(worse))
        if same:
            parts.append("equivalent: " + ", ".join(same))
        if open_:
            parts.append(f"inconclusive: {len(open_)} head(s)")
        lines.append(f"- **{cell}** — " + "; ".join(parts) + ".")
    return lines


def off_distribution_section(
    groups: dict[str, list],
    out: Path,
    paired_difference: Callable,
    level: float = 0.95,
    figures: bool = True,
    settings: ComparisonSettings | None = None,
) -> list[str]:
    """The section's Markdown lines; its figures go into ``out`` (``figures=False``: the
    text alone, ~1 s a figure less). ``settings``: the in-distribution comparison's (rows,
    seed, margins), which the shift cells use too."""
    lines = ["## 5. Off the training distribution", ""]
    groups = {
        h: [j for j in js if any(k.startswith("shift/") for k in j.metrics)]
        for h, js in groups.items()
    }
    groups = {h: js for h, js in groups.items() if js}
    if not groups:
        return [*lines, "No run measured shifted or OOD sets (`shift=none`, or older runs).", ""]
    jobs = [j for js in groups.values() for j in js]
    flagged = any(capped(h) for h in groups)
    note = [CAPPED_NOTE, ""] if flagged else []

    lines += ["### 5.1 Accuracy and calibration under shift", ""]
    angles = angles_of(jobs)
    if angles and figures:
        rotation_figure(groups, angles).savefig(
            out / "off_distribution_rotation.png", format="png", metadata={"Software": None}
        )
        lines += ["![accuracy and ECE vs rotation](off_distribution_rotation.png)", ""]
    corruptions = corruptions_of(jobs)
    if corruptions and figures:
        corruption_figure(groups, corruptions).savefig(
            out / "off_distribution_corruptions.png", format="png", metadata={"Software": None}
        )
        lines += ["![ECE per corruption](off_distribution_corruptions.png)", ""]

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
            label(head),
            str(len(js)),
            col(js, "test/ece"),
            col(js, f"shift/rotation/{CONFIDENCE_ANGLE}/acc"),
            col(js, f"shift/rotation/{CONFIDENCE_ANGLE}/ece"),
            change(js, f"shift/rotation/{CONFIDENCE_ANGLE}/ece"),
            col(js, "shift/corruption/mean/ece"),
            change(js, "shift/corruption/mean/ece"),
            col(js, "shift/digits/sklearn/acc"),
        ]
        for head, js in groups.items()
    ]
    lines += [
        "Mean ± sd over seeds. *TS change*: ECE after temperature scaling fitted on "
        "in-distribution val minus before (negative: it helps under the shift). Which head "
        "differs from softmax is said by the verdicts (5.2), not by this table.",
        "",
        *markdown_table(
            [
                "head",
                "runs",
                "test ECE",
                f"acc {CONFIDENCE_ANGLE}°",
                f"ECE {CONFIDENCE_ANGLE}°",
                f"TS change {CONFIDENCE_ANGLE}°",
                "mean ECE corruptions",
                "TS change corruptions",
                "digits acc",
            ],
            rows,
        ),
        "",
        *note,
    ]

    cells = Cells()
    keys = shift_keys(jobs)
    compare = settings or ComparisonSettings(level=level)
    shift_cells(groups, cells, keys, compare)
    sets = ood_sets_of(jobs)
    ood_cells(groups, cells, sets, paired_difference)
    cells.verdicts(level)
    others = [h for h in groups if h != BASELINE]
    n_cells = len(cells.differences)
    lines += [
        "### 5.2 Verdicts against softmax, per shift",
        "",
        f"head - {BASELINE}, mean over shared seeds [{level:.0%} interval, clipped to [-1, 1]] "
        "and the verdict, computed as section 3's cells: on the shifted samples each run kept, "
        "ECE bias-corrected per run (per-bin debiased), the wider of the two-level bootstrap "
        "(seeds x one resample row of the shifted samples, shared by every seed: they are the "
        "same images) and the t-interval over seeds plus that shared sample noise; a shift of "
        "several sets is the mean of its sets. Rule: different / equivalent / "
        f"inconclusive; Holm over all {n_cells} cells of this section; margins acc "
        f"±{compare.margins['acc']:g}, ECE ±{compare.margins['ece']:g}, AUROC and FPR95 "
        f"±{OOD_MARGIN}; {KNIFE} marks a knife edge: an adjusted p within a factor "
        f"{KNIFE_EDGE:g} of {1 - level:.2g}, which a rerun could read the other way).",
        "",
    ]
    if others and keys:
        for estimator in SHIFT_ESTIMATORS:
            rows = [
                [shift, *(cells.text(h, f"{shift}: {estimator}") for h in others)] for shift in keys
            ]
            lines += [
                f"**{estimator}**",
                "",
                *markdown_table(["shift", *map(label, others)], rows),
                "",
            ]
        lines += note
    else:
        lines += ["No head besides softmax, or no shift measured: nothing to compare.", ""]

    lines += ["### 5.3 Inputs of no class: detection by the head's default score", ""]
    lines += [
        f"Score `{SCORE}` (largest softmax probability; max sigmoid for sigmoid heads). "
        "FPR95 (ID+): share of OOD inputs accepted at the threshold keeping 95% of MNIST "
        "test; FPR95 (OOD+, OpenOOD's convention): share of MNIST test rejected at the "
        f"threshold catching 95% of the OOD inputs. head - {BASELINE}: paired over seeds and "
        f"over {N_RESAMPLES} resamples of the same in- and out-samples (two-level bootstrap "
        "and t-interval; the wider), clipped to [-1, 1], with the verdict.",
        "",
    ]
    for ood_set in sets:
        lines += [
            f"**{ood_set}** ({family_of(ood_set)} OOD)",
            "",
            *markdown_table(
                [
                    "head",
                    "runs",
                    "AUROC",
                    "FPR95 (ID+)",
                    "FPR95 (OOD+)",
                    f"AUROC - {BASELINE}",
                    f"FPR95 (ID+) - {BASELINE}",
                ],
                paired_ood_rows(groups, ood_set, cells),
            ),
            "",
        ]
    if sets:
        lines += note

    lines += ["### 5.4 Head or score? Natural scores and two controls", ""]
    if sets:
        lines += [
            "AUROC (mean ± sd over seeds) of each head's natural scores (softmax heads: MSP, "
            "max logit, energy of what the softmax sees; sigmoid heads: max sigmoid, sum of "
            "sigmoids, joint energy), the best of them, and two controls: label smoothing "
            f"(the `soft` row, a softmax head) and `{FEATURE_SCORE}` (shared-covariance "
            "Mahalanobis on the penultimate features, fitted on the first 10,000 training "
            "images of the run). A head's gain that its best score or the feature control "
            "also gives a softmax head is the score's, not the head's.",
            "",
        ]
        by_family: dict[str, list[str]] = {}
        for ood_set in sets:
            by_family.setdefault(family_of(ood_set), []).append(ood_set)
            lines += [
                f"**{ood_set}** ({family_of(ood_set)} OOD)",
                "",
                *markdown_table(
                    ["head", *SCORE_COLUMNS, "best natural score", FEATURE_SCORE],
                    score_rows(groups, ood_set),
                ),
                "",
            ]
        for family, members in sorted(by_family.items()) if figures else ():
            name = f"off_distribution_ood_{family}.png"
            family_figure(groups, members, family).savefig(
                out / name, format="png", metadata={"Software": None}
            )
            lines += [f"![{family} OOD: AUROC per head]({name})", ""]
        lines += note

    none_rows = [
        [
            label(head),
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
            "### 5.5 None of the above",
            "",
            "Every class sigmoid < 0.5 (sigmoid heads, and sigmoid_softmax's sigmoids before "
            "its softmax): on MNIST test a false rejection, on an OOD set a correct one.",
            "",
            *markdown_table(["head", "test", *sets], none_rows),
            "",
        ]
    found = conclusions(groups, cells, keys, sets)
    lines += ["### 5.6 Conclusions (from the verdicts only)", ""]
    lines += (found or ["No verdict could be reached (fewer than 3 shared seeds)."]) + [""]
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
    return markdown_table(header, rows)


def main(argv: Sequence[str]) -> str:
    """``python -m headlab.sweeps.study.off_distribution OUT HEAD:SEED=RUN ...``: this
    section (and a per-run table) for runs that were not made as one sweep."""
    from headlab.layout import read_metrics
    from headlab.sweeps.study.jobs import Job
    from headlab.sweeps.study.paired import paired_difference

    out, groups = Path(argv[0]), {}
    for arg in argv[1:]:
        label, folder = arg.split("=", 1)
        head, seed = label.split(":")
        metrics = read_metrics(folder)
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
