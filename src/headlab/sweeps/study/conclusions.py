"""The report's head-vs-baseline table and the sentences that conclude it, from verdicts.

One cell per (head, estimator): the seed-averaged difference (ECE-type estimators
bias-corrected per run, ``debiased.CORRECTION``), the wider of the methods' 95 % intervals,
both Holm-adjusted p-values and the verdict (``verdicts``); a knife-edge verdict is marked.
A second table says per cell how many seeds the t-TOST would need to show equivalence at
the observed spread and shared test-set noise, the smallest margin at which the cell is
*equivalent* with the seeds it has (so the verdict is informative at any margin) and the
floor the shared test set puts under any margin. Heads sharing fewer than 3 seeds with the
baseline get no verdict, and the report says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from scipy import stats

from headlab.sweeps.study.debiased import CORRECTION
from headlab.sweeps.study.paired import (
    MIN_SEEDS,
    Difference,
    TooFewSeeds,
    paired_difference,
    seeds_needed,
)
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
    per head the reason it has none (too few shared seeds). Each carries its smallest
    *equivalent* margin at the strictest Holm step over the cells that get a verdict."""
    out, refused = {}, {}
    judged = sum(len(p) >= MIN_SEEDS for p in pairs.values()) * len(settings.estimators)
    alpha = strictest_level(settings, judged)
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
                    tost_alpha=alpha,
                )
            except TooFewSeeds as err:
                refused[head] = str(err)
                break
    return out, refused


def strictest_level(settings: ComparisonSettings, cells: int) -> float:
    """One-sided TOST level of the strictest Holm step over ``cells``: (1 - level) / cells.
    A cell passing it is *equivalent* whatever the other cells do (its Holm-adjusted p is at
    most cells x its own p)."""
    return (1 - settings.level) / max(cells, 1)


#: marks a knife-edge verdict in the table
KNIFE = "⚠"


def p_text(p: float) -> str:
    """An adjusted p-value in two significant digits (never 0: bootstrap p is +1-corrected)."""
    return f"{p:.2g}"


def cell(d: Difference, v: Verdict, margin: float) -> str:
    word = {DIFFERENT: "**different**", EQUIVALENT: f"equivalent ±{margin:g}"}.get(
        v.word, "inconclusive" + (f" ({v.reason})" if v.reason else "")
    )
    edge = f"{KNIFE} " if v.knife_edge else ""
    return (
        f"{edge}{d.point:+.4f} [{d.low:+.4f}, {d.high:+.4f}] "
        f"p {p_text(v.p_different)} / {p_text(v.p_equivalent)} {word}"
    )


def needed_args(d: Difference, margin: float, alpha: float) -> tuple:
    return d.point, d.sd, margin, alpha, d.shared_var


def needed_text(d: Difference, margin: float, alpha: float) -> str:
    """Seeds the t-TOST would need at this cell's mean, spread and shared test-set noise."""
    n = seeds_needed(*needed_args(d, margin, alpha))
    if n is not None:
        return str(n)
    if abs(d.point) >= margin:
        return f"never (mean beyond ±{margin:g})"  # no "|": it would split the table cell
    return "never (test-set noise)" if d.shared_var > 0 else "> 200"


def margin_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"±{value:.4f}" if np.isfinite(value) else "none (too few draws)"


def noise_floor(d: Difference, alpha: float) -> float:
    """The smallest margin any number of seeds could reach at a mean difference of 0: the
    shared test-set noise stays, so the t-TOST's bound tends to z_(1 - alpha) sqrt(c)."""
    return float(stats.norm.ppf(1 - alpha)) * math.sqrt(max(d.shared_var, 0.0))


def needed_cell(d: Difference, margin: float, alpha: float) -> str:
    """One cell of the seeds table: seeds needed at ±margin; the smallest margin at which
    the cell is *equivalent* now; the test-noise floor no number of seeds gets below."""
    return (
        f"{needed_text(d, margin, alpha)}; now {margin_text(d.margin_bound)}; "
        f"floor {margin_text(noise_floor(d, alpha))}"
    )


