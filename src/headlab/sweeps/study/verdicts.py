"""Three verdicts per (head, estimator) difference to the baseline, corrected for multiplicity.

* *different*: the difference excludes 0 (Holm-adjusted p < 1 - level), every shared seed's
  difference has the same sign, and (``beyond_margin``, the default) its interval lies
  wholly outside ±m: a difference larger than what counts as none. Without that last
  condition a small real difference (|d| < m) is *equivalent* in one rerun and *different*
  in the next (measured: seeds 1-5 against 6-10, docs/statistics.md);
* *equivalent within ±m*: TOST at the estimator's margin m (Holm-adjusted p < 1 - level):
  the difference is shown to be smaller than anything that matters, zero or not;
* *inconclusive*: neither; the data cannot tell.

Holm's step-down correction runs over every cell of one report (heads x estimators), once
for the "different" p-values and once for the "equivalent" ones: two families, each with a
family-wise error rate of 1 - level (not the table as a whole). Own ten lines: statsmodels
(which has it) is not a dependency.

A verdict is a *knife edge* (marked in the report) where an adjusted p-value lies within a
factor ``KNIFE_EDGE`` of the level on either side, or where estimators of the same kind
(the three ECEs; Brier and its one-vs-rest form; NLL and its) disagree for one head: a
rerun could well read it the other way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from headlab.calibration.estimators import ESTIMATORS
from headlab.errors import ConfigValueError
from headlab.sweeps.study.paired import COMPARISONS, Difference, check_methods

DIFFERENT, EQUIVALENT, INCONCLUSIVE = "different", "equivalent", "inconclusive"
#: an adjusted p-value within this factor of the level (either side) is a knife edge
KNIFE_EDGE = 1.5
#: estimators that measure the same thing in different ways: their verdicts should agree
KINDS = {
    "calibration error": ("ece", "ece_adaptive", "smece"),
    "Brier": ("brier", "brier_ovr"),
    "NLL": ("nll", "nll_ovr"),
}
#: how small a difference must be shown to be to count as none; one unit of the estimator
#: (accuracy 0.2 points, ECE 0.2 points, Brier and NLL as summed over classes)
DEFAULT_MARGINS = {
    "acc": 0.002,
    "ece": 0.002,
    "ece_adaptive": 0.002,
    "smece": 0.002,
    "brier": 0.002,
    "nll": 0.005,
    "brier_ovr": 0.002,
    "nll_ovr": 0.01,
}


class BadComparisonSetting(ConfigValueError):
    """An unknown estimator, a margin that is not positive, a level outside (0, 1)."""


@dataclass(frozen=True)
class ComparisonSettings:
    """How the report compares heads (``compare_report`` in configs/experiment/compare_heads
    .yaml, or ``scripts/compare.py --margin/--method``)."""

    estimators: tuple[str, ...] = ESTIMATORS
    methods: tuple[str, ...] = COMPARISONS
    margins: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MARGINS))
    level: float = 0.95
    n_resamples: int = 1000
    seed: int = 0
    #: *different* only where the interval lies wholly outside ±margin (see module docstring)
    beyond_margin: bool = True

    def __post_init__(self) -> None:
        unknown = [e for e in (*self.estimators, *self.margins) if e not in ESTIMATORS]
        if unknown:
            raise BadComparisonSetting(
                f"unknown estimator {unknown[0]!r}; known: {', '.join(ESTIMATORS)}"
            )
        check_methods(self.methods)
        for name, margin in self.margins.items():
            if not (isinstance(margin, (int, float)) and margin > 0):
                raise BadComparisonSetting(
                    f"margin for {name} must be > 0 (a difference shown to lie within ±margin "
                    f"is 'equivalent'), got {margin!r}"
                )
        if not 0 < self.level < 1:
            raise BadComparisonSetting(f"level must lie in (0, 1), got {self.level!r}")
        if self.n_resamples < 1000:
            raise BadComparisonSetting(
                f"n_resamples must be at least 1000 (interval ends move with fewer), "
                f"got {self.n_resamples}"
            )

    @classmethod
    def build(cls, margins: Mapping[str, float] | None = None, **kwargs) -> ComparisonSettings:
        """Defaults with ``margins`` overriding some estimators' margins."""
        if "estimators" in kwargs:
            kwargs["estimators"] = tuple(kwargs["estimators"])
        if "methods" in kwargs:
            kwargs["methods"] = tuple(kwargs["methods"])
        return cls(margins={**DEFAULT_MARGINS, **dict(margins or {})}, **kwargs)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values: the i-th smallest times (m - i), made monotone, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


