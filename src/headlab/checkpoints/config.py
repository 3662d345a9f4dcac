"""The run's composed config, carried inside every checkpoint the run writes.

A checkpoint then says by itself which data, model, head, seed and trainer made it: eval,
predict and resume read it from here (``headlab.run.overrides.apply_run_config``), so a
checkpoint copied out of its run folder still works, and a sweep job's checkpoint never
brings its sweep back (Hydra's own settings are not part of the task config).

The config is kept as YAML text with its interpolations (``${paths.output_dir}``,
``${paths.data_dir}``): they resolve against the new run's paths, not the old machine's.
Text keeps the checkpoint loadable with ``weights_only=True``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from headlab.checkpoints.files import check_checkpoint, run_dir_of

log = logging.getLogger(__name__)

CONFIG_KEY = "headlab_config"


class RunConfigInCheckpoint(Callback):
    """Writes the run's config (YAML, interpolations kept) into every checkpoint it saves."""

    def __init__(self, config: DictConfig) -> None:
        self.text = OmegaConf.to_yaml(config)

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.text


def stored_config(path: str | Path) -> DictConfig | None:
    """The config a checkpoint carries, or None for one written before it carried any."""
    import torch

    content = torch.load(Path(path), map_location="cpu", mmap=True, weights_only=True)
    text = content.get(CONFIG_KEY) if isinstance(content, dict) else None
    return OmegaConf.create(text) if text else None


def run_config(path: str | Path) -> tuple[DictConfig | None, str]:
    """The config ``path`` was trained with, and where it was found.

    The checkpoint's own first; for an older checkpoint still in its run folder, the config
    Hydra saved there (``<run>/.hydra/config.yaml``, the task config without Hydra's sweep
    settings); else ``(None, "")``.
    """
    check_checkpoint(path)  # a wrong path is one line here too, not torch's traceback
    found = stored_config(path)
    if found is not None:
        return found, f"the checkpoint {path}"
    run = run_dir_of(path)
    saved = run / ".hydra" / "config.yaml" if run else None
    if saved is not None and saved.is_file():
        return OmegaConf.load(saved), str(saved)
    return None, ""
