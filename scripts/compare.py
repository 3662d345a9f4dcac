"""Compare heads over a multirun: `python scripts/compare.py logs/compare_heads/multiruns/<time>`.

Writes report.md (table, mean ± std over seeds, missing/failed runs) and report.png
(reliability diagram per head) into that folder.
"""

from __future__ import annotations

import argparse
import sys

from headlab.report import write_report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a Hydra multirun folder (holds 0/, 1/, ...)")
    args = parser.parse_args()
    try:
        report = write_report(args.sweep_dir)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.read_text())
    print(f"written: {report} and {report.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
