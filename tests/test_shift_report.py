"""The report section "Off the training distribution" on runs made up in a temporary folder
(no training): its rows, its paired verdicts against softmax, its figures and caveats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from headlab.shift import SHIFT_FILE
from headlab.shift.metrics import ood_point
from headlab.sweeps.study.jobs import Job
from headlab.sweeps.study.off_distribution import CAPPED_NOTE, off_distribution_section
from headlab.sweeps.study.paired import paired_difference

SEEDS = (1, 2, 3, 4, 5)


def shifted(wrong: np.ndarray, confidence: float = 0.99) -> dict[str, np.ndarray]:
    """A shifted set's kept predictions: sample i's target is i % 10; the samples in
    ``wrong`` get the next class as top label, every top label ``confidence``."""
    n = len(wrong)
    targets = np.arange(n) % 10
    top = np.where(wrong, (targets + 1) % 10, targets)
    probs = np.full((n, 10), (1 - confidence) / 9, dtype=np.float32)
    probs[np.arange(n), top] = confidence
    return {"probs": probs, "targets": targets}


def fake_run(
    folder: Path, head: str, seed: int, shift: float, sets: dict | None = None, **extra
) -> Job:
    """A run's metrics.json and off_distribution.npz; ``sets``: kept predictions per shifted
    set (``rotation/60``: ``shifted(...)``)."""
    rng = np.random.default_rng([seed, len(head)])  # other draws per head, same seed
    score_in = rng.normal(1.0 + shift, 1.0, 120)
    score_out = rng.normal(0.0, 1.0, 120)
    folder.mkdir(parents=True)
    kept = {
        f"shift/{name}/{k}": v for name, arrays in (sets or {}).items() for k, v in arrays.items()
    }
    np.savez(
        folder / SHIFT_FILE, **{"ood/test/msp": score_in, "ood/letters/msp": score_out, **kept}
    )
    point = ood_point(score_in, score_out)
    metrics = {
        "status": "completed",
        "test/ece": 0.01,
        "shift/rotation/0/acc": 0.98,
        "shift/rotation/0/ece": 0.01,
        "shift/rotation/60/acc": 0.3,
        "shift/rotation/60/ece": 0.5 - shift / 10,
        "shift/rotation/60/ece_temperature": 0.55 - shift / 10,
        "shift/corruption/fog/acc": 0.8,
        "shift/corruption/fog/ece": 0.1 + shift * (0.05 + seed / 100),
        "shift/corruption/mean/ece": 0.2,
        "shift/corruption/mean/acc": 0.8,
        "shift/digits/sklearn/acc": 0.7,
        **{f"ood/letters/msp/{k}": v for k, v in point.items()},
        "ood/letters/mahalanobis/auroc": 0.95,
        **extra,
    }
    if head in ("sigmoid", "sigmoid_softmax"):
        metrics.update({"test/none_of_the_above": 0.01, "ood/letters/none_of_the_above": 0.3})
    return Job(folder, head, "mnist", "mlp", seed, 2, metrics)


def section(groups, tmp_path, figures: bool = False) -> str:
    return "\n".join(off_distribution_section(groups, tmp_path, paired_difference, 0.95, figures))


def cells_of(text: str, start: str, after: str = "") -> list[str]:
    """The cells of the first table row starting with ``start`` below the line ``after``."""
    lines = text.splitlines()
    lines = lines[lines.index(after) :] if after else lines
    row = next(line for line in lines if line.startswith(start))
    return [c.strip() for c in row.strip("|").split("|")]


def test_section_compares_each_head_with_softmax_paired_by_seed(tmp_path: Path):
    groups = {
        "softmax": [fake_run(tmp_path / f"softmax{s}", "softmax", s, 0.0) for s in SEEDS],
        "sigmoid": [fake_run(tmp_path / f"sigmoid{s}", "sigmoid", s, 1.0) for s in SEEDS],
    }
    text = section(groups, tmp_path, figures=True)
    for figure in ("rotation", "corruptions", "ood_near"):
        assert (tmp_path / f"off_distribution_{figure}.png").stat().st_size > 1000, figure
    assert "## 5. Off the training distribution" in text
    # the rows hold each head's seed mean of ECE at 60 deg and its temperature-scaling change
    assert "| softmax | 5 | 0.010 ± 0.000 | 0.300 ± 0.000 | 0.500 ± 0.000 | 0.050 ± 0.000" in text
    assert "| sigmoid | 5 | 0.010 ± 0.000 | 0.300 ± 0.000 | 0.400 ± 0.000 | 0.050 ± 0.000" in text
    # sigmoid's in-scores sit one std higher: its AUROC is higher by about 0.2, paired
    points = {
        h: [js[i].metrics["ood/letters/msp/auroc"] for i in range(5)] for h, js in groups.items()
    }
    gain = np.mean(np.subtract(points["sigmoid"], points["softmax"]))
    cells = cells_of(text, "| sigmoid |", "**letters** (near OOD)")
    assert float(cells[5].split()[0]) == pytest.approx(gain, abs=5e-4)
    low, high = (float(v) for v in cells[5].split("[")[1].split("]")[0].split(","))
    assert 0 < low < gain < high and cells[5].endswith("different")
    # the baseline row says it is the baseline, not "n/a (< 3 shared seeds)" (the old bug)
    base = cells_of(text, "| softmax |", "**letters** (near OOD)")
    assert base[5:] == ["baseline", "baseline"]
    assert "### 5.5 None of the above" in text and "| sigmoid | 0.010 ± 0.000 | 0.300" in text


N_SHIFTED = 2000


def shift_differences(groups, estimator: str = "acc", shift: str = "rotation 60°"):
    """The section's shift cells as the report computes them: (Difference, verdict word)."""
    from headlab.sweeps.study.off_distribution import Cells, shift_cells, shift_keys
    from headlab.sweeps.study.verdicts import ComparisonSettings

    cells = Cells()
    jobs = [j for js in groups.values() for j in js]
    shift_cells(groups, cells, shift_keys(jobs), ComparisonSettings())
    head = next(h for h in groups if h != "softmax")
    cell = f"{shift}: {estimator}"
    return cells.differences.get((head, cell)), cells.word(head, cell)


