"""The comparison report: paired differences, reproducibility, bad input, a real sweep."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from headlab.sweeps.study.jobs import BadSweep
from headlab.sweeps.study.legend import head_config, heads_table
from headlab.sweeps.study.report import write_report
from tests import launch
from tests.conftest import ROOT

N_TEST = 2000


def predictions(seed: int, confidence: float, accuracy: float) -> tuple[np.ndarray, np.ndarray]:
    """10-class predictions whose top label has ``confidence`` and is right ``accuracy`` of
    the time: confidence > accuracy is an overconfident head (ECE ≈ the gap)."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 10, N_TEST)
    predicted = np.where(rng.random(N_TEST) < accuracy, targets, (targets + 1) % 10)
    probs = np.full((N_TEST, 10), (1 - confidence) / 9)
    probs[np.arange(N_TEST), predicted] = confidence
    return probs.astype(np.float32), targets


def write_job(
    sweep: Path,
    num: int,
    head: str,
    seed: int,
    probs=None,
    targets=None,
    data="mnist",
    head_config: dict | None = None,
    **metrics,
):
    job = sweep / f"{num}_head={head},seed={seed}"
    (job / ".hydra").mkdir(parents=True)
    choices = {"head": head, "data": data, "model": "mlp"}
    (job / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}})
    )
    (job / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"seed": seed, "trainer": {"max_epochs": 2}, "head": head_config})
    )
    (job / "metrics.json").write_text(json.dumps({"status": "completed", **metrics}))
    if probs is not None:
        np.savez(job / "test_predictions.npz", probs=probs, targets=targets, logits=probs)
    return job


@pytest.fixture
def synthetic_sweep(tmp_path: Path) -> Path:
    """softmax overconfident (conf 0.99, acc 0.90), soft calibrated (0.90, 0.90), and a
    'twin' head whose runs are softmax's own predictions again (same head and seed)."""
    sweep = tmp_path / "sweep"
    num = 0
    for seed in (1, 2, 3):
        soft_max = predictions(seed, 0.99, 0.90)
        for head, (probs, targets) in {
            "softmax": soft_max,
            "soft": (predictions(seed, 0.90, 0.90)[0], soft_max[1]),
            "twin": soft_max,
        }.items():
            write_job(sweep, num, head, seed, probs, targets, git_commit="abc123")
            num += 1
    # soft's predictions must be on the same samples: same targets, its own hits
    (sweep / "multirun.yaml").write_text(
        yaml.safe_dump(
            {"hydra": {"sweeper": {"params": {"head": "softmax,soft,twin,gone", "seed": "1,2,3"}}}}
        )
    )
    return sweep


def test_heads_table_describes_each_head_as_its_jobs_configured_it(tmp_path: Path):
    """The legend comes from the head classes and the jobs' own head configs: a sweep run
    with ``head.gamma=3`` must not read "gamma = 2" (the legend once hard-coded it)."""
    focal = {"_target_": "headlab.heads.FocalLoss", "gamma": 3.0, "gamma_schedule": None}
    jobs = [
        write_job(tmp_path, 0, "focal", 1, head_config=focal),
        write_job(tmp_path, 1, "focal", 2, head_config={**focal, "gamma": 0.5}),
        write_job(tmp_path, 2, "focal", 3, head_config=focal),
        write_job(
            tmp_path,
            3,
            "asl",
            1,
            head_config={"_target_": "headlab.heads.AsymmetricLoss", "clip": 0.1},
        ),
    ]
    configs = {"focal": [head_config(j) for j in jobs[:3]], "asl": [head_config(jobs[3])]}
    cap = np.e / (np.e + 2)  # sigmoid_softmax's largest probability with 3 classes
    rows = heads_table({**configs, "sigmoid_softmax": [None], "mine": [None]}, num_classes=3)
    assert rows[4:8] == [
        "| `focal` | softmax | focal loss, gamma = 3; focal loss, gamma = 0.5 |",
        "| `asl` | one sigmoid per class | asymmetric loss, gamma+ = 0, gamma- = 4, clip 0.1 |",
        "| `sigmoid_softmax` | softmax of the sigmoids of the logits | cross-entropy: no class "
        f"can get more than e / (e + 2) = {cap:.3f}, so the loss never reaches 0 and its ECE is "
        "large by construction |",
        "| `mine` | ? | not described |",
    ]


