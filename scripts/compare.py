"""Compare heads over a sweep: `python scripts/compare.py logs/compare_heads/multiruns/<time>`.

Writes <sweep>/report/report.md with its figures (probability mass, gradient split,
calibration with paired intervals against softmax, multi-label/soft tables, missing or
failed runs). More sweep folders after the first add their jobs (e.g. a compare_multilabel
sweep). A folder that is no sweep, an empty sweep or one whose jobs all failed, an unknown
estimator or method, a margin <= 0: one line on stderr, exit 2, nothing written.
Verdicts and their settings: docs/statistics.md.
"""

from __future__ import annotations

import argparse
import sys

from headlab.errors import ConfigValueError
from headlab.sweeps.study.report import report_or_error
from headlab.sweeps.study.verdicts import ComparisonSettings


def margins(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise ConfigValueError(
                f"--margin takes NAME=VALUE, e.g. ece=0.002; got {pair!r}"
            ) from None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a Hydra multirun folder (holds <num>_<overrides>/)")
    parser.add_argument("more", nargs="*", help="further sweep folders whose jobs to include")
    parser.add_argument(
        "--margin",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="equivalence margin of an estimator (repeatable), e.g. --margin ece=0.003",
    )
    parser.add_argument(
        "--method",
        action="append",
        metavar="METHOD",
        help="comparison method(s): two_level, t (default: both; a call needs all to agree)",
    )
    args = parser.parse_args()
    try:
        extra = {"methods": args.method} if args.method else {}
        settings = ComparisonSettings.build(margins(args.margin), **extra)
    except ConfigValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    code, line = report_or_error(args.sweep_dir, *args.more, settings=settings)
    print(line, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
