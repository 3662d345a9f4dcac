"""Hydra multiruns: one folder per job, a summary.csv row per job, Optuna and joblib."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from omegaconf import OmegaConf

from headlab.sweep_summary import summary_rows, write_summary
from tests.test_train import run_cli

TINY = ("data.val_size=100", "data.batch_size=50", "callbacks.rich_progress_bar=null")


def sweep_dir(cwd: Path) -> Path:
    (found,) = (cwd / "logs" / "train" / "multiruns").iterdir()
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_2x2_multirun_writes_4_job_dirs_and_summary(tiny_mnist, tmp_path):
    result = run_cli(
        "-m",
        f"data.data_dir={tiny_mnist}",
        *TINY,
        "trainer.max_epochs=1",
        "logger=none",
        "head=softmax,sigmoid",
        "model.optimizer.lr=1e-3,3e-3",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    sweep = sweep_dir(tmp_path)
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    rows = read_csv(sweep / "summary.csv")
    assert len(rows) == 4
    assert {(r["head"], float(r["model.optimizer.lr"])) for r in rows} == {
        (h, lr) for h in ("softmax", "sigmoid") for lr in (1e-3, 3e-3)
    }
    for row, job in zip(rows, jobs, strict=True):
        metrics = json.loads((job / "metrics.json").read_text())
        assert row["job"] == job.name
        assert row["status"] == "completed"
        assert float(row["test/acc"]) == metrics["test/acc"]
        assert f"head={row['head']}" in row["overrides"]
        assert "data.data_dir" not in row  # the same for every job: only in `overrides`


def test_summary_keeps_a_row_for_a_job_without_metrics(tmp_path):
    for num, head in enumerate(["softmax", "sigmoid"]):
        (tmp_path / str(num) / ".hydra").mkdir(parents=True)
        OmegaConf.save(
            OmegaConf.create([f"head={head}"]), tmp_path / str(num) / ".hydra" / "overrides.yaml"
        )
    (tmp_path / "0" / "metrics.json").write_text(
        json.dumps({"status": "completed", "val/acc": 0.5})
    )
    (tmp_path / "1" / "metrics.json").write_text("{ half written")
    rows = read_csv(write_summary(tmp_path))
    assert [(r["job"], r["status"], r["head"], r["val/acc"]) for r in rows] == [
        ("0", "completed", "softmax", "0.5"),
        ("1", "missing", "sigmoid", ""),
    ]
    assert summary_rows(tmp_path / "0") == []  # a folder without jobs: no rows, no error
