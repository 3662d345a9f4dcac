"""Benchmark headlab against a plain PyTorch loop: `python scripts/bench.py [--device cuda]`.

Prints one JSON line per model (plain_s, headlab_s, ratio, samples/s, peak RSS, time to the
first training step); `--time-to-accuracy` adds the CNN's time to 99% test accuracy;
`--markdown` also prints the results as a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HEADLAB_ROOT", str(ROOT))
sys.path.insert(0, str(ROOT))  # benchmarks/ is not part of the installed package

from benchmarks.timing import main  # noqa: E402

if __name__ == "__main__":
    from headlab.run.outcome import EXIT_FAILED, user_errors

    try:
        sys.exit(main())
    except user_errors() as error:  # a bad override or data folder: one line, as train.py
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