@dataclass(frozen=True)
class Verdict:
    word: str
    p_different: float  # Holm-adjusted
    p_equivalent: float  # Holm-adjusted
    reason: str = ""
    #: why a rerun could read this cell the other way ("" where it could not)
    knife_edge: str = ""


def verdicts(
    differences: Mapping[tuple[str, str], Difference],
    level: float = 0.95,
    margins: Mapping[str, float] | None = None,
) -> dict[tuple[str, str], Verdict]:
    """A verdict per (head, estimator) cell, Holm-corrected over all cells given; with
    ``margins`` (per estimator), *different* also needs the interval wholly beyond ±m."""
    keys = list(differences)
    if not keys:
        return {}
    alpha = 1 - level
    p_diff = holm([differences[k].p_different for k in keys])
    p_equiv = holm([differences[k].p_equivalent for k in keys])
    out = {}
    for key, pd, pe in zip(keys, p_diff, p_equiv, strict=True):
        d = differences[key]
        margin = (margins or {}).get(key[1])
        beyond = margin is None or d.low > margin or d.high < -margin
        if pe < alpha:
            out[key] = Verdict(EQUIVALENT, pd, pe)
        elif pd < alpha and d.sign_stable and beyond:
            out[key] = Verdict(DIFFERENT, pd, pe)
        elif pd < alpha and d.sign_stable:
            out[key] = Verdict(INCONCLUSIVE, pd, pe, "non-zero, but not shown beyond ±m")
        elif pd < alpha:
            out[key] = Verdict(INCONCLUSIVE, pd, pe, "per-seed differences change sign")
        else:
            out[key] = Verdict(INCONCLUSIVE, pd, pe)
    return knife_edges(out, level)


def near_level(p: float, alpha: float) -> bool:
    """``p`` within a factor ``KNIFE_EDGE`` of ``alpha`` on either side."""
    return alpha / KNIFE_EDGE <= p <= alpha * KNIFE_EDGE


def knife_edges(
    found: Mapping[tuple[str, str], Verdict], level: float = 0.95
) -> dict[tuple[str, str], Verdict]:
    """``found`` with each knife-edge verdict marked (``Verdict.knife_edge`` says why)."""
    alpha = 1 - level
    out = {}
    for (head, name), v in found.items():
        why = []
        if near_level(v.p_different, alpha):
            why.append(f"adjusted p(different) {v.p_different:.3g} near {alpha:g}")
        if near_level(v.p_equivalent, alpha):
            why.append(f"adjusted p(equivalent) {v.p_equivalent:.3g} near {alpha:g}")
        for kind, members in KINDS.items():
            if name not in members:
                continue
            words = {found[(head, m)].word for m in members if (head, m) in found}
            if len(words) > 1:
                why.append(f"{kind} estimators disagree ({', '.join(sorted(words))})")
        out[(head, name)] = Verdict(v.word, v.p_different, v.p_equivalent, v.reason, "; ".join(why))
    return out


def margin_rule(settings: ComparisonSettings) -> Mapping[str, float] | None:
    """The margins *different* must be shown beyond, or None (``beyond_margin`` off)."""
    return settings.margins if settings.beyond_margin else None
