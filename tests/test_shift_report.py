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


def fake_run(folder: Path, head: str, seed: int, shift: float, **extra) -> Job:
    rng = np.random.default_rng([seed, len(head)])  # other draws per head, same seed
    score_in = rng.normal(1.0 + shift, 1.0, 120)
    score_out = rng.normal(0.0, 1.0, 120)
    folder.mkdir(parents=True)
    np.savez(folder / SHIFT_FILE, **{"ood/test/msp": score_in, "ood/letters/msp": score_out})
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


def test_shift_verdict_is_the_t_interval_over_seeds_with_the_verdict_rule(tmp_path: Path):
    groups = {
        "softmax": [fake_run(tmp_path / f"softmax{s}", "softmax", s, 0.0) for s in SEEDS],
        "sigmoid": [fake_run(tmp_path / f"sigmoid{s}", "sigmoid", s, 1.0) for s in SEEDS],
    }
    text = section(groups, tmp_path)
    # fog ECE: sigmoid - softmax = 0.05 + seed / 100 for seeds 1..5
    d = 0.05 + np.array(SEEDS) / 100
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    (cell,) = cells_of(text, "| corruption fog |", "**ece**")[1:]
    value, interval, word = (
        cell.split(" ", 1)[0],
        cell.split("[")[1].split("]")[0],
        cell.split()[-1],
    )
    assert float(value) == pytest.approx(d.mean(), abs=5e-4)
    assert [float(v) for v in interval.split(",")] == pytest.approx([low, high], abs=5e-4)
    # interval wholly above +0.002 and every seed the same sign: different (Holm over cells)
    assert word == "different"
    # rotation 60 ECE: -0.1 for every seed: no spread, a difference beyond the margin
    assert cells_of(text, "| rotation 60° |", "**ece**")[1].endswith("different")
    assert "- **rotation 60°: ece** — better than softmax: sigmoid." in text


def test_fpr95_intervals_stay_inside_minus_one_to_one(tmp_path: Path):
    wild = [-0.99, 0.95, -0.98, 0.97, -0.99]  # per-seed FPR95 differences of huge spread
    groups = {
        "softmax": [
            fake_run(tmp_path / f"softmax{s}", "softmax", s, 0.0, **{"shift/rotation/60/acc": 0.5})
            for s in SEEDS
        ],
        "focal": [
            fake_run(tmp_path / f"focal{s}", "focal", s, 0.0, **{"shift/rotation/60/acc": 0.5 + w})
            for s, w in zip(SEEDS, wild, strict=True)
        ],
    }
    text = section(groups, tmp_path)
    (cell,) = cells_of(text, "| rotation 60° |", "**acc**")[1:]
    low, high = (float(v) for v in cell.split("[")[1].split("]")[0].split(","))
    d = np.array(wild)
    t_low, t_high = stats.t.interval(0.95, 4, loc=d.mean(), scale=stats.sem(d))
    assert t_low < -1 and t_high > 1  # the raw t-interval leaves the range ...
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
