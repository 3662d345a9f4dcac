"""Markdown tables and the mean ± sd cell: the one format of every table headlab writes.

Reports, the study table, the off-distribution summary, the sweep board and TensorBoard's
text panels all write through here, so a column reads the same wherever it appears.
Standard library only: sweep readers that avoid torch import it too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

#: what a cell shows when there is no finite value to report
MISSING = "—"


def finite(values: Iterable[object]) -> list[float]:
    """The finite numbers among ``values`` (None, NaN, ±inf, booleans and strings dropped)."""
    return [
        float(v)
        for v in values
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]


def mean_std(values: Iterable[object], digits: int = 4, missing: str = MISSING) -> str:
    """'m ± s' with the sample standard deviation (n - 1) of the finite values. A lone value
    has no spread to show, so it stands alone; no value at all gives ``missing``."""
    kept = finite(values)
    if not kept:
        return missing
    if len(kept) == 1:
        return f"{kept[0]:.{digits}f}"
    return f"{statistics.mean(kept):.{digits}f} ± {statistics.stdev(kept):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: header, separator, one line per row. A row with a
    different number of cells than the header is a bug in the caller, so it raises."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row has {len(row)} cells, header {len(header)}: {list(row)}")
        lines.append("| " + " | ".join(row) + " |")
    return lines
