"""Head differences: TOST seeds needed, knife edges, p never 0, shared test-set noise, the
per-bin debiased ECE, and the report's comparison block (issue 26)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from headlab.sweeps.study.conclusions import comparison_section
from headlab.sweeps.study.debiased import (
    bootstrap_corrected,
    debiased_ece,
    debiased_ece_of_sums,
    folded_bias,
)
from headlab.sweeps.study.paired import (
    MIN_P,
    bootstrap_interval,
    paired_difference,
    seeds_needed,
    shared_test_variance,
    t_interval,
    two_level_draws,
)
from headlab.sweeps.study.verdicts import (
    DIFFERENT,
    INCONCLUSIVE,
    ComparisonSettings,
    Verdict,
    knife_edges,
    verdicts,
)


def sample_with(mean: float, sd: float, n: int) -> np.ndarray:
    """n values whose sample mean and sample sd (ddof 1) are exactly ``mean`` and ``sd``."""
    base = np.arange(n, dtype=float)
    base = (base - base.mean()) / base.std(ddof=1)
    return mean + sd * base


def scipy_tost_passes(values: np.ndarray, margin: float, alpha: float) -> bool:
    lower = stats.ttest_1samp(values, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(values, margin, alternative="less").pvalue
    return max(lower, upper) < alpha


@pytest.mark.parametrize(
    ("mean", "sd", "margin", "alpha"),
    [
        (0.0, 0.0013, 0.002, 0.05 / 64),
        (0.0, 0.0030, 0.002, 0.05 / 64),
        (0.0005, 0.0020, 0.002, 0.05 / 8),
        (-0.0008, 0.0015, 0.002, 0.05),
        (0.0, 0.0020, 0.005, 0.05 / 16),
    ],
)
def test_seeds_needed_equals_the_first_seed_count_scipys_tost_passes(mean, sd, margin, alpha):
    brute = next(
        n for n in range(2, 400) if scipy_tost_passes(sample_with(mean, sd, n), margin, alpha)
    )
    assert seeds_needed(mean, sd, margin, alpha, max_seeds=400) == brute


def test_seeds_needed_says_never_where_shared_test_noise_alone_exceeds_the_margin():
    # se -> sqrt(shared_var) however many seeds: with margin / sqrt(shared_var) below the
    # normal quantile z_(1 - alpha) no t quantile (all above z) is ever reached
    alpha, margin = 0.05 / 8, 0.002
    z = stats.norm.ppf(1 - alpha)
    assert seeds_needed(0.0, 0.002, margin, alpha, shared_var=(margin / z) ** 2 * 1.01) is None
    assert seeds_needed(0.0025, 0.001, margin, alpha) is None  # |d| >= margin
    found = seeds_needed(0.0, 0.002, margin, alpha, shared_var=(margin / z) ** 2 * 0.5)
    assert found is not None and found > seeds_needed(0.0, 0.002, margin, alpha)


def verdict(word: str, p_different: float, p_equivalent: float = 1.0) -> Verdict:
    return Verdict(word, p_different, p_equivalent)


def test_knife_edges_mark_p_near_the_level_and_disagreeing_estimators_of_a_kind():
    found = {
        ("a", "acc"): verdict(DIFFERENT, 0.0498),  # within 1.5x below 0.05
        ("b", "acc"): verdict(INCONCLUSIVE, 0.0555),  # within 1.5x above
        ("c", "acc"): verdict(DIFFERENT, 0.02),  # 2.5x below: clear
        ("d", "acc"): verdict(INCONCLUSIVE, 0.09),  # 1.8x above: clear
        ("e", "acc"): verdict(INCONCLUSIVE, 1.0, 0.06),  # p(equivalent) near the level
        ("f", "ece"): verdict(DIFFERENT, 0.001),  # ECE-type disagree for head f
        ("f", "smece"): verdict(INCONCLUSIVE, 0.3),
        ("g", "ece"): verdict(DIFFERENT, 0.001),  # agree for head g
        ("g", "ece_adaptive"): verdict(DIFFERENT, 0.002),
    }
    marked = {k for k, v in knife_edges(found, 0.95).items() if v.knife_edge}
    assert marked == {("a", "acc"), ("b", "acc"), ("e", "acc"), ("f", "ece"), ("f", "smece")}
    assert "disagree" in knife_edges(found)[("f", "ece")].knife_edge


def test_bootstrap_p_values_are_never_zero_and_follow_the_plus_one_rule():
    draws = torch.linspace(0.01, 0.02, 999)  # every draw above 0 and beyond ±0.005
    got = bootstrap_interval("acc", 0.015, draws, margin=0.005)
    assert got.p_different == pytest.approx(2 * 1 / 1000)
    # TOST: the larger one-sided p, draws >= +margin: all 999 -> (999 + 1) / 1000
    assert got.p_equivalent == pytest.approx(1.0)
    inside = bootstrap_interval("acc", 0.0, torch.linspace(-0.001, 0.001, 999), margin=0.005)
    assert inside.p_equivalent == pytest.approx(1 / 1000)
    far = paired_difference(
        "acc", np.array([0.3, 0.31, 0.32, 0.29]), torch.full((4, 50), 0.3), 0.002
    )
    assert far.p_different > 0 and all(i.p_different > 0 for i in far.intervals)


#: two seeds, two shared resample rows: small enough to enumerate every bootstrap draw
TINY = torch.tensor([[0.0, 2.0], [1.0, 5.0]])


def test_shared_row_bootstrap_se_equals_the_enumerated_value():
    # each draw: a row r (shared), seeds i, j with replacement; value (x[i,r] + x[j,r]) / 2;
    # row 0 gives 0, .5, .5, 1; row 1 gives 2, 3.5, 3.5, 5: mean 2, E[v^2] = 55 / 8,
    # variance 2.875. Independent rows per seed would give 3.5 / 2 = 1.75 (SE 1.29x smaller).
    draws = two_level_draws(TINY, 200_000, seed=3)
    assert set(draws.unique().tolist()) == {0.0, 0.5, 1.0, 2.0, 3.5, 5.0}  # never 2.5
    assert float(draws.var()) == pytest.approx(2.875, rel=0.02)


def test_shared_test_variance_enters_the_t_interval_as_computed_by_hand():
    # rows as observations: seed 0 (0, 2), seed 1 (1, 5): covariance (-1)(-2) + (1)(2) = 4
    assert shared_test_variance(TINY) == pytest.approx(4.0)
    d = np.array([0.001, 0.003, 0.002])
    got = t_interval(d, 0.002, 0.95, shared_var=1e-6)
    se = math.sqrt(d.var(ddof=1) / 3 + 1e-6)
    half = stats.t.ppf(0.975, 2) * se
    assert (got.low, got.high) == pytest.approx((0.002 - half, 0.002 + half), abs=1e-15)
    assert got.p_different == pytest.approx(2 * stats.t.sf(0.002 / se, 2), rel=1e-12)


def test_folded_bias_equals_scipys_folded_normal_mean():
    t = np.array([0.0, 0.3, 1.0, 2.5, 6.0])
    expected = stats.foldnorm(t).mean() - t
    assert folded_bias(torch.from_numpy(t)).numpy() == pytest.approx(expected, abs=1e-12)


def test_debiased_bin_takes_the_folded_normal_bias_off_twice():
    # one bin of 101 predictions, 60 hits, confidences summing to 50
    count, conf, hits = torch.tensor([101.0]), torch.tensor([50.0]), torch.tensor([60.0])
    p = 60 / 101
    s = math.sqrt(p * (1 - p) / 100)
    r = (10 / 101) / s

    def bias(t: float) -> float:
        return float(stats.foldnorm(t).mean()) - t

    once = r - bias(r)
    twice = r - bias(max(once, 0.0))
    assert float(debiased_ece_of_sums(count, conf, hits)) == pytest.approx(s * twice, rel=1e-10)


def test_debiased_ece_weights_equal_repeating_the_samples():
    rng = np.random.default_rng(0)
    confidence = torch.from_numpy(rng.uniform(0.5, 1.0, 40))
    hit = torch.from_numpy((rng.random(40) < confidence.numpy()).astype(float))
    counts = torch.from_numpy(rng.integers(0, 3, (4, 40)).astype(float))
    rows = debiased_ece(confidence, hit, counts)
    for row, weights in zip(rows, counts, strict=True):
        repeat = weights.long()
        again = debiased_ece(confidence.repeat_interleave(repeat), hit.repeat_interleave(repeat))
        assert float(row) == pytest.approx(float(again[0]), abs=1e-12)


def numpy_debiased_bin(count: int, gap_sum: float, hits: float) -> float:
    """One bin's debiased |gap| by the formula of ``sweeps.study.debiased``, via scipy."""
    p = hits / count
    if p in (0.0, 1.0):  # no spread to estimate s from: the plug-in |gap|
        return abs(gap_sum / count)
    s = math.sqrt(p * (1 - p) / (count - 1))
    r = abs(gap_sum / count) / s

    def bias(t: float) -> float:
        return float(stats.foldnorm(t).mean()) - t

    return s * (r - bias(max(r - bias(r), 0.0)))


