"""Post-hoc calibrators, the post-test analysis, selective prediction and bad settings."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from headlab.calibration import METHODS
from headlab.calibration.calibrators import (
    CALIBRATORS,
    CalibrationFailed,
    Vector,
    fit_calibrator,
    link_of,
    map_nll,
)
from headlab.calibration.estimators import ESTIMATORS
from headlab.calibration.posthoc import Analysis, Settings, val_nll
from headlab.calibration.scoring import logits_nll
from headlab.calibration.selective import aurc, risk_coverage
from headlab.errors import ConfigValueError
from headlab.heads import SigmoidBCE, SigmoidSoftmax, SoftmaxCE
from headlab.run.train import train


def overconfident(n: int = 4000, k: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose ranking is informative but far too sharp, with per-class biases."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n,), generator=g)
    clean = torch.randn(n, k, generator=g)
    clean[torch.arange(n), labels] += 2.5
    bias = torch.linspace(-1, 1, k)
    return clean * 4.0 + bias, labels


@pytest.mark.parametrize("head", [SoftmaxCE(), SigmoidBCE(), SigmoidSoftmax()], ids=str)
def test_vector_scaling_at_identity_is_the_uncalibrated_model(head):
    """Calibrators use the head's own probability map: at the identity they give the head's
    probabilities, sigmoid_softmax's softmax of sigmoids included (not a softmax of z)."""
    logits, _ = overconfident(200)
    identity = Vector(head.probs)
    identity.params = identity.initial(10)
    torch.testing.assert_close(identity.probs(logits), head.probs(logits.double()))


def test_the_likelihood_of_a_general_map_is_the_logit_likelihood_for_softmax_and_sigmoid():
    """The probability-space objective (any head's map) equals the logit-space one where both
    apply, so maps other than softmax/sigmoid are fitted on the same likelihood."""
    logits, labels = overconfident(300)
    z = logits.double() / 3
    for link, exclusive in (("categorical", True), ("bernoulli", False)):
        probs_of = SoftmaxCE().probs if exclusive else SigmoidBCE().probs
        torch.testing.assert_close(
            map_nll(link, probs_of, z, labels), logits_nll(exclusive, z, labels), rtol=1e-10, atol=0
        )
    assert [link_of(h.probs) for h in (SoftmaxCE(), SigmoidBCE(), SigmoidSoftmax())] == [
        "softmax",
        "sigmoid",
        "categorical",
    ]
    assert link_of(lambda z: z.exp() / z.exp().sum(1, keepdim=True)) == "softmax"


