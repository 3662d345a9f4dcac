"""The report section "Off the training distribution" on runs made up in a temporary folder
(no training): its rows, its paired difference to softmax, and its figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headlab.shift import SHIFT_FILE
from headlab.shift.metrics import ood_point
from headlab.sweeps.study.jobs import Job
from headlab.sweeps.study.off_distribution import off_distribution_section
from headlab.sweeps.study.paired import paired_difference


def fake_run(folder: Path, head: str, seed: int, shift: float) -> Job:
    rng = np.random.default_rng([seed, len(head)])  # other draws per head, same seed
    score_in = rng.normal(1.0 + shift, 1.0, 300)
    score_out = rng.normal(0.0, 1.0, 300)
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
        "shift/corruption/mean/ece": 0.2,
        "shift/digits/sklearn/acc": 0.7,
        **{f"ood/letters/msp/{k}": v for k, v in point.items()},
    }
    if head == "sigmoid":
        metrics.update({"test/none_of_the_above": 0.01, "ood/letters/none_of_the_above": 0.3})
    return Job(folder, head, "mnist", "mlp", seed, 2, metrics)


def test_section_compares_each_head_with_softmax_paired_by_seed(tmp_path: Path):
    groups = {
        "softmax": [fake_run(tmp_path / f"softmax{s}", "softmax", s, 0.0) for s in (1, 2, 3)],
        "sigmoid": [fake_run(tmp_path / f"sigmoid{s}", "sigmoid", s, 1.0) for s in (1, 2, 3)],
    }
    text = "\n".join(off_distribution_section(groups, tmp_path, paired_difference))
    assert (tmp_path / "off_distribution_rotation.png").stat().st_size > 1000
    # the rows hold each head's seed mean of ECE at 60 deg and its temperature-scaling change
    assert "| softmax | 3 | 0.010 ± 0.000 | 0.300 ± 0.000 | 0.500 ± 0.000 | 0.050 ± 0.000" in text
    assert "| sigmoid | 3 | 0.010 ± 0.000 | 0.300 ± 0.000 | 0.400 ± 0.000 | 0.050 ± 0.000" in text
    # sigmoid's in-scores sit one std higher: its AUROC is higher by about 0.2, paired
    points = {
        h: [js[i].metrics["ood/letters/msp/auroc"] for i in range(3)] for h, js in groups.items()
    }
    gain = np.mean(np.subtract(points["sigmoid"], points["softmax"]))
    (row,) = [line for line in text.splitlines() if line.startswith("| sigmoid |") and "[" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[4].split()[0]) == pytest.approx(gain, abs=5e-4)
    low, high = (float(v) for v in cells[4].split("[")[1].rstrip("]").split(","))
    assert 0 < low < gain < high
    assert "None of the above" in text and "| sigmoid | 0.010 ± 0.000 | 0.300 ± 0.000 |" in text


def test_section_says_so_when_no_run_measured_shift(tmp_path: Path):
    job = Job(tmp_path, "softmax", "mnist", "mlp", 1, 2, {"status": "completed"})
    text = "\n".join(off_distribution_section({"softmax": [job]}, tmp_path, paired_difference))
    assert "No run measured shifted or OOD sets" in text