def runs_on_rotation(tmp_path: Path, wrong_of) -> dict[str, list[Job]]:
    """softmax always right on rotation 60°; the other head wrong where ``wrong_of(seed)``."""
    right = shifted(np.zeros(N_SHIFTED, bool))
    return {
        "softmax": [
            fake_run(tmp_path / f"softmax{s}", "softmax", s, 0.0, {"rotation/60": right})
            for s in SEEDS
        ],
        "focal": [
            fake_run(tmp_path / f"focal{s}", "focal", s, 0.0, {"rotation/60": shifted(wrong_of(s))})
            for s in SEEDS
        ],
    }


def test_shift_interval_carries_the_sample_noise_every_seed_shares(tmp_path: Path):
    """Known answer: the head misses the same 6 of 2,000 shifted images with every seed. The
    seeds agree exactly (sd 0), so a t-interval over seeds alone is [-0.003, -0.003] and calls
    it different (the old rule). But all seeds saw the same images: the number of those 6 in a
    resample of 2,000 is Binomial(2000, 0.003), and that noise moves every seed alike."""
    wrong = np.zeros(N_SHIFTED, bool)
    wrong[[3, 50, 700, 1200, 1500, 1999]] = True
    d, word = shift_differences(runs_on_rotation(tmp_path, lambda seed: wrong))
    p = 6 / N_SHIFTED
    assert d.point == pytest.approx(-p) and d.sd == 0
    # t-interval: se^2 = 0 / S + the shared sample variance p (1 - p) / n (B = 1000 rows)
    half = stats.t.ppf(0.975, len(SEEDS) - 1) * np.sqrt(p * (1 - p) / N_SHIFTED)
    (t,) = [i for i in d.intervals if i.method == "t"]
    assert (t.low + t.high) / 2 == pytest.approx(-p)
    assert (t.high - t.low) / 2 == pytest.approx(half, rel=0.1)  # B = 1000: ~5% noise
    # two-level bootstrap: the percentiles of -Binomial(n, p) / n (one shared row per draw)
    (boot,) = [i for i in d.intervals if i.method == "two_level"]
    k_low, k_high = stats.binom.ppf([0.025, 0.975], N_SHIFTED, p)
    assert -k_high - 1.5 < boot.low * N_SHIFTED < -k_high + 1.5  # B = 1000 rows: ±1
    assert -k_low - 1.5 < boot.high * N_SHIFTED < -k_low + 1.5
    assert d.low < 0 < d.high and word == "inconclusive"


