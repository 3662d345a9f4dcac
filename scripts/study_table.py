"""Print sweeps' summary.csv as mean ± std per head:
`python scripts/study_table.py logs/compare_multilabel/multiruns/<time> [...] [--columns ...]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from headlab.sweeps.study.table import MULTILABEL_COLUMNS, study_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", type=Path, nargs="+", help="multirun folders (summary.csv)")
    parser.add_argument("--columns", nargs="+", help=f"metrics (default: {MULTILABEL_COLUMNS})")
    args = parser.parse_args()
    summaries = [sweep / "summary.csv" for sweep in args.sweep_dirs]
    for summary in summaries:
        if not summary.is_file():
            print(f"error: no {summary} (is this a multirun folder?)", file=sys.stderr)
            return 2
    print(study_table(summaries, tuple(args.columns or MULTILABEL_COLUMNS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
