"""Hydra multiruns: one folder per job, a summary.csv row per job, Optuna and joblib."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from headlab.files import atomic_write_text, make_temp_dir, plain_number
from headlab.layout import (
    SWEPT_KEYS_ENV,
    in_multirun,
    job_dir,
    job_number,
    read_metrics,
    split_override,
    sweep_dir_of_job,
    sweep_values,
    swept_keys,
    write_metrics,
)
from headlab.layout.folders import recorded_swept_keys
from headlab.sweeps.study.jobs import expected_jobs
from headlab.sweeps.summary import job_dirs, summary_rows, write_summary
from tests import launch
from tests.conftest import CONFIGS
from tests.test_train import run_cli

# no post-test analyses (off-distribution, calibration): not what these tests ask
TINY = (
    "data.val_size=100",
    "data.batch_size=50",
    "callbacks.rich_progress_bar=null",
    "shift=none",
    "calibration=none",
)


def sweep_dir(cwd: Path) -> Path:
    (found,) = (cwd / "logs" / "train" / "multiruns").iterdir()
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_2x2_multirun_writes_4_job_dirs_and_a_summary_of_every_job_failed_or_not(
    tiny_mnist, tmp_path
):
    result = run_cli(
        "-m",
        f"data.data_dir={tiny_mnist}",
        *TINY,
        "trainer.max_epochs=1",
        "logger=none",
        "head=softmax,sigmoid",
        "data.val_size=0,100",  # jobs with 0 fail in setup: a val split of 0 images
        cwd=tmp_path,
    )
    assert result.returncode == 1  # the sweep exits 1 after all jobs ran
    sweep = sweep_dir(tmp_path)
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: job_number(p.name))
    assert [job_number(p.name) for p in jobs] == [0, 1, 2, 3]
    rows = read_csv(sweep / "summary.csv")
    assert sorted((r["head"], r["data.val_size"], r["status"]) for r in rows) == [
        ("sigmoid", "0", "failed"),  # the failed job's own metrics.json says so
        ("sigmoid", "100", "completed"),
        ("softmax", "0", "failed"),
        ("softmax", "100", "completed"),
    ]
    for row, job in zip(rows, jobs, strict=True):
        metrics = json.loads((job / "metrics.json").read_text())
        assert row["job"] == job.name and row["status"] == metrics["status"]
        # named by what the sweep varies only, keys sorted: 001_data.val_size=0,head=sigmoid
        swept = f"data.val_size={row['data.val_size']},head={row['head']}"
        assert job.name.split("_", 1)[1] == swept
        if row["status"] == "completed":
            assert float(row["test/acc"]) == metrics["test/acc"] > 0.5
        else:
            assert row["test/acc"] == ""
        assert f"head={row['head']}" in row["overrides"]
        assert "data.data_dir" not in row  # the same for every job: only in `overrides`


def test_job_folders_are_named_by_the_swept_keys_only(monkeypatch):
    keys = swept_keys(
        ["head=softmax,sigmoid", "trainer.max_epochs=1", "+x=range(1,3)", "data.data_dir=/d"],
        {"seed": "1,2,3", "model.optimizer.lr": "1e-3"},
    )
    assert keys == ["head", "x", "seed"]  # a single value is no sweep, wherever it is given
    monkeypatch.setenv(SWEPT_KEYS_ENV, ",".join(keys))
    task = ["seed=1", "head=sigmoid", "data.data_dir=/d", "+x=2", "model.backbone.hidden=[64,32]"]
    dirname = "+x=2,data.data_dir=/d,head=sigmoid,model.backbone.hidden=[64,32],seed=1"
    assert job_dir(4, dirname, task) == "004_+x=2,head=sigmoid,seed=1"  # Hydra's order: sorted
    monkeypatch.setenv(SWEPT_KEYS_ENV, "model.backbone.hidden")  # a list value stays whole
    assert job_dir(4, dirname, task) == "004_model.backbone.hidden=[64,32]"
    monkeypatch.setenv(SWEPT_KEYS_ENV, "")  # a multirun of one job sweeps nothing
    assert job_dir(4, dirname, task) == "004"


def test_job_folder_names_are_safe_zero_padded_and_sort_by_job_number(tmp_path, monkeypatch):
    monkeypatch.delenv(SWEPT_KEYS_ENV, raising=False)  # outside a sweep: every override
    assert job_dir(3, "head=sigmoid,seed=1") == "003_head=sigmoid,seed=1"
    assert job_dir("12", "head=sigmoid", ["head=sigmoid"]) == "012_head=sigmoid"
    assert job_dir(1234, "") == "1234"  # more jobs than digits: still the whole number
    assert job_dir(0, "") == "000"
    assert job_dir(1, "optimized_metric=val/ece") == "001_optimized_metric=val_ece"  # no nesting
    assert len(job_dir(7, "x" * 1000)) < 255
    assert [job_number(n) for n in ("003_head=soft", "3_head=soft", "010", "sweep")] == [
        3,
        3,
        10,
        None,
    ]
    # a listing by name is the job order, so a head's seeds stay together (0..11 of 4 x 3)
    names = [job_dir(n, f"head={'abcd'[n // 3]},seed={n % 3}") for n in range(12)]
    assert sorted(names) == names
    for name in (*names, "2_head=old", "notes"):  # folders from before the padding still read
        (tmp_path / name / ".hydra").mkdir(parents=True)
    found = [p.name for p in job_dirs(tmp_path)]
    assert found == [*names[:3], "2_head=old", *names[3:], "notes"]


@pytest.mark.parametrize(
    ("override", "key", "value", "values"),
    [
        ("seed=range(1,4)", "seed", "range(1,4)", ["1", "2", "3"]),
        ("head=softmax,sigmoid", "head", "softmax,sigmoid", ["softmax", "sigmoid"]),
        ("seed=choice(3,1)", "seed", "choice(3,1)", ["3", "1"]),
        ("model.backbone.hidden=[64,32]", "model.backbone.hidden", "[64,32]", ["[64,32]"]),
        ("++trainer.max_epochs=2", "trainer.max_epochs", "2", ["2"]),
        ("~trainer.plugins", "trainer.plugins", "", [""]),
        ("head@loss=focal", "head@loss", "focal", ["focal"]),
        ("model.optimizer.lr=interval(0.1,1)", "model.optimizer.lr", "interval(0.1,1)", None),
        ("ckpt_path=/a=b.ckpt", "ckpt_path", "/a=b.ckpt", None),  # Hydra rejects it itself
        ("hydra.run.dir=${unique_dir:a}", "hydra.run.dir", "${unique_dir:a}", ["${unique_dir:a}"]),
    ],
)
def test_overrides_read_as_hydra_reads_them(override, key, value, values):
    assert split_override(override) == (key, value)
    assert sweep_values(override) == values


def sweep_record(folder: Path, task: list[str], params: dict | None = None) -> Path:
    """A sweep folder with Hydra's ``multirun.yaml`` as a run of ``-m *task`` leaves it."""
    hydra = {"overrides": {"task": task}, "sweeper": {"params": params}}
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), folder / "multirun.yaml")
    return folder


