"""headlab.tables owns Markdown tables and the mean ± sd cell (one format everywhere)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from headlab.tables import markdown_table, mean_std

SRC = Path(__file__).resolve().parents[1] / "src" / "headlab"
#: modules still writing their own table; each should move to headlab.tables
NOT_YET: set[str] = set()


def test_mean_std_is_the_sample_mean_and_sd_of_the_finite_values():
    values = [0.91, 0.95, float("nan"), 0.97, None, float("inf"), True]
    kept = np.array([0.91, 0.95, 0.97])
    expected = f"{kept.mean():.3f} ± {kept.std(ddof=1):.3f}"
    assert mean_std(values, 3) == expected
    assert mean_std([0.95]) == "0.9500"
    assert mean_std([]) == "—" and mean_std([None], missing="n/a") == "n/a"


def test_markdown_table_lines():
    assert markdown_table(["a", "b"], [["1", "2"], ["3", "4"]]) == [
        "| a | b |",
        "|---|---|",
        "| 1 | 2 |",
        "| 3 | 4 |",
    ]
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [["1"]])


def test_no_other_module_writes_a_table_separator_or_a_mean_sd_cell():
    own = []
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).as_posix()
        if name == "tables.py" or name in NOT_YET:
            continue
        text = path.read_text()
        if re.search(r'"\|?(---\|)+"|"\|---"', text) or re.search(r'f"\{[^}]*\} ± \{', text):
            own.append(name)
    assert own == []
