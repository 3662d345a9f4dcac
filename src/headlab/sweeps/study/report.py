"""The head comparison report: one Markdown file and its figures from a finished sweep.

Sections answer the questions headlab is for: (1) what a head's probabilities add up to,
(2) how its loss spreads the last layer's gradient over the classes' rows, (3) how well
calibrated it is before and after post-hoc calibration, with a paired bootstrap interval
for its difference to softmax, (4) multi-label and soft-label results when the sweep(s)
ran them, (5) off the training distribution (``sweeps.study.off_distribution``). The
setting (model, epochs, seeds, data, commit) is stated; missing and failed runs are
listed. Nothing depends on the clock or on unseeded randomness, so the same folder gives the
same report. Everything is written into a temporary folder that replaces
``<sweep>/report/`` only when complete.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headlab.calibration import METHODS
from headlab.calibration.estimators import ESTIMATORS
from headlab.errors import ConfigValueError
from headlab.files import make_temp_dir
from headlab.sweeps.study.board_runs import write_head_runs
from headlab.sweeps.study.jobs import BadSweep, Job, Study, load_study
from headlab.sweeps.study.legend import caveats, degenerate, head_config, heads_table
from headlab.sweeps.study.run_scores import PerRunScores
from headlab.sweeps.study.table import MULTILABEL_COLUMNS as STUDY_COLUMNS
from headlab.sweeps.study.verdicts import ComparisonSettings
from headlab.tables import markdown_table as table
from headlab.tables import mean_std

log = logging.getLogger(__name__)

REPORT_DIR = "report"
BASELINE = "softmax"
#: every estimator gets a paired difference to the baseline
PAIRED_ESTIMATORS = ESTIMATORS
#: metrics.json only: maximum calibration error, areas under the (generalized) risk-coverage
#: curve
#: and, for sigmoid heads, the top-label ECE of the normalised p / sum p (``test/ece_norm``)
EXTRA_COLUMNS = ("mce", "aurc", "augrc", "ece_norm")
#: multi-label columns: the multi-label study's own (headlab.sweeps.study.table), plus acc and Brier
REPORT_MULTILABEL_COLUMNS = (*STUDY_COLUMNS, "test/acc", "test/hamming_acc", "test/brier")
SOFT_COLUMNS = ("test/kl", "test/acc", "test/loss")


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class Scores(PerRunScores):
    """Each run's estimators on its test predictions: full sample and on one shared
    bootstrap index (drawn once per test-set size), computed once per run."""

    def __init__(self, settings: ComparisonSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or ComparisonSettings()
        self.n_resamples, self.seed = self.settings.n_resamples, self.settings.seed
        self._index: dict[int, torch.Tensor] = {}
        self._counts: dict[int, torch.Tensor] = {}
        self._compared: dict[int, tuple[dict[str, float], dict[str, torch.Tensor]]] = {}

    def tensors(self, run: int) -> tuple[torch.Tensor, torch.Tensor]:
        probs, targets = self.jobs[run].predictions
        return torch.from_numpy(probs), torch.from_numpy(targets).long()

    def scored(self) -> tuple[str, ...]:
        """The estimators each run's point values hold: all of them (the report's table
        shows every one; the paired cells use ``settings.estimators``)."""
        return PAIRED_ESTIMATORS

    def compute_point(self, run: int) -> dict[str, float]:
        from headlab.calibration.estimators import scores

        return scores(*self.tensors(run), estimators=self.scored())

    def value(self, job: Job, name: str) -> float | None:
        """The estimator recomputed from the run's predictions (so every run, old or new, is
        scored on today's definition); other columns as metrics.json has them."""
        logged = number(job.metrics, f"test/{name}")
        if name not in PAIRED_ESTIMATORS or not has_predictions(job):
            return logged
        return self.point(self.id_of(job))[name]

    def compute_resampled(self, run: int) -> dict[str, torch.Tensor]:
        from headlab.calibration.estimators import resampled_scores

        saved = self.saved_rows(run)
        if saved is not None:
            return saved
        probs, targets = self.tensors(run)
        n = len(targets)
        if n not in self._index:
            self._index[n] = resample_index_of(n, self.settings)
        return resampled_scores(probs, targets, self._index[n], estimators=self.settings.estimators)

    def saved_rows(self, run: int) -> dict[str, torch.Tensor] | None:
        """The run's own resampled estimators when drawn on the report's rows, else None."""
        return saved_bootstrap(self.jobs[run], self.settings)

    def compared_pair(self, run: int) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        """What the head comparison pairs: the estimators and their resampled values, the
        ECE-type ones bias-corrected (``sweeps.study.debiased.CORRECTION``): plug-in ECE's
        bias depends on the head's own calibration, so plug-in differences would be biased."""
        from headlab.calibration.estimators import top_label
        from headlab.sweeps.study.debiased import (
            bootstrap_corrected,
            debiased_ece,
            debiased_ece_adaptive,
            median_unbiased_shift,
        )

        if run not in self._compared:
            point, rows = dict(self.point(run)), dict(self.resampled(run))
            probs, targets = self.tensors(run)
            confidence, hit = top_label(probs, targets)
            if "smece" in rows:
                value, resampled = point["smece"], rows["smece"]
                shift = median_unbiased_shift(confidence, hit, "smece", value, self.settings.seed)
                if shift is None:  # a degenerate inversion: the run-level correction
                    point["smece"], rows["smece"] = bootstrap_corrected(value, resampled)
                else:
                    point["smece"], rows["smece"] = value - shift, resampled - shift
            for name, debiased in (("ece", debiased_ece), ("ece_adaptive", debiased_ece_adaptive)):
                if name in rows:
                    point[name] = float(debiased(confidence, hit)[0])
                    rows[name] = debiased(confidence, hit, self.counts(len(targets)))
            self._compared[run] = (point, rows)
        return self._compared[run]

    def counts(self, n: int) -> torch.Tensor:
        """The report's resample rows for a test set of ``n`` as count weights (B, n)."""
        from headlab.calibration.bootstrap import counts_of

        if n not in self._index:
            self._index[n] = resample_index_of(n, self.settings)
        if n not in self._counts:
            self._counts[n] = counts_of(self._index[n], n)
        return self._counts[n]

    def compared(self, run: int) -> dict[str, float]:
        return self.compared_pair(run)[0]

    def compared_resampled(self, run: int) -> dict[str, torch.Tensor]:
        return self.compared_pair(run)[1]


