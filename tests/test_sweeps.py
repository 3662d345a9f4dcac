"""Hydra multiruns: one folder per job, a summary.csv row per job, Optuna and joblib."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from headlab.run.dirs import SWEPT_KEYS_ENV, job_dir, job_number, swept_keys
from headlab.sweeps.summary import job_dirs, summary_rows, write_summary
from tests.conftest import CONFIGS
from tests.test_train import run_cli

TINY = ("data.val_size=100", "data.batch_size=50", "callbacks.rich_progress_bar=null", "shift=none")


def sweep_dir(cwd: Path) -> Path:
    (found,) = (cwd / "logs" / "train" / "multiruns").iterdir()
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
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
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: job_number(p.name))
    assert [job_number(p.name) for p in jobs] == [0, 1, 2, 3]
    rows = read_csv(sweep / "summary.csv")
    assert len(rows) == 4
    assert {(r["head"], float(r["model.optimizer.lr"])) for r in rows} == {
        (h, lr) for h in ("softmax", "sigmoid") for lr in (1e-3, 3e-3)
    }
    for row, job in zip(rows, jobs, strict=True):
        metrics = json.loads((job / "metrics.json").read_text())
        assert row["job"] == job.name
        # named by what the sweep varies only: 2_head=sigmoid,model.optimizer.lr=0.001
        assert (
            job.name.split("_", 1)[1]
            == f"head={row['head']},model.optimizer.lr={row['model.optimizer.lr']}"
        )
        assert row["status"] == "completed"
        assert float(row["test/acc"]) == metrics["test/acc"]
        assert f"head={row['head']}" in row["overrides"]
        assert "data.data_dir" not in row  # the same for every job: only in `overrides`


def test_job_folders_are_named_by_the_swept_keys_only(monkeypatch):
    keys = swept_keys(
        ["head=softmax,sigmoid", "trainer.max_epochs=1", "+x=range(1,3)", "data.data_dir=/d"],
        {"seed": "1,2,3", "model.optimizer.lr": "1e-3"},
    )
    assert keys == ["head", "x", "seed"]  # a single value is no sweep, wherever it is given
    monkeypatch.setenv(SWEPT_KEYS_ENV, ",".join(keys))
    given = "+x=2,data.data_dir=/d,head=sigmoid,model.backbone.hidden=[64,32],seed=1"
    assert job_dir(4, given) == "4_+x=2,head=sigmoid,seed=1"
    monkeypatch.setenv(SWEPT_KEYS_ENV, "model.backbone.hidden")  # a list value stays whole
    assert job_dir(4, given) == "4_model.backbone.hidden=[64,32]"


def test_job_folder_names_are_safe_and_sort_by_job_number(tmp_path, monkeypatch):
    monkeypatch.delenv(SWEPT_KEYS_ENV, raising=False)  # outside a sweep: every override
    assert job_dir(3, "head=sigmoid,seed=1") == "3_head=sigmoid,seed=1"
    assert job_dir(0, "") == "0"
    assert job_dir(1, "optimized_metric=val/ece") == "1_optimized_metric=val_ece"  # no nesting
    assert len(job_dir(7, "x" * 1000)) < 255
    for name in ("10_head=soft", "2_head=sigmoid", "0", "1_head=softmax"):
        (tmp_path / name / ".hydra").mkdir(parents=True)
    assert [p.name for p in job_dirs(tmp_path)] == [
        "0",
        "1_head=softmax",
        "2_head=sigmoid",
        "10_head=soft",
    ]


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


@pytest.mark.slow
def test_optuna_sweep_of_3_trials_writes_optimization_results(tiny_mnist, tmp_path):
    result = run_cli(
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        f"data.data_dir={tiny_mnist}",
        *TINY,
        "trainer.max_epochs=1",
        "logger=none",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    sweep = sweep_dir(tmp_path)
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(results.best_params) == {
        "model.optimizer.lr",
        "model.optimizer.weight_decay",
        "model.backbone.hidden",
        "head",
    }
    rows = read_csv(sweep / "summary.csv")
    assert len(rows) == 3
    assert results.best_value == max(float(r["val/acc"]) for r in rows)  # what train.py returned
    for row in rows:  # the quoted width came back to the model as a list of ints
        job_cfg = OmegaConf.load(sweep / row["job"] / ".hydra" / "config.yaml")
        assert list(job_cfg.model.backbone.hidden) == json.loads(row["model.backbone.hidden"])
        assert job_cfg.head._target_.startswith("headlab.heads.")


def compose_with_hydra(*overrides: str) -> DictConfig:
    """The composed config including its ``hydra`` node (sweeper, launcher)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train.yaml", overrides=list(overrides), return_hydra_config=True)