def difference_row(report: str, head: str) -> list[str]:
    start = report.index("Difference to `softmax`")
    for line in report[start:].splitlines():
        if line.startswith(f"| {head} |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"no difference row for {head}")


def interval(cell: str) -> tuple[float, float]:
    low, high = cell.split("[")[1].split("]")[0].split(",")
    return float(low), float(high)


@pytest.mark.slow
def test_paired_interval_contains_zero_for_the_same_head_and_seed(synthetic_sweep):
    report = write_report(synthetic_sweep).read_text()
    _, seeds, *cells = difference_row(report, "twin")
    assert seeds == "3"
    for cell in cells:  # every estimator: the same predictions, a difference of exactly 0
        low, high = interval(cell)
        assert low <= 0 <= high and "equivalent" in cell and "different" not in cell


@pytest.mark.slow
def test_paired_interval_excludes_zero_for_softmax_vs_soft_ece(synthetic_sweep):
    report = write_report(synthetic_sweep).read_text()
    header = report[report.index("Difference to `softmax`") :].splitlines()
    columns = next(line for line in header if line.startswith("| head |"))
    names = [c.strip() for c in columns.strip("|").split("|")]
    cells = dict(zip(names, difference_row(report, "soft"), strict=True))
    low, high = interval(cells["ece"])
    # softmax is 0.09 overconfident, soft calibrated: soft - softmax ≈ -0.09
    assert high < 0 and low > -0.15
    assert cells["ece"].endswith("**different**")


@pytest.mark.slow
def test_report_states_setting_lists_missing_runs_and_is_reproducible(synthetic_sweep):
    path = write_report(synthetic_sweep)
    report = path.read_text()
    assert "epochs: 2; seeds: 1, 2, 3" in report and "git commit abc123" in report
    for section in ("## 1.", "## 2.", "## 3.", "## 4.", "## Missing or failed runs"):
        assert section in report
    for seed in (1, 2, 3):
        assert f"head=gone seed={seed}: no job folder" in report
    first = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    assert {"report.md", "prob_sum.png", "reliability.png"} <= set(first)
    write_report(synthetic_sweep)
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == first
    assert sorted(p.name for p in synthetic_sweep.iterdir() if p.name.startswith(".")) == []


@pytest.mark.slow
def test_multilabel_jobs_of_a_second_sweep_get_their_table(synthetic_sweep, tmp_path):
    other = tmp_path / "multilabel"
    for num, (seed, value) in enumerate([(1, 0.95), (2, 0.97)]):
        metrics = {"test/map": value, "test/f1_micro_tuned": value - 0.05}
        write_job(other, num, "asl", seed, data="multilabel_mnist", **metrics)
    report = write_report(synthetic_sweep, other).read_text()
    section = report[report.index("## 4.") : report.index("## Missing")]
    assert "Multi-label MNIST" in section and "Soft-label" not in section
    row = next(line for line in section.splitlines() if line.startswith("| asl |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = next(line for line in section.splitlines() if line.startswith("| head |"))
    values = dict(zip([c.strip() for c in header.strip("|").split("|")], cells, strict=True))
    assert values["runs"] == "2"
    assert values["test/map"] == "0.9600 ± 0.0141"  # mean, sample std of 0.95 and 0.97
    assert values["test/f1_micro_tuned"] == "0.9100 ± 0.0141"


def run_compare(*folders: Path) -> subprocess.CompletedProcess:
    return launch.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), *map(str, folders)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=120,
    )


def failed_sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "failed"
    for num, head in enumerate(("softmax", "sigmoid")):
        job = write_job(sweep, num, head, 1)
        (job / "metrics.json").write_text(json.dumps({"status": "failed", "error": "boom"}))
    return sweep


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: tmp / "nowhere", "no such folder"),
        (lambda tmp: tmp, "no sweep"),
        (
            lambda tmp: (tmp / "multirun.yaml").write_text("hydra: {}\n") and tmp,
            "an empty sweep",
        ),
        (failed_sweep, "none of its 2 jobs completed (failed)"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path: Path, make, says: str):
    folder = make(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_compare(folder)
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert says in result.stderr and result.stderr.startswith("error: ")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    with pytest.raises(BadSweep):
        write_report(folder)


def job_folder(sweep: Path, head: str, seed: int) -> Path:
    """The job folder that ran ``head`` with ``seed`` (whatever its number's padding)."""
    (folder,) = sweep.glob(f"*_head={head},seed={seed}")
    return folder


@pytest.mark.slow
def test_compare_heads_sweep_ends_with_its_report(compare_sweep: Path):
    sweep = compare_sweep / "sweep"
    report = (sweep / "report" / "report.md").read_text()  # written by the callback
    assert "heads: softmax, soft" in report and "seeds: 1, 2" in report
    assert "| soft | 2 |" in report  # every section has both seeds
    for figure in ("prob_sum.png", "grad_rows.png", "reliability.png"):
        assert (sweep / "report" / figure).read_bytes()[:4] == b"\x89PNG"
    grad_rows = report[report.index("## 2.") : report.index("## 3.")]
    assert "| softmax | 2 | 0.500 ± 0.000 | 0.500 ± 0.000 |" in grad_rows
    assert "| `soft` | softmax | cross-entropy against labels smoothed by 0.1 " in report


@pytest.mark.slow
def test_report_lists_broken_runs_of_a_real_sweep(compare_sweep: Path, tmp_path: Path):
    sweep = tmp_path / "copy"
    shutil.copytree(compare_sweep / "sweep", sweep)
    crashed = job_folder(sweep, "soft", 2)  # "crashed": no metrics
    (crashed / "metrics.json").unlink()
    shutil.rmtree(job_folder(sweep, "softmax", 1))  # its folder vanished
    started = time.monotonic()
    result = run_compare(sweep)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60  # README: ~15 s for 24 full-size runs
    report = (sweep / "report" / "report.md").read_text()
    assert "runs: 2 of 4 completed" in report
    assert f"`{crashed.name}`: head=soft seed=2: no metrics.json" in report
    assert "head=softmax seed=1: no job folder" in report


def test_report_says_why_no_calibrator_was_fitted(tmp_path: Path):
    """A run whose test split is its validation split fits no calibrator and records why in
    metrics.json; the report prints that reason once where the calibrator rows would be."""
    import torch

    from headlab.calibration.posthoc import Analysis, Settings
    from headlab.heads import SoftmaxCE
    from headlab.sweeps.study.jobs import Job
    from headlab.sweeps.study.report import posthoc_tables

    analysis = Analysis(SoftmaxCE(), Settings(methods=("temperature", "vector")), tmp_path)
    analysis.held_out = False  # as posthoc sets it when test_set is val_set
    assert analysis.fitted((torch.zeros(4, 10), torch.arange(4))) == {}
    recorded = analysis.failures()  # what the run writes into metrics.json
    jobs = [
        Job(tmp_path / str(s), "softmax", "images", "mlp", s, 1, {"test/ece": 0.1, **recorded})
        for s in (1, 2)
    ]
    assert posthoc_tables({"softmax": jobs}, ("ece",)) == [
        "No calibrator was fitted: the test split is the validation split: fitted and scored "
        "on one sample.",
        "",
    ]
    plain = [Job(tmp_path / "3", "softmax", "images", "mlp", 3, 1, {"test/ece": 0.1})]
    assert posthoc_tables({"softmax": plain}, ("ece",))[0] == (
        "No post-hoc calibration results in metrics.json."
    )
