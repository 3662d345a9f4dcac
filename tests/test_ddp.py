"""trainer=ddp_cpu: two gloo processes, one run folder, metrics as one process computes them.
DDP with spawned ranks inside a multirun: tests/test_optuna_search.py (a pruned DDP trial)."""

from __future__ import annotations

import json

import pytest

from headlab.run.train import build
from tests.conftest import compose_train
from tests.test_train import run_cli

# 200 test and 100 val images split evenly over 2 processes: no sample padded in twice
TINY_DDP = (
    "trainer=ddp_cpu",
    "data.val_size=100",
    "data.batch_size=50",
    "data.eval_batch_size=50",
    "trainer.max_epochs=1",
    "shift=none",
    "calibration=none",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
)


@pytest.mark.slow
def test_ddp_cpu_epoch_metrics_equal_one_process_on_the_same_data(tiny_mnist, tiny_cfg, tmp_path):
    (tmp_path / "ddp").mkdir()
    result = run_cli(f"data.data_dir={tiny_mnist}", *TINY_DDP, cwd=tmp_path / "ddp")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "MEMBER: 1/2" in output and "MEMBER: 2/2" in output  # really two processes
    (run,) = (tmp_path / "ddp" / "logs" / "train" / "runs").iterdir()  # one folder for both
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"

    # the saved weights evaluated by a single process give the same numbers
    cfg = tiny_cfg("data.eval_batch_size=50", "logger=none")
    datamodule, model, trainer = build(cfg)
    best = metrics["best_ckpt_path"]
    (tested,) = trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
    (validated,) = trainer.validate(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
    assert tested["test/acc"] == metrics["test/acc"]
    assert validated["val/acc"] == metrics["val/acc"]
    # the loss is a mean over processes: equal up to the order of the float additions
    assert tested["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-6)
    assert validated["val/loss"] == pytest.approx(metrics["val/loss"], rel=1e-6)


@pytest.mark.slow
def test_ddp_that_re_runs_the_script_is_refused_in_a_multirun(tiny_mnist, tmp_path):
    result = run_cli("-m", f"data.data_dir={tiny_mnist}", *TINY_DDP, "head=softmax", cwd=tmp_path)
    assert result.returncode != 0
    assert "would start the whole sweep again" in result.stdout + result.stderr
    assert len(list((tmp_path / "logs" / "train" / "multiruns").iterdir())) == 1


def test_gpu_ddp_config_composes_for_all_gpus_with_synced_batchnorm():
    cfg = compose_train(["trainer=ddp"])
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy) == (
        "gpu",
        -1,
        "ddp",
    )
    assert cfg.trainer.sync_batchnorm is True
    cpu = compose_train(["trainer=ddp_cpu"]).trainer
    assert (cpu.devices, cpu.strategy.process_group_backend, cpu.strategy.start_method) == (
        2,
        "gloo",
        "popen",
    )