def test_debiased_adaptive_ece_equals_a_numpy_loop_over_equal_mass_bins():
    from headlab.sweeps.study.debiased import debiased_ece_adaptive

    rng = np.random.default_rng(5)
    n = 152  # 15 bins of 10 or 11 (numpy.array_split), no ties
    conf = rng.uniform(0.5, 1.0, n)
    hit = (rng.random(n) < conf**1.4).astype(float)
    order = np.argsort(conf)
    total = 0.0
    for part in np.array_split(order, 15):
        total += len(part) * numpy_debiased_bin(
            len(part), float((hit[part] - conf[part]).sum()), float(hit[part].sum())
        )
    got = debiased_ece_adaptive(torch.from_numpy(conf), torch.from_numpy(hit))
    assert float(got[0]) == pytest.approx(total / n, rel=1e-10)


def test_debiased_adaptive_ece_weights_equal_repeating_the_samples():
    from headlab.calibration.bootstrap import counts_of, resample_rows
    from headlab.sweeps.study.debiased import debiased_ece_adaptive

    rng = np.random.default_rng(0)
    confidence = torch.from_numpy(rng.uniform(0.5, 1.0, 60))
    hit = torch.from_numpy((rng.random(60) < confidence.numpy()).astype(float))
    counts = counts_of(resample_rows(60, 4, 1), 60)  # resample rows: every row sums to 60
    rows = debiased_ece_adaptive(confidence, hit, counts)
    for row, weights in zip(rows, counts, strict=True):
        repeat = weights.long()
        again = debiased_ece_adaptive(
            confidence.repeat_interleave(repeat), hit.repeat_interleave(repeat)
        )
        assert float(row) == pytest.approx(float(again[0]), abs=1e-12)


