"""Evaluate a checkpoint on the test set through the training code path (``train=false``).

scripts/eval.py first puts the checkpoint's run overrides before the command line's
(headlab.run.overrides). A checkpoint whose head or data then differs from the config fails
to load (headlab.checkpoints.identity).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


def checkpoint_path(cfg: DictConfig) -> Path:
    ckpt = cfg.get("ckpt_path")
    if not ckpt:
        raise ValueError("eval needs a checkpoint: ckpt_path=<run>/checkpoints/<name>.ckpt")
    path = Path(ckpt).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt}: no such file ({path})")
    return path


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` with the training code's metrics; writes ``metrics.json``."""
    from headlab.run.train import train  # torch and Lightning: only once a run starts

    if cfg.get("train"):
        raise ValueError("scripts/eval.py never trains: resume with scripts/train.py ckpt_path=...")
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint_path(cfg))
        cfg.test = True
    log.info("Evaluating %s", cfg.ckpt_path)
    return train(cfg)
