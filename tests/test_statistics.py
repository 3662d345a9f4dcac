"""The statistics behind the report's claims (docs/statistics.md), against independent
calculations: a slow loop, scipy.stats, hand-computed numbers, brute force over tie orders,
NumPy formulas."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from headlab.calibration.bins import CalibrationMetrics
from headlab.calibration.bootstrap import resample_index
from headlab.calibration.consistency import p_calibrated
from headlab.calibration.estimators import ESTIMATORS, equal_mass_ece, resampled_scores, scores
from headlab.calibration.intervals import bias_corrected, interval, reported
from headlab.calibration.posthoc import Settings, multilabel_scores
from headlab.calibration.scoring import bernoulli_nll, brier, categorical_nll, logits_nll
from headlab.errors import ConfigValueError
from headlab.sweeps.study.paired import (
    TooFewSeeds,
    UnknownComparison,
    paired_difference,
    t_interval,
    two_level_draws,
    two_level_index,
)
from headlab.sweeps.study.table import mean_std
from headlab.sweeps.study.verdicts import (
    DIFFERENT,
    EQUIVALENT,
    INCONCLUSIVE,
    BadComparisonSetting,
    ComparisonSettings,
    holm,
    verdicts,
)
from tests.conftest import ROOT

FAST = ("acc", "ece", "ece_adaptive", "nll")


def runs(n: int, seeds: int, shift: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One head's runs on the same n test samples: targets shared, logits per seed."""
    g = torch.Generator().manual_seed(7)
    targets = torch.randint(0, 10, (n,), generator=g)
    out = []
    for _ in range(seeds):
        logits = torch.randn(n, 10, generator=g) * 2
        logits[torch.arange(n), targets] += 3 + shift
        out.append(((logits * (1 + shift)).softmax(dim=1), targets))
    return out


@pytest.mark.slow
def test_two_level_bootstrap_equals_a_slow_reference_loop():
    n, seeds, rows, draws = 300, 3, 40, 10
    a, b = runs(n, seeds, 0.5), runs(n, seeds, 0.0)
    index = resample_index(n, rows, seed=3)
    per_seed = {
        name: torch.stack(
            [
                resampled_scores(*a[s], index, estimators=FAST)[name]
                - resampled_scores(*b[s], index, estimators=FAST)[name]
                for s in range(seeds)
            ]
        )
        for name in FAST
    }
    # the loop: draw S seeds with replacement and ONE resample row shared by all of them
    # (one test set for every seed), score both heads
    seed_draws, row_draws = two_level_index(seeds, rows, draws, 11)
    for name in FAST:
        fast = two_level_draws(per_seed[name], draws, seed=11)
        for d in range(draws):
            total = 0.0
            for s in seed_draws[d].tolist():
                rows_of = index[int(row_draws[d])]
                total += scores(a[s][0][rows_of], a[s][1][rows_of], estimators=(name,))[name]
                total -= scores(b[s][0][rows_of], b[s][1][rows_of], estimators=(name,))[name]
            assert fast[d].item() == pytest.approx(total / seeds, abs=1e-12), name


def test_t_interval_equals_scipy_t_distribution():
    d = np.array([0.0031, -0.0004, 0.0022, 0.0017, 0.0009])
    got = t_interval(d, margin=0.002, level=0.95)
    half = stats.t.ppf(0.975, df=4) * d.std(ddof=1) / math.sqrt(5)
    assert (got.low, got.high) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-15)
    t_value = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    assert got.p_different == pytest.approx(2 * stats.t.sf(abs(t_value), df=4), rel=1e-12)


def test_tost_against_a_hand_computed_case():
    # d = (1, 2, 3) x 1e-3, margin 4e-3: mean 2e-3, sd 1e-3, se 1e-3 / sqrt 3;
    # t_lower = (2 + 4) sqrt 3 = 10.392, t_upper = (2 - 4) sqrt 3 = -3.464, df = 2;
    # p = max(P(T >= 10.392), P(T <= -3.464)) = P(T_2 <= -3.464) = 0.03709 (t table:
    # F(t) = 1/2 + t / (2 sqrt(2 + t^2)) for df = 2, so 1/2 - 3.464 / (2 * 3.742) = 0.0371)
    got = t_interval(np.array([1e-3, 2e-3, 3e-3]), margin=4e-3)
    assert got.p_equivalent == pytest.approx(0.5 - math.sqrt(12) / (2 * math.sqrt(14)), rel=1e-9)
    assert got.p_equivalent == pytest.approx(0.03709, abs=1e-5)


