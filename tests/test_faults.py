"""Faults during a run, sweeps with a failing job, and reproducibility (issue 7).

The signal tests start a real training in a subprocess, wait until it has written its
first checkpoint, then signal it: they never depend on how fast the machine is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from headlab.callbacks import NonFiniteLoss, StopOnNonFiniteLoss
from headlab.checkpoints.io import AtomicCheckpointIO
from headlab.run.train import train
from tests import launch
from tests.conftest import ROOT

POISON = "tests.fault_injection.PoisonWeightsAt"
FULL = "tests.fault_injection.DiskFullOnSave"
#: 600 tiny training images - 100 for validation, in batches of 50 (cli_args)
STEPS_PER_EPOCH = 10


def cli_args(tiny_mnist: Path, *overrides: str) -> list[str]:
    flags = [arg for arg in overrides if arg.startswith("-")]  # Hydra's, before overrides
    return [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        *flags,
        f"data.data_dir={tiny_mnist}",
        "data.val_size=100",
        "data.batch_size=50",
        "logger=none",
        "shift=none",
        "calibration=none",  # the post-test analyses are not what these tests ask
        "callbacks.rich_progress_bar=null",
        "callbacks.rich_model_summary=null",
        "+trainer.enable_progress_bar=false",
        *(arg for arg in overrides if not arg.startswith("-")),
    ]


def cli_env(cwd: Path) -> dict[str, str]:
    # the worktree's sources, and tests/ for the fault-injecting callback
    return {**os.environ, "HEADLAB_ROOT": str(cwd), "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}


def run(tiny_mnist: Path, cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    return launch.run(
        cli_args(tiny_mnist, *overrides),
        cwd=cwd,
        env=cli_env(cwd),
        capture_output=True,
        text=True,
        timeout=300,
    )


def start(tiny_mnist: Path, cwd: Path, *overrides: str) -> launch.Forked | subprocess.Popen:
    return launch.Popen(
        cli_args(tiny_mnist, *overrides),
        cwd=cwd,
        env=cli_env(cwd),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(process: launch.Forked | subprocess.Popen, runs: Path) -> Path:
    """The run folder, once its first last.ckpt exists (the run is mid-training then)."""
    while not list(runs.glob("*/checkpoints/last.ckpt")):
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.02)
    (run_dir,) = runs.iterdir()
    return run_dir


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_nan_loss_stops_at_that_step_keeps_the_good_checkpoint_and_exits_1(tiny_mnist, tmp_path):
    # 10 steps per epoch: epoch 0 ends with a checkpoint at step 10, step 15 goes NaN
    result = run(
        tiny_mnist,
        tmp_path,
        "trainer.max_epochs=5",
        f"+callbacks.poison._target_={POISON}",
        "+callbacks.poison.step=15",
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr  # Hydra logs to stdout
    assert "Training loss became NaN/inf at step 15" in output
    assert "Traceback" not in output  # the message is the whole story
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["failed_step"] == 15
    assert "NonFiniteLoss" in metrics["error"]
    last = load(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 10  # the good one from before, not overwritten
    assert all(torch.isfinite(w).all() for w in last["state_dict"].values())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Encountered `nan` values")
def test_nan_loss_in_process_raises_naming_the_step(tiny_cfg, tmp_path):
    cfg = tiny_cfg(
        "logger=none", f"+callbacks.poison._target_={POISON}", "+callbacks.poison.step=3"
    )
    with pytest.raises(NonFiniteLoss, match=r"at step 3 .*no checkpoint yet"):
        train(cfg)
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("late_at", ["next_step", "epoch_end"])
def test_deferred_nan_check_as_on_a_gpu_still_names_the_bad_step(late_at):
    trainer = SimpleNamespace(global_step=0, current_epoch=2, checkpoint_callback=None)
    check = StopOnNonFiniteLoss(every_step=False)  # what an accelerator gets: no sync per step

    def step(loss: float, batch_idx: int) -> None:
        trainer.global_step += 1
        check.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, batch_idx)

    step(0.5, 0)
    step(float("nan"), 1)  # optimizer step 1 went bad; noticed one step later at most
    with pytest.raises(NonFiniteLoss, match=r"at step 1 \(epoch 2, batch 1\)"):
        if late_at == "next_step":
            step(0.4, 2)
        else:
            check.on_train_epoch_end(trainer, None)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigint_sigterm_stop_cleanly_with_last_ckpt_and_status(tiny_mnist, tmp_path, sig, code):
    process = start(tiny_mnist, tmp_path, "trainer.max_epochs=1000")
    run_dir = wait_for_checkpoint(process, tmp_path / "logs" / "train" / "runs")
    first = load(run_dir / "checkpoints" / "last.ckpt")["global_step"]
    time.sleep(0.5)  # usually mid-epoch; right after a checkpoint there is nothing newer
    process.send_signal(sig)
    assert process.wait(timeout=120) == code, process.stderr.read()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == {
        "status": "interrupted",
        "signal": sig.name,
        "last_ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"),
    }
    # not refreshed mid-epoch: the checkpoint of the last completed epoch stays (tiny epochs
    # are quick, so more may have ended before the signal)
    last = load(run_dir / "checkpoints" / "last.ckpt")["global_step"]
    assert last >= first and last % STEPS_PER_EPOCH == 0


@pytest.mark.slow
def test_a_run_interrupted_mid_epoch_resumes_bit_identical_to_an_uninterrupted_one(
    tiny_mnist, tmp_path
):
    runs = tmp_path / "logs" / "train" / "runs"
    process = start(tiny_mnist, tmp_path, "trainer.deterministic=true", "trainer.max_epochs=1000")
    run_dir = wait_for_checkpoint(process, runs)
    time.sleep(0.5)  # into the next epoch
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130, process.stderr.read()
    last = load(run_dir / "checkpoints" / "last.ckpt")
    epoch = last["epoch"]
    assert last["global_step"] == STEPS_PER_EPOCH * (epoch + 1)  # an epoch's end, not mid-epoch

    until = f"trainer.max_epochs={epoch + 2}"  # one more epoch than the checkpoint holds
    resumed = run(tiny_mnist, tmp_path, f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", until)
    assert resumed.returncode == 0, resumed.stderr
    straight = run(tiny_mnist, tmp_path, "trainer.deterministic=true", until)
    assert straight.returncode == 0, straight.stderr
    resumed_dir, straight_dir = sorted(set(runs.iterdir()) - {run_dir})
    ends = [load(d / "checkpoints" / "last.ckpt") for d in (resumed_dir, straight_dir)]
    assert ends[0]["global_step"] == ends[1]["global_step"] == STEPS_PER_EPOCH * (epoch + 2)
    assert ends[0]["state_dict"].keys() == ends[1]["state_dict"].keys()
    for key, weights in ends[1]["state_dict"].items():
        assert torch.equal(ends[0]["state_dict"][key], weights), key
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (resumed_dir, straight_dir)]
    assert metrics[0]["test/acc"] == metrics[1]["test/acc"]
    assert metrics[0]["test/loss"] == metrics[1]["test/loss"]


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_exit_1(tiny_mnist, tmp_path):
    result = run(tiny_mnist, tmp_path, "trainer.max_epochs=1", f"+callbacks.full._target_={FULL}")
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert (result.returncode, result.stderr.splitlines()) == (
        1,
        [
            f"No space left on device while writing into {run_dir}: free space there or point "
            "paths.log_dir at another disk, then resume from the run's checkpoints/last.ckpt if "
            "it has one (ckpt_path=...)."
        ],
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "No space left on device" in metrics["error"]


@pytest.mark.slow
def test_sigkill_leaves_a_loadable_last_ckpt_and_resuming_finishes(tiny_mnist, tmp_path):
    process = start(tiny_mnist, tmp_path, "trainer.max_epochs=1000")
    run_dir = wait_for_checkpoint(process, tmp_path / "logs" / "train" / "runs")
    time.sleep(0.3)  # mid-epoch, perhaps mid-write of the next checkpoint
    process.kill()
    process.wait(timeout=60)
    last = run_dir / "checkpoints" / "last.ckpt"
    epoch = load(last)["epoch"]  # loadable: written whole or not at all
    assert not (run_dir / "metrics.json").exists()  # no half-written or false "completed"

    resumed = run(tiny_mnist, tmp_path, f"ckpt_path={last}", f"trainer.max_epochs={epoch + 2}")
    assert resumed.returncode == 0, resumed.stderr
    (new_dir,) = set((tmp_path / "logs" / "train" / "runs").iterdir()) - {run_dir}
    metrics = json.loads((new_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == epoch + 2


def test_checkpoint_write_that_dies_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {}, "global_step": 1}, path)

    def dies_halfway(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {}, "global_step": 2}, path)
    monkeypatch.undo()
    assert load(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left


@pytest.mark.slow
def test_multirun_records_the_failed_job_and_runs_the_others(tiny_mnist, tmp_path):
    result = run(tiny_mnist, tmp_path, "-m", "model.optimizer.lr=-1,1e-3", "trainer.max_epochs=1")
    assert result.returncode == 1  # the sweep ends, then says that a job failed
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    assert not (tmp_path / "logs" / "train" / "runs").exists()  # no stray run folder
    first, second = sorted(sweep.glob("*/metrics.json"), key=lambda p: p.parent.name)
    assert first.parent.name.startswith("000_") and "lr=-1" in first.parent.name
    failed, done = json.loads(first.read_text()), json.loads(second.read_text())
    assert failed["status"] == "failed" and "model.optimizer.lr must be > 0" in failed["error"]
    assert done["status"] == "completed" and done["test/acc"] > 0.5
    assert f"Job {first.parent} did not complete" in result.stdout + result.stderr
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and "failed" in rows[1] and "completed" in rows[2]


@pytest.mark.slow
def test_two_runs_started_together_never_share_a_folder(tiny_mnist, tmp_path):
    # the same folder name forced on both: the second must get its own
    same = "hydra.run.dir='${unique_dir:${paths.log_dir}/same}'"
    processes = [start(tiny_mnist, tmp_path, same, "train=false", "test=false") for _ in "ab"]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    folders = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert folders == ["same", "same-1"]
    for folder in folders:
        assert (tmp_path / "logs" / folder / "metrics.json").is_file()


@pytest.mark.slow
def test_same_seed_and_config_give_bit_identical_metrics_on_cpu(tiny_cfg, tmp_path):
    def numbers(folder: str) -> dict:
        cfg = tiny_cfg("trainer.deterministic=true", "logger=none", f"paths.output_dir={folder}")
        train(cfg)
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}

    first, second = numbers(str(tmp_path / "a")), numbers(str(tmp_path / "b"))
    assert first == second and "test/acc" in first  # ==, not approx: bit for bit


@pytest.mark.parametrize("written", ["completed", "running"])
def test_a_ctrl_c_after_the_completed_record_keeps_it(tmp_path, written):
    """Ctrl-C while a finished run publishes to its trackers: metrics.json stays ``completed``
    (the results are whole); before that record exists the run is ``interrupted``."""
    from omegaconf import OmegaConf

    from headlab.layout import read_metrics, write_metrics
    from headlab.run.outcome import record_outcome

    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}, "callbacks": {}})

    @record_outcome
    def finishes_then_interrupted(cfg):
        write_metrics(tmp_path, {"status": written, "test/acc": 0.9})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finishes_then_interrupted(cfg)
    expected = "completed" if written == "completed" else "interrupted"
    assert read_metrics(tmp_path)["status"] == expected
