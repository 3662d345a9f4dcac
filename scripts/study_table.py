"""Print a sweep's summary.csv as mean ± std per head:
`python scripts/study_table.py logs/compare_multilabel/multiruns/<time> [column ...]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from headlab.study_table import MULTILABEL_COLUMNS, study_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder holding summary.csv")
    parser.add_argument("columns", nargs="*", help=f"metrics (default: {MULTILABEL_COLUMNS})")
    args = parser.parse_args()
    summary = args.sweep_dir / "summary.csv"
    if not summary.is_file():
        print(f"error: no {summary} (is this a finished multirun folder?)", file=sys.stderr)
        return 2
    print(study_table(summary, tuple(args.columns) or MULTILABEL_COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
