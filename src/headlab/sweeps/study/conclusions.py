"""The report's head-vs-baseline table and the sentences that conclude it, from verdicts.

One cell per (head, estimator): the seed-averaged difference, the wider of the methods'
95 % intervals, and the verdict (``verdicts``). Heads sharing fewer than 3 seeds with the
baseline get no verdict, and the report says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from headlab.sweeps.study.paired import MIN_SEEDS, Difference, TooFewSeeds, paired_difference
from headlab.sweeps.study.verdicts import (
    DIFFERENT,
    EQUIVALENT,
    ComparisonSettings,
    Verdict,
    margin_rule,
    verdicts,
)
from headlab.tables import markdown_table

#: estimators where a lower value is better (accuracy: higher)
HIGHER_IS_BETTER = ("acc",)


def compare_heads(
    pairs: Mapping[str, Sequence[tuple[int, int]]],
    point: Callable[[int], dict[str, float]],
    resampled: Callable[[int], dict[str, torch.Tensor]],
    settings: ComparisonSettings,
) -> tuple[dict[tuple[str, str], Difference], dict[str, str]]:
    """Differences per (head, estimator) over each head's (run, baseline run) pairs, and
    per head the reason it has none (too few shared seeds)."""
    out, refused = {}, {}
    for head, head_pairs in pairs.items():
        for name in settings.estimators:
            per_seed = np.array([point(a)[name] - point(b)[name] for a, b in head_pairs])
            rows = None
            if "two_level" in settings.methods and len(head_pairs) >= MIN_SEEDS:
                rows = torch.stack([resampled(a)[name] - resampled(b)[name] for a, b in head_pairs])
            try:
                out[(head, name)] = paired_difference(
                    name,
                    per_seed,
                    rows,
                    settings.margins[name],
                    settings.methods,
                    settings.level,
                    settings.seed,
                )
            except TooFewSeeds as err:
                refused[head] = str(err)
                break
    return out, refused


def cell(d: Difference, v: Verdict, margin: float) -> str:
    word = {DIFFERENT: "**different**", EQUIVALENT: f"equivalent ±{margin:g}"}.get(
        v.word, "inconclusive" + (f" ({v.reason})" if v.reason else "")
    )
    return f"{d.point:+.4f} [{d.low:+.4f}, {d.high:+.4f}] {word}"


def difference_table(
    heads: Sequence[str],
    differences: Mapping[tuple[str, str], Difference],
    found: Mapping[tuple[str, str], Verdict],
    refused: Mapping[str, str],
    n_seeds: Mapping[str, int],
    settings: ComparisonSettings,
) -> list[str]:
    header = ["head", "seeds", *settings.estimators]
    rows = []
    for head in heads:
        if head in refused:
            cells = [f"no verdict: {n_seeds[head]} shared seed(s) < {MIN_SEEDS}"]
            rows.append([head, str(n_seeds[head]), *cells * len(settings.estimators)])
            continue
        cells = [
            cell(differences[(head, m)], found[(head, m)], settings.margins[m])
            for m in settings.estimators
        ]
        rows.append([head, str(n_seeds[head]), *cells])
    return markdown_table(header, rows)


def sentences(
    baseline: str,
    differences: Mapping[tuple[str, str], Difference],
    found: Mapping[tuple[str, str], Verdict],
    refused: Mapping[str, str],
    settings: ComparisonSettings,
) -> list[str]:
    """The conclusion in words: per estimator, which heads are better/worse than the baseline
    by how much, which are equivalent, where the data cannot tell."""
    lines = []
    level = f"{settings.level:.0%}"
    for name in settings.estimators:
        better, worse, same, unknown = [], [], [], []
        for (head, m), v in found.items():
            if m != name:
                continue
            d = differences[(head, m)]
            if v.word == DIFFERENT:
                good = (d.point > 0) == (name in HIGHER_IS_BETTER)
                (better if good else worse).append(f"`{head}` ({d.point:+.4f})")
            elif v.word == EQUIVALENT:
                same.append(f"`{head}`")
            else:
                unknown.append(f"`{head}`")
        parts = []
        if better:
            parts.append(f"better than `{baseline}`: {', '.join(better)}")
        if worse:
            parts.append(f"worse: {', '.join(worse)}")
        if same:
            parts.append(f"equivalent within ±{settings.margins[name]:g}: {', '.join(same)}")
        if unknown:
            parts.append(f"the data cannot tell: {', '.join(unknown)}")
        if parts:
            lines.append(f"- **{name}**: " + "; ".join(parts) + ".")
    for head, why in refused.items():
        lines.append(f"- `{head}`: no verdict, {why}.")
    if not lines:
        return []
    if not found:
        return ["**Conclusion**: none possible.", "", *lines, ""]
    return [
        f"**Conclusion** (Holm-corrected over the {len(found)} cells of this table, "
        f"family-wise {level} confidence):",
        "",
        *lines,
        "",
    ]


def comparison_section(
    baseline: str,
    groups: Mapping[str, Sequence],
    pairs_of: Callable[[str], list[tuple[int, int]]],
    point: Callable[[int], dict[str, float]],
    resampled: Callable[[int], dict[str, torch.Tensor]],
    settings: ComparisonSettings,
) -> list[str]:
    """The whole difference block of the report's calibration section."""
    if baseline not in groups:
        return [f"No `{baseline}` runs: no paired differences.", ""]
    heads = [h for h in groups if h != baseline]
    pairs = {h: pairs_of(h) for h in heads}
    differences, refused = compare_heads(pairs, point, resampled, settings)
    found = verdicts(differences, settings.level, margin_rule(settings))
    methods = " and ".join(
        {
            "t": "a paired t-interval over per-seed differences (df = S - 1)",
            "two_level": (
                f"a two-level bootstrap (seeds, then {settings.n_resamples} shared test-sample "
                f"resamples; basic interval for ECE-type estimators)"
            ),
        }[m]
        for m in settings.methods
    )
    intro = [
        f"Difference to `{baseline}` (head - {baseline}), averaged over the shared seeds, "
        f"with the wider of {methods}; {settings.level:.0%} intervals, shown unadjusted. "
        f"Verdicts: *different* (Holm-adjusted test excludes 0, every seed agrees in "
        f"sign{', and the interval lies wholly beyond ±m' if settings.beyond_margin else ''}), "
        f"*equivalent ±m* (TOST at margin m, Holm-adjusted), *inconclusive* otherwise. "
        f"Fewer than {MIN_SEEDS} shared seeds: no verdict.",
        "",
    ]
    n_seeds = {h: len(p) for h, p in pairs.items()}
    table = difference_table(heads, differences, found, refused, n_seeds, settings)
    return [
        *intro,
        *table,
        "",
        *sentences(baseline, differences, found, refused, settings),
    ]
