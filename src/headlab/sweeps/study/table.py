"""A sweep's ``summary.csv`` as a markdown table: one row per head, mean ± std over seeds.

Kept to the standard library (``csv``, ``statistics``) so that it runs wherever headlab does;
``scripts/study_table.py`` is its command line.
"""

from __future__ import annotations

import csv
from pathlib import Path

from headlab.tables import markdown_table, mean_std

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
    header = ["head", "runs", *(f"`{c}`" for c in columns)]
    rows = [
        [
            f"`{head}`",
            str(len(group)),
            *(mean_std([float(r[c]) for r in group if r.get(c)]) for c in columns),
        ]
        for head, group in by_head.items()
    ]
    return "\n".join(markdown_table(header, rows))