def test_a_range_sweep_lists_its_seeds_not_pieces_of_its_text(tmp_path):
    sweep = sweep_record(tmp_path, ["head=softmax,sigmoid", "seed=range(1,4)", "x=[1,2]"])
    assert expected_jobs(sweep) == [
        {"head": h, "seed": s} for h in ("softmax", "sigmoid") for s in ("1", "2", "3")
    ]
    sweep = sweep_record(tmp_path, ["trainer.max_epochs=1"], {"seed": "choice(1, 2)"})
    assert expected_jobs(sweep) == [{"seed": "1"}, {"seed": "2"}]


def test_the_job_name_and_the_trial_name_agree_on_the_swept_keys(tmp_path):
    """Both from one rule: a sweeper param with one value is no sweep for either."""
    task = ["head=softmax,sigmoid", "data.data_dir=/d"]
    params = {"seed": "1,2", "model.optimizer.lr": "1e-3"}
    sweep = sweep_record(tmp_path / "sweep", task, params)
    hydra = OmegaConf.create(
        {
            "mode": "MULTIRUN",
            "sweeper": {"params": params},
            "sweep": {"subdir": "003_head=sigmoid,seed=2"},
            "runtime": {"output_dir": str(sweep / "003_head=sigmoid,seed=2")},
        }
    )
    assert sweep_dir_of_job(hydra) == sweep
    assert recorded_swept_keys(hydra) == swept_keys(task, params) == ["head", "seed"]
    assert not in_multirun()  # outside a Hydra app
    assert in_multirun(OmegaConf.create({"mode": RunMode.MULTIRUN}))
    assert not in_multirun(OmegaConf.create({"mode": RunMode.RUN}))


