"""A checkpoint's own run configuration, put before the command line's overrides.

Whoever evaluates or resumes ``logs/train/runs/<time>/checkpoints/x.ckpt`` means that run's
model, head and data, not the defaults. When the checkpoint lies in a run folder, the run's
overrides for those groups (``<run>/.hydra/overrides.yaml``) are put before the command
line's: anything given there still wins, and the new run's ``.hydra/overrides.yaml`` records
the complete list, so ``--cfg job`` and the saved config show what really ran. This happens
on the command line, before Hydra composes, so that Hydra's own override rules apply.
``use_run_config=false`` turns it off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from headlab.checkpoints.files import run_dir_of

# the one parser of a command-line override (Hydra's); the names stay importable from here
from headlab.layout.overrides import override_key, split_override

log = logging.getLogger(__name__)

#: what decides the weights' meaning; trainer, logger and paths stay the eval's own
RUN_KEYS = ("data", "model", "head", "experiment", "seed")
__all__ = ["missing_ckpt_message", "override_key", "split_override", "with_run_overrides"]


def _is_run_key(key: str) -> bool:
    return any(key == k or key.startswith((f"{k}.", f"{k}/", f"{k}@")) for k in RUN_KEYS)


def run_overrides(run_dir: Path) -> list[str]:
    overrides = OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")
    return [str(o) for o in overrides if _is_run_key(override_key(str(o)))]


def with_run_overrides(args: Sequence[str]) -> list[str]:
    """Command-line arguments with the checkpoint's run overrides put before the user's own."""
    args = list(args)
    given = dict(split_override(a) for a in args if "=" in a)
    ckpt = given.get("ckpt_path")
    if not ckpt or given.get("use_run_config", "true").lower() == "false":
        return args
    if "," in ckpt:  # a sweep over checkpoints: their runs differ, nothing to take for all
        log.warning("ckpt_path is a sweep: the runs' own overrides are not applied.")
        return args
    run = run_dir_of(ckpt)
    if run is None:
        return args
    taken = [o for o in run_overrides(run) if override_key(o) not in given]
    # before the first override: flags and their values (-m, --cfg job) keep their places
    first = next(i for i, a in enumerate(args) if "=" in a and not a.startswith("-"))
    return args[:first] + taken + args[first:]


#: flags that print something instead of running: they need no checkpoint
_INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion")


def missing_ckpt_message(args: Sequence[str], script: str) -> str | None:
    """The one line to print when ``script`` would run without ``ckpt_path=``, else None.

    Checked on the command line before Hydra composes: the config's ``ckpt_path: ???`` would
    otherwise end in a traceback from the config printer, after an empty run folder is made.
    """
    if any(a in _INFO_FLAGS or a.startswith(("--cfg=", "--info=")) for a in args):
        return None
    given = dict(split_override(a) for a in args if "=" in a)
    if given.get("ckpt_path"):
        return None
    return (
        f"{script} needs a checkpoint: pass ckpt_path=logs/train/runs/<time>/checkpoints/"
        "<name>.ckpt (a run's best or last checkpoint)."
    )
