"""Does the head comparison find a small true ECE difference? A simulation of whole studies.

`python scripts/paired_simulation.py [--studies 200] [--seeds 5] [--powers 1.185 1.07]
[--estimator ece|ece_adaptive|smece]`

Two heads, S seeds each, all tested on ONE shared test set (n samples): a latent difficulty
and the label's uniform draw are shared by every run, so runs miss the same samples.
A run's top-label confidence is c = 1 - 0.9 x with x ~ Beta(0.5, 15) (MNIST-like, as
``calibration.simulate``), reached through a Gaussian copula of the shared difficulty and
the run's own noise; its hit is drawn with probability c^p, p = the head's power plus a
seed-to-seed N(0, spread). The truth is the *procedure's* difference: the population value
of the estimator (``calibration.simulate.population`` on 400,000 draws per power) averaged
over the seed distribution of p, head a minus head b.

Per study, each estimator is compared exactly as the report does (``paired_difference``:
t with the shared test-set variance, two-level bootstrap with one shared resample row, the
wider interval); one JSON line per estimator: the truth, the mean reported difference, how
often the 95 % interval held the truth, how often "equivalent ±margin" (TOST, unadjusted,
one cell; ``--cells K``: at 0.05 / K, the strictest Holm step of a K-cell report) and
"different" (p < 0.05, unadjusted) were declared. Variants of the chosen
``--estimator``:

* ``plugin_before`` (ece only): plug-in ECE with the comparison as it was (independent
  resample rows per seed, basic interval, no shared test-set variance in the t-interval);
* ``plugin``: the plug-in value, today's comparison;
* ``bootstrap_bc``: the run-level bootstrap bias correction each run writes (``*_bc``);
* ``debiased`` (ece, ece_adaptive): ``sweeps.study.debiased``'s per-bin correction (what
  the report compares for them);
* ``median_unbiased`` (smece): the test inversion's median-unbiased estimate, its resampled
  values shifted by the same amount (what the report compares for smece).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from scipy import stats

from headlab.calibration.bins import bin_sums, ece_of_sums
from headlab.calibration.bootstrap import counts_of, resample_index
from headlab.calibration.estimators import equal_mass_ece
from headlab.calibration.simulate import Generator, population
from headlab.calibration.smooth import smooth_ece
from headlab.sweeps.study.debiased import (
    debiased_ece_adaptive,
    debiased_ece_of_sums,
    median_unbiased_shift,
)
from headlab.sweeps.study.paired import N_DRAWS, paired_difference, t_interval

VARIANTS = {
    "ece": ("plugin_before", "plugin", "bootstrap_bc", "debiased"),
    "ece_adaptive": ("plugin", "bootstrap_bc", "debiased"),
    "smece": ("plugin", "bootstrap_bc", "median_unbiased"),
}
SHAPE = (0.5, 15.0)  # Beta(a, b) of x, c = 1 - 0.9 x
CORRELATION = 0.8  # of the runs' confidences through the shared difficulty


def population_ece(powers: np.ndarray, m: int, seed: int, name: str = "ece") -> np.ndarray:
    """Population value of ``name`` at g(c) = c^p for each power, on the same m draws."""
    return np.array(
        [
            population(Generator("p", *SHAPE, near_one=True, power=p), (name,), m, seed)[name]
            for p in powers
        ]
    )


def procedure_truth(power: float, spread: float, grid: np.ndarray, ece: np.ndarray) -> float:
    """E over the seed distribution N(power, spread^2) of the population ECE (Gauss-Hermite)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(41)
    values = np.interp(power + spread * nodes, grid, ece)
    return float((weights * values).sum() / weights.sum())


def study(rng, n, seeds, powers, spread, beta_table):
    """(confidence, hit) of every run: heads x seeds, one shared test set."""
    difficulty = rng.normal(size=n)
    chance = rng.random(n)
    runs = []
    for power in powers:
        head = []
        for _ in range(seeds):
            latent = CORRELATION * difficulty + np.sqrt(1 - CORRELATION**2) * rng.normal(size=n)
            x = np.interp(stats.norm.cdf(latent), beta_table[0], beta_table[1])
            c = np.clip(1 - 0.9 * x, 0.1 + 1e-9, 1.0)
            p = power + spread * rng.normal()
            head.append((torch.from_numpy(c), torch.from_numpy((chance < c**p).astype(float))))
        runs.append(head)
    return runs