def test_holm_against_a_hand_computed_case():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def difference(per_seed, name="ece", margin=0.002):
    resampled = torch.tensor(per_seed)[:, None].repeat(1, 50)  # no test-sample noise
    return paired_difference(name, np.array(per_seed), resampled, margin, ("t",))


def test_three_verdicts_and_a_sign_change_is_never_different():
    cells = {
        ("clear", "ece"): difference([0.010, 0.012, 0.011, 0.013, 0.0115]),
        ("tiny", "ece"): difference([0.0001, -0.0002, 0.0000, 0.0001, -0.0001]),
        ("noisy", "ece"): difference([0.010, -0.008, 0.004, 0.001, -0.003]),
        # t-test significant but one seed disagrees in sign: not called
        ("flip", "ece"): difference([0.010, 0.011, 0.012, 0.0105, 0.0108, 0.0112, -0.0001]),
    }
    assert cells[("flip", "ece")].intervals[0].p_different < 0.05 / 4
    found = verdicts(cells)
    assert found[("clear", "ece")].word == DIFFERENT
    assert found[("tiny", "ece")].word == EQUIVALENT
    assert found[("noisy", "ece")].word == INCONCLUSIVE
    assert found[("flip", "ece")].word == INCONCLUSIVE
    assert "change sign" in found[("flip", "ece")].reason
    # with margins (the report's default): a real but small difference, its interval
    # reaching inside ±m, is not called different (nor equivalent: it may exceed m)
    small = {("small", "ece"): difference([0.0015, 0.0022, 0.0019, 0.0025, 0.0017])}
    assert verdicts(small)[("small", "ece")].word == DIFFERENT
    judged = verdicts(small, margins={"ece": 0.002})[("small", "ece")]
    assert judged.word == INCONCLUSIVE and "beyond" in judged.reason
    assert verdicts(cells, margins={"ece": 0.002})[("clear", "ece")].word == DIFFERENT


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: ComparisonSettings.build(estimators=("ece", "calibration")), "'calibration'"),
        (lambda: ComparisonSettings.build(margins={"ecee": 0.1}), "unknown estimator 'ecee'"),
        (lambda: ComparisonSettings.build(margins={"ece": 0}), "margin for ece must be > 0"),
        (lambda: ComparisonSettings.build(margins={"acc": -0.01}), "margin for acc must be > 0"),
        (lambda: ComparisonSettings.build(methods=["bayes"]), "unknown comparison method"),
        (lambda: difference([0.01, 0.02]), "share 2 seed(s): a verdict needs at least 3"),
    ],
)
def test_bad_comparison_input_is_one_clear_line(build, says: str):
    with pytest.raises(ConfigValueError) as error:
        build()
    assert says in str(error.value) and "\n" not in str(error.value)
    assert isinstance(error.value, (BadComparisonSetting, UnknownComparison, TooFewSeeds))


def brute_force_equal_mass(conf: np.ndarray, hit: np.ndarray, n_bins: int) -> float:
    """Average over every order of each tie of numpy's array_split equal-mass ECE."""
    ties = [np.flatnonzero(conf == c) for c in np.unique(conf)]
    values = []
    for orders in itertools.product(*(itertools.permutations(t) for t in ties)):
        order = np.concatenate(orders)
        values.append(
            sum(abs(hit[c].sum() - conf[c].sum()) for c in np.array_split(order, n_bins))
            / len(conf)
        )
    return float(np.mean(values))