def resample_index_of(n: int, settings: ComparisonSettings) -> torch.Tensor:
    """The report's resample rows for a test set of ``n``: the rows every run drew too."""
    from headlab.calibration.bootstrap import resample_index

    return resample_index(n, settings.n_resamples, settings.seed)


def saved_bootstrap(job: Job, settings: ComparisonSettings) -> dict[str, torch.Tensor] | None:
    """The run's own resampled estimators (``test_bootstrap.npz``, written after testing), when
    drawn with the same seed and count as the report's: the same rows, so still paired."""
    from headlab.calibration.posthoc import BOOTSTRAP_FILE

    file = job.path / BOOTSTRAP_FILE
    if not file.is_file():
        return None
    with np.load(file) as saved:
        if int(saved["seed"]) != settings.seed or int(saved["n_resamples"]) != settings.n_resamples:
            return None
        if not all(name in saved for name in settings.estimators):
            return None
        return {name: torch.from_numpy(saved[name]) for name in settings.estimators}


def has_predictions(job: Job) -> bool:
    return job.predictions is not None and job.predictions[1].ndim == 1


def setting_section(study: Study) -> list[str]:
    done = study.completed

    def values(attr: Callable[[Job], Any]) -> str:
        return ", ".join(sorted({str(attr(j)) for j in done}, key=lambda v: (len(v), v)))

    commits = values(lambda j: j.metrics.get("git_commit", "not recorded"))
    shared = study.shared_overrides()
    return [
        "## Setting",
        "",
        f"- model: {values(lambda j: j.model)}; data: {values(lambda j: j.data)}; "
        f"epochs: {values(lambda j: j.max_epochs)}; seeds: {values(lambda j: j.seed)}",
        *classes_line(done),
        f"- heads: {', '.join(dict.fromkeys(j.head for j in done))}",
        f"- code: git commit {commits}",
        f"- overrides shared by every run: {' '.join(f'`{o}`' for o in shared) or 'none'}",
        f"- runs: {len(done)} of {len(study.jobs) + len(study.never_ran)} completed "
        f"(sweep folder `{study.folder.name}`)",
        f"- test metrics on each head's own probabilities (top label; raw sigmoids for sigmoid "
        f"heads); differences to {BASELINE}: see section 3 and docs/statistics.md",
        "",
    ]


def classes_line(done: list[Job]) -> list[str]:
    """``- classes (3): cat, dog, bird`` for data with named classes (own images)."""
    named = {tuple(names) for j in done if (names := j.class_names)}
    return [f"- classes ({len(names)}): {', '.join(names)}" for names in sorted(named)]


