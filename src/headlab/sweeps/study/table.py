"""A sweep's ``summary.csv`` as a markdown table: one row per head, mean ± std over seeds.

Kept to the standard library (``csv``, ``statistics``) so that it runs wherever headlab does;
``scripts/study_table.py`` is its command line.
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

#: the multi-label head study's columns: ranking, F1 at 0.5 and at the val-chosen threshold
MULTILABEL_COLUMNS = (
    "test/map",
    "test/f1_micro",
    "test/f1_micro_tuned",
    "test/f1_macro",
    "test/f1_macro_tuned",
    "val/best_threshold",
    "val/best_threshold_macro",
    "test/ece",
)


def head_of(row: dict[str, str]) -> str:
    """The job's head, from its own column or (when all jobs share it) from its overrides."""
    if row.get("head"):
        return row["head"]
    for override in row.get("overrides", "").split():
        if override.startswith("head="):
            return override.removeprefix("head=")
    return "?"


def mean_std(values: list[float], digits: int = 4) -> str:
    """'m ± s' with the sample standard deviation over the finite values; a lone value has no
    spread to show; none: '—'. The one format of every mean ± std table (study and report)."""
    values = [
        float(v)
        for v in values
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def study_table(
    summary_csv: str | Path | list[str | Path], columns: tuple[str, ...] = MULTILABEL_COLUMNS
) -> str:
    """Completed jobs grouped by head, in the order the heads first appear in the sweep(s).

    Several ``summary.csv`` files pool their jobs (a study run as more than one sweep).
    """
    paths = summary_csv if isinstance(summary_csv, list) else [summary_csv]
    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows += [r for r in csv.DictReader(handle) if r.get("status") == "completed"]
    by_head: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_head.setdefault(head_of(row), []).append(row)
    lines = [
        "| head | runs | " + " | ".join(f"`{c}`" for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for head, group in by_head.items():
        cells = [mean_std([float(r[c]) for r in group if r.get(c)]) for c in columns]
        lines.append(f"| `{head}` | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