def test_obviously_different_shift_cell_is_different_and_identical_runs_are_not(tmp_path):
    def random_wrong(seed: int) -> np.ndarray:  # ~20% wrong, other images per seed
        return np.random.default_rng(seed).random(N_SHIFTED) < 0.2

    for estimator in ("acc", "ece"):
        d, word = shift_differences(runs_on_rotation(tmp_path / estimator, random_wrong), estimator)
        assert word == "different", (estimator, d)
        # accuracy about 0.2 lower, ECE (confidence 0.99 throughout) about 0.2 higher
        assert d.point == pytest.approx(-0.2 if estimator == "acc" else 0.2, abs=0.02)
    same = shifted(random_wrong(0))
    groups = {
        head: [
            fake_run(tmp_path / f"{head}{s}", head, s, 0.0, {"rotation/60": same}) for s in SEEDS
        ]
        for head in ("softmax", "focal")
    }
    for estimator in ("acc", "ece"):
        d, word = shift_differences(groups, estimator)
        assert d.point == 0 and (d.low, d.high) == (0, 0)
        assert word == "equivalent"


def test_corruption_mean_is_the_mean_of_each_corruptions_paired_values(tmp_path: Path):
    """The mean corruption cell pairs the mean over the corruptions of each run's values,
    each corruption on its own kept samples; a pair whose samples differ is not compared."""
    right = shifted(np.zeros(N_SHIFTED, bool))

    def sets(wrong_fog: int, wrong_shear: int) -> dict:
        return {
            "corruption/fog": shifted(np.arange(N_SHIFTED) < wrong_fog),
            "corruption/shear": shifted(np.arange(N_SHIFTED) < wrong_shear),
        }

    corrupt = {f"shift/corruption/{c}/{e}": 0.5 for c in ("fog", "shear") for e in ("acc", "ece")}
    groups = {
        "softmax": [
            fake_run(tmp_path / f"softmax{s}", "softmax", s, 0.0, sets(0, 0), **corrupt)
            for s in SEEDS
        ],
        "focal": [
            fake_run(tmp_path / f"focal{s}", "focal", s, 0.0, sets(100 + s, 300), **corrupt)
            for s in SEEDS
        ],
    }
    d, _ = shift_differences(groups, "acc", "corruptions (mean)")
    expected = [-(100 + s + 300) / 2 / N_SHIFTED for s in SEEDS]
    assert d.per_seed == pytest.approx(expected)
    # one pair on other samples (a run with shift.samples changed): not compared
    job = groups["focal"][0]
    np.savez(
        job.path / SHIFT_FILE,
        **{
            f"shift/corruption/{c}/{k}": v[:100] for c in ("fog", "shear") for k, v in right.items()
        },
    )
    d, _ = shift_differences(groups, "acc", "corruptions (mean)")
    assert len(d.per_seed) == len(SEEDS) - 1


def test_shift_intervals_stay_inside_minus_one_to_one(tmp_path: Path):
    # per-seed accuracy differences of -1 / +1 (head and softmax swap being all wrong): the
    # t-interval leaves [-1, 1]
    def run(head: str, seed: int) -> Job:
        wrong = np.full(N_SHIFTED, (seed % 2 == 1) == (head == "focal"))
        return fake_run(
            tmp_path / f"{head}{seed}", head, seed, 0.0, {"rotation/60": shifted(wrong)}
        )

    groups = {head: [run(head, s) for s in SEEDS] for head in ("softmax", "focal")}
    d, word = shift_differences(groups)
    assert d.low < -1 and d.high > 1 and word == "inconclusive"  # the raw interval leaves ...
    text = section(groups, tmp_path)
    (cell,) = cells_of(text, "| rotation 60° |", "**acc**")[1:]
    low, high = (float(v) for v in cell.split("[")[1].split("]")[0].split(","))
    assert (low, high) == (-1.0, 1.0)  # ... the reported one does not
    assert cell.endswith("inconclusive")