def prob_mass_section(groups: dict[str, list[Job]], out: Path, n_classes: int) -> list[str]:
    from headlab.sweeps.study.figures import prob_sum_figure

    sums = {
        head: [job.predictions[0].sum(axis=1) for job in jobs if has_predictions(job)]
        for head, jobs in groups.items()
    }
    sums = {h: s for h, s in sums.items() if s}
    lines = ["## 1. Probability mass: what do a head's probabilities add up to?", ""]
    if not sums:
        return [*lines, "No run saved test predictions.", ""]
    save(prob_sum_figure({h: np.concatenate(s) for h, s in sums.items()}), out / "prob_sum.png")
    rows = [
        (
            head,
            str(len(s)),
            mean_std([float(v.mean()) for v in s]),
            mean_std([float(v.std()) for v in s]),
            mean_std([float(np.mean(np.abs(v - 1) < 0.1)) for v in s], 3),
        )
        for head, s in sums.items()
    ]
    return [
        *lines,
        f"Σp over the {n_classes} classes of every test sample; mean ± std over seeds of each "
        "run's mean, "
        "of each run's spread, and of the share of samples with |Σp - 1| < 0.1.",
        "",
        *table(["head", "runs", "mean Σp", "std of Σp in a run", "share near 1"], rows),
        "",
        "![sum of probabilities per head](prob_sum.png)",
        "",
    ]


def gradient_section(groups: dict[str, list[Job]], out: Path) -> list[str]:
    from headlab.sweeps.study.figures import grad_share_figure

    curves = {h: [j.grad_share for j in jobs if j.grad_share] for h, jobs in groups.items()}
    curves = {h: c for h, c in curves.items() if c}
    lines = ["## 2. Gradient flow: which rows of the last layer does a sample move?", ""]
    if not curves:
        return [*lines, "No run logged `grad_rows/other_share` (TensorBoard logger off?).", ""]
    save(grad_share_figure(curves), out / "grad_rows.png")
    rows = [
        (
            head,
            str(len(c)),
            mean_std([run[0][1] for run in c], 3),
            mean_std([run[-1][1] for run in c], 3),
        )
        for head, c in curves.items()
    ]
    return [
        *lines,
        "`grad_rows/other_share` on a fixed probe batch: the other classes' rows' share of the "
        "per-sample last-layer gradient (0: only the true row moves; exactly 0.5 for every "
        "softmax loss of p_true alone, such as CE, focal and poly: their other rows together "
        "move exactly as much as the true one; lines of such heads lie on top of each other).",
        "",
        *table(["head", "runs", "share at the first step", "share at the last step"], rows),
        "",
        "![grad_rows share per head](grad_rows.png)",
        "",
    ]


def methods_of(jobs: Sequence[Job]) -> list[str]:
    """Post-hoc methods with a metric in some run (``test/ece_<method>``)."""
    return [m for m in METHODS if any(f"test/ece_{m}" in j.metrics for j in jobs)]


def calibration_section(groups: dict[str, list[Job]], scores: Scores, out: Path) -> list[str]:
    from headlab.calibration.estimators import ESTIMATORS
    from headlab.sweeps.study.figures import pooled_bins, pooled_reliability_figure

    with_preds = {h: [j for j in js if has_predictions(j)] for h, js in groups.items()}
    with_preds = {h: js for h, js in with_preds.items() if js}
    lines = ["## 3. Calibration: which head is better calibrated, and is the difference real?", ""]
    if not with_preds:
        return [*lines, "No run saved single-label test predictions.", ""]
    shown = (*ESTIMATORS, *EXTRA_COLUMNS)
    lines += [
        "Test set, mean ± std over seeds (estimators recomputed from the saved predictions; "
        "`mce`, `aurc`, `augrc` as the runs logged them; `ece_norm`: sigmoid heads' top-label "
        "ECE of p/Σp, beside `ece` of the raw sigmoids):",
        "",
    ]
    lines += table(
        ["head", "runs", *shown],
        (
            [head, str(len(js))]
            + [mean_std([v for j in js if (v := scores.value(j, m)) is not None]) for m in shown]
            for head, js in with_preds.items()
        ),
    )
    lines += [
        "",
        "Per run, as the run wrote them: the 95 % interval (`test/<m>_ci_low/high`; "
        "percentile bootstrap for acc; for ECE-type estimators every population value the "
        "estimate is consistent with, by inverting a calibration test along the run's own "
        "recalibration curve, docs/statistics.md), the median-unbiased estimate "
        '(`test/<m>_debiased`) and the p-value of "this run is calibrated" '
        "by consistency resampling (`test/<m>_p_calibrated`; small: miscalibrated). "
        "Runs from before these keys show —.",
        "",
    ]
    per_run = ("acc", "ece", "ece_adaptive", "smece")
    lines += table(
        [
            "head",
            "seed",
            *(f"{m} [95 %]" for m in per_run),
            "ece_debiased",
            "smece_debiased",
            "p_calibrated (ece / adaptive)",
        ],
        (
            [head, str(j.seed)]
            + [
                f"[{fmt(number(j.metrics, f'test/{m}_ci_low'))}, "
                f"{fmt(number(j.metrics, f'test/{m}_ci_high'))}]"
                for m in per_run
            ]
            + [fmt(number(j.metrics, f"test/{m}_debiased")) for m in ("ece", "smece")]
            + [
                f"{fmt(number(j.metrics, 'test/ece_p_calibrated'), 3)} / "
                f"{fmt(number(j.metrics, 'test/ece_adaptive_p_calibrated'), 3)}"
            ]
            for head, js in with_preds.items()
            for j in js
        ),
    )
    lines += ["", *posthoc_tables(with_preds, ESTIMATORS)]
    lines += differences(with_preds, scores, scores.settings)
    pooled = {
        head: pooled_bins([j.predictions[0] for j in js], [j.predictions[1] for j in js])
        for head, js in with_preds.items()
    }
    save(
        pooled_reliability_figure(pooled, {h: len(js) for h, js in with_preds.items()}),
        out / "reliability.png",
    )
    lines += [
        "Reliability diagrams: every seed's test predictions pooled per head, 15 equal-width "
        "bins, accuracy with its 95 % Wilson interval, bin counts above. The ECE in each title "
        "is of the pool; the tables above average the runs' own ECEs, which differ from it.",
        "",
        "![reliability diagrams, all seeds pooled](reliability.png)",
        "",
    ]
    return lines


