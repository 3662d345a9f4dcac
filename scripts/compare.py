"""Compare heads over a sweep: `python scripts/compare.py logs/compare_heads/multiruns/<time>`.

Writes <sweep>/report/report.md with its figures (probability mass, gradient split,
calibration with paired intervals against softmax, multi-label/soft tables, missing or
failed runs). More sweep folders after the first add their jobs (e.g. a compare_multilabel
sweep). A folder that is no sweep, an empty sweep or one whose jobs all failed: one line
on stderr, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import sys

from headlab.sweeps.study.report import report_or_error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a Hydra multirun folder (holds <num>_<overrides>/)")
    parser.add_argument("more", nargs="*", help="further sweep folders whose jobs to include")
    args = parser.parse_args()
    code, line = report_or_error(args.sweep_dir, *args.more)
    print(line, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
