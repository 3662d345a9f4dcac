"""Do two head-comparison sweeps (e.g. seeds 1-5 and 6-10) reach the same verdicts?

`python scripts/replication.py <sweep A> <sweep B>` prints one JSON line: how many
(head, estimator) cells agreed, were inconclusive in one sweep, or contradicted each other
(different in opposite directions, or different vs equivalent), and which ones. The
verdicts are the report's (docs/statistics.md), with its default margins.
"""

from __future__ import annotations

import argparse
import json
import sys

from headlab.errors import ConfigValueError
from headlab.sweeps.study.jobs import BadSweep
from headlab.sweeps.study.replication import agreement, study_verdicts
from headlab.sweeps.study.verdicts import ComparisonSettings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args()
    settings = ComparisonSettings()
    try:
        a, b = (study_verdicts(folder, settings) for folder in (args.first, args.second))
    except (BadSweep, ConfigValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = agreement(a, b)
    words = {cell: (a[cell][0], b[cell][0]) for cell in set(a) & set(b)}
    print(
        json.dumps(
            {
                "cells": len(words),
                "agreed": len(result.agreed),
                "inconclusive_in_one": len(result.inconclusive_in_one),
                "contradicted": len(result.contradicted),
                "contradictions": [f"{h}/{e}: {words[(h, e)]}" for h, e in result.contradicted],
                "verdicts_first": {f"{h}/{e}": w for (h, e), (w, _) in sorted(a.items())},
                "verdicts_second": {f"{h}/{e}": w for (h, e), (w, _) in sorted(b.items())},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