def run_values(confidence, hit, counts, estimator="ece", seed=0):
    """Each variant of ``estimator`` on the full sample (float) and on the resample rows (B,)."""
    ones = torch.ones(1, len(hit), dtype=torch.float64)
    if estimator == "ece":
        full = bin_sums(confidence, hit, None, 15)
        rows = bin_sums(confidence, hit, counts, 15)
        plug, plug_rows = float(ece_of_sums(*full)[0]), ece_of_sums(*rows)
        debiased = (float(debiased_ece_of_sums(*full)[0]), debiased_ece_of_sums(*rows))
    elif estimator == "ece_adaptive":
        plug = float(equal_mass_ece(confidence, hit, ones, 15)[0])
        plug_rows = equal_mass_ece(confidence, hit, counts, 15)
        debiased = (
            float(debiased_ece_adaptive(confidence, hit)[0]),
            debiased_ece_adaptive(confidence, hit, counts),
        )
    else:
        plug = float(smooth_ece(confidence, hit, ones)[0])
        plug_rows = smooth_ece(confidence, hit, counts)
        shift = median_unbiased_shift(confidence, hit, "smece", plug, seed)
        shift = 0.0 if shift is None else shift
        debiased = (plug - shift, plug_rows - shift)
    bc = 2 * plug - float(plug_rows.mean())
    out = {
        "plugin": (plug, plug_rows),
        "bootstrap_bc": (bc, plug_rows - (float(plug_rows.mean()) - plug)),
    }
    out["median_unbiased" if estimator == "smece" else "debiased"] = debiased
    return out


def before(per_seed: np.ndarray, rows: torch.Tensor, margin: float, seed: int):
    """The comparison as it was: independent rows per seed, basic interval, plain t."""
    t = t_interval(per_seed, margin)
    rng = np.random.default_rng(seed)
    n_seeds, n_rows = rows.shape
    pick_s = torch.from_numpy(rng.integers(0, n_seeds, (N_DRAWS, n_seeds)))
    pick_r = torch.from_numpy(rng.integers(0, n_rows, (N_DRAWS, n_seeds)))
    draws = 2 * per_seed.mean() - rows[pick_s, pick_r].mean(dim=1)
    low, high = np.quantile(draws.numpy(), [0.025, 0.975])
    equivalent = max(
        float((draws <= -margin).double().mean()), float((draws >= margin).double().mean())
    )
    different = 2 * min(float((draws <= 0).double().mean()), float((draws >= 0).double().mean()))
    return (
        min(t.low, low),
        max(t.high, high),
        max(t.p_equivalent, equivalent),
        max(t.p_different, different),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n", type=int, default=10000, help="shared test samples")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--powers", type=float, nargs=2, default=(1.185, 1.07))
    parser.add_argument("--spread", type=float, default=0.05, help="seed sd of the power")
    parser.add_argument("--margin", type=float, default=0.002)
    parser.add_argument("--population", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--estimator", choices=tuple(VARIANTS), default="ece")
    parser.add_argument(
        "--cells", type=int, default=1, help="read 'equivalent' at 0.05 / cells (Holm's strictest)"
    )
    args = parser.parse_args(argv)
    if min(args.studies, args.cells) < 1 or args.seeds < 3 or min(args.n, args.resamples) < 100:
        print(
            "error: need --studies >= 1, --cells >= 1, --seeds >= 3, --n >= 100, "
            "--resamples >= 100",
            file=sys.stderr,
        )
        return 2
    torch.set_num_threads(1)
    grid = np.linspace(0.6, 1.8, 121)
    ece = population_ece(grid, args.population, args.seed + 1000, args.estimator)
    truths = [procedure_truth(p, args.spread, grid, ece) for p in args.powers]
    truth = truths[0] - truths[1]
    u = np.linspace(0, 1, 20001)
    beta_table = (u, stats.beta.ppf(u, *SHAPE))
    counts = counts_of(resample_index(args.n, args.resamples, args.seed), args.n)
    rng = np.random.default_rng(args.seed)
    variants = VARIANTS[args.estimator]
    found = {e: {"point": [], "covered": [], "equivalent": [], "different": []} for e in variants}
    for number in range(args.studies):
        a, b = study(rng, args.n, args.seeds, args.powers, args.spread, beta_table)
        values = [
            [run_values(c, h, counts, args.estimator, args.seed) for c, h in head]
            for head in (a, b)
        ]
        for name in variants:
            key = "plugin" if name == "plugin_before" else name
            per_seed = np.array([va[key][0] - vb[key][0] for va, vb in zip(*values, strict=True)])
            rows = torch.stack([va[key][1] - vb[key][1] for va, vb in zip(*values, strict=True)])
            if name == "plugin_before":
                low, high, p_eq, p_diff = before(per_seed, rows, args.margin, number)
            else:
                d = paired_difference(args.estimator, per_seed, rows, args.margin, seed=number)
                low, high, p_eq, p_diff = d.low, d.high, d.p_equivalent, d.p_different
            record = found[name]
            record["point"].append(per_seed.mean())
            record["covered"].append(low <= truth <= high)
            record["equivalent"].append(p_eq < 0.05 / args.cells)
            record["different"].append(p_diff < 0.05)
    for name, record in found.items():
        line = {
            "estimator": args.estimator,
            "variant": name,
            "truth_a": round(truths[0], 5),
            "truth_b": round(truths[1], 5),
            "true_difference": round(truth, 5),
            "mean_reported": round(float(np.mean(record["point"])), 5),
            "coverage": float(np.mean(record["covered"])),
            "equivalent": float(np.mean(record["equivalent"])),
            "different": float(np.mean(record["different"])),
            "studies": args.studies,
            "seeds": args.seeds,
            "margin": args.margin,
            "cells": args.cells,
        }
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
