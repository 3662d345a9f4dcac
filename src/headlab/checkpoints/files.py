"""Checkpoint files: where a run keeps them, which run a checkpoint came from, and whether a
path names a readable Lightning checkpoint at all (checked before anything is built, so a
wrong path is one line, not a traceback from deep inside Lightning)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from headlab.errors import CheckpointError, ConfigValueError


def checkpoint_dir(cfg: DictConfig) -> Path | None:
    """The folder the run's checkpoint callback writes into (``last.ckpt`` lives there)."""
    found = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    return Path(found) if found else None


def run_dir_of(ckpt_path: str | Path) -> Path | None:
    """``<run>`` for ``<run>/checkpoints/x.ckpt`` when Hydra left ``<run>/.hydra`` there."""
    run = Path(ckpt_path).expanduser().resolve().parent.parent
    return run if (run / ".hydra" / "overrides.yaml").is_file() else None


def checkpoint_path(cfg: DictConfig) -> Path:
    ckpt = cfg.get("ckpt_path")
    if not ckpt:
        raise ConfigValueError("eval needs a checkpoint: ckpt_path=<run>/checkpoints/<name>.ckpt")
    path = Path(ckpt).expanduser().resolve()
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={ckpt}: no such file ({path})")
    return path


def check_checkpoint(path: str | Path) -> None:
    """Fail early and by name for a ``ckpt_path`` that is missing or not a checkpoint.

    Only the zip directory is read: ``torch.save`` writes a zip with a ``data.pkl`` record,
    and a truncated file has no directory, so this is cheap and catches both.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"ckpt_path={path} does not exist.")
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={path} is not a file (a checkpoint is one .ckpt file).")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"ckpt_path={path} is not a checkpoint (not written by torch.save, or truncated)."
        )
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("/data.pkl") for name in archive.namelist()):
            raise CheckpointError(f"ckpt_path={path} is a zip file but not a torch checkpoint.")
    try:  # memory-mapped: only the pickled dict is read, not the tensors
        content = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError:
        return  # objects weights_only refuses: Lightning decides how to load those
    except Exception as err:
        raise CheckpointError(f"ckpt_path={path} cannot be read: {err}") from err
    if not isinstance(content, dict) or "state_dict" not in content:
        raise CheckpointError(
            f"ckpt_path={path} is a torch file but not a Lightning checkpoint (no state_dict)."
        )