def test_report_pairs_debiased_adaptive_ece_and_median_unbiased_smece(tmp_path):
    """``Scores.compared_pair``: ece_adaptive per-bin debiased on the report's rows, smece
    the inversion's median-unbiased estimate with its resamples shifted by the same amount."""
    from types import SimpleNamespace

    from headlab.calibration.bootstrap import counts_of, resample_index
    from headlab.calibration.estimators import scores, top_label
    from headlab.calibration.inversion import inverted_intervals
    from headlab.sweeps.study.debiased import debiased_ece_adaptive
    from headlab.sweeps.study.report import Scores

    rng = np.random.default_rng(3)
    conf = 1 - 0.9 * rng.beta(0.5, 6.0, 600)
    probs = np.repeat(((1 - conf) / 9)[:, None], 10, axis=1)
    probs[:, 0] = conf
    targets = np.where(rng.random(600) < conf**1.3, 0, 1)
    settings = ComparisonSettings.build(estimators=("ece_adaptive", "smece"))
    report = Scores(settings)
    run = report.id_of(SimpleNamespace(predictions=(probs, targets), path=tmp_path))
    point, rows = report.compared_pair(run)
    p, t = torch.from_numpy(probs), torch.from_numpy(targets)
    confidence, hit = top_label(p, t)
    counts = counts_of(resample_index(600, settings.n_resamples, settings.seed), 600)
    assert point["ece_adaptive"] == pytest.approx(float(debiased_ece_adaptive(confidence, hit)[0]))
    assert torch.allclose(rows["ece_adaptive"], debiased_ece_adaptive(confidence, hit, counts))
    plug = scores(p, t, estimators=("smece",))["smece"]
    median = inverted_intervals(confidence, hit, {"smece": plug}, seed=settings.seed)["smece"]
    assert point["smece"] == pytest.approx(median.estimate, abs=1e-12)
    assert torch.allclose(rows["smece"], report.resampled(run)["smece"] - (plug - median.estimate))


def test_bootstrap_corrected_is_two_theta_minus_the_mean_and_keeps_the_spread():
    rows = torch.tensor([0.010, 0.014, 0.012])
    point, shifted = bootstrap_corrected(0.011, rows)
    assert point == pytest.approx(2 * 0.011 - 0.012)
    assert shifted.tolist() == pytest.approx([0.009, 0.013, 0.011])