def test_tied_confidences_are_split_as_the_average_over_their_orders():
    # 12 predictions, 3 bins of 4: the ties at 0.7 (5) and 1.0 (4) straddle the edges; every
    # bin's gap keeps its sign in every order, so the mean of |gap| is |mean gap|
    conf = np.array([0.3, 0.4, 0.5, 0.7, 0.7, 0.7, 0.7, 0.7, 1.0, 1.0, 1.0, 1.0])
    hit = np.array([1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0], dtype=float)
    expected = brute_force_equal_mass(conf, hit, 3)
    ones = torch.ones(1, len(conf), dtype=torch.float64)
    for shuffle in range(3):  # however the sample comes ordered
        perm = np.random.default_rng(shuffle).permutation(len(conf))
        got = equal_mass_ece(torch.tensor(conf[perm]), torch.tensor(hit[perm]), ones, 3)
        assert got.item() == pytest.approx(expected, abs=1e-12)


def test_nll_and_brier_conventions_equal_numpy_formulas():
    rng = np.random.default_rng(0)
    raw = rng.random((200, 10))  # a sigmoid head's outputs: need not sum to one
    labels = rng.integers(0, 10, 200)
    y = np.eye(10)[labels]
    share = raw / raw.sum(axis=1, keepdims=True)
    p, t = torch.tensor(raw), torch.tensor(labels)
    np.testing.assert_allclose(categorical_nll(p, t), -np.log(share[np.arange(200), labels]))
    np.testing.assert_allclose(
        bernoulli_nll(p, t), -(y * np.log(raw) + (1 - y) * np.log(1 - raw)).sum(axis=1)
    )
    np.testing.assert_allclose(brier(p, t), ((raw - y) ** 2).sum(axis=1))
    # the report's columns: nll/brier of p / sum p, *_ovr of the raw outputs
    got = scores(p, t, estimators=("nll", "brier", "nll_ovr", "brier_ovr"))
    assert got["nll"] == pytest.approx(-np.log(share[np.arange(200), labels]).mean())
    assert got["brier"] == pytest.approx(((share - y) ** 2).sum(axis=1).mean())
    assert got["brier_ovr"] == pytest.approx(((raw - y) ** 2).sum(axis=1).mean())
    # the epoch metrics (TensorBoard, metrics.json during training): the same definitions
    epoch = CalibrationMetrics(10, sync=False)
    epoch.update(p.float(), t)
    values, _ = epoch.compute()
    assert float(values["nll"]) == pytest.approx(got["nll"], rel=1e-6)
    assert float(values["brier"]) == pytest.approx(got["brier"], rel=1e-6)
    # the calibrators' objective from logits equals the mean of the per-sample terms
    logits = torch.tensor(rng.normal(size=(200, 10)))
    assert float(logits_nll(False, logits, t)) == pytest.approx(
        float(bernoulli_nll(logits.sigmoid(), t).mean()), rel=1e-9
    )
    assert float(logits_nll(True, logits, t)) == pytest.approx(
        float(categorical_nll(logits.softmax(1), t).mean()), rel=1e-9
    )
    # multi-label: summed over labels, averaged over samples
    multi = (rng.random((200, 10)) < 0.3).astype(float)
    ml = multilabel_scores(p, torch.tensor(multi), Settings())
    assert ml["brier"] == pytest.approx(((raw - multi) ** 2).sum(axis=1).mean())
    nll = -(multi * np.log(raw) + (1 - multi) * np.log(1 - raw)).sum(axis=1).mean()
    assert ml["nll"] == pytest.approx(nll)


def test_basic_interval_and_bias_correction_equal_their_formulas():
    values = torch.tensor(np.random.default_rng(1).normal(0.012, 0.002, 999))
    q_low, q_high = np.percentile(values.numpy(), [2.5, 97.5])
    low, high = interval("basic", 0.010, values)
    assert (low, high) == pytest.approx((0.020 - q_high, 0.020 - q_low))
    assert bias_corrected(0.010, values) == pytest.approx(0.020 - values.mean().item())
    assert bias_corrected(0.001, values) == 0.0  # floored: an ECE is never negative
    assert reported("ece", 0.001, values)[0] == 0.0  # basic, floored at 0
    assert reported("acc", 0.010, values) == pytest.approx((q_low, q_high))
    # ECE-type: basic's lower end, and half the bootstrap's width above the estimate
    expected = (0.020 - q_high, 0.010 + (q_high - q_low) / 2)
    assert reported("ece", 0.010, values, p_calibrated=0.01) == pytest.approx(expected)
    # ... reaching down to 0 only where the consistency test does not reject
    assert reported("ece", 0.010, values, p_calibrated=0.2) == pytest.approx((0.0, expected[1]))
    assert low > 0


