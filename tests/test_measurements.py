"""A run's measurement outputs: calibration in metrics.json, predictions, figures, TensorBoard."""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import relplot

from headlab.calibration.estimators import ESTIMATORS
from headlab.run.train import train
from tests.test_calibration import numpy_calibration

CALIBRATION_KEYS = ("ece", "mce", "cw_ece", "brier", "nll")


@pytest.fixture(scope="module")
def sigmoid_run(tiny_mnist: Path, tmp_path_factory) -> Path:
    from tests.conftest import compose_train

    out = tmp_path_factory.mktemp("sigmoid_run")
    cfg = compose_train(
        [
            f"data.data_dir={tiny_mnist}",
            "data.val_size=100",
            "data.batch_size=50",
            "trainer.max_epochs=2",
            "head=sigmoid",
            "log_grad_every_n_steps=2",
            "shift=none",
            "callbacks.rich_progress_bar=null",
            f"paths.output_dir={out}",
        ]
    )
    train(cfg)
    return out


@pytest.mark.slow
def test_metrics_json_has_calibration_both_probability_views_and_temperature(sigmoid_run):
    metrics = json.loads((sigmoid_run / "metrics.json").read_text())
    for stage in ("val", "test"):
        for key in CALIBRATION_KEYS:
            assert isinstance(metrics[f"{stage}/{key}"], float)
            assert isinstance(metrics[f"{stage}/{key}_norm"], float)  # renormalised sigmoid
        assert metrics[f"{stage}/prob_sum_std"] > 0  # sigmoid outputs do not sum to one
    assert metrics["temperature"] > 0
    for name in ESTIMATORS:
        assert metrics[f"test/{name}_ci_low"] <= metrics[f"test/{name}_ci_high"], name
        for suffix in ("_temperature", "_vector", "_matrix", "_isotonic"):
            assert isinstance(metrics[f"test/{name}{suffix}"], float)
    assert 0 <= metrics["test/aurc"] <= 1
    record = json.loads((sigmoid_run / "calibration.json").read_text())
    # the fitted temperature in metrics.json is the one calibration.json keeps with its fit
    (log_t,) = record["temperature"]["params"]["log_temperature"]
    assert metrics["temperature"] == pytest.approx(math.exp(log_t))


