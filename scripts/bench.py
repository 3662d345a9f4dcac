"""Benchmark headlab against a plain PyTorch loop: `python scripts/bench.py [--device cuda]`.

Prints one JSON line per model (plain_s, headlab_s, ratio, samples/s, peak RSS, time to the
first training step); `--time-to-accuracy` adds the CNN's time to 99% test accuracy;
`--readme` rewrites the results table in README.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HEADLAB_ROOT", str(Path(__file__).resolve().parents[1]))

from headlab.bench import main

if __name__ == "__main__":
    sys.exit(main())