def test_sigmoid_softmax_is_flagged_wherever_its_numbers_appear(tmp_path: Path):
    groups = {
        "softmax": [fake_run(tmp_path / f"softmax{s}", "softmax", s, 0.0) for s in SEEDS],
        "sigmoid_softmax": [
            fake_run(tmp_path / f"ss{s}", "sigmoid_softmax", s, 2.0) for s in SEEDS
        ],
    }
    text = section(groups, tmp_path)
    assert "| sigmoid_softmax |" not in text  # every row names it with its mark
    assert text.count("| sigmoid_softmax† |") >= 4  # 5.1, 5.3, 5.4, 5.5 rows
    assert CAPPED_NOTE in text
    # its none-of-the-above row
    assert cells_of(text, "| sigmoid_softmax† |", "### 5.5 None of the above")[1:] == [
        "0.010 ± 0.000",
        "0.300 ± 0.000",
    ]
    # and in the conclusions, which come from the verdicts
    assert "better than softmax: sigmoid_softmax†" in text


def test_scores_table_names_each_heads_best_natural_score_and_the_feature_control(tmp_path):
    natural = {"ood/letters/max_logit/auroc": 0.9, "ood/letters/energy/auroc": 0.93}
    sigmoid = {"ood/letters/sum_sigmoid/auroc": 0.99, "ood/letters/joint_energy/auroc": 0.97}
    groups = {
        "softmax": [
            fake_run(tmp_path / f"softmax{s}", "softmax", s, 0.0, **natural) for s in SEEDS
        ],
        "sigmoid": [
            fake_run(tmp_path / f"sigmoid{s}", "sigmoid", s, 0.0, **natural, **sigmoid)
            for s in SEEDS
        ],
    }
    text = section(groups, tmp_path)
    header = cells_of(text, "| head | msp |")
    softmax = dict(
        zip(
            header,
            cells_of(text, "| softmax |", "### 5.4 Head or score? Natural scores and two controls"),
            strict=True,
        )
    )
    sigmoid_row = cells_of(
        text, "| sigmoid |", "### 5.4 Head or score? Natural scores and two controls"
    )
    sigmoid_cells = dict(zip(header, sigmoid_row, strict=True))
    assert softmax["energy"] == "0.930 ± 0.000" and softmax["sum_sigmoid"] == "—"
    assert softmax["best natural score"] in ("energy", "msp")
    assert sigmoid_cells["best natural score"] == "sum_sigmoid"
    assert sigmoid_cells["energy"] == "—"  # not a sigmoid head's natural score
    assert sigmoid_cells["mahalanobis"] == "0.950 ± 0.000"


def test_section_says_so_when_no_run_measured_shift(tmp_path: Path):
    job = Job(tmp_path, "softmax", "mnist", "mlp", 1, 2, {"status": "completed"})
    text = "\n".join(off_distribution_section({"softmax": [job]}, tmp_path, paired_difference))
    assert "No run measured shifted or OOD sets" in text


def test_ood_family_is_the_one_shift_sets_gives():
    from headlab.shift.sets import FAMILY
    from headlab.sweeps.study.off_distribution import family_of

    assert {name: family_of(name) for name in FAMILY} == FAMILY
    assert (family_of("letters"), family_of("gaussian")) == ("near", "far")
    assert family_of("no_such_set") == "other"


def test_a_knife_edge_cell_is_marked_as_in_distribution():
    """Section 5's cells take the in-distribution verdict code, knife edges included: an
    adjusted p of 0.04 (within a factor 1.5 of 0.05) is marked, one of 0.001 is not."""
    from headlab.sweeps.study.conclusions import KNIFE
    from headlab.sweeps.study.off_distribution import Cells
    from headlab.sweeps.study.paired import Difference, Interval

    def difference(p: float) -> Difference:
        return Difference(0.3, (0.3, 0.3, 0.3), (Interval("t", 0.1, 0.5, p, 1.0),))

    for p, marked in ((0.04, True), (0.001, False)):
        cells = Cells()
        cells.add("focal", "rotation 60°: ece", difference(p), 0.002)
        text = cells.text("focal", "rotation 60°: ece")
        assert text.startswith(KNIFE) == marked, text
        assert text.endswith("different")