def test_metrics_json_round_trips_and_plain_number_needs_no_torch(tmp_path):
    import numpy as np
    import torch

    written = write_metrics(tmp_path, {"b": torch.tensor(0.5), "a": np.float32(2.0), "c": "x"})
    assert written == tmp_path / "metrics.json"
    assert read_metrics(tmp_path) == {"a": 2.0, "b": 0.5, "c": "x"}
    assert list(json.loads(written.read_text())) == ["a", "b", "c"]  # keys sorted
    assert plain_number(float("nan")) == "nan" and plain_number(3) == 3


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_a_write_interrupted_by_a_stop_raises_the_stop_not_the_writers_clean_up_error(
    tmp_path, stop
):
    """torch.save's zip writer, interrupted by Ctrl-C mid-record, raised RuntimeError
    ("unexpected pos") from its clean-up: the job was reported failed, not interrupted."""
    from headlab.files import atomic_write

    class ZipWriter:  # fails on exit when what it wrote was cut short
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            raise RuntimeError("unexpected pos 1627904 vs 1627856")

    def save(handle):
        with ZipWriter():
            handle.write("half")
            raise stop()

    with pytest.raises(stop):
        atomic_write(tmp_path / "last.ckpt", save)
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temporary left
    with pytest.raises(RuntimeError, match="disk"):  # an error of its own stays what it is
        atomic_write(tmp_path / "x", lambda handle: (_ for _ in ()).throw(RuntimeError("disk")))


def test_files_and_folders_others_can_read(tmp_path):
    """0644 / 0755 under the usual umask (mkstemp and mkdtemp alone give 0600 / 0700)."""
    import os
    import stat

    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        write_metrics(tmp_path / "run", {"status": "completed"})
        folder = make_temp_dir(tmp_path, ".staging-")
        os.umask(0o027)  # a stricter umask is honoured, not overridden
        atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(previous)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(tmp_path / "a.txt") == mode(tmp_path / "run" / "metrics.json") == 0o644
    assert mode(folder) == 0o755
    assert mode(tmp_path / "b.txt") == 0o640


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


@pytest.mark.parametrize("experiment", ["compare_heads", "compare_heads_equivalence"])
def test_a_study_runs_two_jobs_at_a_time_and_takes_any_other_launcher(experiment: str):
    """The studies' two-at-a-time setting lived in the experiment as a joblib key, so the
    one-at-a-time launcher their comment suggests failed to compose ("Key 'n_jobs' not in
    'BasicLauncherConf'"), and so did slurm."""
    launcher = compose_with_hydra(f"experiment={experiment}").hydra.launcher
    assert launcher._target_.endswith("JoblibLauncher") and launcher.n_jobs == 2
    for other, target in (("basic", "BasicLauncher"), ("slurm", "SlurmLauncher")):
        chosen = compose_with_hydra(f"experiment={experiment}", f"hydra/launcher={other}")
        assert chosen.hydra.launcher._target_.endswith(target)
        assert chosen.hydra.mode == RunMode.MULTIRUN


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
        "head=sigmoid",  # one job: each starts a new interpreter (~10 s of CPU)
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    sweep = sweep_dir(tmp_path)
    rows = read_csv(sweep / "summary.csv")
    assert [r["status"] for r in rows] == ["completed"]
    ran = OmegaConf.load(sweep / rows[0]["job"] / ".hydra" / "config.yaml")
    assert ran.head._target_.endswith("SigmoidBCE")
    # the job ran in a process submitit started, with its logs where slurm.yaml puts them
    assert len(sorted((sweep / ".submitit").rglob("*_log.out"))) == 1


