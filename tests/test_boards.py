"""TensorBoard and MLflow as a person comparing heads reads them: read back with
TensorBoard's own readers and MlflowClient."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from headlab.metrics.stage import StageMetrics
from headlab.sweeps.study.board_runs import mean_curve
from headlab.tracking.hparams import (
    DEFAULT_COLUMNS,
    experiment_summary,
    final_scalars,
    hparam_groups,
    meaningful,
    metric_columns,
    session_hparams,
)
from headlab.tracking.mlflow_runs import flat_config


def parse_experiment(summary):
    from tensorboard.plugins.hparams import metadata

    (value,) = summary.value
    return metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)


def read_experiment(event_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    events = EventAccumulator(str(event_dir))
    events.Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    return metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])


# --- fast: the definitions, no training ---------------------------------------------------


def test_metric_columns_start_with_the_comparable_five_and_drop_losses_and_aliases():
    metrics = {
        "test/loss": 0.3,
        "val/loss": 0.2,
        "train/loss": 0.1,
        "test/ece_ci_low": 0.0,
        "test/nll": 0.3,
        "test/brier": 0.1,
        "test/acc": 0.9,
        "test/ece": 0.02,
        "test/ece_adaptive": 0.02,
        "val/acc": 0.9,
        "best/val/acc": 0.9,
        "test/ece_temperature": 0.01,
        "temperature": 1.3,
        "status": "completed",
    }
    scalars = final_scalars(metrics)
    assert "test/ece_ci_low" not in scalars
    assert "temperature" not in scalars and "test/loss" in scalars  # still a scalar
    columns = metric_columns(scalars)
    assert columns[:5] == list(DEFAULT_COLUMNS)
    assert columns[5:] == ["test/ece_temperature", "best/val/acc", "val/acc"]


def test_threshold_only_where_targets_are_multi_hot():
    hparams = {"head": "sigmoid", "head.threshold": 0.5, "head.gamma": 2.0}
    assert meaningful(hparams, "index") == {"head": "sigmoid", "head.gamma": 2.0}
    assert meaningful(hparams, "multi_hot") == hparams


def test_every_run_has_every_head_parameter_as_text_or_a_dash():
    softmax = session_hparams({"head": "softmax", "head.threshold": 0.5, "seed": 1}, "index")
    soft = session_hparams({"head": "soft", "head.smoothing": 0.1, "seed": 1}, "index")
    assert softmax.keys() == soft.keys() and "head.threshold" not in soft
    assert softmax["head.smoothing"] == "-" and soft["head.smoothing"] == "0.1"
    assert {"head.gamma", "head.alpha", "head.epsilon", "head.clip"} <= soft.keys()
    groups = hparam_groups([softmax, soft])
    assert groups == {"swept": ["head"], "partial": ["head.smoothing"], "constant": ["seed"]}


def test_sweep_definition_lists_swept_first_per_head_params_and_no_constants():
    sessions = [
        {"head": head, "seed": seed, "lr": 0.001, "data": "mnist", **extra}
        for head, extra in (("softmax", {}), ("soft", {"head.smoothing": 0.1}))
        for seed in (1, 2)
    ]
    experiment = parse_experiment(experiment_summary(sessions, list(DEFAULT_COLUMNS)))
    infos = [(h.name, h.differs) for h in experiment.hparam_infos]
    assert infos == [("head", True), ("seed", True), ("head.smoothing", False)]
    head = experiment.hparam_infos[0]
    assert [v.string_value for v in head.domain_discrete.values] == ["soft", "softmax"]
    assert [m.name.tag for m in experiment.metric_infos] == list(DEFAULT_COLUMNS)
    single = parse_experiment(experiment_summary(sessions[:1], ["test/acc"]))
    assert [h.name for h in single.hparam_infos] == ["data", "head", "lr", "seed"]


def test_running_totals_give_the_window_mean_of_loss_and_accuracy():
    gen = torch.Generator().manual_seed(0)
    metrics = StageMetrics("index", 10)
    assert metrics.running_totals().tolist() == [0.0] * 4
    batches, after_two = [], None
    for size in (5, 7, 3, 8):
        probs = torch.softmax(torch.randn(size, 10, generator=gen), 1)
        target = torch.randint(0, 10, (size,), generator=gen)
        loss = torch.rand((), generator=gen)
        metrics.update(loss, probs, target)
        batches.append((size, float(loss), (probs.argmax(1) == target).sum().item()))
        if len(batches) == 2:
            after_two = metrics.running_totals().tolist()
    now = metrics.running_totals().tolist()
    loss_sum, weight, hits, count = (a - b for a, b in zip(now, after_two, strict=True))
    sizes, losses, window_hits = zip(*batches[2:], strict=True)
    assert weight == count == sum(sizes)
    assert loss_sum / weight == pytest.approx(np.average(losses, weights=sizes))
    assert hits == sum(window_hits)


def test_mean_curve_is_the_numpy_mean_min_max_on_common_steps():
    curves = [[(0, 1.0), (5, 2.0), (9, 4.0)], [(0, 3.0), (5, 0.0)], [(0, 2.0), (5, 1.0), (9, 0.0)]]
    rows = mean_curve(curves)
    assert [r[0] for r in rows] == [0, 5]  # step 9 is missing from one seed
    for (_step, mean, low, high), column in zip(rows, ([1, 3, 2], [2, 0, 1]), strict=True):
        assert (mean, low, high) == (np.mean(column), np.min(column), np.max(column))


def test_flat_config_has_dotted_override_keys():
    flat = flat_config({"model": {"optimizer": {"lr": 0.001, "_target_": "torch.optim.Adam"}}})
    assert flat == {"model.optimizer.lr": "0.001", "model.optimizer._target_": "torch.optim.Adam"}


# --- slow: real runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_epoch_run(tiny_mnist: Path, tmp_path_factory) -> Path:
    from headlab.run.train import train
    from tests.conftest import compose_train

    out = tmp_path_factory.mktemp("two_epochs")
    store = out / "store"
    train(
        compose_train(
            [
                f"data.data_dir={tiny_mnist}",
                "data.val_size=100",
                "data.batch_size=50",
                "trainer.max_epochs=2",
                "head=sigmoid",
                "logger=many",
                f"logger.mlflow.tracking_uri=sqlite:///{store}/mlflow.db",
                f"logger.mlflow.artifact_location={store}/artifacts",
                "logger.mlflow.log_model=true",
                "callbacks.rich_progress_bar=null",
                "calibration.bootstrap=50",
                "shift=none",
                f"paths.output_dir={out}",
            ]
        )
    )
    return out


@pytest.mark.slow
def test_train_curve_has_a_point_per_step_whose_epoch_mean_is_metrics_json(two_epoch_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(two_epoch_run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    loss = events.Scalars("train/loss")
    # 500 train images / 50 = 10 batches an epoch: an epoch this short gets a point a batch
    assert [e.step for e in loss] == list(range(20))
    metrics = json.loads((two_epoch_run / "metrics.json").read_text())
    # equal batches: the last epoch's points average to its epoch mean in metrics.json
    assert np.mean([e.value for e in loss[10:]]) == pytest.approx(metrics["train/loss"], rel=1e-5)
    assert np.mean([e.value for e in events.Scalars("train/acc")[10:]]) == pytest.approx(
        metrics["train/acc"]
    )
    tags = events.Tags()
    assert not [t for t in tags["scalars"] if t.endswith("_ts")]
    assert not [k for k in metrics if k.endswith("_ts")]  # one name per value: *_temperature
    val_steps = [e.step for e in events.Scalars("val/acc")]
    assert val_steps == [9, 19]
    assert [i.step for i in events.Images("val/reliability")] == val_steps
    assert "test/metrics/text_summary" in tags["tensors"]


@pytest.mark.slow
def test_single_run_definition_and_session(two_epoch_run):
    experiment = read_experiment(two_epoch_run / "tensorboard")
    assert [m.name.tag for m in experiment.metric_infos][:5] == list(DEFAULT_COLUMNS)
    assert not any(m.name.tag.endswith("loss") for m in experiment.metric_infos)
    names = {h.name for h in experiment.hparam_infos}
    assert {"head", "seed", "lr"} <= names and "head.threshold" not in names
    saved = yaml.safe_load((two_epoch_run / "tensorboard" / "hparams.yaml").read_text())
    assert saved["head"] == "sigmoid"


@pytest.mark.slow
def test_mlflow_run_has_the_config_as_params_and_artifact(two_epoch_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{two_epoch_run}/store/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("headlab").experiment_id])
    params = run.data.params
    assert params["model.optimizer._target_"] == "torch.optim.Adam"
    assert params["model.optimizer.lr"] == "0.001"
    assert params["model.backbone.dropout"] == "0.1"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "calibration.json", "test_predictions.npz", "metrics.json"} <= artifacts
    local = client.download_artifacts(run.info.run_id, "config.yaml", str(two_epoch_run / "dl"))
    config = yaml.safe_load(Path(local).read_text())
    assert config["head"]["_target_"].startswith("headlab.heads.")
    assert config["model"]["optimizer"]["lr"] == 0.001
    local = client.download_artifacts(run.info.run_id, "metrics.json", str(two_epoch_run / "dl"))
    assert not [k for k in json.loads(Path(local).read_text()) if k.endswith("_ckpt_path")]
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 20
    best = Path(json.loads((two_epoch_run / "metrics.json").read_text())["best_ckpt_path"])
    uploaded = [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert uploaded == [f"checkpoints/{best.name}"]  # the best one only, not last.ckpt


@pytest.mark.slow
def test_sweep_writes_one_definition_for_all_jobs(compare_sweep: Path):
    from headlab.sweeps.board import read_session

    sweep = compare_sweep / "sweep"
    experiment = read_experiment(sweep / "sweep")
    hparams = [(h.name, h.differs) for h in experiment.hparam_infos]
    assert hparams == [("head", True), ("seed", True), ("head.smoothing", False)]
    assert [m.name.tag for m in experiment.metric_infos][:5] == list(DEFAULT_COLUMNS)
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())
    trials = [read_session(job / "tensorboard")[1] for job in jobs]
    assert trials == [
        "000 head=softmax,seed=1",
        "001 head=softmax,seed=2",
        "002 head=soft,seed=1",
        "003 head=soft,seed=2",
    ]
    for job in jobs:  # the jobs leave the definition to the sweep
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(job / "tensorboard"))
        events.Reload()
        assert "_hparams_/experiment" not in events.PluginTagToContent("hparams")


@pytest.mark.slow
def test_study_writes_a_mean_run_per_head(compare_sweep: Path):
    from headlab.sweeps.study.jobs import read_scalar

    sweep = compare_sweep / "sweep"
    runs = sweep / "report" / "tensorboard"
    assert sorted(p.name for p in runs.iterdir()) == ["soft", "softmax"]
    jobs = [p for p in sweep.iterdir() if (p / ".hydra").is_dir()]
    soft = [j for j in jobs if "head: soft\n" in (j / ".hydra" / "hydra.yaml").read_text()]
    assert len(soft) == 2
    seeds = [dict(read_scalar(j / "tensorboard", "val/acc")) for j in soft]
    mean = read_scalar(runs / "soft", "heads/val/acc")
    assert [step for step, _ in mean] == sorted(seeds[0])
    for step, value in mean:
        assert value == pytest.approx(np.mean([s[step] for s in seeds]))
    assert len(read_scalar(runs / "soft", "heads/train/loss")) == 10  # one epoch of 10 points


@pytest.mark.slow
def test_mlflow_runs_of_a_sweep_are_named_and_nested(compare_sweep: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{compare_sweep}/store/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("headlab").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (parent,) = parents
    children = sorted(r.info.run_name for r in runs if r is not parent)
    assert children == [
        "000 head=softmax,seed=1",
        "001 head=softmax,seed=2",
        "002 head=soft,seed=1",
        "003 head=soft,seed=2",
    ]
    assert {r.data.tags["mlflow.parentRunId"] for r in runs if r is not parent} == {
        parent.info.run_id
    }
    assert parent.info.status == "FINISHED"
