"""Evaluate a checkpoint on the test set through the training code path (``train=false``).

scripts/eval.py first takes the checkpoint's data, model, head and seed from the config it
carries (headlab.run.from_checkpoint). A checkpoint whose head or data then differs from the
config (a ``head=`` given on the command line) fails to load in one line
(headlab.checkpoints.identity).
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, open_dict

from headlab.checkpoints.files import checkpoint_path
from headlab.errors import ConfigValueError

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` with the training code's metrics; writes ``metrics.json``."""
    from headlab.run.train import train  # torch and Lightning: only once a run starts

    if cfg.get("train"):
        raise ConfigValueError(
            "scripts/eval.py never trains: resume with scripts/train.py ckpt_path=..."
        )
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint_path(cfg))
        cfg.test = True
    log.info("Evaluating %s", cfg.ckpt_path)
    return train(cfg)
