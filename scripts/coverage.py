"""Coverage of headlab's intervals and false "different" rate of its head comparison.

`python scripts/coverage.py [--reps 200] [--n 10000] [--part intervals|comparison|all]`

Intervals: predictions from generators with a known population value (calibrated and
overconfident; confidences like MNIST's and like a weaker model's, headlab.calibration.
simulate); per estimator and interval type one JSON line with the share of repetitions
whose interval held the population value and the mean width. ``"reported": true`` marks
the interval headlab writes to metrics.json.

Comparison: two heads trained by the *same* procedure (seed-to-seed spread of their true
calibration and accuracy, shared test samples with a shared difficulty per sample); per
method one JSON line with the share of studies in which the 95 % interval excluded 0 (a
false "different"; unadjusted, one cell). ``headlab`` is the rule the report uses: the wider
of t and two_level, and every seed agreeing in sign. ``test_samples_only`` is the old one.
Runs single-threaded; docs/statistics.md has the table and how long it took.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from headlab.calibration.bootstrap import resample_index
from headlab.calibration.consistency import TEST_FOR, p_calibrated
from headlab.calibration.estimators import ECE_TYPE, resampled_scores, scores
from headlab.calibration.intervals import INTERVALS, interval, reported
from headlab.calibration.simulate import GENERATORS, as_predictions, population
from headlab.sweeps.study.paired import (
    bootstrap_interval,
    t_interval,
    two_level_draws,
)

INTERVAL_ESTIMATORS = ("acc", "ece", "ece_adaptive", "smece", "brier", "nll")
COMPARED = ("acc", "ece", "ece_adaptive")  # smooth ECE: ~1 s per run, 10 runs per study


def reported_kind(name: str) -> str:
    """The interval headlab writes to metrics.json (``intervals.reported``)."""
    return "basic_centered_or_zero" if name in ECE_TYPE else "percentile"


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def interval_part(
    reps: int, n: int, resamples: int, seed: int, population_m: int, only=None
) -> None:
    index = resample_index(n, resamples, seed)
    for number, gen in enumerate(GENERATORS):
        if only and gen.name not in only:
            continue
        truth = population(gen, INTERVAL_ESTIMATORS, population_m, seed + 1000 + number)
        rng = np.random.default_rng(seed + number)
        covered: dict[tuple[str, str], list[bool]] = {}
        widths: dict[tuple[str, str], list[float]] = {}
        for _ in range(reps):
            probs, targets = gen.sample(n, rng)
            point = scores(probs, targets, estimators=INTERVAL_ESTIMATORS)
            draws = resampled_scores(probs, targets, index, estimators=INTERVAL_ESTIMATORS)
            p_values = p_calibrated(probs.max(dim=1).values, point, resamples, seed)
            for name in INTERVAL_ESTIMATORS:
                floor = 0.0 if name in ECE_TYPE else None
                bounds = {
                    kind: interval(kind, point[name], draws[name], floor=floor)
                    for kind in INTERVALS
                }
                if name in ECE_TYPE:
                    # candidates: basic and BC, down to 0 unless "calibrated" is rejected
                    p_value = p_values[TEST_FOR[name]]
                    zero = p_value >= 0.05  # "calibrated" not rejected: down to 0
                    for kind in ("basic", "bc"):
                        low, high = bounds[kind]
                        bounds[f"{kind}_or_zero"] = (0.0 if zero else low, high)
                    # earlier candidates: the hull of basic_or_zero and percentile (reported
                    # before), and half the percentile width on each side of the estimate
                    q_low, q_high = bounds["percentile"]
                    hull_low = min(bounds["basic"][0], q_low)
                    bounds["hull"] = (0.0 if zero else hull_low, max(bounds["basic"][1], q_high))
                    half = (q_high - q_low) / 2
                    centered_low = max(point[name] - half, 0.0)
                    bounds["centered_or_zero"] = (0.0 if zero else centered_low, point[name] + half)
                    # what headlab reports: basic's lower end, the centered upper end
                    bounds["basic_centered_or_zero"] = reported(
                        name, point[name], draws[name], p_calibrated=p_value
                    )
                for kind, (low, high) in bounds.items():
                    covered.setdefault((name, kind), []).append(low <= truth[name] <= high)
                    widths.setdefault((name, kind), []).append(high - low)
        for (name, kind), hits in covered.items():
            emit(
                {
                    "estimator": name,
                    "interval": kind,
                    "generator": gen.name,
                    "population": round(truth[name], 6),
                    "n": n,
                    "reps": reps,
                    "coverage": float(np.mean(hits)),
                    "mean_width": float(np.mean(widths[(name, kind)])),
                    "reported": kind == reported_kind(name),
                }
            )


def study_runs(rng: np.random.Generator, n: int, seeds: int):
    """Two heads x ``seeds`` seeds of one training procedure on n shared test samples."""
    difficulty = rng.normal(size=n)
    chance = rng.random(n)  # shared: models tend to miss the same samples
    runs = []
    for _ in range(2 * seeds):
        level = 3.0 + rng.normal(0, 0.15)  # seed-to-seed accuracy
        power = 1.3 + rng.normal(0, 0.05)  # seed-to-seed calibration
        x = 1 / (1 + np.exp(-(level + 1.2 * difficulty + 0.8 * rng.normal(size=n))))
        c = 0.1 + 0.9 * x
        runs.append(as_predictions(c, (chance < c**power).astype(float)))
    return runs[:seeds], runs[seeds:]


def comparison_part(reps: int, n: int, seeds: int, resamples: int, seed: int) -> None:
    index = resample_index(n, resamples, seed)
    rng = np.random.default_rng(seed)
    calls = {m: {e: [] for e in COMPARED} for m in ("headlab", "t", "two_level", "old")}
    for study in range(reps):
        a_runs, b_runs = study_runs(rng, n, seeds)
        point = [[scores(p, t, estimators=COMPARED) for p, t in runs] for runs in (a_runs, b_runs)]
        draws = [
            [resampled_scores(p, t, index, estimators=COMPARED) for p, t in runs]
            for runs in (a_runs, b_runs)
        ]
        for name in COMPARED:
            per_seed = np.array([point[0][s][name] - point[1][s][name] for s in range(seeds)])
            rows = torch.stack([draws[0][s][name] - draws[1][s][name] for s in range(seeds)])
            t = t_interval(per_seed, 1.0)
            two = bootstrap_interval(
                name, float(per_seed.mean()), two_level_draws(rows, 2000, study), 1.0
            )
            old = np.percentile(rows.mean(dim=0).numpy(), [2.5, 97.5])
            signs = {np.sign(v) for v in per_seed}
            stable = len(signs) == 1 and 0 not in signs
            excludes = {
                "t": not t.low <= 0 <= t.high,
                "two_level": not two.low <= 0 <= two.high,
                "old": not old[0] <= 0 <= old[1],
            }
            excludes["headlab"] = excludes["t"] and excludes["two_level"] and stable
            for method, called in excludes.items():
                calls[method][name].append(called)
    labels = {"old": "test_samples_only"}
    for method, per_estimator in calls.items():
        for name, called in per_estimator.items():
            emit(
                {
                    "comparison": labels.get(method, method),
                    "estimator": name,
                    "seeds": seeds,
                    "n": n,
                    "reps": reps,
                    "false_different": float(np.mean(called)),
                }
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="repetitions (studies)")
    parser.add_argument("--n", type=int, default=10000, help="test samples per run")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per head (comparison)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--population", type=int, default=1_000_000, help="draws for truth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=("intervals", "comparison", "all"), default="all")
    parser.add_argument("--generators", nargs="*", help="only these generators (intervals)")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.n < 30 or args.seeds < 3 or args.resamples < 1:
        print("error: need --reps >= 1, --n >= 30, --seeds >= 3, --resamples >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    if args.part in ("intervals", "all"):
        interval_part(
            args.reps, args.n, args.resamples, args.seed, args.population, args.generators
        )
    if args.part in ("comparison", "all"):
        comparison_part(args.reps, args.n, args.seeds, args.resamples, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