def test_optuna_search_space_and_direction_are_configurable():
    cfg = compose_with_hydra("hparams_search=optuna")
    assert cfg.hydra.sweeper.direction == "maximize"
    assert cfg.optimized_metric == "val/acc"
    assert set(cfg.hydra.sweeper.params) == {
        "model.optimizer.lr",
        "model.optimizer.weight_decay",
        "model.backbone.hidden",
        "head",
    }
    cfg = compose_with_hydra(
        "hparams_search=optuna", "optimized_metric=val/ece", "hydra.sweeper.direction=minimize"
    )
    assert (cfg.optimized_metric, cfg.hydra.sweeper.direction) == ("val/ece", "minimize")


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes(tiny_mnist, tmp_path):
    result = run_cli(
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"data.data_dir={tiny_mnist}",
        *TINY,
        "trainer.max_epochs=1",
        "logger=none",
        "head=softmax,sigmoid",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Joblib.Parallel" in result.stderr + result.stdout
    rows = read_csv(sweep_dir(tmp_path) / "summary.csv")
    assert [(r["head"], r["status"]) for r in rows] == [
        ("softmax", "completed"),
        ("sigmoid", "completed"),
    ]


def test_slurm_launcher_config_composes():
    cfg = compose_with_hydra("hydra/launcher=slurm", "trainer.devices=2")
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.tasks_per_node == 2  # one task per device for Lightning's DDP


def slurm_settings_as_overrides() -> list[str]:
    """hydra/launcher=slurm's settings that submitit's local executor also has, unresolved."""
    slurm = OmegaConf.to_container(compose_with_hydra("hydra/launcher=slurm").hydra.launcher)
    local = compose_with_hydra("hydra/launcher=submitit_local").hydra.launcher
    shared = [key for key in slurm if key in local and key != "_target_"]
    return [f"hydra.launcher.{key}={json.dumps(slurm[key])}" for key in shared]


@pytest.mark.slow
def test_submitit_local_runs_a_sweep_with_the_slurm_settings(tiny_mnist, tmp_path):
    """The SLURM path without a cluster: the same launcher plugin, settings and job pickling,
    with submitit's local executor in place of sbatch."""
    settings = slurm_settings_as_overrides()
    assert 'hydra.launcher.tasks_per_node="${trainer.devices}"' in settings
    result = run_cli(
        "-m",
        "hydra/launcher=submitit_local",
        *settings,
        f"data.data_dir={tiny_mnist}",
        *TINY,
        "trainer.max_epochs=1",
        "logger=none",
        "head=softmax,sigmoid",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    sweep = sweep_dir(tmp_path)
    rows = read_csv(sweep / "summary.csv")
    assert [(r["head"], r["status"]) for r in rows] == [
        ("softmax", "completed"),
        ("sigmoid", "completed"),
    ]
    # each job ran in a process submitit started, with its logs where slurm.yaml puts them
    logs = sorted((sweep / ".submitit").rglob("*_log.out"))
    assert len(logs) == 2


@pytest.mark.slow
def test_a_failing_job_still_leaves_a_summary_of_every_job(tiny_mnist, tmp_path):
    result = run_cli(
        "-m",
        f"data.data_dir={tiny_mnist}",
        *TINY,
        "trainer.max_epochs=1",
        "logger=none",
        "data.val_size=0,100",  # job 0 fails in setup: a val split of 0 images
        cwd=tmp_path,
    )
    assert result.returncode != 0  # the sweep exits 1 after all jobs ran
    rows = read_csv(sweep_dir(tmp_path) / "summary.csv")
    assert [(job_number(r["job"]), r["status"], r["data.val_size"]) for r in rows] == [
        (0, "failed", "0"),  # the failed job's own metrics.json says so
        (1, "completed", "100"),
    ]
    assert rows[0]["test/acc"] == "" and float(rows[1]["test/acc"]) > 0.5


def test_under_joblib_the_first_ctrl_c_is_left_to_the_workers_and_the_second_stops():
    import signal

    from headlab.sweeps.interrupt import WorkersFinishOnCtrlC

    before = signal.getsignal(signal.SIGINT)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        basic = compose("train.yaml", [], return_hydra_config=True)
        study = compose("train.yaml", ["experiment=compare_heads"], return_hydra_config=True)
    assert "Joblib" in study.hydra.launcher._target_ and study.hydra.launcher.n_jobs == 2
    assert study.model.optimizer.fused is True and "fused" not in basic.model.optimizer

    callback = WorkersFinishOnCtrlC()
    callback.on_multirun_start(basic)  # jobs in this process: Ctrl-C stops them as usual
    assert signal.getsignal(signal.SIGINT) is before

    callback.on_multirun_start(study)
    try:
        signal.raise_signal(signal.SIGINT)  # first: only logged, the workers stop themselves
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # second: at once
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        callback.on_multirun_end(study)
        signal.signal(signal.SIGINT, before)