def why_no_calibrator(jobs: Sequence[Job]) -> list[str]:
    """The reasons the runs recorded for fitting no calibrator (``calibration/<method>_error``
    in metrics.json, e.g. a test split that is the validation split), each once."""
    reasons = {
        str(value)
        for job in jobs
        for key, value in job.metrics.items()
        if key.startswith("calibration/") and key.endswith("_error") and value
    }
    return sorted(reasons)


def posthoc_tables(groups: dict[str, list[Job]], estimators: Sequence[str]) -> list[str]:
    jobs = [j for js in groups.values() for j in js]
    methods = methods_of(jobs)
    if not methods:
        reasons = why_no_calibrator(jobs)
        if reasons:
            return [f"No calibrator was fitted: {'; '.join(reasons)}.", ""]
        return ["No post-hoc calibration results in metrics.json.", ""]
    lines = [
        "Before and after post-hoc calibration (fitted on validation, scored on test; "
        "mean ± std over seeds; a fit that failed or degenerated (temperature outside "
        "[0.01, 100]: every probability ~uniform or ~0/1) is marked and left out of the mean, "
        "not tabled as a result; reasons in metrics.json):",
        "",
    ]
    for m in estimators:
        if not any(f"test/{m}_{method}" in j.metrics for j in jobs for method in methods):
            continue
        rows = []
        for head, js in groups.items():
            cells = [mean_std([v for j in js if (v := number(j.metrics, f"test/{m}")) is not None])]
            for method in methods:
                usable = [j for j in js if degenerate(j.metrics, method) is None]
                values = [number(j.metrics, f"test/{m}_{method}") for j in usable]
                cell = mean_std([v for v in values if v is not None])
                failed = len(js) - len(usable) + sum(v is None for v in values)
                if failed == len(js):
                    reasons = {degenerate(j.metrics, method) or "no value" for j in js}
                    cell = "failed (" + "; ".join(sorted(reasons))[:60] + ")"
                elif failed:
                    cell += f" ({failed} failed or degenerate, left out)"
                cells.append(cell)
            rows.append([head, *cells])
        lines += [f"**{m}**", "", *table(["head", "none", *methods], rows), ""]
    return lines


def head_pairs(groups: dict[str, list[Job]], scores: Scores) -> dict[str, list[tuple[int, int]]]:
    """Per head other than the baseline: (its run, the baseline's run) of each shared seed."""
    base = {str(j.seed): j for j in groups.get(BASELINE, [])}
    return {
        head: [
            (scores.id_of(j), scores.id_of(base[str(j.seed)]))
            for j in js
            if str(j.seed) in base
            and len(j.predictions[1]) == len(base[str(j.seed)].predictions[1])
        ]
        for head, js in groups.items()
        if head != BASELINE
    }


