"""Coverage of headlab's per-run intervals and false "different" rate of its head comparison.

`python scripts/coverage.py [--reps 200] [--n 10000] [--part intervals|comparison|all]
[--generators NAME ...] [--generator FILE.py:NAME]`

Intervals: predictions from generators with a known population value; per generator and
estimator one JSON line with the share of repetitions whose interval held the population
value (``coverage``), the mean width, and where the misses lay (``miss_above``: the
interval above the truth). The intervals are the ones metrics.json reports
(``posthoc.Analysis.multiclass``): ECE-type by test inversion (``calibration.inversion``),
means (acc, Brier, NLL) by percentile bootstrap. Built-in generators:
``headlab.calibration.simulate.GENERATORS``; population values by large Monte Carlo.

``--generator FILE.py:NAME``: the object ``NAME`` in ``FILE.py`` with ``sample(n, rng) ->
(probs (n, K), targets (n,))`` (rng: a ``numpy.random.Generator``) and a dict ``truth``
of population values per estimator; those estimators are scored (docs/statistics.md,
example: examples/coverage_generator.py).

Comparison: two heads trained by the *same* procedure (seed-to-seed spread of their true
calibration and accuracy, shared test samples with a shared difficulty per sample); per
method one JSON line with the share of studies in which the 95 % interval excluded 0 (a
false "different"; unadjusted, one cell). ``headlab`` is the rule the report uses: the wider
of t and two_level, and every seed agreeing in sign. ``test_samples_only`` is the old one.
Runs single-threaded; docs/statistics.md has the tables and how long they took.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

from headlab.calibration.bootstrap import resample_index
from headlab.calibration.estimators import ECE_TYPE, ESTIMATORS, resampled_scores, scores, top_label
from headlab.calibration.intervals import reported
from headlab.calibration.inversion import inverted_intervals
from headlab.calibration.simulate import GENERATORS, as_predictions, population
from headlab.errors import ConfigValueError
from headlab.sweeps.study.paired import (
    bootstrap_interval,
    t_interval,
    two_level_draws,
)

INTERVAL_ESTIMATORS = ("acc", "ece", "ece_adaptive", "smece", "brier", "nll")
COMPARED = ("acc", "ece", "ece_adaptive")  # smooth ECE: ~1 s per run, 10 runs per study


class BadGenerator(ConfigValueError):
    """A ``--generator`` that cannot be loaded or lacks ``sample`` / ``truth``."""


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def run_intervals(
    probs: torch.Tensor,
    targets: torch.Tensor,
    estimators: tuple[str, ...],
    index: torch.Tensor,
    level: float,
    seed: int,
) -> dict[str, tuple[float, float]]:
    """The intervals metrics.json reports for one run (``posthoc.Analysis.multiclass``)."""
    point = scores(probs, targets, estimators=estimators)
    means = tuple(name for name in estimators if name not in ECE_TYPE)
    out: dict[str, tuple[float, float]] = {}
    if means:
        draws = resampled_scores(probs, targets, index, estimators=means)
        out.update({name: reported(name, point[name], draws[name], level) for name in means})
    confidence, hit = top_label(probs, targets)
    ece_type = {name: point[name] for name in estimators if name in ECE_TYPE}
    inverted = inverted_intervals(confidence, hit, ece_type, level, seed)
    out.update({name: (v.low, v.high) for name, v in inverted.items()})
    left_out = tuple(name for name in ece_type if name not in inverted)  # degenerate family
    if left_out:
        draws = resampled_scores(probs, targets, index, estimators=left_out)
        out.update({name: reported(name, point[name], draws[name], level) for name in left_out})
    return out


def load_generator(spec: str):
    """``FILE.py:NAME`` -> the object, checked for ``sample`` and a ``truth`` dict."""
    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise BadGenerator(f"--generator {spec!r}: write it as FILE.py:NAME")
    if not Path(path).is_file():
        raise BadGenerator(f"--generator {spec!r}: no file {path}")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, name):
        raise BadGenerator(f"--generator {spec!r}: {path} defines no {name}")
    generator = getattr(module, name)
    truth = getattr(generator, "truth", None)
    if not callable(getattr(generator, "sample", None)) or not isinstance(truth, dict):
        raise BadGenerator(
            f"--generator {spec!r}: {name} needs a method sample(n, rng) and a dict truth"
        )
    unknown = sorted(set(truth) - set(ESTIMATORS))
    if unknown or not truth:
        raise BadGenerator(
            f"--generator {spec!r}: truth names {', '.join(unknown) or 'no estimator'}; "
            f"known: {', '.join(ESTIMATORS)}"
        )
    return generator


def coverage_of(
    label: str,
    sample,
    truth: dict[str, float],
    reps: int,
    n: int,
    index: torch.Tensor,
    rng: np.random.Generator,
    level: float,
    seed: int,
) -> None:
    """Repeat: draw a test set, compute the reported intervals, check them against ``truth``;
    one JSON line per estimator."""
    estimators = tuple(name for name in ESTIMATORS if name in truth)
    held = {name: [] for name in estimators}
    above = {name: 0 for name in estimators}
    widths = {name: [] for name in estimators}
    for _ in range(reps):
        probs, targets = sample(n, rng)
        probs, targets = torch.as_tensor(probs).double(), torch.as_tensor(targets).long()
        for name, (low, high) in run_intervals(
            probs, targets, estimators, index, level, seed
        ).items():
            held[name].append(low <= truth[name] <= high)
            above[name] += low > truth[name]
            widths[name].append(high - low)
    for name in estimators:
        emit(
            {
                "estimator": name,
                "interval": "reported",
                "generator": label,
                "population": round(float(truth[name]), 6),
                "n": n,
                "reps": reps,
                "coverage": float(np.mean(held[name])),
                "mean_width": float(np.mean(widths[name])),
                "miss_above": above[name] / reps,
                "reported": True,
            }
        )


def interval_part(args, user_generators) -> None:
    index = resample_index(args.n, args.resamples, args.seed)
    for number, gen in enumerate(GENERATORS):
        if user_generators or (args.generators and gen.name not in args.generators):
            continue
        names = tuple(args.estimators or INTERVAL_ESTIMATORS)
        truth = population(gen, names, args.population, args.seed + 1000 + number)
        rng = np.random.default_rng(args.seed + number)
        coverage_of(gen.name, gen.sample, truth, args.reps, args.n, index, rng, 0.95, args.seed)
    for spec, gen in user_generators:
        rng = np.random.default_rng(args.seed)
        coverage_of(spec, gen.sample, gen.truth, args.reps, args.n, index, rng, 0.95, args.seed)


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
    parser.add_argument("--generators", nargs="*", help="only these built-in generators")
    parser.add_argument(
        "--estimators",
        nargs="*",
        choices=INTERVAL_ESTIMATORS,
        help="only these estimators (built-in generators; default: all six)",
    )
    parser.add_argument(
        "--generator",
        action="append",
        default=[],
        metavar="FILE.py:NAME",
        help="your own generator instead of the built-in ones (repeatable; intervals only)",
    )
    args = parser.parse_args(argv)
    if args.reps < 1 or args.n < 30 or args.seeds < 3 or args.resamples < 1:
        print("error: need --reps >= 1, --n >= 30, --seeds >= 3, --resamples >= 1", file=sys.stderr)
        return 2
    known = {gen.name for gen in GENERATORS}
    if args.generators and not set(args.generators) <= known:
        unknown = ", ".join(sorted(set(args.generators) - known))
        print(
            f"error: unknown generator(s) {unknown}; known: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    try:
        user_generators = [(spec, load_generator(spec)) for spec in args.generator]
    except BadGenerator as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    if args.part in ("intervals", "all"):
        interval_part(args, user_generators)
    if args.part in ("comparison", "all") and not user_generators:
        comparison_part(args.reps, args.n, args.seeds, args.resamples, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
