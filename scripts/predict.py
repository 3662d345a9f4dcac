"""Run a checkpoint on new images: `python scripts/predict.py ckpt_path=<ckpt> input=<folder>`.

`input=` is a folder of PNG/JPEG images, a .npy array or `test`; predictions.csv goes into
the run folder. The checkpoint's run overrides are applied first (see headlab.run.overrides).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from headlab.run.dirs import register

os.environ.setdefault("HEADLAB_ROOT", str(Path(__file__).resolve().parents[1]))


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict.yaml")
def main(cfg: DictConfig) -> None:
    register()  # in a parallel launcher's worker too
    from headlab.run.from_checkpoint import composed_from_checkpoint
    from headlab.run.outcome import run_task
    from headlab.run.predict import predict

    run_task(composed_from_checkpoint(predict), cfg)  # a bad input: one line, exit 1


if __name__ == "__main__":
    register()  # ${unique_dir:} and ${job_dir:}, before Hydra composes
    from headlab.run.overrides import missing_ckpt_message

    if message := missing_ckpt_message(sys.argv[1:], "scripts/predict.py"):
        sys.exit(message)  # one line on stderr, exit 1
    main()
