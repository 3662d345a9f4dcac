"""Evaluate a checkpoint on the test set.

`python scripts/eval.py ckpt_path=<run>/checkpoints/x.ckpt`; the run's own data/model/head
overrides are applied first (see headlab.run.overrides).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from headlab.run.dirs import register

os.environ.setdefault("HEADLAB_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval.yaml")
def main(cfg: DictConfig) -> float | None:
    register()  # in a parallel launcher's worker too
    from headlab.run.evaluate import evaluate
    from headlab.run.from_checkpoint import composed_from_checkpoint
    from headlab.run.outcome import run_task

    metrics = run_task(composed_from_checkpoint(evaluate), cfg)  # a bad input: one line, exit 1
    if metrics is None:
        return float("nan")
    value = metrics.get(cfg.get("optimized_metric"))
    return float(value) if isinstance(value, (int, float)) else None


if __name__ == "__main__":
    register()  # ${unique_dir:} and ${job_dir:}, before Hydra composes
    from headlab.run.overrides import missing_ckpt_message

    if message := missing_ckpt_message(sys.argv[1:], "scripts/eval.py"):
        sys.exit(message)  # one line on stderr, exit 1
    main()