def test_bc_interval_equals_efrons_formula_by_hand():
    from scipy.stats import norm

    values = np.random.default_rng(3).normal(0.014, 0.002, 999)
    point = 0.012  # most resamples above the estimate, as for an upward-biased ECE
    z0 = norm.ppf(np.mean(values < point))
    levels = norm.cdf([2 * z0 - norm.ppf(0.975), 2 * z0 + norm.ppf(0.975)])
    expected = np.quantile(values, levels)
    assert interval("bc", point, torch.tensor(values)) == pytest.approx(tuple(expected))
    assert expected[1] < np.quantile(values, 0.975)  # moved down from the percentile one


def test_ece_type_intervals_are_the_inverted_ones_where_given_else_the_bootstrap_rule():
    from headlab.calibration.inversion import Inverted
    from headlab.calibration.posthoc import with_intervals

    values = torch.tensor(np.random.default_rng(4).normal(0.012, 0.002, 999))
    point = {"smece": 0.010, "ece": 0.011}
    resampled = {"smece": values, "ece": values}
    out = with_intervals("test/", "", point, resampled, 0.95, {"smece": Inverted(0.0, 0.02, 0.004)})
    assert (out["test/smece_ci_low"], out["test/smece_ci_high"]) == (0.0, 0.02)
    assert out["test/smece_debiased"] == 0.004 and "test/ece_debiased" not in out
    assert (out["test/ece_ci_low"], out["test/ece_ci_high"]) == reported("ece", 0.011, values)


def test_inversion_ends_on_hand_built_tail_curves():
    from headlab.calibration.inversion import first_reaching, last_not_above

    theta = [0.0, 0.01, 0.02, 0.03]
    upper = [0.004, 0.012, 0.020, 0.028]  # the 97.5 % tail of the estimate at each truth
    lower = [0.001, 0.006, 0.014, 0.022]
    assert first_reaching(theta, upper, 0.016) == pytest.approx(0.015)  # halfway 0.012-0.020
    assert first_reaching(theta, upper, 0.003) == 0.0  # calibrated not rejected: down to 0
    assert first_reaching(theta, upper, 0.05) is None
    assert last_not_above(theta, lower, 0.010) == pytest.approx(0.015)
    assert last_not_above(theta, lower, 0.0005) == 0.0
    assert last_not_above(theta, lower, 0.03) is None  # the grid ends too early


def test_draws_per_candidate_make_the_extremes_exact_tails():
    from headlab.calibration.inversion import draws_for

    assert (draws_for(0.95), draws_for(0.9), draws_for(0.99)) == (39, 19, 199)
    assert draws_for(0.93) == 28  # 1/29 = 0.034 <= 0.035: never a wider tail than asked


def test_recalibration_map_equals_scikit_learn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    from headlab.calibration.inversion import recalibration_map

    rng = np.random.default_rng(6)
    conf = rng.uniform(0.2, 0.999, 5000)
    hit = (rng.random(5000) < conf**1.3).astype(float)
    x = np.log(conf / (1 - conf))[:, None]
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(x, hit)
    got = recalibration_map(torch.tensor(conf), torch.tensor(hit)).numpy()
    assert got == pytest.approx(reference.predict_proba(x)[:, 1], abs=1e-6)


def near_one(n: int = 5000, accuracy: float = 0.93, seed: int = 8):
    """``sigmoid_nll``'s shape: every confidence in [0.997, 1), hits at a fixed rate. All of
    them fall in the last equal-width bin and every gap has the same sign, so the population
    ECE (equal-width and equal-mass alike) is E[c] - accuracy = 0.9985 - 0.93 exactly."""
    rng = np.random.default_rng(seed)
    conf = torch.tensor(1 - 0.003 * rng.random(n))
    hit = torch.tensor((rng.random(n) < accuracy).astype(float))
    return conf, hit, 0.9985 - accuracy