def test_comparison_block_states_margins_families_knife_edges_and_seeds_needed():
    rng = np.random.default_rng(1)
    names = ("acc", "ece")
    point = {
        run: {"acc": 0.97 + 0.001 * rng.normal(), "ece": 0.004 + 0.0005 * rng.normal()}
        for run in range(10)
    }
    rows = {
        run: {m: torch.from_numpy(v + 0.0003 * rng.normal(size=1000)) for m, v in p.items()}
        for run, p in point.items()
    }
    settings = ComparisonSettings.build(estimators=names)
    pairs = {"poly": [(s, s + 5) for s in range(5)]}
    groups = {"softmax": [], "poly": []}
    text = "\n".join(
        comparison_section(
            "softmax", groups, pairs.__getitem__, point.__getitem__, rows.__getitem__, settings
        )
    )
    assert "Margins m: acc ±0.002, ece ±0.002" in text
    assert "family-wise 95% confidence for each family" in text
    assert "`ece`: per-bin debiased" in text
    assert "| head | seeds now | acc | ece |" in text
    row = next(
        line for line in text.splitlines() if line.startswith("| poly | 5 | ") and "p " in line
    )
    assert all(" p " in c for c in row.split("|")[3:-1])


def test_t_interval_without_any_spread_gives_the_smallest_p_not_zero():
    same = t_interval(np.array([0.001, 0.001, 0.001]), 0.002)
    assert same.p_different == MIN_P and same.p_equivalent == MIN_P
    assert t_interval(np.zeros(3), 0.002).p_different == 1.0


def test_seeds_needed_cells_never_hold_a_pipe_that_would_split_the_table():
    from headlab.sweeps.study.conclusions import needed_text
    from headlab.sweeps.study.paired import Difference

    beyond = Difference(0.003, (0.003, 0.0031, 0.0029), ())
    noisy = Difference(0.0, (0.001, -0.001, 0.0), (), shared_var=1e-5)
    assert needed_text(beyond, 0.002, 0.05) == "never (mean beyond ±0.002)"
    assert needed_text(noisy, 0.002, 0.05) == "never (test-set noise)"