def differences(groups: dict[str, list[Job]], scores: Scores, settings) -> list[str]:
    from headlab.sweeps.study.conclusions import comparison_section

    pairs = head_pairs(groups, scores)
    return comparison_section(
        BASELINE, groups, pairs.__getitem__, scores.compared, scores.compared_resampled, settings
    )


def other_data_section(study: Study) -> list[str]:
    lines = ["## 4. Multi-label and soft labels", ""]
    found = False
    for data, columns, title in (
        ("multilabel_mnist", REPORT_MULTILABEL_COLUMNS, "Multi-label MNIST"),
        ("soft_mnist", SOFT_COLUMNS, "Soft-label MNIST"),
    ):
        groups = study.completed_on(data)
        if not groups:
            continue
        found = True
        rows = [
            [head, str(len(js))]
            + [
                mean_std([v for j in js if (v := number(j.metrics, c)) is not None])
                for c in columns
            ]
            for head, js in groups.items()
        ]
        lines += [
            f"{title}, mean ± std over seeds:",
            "",
            *table(["head", "runs", *columns], rows),
            "",
        ]
    if not found:
        lines += [
            "Not in this sweep. `python scripts/train.py experiment=compare_multilabel` (and "
            "soft_mnist runs), then `python scripts/compare.py <this sweep> <that sweep>`.",
            "",
        ]
    return lines


def problems_section(study: Study) -> list[str]:
    problems = [
        f"- `{j.path.name}`: head={j.head} seed={j.seed}: {j.status}"
        + (f" ({j.metrics['error']})" if j.metrics.get("error") else "")
        for j in study.jobs
        if not j.completed
    ]
    problems += [
        "- " + " ".join(f"{k}={v}" for k, v in e.items()) + ": no job folder"
        for e in study.never_ran
    ]
    return ["## Missing or failed runs", "", *(problems or ["none"]), ""]


def save(figure, path: Path) -> None:
    figure.savefig(path, format="png", metadata={"Software": None})


def build_report(study: Study, out: Path, settings: ComparisonSettings | None = None) -> str:
    """The Markdown text; figures go into ``out``."""
    main_data = "mnist" if study.completed_on("mnist") else study.completed[0].data
    groups = study.completed_on(main_data)
    scores = Scores(settings)
    done = study.completed
    epochs = ", ".join(sorted({str(j.max_epochs) for j in done}))
    models = ", ".join(sorted({str(j.model) for j in done}))
    lines = [f"# Head comparison: {study.folder.name}", "", *setting_section(study)]
    # the test set's size and class count, from the first run that saved its predictions
    size, classes = next(
        (j.predictions[0].shape for js in groups.values() for j in js if has_predictions(j)),
        (10_000, 10),
    )
    configs = {h: [head_config(j.path) for j in js] for h, js in groups.items()}
    lines += heads_table(configs, classes) + caveats(epochs, models, main_data, size, classes)
    lines += prob_mass_section(groups, out, classes)
    lines += gradient_section(groups, out)
    lines += calibration_section(groups, scores, out)
    lines += other_data_section(study)
    from headlab.sweeps.study.off_distribution import off_distribution_section
    from headlab.sweeps.study.paired import paired_difference

    level = scores.settings.level
    lines += off_distribution_section(  # section 5
        groups, out, paired_difference, level, settings=scores.settings
    )
    lines += problems_section(study)
    write_head_runs(groups, out / "tensorboard")  # one TensorBoard run per head, mean of seeds
    return "\n".join(lines)


def write_report(
    folder: str | Path, *more: str | Path, settings: ComparisonSettings | None = None
) -> Path:
    """Write ``<folder>/report/report.md`` and its PNGs; returns the Markdown path.

    Raises ``BadSweep`` (nothing written) when the folder is no sweep, an empty sweep, or
    none of its jobs completed. ``more`` adds jobs of other sweeps (e.g. compare_multilabel).
    """
    study = load_study(folder, *more)
    final = study.folder / REPORT_DIR
    staging = make_temp_dir(study.folder, ".report-")  # 0755, as the report it becomes
    try:
        text = build_report(study, staging, settings)
        (staging / "report.md").write_text(text)
        old = study.folder / ".report-old"
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final / "report.md"


def report_or_error(
    folder: str | Path, *more: str | Path, settings: ComparisonSettings | None = None
) -> tuple[int, str]:
    """(exit code, one line) for scripts and the Hydra callback."""
    try:
        path = write_report(folder, *more, settings=settings)
    except (BadSweep, ConfigValueError) as err:
        return 2, f"error: {err}"
    return 0, f"written: {path}"


__all__ = ["BadSweep", "report_or_error", "write_report"]
