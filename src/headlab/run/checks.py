"""Start-up checks of the composed config: a nonsense number fails before any data loads.

Each check names the config key, so the message says what to change on the command line.
Keys that a config does not have are skipped (e.g. ``data.max_digits`` exists only for the
multi-label data), so one table serves every data/model/head option.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from headlab.errors import CheckpointError, ConfigValueError

Check = tuple[str, Callable[[Any], bool], str]

CHECKS: tuple[Check, ...] = (
    ("data.batch_size", lambda v: v > 0, "must be > 0"),
    ("data.eval_batch_size", lambda v: v > 0, "must be > 0"),
    ("data.val_size", lambda v: v > 0, "must be > 0 (and smaller than the training set)"),
    ("data.max_digits", lambda v: 1 <= v <= 10, "must lie in 1..10"),
    ("model.optimizer.lr", lambda v: v > 0, "must be > 0"),
    ("model.optimizer.weight_decay", lambda v: v >= 0, "must be >= 0"),
    ("head.smoothing", lambda v: 0 <= v < 1, "must lie in [0, 1)"),
    ("head.gamma", lambda v: v >= 0, "must be >= 0"),
    ("head.gamma_pos", lambda v: v >= 0, "must be >= 0"),
    ("head.gamma_neg", lambda v: v >= 0, "must be >= 0"),
    ("head.clip", lambda v: 0 <= v < 1, "must lie in [0, 1)"),
    ("head.epsilon", lambda v: v >= -1, "must be >= -1"),
    ("head.alpha", lambda v: 0 <= v <= 1, "must be null or lie in [0, 1]"),
    ("trainer.max_epochs", lambda v: v == -1 or v > 0, "must be > 0 (or -1: no limit)"),
    ("calibration.bootstrap", lambda v: v > 0 and v == int(v), "must be a whole number > 0"),
    ("calibration.min_bin_count", lambda v: v >= 1, "must be >= 1"),
    ("calibration.n_bins", lambda v: v >= 2 and v == int(v), "must be a whole number >= 2"),
)


#: config keys that take one of a few names (null skipped, like a missing key)
CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (("head.gamma_schedule", ("flsd53",)),)


def check_choices(cfg: DictConfig, choices: tuple[tuple[str, tuple[str, ...]], ...] = CHOICES):
    """Raise ``ConfigValueError`` naming every key whose value is not one of its names."""
    problems = [
        f"{key} must be null or one of {list(allowed)}, got {value!r}"
        for key, allowed in choices
        if (value := OmegaConf.select(cfg, key, default=None)) is not None and value not in allowed
    ]
    if problems:
        raise ConfigValueError("Invalid config: " + "; ".join(problems))


def check_numbers(cfg: DictConfig, checks: tuple[Check, ...] = CHECKS) -> None:
    """Raise ``ConfigValueError`` naming every key whose value cannot work."""
    problems = []
    for key, ok, rule in checks:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key} {rule}, got {value!r} (not a number)")
        elif not ok(value):
            problems.append(f"{key} {rule}, got {value!r}")
    if problems:
        raise ConfigValueError("Invalid config: " + "; ".join(problems))


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


def check_methods(cfg: DictConfig) -> None:
    """``calibration.methods``: a list of known post-hoc calibrators."""
    from headlab.calibration import METHODS

    methods = OmegaConf.select(cfg, "calibration.methods", default=None)
    if methods is None:
        return
    if isinstance(methods, str) or not OmegaConf.is_list(methods):
        methods = [methods]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigValueError(
            f"Invalid config: calibration.methods has unknown {unknown}; "
            f"the methods are {', '.join(METHODS)}"
        )


def validate(cfg: DictConfig) -> None:
    """Everything that can be checked from the config alone, before anything is built."""
    check_numbers(cfg)
    check_choices(cfg)
    check_methods(cfg)
    if cfg.get("ckpt_path"):
        check_checkpoint(cfg.ckpt_path)