def test_inverted_interval_holds_a_large_ece_when_every_confidence_is_near_one():
    """The run's recalibration curve is fitted where p (1 - p) ~ 0.0015: the unguarded
    Newton fit stepped to g = 1 everywhere and gave [0.0001, 0.0001] for an ECE of 0.07."""
    from headlab.calibration.inversion import inverted_intervals, recalibration_map

    conf, hit, truth = near_one()
    fitted = recalibration_map(conf, hit)
    assert float(fitted.mean()) == pytest.approx(float(hit.mean()), abs=1e-8)  # the MLE's score
    observed = {"ece": numpy_ece(conf.numpy(), hit.numpy()), "ece_adaptive": 0.0}
    observed["ece_adaptive"] = observed["ece"]  # one sign of gap: the bins do not matter
    got = inverted_intervals(conf, hit, observed, seed=1)
    for name in observed:
        assert got[name].low <= truth <= got[name].high, (name, got[name])
        assert got[name].low <= observed[name] <= got[name].high


def test_a_degenerate_family_falls_back_to_the_bootstrap_rule_and_says_so(monkeypatch):
    """A family of truths that cannot reach the estimate (here the old fit's g = 1, which
    caps every candidate's ECE at E[1 - c] = 0.0015) is left out of the inversion, and the
    run reports the bootstrap rule for it, with ``_ci_method``; it holds the truth."""
    from headlab.calibration import inversion
    from headlab.calibration.posthoc import with_intervals

    conf, hit, truth = near_one()
    observed = {"ece": numpy_ece(conf.numpy(), hit.numpy())}
    normal = inversion.inverted_intervals(conf, hit, observed, seed=1)
    monkeypatch.setattr(inversion, "recalibration_map", lambda c, h: torch.ones_like(c))
    assert inversion.inverted_intervals(conf, hit, observed, seed=1) == {}
    values = torch.tensor(np.random.default_rng(2).normal(observed["ece"], 0.003, 999))
    out = with_intervals("test/", "", observed, {"ece": values}, 0.95, {})
    assert out["test/ece_ci_method"] == "bootstrap" and "test/ece_debiased" not in out
    low, high = out["test/ece_ci_low"], out["test/ece_ci_high"]
    assert (low, high) == reported("ece", observed["ece"], values) and low <= truth <= high
    kept = with_intervals("test/", "", observed, {"ece": values}, 0.95, normal)
    assert kept["test/ece_ci_method"] == "inversion"
    assert (kept["test/ece_ci_low"], kept["test/ece_ci_high"]) == normal["ece"][:2]


def null_and_observed(n: int, power: float, seed: int = 3):
    """Sorted confidences, the 39 calibrated label sets the inversion draws at t = 0 (the
    same uniforms: ``torch.rand`` seeded as ``Ray`` and ``run_seed`` document) and hits
    with g(c) = c**power."""
    from headlab.calibration.inversion import run_seed

    rng = np.random.default_rng(seed)
    conf = np.sort(1 - 0.9 * rng.beta(0.5, 6.0, n))
    hit = (rng.random(n) < conf**power).astype(float)
    g = torch.Generator().manual_seed(run_seed(5, torch.tensor(conf), torch.tensor(hit)))
    uniforms = torch.rand(39, n, generator=g, dtype=torch.float64).numpy()
    return conf, [(u < conf).astype(float) for u in uniforms], hit


@pytest.mark.parametrize("power", [1.0, 1.5])
def test_inverted_ece_interval_reaches_zero_exactly_when_calibrated_labels_reach_it(power):
    """The lower end is 0 iff one of the 39 label sets drawn from Bernoulli(confidence)
    scores at least the observed value (the estimator's own consistency test at 95 %):
    recomputed here with NumPy, not the project's estimators."""
    from headlab.calibration.inversion import inverted_intervals

    conf, null_hits, hit = null_and_observed(2000, power)
    observed = {"ece": numpy_ece(conf, hit)}
    got = inverted_intervals(torch.tensor(conf), torch.tensor(hit), observed, seed=5)["ece"]
    reaches = max(numpy_ece(conf, h) for h in null_hits) >= observed["ece"]
    assert (got.low == 0.0) == reaches
    assert got.low <= got.estimate <= got.high and got.high > observed["ece"] / 2
    again = inverted_intervals(torch.tensor(conf), torch.tensor(hit), observed, seed=5)["ece"]
    assert again == got