def test_under_joblib_the_first_ctrl_c_is_left_to_the_workers_and_the_second_stops(tmp_path):
    import signal

    from headlab.sweeps.interrupt import WorkersFinishOnCtrlC, interrupted_by

    before = signal.getsignal(signal.SIGINT)
    here = [f"hydra.sweep.dir={tmp_path}"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        basic = compose("train.yaml", here, return_hydra_config=True)
        study = compose("train.yaml", ["experiment=compare_heads", *here], return_hydra_config=True)
    assert "Joblib" in study.hydra.launcher._target_ and study.hydra.launcher.n_jobs == 2
    assert study.model.optimizer.fused is True and "fused" not in basic.model.optimizer

    callback = WorkersFinishOnCtrlC()
    callback.on_multirun_start(basic)  # jobs in this process: Ctrl-C stops them as usual
    assert signal.getsignal(signal.SIGINT) is before

    callback.on_multirun_start(study)
    try:
        signal.raise_signal(signal.SIGINT)  # first: only logged, the workers stop themselves
        assert interrupted_by(tmp_path) == "SIGINT"  # jobs that begin later see it
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # second: at once
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        with pytest.raises(SystemExit) as stop:  # after the summary and report: exit 130
            callback.on_multirun_end(study)
        signal.signal(signal.SIGINT, before)
    assert stop.value.code == 130


def test_after_a_ctrl_c_a_sweeper_cannot_launch_another_batch(tmp_path):
    """Optuna launches batch after batch: after a Ctrl-C the next launch ends the sweep
    (its trials asked and not run are given up, run again on resume) instead of running
    every later trial as an instantly interrupted, uncounted job, forever."""
    import signal

    from joblib import Parallel, delayed

    from headlab.sweeps.interrupt import WorkersFinishOnCtrlC

    before = signal.getsignal(signal.SIGINT)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        study = compose(
            "train.yaml",
            ["experiment=compare_heads", f"hydra.sweep.dir={tmp_path}"],
            return_hydra_config=True,
        )
    callback = WorkersFinishOnCtrlC()
    callback.on_multirun_start(study)
    try:
        with Parallel(n_jobs=2, backend="loky") as parallel:  # workers start ignoring Ctrl-C
            handlers = set(parallel(delayed(signal.getsignal)(signal.SIGINT) for _ in range(4)))
        assert handlers == {signal.SIG_IGN}
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(SystemExit) as stop:
            Parallel(n_jobs=2, backend="loky")
        assert stop.value.code == 130
        assert signal.getsignal(signal.SIGINT) is before  # put back, as at the sweep's end
    finally:
        callback.restore()
        signal.signal(signal.SIGINT, before)


def fake_job(sweep: Path, num: int, launcher: str = "basic") -> DictConfig:
    """The config a job of a sweep in ``sweep`` gets (the parts the sweep callbacks read)."""
    subdir = job_dir(num, f"seed={num}")
    target = {"basic": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
    target["joblib"] = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    hydra = {
        "mode": RunMode.MULTIRUN,
        "launcher": {"_target_": target[launcher]},
        "sweep": {"dir": str(sweep), "subdir": subdir},
        "runtime": {"output_dir": str(sweep / subdir)},
    }
    return OmegaConf.create({"hydra": hydra})


def test_an_interrupted_job_in_this_process_stops_the_sweep_with_its_signal(tmp_path):
    from headlab.sweeps.interrupt import WorkersFinishOnCtrlC, interrupted_by

    callback = WorkersFinishOnCtrlC()
    first, second = fake_job(tmp_path, 0), fake_job(tmp_path, 1)
    callback.on_multirun_start(first)
    write_metrics(tmp_path / job_dir(0, "seed=0"), {"status": "completed"})
    callback.on_job_end(first)  # a job that ended well: the sweep goes on
    assert interrupted_by(tmp_path) is None
    write_metrics(tmp_path / job_dir(1, "seed=1"), {"status": "interrupted", "signal": "SIGTERM"})
    with pytest.raises(SystemExit) as stop:
        callback.on_job_end(second)
    assert (stop.value.code, interrupted_by(tmp_path)) == (143, "SIGTERM")


def test_a_job_that_begins_after_the_ctrl_c_is_recorded_not_trained(tmp_path):
    from headlab.sweeps.interrupt import mark_interrupted, skip_if_interrupted

    job = fake_job(tmp_path, 2, "joblib")
    assert skip_if_interrupted(job.hydra) is False
    assert not (tmp_path / job_dir(2, "seed=2")).exists()
    mark_interrupted(tmp_path, "SIGINT")
    mark_interrupted(tmp_path, "SIGTERM")  # the first signal is the one remembered
    assert skip_if_interrupted(job.hydra) is True
    assert read_metrics(tmp_path / job_dir(2, "seed=2")) == {
        "status": "interrupted",
        "signal": "SIGINT",
        "last_ckpt_path": "",
    }


def start_sweep(tiny_mnist: Path, cwd: Path, *overrides: str):
    """A sweep in its own process group, as a terminal's foreground job (Ctrl-C reaches every
    process of it); what it prints goes to ``cwd/output.txt``."""
    import subprocess

    from tests.test_faults import cli_args, cli_env

    with (cwd / "output.txt").open("w") as output:
        return launch.Popen(
            cli_args(tiny_mnist, "-m", "shift=none", *overrides),
            cwd=cwd,
            env=cli_env(cwd),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def ended_with_ctrl_c(process, cwd: Path) -> str:
    """What the interrupted sweep printed, once it exited 130 saying so in one line."""
    assert process.wait(timeout=300) == 130
    output = (cwd / "output.txt").read_text()
    assert "Traceback" not in output, output
    said = "Sweep interrupted by SIGINT: summary.csv says where each job stopped"
    assert len([line for line in output.splitlines() if said in line]) == 1, output
    return output


def wait_until(process, ready) -> None:
    import time

    while not ready():
        assert process.poll() is None
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_with_idle_joblib_workers_exits_130_and_every_job_has_its_row(tiny_mnist, tmp_path):
    """Four joblib workers for three jobs: one idle from the start, one idle once its
    one-epoch job is done, two training. Ctrl-C reaches the whole process group: each training
    job stops as a single run does and the sweep says so in one line, exit 130. An idle worker
    killed by the Ctrl-C broke the pool (BrokenProcessPool, exit 1, the running job left
    `missing`)."""
    import json
    import os
    import signal

    process = start_sweep(
        tiny_mnist,
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        "trainer.max_epochs=1,1000,999",
    )
    multiruns = tmp_path / "logs" / "train" / "multiruns"

    def one_done_two_training() -> bool:
        """Job 0 returned (its summary row is written after that), jobs 1 and 2 train."""
        summaries = list(multiruns.glob("*/summary.csv"))
        done = summaries and read_csv(summaries[0])[0]["status"] == "completed"
        training = [multiruns.glob(f"*/00{job}_*/checkpoints/last.ckpt") for job in (1, 2)]
        return bool(done) and all(any(found) for found in training)

    wait_until(process, one_done_two_training)
    os.killpg(process.pid, signal.SIGINT)
    output = ended_with_ctrl_c(process, tmp_path)
    assert "Joblib.Parallel(n_jobs=4" in output  # the jobs ran in joblib's worker processes
    assert "BrokenProcessPool" not in output and "TerminatedWorkerError" not in output
    rows = read_csv(sweep_dir(tmp_path) / "summary.csv")
    assert [(r["trainer.max_epochs"], r["status"]) for r in rows] == [
        ("1", "completed"),
        ("1000", "interrupted"),
        ("999", "interrupted"),
    ]
    jobs = sorted(sweep_dir(tmp_path).glob("*/metrics.json"))
    statuses = [json.loads(p.read_text())["status"] for p in jobs]
    assert statuses == ["completed", "interrupted", "interrupted"]


@pytest.mark.slow
def test_ctrl_c_of_a_sweep_in_one_process_keeps_the_interrupted_jobs_row(tiny_mnist, tmp_path):
    """The basic launcher: the interrupted job's row used to be missing from summary.csv."""
    import os
    import signal

    process = start_sweep(tiny_mnist, tmp_path, "trainer.max_epochs=1000", "seed=1,2")
    multiruns = tmp_path / "logs" / "train" / "multiruns"
    wait_until(process, lambda: any(multiruns.glob("*/*/checkpoints/last.ckpt")))
    os.killpg(process.pid, signal.SIGINT)
    ended_with_ctrl_c(process, tmp_path)
    rows = read_csv(sweep_dir(tmp_path) / "summary.csv")
    assert [(r["job"], r["status"]) for r in rows] == [("000_seed=1", "interrupted")]
    assert [p.name for p in job_dirs(sweep_dir(tmp_path))] == ["000_seed=1"]  # 2 never began