def test_temperature_on_sigmoid_softmax_calibrates_the_heads_own_model():
    """T fitted for sigmoid_softmax minimises the categorical NLL of softmax(sigmoid(z / T)),
    written out here: its slope in log T is 0 at the fitted T and 1% either way costs more;
    the calibrated probabilities are the head's at z / T."""
    head = SigmoidSoftmax()
    logits, labels = overconfident(1000)
    fitted = fit_calibrator("temperature", head.probs, logits, labels)
    z, rows = logits.double(), torch.arange(1000)

    def nll(log_t: torch.Tensor) -> torch.Tensor:
        return -head.probs(z / log_t.exp())[rows, labels].log().mean()

    at = torch.tensor(np.log(fitted.temperature), dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(nll(at), at)
    assert abs(float(slope)) < 1e-4
    for step in (-0.01, 0.01):
        assert float(nll(at.detach() + step)) > float(nll(at.detach()))
    torch.testing.assert_close(fitted.probs(logits), head.probs(z / fitted.temperature))


@pytest.mark.slow
def test_matrix_scaling_recovers_a_known_affine_distortion():
    # labels drawn from softmax(true); the model shows A^-1 (true - b): W z + b undoes it
    g = torch.Generator().manual_seed(1)
    k, n = 4, 30000
    true = torch.randn(n, k, generator=g, dtype=torch.float64) * 2
    labels = torch.multinomial(true.softmax(1), 1, generator=g).squeeze(1)
    mixing = torch.eye(k, dtype=torch.float64) * 1.5 + 0.2 * torch.randn(k, k, generator=g)
    bias = torch.tensor([0.4, -0.3, 0.2, -0.3], dtype=torch.float64)
    shown = torch.linalg.solve(mixing, (true - bias).T).T
    fit, check = slice(0, 20000), slice(20000, n)
    errors = {}
    for method in ("temperature", "vector", "matrix"):
        calibrator = fit_calibrator(method, SoftmaxCE().probs, shown[fit], labels[fit])
        gap = calibrator.probs(shown[check]) - true[check].softmax(1)
        errors[method] = gap.abs().max(dim=1).values.mean().item()
    # mean over samples of the largest probability error; what is left is ODIR's shrinkage
    assert errors["matrix"] < 0.03
    assert errors["temperature"] > 4 * errors["matrix"] and errors["vector"] > 4 * errors["matrix"]


@pytest.mark.slow
@pytest.mark.parametrize("exclusive", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_no_method_raises_val_nll(method: str, exclusive: bool):
    logits, labels = overconfident()
    head = SoftmaxCE() if exclusive else SigmoidBCE()
    calibrator = fit_calibrator(method, head.probs, logits, labels)
    before = val_nll(exclusive, head.probs(logits.double()).clamp(1e-12, 1 - 1e-12), labels)
    after = val_nll(exclusive, calibrator.probs(logits).clamp(1e-12, 1 - 1e-12), labels)
    assert after < before
    probs = calibrator.probs(logits)
    if exclusive:
        torch.testing.assert_close(probs.sum(1), torch.ones(len(labels), dtype=torch.float64))


def test_likelihood_is_categorical_or_per_label_bernoulli():
    logits, labels = overconfident(50)
    one_hot = torch.nn.functional.one_hot(labels, 10).double()
    p = logits.double().sigmoid()
    bernoulli = -(one_hot * p.log() + (1 - one_hot) * (1 - p).log()).sum(1).mean()
    torch.testing.assert_close(logits_nll(False, logits.double(), labels), bernoulli)
    categorical = -logits.double().log_softmax(1)[torch.arange(50), labels].mean()
    torch.testing.assert_close(logits_nll(True, logits.double(), labels), categorical)


def brute_force_aurc(confidence: np.ndarray, error: np.ndarray) -> float:
    """Mean over every order of tied predictions of the mean risk: only for tiny inputs."""
    values = []
    for perm in itertools.permutations(range(len(confidence))):
        perm = np.array(perm)
        if np.all(np.diff(confidence[perm]) <= 0):  # a descending order: ties in any order
            risk = np.cumsum(error[perm]) / np.arange(1, len(perm) + 1)
            values.append(risk.mean())
    return float(np.mean(values))


def test_aurc_equals_the_mean_over_tie_orders():
    confidence = np.array([0.9, 1.0, 0.7, 1.0, 0.7, 0.8, 1.0])
    error = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    got = aurc(torch.tensor(confidence), torch.tensor(error))
    assert got == pytest.approx(brute_force_aurc(confidence, error))
    coverage, risk = risk_coverage(torch.tensor(confidence), torch.tensor(error))
    assert coverage[-1] == 1 and risk[-1] == pytest.approx(error.mean())


def test_aurc_without_ties_is_the_textbook_sum():
    rng = np.random.default_rng(0)
    confidence, error = rng.random(300), (rng.random(300) < 0.2).astype(float)
    order = np.argsort(-confidence)
    expected = np.mean(np.cumsum(error[order]) / np.arange(1, 301))
    assert aurc(torch.tensor(confidence), torch.tensor(error)) == pytest.approx(expected)


def run_analysis(tmp_path: Path, exclusive: bool = True, **settings) -> dict:
    settings.setdefault("method_intervals", True)
    val, test = overconfident(2000, seed=1), overconfident(3000, seed=2)
    head = SoftmaxCE() if exclusive else SigmoidBCE()
    analysis = Analysis(head, Settings(bootstrap=100, **settings), tmp_path)
    return analysis.run(val, test, "index")


@pytest.mark.slow
@pytest.mark.parametrize("exclusive", [True, False])
def test_analysis_writes_every_key_file_and_interval(tmp_path: Path, exclusive: bool):
    metrics = run_analysis(tmp_path, exclusive)
    for name in ESTIMATORS:
        for suffix in ["", *(f"_{m}" for m in METHODS)]:
            key = f"test/{name}{suffix}"
            low, high = metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"]
            assert np.isfinite(metrics[key]) and low <= high, key
    assert 0 < metrics["test/aurc"] < 1 and metrics["temperature"] > 1  # overconfident: T > 1
    assert not [k for k in metrics if k.endswith("_ts")]  # the pre-0.2 aliases are gone
    # calibrating an overconfident softmax lowers test NLL and ECE with every method (for a
    # sigmoid head the fit lowers the per-label Bernoulli NLL, not -log sigmoid(true logit))
    for method in METHODS if exclusive else ():
        assert metrics[f"test/nll_{method}"] < metrics["test/nll"], method
        assert metrics[f"test/ece_{method}"] < metrics["test/ece"], method
    params = json.loads((tmp_path / "calibration.json").read_text())
    assert set(params) == {*METHODS, "posthoc_seconds"}  # written once, with its own cost
    assert 0 < params["posthoc_seconds"] < 600
    assert len(params["matrix"]["params"]["weight"]) == 10
    assert params["temperature"]["val_nll_after"] < params["temperature"]["val_nll_before"]
    for name in ("calibration_test", "risk_coverage_test"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    saved = np.load(tmp_path / "test_predictions.npz")
    assert saved["probs"].shape == saved["logits"].shape == (3000, 10)


@pytest.mark.slow
def test_method_intervals_are_optional(tmp_path: Path):
    metrics = run_analysis(tmp_path, method_intervals=False)
    assert "test/ece_ci_low" in metrics and "test/ece_vector" in metrics
    assert not any(k.endswith("_ci_low") for k in metrics if "_vector" in k)


@pytest.mark.slow
def test_a_method_that_fails_is_recorded_with_its_reason(tmp_path: Path, monkeypatch):
    def broken(self, logits, target):
        raise np.linalg.LinAlgError("singular matrix")

    monkeypatch.setattr(CALIBRATORS["vector"], "fit", broken)
    metrics = run_analysis(tmp_path)
    assert metrics["calibration/vector_error"] == "LinAlgError: singular matrix"
    assert not any(key.endswith("_vector") for key in metrics if key.startswith("test/"))
    assert "test/ece_matrix" in metrics  # the others still ran
    params = json.loads((tmp_path / "calibration.json").read_text())
    assert params["vector"] == {"error": "LinAlgError: singular matrix"}


@pytest.mark.slow
def test_a_nonfinite_fit_is_a_failure_not_a_nan(monkeypatch):
    logits, labels = overconfident(100)
    logits[0, 0] = float("nan")
    with pytest.raises(CalibrationFailed, match="non-finite"):
        fit_calibrator("temperature", SoftmaxCE().probs, logits, labels)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("calibration.methods=[temperature,nope]", "calibration.methods has unknown ['nope']"),
        ("calibration.bootstrap=0", "calibration.bootstrap must be a whole number > 0"),
        ("calibration.min_bin_count=0", "calibration.min_bin_count must be >= 1"),
        ("calibration.n_bins=1", "calibration.n_bins must be a whole number >= 2"),
    ],
)
def test_bad_calibration_settings_fail_before_training(tiny_cfg, tmp_path, override, message):
    with pytest.raises(ConfigValueError) as err:
        train(tiny_cfg(override))
    assert message in str(err.value) and "\n" not in str(err.value)
    if "methods" in override:
        assert "temperature, vector, matrix, isotonic" in str(err.value)
    assert not (tmp_path / "checkpoints").exists()


def multilabel_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = (torch.rand(n, 10, generator=g) < 0.3).long()
    logits = (target * 2 - 1) * 3.0 + torch.randn(n, 10, generator=g) * 2
    return logits * 5, target  # too sharp: per-label calibration has work to do


@pytest.mark.slow
def test_multilabel_analysis_calibrates_each_label_and_saves_predictions(tmp_path: Path):
    val, test = multilabel_data(1500, 1), multilabel_data(2000, 2)
    analysis = Analysis(SigmoidBCE(), Settings(bootstrap=50), tmp_path)
    metrics = analysis.run(val, test, "multi_hot")
    for method in METHODS:
        assert metrics[f"test/nll_{method}"] < metrics["test/nll"], method
        assert metrics[f"test/ece_{method}"] < metrics["test/ece"], method
    p = test[0].sigmoid().double().clamp(1e-12, 1 - 1e-12)  # the head's float32 output
    y = test[1].double()
    # summed over the labels, averaged over samples (calibration.scoring's convention)
    bernoulli = -(y * p.log() + (1 - y) * (1 - p).log()).sum(dim=1).mean()
    assert metrics["test/nll"] == pytest.approx(bernoulli.item())
    saved = np.load(tmp_path / "test_predictions.npz")
    assert saved["targets"].shape == saved["probs"].shape == (2000, 10)
    assert (tmp_path / "reliability_labels_test.png").read_bytes()[:4] == b"\x89PNG"


def test_multilabel_softmax_head_records_why_no_method_ran(tmp_path: Path):
    val, test = multilabel_data(300, 1), multilabel_data(300, 2)
    metrics = Analysis(SoftmaxCE(), Settings(bootstrap=10), tmp_path).run(val, test, "multi_hot")
    for method in METHODS:
        assert "per-label calibrators do not apply" in metrics[f"calibration/{method}_error"]


def test_class_names_of_own_data_reach_the_predictions_file_and_the_report(tmp_path: Path):
    from headlab.sweeps.study.jobs import Job
    from headlab.sweeps.study.legend import caveats
    from headlab.sweeps.study.report import classes_line

    val, test = multilabel_data(300, 1), multilabel_data(300, 2)
    names = [f"class_{k}" for k in range(10)]
    Analysis(SigmoidBCE(), Settings(bootstrap=10), tmp_path, class_names=names).run(
        val, test, "multi_hot"
    )
    job = Job(tmp_path, "sigmoid", "image_csv", "mlp", 1, 2, {}, [])
    assert job.class_names == names
    assert classes_line([job]) == [f"- classes (10): {', '.join(names)}"]
    unnamed = tmp_path / "mnist"  # predictions saved without names, as MNIST runs save them
    unnamed.mkdir()
    np.savez(unnamed / "test_predictions.npz", probs=np.zeros((2, 10)), targets=np.zeros(2))
    assert Job(unnamed, "sigmoid", "mnist", "mlp", 1, 2, {}, []).class_names is None
    text = " ".join(caveats("2", "mlp", "image_folder", 500, 3))
    assert "500 test images of `data=image_folder`" in text and "the 3 outputs" in text