@pytest.mark.slow
@pytest.mark.parametrize("power", [1.0, 1.6])
def test_inverted_smece_interval_reaches_zero_exactly_when_calibrated_labels_reach_it(power):
    """As for ECE, with relplot's smECE as the reference (~40 s on a loaded machine)."""
    import relplot

    from headlab.calibration.inversion import inverted_intervals

    conf, null_hits, hit = null_and_observed(800, power)
    observed = {"smece": float(relplot.smECE(conf, hit))}
    got = inverted_intervals(torch.tensor(conf), torch.tensor(hit), observed, seed=5)["smece"]
    reaches = max(relplot.smECE(conf, h) for h in null_hits) >= observed["smece"] - 1e-4
    assert (got.low == 0.0) == reaches
    assert got.low <= got.estimate <= got.high


def numpy_ece(conf: np.ndarray, hit: np.ndarray, n_bins: int = 15) -> float:
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    gaps = np.bincount(bins, hit - conf, minlength=n_bins)
    return float(np.abs(gaps).sum() / len(conf))


def test_consistency_test_flags_miscalibration_and_passes_calibrated_predictions():
    rng = np.random.default_rng(2)
    conf = torch.tensor(rng.uniform(0.5, 1.0, 3000))
    hits = torch.tensor((rng.random(3000) < conf.numpy()).astype(float))
    for observed_hits, small in ((hits, False), (torch.ones(3000, dtype=torch.float64), True)):
        ones = torch.ones(1, 3000, dtype=torch.float64)
        from headlab.calibration.estimators import equal_width_ece

        observed = {
            "ece": float(equal_width_ece(conf, observed_hits, ones, 15)[0]),
            "ece_adaptive": float(equal_mass_ece(conf, observed_hits, ones, 15)[0]),
        }
        p = p_calibrated(conf, observed, n_resamples=200, seed=0)
        for name, value in p.items():
            assert (value == pytest.approx(1 / 201)) if small else value > 0.05, name


def test_mean_std_is_one_format():
    assert mean_std([0.95, 0.97]) == "0.9600 ± 0.0141"
    assert mean_std([0.95]) == "0.9500"
    assert mean_std([float("nan")]) == "—" and mean_std([]) == "—"


def test_augrc_is_the_mean_generalized_risk_and_averages_tie_orders():
    from headlab.calibration.selective import augrc

    rng = np.random.default_rng(3)
    conf = rng.random(50)
    error = (rng.random(50) < 0.3).astype(float)
    order = np.argsort(-conf)
    textbook = (np.cumsum(error[order]) / 50).mean()  # no ties: errors among top k, / N
    assert augrc(torch.tensor(conf), torch.tensor(error)) == pytest.approx(textbook)
    tied = np.array([0.9, 0.9, 0.9, 0.5, 0.5])
    miss = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
    orders = [
        np.concatenate([np.array(a), 3 + np.array(b)])
        for a in itertools.permutations(range(3))
        for b in itertools.permutations(range(2))
    ]
    brute = np.mean([(np.cumsum(miss[o]) / 5).mean() for o in orders])
    assert augrc(torch.tensor(tied), torch.tensor(miss)) == pytest.approx(brute)


