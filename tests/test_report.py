"""The head comparison report over a real (tiny) multirun, with a broken job listed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from headlab.report import write_report
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def tiny_sweep(tiny_mnist: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep_root")
    env = {**os.environ, "HEADLAB_ROOT": str(root), "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train.py"),
            "-m",
            "head=softmax,sigmoid",
            "seed=1,2",
            f"data.data_dir={tiny_mnist}",
            "data.val_size=100",
            "trainer.max_epochs=1",
            "callbacks.rich_progress_bar=null",
            "hydra.sweep.dir=" + str(root / "sweep"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "sweep"


@pytest.mark.slow
def test_report_tabulates_each_head_over_seeds_and_lists_broken_runs(tiny_sweep: Path):
    sweep = tiny_sweep
    # job 3 (head=sigmoid seed=2) "crashed": no metrics; another job's folder vanished
    (sweep / "3" / "metrics.json").unlink()
    shutil.rmtree(sweep / "0")  # head=softmax seed=1
    report = write_report(sweep).read_text()
    assert "2 of 3 runs completed" in report
    rows = {
        line.split("|")[1].strip(): line
        for line in report.splitlines()
        if line.startswith("| soft") or line.startswith("| sigm")
    }
    assert rows["softmax"].split("|")[2].strip() == "1"
    assert rows["sigmoid"].split("|")[2].strip() == "1"
    assert "±" in rows["softmax"]
    assert "head=sigmoid seed=2, status no metrics.json" in report
    assert "head=softmax seed=1: no run folder" in report
    assert "renormalised" in report  # the sigmoid head's second view
    assert (sweep / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_script_explains_a_wrong_folder(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 2
    assert "holds no Hydra job folders" in result.stderr