def test_seeds_table_says_when_no_cell_can_be_equivalent():
    from headlab.sweeps.study.conclusions import seeds_table
    from headlab.sweeps.study.paired import Difference

    settings = ComparisonSettings.build(estimators=("acc",))
    close = {("poly", "acc"): Difference(0.0, (0.0001, -0.0001, 0.0, 0.0001, -0.0001), ())}
    far = {("poly", "acc"): Difference(0.01, (0.01, 0.011, 0.009, 0.01, 0.01), ())}
    assert "1 of the 1 cells have enough seeds" in "\n".join(
        seeds_table(["poly"], close, {}, settings)
    )
    text = "\n".join(seeds_table(["poly"], far, {}, settings))
    assert "None of the 1 cells has enough seeds" in text
    assert "| poly | 5 | never (mean beyond ±0.002); now —; floor ±0.0000 |" in text


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["ece", "ece_adaptive", "smece"])
def test_paired_simulation_script_prints_one_line_per_variant(capsys, estimator):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "paired_simulation.py"
    spec = importlib.util.spec_from_file_location("paired_simulation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--studies", "2", "--n", "500", "--resamples", "100", "--population", "20000"]
    assert module.main([*args, "--estimator", estimator]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["variant"] for line in lines] == list(module.VARIANTS[estimator])
    assert {line["estimator"] for line in lines} == {estimator}
    assert all(line["true_difference"] > 0 and 0 <= line["coverage"] <= 1 for line in lines)
    assert module.main(["--seeds", "2"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


@pytest.mark.parametrize("cells", [64, 400])
def test_a_clear_difference_is_called_different_in_the_reports_largest_families(cells):
    """Five seeds that all differ by ~10 sd of the test noise, in a family of 64 (the study
    table) or 400 (the off-distribution section) cells: the smallest bootstrap p the two-level
    draws can give must survive Holm, else nothing could ever be *different* (it could not
    with 2,000 draws: 64 x 2/2001 = 0.064)."""
    generator = torch.Generator().manual_seed(0)
    point = np.array([0.050, 0.049, 0.051, 0.0505, 0.0495])
    resampled = torch.from_numpy(point)[:, None] + 0.002 * torch.randn(5, 1000, generator=generator)
    difference = paired_difference("acc", point, resampled.double(), margin=0.002)
    found = verdicts({(f"h{i}", "acc"): difference for i in range(cells)}, margins={"acc": 0.002})
    assert {v.word for v in found.values()} == {DIFFERENT}


def test_t_margin_bound_is_the_margin_where_scipys_tost_starts_to_pass():
    from headlab.sweeps.study.paired import t_margin_bound

    values = np.array([0.0012, -0.0004, 0.0009, 0.0003, 0.0015, -0.0001, 0.0007])
    alpha = 0.05 / 4
    by_hand = abs(values.mean()) + stats.t.ppf(1 - alpha, 6) * values.std(ddof=1) / math.sqrt(7)
    bound = t_margin_bound(values, alpha)
    assert bound == pytest.approx(by_hand, rel=1e-12)
    assert scipy_tost_passes(values, bound * 1.0001, alpha)
    assert not scipy_tost_passes(values, bound * 0.9999, alpha)
    shared = 4e-7  # the shared test-set variance adds to se^2 as in t_interval
    with_shared = abs(values.mean()) + stats.t.ppf(1 - alpha, 6) * math.sqrt(
        values.var(ddof=1) / 7 + shared
    )
    assert t_margin_bound(values, alpha, shared) == pytest.approx(with_shared, rel=1e-12)
    assert t_interval(values, with_shared * 1.0001, shared_var=shared).p_equivalent < alpha


@pytest.mark.parametrize("name", ["acc", "ece"])
def test_bootstrap_margin_bound_is_the_margin_where_the_bootstrap_tost_starts_to_pass(name):
    from headlab.sweeps.study.paired import bootstrap_margin_bound

    draws = torch.from_numpy(np.random.default_rng(3).normal(0.0004, 0.001, 4999))
    alpha = 0.05 / 4
    bound = bootstrap_margin_bound(name, 0.0006, draws, alpha)
    # brute force over the candidate margins: every draw's |value| (the p-value only moves there)
    centred = (0.0006 + draws - draws.mean()) if name == "ece" else draws
    candidates = sorted({abs(float(v)) for v in centred})
    brute = next(
        m
        for m in candidates
        if bootstrap_interval(name, 0.0006, draws, m * (1 + 1e-9)).p_equivalent < alpha
    )
    assert bound == pytest.approx(brute, rel=1e-12)
    assert bootstrap_interval(name, 0.0006, draws, bound).p_equivalent >= alpha


def test_seeds_table_shows_the_smallest_equivalent_margin_computed_by_hand():
    per_seed = {
        "poly": np.array([0.0011, -0.0003, 0.0008, 0.0002, 0.0014, 0.0005]),
        "focal": np.array([0.0031, 0.0024, 0.0040, 0.0019, 0.0035, 0.0028]),
    }
    point = {s: {"acc": 0.97} for s in range(6)}  # softmax runs 0-5
    for h, diffs in enumerate(per_seed.values()):
        for s, d in enumerate(diffs):
            point[6 * (h + 1) + s] = {"acc": 0.97 + d}
    pairs = {head: [(6 * (h + 1) + s, s) for s in range(6)] for h, head in enumerate(per_seed)}
    settings = ComparisonSettings.build(estimators=("acc",), methods=("t",))
    groups = {"softmax": [], "poly": [], "focal": []}
    text = "\n".join(
        comparison_section("softmax", groups, pairs.__getitem__, point.__getitem__, None, settings)
    )
    alpha = 0.05 / 2  # two cells: the strictest Holm step
    seeds_rows = {
        line.split("|")[1].strip(): line
        for line in text.splitlines()
        if line.startswith(("| poly | 6 |", "| focal | 6 |")) and " p " not in line
    }
    for head, diffs in per_seed.items():
        half = stats.t.ppf(1 - alpha, 5) * diffs.std(ddof=1) / math.sqrt(6)
        assert f"; now ±{abs(diffs.mean()) + half:.4f}; floor ±0.0000 |" in seeds_rows[head]


def test_noise_floor_is_the_t_bound_at_mean_zero_as_the_seeds_grow():
    from headlab.sweeps.study.conclusions import noise_floor
    from headlab.sweeps.study.paired import Difference, t_margin_bound

    alpha, shared = 0.05 / 3, 1e-6
    floor = noise_floor(Difference(0.0, (0.001, -0.001, 0.0), (), shared_var=shared), alpha)
    assert floor == pytest.approx(stats.norm.ppf(1 - alpha) * 1e-3, rel=1e-12)
    many = sample_with(0.0, 0.002, 200_000)
    assert t_margin_bound(many, alpha, shared) == pytest.approx(floor, rel=1e-3)