def load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_coverage_script_prints_one_json_line_per_estimator_and_method(capsys):
    import json

    coverage = load_script("coverage")
    argv = ["--reps", "1", "--n", "300", "--resamples", "50", "--population", "20000"]
    gens = ["--generators", "mnist_calibrated", "softmax_over_1.1"]
    assert coverage.main([*argv, *gens]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    intervals = [r for r in lines if "interval" in r]
    comparisons = [r for r in lines if "comparison" in r]
    assert len(intervals) == 2 * 6 and len(comparisons) == 4 * 3
    assert {r["estimator"] for r in intervals} == set(coverage.INTERVAL_ESTIMATORS)
    assert all(r["interval"] == "reported" and r["reported"] for r in intervals)
    assert {"estimator", "generator", "n", "reps", "coverage", "mean_width"} <= set(intervals[0])
    assert all(0 <= r["coverage"] <= 1 and r["mean_width"] >= 0 for r in intervals)
    # the population of a calibrated generator is 0 for every ECE-type estimator
    assert all(
        r["population"] == 0
        for r in intervals
        if r["generator"] == "mnist_calibrated" and r["estimator"] in ("ece", "smece")
    )
    assert {r["comparison"] for r in comparisons} == {
        "headlab",
        "t",
        "two_level",
        "test_samples_only",
    }


@pytest.mark.slow
def test_coverage_of_the_documented_example_generator_runs(capsys, monkeypatch):
    import json

    coverage = load_script("coverage")
    monkeypatch.chdir(ROOT)
    argv = ["--generator", "docs/coverage_generator.py:QUICK", "--reps", "2", "--n", "400"]
    assert coverage.main([*argv, "--resamples", "50"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["estimator"] for r in lines] == [
        "acc",
        "ece",
        "ece_adaptive",
        "smece",
        "brier",
        "nll",
    ]
    assert {r["generator"] for r in lines} == {"docs/coverage_generator.py:QUICK"}
    assert all(r["reps"] == 2 and r["coverage"] in (0.0, 0.5, 1.0) for r in lines)


GENERATOR_FILE = """
import numpy as np
class Fixed:
    truth = {TRUTH}
    def sample(self, n, rng):
        c = np.full(n, 0.9)
        probs = np.stack([c, 1 - c], axis=1)
        return probs, (rng.random(n) > c).astype(int)
GEN = Fixed()
NOT_ONE = 3
"""


@pytest.mark.parametrize(
    ("spec", "truth", "says"),
    [
        ("gen.py", "{}", "--generator 'gen.py': write it as FILE.py:NAME"),
        ("missing.py:GEN", "{}", "--generator 'missing.py:GEN': no file missing.py"),
        ("gen.py:OTHER", "{}", "--generator 'gen.py:OTHER': gen.py defines no OTHER"),
        (
            "gen.py:NOT_ONE",
            "{}",
            "--generator 'gen.py:NOT_ONE': NOT_ONE needs a method sample(n, rng) and a dict truth",
        ),
        (
            "gen.py:GEN",
            "{'ece': 0.0, 'sharpness': 1.0}",
            "--generator 'gen.py:GEN': truth names sharpness; known: " + ", ".join(ESTIMATORS),
        ),
    ],
)
def test_coverage_script_refuses_a_bad_generator_in_one_line(
    tmp_path, capsys, monkeypatch, spec, truth, says
):
    coverage = load_script("coverage")
    (tmp_path / "gen.py").write_text(GENERATOR_FILE.replace("{TRUTH}", truth))
    monkeypatch.chdir(tmp_path)
    assert coverage.main(["--generator", spec]) == 2
    assert capsys.readouterr().err == f"error: {says}\n"


def test_coverage_on_a_generator_file_counts_the_intervals_that_hold_its_truth(
    tmp_path, capsys, monkeypatch
):
    """Two hand-checkable cases: a constant confidence 0.9 whose accuracy is 0.9 (truth
    0.9, held by a percentile interval nearly always) and a made-up truth of 0.5 (never)."""
    import json

    coverage = load_script("coverage")
    (tmp_path / "gen.py").write_text(GENERATOR_FILE.replace("{TRUTH}", "{'acc': 0.9}"))
    (tmp_path / "far.py").write_text(GENERATOR_FILE.replace("{TRUTH}", "{'acc': 0.5}"))
    monkeypatch.chdir(tmp_path)
    argv = ["--generator", "gen.py:GEN", "--generator", "far.py:GEN", "--reps", "3"]
    assert coverage.main([*argv, "--n", "2000", "--resamples", "200"]) == 0
    near, far = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (near["generator"], near["estimator"], near["coverage"]) == ("gen.py:GEN", "acc", 1.0)
    assert (far["coverage"], far["miss_above"]) == (0.0, 1.0)  # every interval above 0.5
    assert 0.02 < near["mean_width"] < 0.035  # 2 x 1.96 x sqrt(0.09 / 2000) = 0.026


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--margin", "ece=0"], "margin for ece must be > 0"),
        (["--margin", "ece"], "--margin takes NAME=VALUE"),
        (["--method", "bayes"], "unknown comparison method(s) 'bayes'"),
    ],
)
def test_compare_script_refuses_bad_settings_in_one_line(tmp_path, capsys, monkeypatch, args, says):
    compare = load_script("compare")
    monkeypatch.setattr("sys.argv", ["compare.py", str(tmp_path), *args])
    assert compare.main() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and err.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_report_with_two_shared_seeds_says_why_it_gives_no_verdict(tmp_path):
    from headlab.sweeps.study.report import write_report
    from tests.test_report import predictions, write_job

    sweep = tmp_path / "sweep"
    for num, (head, seed) in enumerate(itertools.product(("softmax", "soft"), (1, 2))):
        probs, targets = predictions(seed, 0.99 if head == "softmax" else 0.9, 0.9)
        write_job(sweep, num, head, seed, probs, targets)
    report = write_report(sweep, settings=ComparisonSettings.build(estimators=("acc", "ece")))
    text = report.read_text()
    assert "| soft | 2 | no verdict: 2 shared seed(s) < 3 |" in text
    assert "a verdict needs at least 3 shared seeds" in text