def seeds_table(
    heads: Sequence[str],
    differences: Mapping[tuple[str, str], Difference],
    refused: Mapping[str, str],
    settings: ComparisonSettings,
) -> list[str]:
    """Per cell: the seeds TOST would need, at the Bonferroni level (1 - level) / cells (the
    strictest step of Holm's correction, i.e. enough whatever the other cells do), and the
    smallest margin at which the cell is *equivalent* now at that level."""
    cells = [k for k in differences if k[0] not in refused]
    if not cells:
        return []
    alpha = strictest_level(settings, len(cells))
    names = settings.estimators
    rows = [
        [head, str(len(differences[(head, names[0])].per_seed))]
        + [needed_cell(differences[(head, m)], settings.margins[m], alpha) for m in names]
        for head in heads
        if head not in refused
    ]
    within = [
        k
        for k in cells
        if (n := seeds_needed(*needed_args(differences[k], settings.margins[k[1]], alpha)))
        is not None
        and n <= len(differences[k].per_seed)
    ]
    reach = (
        f"{len(within)} of the {len(cells)} cells have enough seeds for it."
        if within
        else f"None of the {len(cells)} cells has enough seeds for it: in this table the "
        f"verdicts are in practice *different* or *inconclusive*."
    )
    return [
        f"Seeds the t-TOST would need to call a cell *equivalent*, if its mean difference, "
        f"seed spread and shared test-set variance stayed as observed, at one-sided level "
        f"{1 - settings.level:g} / {len(cells)} cells = {alpha:.2g} (the strictest Holm step). "
        f'"never (test-set noise)": the test set every seed shares adds more uncertainty '
        f"than the margin allows, however many seeds; a larger margin or test set is needed. "
        f'"now": the smallest margin at which the cell is *equivalent* with the seeds it '
        f"has (every method's TOST at the same level; any margin above it passes), so an "
        f'*inconclusive* cell is still shown to lie within that bound. "floor": '
        f"z_(1 - {alpha:.2g}) x the shared test-set standard error, the smallest margin "
        f"any number of seeds could reach at a mean difference of 0. {reach}",
        "",
        *markdown_table(["head", "seeds now", *settings.estimators], rows),
        "",
    ]


def knife_edge_lines(found: Mapping[tuple[str, str], Verdict]) -> list[str]:
    marked = [(k, v) for k, v in found.items() if v.knife_edge]
    if not marked:
        return ["No knife-edge verdicts.", ""]
    return [
        f"{KNIFE} knife edge (a rerun could read it the other way): "
        + "; ".join(f"`{h}` {m}: {v.knife_edge}" for (h, m), v in marked)
        + ".",
        "",
    ]


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
        f"**Conclusion** (Holm-corrected within each of two families over the {len(found)} "
        f"cells of this table: the *different* tests, and separately the *equivalent* tests; "
        f"family-wise {level} confidence for each family, not for the table as a whole):",
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
                f"a two-level bootstrap (seeds, and one of {settings.n_resamples} test-sample "
                f"resamples shared by the drawn seeds; for ECE-type estimators centred on "
                f"the bias-corrected point)"
            ),
        }[m]
        for m in settings.methods
    )
    corrected = [f"`{m}`: {CORRECTION[m]}" for m in settings.estimators if m in CORRECTION]
    margins = ", ".join(f"{m} ±{settings.margins[m]:g}" for m in settings.estimators)
    intro = [
        f"Difference to `{baseline}` (head - {baseline}), averaged over the shared seeds, "
        f"with the wider of {methods}; both include the noise of the one test set every "
        f"seed shares. {settings.level:.0%} intervals, shown unadjusted; then the "
        f"Holm-adjusted p-values of *different* / *equivalent*. ECE-type differences are of "
        f"bias-corrected values ({'; '.join(corrected) or 'none here'}): a plug-in ECE "
        f"is inflated more for a nearly calibrated head than for a miscalibrated one. "
        f"Verdicts: *different* (Holm-adjusted test excludes 0, every seed agrees in "
        f"sign{', and the interval lies wholly beyond ±m' if settings.beyond_margin else ''}), "
        f"*equivalent ±m* (TOST at margin m, Holm-adjusted), *inconclusive* otherwise. "
        f"Margins m: {margins}. Fewer than {MIN_SEEDS} shared seeds: no verdict.",
        "",
    ]
    n_seeds = {h: len(p) for h, p in pairs.items()}
    table = difference_table(heads, differences, found, refused, n_seeds, settings)
    return [
        *intro,
        *table,
        "",
        *knife_edge_lines(found),
        *seeds_table(heads, differences, refused, settings),
        *sentences(baseline, differences, found, refused, settings),
    ]