@pytest.mark.slow
def test_saved_predictions_recompute_to_the_logged_test_calibration(sigmoid_run):
    metrics = json.loads((sigmoid_run / "metrics.json").read_text())
    saved = np.load(sigmoid_run / "test_predictions.npz")
    probs, targets = saved["probs"].astype(np.float64), saved["targets"]
    assert probs.shape == (200, 10) and targets.shape == (200,)
    assert (probs.argmax(1) == targets).mean() == pytest.approx(metrics["test/acc"])
    recomputed = numpy_calibration(probs, targets)
    for key in CALIBRATION_KEYS:
        assert recomputed[key] == pytest.approx(metrics[f"test/{key}"], rel=1e-4, abs=1e-6), key
    # the run's smooth ECE is relplot's on its own saved predictions
    conf, hit = probs.max(1), (probs.argmax(1) == targets).astype(float)
    assert metrics["test/smece"] == pytest.approx(relplot.smECE(conf, hit), abs=1e-4)
    normalised = numpy_calibration(probs / probs.sum(1, keepdims=True), targets)
    assert normalised["ece"] == pytest.approx(metrics["test/ece_norm"], rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_figures_are_written_after_test(sigmoid_run):
    names = ("reliability_test", "confidence_test", "reliability_norm_test", "calibration_test")
    for name in (*names, "risk_coverage_test"):
        png = sigmoid_run / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


@pytest.mark.slow
def test_event_file_holds_calibration_gradients_and_images(sigmoid_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(sigmoid_run / "tensorboard"), size_guidance={"images": 0})
    tags = events.Reload().Tags()
    assert {"val/ece", "val/mce", "val/cw_ece", "val/brier", "val/nll"} <= set(tags["scalars"])
    grad_tags = {"grad_norm/total", "grad_norm_per_class/0", "grad_norm_per_class/9"}
    assert grad_tags <= set(tags["scalars"])
    assert "grad_norm/classifier.weight" in tags["scalars"]
    assert {"val/reliability", "val/reliability_norm", "test/reliability"} <= set(tags["images"])
    assert {"test/calibration", "test/risk_coverage"} <= set(tags["images"])
    # per epoch, on the step of that epoch's val scalars (the index of its last batch)
    assert [image.step for image in events.Images("val/reliability")] == [9, 19]
    assert [e.step for e in events.Scalars("val/ece")] == [9, 19]
    assert {"val/prob_sum", "val/confidence", "val/confidence_norm"} <= set(tags["histograms"])
    # the confidence histogram counts every val prediction (100 per epoch), ending in (.., 1]
    confidence = events.Histograms("val/confidence")[-1].histogram_value
    assert confidence.num == 100 and sum(confidence.bucket) == 100
    assert confidence.bucket_limit[-1] == pytest.approx(1.0)
    # 2 epochs x 10 steps, logged every 2 steps
    assert len(events.Scalars("grad_norm/total")) == 10
    assert [e.step for e in events.Scalars("grad_rows/other_share")] == list(range(0, 20, 2))
    assert all(0 < e.value < 1 for e in events.Scalars("grad_rows/other_share"))  # sigmoid


@pytest.mark.slow
def test_hparams_tab_is_curated_and_has_no_duplicate_charts(sigmoid_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata as hp_metadata
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(sigmoid_run / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent(hp_metadata.PLUGIN_NAME)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content[hp_metadata.EXPERIMENT_TAG]
    ).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content[hp_metadata.SESSION_START_INFO_TAG]
    ).session_start_info
    values = {k: v.string_value or v.number_value for k, v in session.hparams.items()}
    # other heads' parameters are "-": parallel coordinates keep a run that has none of them
    assert values.pop("head.smoothing") == "-"
    values = {k: v for k, v in values.items() if v != "-"}
    assert values == {
        "head": "sigmoid",
        "model": "mlp",
        "data": "mnist",
        "seed": 42,
        "lr": 0.001,
        "batch_size": 50,
        "max_epochs": 2,
    }  # no head.threshold: it decides nothing for single-label data
    columns = {info.name.tag for info in experiment.metric_infos}
    assert {"val/acc", "test/acc", "test/ece", "test/ece_temperature", "best/val/acc"} <= columns
    assert not {"val/loss", "test/loss"} & columns  # losses of different heads: incomparable
    assert not columns & {"epochs", "lr-Adam", "temperature"}
    scalars = set(events.Tags()["scalars"])
    assert columns <= scalars  # every column reads its value from the run's own scalar
    assert not any(tag.startswith("hp/") for tag in scalars)


@pytest.mark.slow
def test_custom_scalars_layout_is_written_with_the_run(sigmoid_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.custom_scalar import metadata as cs_metadata
    from tensorboard.util import tensor_util

    events = EventAccumulator(str(sigmoid_run / "tensorboard"))
    events.Reload()
    (config,) = events.Tensors(cs_metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(tensor_util.make_ndarray(config.tensor_proto).item())
    charts = {
        chart.title: list(chart.multiline.tag)
        for category in layout.category
        for chart in category.chart
    }
    assert {"acc", "loss", "ece", "nll", "grad_rows other share"} <= set(charts)
    scalars = events.Tags()["scalars"]
    for title, patterns in charts.items():  # each chart finds the run's curves
        assert any(re.match(p, tag) for p in patterns for tag in scalars), title


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_tensorboard_server_serves_the_tags_to_a_browser(sigmoid_run):
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(sigmoid_run),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--load_fast",
            "false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/data/plugin"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                scalars = get_json(f"{base}/scalars/tags")
                images = get_json(f"{base}/images/tags")
                if scalars and images:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "TensorBoard did not answer within 60 s"
            time.sleep(0.5)
        scalar_tags = {tag for run in scalars.values() for tag in run}
        image_tags = {tag for run in images.values() for tag in run}
        assert "val/ece" in scalar_tags
        assert any(tag.startswith("grad_norm/") for tag in scalar_tags)
        assert {"val/reliability", "test/reliability"} <= image_tags
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_report_reads_grad_rows_as_tensorboard_does(sigmoid_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from headlab.sweeps.study.jobs import read_scalar

    events = EventAccumulator(str(sigmoid_run / "tensorboard"))
    events.Reload()
    expected = [(e.step, e.value) for e in events.Scalars("grad_rows/other_share")]
    assert len(expected) == 10
    assert read_scalar(sigmoid_run / "tensorboard", "grad_rows/other_share") == expected
