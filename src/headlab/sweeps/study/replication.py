"""Do a study's verdicts survive a rerun on new seeds? Compare two sweeps' verdict tables.

A contradiction is *different* in opposite directions, or *different* in one sweep and
*equivalent* in the other; *inconclusive* in one of them is no contradiction (the data of
that sweep could not tell), and is counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headlab.sweeps.study.verdicts import (
    DIFFERENT,
    EQUIVALENT,
    ComparisonSettings,
    margin_rule,
    verdicts,
)

Cell = tuple[str, str]  # (head, estimator)


def study_verdicts(folder: str | Path, settings: ComparisonSettings) -> dict[Cell, tuple[str, int]]:
    """(verdict, sign of the difference) per cell of one sweep's comparison to the baseline."""
    from headlab.sweeps.study.conclusions import compare_heads
    from headlab.sweeps.study.jobs import load_study
    from headlab.sweeps.study.report import Scores, has_predictions, head_pairs

    study = load_study(folder)
    data = "mnist" if study.completed_on("mnist") else study.completed[0].data
    groups = {
        h: [j for j in js if has_predictions(j)] for h, js in study.completed_on(data).items()
    }
    scores = Scores(settings)
    pairs = head_pairs({h: js for h, js in groups.items() if js}, scores)
    diffs, _ = compare_heads(pairs, scores.point, scores.resampled, settings)
    found = verdicts(diffs, settings.level, margin_rule(settings))
    return {cell: (v.word, int(np.sign(diffs[cell].point))) for cell, v in found.items()}


@dataclass
class Agreement:
    agreed: list[Cell] = field(default_factory=list)
    inconclusive_in_one: list[Cell] = field(default_factory=list)
    contradicted: list[Cell] = field(default_factory=list)


def agreement(a: dict[Cell, tuple[str, int]], b: dict[Cell, tuple[str, int]]) -> Agreement:
    """Sort the cells both sweeps judged into agreed, inconclusive in one, contradicted."""
    out = Agreement()
    for cell in sorted(set(a) & set(b)):
        (word_a, sign_a), (word_b, sign_b) = a[cell], b[cell]
        words = {word_a, word_b}
        if (words == {DIFFERENT} and sign_a != sign_b) or words == {DIFFERENT, EQUIVALENT}:
            out.contradicted.append(cell)
        elif word_a == word_b:
            out.agreed.append(cell)
        else:
            out.inconclusive_in_one.append(cell)
    return out