@pytest.mark.slow
def test_inverted_intervals_cover_held_out_truths_near_calibration():
    """Three generators not used in choosing the method (other confidences, population ECE
    ~0.002-0.006, over- and under-confident), 20 test sets each: pooled over 60, coverage
    0.95 would fall below 52/60 with probability ~0.005, 0.75 (the old smooth-ECE interval)
    reach it with ~0.02. ~60 s on 2 quiet cores."""
    from headlab.calibration.estimators import ECE_TYPE, top_label
    from headlab.calibration.inversion import inverted_intervals
    from headlab.calibration.simulate import Generator, population

    held = dict.fromkeys(ECE_TYPE, 0)
    for number, power in enumerate((1.07, 0.93, 1.2)):
        gen = Generator(f"held_out_{power}", 0.4, 12.0, near_one=True, power=power)
        truth = population(gen, ECE_TYPE, 150_000, seed=50 + number)
        assert 0.0015 < truth["ece"] < 0.007
        rng = np.random.default_rng(60 + number)
        for _ in range(20):
            probs, targets = gen.sample(4000, rng)
            point = scores(probs, targets, estimators=ECE_TYPE)
            confidence, hit = top_label(probs, targets)
            for name, (low, high, _) in inverted_intervals(confidence, hit, point).items():
                held[name] += low <= truth[name] <= high
                assert high - low < 0.02
    assert all(count >= 52 for count in held.values()), held


@pytest.mark.slow
def test_coverage_script_scores_the_intervals_metrics_json_reports(tmp_path):
    """``scripts/coverage.py`` measures what a run writes: its per-run intervals equal
    the post-test analysis's ``test/<m>_ci_low/high`` on the same predictions."""
    from headlab.calibration.posthoc import Analysis
    from headlab.heads import SoftmaxCE
    from tests.test_calibrators import overconfident

    val, test = overconfident(500, seed=1), overconfident(1500, seed=2)
    settings = Settings(bootstrap=100, methods=("temperature",), seed=4)
    metrics = Analysis(SoftmaxCE(), settings, tmp_path).run(val, test, "index")
    coverage = load_script("coverage")
    probs = SoftmaxCE().probs(test[0])
    names = coverage.INTERVAL_ESTIMATORS
    index = resample_index(1500, 100, seed=4)
    got = coverage.run_intervals(probs, test[1], names, index, 0.95, seed=4)
    for name in names:
        expected = (metrics[f"test/{name}_ci_low"], metrics[f"test/{name}_ci_high"])
        assert got[name] == pytest.approx(expected, abs=1e-12), name
    assert metrics["test/ece_ci_low"] > 0  # far too sharp: "calibrated" is rejected
